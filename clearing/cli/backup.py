"""``clearing backup`` / ``clearing restore``: a work folder copied whole, checked by SHA-256."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import Annotated

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    reads_workdir,
)

__all__ = ["app", "backup", "restore"]

app = typer.Typer()


@app.command(
    epilog=examples(
        "clearing backup -w /srv/clearing --to /backup/clearing-2026-11-22",
        "clearing backup -w /srv/clearing --to /backup/clearing-2026-11-22 --json",
    ),
)
@handles_errors
@reads_workdir
def backup(
    workdir: WorkDirOpt,
    to: Annotated[Path, typer.Option("--to", help="new folder to write the backup into")],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Copy the whole work folder into a new backup folder, with each file's SHA-256.

    State store, fetch ledger, lake, reference-data history, runs and outputs, of one moment:
    the work folder's lock is held (shared) meanwhile, so no run changes it. `backup.json`,
    the list of files, is written last. Restore with `clearing restore`.
    """
    from clearing.pipeline import backup as backups

    report = backups.backup(workdir, to)
    line = {"event": "backup", "target": str(to), "files": report.files, "bytes": report.bytes}
    if as_json:
        typer.echo(json.dumps({"level": "ok", **line}))
    else:
        typer.echo(f"backup of `{workdir}` in `{to}`: {report.files} files, {report.bytes} bytes")


@app.command(
    epilog=examples(
        "clearing restore --from /backup/clearing-2026-11-22 -w /srv/clearing-new",
    ),
)
@handles_errors
def restore(
    source: Annotated[
        Path, typer.Option("--from", help="backup folder written by `clearing backup`")
    ],
    workdir: WorkDirOpt,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Make a new, empty work folder a copy of a backup; every file is checked first.

    A damaged or unfinished backup restores nothing (exit code 2, each bad file named). The
    work folder's `clearing.toml` is written last, so a restore cut short is no work folder.
    """
    from clearing.pipeline import backup as backups

    report = backups.restore(source, workdir)
    line = {"event": "restore", "workdir": str(workdir), "files": report.files}
    if as_json:
        typer.echo(json.dumps({"level": "ok", **line, "bytes": report.bytes}))
    else:
        typer.echo(f"restored `{source}` into `{workdir}`: {report.files} files")
