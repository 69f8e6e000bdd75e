"""Rating commands (typer), mounted by ``clearing.cli``.

* ``clearing rate --workdir DIR --date D`` — the rate step of a day (:func:`rate_day`, then
  :func:`clearing.outbound.write_day` for TAP-out / CIBER-out);
* ``clearing rate what-if --workdir DIR --partner P --service S --start T --duration N`` —
  rate one imagined event and print each step;
* ``clearing rerate --workdir DIR --period YYYY-MM`` — the delta report of a month;
* ``clearing rates import [--rates DIR]`` — CSV sources → partitioned Parquet.

``app`` holds all four (``rate`` and ``rates`` as groups, ``rerate`` as a command); the parts
are also exposed (``rate_app``, ``rates_app``, :func:`rerate_command`) to mount one by one.
Exit codes: 0 ok, 1 data problem, 2 config / reference-data problem.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing._cli import fail, parse_date
from clearing.errors import ClearingError, ConfigError

if TYPE_CHECKING:
    from datetime import date as Date

__all__ = ["app", "rate_app", "rates_app", "rerate_command"]

app = typer.Typer(help="Rating: IOT rating, TAP-out, IOT check, re-rating, reference data.")
rate_app = typer.Typer(
    help="Rate the visitors' CDRs of a day, write TAP-out / CIBER-out, check TAP-in charges.",
    invoke_without_command=True,
)
rates_app = typer.Typer(help="Reference data (rates/): IOT, agreements, IMSI ranges, fx...")

WorkdirOpt = Annotated[
    Path, typer.Option("--workdir", "-w", help="work folder (config, rates, lake, out)")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="raise errors with a traceback")]


def _day(text: str | None) -> Date:
    if text is None:
        msg = "--date YYYY-MM-DD is required"
        raise ConfigError(msg)
    return parse_date(text)


def _money(value: int | None, scale: int | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value).scaleb(-(scale or 0)):f}"


@rate_app.callback()
def rate(
    ctx: typer.Context,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", "-w", help="work folder (config, rates, lake, out)")
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="processing date YYYY-MM-DD")] = None,
    rates: Annotated[
        Path | None, typer.Option("--rates", help="reference data (default: WORKDIR/rates)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    debug: DebugOpt = False,
) -> None:
    """Rate visitors' CDRs of --date, write TAP-out / Notifications / CIBER-out, run the IOT
    check of the day's accepted TAP-in (see `clearing rate what-if --help` for one event)."""
    if ctx.invoked_subcommand is not None:
        return
    from clearing import config
    from clearing.outbound import write_day
    from clearing.rating.run import rate_day

    try:
        if workdir is None:
            msg = "--workdir is required"
            raise ConfigError(msg)
        day = _day(date)
        settings = config.load(workdir)  # a config problem stops us before anything is done
        summary = rate_day(workdir, day, rates_dir=rates)
        outbound = write_day(workdir, day, settings=settings, rates_dir=rates)
    except ClearingError as exc:
        fail(exc, debug)
    out = {
        "date": summary.day.isoformat(),
        "cdr_files": [p.name for p in summary.cdr_files],
        "records_in": summary.records_in,
        "rated": summary.rated,
        "unrated": summary.unrated,
        "quarantined": summary.quarantined,
        "identity_ok": summary.identity_ok,
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
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    _print_rate(out)


def _print_rate(out: dict[str, Any]) -> None:
    ok = "ok" if out["identity_ok"] else "DOES NOT BALANCE"
    typer.echo(
        f"rate {out['date']}: {len(out['cdr_files'])} CDR file(s), {out['records_in']} records:"
        f" {out['rated']} rated, {out['unrated']} unrated, {out['quarantined']} quarantined"
        f" (in = rated + unrated + quarantined: {ok})"
    )
    for r in out["receivable"]:
        typer.echo(
            f"  receivable {r['partner']}: {_money(r['charge'], r['scale'])} {r['currency']}"
        )
    for f in out["outbound"]:
        what = "Notification" if f["kind"] == "notification" else f"{f['events']} events"
        line = (
            f"  {f['file']}: {what}, total {_money(f['total_charge'], f['scale'])} "
            f"{f['currency']}, tax {_money(f['total_tax'], f['scale'])}"
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
            typer.echo(
                f"  payable {r['partner']}: {_money(r['amount'], r['scale'])} {r['currency']}"
            )
    else:
        typer.echo("IOT check: no accepted TAP-in / CIBER-in for this date")


@rate_app.command("what-if")
def what_if_command(
    workdir: WorkdirOpt,
    partner: Annotated[str, typer.Option("--partner", help="TADIG or SID/BID")],
    service: Annotated[
        str,
        typer.Option(
            "--service",
            help="moc (destination picks the band), moc_local…, mtc, sms_mo, sms_mt, gprs, volte",
        ),
    ],
    start: Annotated[str, typer.Option("--start", help="local start, 2026-11-21T10:00:00")],
    duration: Annotated[int | None, typer.Option("--duration", help="seconds")] = None,
    volume: Annotated[int | None, typer.Option("--volume", help="bytes (gprs)")] = None,
    destination: Annotated[
        str | None, typer.Option("--destination", help="called number, E.164 digits")
    ] = None,
    direction: Annotated[
        str, typer.Option("--direction", help="inbound (our IOT) or outbound (the partner's)")
    ] = "inbound",
    rates: Annotated[Path | None, typer.Option("--rates", help="default: WORKDIR/rates")] = None,
    debug: DebugOpt = False,
) -> None:
    """Rate one imagined event and print the tariff rows considered and every step."""
    from clearing.rating._book import Rates
    from clearing.rating.whatif import parse_start, what_if

    try:
        book = Rates.load(rates or workdir / "rates")
        result = what_if(
            book,
            partner=partner,
            service=service,
            start=parse_start(start),
            duration=duration,
            volume=volume,
            destination=destination.lstrip("+") if destination else None,
            direction=direction,
        )
    except ClearingError as exc:
        fail(exc, debug)
    typer.echo("tariff rows considered:")
    for r in result.candidates.iter_rows(named=True):
        typer.echo(
            f"  {r['iot_key']} v{r['iot_version']}: {r['weekdays']} {r['from']}-{r['to']}, "
            f"{_money(r['price'], r['price_scale'])} {r['currency']} per {r['unit']}, "
            f"{r['initial_increment']}/{r['subsequent_increment']} min {r['minimum_units']}, "
            f"tax {r['tax_rate']}, {r['rounding']}"
        )
    typer.echo("steps:")
    for i, step in enumerate(result.steps, 1):
        typer.echo(f"  {i}. {step}")
    r = result.result
    if r["status"] == "rated":
        typer.echo(
            f"charge {_money(r['charge'], r['scale'])} {r['currency']} + tax "
            f"{_money(r['tax'], r['scale'])} (row {r['iot_key']}, version {r['iot_version']})"
        )
    else:
        typer.echo(f"not rated: {r['reason']}")
        raise typer.Exit(1)


def rerate_command(
    workdir: WorkdirOpt,
    period: Annotated[str, typer.Option("--period", help="month YYYY-MM")],
    rates: Annotated[Path | None, typer.Option("--rates", help="default: WORKDIR/rates")] = None,
    debug: DebugOpt = False,
) -> None:
    """Re-rate a month's rated rows with today's reference data; write and print the delta."""
    from clearing.rating.rerate import rerate as run

    try:
        result = run(workdir, period, rates_dir=rates)
    except ClearingError as exc:
        fail(exc, debug)
    changed = result.changed_rows.height
    typer.echo(
        f"rerate {result.period}: {result.receivable_rows} receivable and "
        f"{result.payable_rows} payable rows re-rated, {changed} changed"
    )
    for r in result.delta.iter_rows(named=True):
        typer.echo(
            f"  {r['direction']} {r['partner']} {r['service']}: {r['changed']}/{r['events']} "
            f"changed, {_money(r['old_total'], r['charge_scale'])} → "
            f"{_money(r['new_total'], r['charge_scale'])} {r['currency']} "
            f"(delta {_money(r['delta'], r['charge_scale'])})"
        )
    typer.echo(f"report: {result.paths[0]}")


app.add_typer(rate_app, name="rate")
app.command("rerate")(rerate_command)
app.add_typer(rates_app, name="rates")


@rates_app.command("import")
def rates_import(
    workdir: Annotated[
        Path, typer.Option("--workdir", "-w", help="work folder (rates default to WORKDIR/rates)")
    ] = Path("var"),
    rates: Annotated[
        Path | None, typer.Option("--rates", help="reference-data folder (sources in DIR/sources)")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Import every DIR/sources/<table>.csv that has a schema in specs/rates into Parquet."""
    from clearing.rating._refdata import import_rates

    target = rates or workdir / "rates"
    try:
        done = import_rates(target)
    except ClearingError as exc:
        fail(exc, debug)
    for t in done:
        typer.echo(f"{t.name}: {t.rows} rows in {t.partitions} partition(s) → {t.path}")
