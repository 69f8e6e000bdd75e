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
from clearing.money import VALUE_LIMIT, charged_units_expr, round_div_expr, tax_value_expr
from clearing.rating.validity import valid_on_expr

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
    by_day = day_frame.join(rows, how="cross").filter(valid_on_expr("day"))
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
    """Add ``service``, ``destination_prefix`` and ``_ambiguous`` (longest prefix for MOC).

    Only MOC rows go through the prefix joins (one join per distinct prefix length, longest
    first; a row stops at its first match); the other rows take their kind as the service.
    """
    is_moc = pl.col("kind") == "moc"
    other = ev.filter(~is_moc).with_columns(
        pl.col("kind").alias("service"),
        pl.lit("").alias("destination_prefix"),
        pl.lit(False).alias("_ambiguous"),
    )
    moc = ev.filter(is_moc)
    dest = tariff.destinations
    lengths = sorted(set(dest["_plen"].to_list()), reverse=True)
    found: list[pl.DataFrame] = []
    for length in lengths:
        if moc.height == 0:
            break
        part = dest.filter(pl.col("_plen") == length).select(
            "day",
            "partner",
            pl.col("destination_prefix"),
            pl.col("service"),
            pl.col("ambiguous").alias("_ambiguous"),
        )
        hit = moc.with_columns(pl.col("number").str.slice(0, length).alias("destination_prefix"))
        hit = hit.join(part, on=["day", "partner", "destination_prefix"], how="inner")
        found.append(
            hit.with_columns(
                pl.when(pl.col("_ambiguous"))
                .then(None)
                .otherwise(pl.col("service"))
                .alias("service")
            )
        )
        moc = moc.join(hit.select("row_id"), on="row_id", how="anti")
    # MOC rows no prefix matches (no MOC row at all for the partner and day)
    found.append(
        moc.with_columns(
            pl.lit(None, pl.String).alias("destination_prefix"),
            pl.lit(None, pl.String).alias("service"),
            pl.lit(False).alias("_ambiguous"),
        )
    )
    cols = [*ev.columns, "service", "destination_prefix", "_ambiguous"]
    return pl.concat([other.select(cols), *(f.select(cols) for f in found)])


