"""The transport stages of a run: ``outbox`` (register the day's files) and ``send``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clearing.errors import ClearingError, TransportError
from clearing.names import CiberReturnName
from clearing.stage import StageContext, StepResult, stage
from clearing.transport.outbox import Outbox
from clearing.transport.settings import Transports

if TYPE_CHECKING:
    from datetime import date

    from clearing import config

__all__ = ["due_files", "outbox", "register_day", "resend_missing", "send"]


def due_files(wd: config.WorkDir, day: date) -> list[tuple[Path, str, str]]:
    """The files of ``day`` for partners, from the state: ``(path, partner, kind)``.

    RAPs (``rap_out``), CIBER returns (``files.rap_file`` of CIBER inputs), ACKs of partners'
    RAPs (``raps_in.ack_file``), TAP-out / Notifications / CIBER-out (``outbound_files``), and
    the fatally returned TAP-out files written again for ``day`` (a resubmission, under their
    own name: the outbox registers them in place of the returned version).
    """
    from clearing.store import open_store

    found: list[tuple[Path, str, str]] = []
    with open_store(wd.db) as store:
        for name, partner in store.register.raps_of(day):
            found.append((wd.out / "rap" / name, partner, "rap"))
        for name in store.register.ciber_returns_of(day):
            ret = CiberReturnName.parse(name)
            partner = ret.recipient if ret else ""
            found.append((wd.out / "ciber_returns" / name, partner, "ciber_return"))
        for name, partner in store.returns_in.acks_written(day):
            found.append((wd.out / "ack" / name, partner, "ack"))
        for partner, kind, path in store.outbound.files_of(day):
            found.append((Path(path), partner, kind))
        for item in store.returns_in.fatal_resends(day):
            if item.out_file is None or item.tap_date is None or item.tap_date == day:
                continue
            found += [
                (Path(path), partner, kind)
                for partner, kind, path in store.outbound.files_of(item.tap_date)
                if Path(path).name == item.out_file and partner == item.partner
            ]
    return sorted(found, key=lambda t: t[0].name)


def register_day(wd: config.WorkDir, day: date) -> list[Path]:
    """Put the files of ``day`` in the outbox (the ``outbox`` stage); return their paths.

    Raises:
        LedgerError: a name already registered with other bytes (never sent twice with
            different bytes: the analyst decides).
    """
    box = Outbox(wd.db)
    files = due_files(wd, day)
    for path, partner, kind in files:
        box.register(path, partner, kind)
    return [p for p, _, _ in files]


@stage("outbox")
def outbox(ctx: StageContext) -> StepResult:
    """Register the day's files for sending."""
    paths = register_day(ctx.workdir, ctx.date)
    return StepResult("outbox", {"registered": len(paths)}, outputs=paths)


@stage("send")
def send(ctx: StageContext) -> StepResult:
    """Send what is due; a file not sent stays due and is a problem (3)."""
    wd = ctx.workdir
    settings = Transports(ctx.settings.transport)
    box = Outbox(wd.db)
    report = box.send_due(lambda partner: settings.transport_for(partner, wd.root))
    resent, failed = resend_missing(wd, ctx.date, box, settings)
    problems = [f"send: {name}: {error}" for name, error in (*report.failed, *failed)]
    detail = {"sent": len(report.sent), "not_sent": len(report.failed)}
    if resent or failed:
        detail["resent_missing"] = len(resent)
    return StepResult(
        "send",
        detail,
        status="warning" if problems else "ok",
        outputs=[box.get(name).local_path for name in resent],
        problems=problems,
        exit_code=TransportError.exit_code,
    )


def resend_missing(
    wd: config.WorkDir, day: date, box: Outbox, settings: Transports
) -> tuple[list[str], list[tuple[str, str]]]:
    """Answer partners' MissingReturns: each missing TAP-out of ours is sent again, same bytes.

    Only files in the outbox are sent (a name is bound to its registered bytes); the item is
    then ``resubmitted`` (once: a later night does not send it again). Returns the names sent
    and ``(name or item, error)`` of what could not be.
    """
    from clearing.store import open_store

    with open_store(wd.db) as store:
        todo = [
            i
            for i in store.returns_in.items(status="to_correct")
            if i.kind == "missing" and i.partner is not None and i.fsn is not None
        ]
        plans: list[tuple[str, int, str, list[str]]] = []
        for i in todo:
            first = int(i.fsn or 0)
            last = int(i.fsn_end) if i.fsn_end else first
            names = []
            for fsn in range(first, last + 1):
                found = store.returns_in.tap_out(str(i.partner), fsn)
                if found is not None and store.outbox.find(found[0]) is not None:
                    names.append(found[0])
            plans.append((i.rap_file, i.item, str(i.partner), names))
    sent: list[str] = []
    failed: list[tuple[str, str]] = []
    for rap_file, item, partner, names in plans:
        if not names:
            failed.append((rap_file, f"MissingReturn item {item}: no file of ours to send again"))
            continue
        try:
            with settings.transport_for(partner, wd.root) as transport:
                for name in names:
                    box.resend(name, transport)
        except ClearingError as exc:
            failed.append((rap_file, str(exc)))
            continue
        sent += names
        with open_store(wd.db) as store:
            store.returns_in.record_resend(rap_file, item, names, day)
    return sent, failed
