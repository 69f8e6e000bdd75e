"""``clearing rate recycle``: rate held records into a night's rated rows, by hand.

Records held for missing reference data (an IOT row, an FX rate) are recycled by every nightly
``rate`` step on its own; this verb runs the rate step of one date (the next night by default)
so that, once the reference data is fixed, they go out in that date's TAP-out without waiting
for the nightly. Run it for a date not yet sent: its rated rows are written whole.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    parse_date,
)
from clearing.cli.stages import exit_on_problems, rate_dict

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = ["app", "next_night", "recycle"]

app = typer.Typer()


def next_night(workdir: Path) -> date:
    """The day after the last rated date of ``workdir`` (today when none was rated)."""
    from datetime import date as _date

    from clearing import lake
    from clearing.config import WorkDir

    rated = lake.dates(WorkDir(workdir).lake, lake.UNRATED_VISITORS)
    return rated[-1] + timedelta(days=1) if rated else _date.today()


@app.command(
    "recycle",
    epilog=examples(
        "clearing rate recycle -w /srv/clearing",
        "clearing rate recycle -w /srv/clearing --date 2026-11-23 --json",
    ),
)
@handles_errors
def recycle(
    workdir: WorkDirOpt,
    date: OptionalDateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Rate held records whose reference data is fixed into --date's rated rows and TAP-out.

    --date defaults to the day after the last rated date: run it for a date not yet sent.
    Records that still cannot be priced stay held (listed; exit code 1).
    """
    from clearing import config
    from clearing.outbound import write_day
    from clearing.rating import rate_day
    from clearing.store import open_store

    day = parse_date(date) if date is not None else next_night(workdir)
    settings = config.load(workdir)
    summary = rate_day(workdir, day, settings=settings)
    outbound = write_day(workdir, day, settings=settings)
    out = rate_dict(summary, outbound)
    wd = config.WorkDir(workdir)
    pending = []
    if wd.db.is_file():
        with open_store(wd.db, read_only=True) as store:
            pending = store.held.pending()
    out["still_held"] = [
        {
            "kind": r.kind,
            "origin_date": r.origin_date.isoformat(),
            "file": r.file,
            "position": r.position,
            "partner": r.partner,
            "service": r.service,
            "reason": r.reason,
        }
        for r in pending
    ]
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(
            f"recycle {day}: {summary.recycled} held record(s) rated into the rated rows of "
            f"{day}, {summary.payable_released} held payable(s) converted; "
            f"{len(pending)} still held"
        )
        for f in out["outbound"]:
            typer.echo(f"  {f['file']}: {f['events']} events")
    exit_on_problems(out)
