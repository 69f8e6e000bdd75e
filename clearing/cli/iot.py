"""``clearing iot list|accept|dispute``: IOT breaches above the thresholds, and their decisions.

A partner's charge above its IOT by more than the configured thresholds (``[validation]
iot_breach_absolute`` / ``iot_breach_percent``, per partner overridable) is an anomaly of the
night, and its event is **held** from the payable. Someone then decides:

* ``accept``: the charge is right after all; the event is released into the payable of the
  processing date its file was received on (its settlement period does not change), so the
  daily settlement of that date and the monthly of its period include it when run again
  (``clearing settle daily|monthly``, or the nightly of that date replayed);
* ``dispute``: the charge is refused; the event stays out of the payable and is listed as
  disputed.

The decisions (who decided is the caller; when and why) are kept in ``clearing.duckdb``
(table ``iot_breaches``): a replay of the night keeps them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    PartnerOpt,
    ReasonOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    parse_date,
    reads_workdir,
)
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.store import BreachStatus, IotBreach

__all__ = ["accept", "app", "dispute", "list_breaches"]

app = typer.Typer(help="IOT breaches above the thresholds: list, accept, dispute.")

_EventSel = Annotated[
    list[int] | None,
    typer.Option("--event", help="event index in the partner's file (repeatable; default all)"),
]
_FileSel = Annotated[
    str | None, typer.Option("--file", help="only the partner's file of this name")
]
_AllOfDate = Annotated[
    str | None,
    typer.Option("--all-of-date", help="every breach of this processing date YYYY-MM-DD"),
]


def _amount(value: int | None, scale: int | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value).scaleb(-(scale or 0)):f}"


def _as_dict(b: IotBreach) -> dict[str, Any]:
    return {
        "date": b.processing_date.isoformat(),
        "partner": b.partner,
        "file": b.file,
        "event_index": b.event_index,
        "service": b.service,
        "currency": b.currency,
        "charged": _amount(b.charged, b.charge_scale),
        "expected": _amount(b.expected, b.charge_scale),
        "difference": _amount(b.difference, b.charge_scale),
        "settlement_currency": b.settlement_currency,
        "payable": _amount(b.settlement_amount, b.settlement_scale),
        "over": _amount(b.over_settlement, b.settlement_scale),
        "status": b.status,
        "decided_at": b.decided_at.isoformat(timespec="seconds") if b.decided_at else None,
        "reason": b.reason,
    }


def _breaches(workdir: Path) -> list[IotBreach]:
    from clearing.config import WorkDir
    from clearing.store import open_store

    db = WorkDir(workdir).db
    if not db.exists():
        return []
    with open_store(db, read_only=True) as store:
        return store.iot_breaches.all()


@app.command(
    "list",
    epilog=examples(
        "clearing iot list -w /srv/clearing",
        "clearing iot list -w /srv/clearing --json",
    ),
)
@handles_errors
@reads_workdir
def list_breaches(workdir: WorkDirOpt, as_json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Every IOT breach above the thresholds, with its status (held / accepted / disputed)."""
    rows = [_as_dict(b) for b in _breaches(workdir)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no IOT breach above the thresholds")
        return
    for r in rows:
        typer.echo(
            f"{r['date']}  {r['partner']:<6} {r['file']} #{r['event_index']:<6} "
            f"{r['service'] or '-':<18} charged {r['charged']} {r['currency']} "
            f"(IOT {r['expected']}), payable {r['payable']} {r['settlement_currency']}: "
            f"{r['status']}" + (f" ({r['reason']})" if r["reason"] else "")
        )


def _select(
    workdir: Path,
    date: str | None,
    partner: str | None,
    events: list[int] | None,
    file: str | None,
    all_of_date: str | None,
) -> list[IotBreach]:
    """The breaches the options name (a :class:`ConfigError` when they name none)."""
    if all_of_date is not None:
        if date is not None or partner is not None or events or file is not None:
            msg = "give either --all-of-date D, or --date D --partner P [--event I…]"
            raise ConfigError(msg)
        day = parse_date(all_of_date, "--all-of-date")
        chosen = [b for b in _breaches(workdir) if b.processing_date == day]
        what = f"on {day}"
    else:
        if date is None or partner is None:
            msg = "give --date D --partner P [--event I…] (or --all-of-date D)"
            raise ConfigError(msg)
        day = parse_date(date)
        chosen = [
            b
            for b in _breaches(workdir)
            if b.processing_date == day
            and b.partner == partner
            and (file is None or b.file == file)
        ]
        what = f"of {partner} on {day}" + (f" in {file}" if file else "")
        if events:
            missing = sorted(set(events) - {b.event_index for b in chosen})
            if missing:
                have = ", ".join(str(b.event_index) for b in chosen) or "none"
                msg = (
                    f"no IOT breach above the thresholds {what} with event index "
                    f"{', '.join(map(str, missing))} (breaches {what}: {have}); see "
                    f"`clearing iot list --workdir {workdir}`"
                )
                raise ConfigError(msg)
            chosen = [b for b in chosen if b.event_index in events]
    if not chosen:
        msg = (
            f"no IOT breach above the thresholds {what}; see "
            f"`clearing iot list --workdir {workdir}`"
        )
        raise ConfigError(msg)
    return chosen


def _decide(
    workdir: Path,
    status: BreachStatus,
    chosen: list[IotBreach],
    reason: str | None,
) -> list[IotBreach]:
    from clearing.config import WorkDir
    from clearing.store import BreachStatus, open_store

    if status == BreachStatus.DISPUTED:
        released = [b for b in chosen if b.status == BreachStatus.ACCEPTED]
        if released:
            b = released[0]
            msg = (
                f"{b.partner} {b.file} event {b.event_index} of {b.processing_date} was "
                "accepted and is in the payable: it cannot be disputed here any more (raise "
                "it with the partner and settle the difference)"
            )
            raise ConfigError(msg)
    todo = [b for b in chosen if b.status != status]
    with open_store(WorkDir(workdir).db) as store, store.transaction():
        store.iot_breaches.decide(
            [(b.processing_date, b.file, b.event_index) for b in todo], status, reason
        )
    return todo


def _report(verb: str, done: list[IotBreach], chosen: list[IotBreach], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"decided": [_as_dict(b) for b in done]}))
        return
    for b in done:
        typer.echo(
            f"{verb} {b.processing_date} {b.partner} {b.file} #{b.event_index} "
            f"({_amount(b.settlement_amount, b.settlement_scale)} {b.settlement_currency})"
        )
    if len(done) < len(chosen):
        typer.echo(f"{len(chosen) - len(done)} breach(es) were {verb} already")


