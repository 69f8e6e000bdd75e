"""The stages of the returns package.

* ``validate``: the day's claimed TAP and CIBER files validated (:mod:`clearing.validate`) with
  their returns written by this package's policy (:data:`clearing.returns.writer.WRITER`): the
  stage lives here because validate decides nothing about returns and does not import them;
* ``receive``: partners' RAPs (→ our ACK) and ACKs (→ our RAP acknowledged).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from clearing.errors import ClearingError
from clearing.ingest import Fate, quarantine, record_fates
from clearing.names import RapName
from clearing.stage import StageContext, StepResult, stage

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing import config

__all__ = ["receive", "receive_day", "validate"]


def receive_day(
    wd: config.WorkDir, day: date, *, settings: config.Settings | None = None
) -> tuple[dict[str, int], list[str]]:
    """Partners' RAPs and ACKs among the inputs of ``day`` (the ``receive`` stage).

    A RAP about our TAP-out: its ACK is written to ``out/ack/`` and its returns recorded
    (``returns_in``). An ACK of one of our RAPs: recorded, and the RAP's outbox entry becomes
    ``acknowledged``. A file that cannot be decoded, or whose header sender is not the sender
    of its name and of the channel that delivered it, is quarantined (a copy in
    ``failed/<D>/``). Returns the counts and the problems (each quarantined file among them).

    Args:
        wd: the work folder.
        day: the processing date (its inputs are claimed).
        settings: the loaded ``clearing.toml`` (read when not given).
    """
    counts, problems, set_aside = _receive(wd, day, settings or wd.settings())
    problems += [f"receive: quarantined `{f.name}` ({f.reason}): {f.path}" for f in set_aside]
    return counts, problems


def _receive(
    wd: config.WorkDir, day: date, settings: config.Settings
) -> tuple[dict[str, int], list[str], list[Fate]]:
    """The receive stage: counts, problems, and the files quarantined (their fates)."""
    from clearing.ingest import claim_inputs, delivery_channels, input_kind, name_sender
    from clearing.returns import incoming
    from clearing.store import OutboxState, open_store

    files = [p for p in claim_inputs(wd, day) if input_kind(p) in ("rap", "ack")]
    channels = delivery_channels(wd)
    counts = {"raps": 0, "acks": 0}
    problems: list[str] = []
    fates: list[Fate] = []
    aside: list[tuple[Path, str | None, str, str]] = []
    with open_store(wd.db) as state:
        for path in files:
            data = path.read_bytes()
            channel = channels.get((path.name, hashlib.sha256(data).hexdigest()))
            named = name_sender(path.name) or ""
            try:
                _kind, header = incoming.header_sender(data, file=path.name)
            except ClearingError as exc:
                aside.append((path, channel, f"cannot be decoded: {exc}", _resend(named, path)))
                continue
            wrong = _provenance(named, header, channel, settings)
            if wrong is not None:
                aside.append((path, channel, *wrong))
                continue
            try:
                got = incoming.receive(
                    data, file=path.name, out_dir=wd.out / "ack", day=day, state=state
                )
            except ClearingError as exc:
                aside.append((path, channel, f"cannot be read: {exc}", _resend(named, path)))
                continue
            fates.append(Fate(path.name, channel, "processed", "receive", path=_rel(wd, path)))
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
    # set aside once the state is closed: a copy, so a re-run of the date decides the same
    set_aside = [
        quarantine(wd, day, path, partner=ch, reason=why, hint=hint, stage="receive", keep=True)
        for path, ch, why, hint in aside
    ]
    record_fates(wd, day, "receive", [*fates, *set_aside])
    if set_aside:
        counts["quarantined"] = len(set_aside)
    return counts, problems, set_aside


def _resend(sender: str, path: Path) -> str:
    return f"ask {sender or 'the sender'} to send `{path.name}` again"


def _rel(wd: config.WorkDir, path: Path) -> str:
    try:
        return path.resolve().relative_to(wd.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _provenance(
    named: str, header: str, channel: str | None, settings: config.Settings
) -> tuple[str, str] | None:
    """What is wrong with whose RAP / ACK it is (reason, hint), or None."""
    by = f"delivered by {channel}'s channel" if channel else "dropped into inbox/"
    if channel is not None and channel != named:
        return (
            f"delivered by {channel}'s channel, claims {named}",
            f"ask {channel} why it sent a file of {named}",
        )
    if header != named:
        return (
            f"{by}, named as {named}'s but its header sender is {header}",
            f"ask {named} to send it again with the header matching its name",
        )
    if named not in settings.partners:
        return (
            f"{named} is not a configured partner ({by}; no [partners.{named}] in clearing.toml)",
            f"if {named} is a partner, add it to clearing.toml and put the file back into inbox/",
        )
    return None


@stage("receive")
def receive(ctx: StageContext) -> StepResult:
    """The receive stage of a run: a StopReturn is a problem (1); a quarantined file an anomaly.

    The files set aside are reported by the run from their fates (not as problems here).
    """
    counts, problems, _aside = _receive(ctx.workdir, ctx.date, ctx.settings)
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
    detail = {
        "files": len(result.files) + len(result.ciber),
        "events": rec["in"],
        "accepted": rec["accepted"],
        "returned": rec["returned"],
        "duplicate": rec["duplicate"],
        "late": rec["late"],
        "fatal_files": fatal_files,
        "raps": len(result.raps),
    }
    if result.quarantined:  # set aside (their fates): the run reports them as anomalies
        detail["quarantined"] = len(result.quarantined)
    return StepResult(
        "validate",
        detail,
        outputs=[
            *result.raps,
            *(wd.out / "ciber_returns" / n for c in result.ciber for n in c.returns),
        ],
        problems=problems,
        value=rec,
    )
