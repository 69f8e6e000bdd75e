"""Exact money: integers with a scale, rounded once (Python and polars forms of the same rules).

An amount is an integer ``v`` meaning ``v / 10**scale``. A charge is computed as the exact
fraction ``n / d`` of two integers and rounded once to the target scale with the IOT's rule:

* ``half_up``: halves away from zero (amounts here are never negative);
* ``half_even``: halves to the even neighbour (banker's rounding);
* ``up``: any remainder rounds up (ceiling);
* ``down``: remainders are dropped (floor).
"""

from __future__ import annotations

from typing import Literal

import polars as pl

__all__ = [
    "ROUNDING",
    "Rounding",
    "charged_units",
    "charged_units_expr",
    "price_fraction",
    "round_div",
    "round_div_expr",
    "tax_value",
    "tax_value_expr",
]

Rounding = Literal["half_up", "half_even", "up", "down"]
ROUNDING: tuple[Rounding, ...] = ("half_up", "half_even", "up", "down")
TAX_RATE_SCALE = 7  # TAP taxRate: percent with 5 implied decimals → a fraction with 7


def round_div(n: int, d: int, rule: str = "half_up") -> int:
    """``n / d`` rounded to an integer by ``rule`` (``n >= 0``, ``d > 0``)."""
    if d <= 0 or n < 0:
        msg = f"round_div needs n >= 0 and d > 0, not {n}/{d}"
        raise ValueError(msg)
    q, r = divmod(n, d)
    if rule == "down" or r == 0:
        return q
    if rule == "up":
        return q + 1
    if rule == "half_up":
        return q + (2 * r >= d)
    if rule == "half_even":
        return q + (2 * r > d or (2 * r == d and q % 2 == 1))
    msg = f"unknown rounding rule `{rule}`"
    raise ValueError(msg)


def price_fraction(
    price: int, price_scale: int, units: int, unit: int, scale: int
) -> tuple[int, int]:
    """``price/10**price_scale × units/unit`` as a fraction ``n/d`` in units of ``10**-scale``."""
    n = price * units * 10 ** max(0, scale - price_scale)
    d = unit * 10 ** max(0, price_scale - scale)
    return n, d


def charged_units(usage: int, minimum: int, initial: int, subsequent: int) -> int:
    """Units charged for ``usage`` under a charging policy.

    The first ``initial`` units are charged as one block, then blocks of ``subsequent``; the
    result is at least ``minimum`` (zero usage is charged ``minimum``). 95 s at 30/1 → 95;
    at 60/60 → 120; 10 s at 30/1 → 30.
    """
    if usage <= 0:
        return minimum
    if usage <= initial:
        units = initial
    else:
        units = initial + -(-(usage - initial) // subsequent) * subsequent
    return max(units, minimum)


def tax_value(amount: int, tax_rate: int) -> int:
    """Tax on ``amount`` at a TAP taxRate (``2000000`` = 20 %), rounded half up."""
    return round_div(amount * tax_rate, 10**TAX_RATE_SCALE)


# ---------------------------------------------------------------------------------------------
# the same rules on columns (Int128 inside, so price × units × 10**k never overflows)


def round_div_expr(
    n: pl.Expr, d: pl.Expr, rule: pl.Expr, *, dtype: type[pl.DataType] = pl.Int128
) -> pl.Expr:
    """Column form of :func:`round_div` (``rule`` is a column of rule names).

    ``dtype`` is the integer type of the arithmetic: Int128 unless the caller knows that
    ``2 × n`` fits in Int64.
    """
    n = n.cast(dtype)
    d = d.cast(dtype)
    q = n // d
    r = n % d
    twice = 2 * r
    up = (
        (r != 0)
        & (
            (rule == "up")
            | ((rule == "half_up") & (twice >= d))
            | ((rule == "half_even") & ((twice > d) | ((twice == d) & (q % 2 == 1))))
        )
    ).cast(dtype)
    return q + up


def charged_units_expr(
    usage: pl.Expr, minimum: pl.Expr, initial: pl.Expr, subsequent: pl.Expr
) -> pl.Expr:
    """Column form of :func:`charged_units`."""
    over = usage - initial
    blocks = (over + subsequent - 1) // subsequent
    units = pl.when(usage <= initial).then(initial).otherwise(initial + blocks * subsequent)
    return pl.when(usage <= 0).then(minimum).otherwise(pl.max_horizontal(units, minimum))


def tax_value_expr(amount: pl.Expr, tax_rate: pl.Expr) -> pl.Expr:
    """Column form of :func:`tax_value`."""
    n = amount.cast(pl.Int128) * tax_rate
    half_up: pl.Expr = (2 * n + 10**TAX_RATE_SCALE) // (2 * 10**TAX_RATE_SCALE)
    return half_up.cast(pl.Int64)
