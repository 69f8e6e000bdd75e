"""Vectorised decoding of fixed-width fields for many records at once.

Records of one type are handed over as *pieces*: ``count`` rows that start at ``offset`` in a
buffer and follow each other every ``stride`` bytes (a run of lines of the same length in the
file, read in place, or a blank-padded copy of truncated lines). For every field the piece is
read through a strided NumPy view; numbers are parsed eight digits at a time with the SWAR
method (one unaligned 1/2/4/8-byte load per row, then log2(width) multiply-shift steps), so
the work is a few array operations per field, never a Python loop per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clearing.codecs.ciber._layouts import DIGIT_FORMATS

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from clearing.codecs.ciber._layouts import Layout

__all__ = ["Columns", "Piece", "decode_piece", "plan_for"]

_DTYPE: dict[int, np.dtype[Any]] = {
    1: np.dtype("<u1"),
    2: np.dtype("<u2"),
    4: np.dtype("<u4"),
    8: np.dtype("<u8"),
}
# SWAR steps: (mask applied before, multiplier, shift) for byte pairs, 16-bit and 32-bit lanes.
_STEPS = (
    (0x0F0F0F0F0F0F0F0F, 2561, 8),
    (0x00FF00FF00FF00FF, 6553601, 16),
    (0x0000FFFF0000FFFF, 42949672960001, 32),
)


@dataclass(frozen=True, slots=True)
class _Load:
    """One load of ``size`` bytes at ``offset`` in the row, holding ``width`` digits."""

    offset: int
    size: int
    width: int
    shift: int  # left shift (bits) when the digits sit at the low end of the load
    mask: int  # keeps the digit nibbles of the bytes that belong to the field
    k50: int  # + 0x50 in the field's bytes: bit 7 set iff byte >= "0" (bytes are < 0x80)
    k46: int  # + 0x46 in the field's bytes: bit 7 set iff byte > "9"
    m80: int  # bit 7 of the field's bytes


@dataclass(frozen=True, slots=True)
class _NumPlan:
    name: str
    loads: tuple[_Load, ...]
    dtype: np.dtype[Any]


# dates, times and durations are parsed as their 2-/4-digit parts: no division afterwards
_PARTS = {
    "date": ((0, 2, "yy"), (2, 2, "mm"), (4, 2, "dd")),
    "time": ((0, 2, "hh"), (2, 2, "mi"), (4, 2, "ss")),
    "duration": ((0, 4, "mmmm"), (4, 2, "ss")),
}


def int_dtype(digits: int) -> np.dtype[Any]:
    """The narrowest signed integer that holds ``digits`` decimal digits."""
    for dt, most in ((np.int8, 2), (np.int16, 4), (np.int32, 9)):
        if digits <= most:
            return np.dtype(dt)
    return np.dtype(np.int64)


def part_name(name: str, part: str) -> str:
    """The column holding one part (``yy``, ``mm``...) of a date/time/duration field."""
    return f"{name}.{part}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to read for one layout: integer fields, text fields and the digit positions."""

    length: int
    numbers: tuple[_NumPlan, ...]
    checks: tuple[_NumPlan, ...]  # digit fields kept as text: checked, not parsed
    texts: tuple[tuple[str, int, int], ...]  # (name, start, length)
    digit_cols: NDArray[np.intp]
    digit_owner: NDArray[np.intp]  # index into ``digit_fields`` of each digit column
    digit_fields: tuple[str, ...]


def _loads(start: int, length: int) -> tuple[_Load, ...]:
    out: list[_Load] = []
    end = start + length
    while end > start:
        width = min(8, end - start)
        size = next(s for s in (1, 2, 4, 8) if s >= width)
        if end - size >= 0:
            offset, shift = end - size, 0
            keep = range(size - width, size)  # the field's bytes are the high ones
        else:  # near the row start: load from the field start, shift the digits up
            offset, shift = end - width, 8 * (size - width)
            keep = range(width)

        def fill(byte: int, keep: range = keep) -> int:
            return sum(byte << (8 * i) for i in keep)

        out.append(
            _Load(offset, size, width, shift, fill(0x0F), fill(0x50), fill(0x46), fill(0x80))
        )
        end -= width
    return tuple(reversed(out))


def plan_for(layout: Layout) -> Plan:
    """Pre-compute the loads of every field of ``layout``."""
    numbers: list[_NumPlan] = []
    checks: list[_NumPlan] = []
    texts: list[tuple[str, int, int]] = []
    cols: list[int] = []
    owner: list[int] = []
    digit_fields: list[str] = []
    for f in layout.fields:
        if f.format in _PARTS:
            for off, length, part in _PARTS[f.format]:
                loads = _loads(f.start + off, length)
                numbers.append(_NumPlan(part_name(f.name, part), loads, int_dtype(length)))
        elif f.format in ("N", "money"):
            numbers.append(_NumPlan(f.name, _loads(f.start, f.length), int_dtype(f.length)))
        elif f.format in ("D", "X", "number"):
            texts.append((f.name, f.start, f.length))
            if f.format != "X":
                checks.append(_NumPlan(f.name, _loads(f.start, f.length), np.dtype(np.int8)))
        if f.format in DIGIT_FORMATS:
            cols.extend(range(f.start, f.end))
            owner.extend([len(digit_fields)] * f.length)
            digit_fields.append(f.name)
    return Plan(
        length=layout.length,
        numbers=tuple(numbers),
        checks=tuple(checks),
        texts=tuple(texts),
        digit_cols=np.asarray(cols, dtype=np.intp),
        digit_owner=np.asarray(owner, dtype=np.intp),
        digit_fields=tuple(digit_fields),
    )


