"""Rating by hand: ``clearing rate what-if``, ``clearing rerate``, ``clearing rates import``.

* ``rate what-if --workdir DIR --partner P --service S --start T --duration N`` — rate one
  imagined event and print each step (mounted under the ``rate`` group of
  :mod:`clearing.cli.stages`, whose own command is the rate stage of a day);
* ``rerate --workdir DIR --period YYYY-MM`` — the delta report of a month;
* ``rates import --workdir DIR [--rates DIR]`` — CSV sources → partitioned Parquet, recorded
  as a new version of the reference data when the content changed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from clearing.cli._common import (
    PARTNER_HELP,
    DebugOpt,
    PeriodOpt,
    RatesOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    reads_workdir,
)
from clearing.cli.stages import money
from clearing.errors import ExitCode

__all__ = ["app", "import_", "rates_app", "rerate", "what_if", "what_if_app"]

app = typer.Typer()
what_if_app = typer.Typer()
rates_app = typer.Typer(help="Reference data (rates/): IOT, agreements, IMSI ranges, fx...")


@what_if_app.command(
    "what-if",
    epilog=examples(
        "clearing rate what-if -w /srv/clearing --partner FRAF9 --service moc_local \\",
        "    --start 2026-11-21T10:00:00 --duration 95",
        "clearing rate what-if -w /srv/clearing --partner FRAF9 --service gprs \\",
        "    --start 2026-11-21T23:59:30 --volume 1048576",
        "clearing rate what-if -w /srv/clearing --partner 04172 --service mtc \\",
        "    --start 2026-11-21T23:59:30 --duration 61",
        "clearing rate what-if -w /srv/clearing --partner DEUD9 --service moc \\",
        "    --destination +4930123456 --start 2026-11-21T10:00:00 --duration 60 \\",
        "    --direction outbound",
    ),
)
@handles_errors
@reads_workdir
def what_if(
    workdir: WorkDirOpt,
    partner: Annotated[str, typer.Option("--partner", help=PARTNER_HELP)],
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
    rates: RatesOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Rate one imagined event and print the tariff rows considered and every step.

    Nothing is recorded. --direction inbound prices a partner's subscriber visiting us (our
    IOT), outbound our subscriber visiting the partner (the partner's IOT). Exit code 1 when
    the event cannot be rated (the reason is printed).
    """
    from clearing.rating import Rates
    from clearing.rating import what_if as rate_one
    from clearing.rating.whatif import parse_start

    book = Rates.load(rates or workdir / "rates")
    result = rate_one(
        book,
        partner=partner,
        service=service,
        start=parse_start(start),
        duration=duration,
        volume=volume,
        destination=destination.lstrip("+") if destination else None,
        direction=direction,
    )
    typer.echo("tariff rows considered:")
    for r in result.candidates.iter_rows(named=True):
        typer.echo(
            f"  {r['iot_key']} v{r['iot_version']}: {r['weekdays']} {r['from']}-{r['to']}, "
            f"{money(r['price'], r['price_scale'])} {r['currency']} per {r['unit']}, "
            f"{r['initial_increment']}/{r['subsequent_increment']} min {r['minimum_units']}, "
            f"tax {r['tax_rate']}, {r['rounding']}"
        )
    typer.echo("steps:")
    for i, step in enumerate(result.steps, 1):
        typer.echo(f"  {i}. {step}")
    r = result.result
    if r["status"] == "rated":
        typer.echo(
            f"charge {money(r['charge'], r['scale'])} {r['currency']} + tax "
            f"{money(r['tax'], r['scale'])} (row {r['iot_key']}, version {r['iot_version']})"
        )
    else:
        typer.echo(f"not rated: {r['reason']}")
        raise typer.Exit(ExitCode.DATA)


@app.command(
    "rerate",
    epilog=examples(
        "clearing rerate -w /srv/clearing --period 2026-11",
        "clearing rerate -w /srv/clearing --period 2026-11 --rates /srv/rates-draft",
    ),
)
@handles_errors
def rerate(
    workdir: WorkDirOpt,
    period: PeriodOpt,
    rates: RatesOpt = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Rate every row again, also those of files the rate stage rated with "
            "today's reference data (by default they are taken as they are: the same).",
        ),
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Re-rate a month's rated rows with today's reference data; write and print the delta.

    What was sent is not changed: the delta report (`out/rerate/`) is what changed. Rows of
    files rated with today's reference data (for their partner) are not rated a second time.
    """
    from clearing.rating import rerate as run

    result = run(workdir, period, rates_dir=rates, full=full)
    changed = result.changed_rows.height
    again = result.receivable_rows + result.payable_rows - result.same_rows
    typer.echo(
        f"rerate {result.period}: {result.receivable_rows} receivable and "
        f"{result.payable_rows} payable rows re-rated, {changed} changed ({again} rated again, "
        f"{result.same_rows} rated with today's reference data already)"
    )
    for r in result.delta.iter_rows(named=True):
        typer.echo(
            f"  {r['direction']} {r['partner']} {r['service']}: {r['changed']}/{r['events']} "
            f"changed, {money(r['old_total'], r['charge_scale'])} → "
            f"{money(r['new_total'], r['charge_scale'])} {r['currency']} "
            f"(delta {money(r['delta'], r['charge_scale'])})"
        )
    typer.echo(f"report: {result.paths[0]}")


@rates_app.command(
    "import",
    epilog=examples(
        "clearing rates import -w /srv/clearing",
        "clearing rates import -w /srv/clearing --rates /srv/rates-draft",
    ),
)
@handles_errors
def import_(
    workdir: WorkDirOpt,
    rates: RatesOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Import every `DIR/sources/<table>.csv` that has a schema in specs/rates into Parquet.

    DIR is --rates, or WORKDIR/rates. A changed content is kept as a new version (see
    `clearing rates versions`); the same content again records nothing. Overlapping or
    absurd rows are refused (exit code 2) and nothing is imported.
    """
    from clearing.rating import import_rates
    from clearing.rating.versions import current_version, list_versions

    target = rates or workdir / "rates"
    before = {v.id for v in list_versions(target)}
    for t in import_rates(target):
        typer.echo(f"{t.name}: {t.rows} rows in {t.partitions} partition(s) → {t.path}")
    for v in list_versions(target):
        if v.id not in before:
            what = "tables imported before versions were kept" if v.adopted else "new"
            typer.echo(f"version {v.id} ({what}): content sha256 {v.content_sha256}")
    current = current_version(target)
    if current is not None and current.id in before:
        typer.echo(f"unchanged: the content is that of version {current.id}")
