"""``clearing stats``: the roaming statistics workbook of a month (or its tables as JSON)."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import Annotated

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    PeriodOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    parse_period,
    reads_workdir,
)

__all__ = ["app", "stats"]

app = typer.Typer()


@app.command(
    epilog=examples(
        "clearing stats -w /srv/clearing --period 2026-11",
        "clearing stats -w /srv/clearing --period 2026-11 --out /tmp/stats",
        "clearing stats -w /srv/clearing --period 2026-11 --json",
    ),
)
@handles_errors
@reads_workdir
def stats(
    workdir: WorkDirOpt,
    period: PeriodOpt,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="folder for the workbook (default: WORKDIR/out/stats)"),
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write the roaming statistics workbook of --period and say where it is.

    From the lake partitions of the month's processing dates only: voice calls by duration
    (0-60 s, 61-120 s, over 120 s, and finer buckets), SMS sent and received, data by visited
    country and by partner, the top 20 roamers abroad (IMSI and MSISDN masked to their last 4
    digits), usage per sub-number kind (retail bill lines per role and attribution rule) and
    inbound against outbound by processing date; outbound are our subscribers abroad (the
    partners' accepted TAP/CIBER events), inbound the visitors on our network (their CDRs).
    Each sheet has a chart beside its table and prints on A4.

    The workbook is `out/stats/stats_<HOME>_<YYYY-MM>.xlsx` (or in `--out`), written again on
    every run. `--json` prints the same tables as one JSON object (amounts as decimal strings)
    and writes the workbook too. A month without data gives a workbook that says so (exit 0).
    """
    from clearing.settle.stats import stats_json, write_stats

    path, figures = write_stats(workdir, parse_period(period), out=out)
    if as_json:
        typer.echo(json.dumps({**stats_json(figures), "workbook": str(path)}))
        return
    t = figures.tables
    calls = sum(r["out_calls"] for r in t["Call duration"])
    visitors = sum(r["in_calls"] for r in t["Call duration"])
    if figures.empty:
        typer.echo(f"no data for {figures.period}: the workbook says so, `{path}`")
        return
    typer.echo(
        f"statistics of {figures.period} ({len(figures.dates)} processing dates): "
        f"{calls} outbound and {visitors} inbound voice calls, "
        f"{len(t['Top roamers'])} top roamers; `{path}`"
    )
