"""``clearing validate``: one file on its own, or every input of a date (the validate stage).

The one-file check is :func:`clearing.returns.single.validate_file`; the day is
:func:`clearing.cli.stages.validate_day`. Both print the same text per file
(:func:`render_validation`).
"""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import Annotated, Any

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    OptionalWorkDirOpt,
    day_or_today,
    handles_errors,
    read_input,
    reads_workdir_unless,
)
from clearing.errors import ConfigError, ExitCode

__all__ = ["app", "render_validation", "validate"]

app = typer.Typer()


@app.command()
@handles_errors
@reads_workdir_unless(lambda kw: kw.get("file") is None)  # without FILE: records
def validate(
    file: Annotated[
        Path | None, typer.Argument(help="one TAP/Notification file (omit: a whole date)")
    ] = None,
    workdir: OptionalWorkDirOpt = None,
    date: OptionalDateOpt = None,
    as_json: JsonOpt = False,
    rap_dir: Annotated[
        Path | None, typer.Option("--rap-dir", help="write the RAP for FILE here (if any)")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Validate TAP files (TD.57): fatal / severe / warning findings, and the RAP to return.

    With FILE: that file, against the work folder's history when --workdir is given (nothing
    is recorded). Without FILE: every input of --date in the work folder, recorded (the
    nightly's validate stage). Exit code 1 when a file is fatally rejected.
    """
    from clearing.cli.stages import validate_day
    from clearing.returns.single import validate_file

    if file is None:
        if workdir is None:
            msg = "give a FILE, or --workdir and --date"
            raise ConfigError(msg)
        validate_day(workdir, day_or_today(date), as_json)
        return
    day = day_or_today(date)
    data = read_input(file)
    result = validate_file(data, file=file.name, day=day, workdir=workdir, rap_dir=rap_dir)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(render_validation(summary))
    if result.fatal:
        raise typer.Exit(ExitCode.DATA)


def render_validation(s: dict[str, Any]) -> str:
    """One file's validation summary as text: the verdict, the identity, every finding."""
    c = s["counts"]
    verdict = "FATAL: whole file returned" if s["fatal"] else s["outcome"]
    if s["outcome"] == "copy":
        verdict = f"copy of {s['copy_of']}: ignored"
    lines = [
        f"{s['file']}  {s['kind']}  {s['sender']} -> {s['recipient']}  "
        f"FSN {s['file_sequence_number']}  {verdict}",
        f"  events {c['in']} = accepted {c['accepted']} + returned {c['returned']} + "
        f"duplicate {c['duplicate']} + late {c['late']} + quarantined {c['quarantined']}",
    ]
    for f in s["findings"]:
        where = "file" if f["event_index"] is None else f"event {f['event_index']}"
        lines.append(
            f"  {f['severity']:<7} {f['context']} {f['code']} ({f['rule']}) {where}: {f['message']}"
        )
    if s.get("rap_file"):
        lines.append(f"  RAP: {s['rap_file']}")
    return "\n".join(lines)
