"""One verb per stage of the night, each on its own: what ``clearing nightly`` runs in order.

``collect``, ``receive``, ``rate``, ``retail``, ``outbox``, ``send`` (and ``resend`` of one
file), ``settle daily`` and ``settle monthly``; ``validate`` of a date is the ``validate`` verb
without a FILE (:mod:`clearing.cli.validate`, which calls :func:`validate_day` here). Each
parses its options, calls the stage's package and prints what it did.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing.cli._common import (
    DateOpt,
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    OptionalWorkDirOpt,
    PartnersOpt,
    PeriodOpt,
    RatesOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    parse_date,
)
from clearing.errors import ConfigError, ExitCode, TransportError

if TYPE_CHECKING:
    from datetime import date

    from clearing.config import WorkDir
    from clearing.outbound import OutboundFile
    from clearing.rating import RateSummary
    from clearing.validate.stage import ValidateResult

__all__ = [
    "app",
    "collect",
    "daily",
    "exit_on_problems",
    "live_day",
    "monthly",
    "outbox",
    "rate",
    "rate_app",
    "receive",
    "resend",
    "retail",
    "retail_app",
    "send",
    "settle_app",
    "validate_day",
]

app = typer.Typer()
rate_app = typer.Typer(invoke_without_command=True)
retail_app = typer.Typer(invoke_without_command=True)
settle_app = typer.Typer(
    help="Settlement workbooks: daily operations (per processing date), monthly settlement.",
    no_args_is_help=True,
)

RunIdOpt = Annotated[
    str | None, typer.Option("--run-id", help="run id to record on the Audit sheet")
]


@app.command(
    epilog=examples(
        "clearing collect -w /srv/clearing",
        "clearing collect -w /srv/clearing --partner FRAF9 --partner 04172 \\",
        "    --date 2026-11-22",
    ),
)
@handles_errors
def collect(
    workdir: WorkDirOpt,
    partner: PartnersOpt = None,
    date: OptionalDateOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Fetch new files of every configured partner into WORKDIR/inbox (the collect stage).

    Every listed entry is decided on its own: fetched, quarantined into `failed/<date>/` (a
    reason file beside it) or refused (left on the server); --date is the processing date
    of those entries (default: today, UTC). Exit code 1 when an entry was newly quarantined
    or refused, 3 when a partner could not be reached.
    """
    from datetime import UTC, datetime

    from clearing.config import load
    from clearing.ingest import collect_partners
    from clearing.transport.settings import Transports

    day = datetime.now(UTC).date() if date is None else parse_date(date)
    settings = load(workdir)
    sources = Transports(settings.transport)
    sources.check(workdir)  # a private key others can read: refused before anything is touched
    got = collect_partners(workdir, sources, day=day, settings=settings, partners=partner)
    for code, exc in got.unreachable:
        typer.echo(f"not collected from {code}: {exc}", err=True)
    for path in got.fetched:
        typer.echo(f"fetched {path}")
    for line in got.problems:
        typer.echo(f"anomaly: {line}", err=True)
    for line in got.still_refused:
        typer.echo(f"warning: {line}", err=True)
    if got.unreachable:
        msg = (
            f"collect failed for {', '.join(c for c, _ in got.unreachable)} (see above); "
            "files already fetched are kept, and the next `collect` fetches the rest"
        )
        raise TransportError(msg)
    if got.problems:
        raise typer.Exit(ExitCode.DATA)


@app.command(
    epilog=examples(
        "clearing send -w /srv/clearing",
        "clearing transport status -w /srv/clearing",
    ),
)
@handles_errors
def send(workdir: WorkDirOpt, debug: DebugOpt = False) -> None:
    """Send every due outbox file to its partner (the send stage).

    A file not sent stays due for the next `send` (exit code 3).
    """
    from clearing.config import WorkDir
    from clearing.transport.outbox import Outbox
    from clearing.transport.settings import load_transport_settings

    settings = load_transport_settings(workdir)
    outbox = Outbox(WorkDir(workdir).db)
    report = outbox.send_due(lambda partner: settings.transport_for(partner, workdir))
    for name in report.sent:
        typer.echo(f"sent {name}")
    for name, error in report.failed:
        typer.echo(f"not sent {name}: {error}", err=True)
    if not report.ok:
        msg = (
            f"{len(report.failed)} of {len(report.sent) + len(report.failed)} due files "
            "not sent (see above); they stay due and the next `send` tries them again"
        )
        raise TransportError(msg)
    if not report.sent:
        typer.echo("nothing due")


