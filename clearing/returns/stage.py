"""The stages of the returns package.

* ``validate``: the day's claimed TAP and CIBER files validated (:mod:`clearing.validate`) with
  their returns written by this package's policy (:data:`clearing.returns.writer.WRITER`): the
  stage lives here because validate decides nothing about returns and does not import them;
* ``receive``: partners' RAPs (→ our ACK) and ACKs (→ our RAP acknowledged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearing.errors import ClearingError
from clearing.names import RapName
from clearing.stage import StageContext, StepResult, stage

if TYPE_CHECKING:
    from datetime import date

    from clearing import config

__all__ = ["receive", "receive_day", "validate"]


def receive_day(
    wd: config.WorkDir, day: date, *, settings: config.Settings | None = None
) -> tuple[dict[str, int], list[str]]:
    """Partners' RAPs and ACKs among the inputs of ``day`` (the ``receive`` stage).

    A RAP about our TAP-out: its ACK is written to ``out/ack/`` and its returns recorded
    (``returns_in``). An ACK of one of our RAPs: recorded, and the RAP's outbox entry becomes
    ``acknowledged``. Returns the counts and the problems (a file that is neither).

    Args:
        wd: the work folder.
        day: the processing date (its inputs are claimed).
        settings: the loaded ``clearing.toml`` (read when not given).
    """
    from clearing.ingest import claim_inputs, input_kind
    from clearing.returns import incoming
    from clearing.store import OutboxState, open_store

    files = [p for p in claim_inputs(wd, day) if input_kind(p) in ("rap", "ack")]
    settings = settings or wd.settings()
    counts = {"raps": 0, "acks": 0}
    problems: list[str] = []
    with open_store(wd.db) as state:
        for path in files:
            try:
                got = incoming.receive(
                    path.read_bytes(), file=path.name, out_dir=wd.out / "ack", day=day, state=state
                )
            except ClearingError as exc:
                problems.append(f"receive: {path.name}: {exc}")
                continue
            if got.kind == "rap":
                counts["raps"] += 1
                problems += [
                    f"receive: {path.name}: StopReturn from {got.sender}: its stream of our "
                    f"TAP-out stopped after FSN {last:05d}; ask the partner why"
                    for last in got.stopped_after
                ]
                continue
            counts["acks"] += 1
            name = str(RapName(got.test, settings.home.tadig, got.sender, got.rap_fsn))
            entry = state.outbox.find(name)  # None: not a RAP of ours in the outbox
            if entry is not None and entry.state == OutboxState.SENT:
                state.outbox.set_state(name, OutboxState.ACKNOWLEDGED)
    return counts, problems


@stage("receive")
def receive(ctx: StageContext) -> StepResult:
    """The receive stage of a run; a file that is neither a RAP nor an ACK is a problem (1)."""
    counts, problems = receive_day(ctx.workdir, ctx.date, settings=ctx.settings)
    return StepResult("receive", dict(counts), problems=problems)


@stage("validate")
def validate(ctx: StageContext) -> StepResult:
    """The validate stage of a run: the day's claimed TAP and CIBER files.

    Its ``value`` is the record identity of the partner events (``in``, ``accepted``, ...).
    """
    from clearing.ingest import claim_inputs, input_kind
    from clearing.returns.writer import WRITER
    from clearing.validate.stage import validate_day

    wd, day = ctx.workdir, ctx.date
    inputs = [p for p in claim_inputs(wd, day) if input_kind(p) in ("tap", "ciber")]
    result = validate_day(wd, day, inputs, WRITER, settings=ctx.settings)
    problems = [
        f"validate: {f.file} rejected (fatal), returned in a RAP" for f in result.files if f.fatal
    ]
    problems += [
        f"validate: {c.file}: batch rejected, see the CIBER return" for c in result.ciber if c.fatal
    ]
    fatal_files = len(problems)
    # a CIBER batch sequence gap: batches of the pair never came (an anomaly, exit 1)
    problems += [f"validate: {c.file}: {gap}" for c in result.ciber for gap in c.gaps]
    rec = result.reconciliation()
    return StepResult(
        "validate",
        {
            "files": len(result.files) + len(result.ciber),
            "events": rec["in"],
            "accepted": rec["accepted"],
            "returned": rec["returned"],
            "duplicate": rec["duplicate"],
            "late": rec["late"],
            "fatal_files": fatal_files,
            "raps": len(result.raps),
        },
        outputs=[
            *result.raps,
            *(wd.out / "ciber_returns" / n for c in result.ciber for n in c.returns),
        ],
        problems=problems,
        value=rec,
    )
