"""The "valid on day" rule of every reference table row, in Python, polars and SQL.

A row applies on day ``D`` when ``valid_from <= D and (valid_to is null or D < valid_to)``:
``valid_from`` is the first day it applies, ``valid_to`` the first day it no longer does (end
date exclusive), a null ``valid_to`` is open. :func:`valid_on` (Python), :func:`valid_on_expr`
(polars) and :func:`valid_on_sql` (DuckDB) are the three forms of that one rule;
:func:`rows_valid_on` and :func:`rows_by_day` filter a table with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from datetime import date

__all__ = ["rows_by_day", "rows_valid_on", "valid_on", "valid_on_expr", "valid_on_sql"]


def valid_on(valid_from: date, valid_to: date | None, day: date) -> bool:
    """Whether a row valid from ``valid_from`` to ``valid_to`` (exclusive) applies on ``day``.

    Args:
        valid_from: the first day the row applies.
        valid_to: the first day it no longer applies (``None``: open).
        day: the day asked about.

    Returns:
        ``valid_from <= day and (valid_to is None or day < valid_to)``.
    """
    return valid_from <= day and (valid_to is None or day < valid_to)


def valid_on_expr(
    day: date | str | pl.Expr = "day", *, valid_from: str = "valid_from", valid_to: str = "valid_to"
) -> pl.Expr:
    """The polars form of :func:`valid_on` (null ``day`` or ``valid_from``: not valid).

    Args:
        day: a date, the name of a date column, or an expression.
        valid_from: the column of the first valid day.
        valid_to: the column of the first day no longer valid (null: open).

    Returns:
        A boolean expression.
    """
    d = pl.col(day) if isinstance(day, str) else day if isinstance(day, pl.Expr) else pl.lit(day)
    return (pl.col(valid_from) <= d) & (pl.col(valid_to).is_null() | (d < pl.col(valid_to)))


def valid_on_sql(alias: str, day_sql: str) -> str:
    """The SQL form of :func:`valid_on` for the row ``alias`` (columns ``valid_from``/``valid_to``).

    Args:
        alias: the table alias of the reference row.
        day_sql: an SQL operand of type DATE (a column, a function call, or a parenthesised
            expression).

    Returns:
        ``alias.valid_from <= day AND (alias.valid_to IS NULL OR day < alias.valid_to)``.
    """
    return (
        f"{alias}.valid_from <= {day_sql} "
        f"AND ({alias}.valid_to IS NULL OR {day_sql} < {alias}.valid_to)"
    )


def rows_valid_on(table: pl.DataFrame, day: date) -> pl.DataFrame:
    """The rows of a reference table valid on ``day``."""
    return table.filter(valid_on_expr(day))


def rows_by_day(table: pl.DataFrame, days: pl.Series) -> pl.DataFrame:
    """One row per distinct day of ``days`` (column ``day``) and row of ``table`` valid on it."""
    frame = pl.DataFrame({"day": days.unique().sort()})
    return frame.join(table, how="cross").filter(valid_on_expr("day"))
