"""``clearing find``: one subscriber's events across processing dates (:mod:`clearing.lookup`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    not_found,
    parse_date,
    reads_workdir,
)

if TYPE_CHECKING:
    from clearing.lookup import Found, Lookup

__all__ = ["app", "find"]

app = typer.Typer()

_FROM_HELP = (
    "first processing date YYYY-MM-DD, inclusive (default: the 31st processing date of the "
    "lake back from --to)"
)
_TO_HELP = "last processing date YYYY-MM-DD, inclusive (default: the last of the lake)"


def _row(e: Found) -> str:
    start = e.start.strftime("%Y-%m-%d %H:%M:%S") if e.start else "-"
    where = e.extra.get("event_index", e.extra.get("line"))
    amount = "" if e.amount is None else f"{e.amount} {e.currency or ''}".strip()
    units = "" if e.units is None else str(e.units)
    return (
        f"{start:<20}{e.kind:<10}{e.status:<11}{e.partner or '-':<8}{e.file or '-':<36}"
        f"{'' if where is None else where:>6} {e.service or '-':<22}{units:>10} {amount:>16}"
        f"  {e.processing_date}"
    )


def _say(found: Lookup) -> str:
    who = f"msisdn {found.msisdn}" if found.msisdn else f"imsi {found.imsis[0]}"
    if found.msisdn and found.imsis:
        who += f" (card{'s' if len(found.imsis) > 1 else ''} {', '.join(found.imsis)})"
    if not found.dates:
        return f"{who}: no processing dates in that range"
    return f"{who}, processing dates {found.dates[0]} … {found.dates[-1]} ({len(found.dates)})"


@app.command(
    epilog=examples(
        "clearing find -w /srv/clearing --imsi 454990001007919",
        "clearing find -w /srv/clearing --msisdn 85288892149 \\",
        "    --from 2026-11-01 --to 2026-11-30",
        "clearing find -w /srv/clearing --imsi 454990001007919 --json",
    ),
)
@handles_errors
@reads_workdir
def find(
    workdir: WorkDirOpt,
    imsi: Annotated[str | None, typer.Option("--imsi", help="the card's IMSI")] = None,
    msisdn: Annotated[
        str | None,
        typer.Option(
            "--msisdn",
            help="a number: its cards (rates sub_numbers) and the events carrying it",
        ),
    ] = None,
    first: Annotated[str | None, typer.Option("--from", help=_FROM_HELP)] = None,
    last: Annotated[str | None, typer.Option("--to", help=_TO_HELP)] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List one subscriber's events across processing dates, by start time.

    Give `--imsi` or `--msisdn` (one of them). Three kinds of event: `received` (a partner's
    TAP-in / CIBER-in event of the IMSI with its fate: accepted, duplicate, returned…),
    `retail` (the card's rated retail bill line: `rated`, or `none` when no sub-number took
    it) and `visitor` (a foreign visitor's CDR on our network: rated, unrated or held).
    `--msisdn` finds the cards the number belongs to in the retail reference data
    (`rates/` sub_numbers) and the events whose own MSISDN is that number.

    `--from` / `--to` are processing dates, inclusive; without them the last 31 processing
    dates present in the lake are read (only the partitions of those dates are read).
    Archived dates (`clearing archive`) are not in the lake any more.

    Prints a line per event and the totals (events per kind, retail amount per currency),
    then how to explain a retail line (its id is `date/file/#` of the row);
    `--json` prints one JSON object per event: `kind`, `start` (ISO 8601, UTC), `local_start`
    (at the event's own offset), `processing_date`, `partner`, `file`, `status`, `imsi`,
    `msisdn`, `service`, `units`, `amount` (a decimal string), `currency` and what identifies
    it (`event_index`, `record_id`…). Exit code 1 when nothing is found.
    """
    from clearing.lookup import find as look_up

    found = look_up(
        workdir,
        imsi=imsi,
        msisdn=msisdn,
        first=None if first is None else parse_date(first, "--from"),
        last=None if last is None else parse_date(last, "--to"),
    )
    if not found.events:
        msg = f"nothing found: {_say(found)}"
        raise not_found(msg, as_json=as_json)
    if as_json:
        for e in found.events:
            typer.echo(json.dumps(e.as_dict()))
        return
    typer.echo(_say(found))
    typer.echo(
        f"{'start (UTC)':<20}{'kind':<10}{'status':<11}{'partner':<8}{'file':<36}{'#':>6} "
        f"{'service':<22}{'units':>10} {'amount':>16}  date"
    )
    for e in found.events:
        typer.echo(_row(e))
    counts = ", ".join(f"{n} {kind}" for kind, n in found.counts().items())
    amounts = ", ".join(f"{a} {c}" for c, a in sorted(found.retail_amounts().items()))
    typer.echo(f"{len(found.events)} events: {counts}; retail amount: {amounts or 'none'}")
    rated = [e for e in found.events if e.kind == "retail" and e.status == "rated"]
    if rated:
        typer.echo(
            "why a retail line costs what it costs: clearing retail explain -w W --line "
            f"DATE/FILE/# (e.g. {rated[0].extra['line_id']})"
        )
