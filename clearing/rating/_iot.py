"""The IOT rating engine: events × tariff rows as set operations (polars), no loop per event.

How one event is rated (the same rules as :mod:`clearing.rating.whatif` prints step by step):

1. **Tariff version**: only IOT rows of the direction valid on the event's *local* date
   (``valid_from <= date < valid_to``).
2. **Service**: the event's kind (``mtc``, ``sms_mo``, ``gprs``…); a voice MOC takes the service
   of the MOC row (``moc_local``, ``moc_home``, ``moc_international``, ``moc_destination``) whose
   ``destination_prefix`` is the **longest prefix** of the called number (an empty prefix matches
   any number). Two MOC services on the same prefix are ambiguous and rate nothing.
3. **Time band**: the row of that service and prefix whose weekdays hold the event's local
   weekday and whose ``[band_start, band_end)`` holds its local start time (a band with
   ``band_end <= band_start`` wraps past midnight). A call crossing a band boundary is charged
   entirely in the band of its **start time** (the usual TAP/IOT rule; no split).
4. **Units**: ``charged_units(usage, minimum_units, initial_increment, subsequent_increment)``.
5. **Charge**: ``price / 10**price_scale × charged_units / unit`` computed exactly and
   **rounded once**, with the row's rule, to the event's scale (tapDecimalPlaces).
6. **Tax**: ``charge × tax_rate / 10**7`` rounded half up (TAP taxRate has 5 implied decimals).

Every rated row records ``iot_key`` (partner/direction/service/prefix/band@valid_from) and
``iot_version`` (the content hash of the tariff row); rows that cannot be rated keep
``status = "unrated"`` and a ``reason``: they are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import polars as pl

from clearing.errors import ConfigError
from clearing.rating._money import charged_units_expr, round_div_expr, tax_value_expr

if TYPE_CHECKING:
    from datetime import date

__all__ = [
    "KINDS",
    "MOC_SERVICES",
    "RATED_COLUMNS",
    "Tariff",
    "prepare_tariff",
    "rate_usage",
]

MOC_SERVICES: Final = ("moc_local", "moc_home", "moc_international", "moc_destination")
KINDS: Final = ("moc", "mtc", "sms_mo", "sms_mt", "gprs", "volte", "ss", "camel")
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# the columns rate_usage adds to its input
RATED_COLUMNS: Final = (
    "service",
    "destination_prefix",
    "time_band",
    "iot_key",
    "iot_version",
    "charged_units",
    "price",
    "price_scale",
    "unit",
    "rounding",
    "tax_rate",
    "charge",
    "tax",
    "status",
    "reason",
)

_KEY = ["day", "partner", "service", "destination_prefix"]


@dataclass(frozen=True)
class Tariff:
    """IOT rows of one direction, resolved for a set of days (small: reference data only).

    Attributes:
        direction: inbound or outbound.
        rows: every row valid on one of the days, one line per (day, row), with ``iot_key``,
            the weekday bit mask and the prefix length.
        destinations: per (day, partner) the MOC prefixes and their service (``ambiguous``
            when two MOC services share a prefix).
    """

    direction: str
    rows: pl.DataFrame
    destinations: pl.DataFrame


def _weekday_mask(weekdays: pl.Expr) -> pl.Expr:
    mask = pl.lit(0, dtype=pl.Int64)
    for d in range(1, 8):
        mask = mask + pl.when(weekdays.str.contains(str(d), literal=True)).then(1 << d).otherwise(0)
    return mask


def _intervals(start: int, end: int) -> list[tuple[int, int]]:
    if start < end:
        return [(start, end)]
    return [(start, 86400), (0, end)]


def _check_bands(rows: pl.DataFrame) -> None:
    """Refuse two bands of one service and prefix that cover the same moment."""
    multi = rows.filter(pl.len().over(_KEY) > 1)
    problems: list[str] = []
    for _key, group in multi.group_by(_KEY, maintain_order=True):
        items = group.select(
            "day", "iot_key", "_mask", "band_start", "band_end", "source_line"
        ).rows()
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                if not a[2] & b[2]:
                    continue
                if any(
                    s1 < e2 and s2 < e1
                    for s1, e1 in _intervals(a[3], a[4])
                    for s2, e2 in _intervals(b[3], b[4])
                ):
                    problems.append(
                        f"{a[1]} (line {a[5]}) and {b[1]} (line {b[5]}) overlap on {a[0]}"
                    )
    if problems:
        shown = "; ".join(sorted(set(problems))[:10])
        msg = f"rates table `iot`: time bands overlap: {shown}"
        raise ConfigError(msg)


def prepare_tariff(iot: pl.DataFrame, direction: str, days: list[date]) -> Tariff:
    """The IOT rows of ``direction`` valid on ``days``, checked and indexed for rating.

    Raises:
        ConfigError: overlapping time bands, or a destination prefix on a non-MOC service.
    """
    rows = iot.filter(pl.col("direction") == direction)
    bad = rows.filter(~pl.col("service").is_in(MOC_SERVICES) & (pl.col("destination_prefix") != ""))
    if bad.height:
        lines = ", ".join(str(x) for x in bad["source_line"].head(10))
        msg = (
            "rates table `iot`: destination_prefix is for MOC services only "
            f"(source line(s) {lines})"
        )
        raise ConfigError(msg)
    rows = rows.with_columns(
        pl.when(pl.col("service").is_in(MOC_SERVICES))
        .then(pl.lit("moc"))
        .otherwise(pl.col("service"))
        .alias("_group"),
        pl.col("destination_prefix").str.len_chars().cast(pl.Int64).alias("_plen"),
        _weekday_mask(pl.col("weekdays")).alias("_mask"),
        pl.concat_str(
            [
                pl.col("partner"),
                pl.col("direction"),
                pl.col("service"),
                pl.when(pl.col("destination_prefix") == "")
                .then(pl.lit("-"))
                .otherwise(pl.col("destination_prefix")),
                pl.col("time_band"),
            ],
            separator="/",
        ).alias("_key0"),
    ).with_columns(
        (pl.col("_key0") + "@" + pl.col("valid_from").dt.to_string("%Y-%m-%d")).alias("iot_key")
    )
    day_frame = pl.DataFrame({"day": sorted(set(days))}, schema={"day": pl.Date})
    by_day = day_frame.join(rows, how="cross").filter(
        (pl.col("valid_from") <= pl.col("day"))
        & (pl.col("valid_to").is_null() | (pl.col("day") < pl.col("valid_to")))
    )
    _check_bands(by_day)
    dest = (
        by_day.filter(pl.col("_group") == "moc")
        .group_by("day", "partner", "destination_prefix", "_plen")
        .agg(
            pl.col("service").unique().sort().first().alias("service"),
            (pl.col("service").n_unique() > 1).alias("ambiguous"),
        )
        .sort("day", "partner", "destination_prefix")
    )
    return Tariff(direction, by_day, dest)


def _resolve_service(ev: pl.DataFrame, tariff: Tariff) -> pl.DataFrame:
    """Add ``service`` and ``destination_prefix`` (longest-prefix match for MOC)."""
    dest = tariff.destinations
    lengths = sorted(set(dest["_plen"].to_list()), reverse=True)
    is_moc = pl.col("kind") == "moc"
    ev = ev.with_columns(
        pl.when(is_moc).then(None).otherwise(pl.col("kind")).alias("service"),
        pl.when(is_moc).then(None).otherwise(pl.lit("")).alias("destination_prefix"),
        pl.lit(False).alias("_ambiguous"),
    )
    for length in lengths:
        part = dest.filter(pl.col("_plen") == length).select(
            "day",
            "partner",
            pl.col("destination_prefix").alias("_p"),
            pl.col("service").alias("_s"),
            pl.col("ambiguous").alias("_a"),
        )
        ev = (
            ev.with_columns(
                pl.when(is_moc & pl.col("service").is_null() & ~pl.col("_ambiguous"))
                .then(pl.col("number").str.slice(0, length))
                .otherwise(None)
                .alias("_p")
            )
            .join(part, on=["day", "partner", "_p"], how="left", maintain_order="left")
            .with_columns(
                pl.when(pl.col("_a").fill_null(False))
                .then(None)
                .otherwise(pl.coalesce("service", "_s"))
                .alias("service"),
                pl.when(pl.col("_s").is_not_null() & pl.col("destination_prefix").is_null())
                .then(pl.col("_p"))
                .otherwise(pl.col("destination_prefix"))
                .alias("destination_prefix"),
                (pl.col("_ambiguous") | pl.col("_a").fill_null(False)).alias("_ambiguous"),
            )
            .drop("_p", "_s", "_a")
        )
    return ev


def rate_usage(usage: pl.DataFrame, tariff: Tariff) -> pl.DataFrame:
    """Rate usage rows with a prepared tariff.

    ``usage`` needs: ``row_id`` (unique), ``partner``, ``kind`` (one of :data:`KINDS`),
    ``number`` (called number, for MOC), ``local_start`` (datetime), ``usage`` (seconds,
    events or bytes), ``scale`` (decimal places of the charge) and ``currency`` (the currency
    the charge must be in). Rows keep their order; :data:`RATED_COLUMNS` are added.
    """
    base = usage.with_columns(pl.col("local_start").dt.date().alias("day"))
    ev = base.select("row_id", "day", "partner", "kind", "number", "local_start")
    ev = _resolve_service(ev, tariff)
    ev = ev.with_columns(
        (
            pl.col("local_start").dt.hour().cast(pl.Int32) * 3600
            + pl.col("local_start").dt.minute().cast(pl.Int32) * 60
            + pl.col("local_start").dt.second().cast(pl.Int32)
        ).alias("_tod"),
        pl.col("local_start").dt.weekday().cast(pl.Int64).alias("_wd"),
    )
    rows = tariff.rows.select(
        *_KEY,
        "time_band",
        "_mask",
        "band_start",
        "band_end",
        "iot_key",
        pl.col("version").alias("iot_version"),
        "unit",
        "price",
        "price_scale",
        pl.col("currency").alias("_iot_currency"),
        "minimum_units",
        "initial_increment",
        "subsequent_increment",
        "tax_rate",
        "rounding",
    )
    in_band = ((pl.col("_mask") // (2 ** pl.col("_wd"))) % 2 == 1) & (
        pl.when(pl.col("band_start") < pl.col("band_end"))
        .then((pl.col("_tod") >= pl.col("band_start")) & (pl.col("_tod") < pl.col("band_end")))
        .otherwise((pl.col("_tod") >= pl.col("band_start")) | (pl.col("_tod") < pl.col("band_end")))
    )
    matched = (
        ev.filter(pl.col("service").is_not_null())
        .join(rows, on=_KEY, how="inner")
        .filter(in_band)
        .drop("_mask", "band_start", "band_end", "day", "partner", "kind", "number")
        .drop("local_start", "_ambiguous", "_tod", "_wd", "service", "destination_prefix")
    )
    keys = rows.select(_KEY).unique()
    ev = ev.join(keys.with_columns(pl.lit(True).alias("_has_row")), on=_KEY, how="left")
    reason = (
        pl.when(pl.col("partner").is_null())
        .then(pl.lit("no partner for this subscriber (IMSI not in imsi_ranges)"))
        .when(pl.col("_ambiguous"))
        .then(pl.lit("ambiguous destination: two MOC services share the longest prefix"))
        .when(pl.col("service").is_null())
        .then(pl.format("no IOT destination prefix matches called number {}", pl.col("number")))
        .when(pl.col("_has_row").is_null())
        .then(
            pl.format(
                "no IOT row for {} {} valid on {}",
                pl.col("partner"),
                pl.col("service"),
                pl.col("day").dt.to_string("%Y-%m-%d"),
            )
        )
        .otherwise(
            pl.format(
                "no time band of {} {} covers {} {}",
                pl.col("partner"),
                pl.col("service"),
                pl.col("local_start").dt.strftime("%a"),
                pl.col("local_start").dt.strftime("%H:%M:%S"),
            )
        )
    )
    ev = ev.select("row_id", "service", "destination_prefix", reason.alias("_reason0"))
    out = base.join(ev, on="row_id", how="left", maintain_order="left").join(
        matched, on="row_id", how="left", maintain_order="left"
    )
    units = charged_units_expr(
        pl.col("usage").fill_null(0),
        pl.col("minimum_units"),
        pl.col("initial_increment"),
        pl.col("subsequent_increment"),
    )
    out = out.with_columns(units.alias("charged_units"))
    k_up = (pl.col("scale").cast(pl.Int64) - pl.col("price_scale")).clip(lower_bound=0)
    k_down = (pl.col("price_scale") - pl.col("scale").cast(pl.Int64)).clip(lower_bound=0)
    n = (
        pl.col("price").cast(pl.Int128)
        * pl.col("charged_units")
        * pl.lit(10, dtype=pl.Int128).pow(k_up)
    )
    d = pl.col("unit").cast(pl.Int128) * pl.lit(10, dtype=pl.Int128).pow(k_down)
    currency_ok = pl.col("_iot_currency") == pl.col("currency")
    rated = pl.col("iot_key").is_not_null() & currency_ok.fill_null(False)
    charge = round_div_expr(n, d, pl.col("rounding")).cast(pl.Int64)
    out = out.with_columns(
        pl.when(rated).then(charge).otherwise(None).alias("charge"),
    ).with_columns(
        pl.when(rated).then(tax_value_expr(pl.col("charge"), pl.col("tax_rate"))).alias("tax"),
        pl.when(rated).then(pl.lit("rated")).otherwise(pl.lit("unrated")).alias("status"),
        pl.when(rated)
        .then(None)
        .when(pl.col("iot_key").is_not_null())
        .then(
            pl.format(
                "IOT row {} is in {}, the charge must be in {}",
                pl.col("iot_key"),
                pl.col("_iot_currency"),
                pl.col("currency"),
            )
        )
        .otherwise(pl.col("_reason0"))
        .alias("reason"),
    )
    return out.drop("_reason0", "_iot_currency", "minimum_units", "initial_increment").drop(
        "subsequent_increment", "day"
    )
