"""The "valid on day" rule (clearing.rating.validity): Python, polars and SQL forms agree."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.rating.validity import (
    rows_by_day,
    rows_valid_on,
    valid_on,
    valid_on_expr,
    valid_on_sql,
)

D = date(2026, 11, 22)


def test_hand_worked_days() -> None:
    start, end = date(2026, 1, 1), date(2026, 2, 1)
    assert not valid_on(start, end, date(2025, 12, 31))
    assert valid_on(start, end, start)  # first day included
    assert valid_on(start, end, date(2026, 1, 31))
    assert not valid_on(start, end, end)  # end date exclusive
    assert valid_on(start, None, date(2099, 1, 1))  # open
    assert not valid_on(start, start, start)  # empty range


def _rows() -> st.SearchStrategy[list[tuple[date, date | None, date | None]]]:
    near = st.integers(-3, 3).map(lambda k: D + timedelta(days=k))
    row = st.tuples(near, st.none() | near, st.none() | near)
    return st.lists(row, min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(_rows())
def test_three_forms_agree(rows: list[tuple[date, date | None, date | None]]) -> None:
    py = [day is not None and valid_on(vf, vt, day) for vf, vt, day in rows]
    frame = pl.DataFrame(
        {
            "valid_from": [r[0] for r in rows],
            "valid_to": [r[1] for r in rows],
            "day": [r[2] for r in rows],
        },
        schema={"valid_from": pl.Date, "valid_to": pl.Date, "day": pl.Date},
    )
    polars = frame.select(valid_on_expr("day").fill_null(False).alias("v"))["v"].to_list()
    con = duckdb.connect()
    con.register("r", frame.with_row_index("i").to_arrow())
    sql = con.execute(
        f"SELECT coalesce({valid_on_sql('r', 'r.day')}, false) FROM r ORDER BY i"
    ).fetchall()
    assert polars == py
    assert [v for (v,) in sql] == py


@settings(max_examples=50, deadline=None)
@given(_rows())
def test_table_filters_follow_the_rule(rows: list[tuple[date, date | None, date | None]]) -> None:
    table = pl.DataFrame(
        {"valid_from": [r[0] for r in rows], "valid_to": [r[1] for r in rows]},
        schema={"valid_from": pl.Date, "valid_to": pl.Date},
    ).with_row_index("i")
    assert rows_valid_on(table, D)["i"].to_list() == [
        i for i, (vf, vt, _) in enumerate(rows) if valid_on(vf, vt, D)
    ]
    days = pl.Series("d", [D, D + timedelta(days=1), D], dtype=pl.Date)
    got = sorted(rows_by_day(table, days).select("day", "i").rows())
    want = sorted(
        (d, i)
        for d in (D, D + timedelta(days=1))
        for i, (vf, vt, _) in enumerate(rows)
        if valid_on(vf, vt, d)
    )
    assert got == want
