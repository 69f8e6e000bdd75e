"""The ingest stages of a run: ``collect`` and ``claim``.

``collect`` brings partners' files to ``inbox/``; ``claim`` moves them on to ``work/<D>/in/``.
"""

from __future__ import annotations

from clearing.errors import TransportError
from clearing.ingest.claim import claim_inputs
from clearing.ingest.classify import INPUT_KINDS, input_kind
from clearing.ingest.collect import collect_partners
from clearing.ingest.fates import day_fates
from clearing.stage import StageContext, StepResult, stage

__all__ = ["claim", "collect"]


@stage("collect")
def collect(ctx: StageContext) -> StepResult:
    """Fetch every configured partner's new files; an unreachable partner is a problem (3)."""
    if ctx.sources is None:
        return StepResult("collect", {"partners": 0}, status="skipped")
    got = collect_partners(ctx.workdir.root, ctx.sources)
    if not got.partners:
        return StepResult("collect", {"partners": 0}, status="skipped")
    return StepResult(
        "collect",
        {
            "partners": len(got.partners),
            "fetched": len(got.fetched),
            "unreachable": [code for code, _ in got.unreachable],
        },
        status="warning" if got.unreachable else "ok",
        problems=[f"collect: {code}: {exc}" for code, exc in got.unreachable],
        exit_code=TransportError.exit_code,
        value=got,
    )


@stage("claim")
def claim(ctx: StageContext) -> StepResult:
    """Claim the day's partner files; count them by kind (and the entries quarantined)."""
    inputs = claim_inputs(ctx.workdir, ctx.date)
    kinds = [input_kind(p) for p in inputs]
    detail: dict[str, int] = {k: kinds.count(k) for k in INPUT_KINDS}
    set_aside = [f for f in day_fates(ctx.workdir, ctx.date) if f.stage == "claim"]
    if set_aside:
        detail["quarantined"] = len(set_aside)
    return StepResult("claim", detail, inputs=inputs)
