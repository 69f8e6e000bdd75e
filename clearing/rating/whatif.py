"""What-if: rate one imagined event and show every step (the analyst's ``rate what-if``).

The event goes through the same engine as a nightly run (:func:`rate_usage`); the steps are
then explained from the tariff row it picked, with the same integer arithmetic, and the two
results are compared (they must agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from clearing.errors import ConfigError
from clearing.money import (
    TAX_RATE_SCALE,
    charged_units,
    price_fraction,
    round_div,
    tax_value,
)
from clearing.rating._iot import KINDS, MOC_SERVICES, prepare_tariff, rate_usage
from clearing.rating.validity import rows_valid_on

if TYPE_CHECKING:
    from clearing.rating._book import Rates

__all__ = ["WhatIf", "parse_start", "what_if"]

_UNITS = {
    "gprs": "bytes",
    "sms_mo": "message",
    "sms_mt": "message",
    "ss": "event",
    "camel": "invocation",
}


@dataclass(frozen=True)
class WhatIf:
    """The result of :func:`what_if`: the tariff rows considered, the steps, the rated row."""

    candidates: pl.DataFrame
    steps: list[str]
    result: dict[str, Any]


def _money(value: int, scale: int) -> str:
    return f"{Decimal(value).scaleb(-scale):f}"


def _exact(n: int, d: int, scale: int) -> str:
    """``n / d`` units of ``10**-scale`` as a decimal, with ``…`` when it does not end."""
    digits = scale + 9
    q, r = divmod(n * 10**9, d)
    text = _money(q, digits).rstrip("0").rstrip(".")
    return text + ("…" if r else "")


def _seconds(t: int) -> str:
    return f"{t // 3600:02d}:{t // 60 % 60:02d}"


def what_if(
    rates: Rates,
    *,
    partner: str,
    service: str,
    start: datetime,
    duration: int | None = None,
    volume: int | None = None,
    destination: str | None = None,
    direction: str = "inbound",
) -> WhatIf:
    """Rate one event and explain it.

    Args:
        rates: the reference data.
        partner: TADIG or SID/BID.
        service: ``moc`` (the destination picks moc_local / moc_home / …), a MOC service name,
            ``mtc``, ``sms_mo``, ``sms_mt``, ``gprs``, ``volte``, ``ss`` or ``camel``.
        start: local start time.
        duration: seconds (voice).
        volume: bytes (gprs).
        destination: the called number (E.164 digits) for MOC.
        direction: ``inbound`` (our IOT for visitors) or ``outbound`` (the partner's).

    Raises:
        ConfigError: an unknown partner or service, or no agreement on the day.
    """
    kind = "moc" if service in MOC_SERVICES else service
    if kind not in KINDS:
        msg = f"unknown service `{service}`: one of moc, {', '.join(MOC_SERVICES)}, " + ", ".join(
            KINDS[1:]
        )
        raise ConfigError(msg)
    day = start.date()
    agreement = rows_valid_on(rates.agreements, day).filter(pl.col("partner") == partner)
    if agreement.height == 0:
        msg = f"no agreement with partner `{partner}` valid on {day}"
        raise ConfigError(msg)
    a = agreement.row(0, named=True)
    number = destination
    if kind == "moc" and not number:
        if service == "moc":
            msg = "a MOC needs --destination (the called number)"
            raise ConfigError(msg)
        prefixes = rows_valid_on(rates.iot, day).filter(
            (pl.col("partner") == partner)
            & (pl.col("direction") == direction)
            & (pl.col("service") == service)
        )["destination_prefix"]
        number = prefixes[0] if prefixes.len() else ""
    if kind == "gprs":
        usage = volume or 0
    elif kind in ("moc", "mtc", "volte"):
        usage = duration or 0
    else:
        usage = 1
    scale, currency = int(a["tap_decimal_places"]), str(a["tap_currency"])
    frame = pl.DataFrame(
        {
            "row_id": [0],
            "partner": [partner],
            "kind": [kind],
            "number": [number if kind == "moc" else None],
            "local_start": [start],
            "usage": [usage],
            "scale": [scale],
            "currency": [currency],
        },
        schema={
            "row_id": pl.UInt32,
            "partner": pl.String,
            "kind": pl.String,
            "number": pl.String,
            "local_start": pl.Datetime("us"),
            "usage": pl.Int64,
            "scale": pl.Int64,
            "currency": pl.String,
        },
    )
    tariff = prepare_tariff(rates.iot, direction, [day])
    result = rate_usage(frame, tariff).row(0, named=True)
    candidates = tariff.rows.filter(pl.col("partner") == partner).select(
        "iot_key",
        pl.col("version").alias("iot_version"),
        "service",
        "destination_prefix",
        "time_band",
        "weekdays",
        pl.col("band_start").map_elements(_seconds, return_dtype=pl.String).alias("from"),
        pl.col("band_end").map_elements(_seconds, return_dtype=pl.String).alias("to"),
        "price",
        "price_scale",
        "currency",
        "unit",
        "minimum_units",
        "initial_increment",
        "subsequent_increment",
        "tax_rate",
        "rounding",
    )
    if kind == "moc":
        candidates = candidates.filter(pl.col("service").is_in(MOC_SERVICES))
    else:
        candidates = candidates.filter(pl.col("service") == kind)
    steps = [
        f"agreement {partner} ({a['standard']}) valid on {day}: charges in {currency} with "
        f"{scale} decimal places (version {a['version']})",
    ]
    if result["status"] != "rated":
        steps.append(f"not rated: {result['reason']}")
        return WhatIf(candidates, steps, result)
    steps += _explain(result, tariff.rows, kind, number, start, usage, scale, currency)
    return WhatIf(candidates, steps, result)


def _explain(
    result: dict[str, Any],
    rows: pl.DataFrame,
    kind: str,
    number: str | None,
    start: datetime,
    usage: int,
    scale: int,
    currency: str,
) -> list[str]:
    row = rows.filter(pl.col("iot_key") == result["iot_key"]).row(0, named=True)
    steps: list[str] = []
    if kind == "moc":
        prefix = row["destination_prefix"] or "(empty: any number)"
        steps.append(
            f"destination {number}: longest IOT prefix {prefix} → service {row['service']}"
        )
    else:
        steps.append(f"service {row['service']}")
    steps.append(
        f"time band {row['time_band']} (weekdays {row['weekdays']}, "
        f"{_seconds(row['band_start'])}-{_seconds(row['band_end'])}) holds "
        f"{start:%a %H:%M:%S}, the local start; a call is charged in the band of its start"
    )
    steps.append(
        f"tariff row {row['iot_key']} version {row['version']} (source line {row['source_line']})"
    )
    unit_name = _UNITS.get(kind, "s")
    lo, first, step = row["minimum_units"], row["initial_increment"], row["subsequent_increment"]
    units = charged_units(usage, lo, first, step)
    if usage <= 0:
        how = f"no usage → the minimum {lo}"
    elif usage <= first:
        how = f"{usage} ≤ first block {first} → {first}"
    else:
        blocks = -(-(usage - first) // step)
        how = f"{first} + ceil(({usage} - {first}) / {step}) × {step} = {first} + {blocks} × {step}"
    policy = f"charging {first}/{step}, minimum {lo}"
    steps.append(f"units: {usage} {unit_name}, {policy}: {how} → {units} charged")
    price = _money(row["price"], row["price_scale"])
    n, d = price_fraction(row["price"], row["price_scale"], units, row["unit"], scale)
    charge = round_div(n, d, row["rounding"])
    steps.append(
        f"price {price} {row['currency']} per {row['unit']} {unit_name}: {price} × {units} / "
        f"{row['unit']} = {_exact(n, d, scale)} {currency}"
    )
    steps.append(
        f"rounding once ({row['rounding']}) to {scale} decimal places: "
        f"{_money(charge, scale)} {currency} (TAP charge {charge})"
    )
    tax = tax_value(charge, row["tax_rate"])
    rate = Decimal(row["tax_rate"]).scaleb(-(TAX_RATE_SCALE - 2))
    steps.append(
        f"tax {rate.normalize():f} %: {_money(charge, scale)} × {rate.normalize():f} % = "
        f"{_money(tax, scale)} {currency} (half up; TAP tax {tax})"
    )
    if (charge, tax, units) != (result["charge"], result["tax"], result["charged_units"]):
        steps.append(
            f"MISMATCH with the engine: charge {result['charge']}, tax {result['tax']}, "
            f"units {result['charged_units']}"
        )
    return steps


def parse_start(text: str) -> datetime:
    """``YYYY-MM-DDTHH:MM[:SS]`` (local time) → datetime.

    Raises:
        ConfigError: not such a time.
    """
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        msg = f"--start `{text}` is not a local time YYYY-MM-DDTHH:MM:SS"
        raise ConfigError(msg) from None
