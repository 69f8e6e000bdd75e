"""Exact money: the one owner of rounding, FX conversion and ISO 4217 minor units.

An amount is an integer ``v`` meaning ``v / 10**scale``; money is never a float. A charge or a
conversion is the exact fraction ``n / d`` of two integers, rounded **once** to the target
scale with a rule:

* ``half_up``: halves away from zero (``round_div(5, 2) == 3``, ``round_div(-5, 2) == -3``);
* ``half_even``: halves to the even neighbour (banker's rounding);
* ``up``: any remainder rounds away from zero (the ceiling of a positive amount);
* ``down``: the remainder is dropped (towards zero; the floor of a positive amount).

Rounding is symmetric about zero: the rule is applied to ``|n|`` and the sign put back, so a
refund rounds to minus what the charge rounds to.

**FX** (:func:`convert`): ``amount / 10**scale`` units of a currency worth ``r_src / 10**s_src``
per SDR, in units of ``10**-m`` of a currency worth ``r_dst / 10**s_dst`` per SDR (SDR itself:
rate 1, scale 0), is ``amount × r_dst × 10**(s_src + m) / (r_src × 10**(scale + s_dst))``,
rounded half up once (through SDR, never twice).

**Minor units** (:data:`MINOR_UNITS`, :func:`minor_units`): decimals of a settlement
currency (ISO 4217), 2 unless listed.

Every rule has three forms, built from the same definitions (:func:`_half_up` and
:func:`_fx_fraction` are written once over ``+ * //`` and applied to Python integers, to polars
expressions and to SQL text):

* Python on integers: :func:`round_div`, :func:`convert`, :func:`minor_units`,
  :func:`tax_value`;
* polars expressions: :func:`round_div_expr`, :func:`convert_expr`, :func:`minor_units_expr`,
  :func:`tax_value_expr` (Int128 inside, so ``price × units × 10**k`` never overflows);
* DuckDB macros: :func:`duckdb_macros` (``p10``, ``half_up``, ``fx_pos``, ``fx``, ``minor``;
  HUGEINT inside). ``p10(k)`` is ``CAST(power(10, k) AS HUGEINT)``: exact for ``k <= 22``, the
  range of every scale here.

The charging policy of an IOT (:func:`charged_units`) lives here too: it decides the units the
price is multiplied by, before the one rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DURATION_LIMIT",
    "MINOR_UNITS",
    "ROUNDING",
    "TAX_RATE_SCALE",
    "VALUE_LIMIT",
    "VOLUME_LIMIT",
    "Rounding",
    "charged_units",
    "charged_units_expr",
    "convert",
    "convert_expr",
    "duckdb_macros",
    "exact_sum",
    "minor_units",
    "minor_units_expr",
    "price_fraction",
    "round_div",
    "round_div_expr",
    "tax_value",
    "tax_value_expr",
]

Rounding = Literal["half_up", "half_even", "up", "down"]
ROUNDING: tuple[Rounding, ...] = ("half_up", "half_even", "up", "down")
TAX_RATE_SCALE = 7  # TAP taxRate: percent with 5 implied decimals → a fraction with 7

# ISO 4217 minor units of the settlement currencies that are not 2
MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3}

#: The largest volume, duration or amount one TAP value may hold (2^53 − 1). TD.57 gives
#: AbsoluteAmount 8 octets; beyond 2^53 a value is no longer exact as a workbook number, and
#: 1024 such values already overflow an int64 sum: a value above is a range finding on its
#: event (``event.value.limit``). Sums are taken wide anyway (:func:`exact_sum`, HUGEINT,
#: Int128), never in int64.
VALUE_LIMIT = (1 << 53) - 1

#: The longest call event accepted (TotalCallEventDuration, seconds): 1 000 000 s, about 11.6
#: days. TD.57 has no maximum, but a network closes a call or a session with a partial record
#: long before (a day, typically); a longer duration is a range finding on its event
#: (``event.duration.limit``), never a time that overflows a date or a timestamp.
DURATION_LIMIT = 1_000_000

#: The largest data volume of one event, per direction (DataVolumeIncoming / -Outgoing, bytes):
#: 2^40 (1 TiB). Above it a value is a range finding on its event (``event.volume.limit``); the
#: sum of both directions of any accepted event stays far below 2^63.
VOLUME_LIMIT = 1 << 40

_T = TypeVar("_T", int, pl.Expr, "_Sql")


def exact_sum(values: pa.Array | pa.ChunkedArray) -> int:
    """The exact sum of an integer column (nulls count 0) as a Python int, never wrapped.

    Arrow's and polars' int64 sums wrap silently (2^62 + 2^62 gives −2^63); this one sums in
    38-digit decimals.
    """
    total = pc.sum(values.cast(pa.decimal128(38, 0))).as_py()
    return 0 if total is None else int(total)


# ---------------------------------------------------------------------------------------------
# the definitions, written once over + * // (non-negative operands)


def _half_up(n: _T, d: _T) -> _T:
    """``n / d`` rounded half up, for ``n >= 0`` and ``d > 0``."""
    return (2 * n + d) // (2 * d)


def _fx_fraction(
    amount: _T,
    scale: _T,
    r_src: _T,
    s_src: _T,
    r_dst: _T,
    s_dst: _T,
    m: _T,
    *,
    wide: Callable[[_T], _T],
    p10: Callable[[_T], _T],
) -> tuple[_T, _T]:
    """The exact conversion as ``(n, d)`` (see the module docstring)."""
    n = wide(amount) * r_dst * p10(s_src + m)
    d = wide(r_src) * p10(scale + s_dst)
    return n, d


# ---------------------------------------------------------------------------------------------
# Python


def round_div(n: int, d: int, rule: str = "half_up") -> int:
    """``n / d`` rounded to an integer by ``rule`` (symmetric about zero; ``d > 0``).

    Raises:
        ValueError: ``d <= 0`` or an unknown rule.
    """
    if d <= 0:
        msg = f"round_div needs d > 0, not {n}/{d}"
        raise ValueError(msg)
    a = abs(n)
    q, r = divmod(a, d)
    if rule == "half_up":
        q = _half_up(a, d)
    elif rule == "half_even":
        q += 2 * r > d or (2 * r == d and q % 2 == 1)
    elif rule == "up":
        q += r != 0
    elif rule != "down":
        msg = f"unknown rounding rule `{rule}`"
        raise ValueError(msg)
    return -q if n < 0 else q


def convert(amount: int, scale: int, r_src: int, s_src: int, r_dst: int, s_dst: int, m: int) -> int:
    """``amount / 10**scale`` of a currency in units of ``10**-m`` of another, half up once.

    The source is worth ``r_src / 10**s_src`` per SDR, the target ``r_dst / 10**s_dst`` (SDR:
    rate 1, scale 0). ``convert(1, 0, 1, 0, 1, 0, 2) == 100``; ``convert(5, 3, 1, 0, 1, 0, 2)``
    (0.005 to cents) ``== 1``.
    """
    n, d = _fx_fraction(amount, scale, r_src, s_src, r_dst, s_dst, m, wide=int, p10=_p10)
    return round_div(n, d)


def minor_units(currency: str | None) -> int:
    """Decimal places of a currency's minor unit (ISO 4217; 2 unless listed)."""
    return MINOR_UNITS.get(currency or "", 2)


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