_PRICED = (
    "row_id",
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


def _pow10(k: pl.Expr) -> pl.Expr:
    """``10**k`` for small non-negative integer columns (no float, no generic pow)."""
    out = pl.lit(1, pl.Int64)
    for i in range(1, 19):
        out = pl.when(k == i).then(pl.lit(10**i, pl.Int64)).otherwise(out)
    return out


def _price(matched: pl.DataFrame) -> pl.DataFrame:
    """Units, charge (rounded once) and tax of the rows that found their tariff row.

    The exact charge is ``n / d`` with ``n = price × units × 10**k_up`` and
    ``d = unit × 10**k_down``; Int64 when the largest possible ``n`` fits, else Int128.
    """
    units = charged_units_expr(
        pl.col("usage").fill_null(0),
        pl.col("minimum_units"),
        pl.col("initial_increment"),
        pl.col("subsequent_increment"),
    )
    priced = matched.with_columns(
        units.alias("charged_units"),
        (pl.col("scale").cast(pl.Int64) - pl.col("price_scale")).clip(lower_bound=0).alias("_ku"),
        (pl.col("price_scale") - pl.col("scale").cast(pl.Int64)).clip(lower_bound=0).alias("_kd"),
    )
    bound = priced.select(
        pl.col("price").max(), pl.col("charged_units").max(), pl.col("_ku").max()
    ).row(0)
    wide = any(v is None for v in bound) or (
        int(bound[0]) * max(int(bound[1]), 1) * 10 ** int(bound[2]) >= 2**62
    )
    dtype = pl.Int128 if wide else pl.Int64
    n = pl.col("price").cast(dtype) * pl.col("charged_units") * _pow10(pl.col("_ku"))
    d = pl.col("unit").cast(dtype) * _pow10(pl.col("_kd"))
    # the exact charge once (a column), then what is made of it
    priced = priced.with_columns(round_div_expr(n, d, pl.col("rounding"), dtype=dtype).alias("_x"))
    exact = pl.col("_x")
    # checked: a charge beyond VALUE_LIMIT is held (unrated, with its reason), never wrapped
    over = ((exact > VALUE_LIMIT) | (exact < -VALUE_LIMIT)).fill_null(False)
    priced = priced.with_columns(
        pl.when(over).then(None).otherwise(exact).cast(pl.Int64).alias("charge"),
        over.alias("_over"),
    )
    priced = priced.with_columns(
        tax_value_expr(pl.col("charge"), pl.col("tax_rate")).alias("tax"),
        pl.when(pl.col("_over")).then(pl.lit("unrated")).otherwise(pl.lit("rated")).alias("status"),
        pl.when(pl.col("_over"))
        .then(
            pl.format(
                "the charge of {} units at IOT row {} is above {} (the value limit): held; "
                "check the usage of the record and the price of the IOT row",
                pl.col("charged_units"),
                pl.col("iot_key"),
                pl.lit(str(VALUE_LIMIT)),
            )
        )
        .otherwise(pl.lit(None, pl.String))
        .alias("reason"),
    )
    same = (pl.col("_iot_currency") == pl.col("currency")).fill_null(False)
    ok = priced.filter(same)
    bad = priced.filter(~same).with_columns(
        pl.lit(None, pl.Int64).alias("charge"),
        pl.lit(None, pl.Int64).alias("tax"),
        pl.lit("unrated").alias("status"),
        pl.when(pl.col("currency").is_null())
        .then(pl.format("no agreement with {} on this date", pl.col("partner")))
        .otherwise(
            pl.format(
                "IOT row {} is in {}, the charge must be in {}",
                pl.col("iot_key"),
                pl.col("_iot_currency"),
                pl.col("currency"),
            )
        )
        .alias("reason"),
    )
    return pl.concat([ok.select(_PRICED), bad.select(_PRICED)])


def _why_not(unmatched: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """The reason of each row that found no tariff row (a few rows: strings are cheap here)."""
    ev = unmatched.join(keys.with_columns(pl.lit(True).alias("_has_row")), on=_KEY, how="left")
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
    return ev.select(
        "row_id",
        "service",
        "destination_prefix",
        pl.lit("unrated").alias("status"),
        reason.alias("reason"),
    )


def rate_usage(usage: pl.DataFrame, tariff: Tariff) -> pl.DataFrame:
    """Rate usage rows with a prepared tariff.

    ``usage`` needs: ``row_id`` (unique), ``partner``, ``kind`` (one of :data:`KINDS`),
    ``number`` (called number, for MOC), ``local_start`` (datetime), ``usage`` (seconds,
    events or bytes), ``scale`` (decimal places of the charge) and ``currency`` (the currency
    the charge must be in). Rows keep their order; :data:`RATED_COLUMNS` are added.
    """
    base = usage.select(
        "row_id", "partner", "kind", "number", "local_start", "usage", "scale", "currency"
    ).with_columns(pl.col("local_start").dt.date().alias("day"))
    ev = _resolve_service(base, tariff)
    ev = ev.with_columns(
        (
            pl.col("local_start").dt.hour().cast(pl.Int32) * 3600
            + pl.col("local_start").dt.minute().cast(pl.Int32) * 60
            + pl.col("local_start").dt.second().cast(pl.Int32)
        ).alias("_tod"),
        pl.col("local_start")
        .dt.weekday()
        .replace_strict({d: 1 << d for d in range(1, 8)}, return_dtype=pl.Int64)
        .alias("_wbit"),
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
    tod, start, end = pl.col("_tod"), pl.col("band_start"), pl.col("band_end")
    after_start, before_end = tod >= start, tod < end
    in_band = ((pl.col("_mask") & pl.col("_wbit")) != 0) & (
        (after_start & before_end) | ((start >= end) & (after_start | before_end))
    )
    # overlapping bands are refused by prepare_tariff, so at most one row per event matches
    priced_cols = ["row_id", *_KEY, "_tod", "_wbit", "usage", "scale", "currency"]
    matched = (
        ev.filter(pl.col("service").is_not_null())
        .select(priced_cols)
        .join(rows, on=_KEY)
        .filter(in_band)
    )
    unmatched = ev.join(matched.select("row_id"), on="row_id", how="anti")
    result = pl.concat(
        [_price(matched), _why_not(unmatched, rows.select(_KEY).unique())], how="diagonal"
    )
    if result.height == usage.height and _dense(usage["row_id"]):
        # every row is in exactly one part: put them back in order without a join
        ordered = result.sort("row_id").select(RATED_COLUMNS)
        return pl.concat([usage, ordered], how="horizontal")
    out = usage.join(result, on="row_id", how="left", maintain_order="left")
    return out.select(*usage.columns, *RATED_COLUMNS)


def _dense(row_id: pl.Series) -> bool:
    """``row_id`` is 0, 1, …, n-1 in order (what ``with_row_index`` gives)."""
    n = row_id.len()
    return n == 0 or (
        row_id[0] == 0 and row_id[n - 1] == n - 1 and bool(row_id.diff().drop_nulls().eq(1).all())
    )
