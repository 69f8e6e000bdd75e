"""The reference tables rating needs, loaded once, and the lookups shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from clearing.errors import ConfigError
from clearing.rating._refdata import read_table
from clearing.rating.validity import rows_by_day, rows_valid_on

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = ["Rates", "longest_prefix"]


@dataclass(frozen=True)
class Rates:
    """The reference tables of one rates folder (``iot``, ``agreements``, ``imsi_ranges``, ``fx``).

    Attributes:
        root: the rates folder.
        iot, agreements, imsi_ranges, fx: the imported tables (:func:`read_table`).
    """

    root: Path
    iot: pl.DataFrame
    agreements: pl.DataFrame
    imsi_ranges: pl.DataFrame
    fx: pl.DataFrame

    @classmethod
    def load(cls, rates_dir: Path) -> Rates:
        """Read the four tables.

        Raises:
            ConfigError: a table is missing (not imported).
        """
        return cls(
            rates_dir,
            read_table(rates_dir, "iot"),
            read_table(rates_dir, "agreements"),
            read_table(rates_dir, "imsi_ranges"),
            read_table(rates_dir, "fx"),
        )

    def agreements_on(self, day: date) -> pl.DataFrame:
        """The agreement version of every partner valid on ``day``."""
        return rows_valid_on(self.agreements, day)

    def fx_rate(self, currency: str, day: date) -> tuple[int, int, str]:
        """``(rate, scale, version)``: units of ``currency`` per SDR valid on ``day``.

        Raises:
            ConfigError: the fx table has no rate of the currency for the day.
        """
        if currency == "SDR":
            return 1, 0, "-"
        rows = rows_valid_on(self.fx, day).filter(pl.col("currency") == currency)
        if rows.height == 0:
            msg = (
                f"rates table `fx` has no rate for {currency} valid on {day}: add a row to "
                f"`{self.root / 'sources' / 'fx.csv'}` and run `clearing rates import`"
            )
            raise ConfigError(msg)
        r = rows.row(0, named=True)
        return int(r["rate"]), int(r["rate_scale"]), str(r["version"])


def longest_prefix(
    events: pl.DataFrame,
    *,
    value: str,
    table: pl.DataFrame,
    prefix: str,
    columns: list[str],
    day: str = "day",
) -> pl.DataFrame:
    """Add ``columns`` of the ``table`` row whose ``prefix`` is the longest prefix of ``value``.

    Only rows valid on each event's ``day`` count. One left join per distinct prefix length
    (a handful), so the cost does not depend on the number of table rows.

    Raises:
        ConfigError: two rows valid on one day share a prefix.
    """
    keys = events.select(day, value).unique()
    valid = rows_by_day(table, keys[day]).with_columns(pl.col(prefix).str.len_chars().alias("_len"))
    dup = valid.filter(pl.len().over("day", prefix) > 1)
    if dup.height:
        first = dup.row(0, named=True)
        msg = f"reference data: prefix `{first[prefix]}` is listed twice for {first['day']}"
        raise ConfigError(msg)
    # the match is made once per distinct (day, value), then joined back to the events
    out = keys.with_columns(pl.lit(None, pl.Int64).alias("_found_len"))
    for c in columns:
        out = out.with_columns(pl.lit(None, valid.schema[c]).alias(c))
    for length in sorted(set(valid["_len"].to_list()), reverse=True):
        part = valid.filter(pl.col("_len") == length).select(
            pl.col("day").alias(day),
            pl.col(prefix).alias("_k"),
            *(pl.col(c).alias(f"_v_{c}") for c in columns),
            pl.lit(length, pl.Int64).alias("_l"),
        )
        out = (
            out.with_columns(
                pl.when(pl.col("_found_len").is_null())
                .then(pl.col(value).str.slice(0, length))
                .alias("_k")
            )
            .join(part, on=[day, "_k"], how="left")
            .with_columns(
                *(pl.coalesce(c, f"_v_{c}").alias(c) for c in columns),
                pl.coalesce("_found_len", "_l").alias("_found_len"),
            )
            .drop("_k", "_l", *(f"_v_{c}" for c in columns))
        )
    found = out.drop("_found_len")
    return events.join(found, on=[day, value], how="left", maintain_order="left", nulls_equal=True)
