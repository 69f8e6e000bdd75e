"""Old rows against new rows: which changed, and the delta report per partner and service.

One rule for both re-ratings:

* the monthly ``clearing rerate`` (:mod:`clearing.rating.rerate`): a period's rows against
  today's reference data;
* the replay of a sent day (:mod:`clearing.rating.run`): the rated rows that went out in the
  day's file for a partner (*sent*, never rewritten) against the replay's rating of the same
  records (the *re-rate result*).

A row *changed* when its charge, tax, status or tariff row version differs. The report has one
line per (direction, partner, service, currency, scale) with changed rows (:data:`DELTA_COLUMNS`):
events, changed, old total, new total and ``delta = new − old``; it is empty when nothing
changed. For a replay, ``debit`` (``delta`` > 0: the partner owes us more) and ``credit``
(``delta`` < 0: we owe the partner back) are added (:data:`REPLAY_DELTA_COLUMNS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import polars as pl

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DELTA_COLUMNS",
    "DELTA_SCHEMA",
    "REPLAY_DELTA_COLUMNS",
    "REPLAY_DELTA_SCHEMA",
    "ROW_KEYS",
    "delta_report",
    "delta_report_of_parts",
    "replay_delta",
    "replay_rows",
]

DELTA_COLUMNS: Final = (
    "direction",
    "partner",
    "service",
    "currency",
    "charge_scale",
    "events",
    "changed",
    "old_total",
    "new_total",
    "delta",
)
DELTA_SCHEMA: Final = pl.Schema(
    {
        "direction": pl.String(),
        "partner": pl.String(),
        "service": pl.String(),
        "currency": pl.String(),
        "charge_scale": pl.Int64(),
        "events": pl.UInt32(),
        "changed": pl.UInt32(),
        "old_total": pl.Int64(),
        "new_total": pl.Int64(),
        "delta": pl.Int64(),
    }
)
REPLAY_DELTA_COLUMNS: Final = (*DELTA_COLUMNS, "debit", "credit")
REPLAY_DELTA_SCHEMA: Final = pl.Schema(
    {**dict(DELTA_SCHEMA), "debit": pl.Int64(), "credit": pl.Int64()}
)
#: What identifies a visitor record across ratings: its mediation file and line.
ROW_KEYS: Final = ("file", "line")
_KEYS: Final = ["direction", "partner", "service", "currency", "charge_scale"]


def delta_report(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The changed rows and the delta report of old/new row pairs.

    Args:
        rows: one row per record with ``direction``, ``partner``, ``service``, ``currency``,
            ``charge_scale`` (the new values where there are), ``date``, ``file``, ``line`` and
            ``old_``/``new_`` ``status``, ``charge``, ``tax``, ``version`` (null: the record
            has no old / new rating).

    Returns:
        ``(changed rows with a ``changed`` column, sorted; the report of
        :data:`DELTA_COLUMNS`)``.
    """
    return delta_report_of_parts([rows])


