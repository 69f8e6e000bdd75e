"""Inbound rating: visitors' CDRs of our network → receivables at the partner's IOT.

For each record (all at once, as joins): the partner from the IMSI (longest ``imsi_ranges``
prefix valid on the local date), the partner's agreement of that date (standard, TAP currency
and decimal places), then :func:`clearing.rating._iot.rate_usage` with the partner's
``inbound`` IOT rows. The output keeps every input column and adds the rating columns;
``status`` says ``rated`` or ``unrated`` (with the ``reason``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import polars as pl

from clearing.rating._book import longest_prefix
from clearing.rating._iot import prepare_tariff, rate_usage
from clearing.rating.validity import valid_on_expr

if TYPE_CHECKING:
    from clearing.rating._book import Rates

__all__ = ["RATED_VISITOR_COLUMNS", "rate_visitors", "visitor_usage"]

# what a rated visitor row adds to the mediation record
RATED_VISITOR_COLUMNS: Final = (
    "partner",
    "standard",
    "service",
    "destination_prefix",
    "time_band",
    "iot_key",
    "iot_version",
    "chargeable_units",
    "charged_units",
    "price",
    "price_scale",
    "unit",
    "rounding",
    "tax_rate",
    "charge",
    "charge_scale",
    "currency",
    "tax",
    "status",
    "reason",
)


def visitor_usage(records: pl.DataFrame) -> pl.DataFrame:
    """The engine's usage columns of mediation records: ``kind``, ``number``, ``usage``."""
    rt = pl.col("record_type")
    usage = (
        pl.when(rt.is_in(("moc", "mtc")))
        .then(pl.col("duration"))
        .when(rt.is_in(("sms_mo", "sms_mt")))
        .then(pl.lit(1, pl.Int64))
        .otherwise(pl.col("volume_up").fill_null(0) + pl.col("volume_down").fill_null(0))
    )
    return records.with_columns(
        rt.alias("kind"),
        pl.when(rt == "moc").then(pl.col("called_number")).alias("number"),
        pl.col("start_time").alias("local_start"),
        usage.cast(pl.Int64).alias("usage"),
    )


def rate_visitors(records: pl.DataFrame, rates: Rates) -> pl.DataFrame:
    """Rate mediation records (:func:`clearing.rating.cdr.read_cdrs` output) with our IOT.

    Returns the records, in their order, with :data:`RATED_VISITOR_COLUMNS` added.

    Raises:
        ConfigError: bad reference data (overlapping time bands, a prefix listed twice).
    """
    # a narrow frame of what rating needs; the records' other columns are not copied
    ev = (
        visitor_usage(records)
        .select("imsi", "kind", "number", "local_start", "usage")
        .with_row_index("row_id")
        .with_columns(pl.col("local_start").dt.date().alias("day"))
    )
    ev = longest_prefix(
        ev, value="imsi", table=rates.imsi_ranges, prefix="imsi_prefix", columns=["partner"]
    )
    days = ev["day"].drop_nulls().unique().sort().to_list()
    agreements = (
        pl.DataFrame({"day": days}, schema={"day": pl.Date})
        .join(rates.agreements, how="cross")
        .filter(valid_on_expr("day"))
        .select(
            "day",
            "partner",
            "standard",
            pl.col("tap_currency").alias("currency"),
            pl.col("tap_decimal_places").alias("scale"),
        )
    )
    ev = ev.join(agreements, on=["day", "partner"], how="left", maintain_order="left")
    tariff = prepare_tariff(rates.iot, "inbound", days)
    usage = ev.select(
        "row_id", "partner", "kind", "number", "local_start", "usage", "scale", "currency"
    )
    rated = rate_usage(usage, tariff)
    extra = rated.select(
        "service",
        "destination_prefix",
        "time_band",
        "iot_key",
        "iot_version",
        pl.col("usage").alias("chargeable_units"),
        "charged_units",
        "price",
        "price_scale",
        "unit",
        "rounding",
        "tax_rate",
        "charge",
        pl.col("scale").cast(pl.Int64).alias("charge_scale"),
        "currency",
        "tax",
        "status",
        "reason",
    )
    # rate_usage keeps the rows and their order: side by side, no join
    out = pl.concat([records, ev.select("partner", "standard"), extra], how="horizontal")
    no_agreement = pl.col("partner").is_not_null() & pl.col("standard").is_null()
    if out.select(no_agreement.any()).item():
        why = pl.format(
            "no agreement with {} valid on {}",
            pl.col("partner"),
            pl.col("start_time").dt.strftime("%Y-%m-%d"),
        )
        out = out.with_columns(
            pl.when(no_agreement)
            .then(pl.lit("unrated"))
            .otherwise(pl.col("status"))
            .alias("status"),
            pl.when(no_agreement).then(why).otherwise(pl.col("reason")).alias("reason"),
        )
    return out.select(*records.columns, *RATED_VISITOR_COLUMNS)
