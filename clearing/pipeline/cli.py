"""The run commands (typer), mounted at the top of ``clearing`` by :mod:`clearing.cli`.

``nightly``, ``monthly`` and ``backfill`` run the pipeline; ``collect``, ``receive``,
``retail``, ``outbox``, ``send`` and ``resend`` are stages of their own (``validate``,
``rate`` and ``settle`` live with their packages). Exit codes: 0 ok, 1 data problem, 2 config
problem, 3 transport problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing._cli import parse_date, parse_period
from clearing.errors import ClearingError

if TYPE_CHECKING:
    from collections.abc import Callable

    from clearing.pipeline.run import Run
    from clearing.pipeline.runlog import RunLog

__all__ = ["register"]

Workdir = Annotated[
    Path, typer.Option("--workdir", "-w", help="work folder (clearing.toml, inbox, lake, out)")
]
DateOpt = Annotated[str, typer.Option("--date", help="processing date YYYY-MM-DD")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="JSON lines on stdout (for machines), no progress bar")
]
Debug = Annotated[bool, typer.Option("--debug", help="raise errors with a traceback")]


def _guard(debug: bool, action: Callable[[], int | None]) -> None:
    try:
        code = action()
    except ClearingError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    if code:
        raise typer.Exit(code)


def _log(as_json: bool) -> RunLog:
    from clearing.pipeline.runlog import ConsoleLog, JsonLog

    return JsonLog(sys.stdout) if as_json else ConsoleLog()


def _report(run: Run, as_json: bool) -> int:
    from clearing.pipeline.summary import summary_of, write_summaries

    summary = summary_of(run)
    text, _html = write_summaries(run, summary)
    if as_json:
        typer.echo(json.dumps({"event": "manifest", **run.manifest(hashes=False)}, default=str))
    else:
        typer.echo(text)
    return run.exit_code


def nightly(
    workdir: Workdir,
    date: DateOpt,
    as_json: JsonOpt = False,
    no_collect: Annotated[
        bool, typer.Option("--no-collect", help="skip the collect stage")
    ] = False,
    no_send: Annotated[bool, typer.Option("--no-send", help="skip the send stage")] = False,
    debug: Debug = False,
) -> None:
    """Run the whole night for --date: collect → validate → rate → returns + TAP-out → send →
    daily settlement. Writes runs/<run-id>/manifest.json."""
    from clearing.pipeline.nightly import NightlyOptions, run_nightly

    def act() -> int:
        run = run_nightly(
            workdir,
            parse_date(date),
            log=_log(as_json),
            options=NightlyOptions(collect=not no_collect, send=not no_send),
        )
        return _report(run, as_json)

    _guard(debug, act)


def backfill(
    workdir: Workdir,
    start: Annotated[str, typer.Option("--from", help="first processing date YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last processing date YYYY-MM-DD")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the dates and their inputs, change nothing")
    ] = False,
    no_send: Annotated[bool, typer.Option("--no-send", help="do not send what is due")] = False,
    as_json: JsonOpt = False,
    debug: Debug = False,
) -> None:
    """Run the nightly stages (no collect) for every date from --from to --to, in order."""
    from clearing import config
    from clearing.ingest import claim_inputs, is_claimed
    from clearing.pipeline.nightly import backfill_days, run_backfill

    def act() -> int:
        days = backfill_days(parse_date(start, "--from"), parse_date(end, "--to"))
        wd = config.WorkDir(workdir)
        wd.settings()
        if dry_run:
            for i, day in enumerate(days):
                claimed = is_claimed(wd, day)
                names = (
                    [p.name for p in claim_inputs(wd, day, dry_run=True)]
                    if claimed or i == 0
                    else []
                )
                if claimed:
                    what = f"re-run with its {len(names)} claimed file(s)"
                elif i == 0:
                    what = f"first run: would claim {len(names)} file(s) waiting in inbox/"
                else:
                    what = "first run: no partner files (inbox claimed by an earlier date)"
                cdrs = sorted(p.name for p in (wd.inbox / "cdr").glob(f"*{day:%Y%m%d}*"))
                if as_json:
                    typer.echo(
                        json.dumps({"date": day.isoformat(), "files": names, "cdr_files": cdrs})
                    )
                else:
                    typer.echo(f"{day}: {what}; {len(cdrs)} CDR file(s)")
            return 0
        runs = run_backfill(workdir, days[0], days[-1], log=_log(as_json), send=not no_send)
        worst = 0
        for run in runs:
            code = _report(run, as_json)
            worst = code if code and (worst == 0 or code > worst) else worst
        return worst

    _guard(debug, act)


def monthly(
    workdir: Workdir,
    period: Annotated[str, typer.Option("--period", help="settlement month YYYY-MM")],
    as_json: JsonOpt = False,
    debug: Debug = False,
) -> None:
    """The monthly close of --period: rerate (delta report), settlement workbook, summary."""
    from clearing.pipeline.monthly import run_monthly

    def act() -> int:
        run = run_monthly(workdir, parse_period(period), log=_log(as_json))
        return _report(run, as_json)

    _guard(debug, act)


def collect_cmd(workdir: Workdir, debug: Debug = False) -> None:
    """Fetch new files of every configured partner into WORKDIR/inbox (the collect stage)."""
    from clearing.transport.cli import collect_command

    collect_command(workdir, None, debug)


def send_cmd(workdir: Workdir, debug: Debug = False) -> None:
    """Send every due outbox file to its partner (the send stage)."""
    from clearing.transport.cli import send

    send(workdir, debug)


def resend_cmd(
    file: Annotated[str, typer.Argument(help="outbox file name (or its path)")],
    workdir: Workdir,
    debug: Debug = False,
) -> None:
    """Send one outbox file again, with exactly the bytes registered for it."""
    from clearing.transport.cli import resend

    resend(file, workdir, debug)


def retail_cmd(
    workdir: Workdir,
    date: DateOpt,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    debug: Debug = False,
) -> None:
    """Rate our subscribers' accepted usage abroad per sub-number (the retail stage)."""
    import pyarrow.parquet as pq

    from clearing.rating.retail import write_retail

    def act() -> int:
        lines, summary = write_retail(workdir, parse_date(date))
        out: dict[str, Any] = {
            "bill_lines": str(lines),
            "rows": pq.ParquetFile(lines).metadata.num_rows,
            "summary": str(summary),
        }
        if as_json:
            typer.echo(json.dumps(out))
        else:
            typer.echo(f"{out['rows']} bill line(s) → {lines}\ncycle totals → {summary}")
        return 0

    _guard(debug, act)


