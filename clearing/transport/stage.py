"""The transport stages of a run: ``outbox`` (register the day's files) and ``send``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clearing.errors import TransportError
from clearing.names import CiberReturnName
from clearing.stage import StageContext, StepResult, stage
from clearing.transport.outbox import Outbox
from clearing.transport.settings import Transports

if TYPE_CHECKING:
    from datetime import date

    from clearing import config

__all__ = ["due_files", "outbox", "register_day", "send"]


def due_files(wd: config.WorkDir, day: date) -> list[tuple[Path, str, str]]:
    """The files of ``day`` for partners, from the state: ``(path, partner, kind)``.

    RAPs (``rap_out``), CIBER returns (``files.rap_file`` of CIBER inputs), ACKs of partners'
    RAPs (``raps_in.ack_file``), TAP-out / Notifications / CIBER-out (``outbound_files``).
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
    report = Outbox(wd.db).send_due(lambda partner: settings.transport_for(partner, wd.root))
    return StepResult(
        "send",
        {"sent": len(report.sent), "not_sent": len(report.failed)},
        status="warning" if report.failed else "ok",
        problems=[f"send: {name}: {error}" for name, error in report.failed],
        exit_code=TransportError.exit_code,
    )
