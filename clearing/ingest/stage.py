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
    """Fetch every configured partner's new files, each entry decided on its own.

    A quarantined or refused entry is a data problem (exit 1) of that entry only, reported
    with every entry's fate at the end of the night (the run's ``entries``); an unreachable
    partner is a transport problem (exit 3). Neither stops the night.
    """
    if ctx.sources is None:
        return StepResult("collect", {"partners": 0}, status="skipped")
    got = collect_partners(ctx.workdir.root, ctx.sources, day=ctx.date, settings=ctx.settings)
    if not got.partners:
        return StepResult("collect", {"partners": 0}, status="skipped")
    detail: dict[str, object] = {
        "partners": len(got.partners),
        "fetched": len(got.fetched),
        "quarantined": len(got.quarantined),
        "refused": len(got.refused),
        "unreachable": [code for code, _ in got.unreachable],
    }
    if got.still_refused:
        detail["still_refused"] = got.still_refused
    return StepResult(
        "collect",
        detail,
        status="warning" if got.unreachable or got.problems else "ok",
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
