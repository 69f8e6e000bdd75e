"""``clearing inspect FILE``: what a file is and holds, without validating it."""

from __future__ import annotations

import json
import sys
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import Annotated

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    examples,
    handles_errors,
    read_input,
)

__all__ = ["app", "inspect"]

app = typer.Typer()


@app.command(
    epilog=examples(
        "clearing inspect CDFRAF9HKGCL01506",
        "clearing inspect CIBER_04172_60099_20261122_951.dat --json",
        "clearing inspect CDFRAF9HKGCL01506 --csv > CDFRAF9HKGCL01506.csv",
    ),
)
@handles_errors
def inspect(
    file: Annotated[Path, typer.Argument(help="TAP, Notification, RAP, ACK, NRT or CIBER file")],
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="the event table as CSV")] = False,
    events: Annotated[bool, typer.Option("--events", help="one JSON line per event")] = False,
    debug: DebugOpt = False,
) -> None:
    """Summarise a file: kind, version, parties, FSN, event counts, audit totals.

    Reads the file only (no work folder, nothing validated or recorded): TAP, Notification,
    RAP, ACK, NRT or CIBER. --csv and --events print the event table instead. Exit code 1
    when the file cannot be read as any of them.
    """
    from clearing import inspect as inspect_mod

    data = read_input(file)
    if as_csv or events:
        table = inspect_mod.event_table(data, file=file.name)
        if as_csv:
            inspect_mod.write_csv(table, sys.stdout)
        else:
            for row in inspect_mod.event_rows(table):
                typer.echo(json.dumps(row, ensure_ascii=False))
        return
    summary = inspect_mod.summarize(data, file=file.name)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(inspect_mod.render_text(summary))
