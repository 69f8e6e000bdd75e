"""``clearing returns list|resubmit|write-off``: partners' returns about our TAP-out, worked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from clearing.cli._common import (
    REASON_HELP,
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    PartnerOpt,
    WorkDirOpt,
    day_or_today,
    examples,
    handles_errors,
    parse_date,
    reads_workdir,
)

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.store import Store

__all__ = ["app", "list_returns", "resubmit", "write_off"]

app = typer.Typer(help="Partners' returns (RAP) about our TAP-out: list, resubmit, write off.")

RapOpt = Annotated[str | None, typer.Option("--rap", help="a partner's RAP file name")]
EventOpt = Annotated[
    list[int] | None,
    typer.Option("--event", help="event index in that RAP (repeatable; default all)"),
]


def _store(workdir: Path, *, read_only: bool = False) -> Store:
    from clearing.config import WorkDir
    from clearing.errors import ConfigError
    from clearing.store import open_store

    wd = WorkDir(workdir)
    if not wd.db.exists():
        msg = f"no state in `{workdir}` yet: run `clearing nightly --workdir {workdir}` first"
        raise ConfigError(msg)
    return open_store(wd.db, read_only=read_only)


@app.command(
    "list",
    epilog=examples(
        "clearing returns list -w /srv/clearing --status to_correct",
        "clearing returns list -w /srv/clearing --partner FRAF9 --json",
    ),
)
@handles_errors
@reads_workdir
def list_returns(
    workdir: WorkDirOpt,
    as_json: JsonOpt = False,
    status: Annotated[
        str | None, typer.Option("--status", help="to_correct | resubmitted | written_off")
    ] = None,
    partner: PartnerOpt = None,
    date: OptionalDateOpt = None,
    debug: DebugOpt = False,
) -> None:
    """One line per returned event or file, with its status and age (days, to --date/today)."""
    from clearing.returns.worked import as_row, items

    today = day_or_today(date)
    with _store(workdir, read_only=True) as state:
        rows = [as_row(i, today) for i in items(state, status=status, partner=partner)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(
        f"{'rap_file':<19}{'kind':<8}{'partner':<8}{'FSN':<6}{'event':>6} {'imsi':<16}"
        f"{'start':<20}{'errors':<8}{'amount':>14} {'status':<12}{'age':>4}"
    )
    for r in rows:
        amount = "" if r["amount"] is None else f"{r['amount']} {r['currency']}"
        event = "" if r["event_index"] is None else r["event_index"]
        typer.echo(
            f"{r['rap_file']:<19}{r['kind']:<8}{r['partner'] or '':<8}"
            f"{r['file_sequence_number'] or '':<6}{event:>6} {r['imsi'] or '':<16}"
            f"{r['start'] or '':<20}{r['error_codes'] or '':<8}{amount:>14} "
            f"{r['status']:<12}{r['age_days']:>4}"
        )


@app.command(
    "resubmit",
    epilog=examples(
        "clearing returns resubmit -w /srv/clearing --rap RCFRAF9HKGCL00001 \\",
        "    --event 4 --event 5",
        "clearing returns resubmit -w /srv/clearing --all --date 2026-11-23",
    ),
)
@handles_errors
def resubmit(
    workdir: WorkDirOpt,
    every: Annotated[bool, typer.Option("--all", help="every item to correct")] = False,
    rap: RapOpt = None,
    event: EventOpt = None,
    date: OptionalDateOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Resubmit returned events (re-rated, in the next TAP-out, with rapFileSequenceNumber).

    ``--date``: the processing date whose TAP-out carries them (default: the next nightly).
    A fatally returned file is sent again under its own FSN. Only the request is recorded here:
    the rating and outbound stages of that night carry it out.
    """
    from clearing.returns.worked import resubmit as record

    for_date = None if date is None else parse_date(date)
    with _store(workdir) as state:
        done = record(state, rap=rap, events=event or (), every=every, for_date=for_date)
    when = "the next nightly" if for_date is None else f"the nightly of {for_date}"
    typer.echo(f"{len(done)} return(s) to resubmit in {when}")


@app.command(
    "write-off",
    epilog=examples(
        "clearing returns write-off -w /srv/clearing --rap RCFRAF9HKGCL00001 \\",
        '    --event 4 --reason "IMSI unknown to the partner"',
        "clearing returns write-off -w /srv/clearing --all-older-than 90 \\",
        '    --reason "older than 90 days"',
    ),
)
@handles_errors
def write_off(
    workdir: WorkDirOpt,
    reason: Annotated[str, typer.Option("--reason", help=REASON_HELP)],
    rap: RapOpt = None,
    event: EventOpt = None,
    older_than: Annotated[
        int | None,
        typer.Option("--all-older-than", help="every item to correct older than DAYS days"),
    ] = None,
    date: OptionalDateOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write returned events or files off as a loss (their amount is recorded).

    ``--date``: the date of the write-off (default today): ages are counted to it and the
    monthly workbook of its month lists the write-off.
    """
    from clearing.returns.worked import write_off as record

    with _store(workdir) as state:
        done = record(
            state,
            reason=reason,
            today=day_or_today(date),
            rap=rap,
            events=event or (),
            older_than=older_than,
        )
    typer.echo(f"{len(done)} return(s) written off")
