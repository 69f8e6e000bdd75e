"""``clearing seq status``: file sequence control (TD.57 FSN) per partner stream."""

from __future__ import annotations

import json

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    reads_workdir,
)

__all__ = ["app", "status"]

app = typer.Typer(help="File sequence control (TD.57 FSN) per partner.")


@app.command(
    "status",
    epilog=examples(
        "clearing seq status -w /srv/clearing",
        "clearing seq status -w /srv/clearing --json",
    ),
)
@handles_errors
@reads_workdir
def status(workdir: WorkDirOpt, as_json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Per partner stream: last FSN, files processed, fatal, copies, gaps, RAPs, ACKs owed."""
    from clearing.config import WorkDir
    from clearing.errors import ConfigError
    from clearing.validate.state import State

    wd = WorkDir(workdir)
    if not wd.db.exists():
        msg = f"no state in `{workdir}` yet: run `clearing validate --workdir {workdir}`"
        raise ConfigError(msg)
    with State(wd.db, read_only=True) as state:
        rows = state.sequence_status()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(
        f"{'sender':<7}{'test':<6}{'last FSN':<10}{'last date':<12}{'files':>6}{'fatal':>6}"
        f"{'copies':>7}{'gaps':>6}{'RAP FSN':>9}{'ACKs owed':>10}"
    )
    for r in rows:
        typer.echo(
            f"{r['sender']:<7}{'T' if r['test'] else 'live':<6}{r['last_fsn'] or '-':<10}"
            f"{r['last_date'] or '-':<12}{r['processed']:>6}{r['fatal']:>6}{r['copies']:>7}"
            f"{r['gaps']:>6}{r['last_rap_fsn'] or '-':>9}{r['acks_owed']:>10}"
        )
