"""The money rules: Python, polars and DuckDB forms agree, and hand-worked examples."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.money import (
    ROUNDING,
    convert,
    convert_expr,
    duckdb_macros,
    minor_units,
    minor_units_expr,
    round_div,
    round_div_expr,
    tax_value,
    tax_value_expr,
)

INT64 = 2**63 - 1
# amounts: zero, small, ties, negatives, up to the Int64 limits
amounts = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-INT64, INT64),
    st.sampled_from([0, 1, -1, 5, -5, 15, -15, INT64, -INT64]),
)
divisors = st.one_of(st.integers(1, 20), st.integers(1, INT64), st.sampled_from([2, 10, INT64]))
# fx operands within what HUGEINT and Int128 hold (2 × |amount| × rate × 10**12 < 2**127):
# |amount| < 2**63, rates < 2**22 (1.2 per SDR at scale 6 is 1_200_000), scales <= 6
rates = st.integers(1, 2**22 - 1)
scales = st.integers(0, 6)
currencies = st.sampled_from(["EUR", "JPY", "BHD", "USD", "SDR", "KWD", ""])


@settings(max_examples=150, deadline=None)
@given(
    n=amounts,
    d=divisors,
    fx=st.tuples(amounts, scales, rates, scales, rates, scales, scales),
    tax_rate=st.integers(0, 10**7),
    currency=currencies,
)
def test_python_polars_and_duckdb_forms_agree(
    n: int,
    d: int,
    fx: tuple[int, int, int, int, int, int, int],
    tax_rate: int,
    currency: str,
) -> None:
    amount, scale, r_src, s_src, r_dst, s_dst, m = fx
    rows = [{"n": n, "d": d, "rule": r} for r in ROUNDING]
    frame = pl.DataFrame(rows, schema={"n": pl.Int64, "d": pl.Int64, "rule": pl.String})
    by_column = frame.select(round_div_expr(pl.col("n"), pl.col("d"), pl.col("rule")))
    expected = [round_div(n, d, r) for r in ROUNDING]
    assert by_column.to_series().to_list() == expected
    for r, want in zip(ROUNDING, expected, strict=True):
        assert frame.head(1).select(round_div_expr(pl.col("n"), pl.col("d"), r)).item() == want

    one = pl.DataFrame(
        {
            "amount": [amount],
            "scale": [scale],
            "r_src": [r_src],
            "s_src": [s_src],
            "r_dst": [r_dst],
            "s_dst": [s_dst],
            "m": [m],
            "tax_rate": [tax_rate],
            "currency": [currency],
        },
        schema_overrides={"amount": pl.Int64},
    )
    py_fx = convert(amount, scale, r_src, s_src, r_dst, s_dst, m)
    pl_fx = one.select(convert_expr(*(pl.col(c) for c in one.columns[:7]))).item()
    py_tax = tax_value(amount, tax_rate)
    pl_tax = one.select(tax_value_expr(pl.col("amount"), pl.col("tax_rate"))).item()

    con = duckdb.connect()
    for macro in duckdb_macros():
        con.execute(macro)
    sql_half_up, sql_fx, sql_minor = con.execute(
        "SELECT half_up(CAST(? AS BIGINT), CAST(? AS BIGINT)), "
        "fx(CAST(? AS BIGINT), ?, ?, ?, ?, ?, ?), minor(?)",
        [n, d, *fx, currency],
    ).fetchone() or (None, None, None)
    con.close()

    assert int(sql_half_up) == round_div(n, d, "half_up")
    assert pl_fx == py_fx == int(sql_fx)
    assert pl_tax == py_tax
    assert one.select(minor_units_expr(pl.col("currency"))).item() == minor_units(currency)
    assert sql_minor == minor_units(currency)


def test_hand_worked_examples() -> None:
    # half up = halves away from zero, symmetric about zero
    assert round_div(5, 2) == 3
    assert round_div(-5, 2) == -3
    assert round_div(4, 10) == 0
    assert round_div(-4, 10) == 0
    assert round_div(5, 2, "half_even") == 2
    assert round_div(7, 2, "half_even") == 4
    assert round_div(-7, 2, "half_even") == -4
    assert round_div(11, 10, "up") == 2
    assert round_div(-11, 10, "up") == -2
    assert round_div(19, 10, "down") == 1
    assert round_div(-19, 10, "down") == -1
    # 12.345 EUR (scale 3) at 1.2 EUR/SDR → SDR with 6 decimals: 10.2875 SDR
    assert convert(12345, 3, 12, 1, 1, 0, 6) == 10_287_500
    # 1 SDR → JPY (160.5 per SDR, no decimals): 160.5 → 161 (half up)
    assert convert(1, 0, 1, 0, 1605, 1, minor_units("JPY")) == 161
    assert convert(-1, 0, 1, 0, 1605, 1, 0) == -161
    # tax: 20 % of 0.05 at scale 3 = 10 → 10 ; 20 % of 7 = 1.4 → 1; of 8 = 1.6 → 2
    assert tax_value(50, 2_000_000) == 10
    assert tax_value(7, 2_000_000) == 1
    assert tax_value(8, 2_000_000) == 2
    assert minor_units("BHD") == 3
    assert minor_units("EUR") == 2


def test_bad_divisor_or_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="d > 0"):
        round_div(1, 0)
    with pytest.raises(ValueError, match="unknown rounding rule `nearest`"):
        round_div(1, 3, "nearest")