@app.command(
    "accept",
    epilog=examples(
        "clearing iot accept -w /srv/clearing --date 2026-11-22 --partner FRAF9 \\",
        '    --event 3 --reason "agreed with FRAF9 by mail"',
        "clearing iot accept -w /srv/clearing --all-of-date 2026-11-22",
    ),
)
@handles_errors
def accept(
    workdir: WorkDirOpt,
    date: OptionalDateOpt = None,
    partner: PartnerOpt = None,
    event: _EventSel = None,
    file: _FileSel = None,
    all_of_date: _AllOfDate = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Release held IOT breaches into the payable of the date they were received on.

    Run the daily settlement of that date (and the monthly of its period) again to see them
    paid.
    """
    from clearing.store import BreachStatus

    chosen = _select(workdir, date, partner, event, file, all_of_date)
    done = _decide(workdir, BreachStatus.ACCEPTED, chosen, reason)
    _report("accepted", done, chosen, as_json)


@app.command(
    "dispute",
    epilog=examples(
        "clearing iot dispute -w /srv/clearing --date 2026-11-22 --partner DEUD9",
        "clearing iot dispute -w /srv/clearing --date 2026-11-22 --partner DEUD9 \\",
        '    --event 7 --event 9 --reason "above the IOT"',
    ),
)
@handles_errors
def dispute(
    workdir: WorkDirOpt,
    date: OptionalDateOpt = None,
    partner: PartnerOpt = None,
    event: _EventSel = None,
    file: _FileSel = None,
    all_of_date: _AllOfDate = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Dispute IOT breaches: their events stay out of the payable (listed as disputed).

    An accepted breach cannot be disputed any more (it is in the payable).
    """
    from clearing.store import BreachStatus

    chosen = _select(workdir, date, partner, event, file, all_of_date)
    done = _decide(workdir, BreachStatus.DISPUTED, chosen, reason)
    _report("disputed", done, chosen, as_json)