def receive_cmd(workdir: Workdir, date: DateOpt, debug: Debug = False) -> None:
    """Partners' RAPs (→ our ACK) and ACKs (→ outbox acknowledged) among the date's inputs."""
    from clearing import config
    from clearing.returns.stage import receive_day

    def act() -> int:
        with _locked(workdir, "receive"):
            counts, problems = receive_day(config.WorkDir(workdir), parse_date(date))
        for message in problems:
            typer.echo(message, err=True)
        typer.echo(f"{counts['raps']} RAP(s) answered, {counts['acks']} ACK(s) recorded")
        return 1 if problems else 0

    _guard(debug, act)


def outbox_cmd(workdir: Workdir, date: DateOpt, debug: Debug = False) -> None:
    """Register the date's RAPs, CIBER returns, ACKs and TAP-out / CIBER-out in the outbox."""
    from clearing import config
    from clearing.transport.stage import register_day

    def act() -> int:
        with _locked(workdir, "outbox"):
            paths = register_day(config.WorkDir(workdir), parse_date(date))
        for path in paths:
            typer.echo(f"due {path.name}")
        return 0

    _guard(debug, act)


def _locked(workdir: Path, what: str) -> Any:
    from clearing.pipeline.lock import WorkdirLock

    return WorkdirLock(workdir, what)


def register(app: typer.Typer) -> None:
    """Mount the run commands on the top-level ``clearing`` app."""
    app.command("nightly")(nightly)
    app.command("monthly")(monthly)
    app.command("backfill")(backfill)
    app.command("collect")(collect_cmd)
    app.command("send")(send_cmd)
    app.command("resend")(resend_cmd)
    app.command("retail")(retail_cmd)
    app.command("receive")(receive_cmd)
    app.command("outbox")(outbox_cmd)