@app.command(
    epilog=examples(
        "clearing resend CDHKGCLFRAF900042 -w /srv/clearing",
    ),
)
@handles_errors
def resend(
    file: Annotated[str, typer.Argument(help="outbox file name (or its path)")],
    workdir: WorkDirOpt,
    debug: DebugOpt = False,
) -> None:
    """Send one outbox file again, with exactly the bytes registered for it."""
    from clearing.config import WorkDir
    from clearing.transport.outbox import Outbox
    from clearing.transport.settings import load_transport_settings

    settings = load_transport_settings(workdir)
    outbox = Outbox(WorkDir(workdir).db)
    name = Path(file).name
    entry = outbox.get(name)
    with settings.transport_for(entry.partner, workdir) as transport:
        outbox.resend(name, transport)
    typer.echo(f"sent {name} again to {entry.partner} ({transport.where})")


@retail_app.callback(
    epilog=examples(
        "clearing retail -w /srv/clearing --date 2026-11-22",
        "clearing retail -w /srv/clearing --date 2026-11-22 --json",
        "clearing retail explain --help",
    ),
)
@handles_errors
def retail(
    ctx: typer.Context,
    workdir: OptionalWorkDirOpt = None,
    date: OptionalDateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Rate our subscribers' accepted usage abroad per sub-number (the retail stage).

    The retail stage of a day (--workdir and --date are required for it): writes the bill
    lines (`lake/retail/date=<date>/`), the cycle totals and the prepaid cards' consumption.
    A prepaid card whose balance falls to a `[retail] low_balance` level is a warning on
    stderr (exit code 0). The commands below explain one bill line and write statements.
    """
    # `retail` is a group (for `retail explain`), so its own options cannot be required:
    # click would then ask for them before `explain` too. They are checked here instead.
    if ctx.invoked_subcommand is not None:
        return
    if workdir is None:
        msg = "--workdir is required"
        raise ConfigError(msg)
    if date is None:
        msg = "--date YYYY-MM-DD is required"
        raise ConfigError(msg)
    import pyarrow.parquet as pq

    from clearing.config import load
    from clearing.rating.retail import low_balance_crossings, write_retail
    from clearing.rating.stage import low_balance_problems

    lines, summary = write_retail(workdir, live_day(workdir, date))
    crossings = low_balance_crossings(lines, load(workdir).retail.low_balance)
    out: dict[str, Any] = {
        "bill_lines": str(lines),
        "rows": pq.ParquetFile(lines).metadata.num_rows,
        "summary": str(summary),
        "warnings": low_balance_problems(crossings),
        "problems": [],
    }
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"{out['rows']} bill line(s) → {lines}\ncycle totals → {summary}")
    exit_on_problems(out)


@app.command(
    epilog=examples(
        "clearing receive -w /srv/clearing --date 2026-11-22",
    ),
)
@handles_errors
def receive(workdir: WorkDirOpt, date: DateOpt, debug: DebugOpt = False) -> None:
    """Partners' RAPs (→ our ACK) and ACKs (→ outbox acknowledged) among the date's inputs.

    Exit code 1 when a RAP or an ACK cannot be taken (listed on stderr).
    """
    from clearing import config
    from clearing.returns.stage import receive_day

    counts, problems = receive_day(config.WorkDir(workdir), live_day(workdir, date))
    for message in problems:
        typer.echo(message, err=True)
    typer.echo(f"{counts['raps']} RAP(s) answered, {counts['acks']} ACK(s) recorded")
    if problems:
        raise typer.Exit(1)


@app.command(
    epilog=examples(
        "clearing outbox -w /srv/clearing --date 2026-11-22",
    ),
)
@handles_errors
def outbox(workdir: WorkDirOpt, date: DateOpt, debug: DebugOpt = False) -> None:
    """Register the date's RAPs, CIBER returns, ACKs and TAP-out / CIBER-out in the outbox.

    Prints each file now due; `clearing send` sends them.
    """
    from clearing import config
    from clearing.transport.stage import register_day

    paths = register_day(config.WorkDir(workdir), live_day(workdir, date))
    for path in paths:
        typer.echo(f"due {path.name}")


def live_day(workdir: Path, text: str) -> date:
    """``--date`` parsed; a processing date that was archived is refused (exit 2)."""
    from clearing.pipeline.archive import refuse_archived

    day = parse_date(text)
    refuse_archived(Path(workdir), day)
    return day


def validate_day(workdir: Path, day: date, as_json: bool) -> None:
    """``clearing validate --workdir W --date D``: every input of the date, recorded."""
    from clearing import config
    from clearing.cli.validate import identified, render_validation
    from clearing.pipeline.archive import refuse_archived
    from clearing.returns import validate_and_return

    wd = config.WorkDir(workdir)
    refuse_archived(wd.root, day)  # before any input is claimed into it
    result = validate_and_return(wd, day, _day_inputs(wd, day))
    if as_json:
        typer.echo(json.dumps(_validated(result, day), ensure_ascii=False))
    else:
        for f in result.files:
            typer.echo(render_validation(f.summary()))
        for c in result.ciber:
            typer.echo(render_validation(identified(c)))
        typer.echo(f"RAP files: {', '.join(p.name for p in result.raps) or 'none'}")
        typer.echo(f"reconciliation: {result.reconciliation()}")
    if any(f.fatal for f in result.files) or any(c.fatal for c in result.ciber):
        raise typer.Exit(1)


def _validated(result: ValidateResult, day: date) -> dict[str, Any]:
    from clearing.cli.validate import identified

    return {
        "date": day.isoformat(),
        "files": [f.summary() for f in result.files] + [identified(c) for c in result.ciber],
        "raps": [p.name for p in result.raps],
        "reconciliation": result.reconciliation(),
    }


def _day_inputs(wd: WorkDir, day: date) -> list[Path]:
    """TAP and CIBER inputs of ``day``: ``work/<day>/in/`` (claimed from ``inbox/`` once)."""
    from clearing.ingest import claim_inputs, input_kind

    return [p for p in claim_inputs(wd, day) if input_kind(p) in ("tap", "ciber")]


@rate_app.callback(
    epilog=examples(
        "clearing rate -w /srv/clearing --date 2026-11-22",
        "clearing rate -w /srv/clearing --date 2026-11-22 --json",
        "clearing rate -w /srv/clearing --date 2026-11-22 --rates /srv/rates-draft",
        "clearing rate what-if --help",
    ),
)
@handles_errors
def rate(
    ctx: typer.Context,
    workdir: OptionalWorkDirOpt = None,
    date: OptionalDateOpt = None,
    rates: RatesOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Rate visitors' CDRs of --date, write TAP-out / Notifications / CIBER-out, check IOTs.

    The rate stage of a day (--workdir and --date are required for it): the visitors' CDRs
    are priced by our IOTs, then written out per partner; the IOT check prices the day's
    accepted TAP-in and CIBER-in by the partners' IOTs. Exit code 1 when there are
    anomalies (listed on stderr). The commands below work on one event, one tariff row or
    the held records.
    """
    # `rate` is a group (for `rate what-if`), so its own options cannot be required: click
    # would then ask for them before `what-if` too. They are checked here instead.
    if ctx.invoked_subcommand is not None:
        return
    from clearing import config
    from clearing.outbound import write_day
    from clearing.rating import rate_day

    if workdir is None:
        msg = "--workdir is required"
        raise ConfigError(msg)
    if date is None:
        msg = "--date YYYY-MM-DD is required"
        raise ConfigError(msg)
    day = live_day(workdir, date)
    settings = config.load(workdir)  # a config problem stops us before anything is done
    summary = rate_day(workdir, day, rates_dir=rates, settings=settings)
    outbound = write_day(workdir, day, settings=settings, rates_dir=rates)
    out = rate_dict(summary, outbound)
    if as_json:
        typer.echo(json.dumps(out))
    else:
        _print_rate(out)
    exit_on_problems(out)


def exit_on_problems(out: dict[str, Any]) -> None:
    """Print the rate step's warnings and anomalies (stderr); exit 1 when it has anomalies."""
    for line in out["warnings"]:
        typer.echo(f"warning: {line}", err=True)
    for line in out["problems"]:
        typer.echo(f"anomaly: {line}", err=True)
    if out["problems"]:
        raise typer.Exit(ExitCode.DATA)


def money(value: int | None, scale: int | None) -> str:
    """An integer amount of ``scale`` decimal places as text (``-`` for none)."""
    if value is None:
        return "-"
    return f"{Decimal(value).scaleb(-(scale or 0)):f}"


def rate_dict(summary: RateSummary, outbound: list[OutboundFile]) -> dict[str, Any]:
    """The rate step's summary (rating, then outbound) as ``clearing rate --json`` prints it."""
    replay: dict[str, Any] = {}
    if summary.replayed:  # a replay of a sent day: what was sent stays, the change is a delta
        replay = {"sent": list(summary.sent), "rerate_deltas": summary.deltas}
    return {
        "date": summary.day.isoformat(),
        "cdr_files": [p.name for p in summary.cdr_files],
        "records_in": summary.records_in,
        "rated": summary.rated,
        "unrated": summary.unrated,
        "held": summary.held,
        "quarantined": summary.quarantined,
        "duplicates": summary.duplicates,
        "identity_ok": summary.identity_ok,
        "recycled": summary.recycled,
        "default_rated": summary.default_rated,
        "receivable": [
            {"partner": p, "currency": c, "scale": s, "charge": v}
            for p, c, s, v in summary.receivable
        ],
        "outbound": [
            {
                "file": f.path.name,
                "kind": f.kind,
                "partner": f.partner,
                "sequence_number": f.sequence_number,
                "events": f.events,
                "total_charge": f.total_charge,
                "total_tax": f.total_tax,
                "scale": f.charge_scale,
                "currency": f.currency,
                "content_changed": f.content_changed,
                "not_sent": f.not_sent,
            }
            for f in outbound
        ],
        "partner_events": summary.partner_events,
        "iot_breaches": summary.iot_breaches,
        "unchecked": summary.unchecked,
        "payable": [
            {"partner": p, "currency": c, "scale": s, "amount": v} for p, c, s, v in summary.payable
        ],
        **replay,
        "payables_held": summary.payable_held,
        "payables_released": summary.payable_released,
        "problems": summary.problems(),
        "warnings": summary.warnings(),
    }


def _print_rate(out: dict[str, Any]) -> None:
    ok = "ok" if out["identity_ok"] else "DOES NOT BALANCE"
    typer.echo(
        f"rate {out['date']}: {len(out['cdr_files'])} CDR file(s), {out['records_in']} records:"
        f" {out['rated']} rated, {out['unrated']} unrated, {out['held']} held,"
        f" {out['quarantined']} quarantined"
        + (
            f", {out['duplicates']} duplicates (in = rated + unrated + held + quarantined +"
            f" duplicates: {ok})"
            if out["duplicates"]
            else f" (in = rated + unrated + held + quarantined: {ok})"
        )
    )
    if out["recycled"]:
        typer.echo(f"  recycled: {out['recycled']} held record(s) of earlier dates rated")
    for r in out["receivable"]:
        typer.echo(f"  receivable {r['partner']}: {money(r['charge'], r['scale'])} {r['currency']}")
    for f in out["outbound"]:
        what = "Notification" if f["kind"] == "notification" else f"{f['events']} events"
        line = (
            f"  {f['file']}: {what}, total {money(f['total_charge'], f['scale'])} "
            f"{f['currency']}, tax {money(f['total_tax'], f['scale'])}"
        )
        if f["content_changed"]:
            line += " — WARNING: content differs from an earlier run with this sequence number"
        if f["not_sent"]:
            line += f" ({f['not_sent']} rated rows CIBER cannot carry)"
        typer.echo(line)
    if out["partner_events"] or out["payable"]:
        typer.echo(
            f"IOT check: {out['partner_events']} accepted partner events, "
            f"{out['iot_breaches']} breach(es), {out['unchecked']} not priced by the IOT"
        )
        for r in out["payable"]:
            amount = money(r["amount"], r["scale"])
            typer.echo(f"  payable {r['partner']}: {amount} {r['currency']}")
    else:
        typer.echo("IOT check: no accepted TAP-in / CIBER-in for this date")
    if "sent" in out:
        deltas = out["rerate_deltas"]
        typer.echo(
            f"replay: already sent for {', '.join(out['sent'])} (files and rated rows kept); "
            f"{len(deltas)} re-rate delta line(s) in lake/rerate_deltas"
        )
        for r in deltas:
            amount = money(r["delta"], r["charge_scale"])
            typer.echo(f"  delta {r['partner']} {r['service']}: {amount} {r['currency']}")


@settle_app.command(
    epilog=examples(
        "clearing settle daily -w /srv/clearing --date 2026-11-22",
        "clearing settle daily -w /srv/clearing --date 2026-11-22 --run-id manual-1",
    ),
)
@handles_errors
def daily(
    workdir: WorkDirOpt,
    date: DateOpt,
    run_id: RunIdOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the daily operations workbook of --date (`out/settlement/daily/`)."""
    from clearing.settle import daily_workbook

    typer.echo(str(daily_workbook(workdir, live_day(workdir, date), run_id=run_id)))


@settle_app.command(
    epilog=examples(
        "clearing settle monthly -w /srv/clearing --period 2026-11",
    ),
)
@handles_errors
def monthly(
    workdir: WorkDirOpt,
    period: PeriodOpt,
    run_id: RunIdOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the monthly settlement workbook of --period (`out/settlement/monthly/`).

    A re-issue after a change is the next version (`_v1`, `_v2`…); an issued workbook is
    never overwritten.
    """
    from clearing.settle import monthly_workbook

    typer.echo(str(monthly_workbook(workdir, period, run_id=run_id)))
