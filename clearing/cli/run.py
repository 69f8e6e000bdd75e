"""``clearing nightly``, ``monthly`` and ``backfill``: the runs of the pipeline.

Each prints the run's summary (or, with ``--json``, JSON lines and the manifest) and exits with
the run's exit code.
"""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import TYPE_CHECKING, Annotated

import typer

from clearing.cli._common import (
    DateOpt,
    DebugOpt,
    JsonOpt,
    PeriodOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    parse_date,
    parse_period,
)
from clearing.log import json_line

if TYPE_CHECKING:
    from datetime import date

    from clearing.pipeline.run import Run
    from clearing.pipeline.runlog import RunLog

__all__ = ["app", "backfill", "monthly", "nightly"]

app = typer.Typer()

_NO_SEND = "skip the send stage (what is due stays due)"


def _log(as_json: bool) -> RunLog:
    from clearing.pipeline.runlog import ConsoleLog, JsonLog

    # no stream of their own: both go through the one log handler (clearing.log)
    return JsonLog() if as_json else ConsoleLog()


def _report(run: Run, as_json: bool) -> int:
    from clearing.pipeline.summary import summary_of, write_summaries

    summary = summary_of(run)
    text, _html = write_summaries(run, summary)
    if as_json:
        manifest = run.manifest(hashes=False)
        typer.echo(json_line({"event": "manifest", "level": manifest["status"], **manifest}))
    else:
        typer.echo(text)
    return run.exit_code


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


@app.command(
    epilog=examples(
        "clearing nightly -w /srv/clearing --date 2026-11-22",
        "clearing nightly -w /srv/clearing --date 2026-11-22 --no-collect --no-send",
        "CLEARING_WORKDIR=/srv/clearing clearing nightly --date 2026-11-22 --json",
    ),
)
@handles_errors
def nightly(
    workdir: WorkDirOpt,
    date: DateOpt,
    as_json: JsonOpt = False,
    no_collect: Annotated[
        bool, typer.Option("--no-collect", help="skip the collect stage")
    ] = False,
    no_send: Annotated[bool, typer.Option("--no-send", help=_NO_SEND)] = False,
    debug: DebugOpt = False,
) -> None:
    """Run the whole night of processing date --date.

    Collect → validate → rate → returns + TAP-out → send → daily settlement, in the work
    folder's lock. Writes `runs/<run-id>/manifest.json` and prints the run's summary (with
    --json: one JSON object per line, the manifest last). A date run again gives the same
    bytes. Exit code: 0 ok, 1 data, 2 config, 3 transport, 4 crash.
    """
    from clearing.pipeline.nightly import NightlyOptions, run_nightly

    options = NightlyOptions(collect=not no_collect, send=not no_send)
    run = run_nightly(workdir, parse_date(date), log=_log(as_json), options=options)
    _exit(_report(run, as_json))


@app.command(
    epilog=examples(
        "clearing monthly -w /srv/clearing --period 2026-11",
        "clearing monthly -w /srv/clearing --period 2026-11 --json",
    ),
)
@handles_errors
def monthly(
    workdir: WorkDirOpt,
    period: PeriodOpt,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The monthly close of --period: rerate (delta report), settlement workbook, summary.

    The workbook goes to `out/settlement/monthly/` (`_v1`; a re-issue after a change `_v2`:
    an issued workbook is never overwritten).
    """
    from clearing.pipeline.monthly import run_monthly

    run = run_monthly(workdir, parse_period(period), log=_log(as_json))
    _exit(_report(run, as_json))


@app.command(
    epilog=examples(
        "clearing backfill -w /srv/clearing --from 2026-11-20 --to 2026-11-22 \\",
        "    --dry-run",
        "clearing backfill -w /srv/clearing --from 2026-11-01 --to 2026-11-30 \\",
        "    --no-send --json",
    ),
)
@handles_errors
def backfill(
    workdir: WorkDirOpt,
    start: Annotated[str, typer.Option("--from", help="first processing date YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last processing date YYYY-MM-DD")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the dates and their inputs, change nothing")
    ] = False,
    no_send: Annotated[bool, typer.Option("--no-send", help=_NO_SEND)] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the nightly stages (no collect) for every date from --from to --to, in order.

    --dry-run lists what each date would read and changes nothing. The exit code is the
    worst of the nights'.
    """
    from clearing import config
    from clearing.pipeline.nightly import backfill_days, run_backfill

    days = backfill_days(parse_date(start, "--from"), parse_date(end, "--to"))
    config.WorkDir(workdir).settings()
    if dry_run:
        _dry_run(workdir, days, as_json)
        return
    runs = run_backfill(workdir, days[0], days[-1], log=_log(as_json), send=not no_send)
    worst = 0
    for one in runs:
        code = _report(one, as_json)
        worst = code if code and (worst == 0 or code > worst) else worst
    _exit(worst)


def _dry_run(workdir: Path, days: list[date], as_json: bool) -> None:
    """What a backfill of ``days`` would claim, without claiming it."""
    from clearing import config
    from clearing.ingest import claim_inputs, is_claimed, waiting
    from clearing.names import printable_name

    wd = config.WorkDir(workdir)
    for i, day in enumerate(days):
        claimed = is_claimed(wd, day)
        names = [p.name for p in claim_inputs(wd, day, dry_run=True)] if claimed or i == 0 else []
        # what the first claim would set aside into failed/<D>/ (with the reason it would give)
        refused = [
            (printable_name(w.path.name), w.verdict.reason)
            for w in (waiting(wd, day) if i == 0 and not claimed else [])
            if not w.taken
        ]
        if claimed:
            what = f"re-run with its {len(names)} claimed file(s)"
        elif i == 0:
            what = f"first run: would claim {len(names)} file(s) waiting in inbox/"
            if refused:
                what += f"; would quarantine {len(refused)}: " + "; ".join(
                    f"`{n}` ({r})" for n, r in refused
                )
        else:
            what = "first run: no partner files (inbox claimed by an earlier date)"
        cdrs = sorted(p.name for p in (wd.inbox / "cdr").glob(f"*{day:%Y%m%d}*"))
        if as_json:
            line: dict[str, object] = {"date": day.isoformat(), "files": names, "cdr_files": cdrs}
            if refused:
                line["quarantine"] = [{"name": n, "reason": r} for n, r in refused]
            typer.echo(json.dumps(line))
        else:
            typer.echo(f"{day}: {what}; {len(cdrs)} CDR file(s)")