def _p10(k: int) -> int:
    return int(10**k)


# ---------------------------------------------------------------------------------------------
# polars


def round_div_expr(
    n: pl.Expr, d: pl.Expr, rule: pl.Expr | str = "half_up", *, dtype: type[pl.DataType] = pl.Int128
) -> pl.Expr:
    """Column form of :func:`round_div` (``rule``: a rule name, or a column of rule names).

    ``dtype`` is the integer type of the arithmetic: Int128 unless the caller knows that
    ``2 × d`` and ``|n|`` fit in Int64.
    """
    n = n.cast(dtype)
    d = d.cast(dtype)
    a = n.abs()
    if isinstance(rule, str):
        if rule not in ROUNDING:
            msg = f"unknown rounding rule `{rule}`"
            raise ValueError(msg)
        if rule == "half_up":
            return _signed(n, _half_up(a, d))
        rule = pl.lit(rule)
    q = a // d
    r = a % d
    twice = 2 * r
    up = (
        (r != 0)
        & (
            (rule == "up")
            | ((rule == "half_up") & (twice >= d))
            | ((rule == "half_even") & ((twice > d) | ((twice == d) & (q % 2 == 1))))
        )
    ).cast(dtype)
    return _signed(n, q + up)


def _signed(n: pl.Expr, magnitude: pl.Expr) -> pl.Expr:
    # 0 - x: polars has no unary minus on Int128
    return pl.when(n < 0).then(0 - magnitude).otherwise(magnitude)


