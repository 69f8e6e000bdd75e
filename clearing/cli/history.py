"""The history of the reference data: ``clearing rate explain`` and ``clearing rates versions``.

* ``rate explain --workdir W --iot-version V [--partner P] [--service S] [--json]`` — the tariff
  rows of an import version (``v2``) or the tariff row of a rated row's ``iot_version``, with
  the version's import time and hashes; ``rate explain --workdir W --date D --record ID`` —
  a rated visitor row and the tariff row that priced it (mounted under the ``rate`` group);
* ``rates versions --workdir W [--json]`` (also ``rates list-versions``) — every import
  version of the reference data, the current one last.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    OptionalDateOpt,
    OptionalWorkDirOpt,
    PartnerOpt,
    RatesOpt,
    examples,
    handles_errors,
    parse_date,
    reads_workdir,
)
from clearing.cli.stages import money
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["explain", "explain_app", "versions", "versions_app"]

explain_app = typer.Typer()
versions_app = typer.Typer()


def _rates_dir(workdir: Path | None, rates: Path | None) -> Path:
    if rates is not None:
        return rates
    if workdir is None:
        msg = "give --workdir (the rates are WORKDIR/rates) or --rates DIR"
        raise ConfigError(msg)
    return workdir / "rates"


def _clock(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _row_line(r: dict[str, Any]) -> str:
    return (
        f"  {r['iot_key']} version {r['version']}: {r['weekdays']} "
        f"{_clock(r['band_start'])}-{_clock(r['band_end'])}, "
        f"{money(r['price'], r['price_scale'])} {r['currency']} per {r['unit']}, "
        f"{r['initial_increment']}/{r['subsequent_increment']} min {r['minimum_units']}, "
        f"tax {r['tax_rate']}, {r['rounding']}, valid {r['valid_from']} to "
        f"{r['valid_to'] or 'open'} (source line {r['source_line']})"
    )


def _version_lines(v: dict[str, Any]) -> list[str]:
    adopted = ", adopted: imported before versions were kept" if v["adopted"] else ""
    lines = [
        f"version {v['version']}: imported {v['imported_at']}, content sha256 "
        f"{v['content_sha256']}, previous {v['previous'] or '-'}{adopted}"
    ]
    for name, t in v["tables"].items():
        lines.append(
            f"  {name}: {t['rows']} rows, {t['source']} sha256 {t['source_sha256'] or '-'}"
        )
    return lines


def _print_explained(out: dict[str, Any], indent: str = "") -> None:
    if out["kind"] == "tariff_row":
        typer.echo(f"{indent}iot_version {out['iot_version']} is the tariff row:")
    else:
        typer.echo(f"{indent}tariff rows (iot) of {out['iot_version']}: {len(out['rows'])}")
    for r in out["rows"]:
        typer.echo(indent + _row_line(r))
    if out["kind"] == "tariff_row":
        held = ", ".join(v["version"] for v in out["versions"])
        typer.echo(f"{indent}held by reference-data version(s) {held}:")
    for v in out["versions"]:
        for line in _version_lines(v):
            typer.echo(indent + line)


@explain_app.command(
    "explain",
    epilog=examples(
        "clearing rate explain -w /srv/clearing --iot-version v2 --partner FRAF9",
        "clearing rate explain -w /srv/clearing --iot-version b8ff6edf0c045723 --json",
        "clearing rate explain -w /srv/clearing --date 2026-11-22 \\",
        "    --record HKGCL-20261122-0000041",
    ),
)
@handles_errors
@reads_workdir
def explain(
    workdir: OptionalWorkDirOpt = None,
    iot_version: Annotated[
        str | None,
        typer.Option(
            "--iot-version",
            help="an import version (v1, v2…) or the iot_version of a rated row (16 hex)",
        ),
    ] = None,
    partner: PartnerOpt = None,
    service: Annotated[
        str | None, typer.Option("--service", help="only this service's rows (moc_local…)")
    ] = None,
    date: OptionalDateOpt = None,
    record: Annotated[
        str | None, typer.Option("--record", help="record id of a rated visitor row of --date")
    ] = None,
    rates: RatesOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the tariff rows behind an iot_version, or behind a rated visitor row.

    Give --iot-version (an import version, with --partner / --service to narrow its rows,
    or the 16-hex iot_version of a rated row), or --date and --record (a rated visitor row
    of that date): the rows are shown as they were when that version was imported.
    """
    from clearing.config import WorkDir
    from clearing.rating.explain import explain_iot_version, explain_record

    rates_dir = _rates_dir(workdir, rates)
    if record is not None or date is not None:
        if record is None or date is None or workdir is None:
            msg = "--record needs --date and --workdir (a rated visitor row of that date)"
            raise ConfigError(msg)
        if iot_version is not None:
            msg = "give either --iot-version or --date and --record, not both"
            raise ConfigError(msg)
        out = explain_record(WorkDir(workdir).lake, rates_dir, parse_date(date), record)
        if as_json:
            typer.echo(json.dumps(out))
            return
        for rec in out["records"]:
            typer.echo(
                f"record {rec['record_id']} of {out['date']}: {rec['partner']} {rec['service']} "
                f"{rec['start_time']}, {rec['charged_units']} charged units, charge "
                f"{money(rec['charge'], rec['charge_scale'])} {rec['currency']} at "
                f"{money(rec['price'], rec['price_scale'])} per {rec['unit']} "
                f"(row {rec['iot_key']}, iot_version {rec['iot_version']})"
            )
            _print_explained(rec["explained"], "  ")
        return
    if iot_version is None:
        msg = "give --iot-version V, or --date D --record ID"
        raise ConfigError(msg)
    out = explain_iot_version(rates_dir, iot_version, partner=partner, service=service)
    if as_json:
        typer.echo(json.dumps(out))
        return
    _print_explained(out)


@versions_app.command(
    "versions",
    epilog=examples(
        "clearing rates versions -w /srv/clearing",
        "clearing rates versions --rates /srv/rates-draft --json",
    ),
)
@versions_app.command(
    "list-versions",
    epilog=examples("clearing rates list-versions -w /srv/clearing"),
)
@handles_errors
@reads_workdir
def versions(
    workdir: OptionalWorkDirOpt = None,
    rates: RatesOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the import versions of the reference data, oldest first (the last is current)."""
    from clearing.rating.versions import list_versions

    rates_dir = _rates_dir(workdir, rates)
    found = [v.as_dict() for v in list_versions(rates_dir)]
    if as_json:
        typer.echo(json.dumps(found))
        return
    if not found:
        typer.echo(f"no versions recorded in `{rates_dir}`: run `clearing rates import`")
        return
    for i, v in enumerate(found):
        lines = _version_lines(v)
        if i == len(found) - 1:
            lines[0] += " (current)"
        for line in lines:
            typer.echo(line)
