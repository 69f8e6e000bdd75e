"""``clearing archive``: old lake partitions and inputs into a compressed archive, compaction."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from clearing.cli._common import DebugOpt, JsonOpt, WorkDirOpt, examples, handles_errors

__all__ = ["app", "archive"]

app = typer.Typer()


@app.command(
    epilog=examples(
        "clearing archive -w /srv/clearing --before 2026-03-01",
        "clearing archive -w /srv/clearing --before 2026-03-01 --json",
        "clearing archive -w /srv/clearing --before 2026-06-01 --force",
    ),
)
@handles_errors
def archive(
    workdir: WorkDirOpt,
    before: Annotated[
        str, typer.Option("--before", help="archive processing dates before this YYYY-MM-DD")
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="archive inside the dispute period too (never the duplicate window)"
        ),
    ] = False,
    no_compact: Annotated[
        bool,
        typer.Option("--no-compact", help="leave the partitions kept as they are (no compaction)"),
    ] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Move the lake partitions and inputs of processing dates before `--before` into `archive/`.

    Every dataset of the lake goes into `archive/lake/<dataset>/month=<YYYY-MM>/<dataset>.parquet`
    (zstd; with `processing_date`, and `partner` / `start_day` where the folders said it), which
    DuckDB reads directly; the inputs (`work/<D>/`, `failed/<D>/`, the mediation CDRs) into
    `archive/inputs/<YYYY-MM>.tar.xz` (`tar -xJf` gives them back); `archive/archive.json` lists
    every archive file's SHA-256 and the rows per dataset and date. Each archive file is written
    whole and read back before anything is removed: a run cut short is finished by running it
    again. Settlement results (`out/`), the state store and `runs/` stay.

    Refused (exit code 2) for a date inside the next nights' duplicate window (the last
    processing date minus the largest `duplicate_window_days`), and, without `--force`, inside
    the dispute period (`[retention] dispute_days`, 90 by default) before it. The partitions kept
    that were written one file per input file (`events_in`, `keys_in`, `keys_ciber`) are compacted
    into one file per folder, unless `--no-compact`.

    Audit the archive with DuckDB: `SELECT count(*) FROM
    read_parquet('/srv/clearing/archive/lake/events_in/*/*.parquet', union_by_name = true)`.
    """
    from clearing.cli._common import parse_date
    from clearing.pipeline import archive as archives

    report = archives.archive(
        workdir, parse_date(before, "--before"), force=force, compact_kept=not no_compact
    )
    rows = sum(n for days in report.rows.values() for n in days.values())
    dates = sorted({d for days in report.rows.values() for d in days})
    if as_json:
        line = {
            "level": "ok",
            "event": "archive",
            "before": report.before.isoformat(),
            "dates": dates,
            "rows": report.rows,
            "inputs": report.inputs,
            "files": report.files,
            "removed": report.removed,
            "compacted": report.compacted,
        }
        typer.echo(json.dumps(line))
        return
    span = f"{dates[0]} … {dates[-1]}" if dates else "none"
    typer.echo(
        f"archived before {report.before} (dates {span}): {rows} lake rows, {report.inputs} "
        f"input files, {len(report.files)} archive files in `{workdir / archives.ARCHIVE}`; "
        f"{report.removed} partitions and inputs removed, {report.compacted} folders compacted"
    )