def delta_report_of_parts(parts: Iterable[pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`delta_report` of the rows of ``parts`` taken together, one part at a time.

    Only a part, its changed rows and its totals are held at once (a month read a day at a
    time): the totals are sums, so the parts' totals summed are the whole's. No part: an
    empty frame of changed rows (no columns) and an empty report.
    """
    changed: list[pl.DataFrame] = []
    totals: list[pl.DataFrame] = []
    for rows in parts:
        rows = _marked(rows)
        changed.append(rows.filter(pl.col("changed")))
        totals.append(_part_totals(rows))
    if not changed:
        return pl.DataFrame(), pl.DataFrame(schema=DELTA_SCHEMA)
    rows_changed = pl.concat(changed, how="diagonal_relaxed").sort(
        "direction", "partner", "date", "file", "line"
    )
    return rows_changed, _report(totals)


def _marked(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(_changed().alias("changed"))


def _part_totals(rows: pl.DataFrame) -> pl.DataFrame:
    """Per report line of ``rows`` (marked): events, changed, old and new totals."""
    return rows.group_by(_KEYS).agg(
        pl.len().cast(pl.Int64).alias("events"),
        pl.col("changed").sum().cast(pl.Int64).alias("changed"),
        pl.col("old_charge").sum().alias("old_total"),
        pl.col("new_charge").sum().alias("new_total"),
    )


def _report(totals: list[pl.DataFrame]) -> pl.DataFrame:
    """The report of the parts' totals (:func:`_part_totals`) summed: lines with a change."""
    if not totals:
        return pl.DataFrame(schema=DELTA_SCHEMA)
    delta = (
        pl.concat(totals, how="diagonal_relaxed")
        .group_by(_KEYS)
        .agg(pl.col("events", "changed", "old_total", "new_total").sum())
        .filter(pl.col("changed") > 0)
        .with_columns((pl.col("new_total") - pl.col("old_total")).alias("delta"))
        .select(DELTA_COLUMNS)
        .sort(_KEYS, nulls_last=True)
    )
    return delta.cast(DELTA_SCHEMA)


def _changed() -> pl.Expr:
    """A row changed: its charge, tax, status or tariff row version differs."""

    def differs(a: str, b: str) -> pl.Expr:
        return pl.col(a).ne_missing(pl.col(b))

    return (
        differs("old_charge", "new_charge")
        | differs("old_tax", "new_tax")
        | differs("old_status", "new_status")
        | differs("old_version", "new_version")
    )


def replay_rows(sent: pl.DataFrame, rerated: pl.DataFrame) -> pl.DataFrame:
    """Pair a partner's sent rated rows with the replay's rated rows of the same records.

    Records are matched on :data:`ROW_KEYS`; a record only sent (no longer rated) has no new
    values, a record only re-rated (new on the replay) no old ones. Both frames have the
    columns of ``lake/rated_visitors``.
    """
    cols = ["partner", "service", "currency", "charge_scale", "status", "charge", "tax"]
    cols.append("iot_version")

    def side(df: pl.DataFrame, prefix: str) -> pl.DataFrame:
        return df.select(
            *ROW_KEYS,
            pl.col("record_id").alias(f"{prefix}record_id"),
            *(pl.col(c).alias(prefix + c) for c in cols),
        )

    both = side(sent, "old_").join(
        side(rerated, "new_"), on=list(ROW_KEYS), how="full", coalesce=True, maintain_order="left"
    )

    def new_or_old(c: str) -> pl.Expr:
        return pl.coalesce(f"new_{c}", f"old_{c}").alias(c)

    return both.select(
        pl.lit("receivable").alias("direction"),
        pl.lit(None, pl.Date).alias("date"),
        *ROW_KEYS,
        new_or_old("record_id"),
        *(new_or_old(c) for c in ("partner", "service", "currency", "charge_scale")),
        "old_status",
        "new_status",
        "old_charge",
        "new_charge",
        "old_tax",
        "new_tax",
        pl.col("old_iot_version").alias("old_version"),
        pl.col("new_iot_version").alias("new_version"),
    )


def replay_delta(
    pairs: Iterable[tuple[pl.DataFrame, pl.DataFrame]],
) -> tuple[int, pl.DataFrame]:
    """How many rows changed, and the delta (:data:`REPLAY_DELTA_COLUMNS`) of a replay.

    ``pairs``: (sent rows, replayed rows) of the same records (:func:`replay_rows`), taken one
    pair at a time (a big partner's rows cut by their keys: a pair holds every row of its
    records on both sides); new − sent. Nothing changed: 0 and an empty delta. The changed
    rows themselves are not kept.
    """
    n = 0
    totals: list[pl.DataFrame] = []
    for sent, rerated in pairs:
        rows = _marked(replay_rows(sent, rerated))
        n += int(rows["changed"].sum())
        totals.append(_part_totals(rows))
        del rows
    delta = _report(totals).with_columns(
        pl.max_horizontal(pl.col("delta"), pl.lit(0, pl.Int64)).alias("debit"),
        pl.max_horizontal(-pl.col("delta"), pl.lit(0, pl.Int64)).alias("credit"),
    )
    return n, delta.select(REPLAY_DELTA_COLUMNS).cast(REPLAY_DELTA_SCHEMA)
