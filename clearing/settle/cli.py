"""``clearing settle ...`` (typer), mounted by ``clearing.cli``:

* ``clearing settle daily --workdir DIR --date YYYY-MM-DD [--run-id ID]`` — the daily
  operations workbook of a processing date;
* ``clearing settle monthly --workdir DIR --period YYYY-MM [--run-id ID]`` — the monthly
  settlement workbook (the next issue, or the latest when nothing changed).

Each prints the workbook's path. Exit codes: 0 ok, 1 an earlier stage has not run (the message
says which), 2 config or reference-data problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clearing._cli import fail, parse_date
from clearing.errors import ClearingError

__all__ = ["settle_app"]

settle_app = typer.Typer(
    help="Settlement workbooks: daily operations (per processing date), monthly settlement.",
    no_args_is_help=True,
)

WorkdirOpt = Annotated[
    Path, typer.Option("--workdir", "-w", help="work folder (config, lake, clearing.duckdb, out)")
]
RunIdOpt = Annotated[
    str | None, typer.Option("--run-id", help="run id to record on the Audit sheet")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="raise errors with a traceback")]


@settle_app.command()
def daily(
    workdir: WorkdirOpt,
    date: Annotated[str, typer.Option("--date", help="processing date YYYY-MM-DD")],
    run_id: RunIdOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the daily operations workbook of --date (out/settlement/daily/)."""
    from clearing.settle import daily_workbook

    try:
        path = daily_workbook(workdir, parse_date(date), run_id=run_id)
    except ClearingError as exc:
        fail(exc, debug)
    typer.echo(str(path))


@settle_app.command()
def monthly(
    workdir: WorkdirOpt,
    period: Annotated[str, typer.Option("--period", help="accounting period YYYY-MM")],
    run_id: RunIdOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the monthly settlement workbook of --period (out/settlement/monthly/, v1, v2...)."""
    from clearing.settle import monthly_workbook

    try:
        path = monthly_workbook(workdir, period, run_id=run_id)
    except ClearingError as exc:
        fail(exc, debug)
    typer.echo(str(path))