@dataclass(slots=True)
class Piece:
    """``count`` rows at ``offset`` + i * ``stride`` in ``buffer``, for rows ``dest``."""

    buffer: bytes | NDArray[np.uint8]
    offset: int
    stride: int
    count: int
    dest: slice | NDArray[np.intp]


@dataclass(slots=True)
class Columns:
    """Decoded columns of ``n`` records, filled piece by piece.

    ``ints`` hold the raw integer of every N/money/date/time/duration field (e.g. 251122 for a
    date); ``texts`` the raw bytes of D/X/number fields, one row per record; ``bad_digits``
    marks, per field, the records where a digit position holds something else.
    """

    n: int
    ints: dict[str, NDArray[Any]] = field(default_factory=dict)
    texts: dict[str, NDArray[np.uint8]] = field(default_factory=dict)
    bad_digits: dict[str, NDArray[np.bool_]] = field(default_factory=dict)

    @classmethod
    def empty(cls, plan: Plan, n: int) -> Columns:
        """Allocate the columns for ``n`` records."""
        cols = cls(n)
        for num in plan.numbers:
            cols.ints[num.name] = np.zeros(n, dtype=num.dtype)
        for name, _start, length in plan.texts:
            cols.texts[name] = np.empty((n, length), dtype=np.uint8)
        return cols


def _view(piece: Piece, offset: int, dtype: np.dtype[Any]) -> NDArray[Any]:
    return np.ndarray(
        (piece.count,),
        dtype=dtype,
        buffer=piece.buffer,
        offset=piece.offset + offset,
        strides=(piece.stride,),
    )


def _number(
    piece: Piece, num: _NumPlan, bad: NDArray[np.uint64], parse: bool = True
) -> NDArray[Any] | None:
    """Parse the field ``num`` of every row; OR the bit-7 flags of non-digits into ``bad``."""
    acc: NDArray[Any] | None = None
    for load in num.loads:
        dt = _DTYPE[load.size]
        raw: NDArray[Any] = np.array(_view(piece, load.offset, dt))
        # digit check without a loop over bytes: bit 7 of (b + 0x50) ^ (b + 0x46) is set
        # exactly when "0" <= b <= "9" (every byte is printable ASCII, so no carries)
        chk = np.add(raw, dt.type(load.k50))
        chk ^= np.add(raw, dt.type(load.k46))
        chk ^= dt.type(load.m80)
        chk &= dt.type(load.m80)
        np.bitwise_or(bad, chk, out=bad)
        if not parse:
            continue
        v = raw
        v &= dt.type(load.mask)
        if load.shift:
            v <<= dt.type(load.shift)
        if load.size > 1:
            steps = {2: 1, 4: 2, 8: 3}[load.size]
            full = 2 ** (8 * load.size) - 1
            for i, (mask, mul, shift) in enumerate(_STEPS[:steps]):
                if i:
                    v &= dt.type(mask & full)
                v *= dt.type(mul & full)
                v >>= dt.type(shift)
        part = v.astype(num.dtype)
        if acc is None:
            acc = part
        else:
            acc *= 10**load.width
            acc += part
    return acc


def decode_piece(piece: Piece, plan: Plan, out: Columns) -> None:
    """Decode every field of the rows of ``piece`` into ``out`` (rows ``piece.dest``)."""
    rows: NDArray[np.uint8] = np.ndarray(
        (piece.count, plan.length),
        dtype=np.uint8,
        buffer=piece.buffer,
        offset=piece.offset,
        strides=(piece.stride, 1),
    )
    bad = np.zeros(piece.count, dtype=np.uint64)
    for num in plan.numbers:
        value = _number(piece, num, bad)
        assert value is not None
        out.ints[num.name][piece.dest] = value
    for num in plan.checks:
        _number(piece, num, bad, parse=False)
    for name, start, length in plan.texts:
        out.texts[name][piece.dest] = rows[:, start : start + length]
    bad_rows = np.flatnonzero(bad)
    if bad_rows.size:  # rare: find out which fields are bad, one row at a time is fine
        digits = rows[bad_rows][:, plan.digit_cols]
        _mark_bad(piece, plan, (digits - np.uint8(48)) > np.uint8(9), bad_rows, out)


def _mark_bad(
    piece: Piece,
    plan: Plan,
    bad: NDArray[np.bool_],
    bad_rows: NDArray[np.intp],
    out: Columns,
) -> None:
    dest = np.arange(out.n)[piece.dest][bad_rows]
    per_field = np.zeros((bad.shape[0], len(plan.digit_fields)), dtype=np.bool_)
    r, c = np.nonzero(bad)
    per_field[r, plan.digit_owner[c]] = True
    for j in np.flatnonzero(per_field.any(axis=0)):
        name = plan.digit_fields[j]
        mask = out.bad_digits.get(name)
        if mask is None:
            mask = out.bad_digits[name] = np.zeros(out.n, dtype=np.bool_)
        mask[dest[per_field[:, j]]] = True
