"""``clearing validate``: one file on its own, or every input of a date (the validate stage).

The one-file check is :func:`clearing.returns.single.validate_file`; the day is
:func:`clearing.cli.stages.validate_day`. Both print the same text per file
(:func:`render_validation`).
"""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    OptionalWorkDirOpt,
    day_or_today,
    examples,
    handles_errors,
    read_input,
    reads_workdir_unless,
)
from clearing.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from clearing.validate.stage import CiberResult, FileResult

__all__ = ["app", "identified", "render_validation", "validate"]

app = typer.Typer()


@app.command(
    epilog=examples(
        "clearing validate CDFRAF9HKGCL01506",
        "clearing validate CIBER_04172_60099_20261122_951.dat --json",
        "clearing validate CDFRAF9HKGCL01506 -w /srv/clearing --rap-dir /tmp/rap",
        "clearing validate -w /srv/clearing --date 2026-11-22",
    ),
)
@handles_errors
@reads_workdir_unless(lambda kw: kw.get("file") is None)  # without FILE: records
def validate(
    file: Annotated[
        Path | None,
        typer.Argument(help="a TAP, Notification or CIBER file (omit: every input of --date)"),
    ] = None,
    workdir: OptionalWorkDirOpt = None,
    date: OptionalDateOpt = None,
    as_json: JsonOpt = False,
    rap_dir: Annotated[
        Path | None, typer.Option("--rap-dir", help="write the RAP for FILE here (if any)")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Validate TAP (TD.57) and CIBER files: findings, and the RAP or CIBER return to send.

    With FILE: that file (TAP, Notification or CIBER), against the work folder's history
    when --workdir is given (nothing is recorded); --rap-dir writes its RAP. Without FILE:
    every input of --date in the work folder, recorded (the nightly's validate stage: RAPs
    to `out/rap/`, CIBER returns to `out/ciber_returns/`). Exit code 1 when a file is
    fatally rejected.
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
    summary = identified(result)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(render_validation(summary))
    if result.fatal:
        raise typer.Exit(ExitCode.DATA)


def identified(result: FileResult | CiberResult) -> dict[str, Any]:
    """A file's validation summary (a CIBER file's with its parties and batch numbers)."""
    return result.summary()


def render_validation(s: dict[str, Any]) -> str:
    """One file's validation summary as text: the verdict, the identity, every finding.

    What the file does not say (the parties of an unreadable file) is left out, not shown as
    ``None``.
    """
    c = s["counts"]
    verdict = "FATAL: whole file returned" if s["fatal"] else s["outcome"]
    if s["outcome"] == "copy":
        verdict = f"copy of {s['copy_of']}: ignored"
    head = [s["file"], s["kind"]]
    if s["sender"] is not None or s["recipient"] is not None:
        head.append(f"{s['sender'] or '?'} -> {s['recipient'] or '?'}")
    if s["file_sequence_number"] is not None:
        head.append(f"FSN {s['file_sequence_number']}")
    if s.get("batches"):
        head.append(f"batch{'es' if len(s['batches']) > 1 else ''} {', '.join(s['batches'])}")
    lines = [
        "  ".join([*head, verdict]),
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