def convert_expr(
    amount: pl.Expr,
    scale: pl.Expr,
    r_src: pl.Expr,
    s_src: pl.Expr,
    r_dst: pl.Expr,
    s_dst: pl.Expr,
    m: pl.Expr,
) -> pl.Expr:
    """Column form of :func:`convert` (Int128; null when any input is null)."""
    n, d = _fx_fraction(
        amount,
        scale.cast(pl.Int64),
        r_src,
        s_src.cast(pl.Int64),
        r_dst,
        s_dst.cast(pl.Int64),
        m.cast(pl.Int64),
        wide=lambda x: x.cast(pl.Int128),
        p10=lambda k: pl.lit(10, dtype=pl.Int128).pow(k),
    )
    return round_div_expr(n, d, "half_up")


def minor_units_expr(currency: pl.Expr) -> pl.Expr:
    """Column form of :func:`minor_units` (Int64)."""
    return currency.replace_strict(MINOR_UNITS, default=2, return_dtype=pl.Int64)


def charged_units_expr(
    usage: pl.Expr, minimum: pl.Expr, initial: pl.Expr, subsequent: pl.Expr
) -> pl.Expr:
    """Column form of :func:`charged_units`."""
    over = usage - initial
    blocks = (over + subsequent - 1) // subsequent
    units = pl.when(usage <= initial).then(initial).otherwise(initial + blocks * subsequent)
    return pl.when(usage <= 0).then(minimum).otherwise(pl.max_horizontal(units, minimum))


def tax_value_expr(amount: pl.Expr, tax_rate: pl.Expr) -> pl.Expr:
    """Column form of :func:`tax_value` (Int64)."""
    n = amount.cast(pl.Int128) * tax_rate
    return round_div_expr(n, pl.lit(10**TAX_RATE_SCALE), "half_up").cast(pl.Int64)


# ---------------------------------------------------------------------------------------------
# DuckDB


class _Sql:
    """SQL text of an integer expression, built with Python operators (fully parenthesised)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    @staticmethod
    def _of(value: _Sql | int) -> str:
        return value.text if isinstance(value, _Sql) else str(value)

    def __add__(self, other: _Sql | int) -> _Sql:
        return _Sql(f"({self.text} + {self._of(other)})")

    def __radd__(self, other: int) -> _Sql:
        return _Sql(f"({other} + {self.text})")

    def __mul__(self, other: _Sql | int) -> _Sql:
        return _Sql(f"({self.text} * {self._of(other)})")

    def __rmul__(self, other: int) -> _Sql:
        return _Sql(f"({other} * {self.text})")

    def __floordiv__(self, other: _Sql | int) -> _Sql:
        # DuckDB's // truncates: the same as flooring for the non-negative operands used here
        return _Sql(f"({self.text} // {self._of(other)})")


def duckdb_macros() -> list[str]:
    """The ``CREATE OR REPLACE MACRO`` statements of the SQL forms, in dependency order.

    * ``p10(k)``: ``10**k`` as a HUGEINT;
    * ``half_up(n, d)``: :func:`round_div` with ``half_up``;
    * ``fx_pos(a, scale, r_src, s_src, r_dst, s_dst, m)``: :func:`convert` of ``a >= 0``;
    * ``fx(amount, scale, r_src, s_src, r_dst, s_dst, m)``: :func:`convert`;
    * ``minor(c)``: :func:`minor_units`.
    """
    half_up_pos = _half_up(_Sql("abs(CAST(n AS HUGEINT))"), _Sql("CAST(d AS HUGEINT)"))
    n, den = _fx_fraction(
        *(_Sql(x) for x in ("a", "scale", "r_src", "s_src", "r_dst", "s_dst", "m")),
        wide=lambda x: _Sql(f"CAST({x} AS HUGEINT)"),
        p10=lambda k: _Sql(f"p10({k})"),
    )
    args = "scale, r_src, s_src, r_dst, s_dst, m"
    cases = " ".join(f"WHEN '{c}' THEN {u}" for c, u in sorted(MINOR_UNITS.items()))
    return [
        "CREATE OR REPLACE MACRO p10(k) AS CAST(power(10, k) AS HUGEINT)",
        f"CREATE OR REPLACE MACRO half_up(n, d) AS "
        f"CASE WHEN n < 0 THEN -{half_up_pos} ELSE {half_up_pos} END",
        f"CREATE OR REPLACE MACRO fx_pos(a, {args}) AS {_half_up(n, den)}",
        f"CREATE OR REPLACE MACRO fx(amount, {args}) AS "
        f"CASE WHEN amount < 0 THEN -fx_pos(-CAST(amount AS HUGEINT), {args}) "
        f"ELSE fx_pos(amount, {args}) END",
        f"CREATE OR REPLACE MACRO minor(c) AS CASE c {cases} ELSE 2 END",
    ]
