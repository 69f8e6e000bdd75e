"""Vectorised decoding of fixed-width fields for many records at once.

Records of one type are handed over as *pieces*: ``count`` rows that start at ``offset`` in a
buffer and follow each other every ``stride`` bytes (a run of lines of the same length in the
file, read in place, or a blank-padded copy of truncated lines).

Numbers are parsed with the SWAR method: every numeric field is cut into loads of 1, 2, 4 or
8 bytes holding up to 8 digits; all loads of one width are gathered row by row into one
(rows, loads) matrix through an overlapping strided view (one NumPy call per width); then
log2(width) mask-multiply-shift steps turn the ASCII digits of every load into its value at
once, and a field is its loads' values combined. Digits are checked in the same matrices.
Text fields are copied as one k-byte element per row. The work is a few array operations per
piece and per field, never a Python loop per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from clearing.codecs.ciber._layouts import DIGIT_FORMATS

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from clearing.codecs.ciber._layouts import Layout

__all__ = ["PIECE_ROWS", "THREADS", "Columns", "Piece", "decode_piece", "part_name", "plan_for"]

#: Rows decoded together: big enough that NumPy releases the GIL for most of the work.
PIECE_ROWS = 16384
#: Worker threads for pieces, Arrow conversions and the line scan (the machine has 2 cores).
THREADS = 2

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
    k50: int  # + 0x50 in the field's bytes (bit 7 set iff byte >= "0"), + 0x80 elsewhere
    k46: int  # + 0x46 in the field's bytes: bit 7 set iff byte > "9"; + 0 elsewhere


@dataclass(frozen=True, slots=True)
class _NumPlan:
    name: str
    loads: tuple[_Load, ...]
    dtype: np.dtype[Any]
    cols: tuple[int, ...] = ()  # column of each load in its size class's matrix


@dataclass(frozen=True, slots=True)
class _SizeClass:
    """Every load of one size: gathered together as one (rows, loads) matrix per piece."""

    dtype: np.dtype[Any]
    offsets: NDArray[np.intp]
    mask: NDArray[Any]
    shift: NDArray[Any] | None
    k50: NDArray[Any]
    k46: NDArray[Any]
    m80: Any


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
    classes: dict[int, _SizeClass]
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
            _Load(
                offset,
                size,
                width,
                shift,
                fill(0x0F),
                fill(0x50) | (fill(0x80, range(size)) & ~fill(0xFF)),
                fill(0x46),
            )
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
    by_size: dict[int, list[_Load]] = {}

    def place(num: _NumPlan) -> _NumPlan:
        cols = []
        for load in num.loads:
            group = by_size.setdefault(load.size, [])
            cols.append(len(group))
            group.append(load)
        return _NumPlan(num.name, num.loads, num.dtype, tuple(cols))

    numbers = [place(n) for n in numbers]
    checks = [place(n) for n in checks]
    classes: dict[int, _SizeClass] = {}
    for size, group in sorted(by_size.items()):
        dt = _DTYPE[size]

        def vec(attr: str, group: list[_Load] = group, dt: np.dtype[Any] = dt) -> NDArray[Any]:
            return np.array([getattr(g, attr) for g in group], dtype=dt)

        classes[size] = _SizeClass(
            dtype=dt,
            offsets=np.array([g.offset for g in group], dtype=np.intp),
            mask=vec("mask"),
            shift=vec("shift") if any(g.shift for g in group) else None,
            k50=vec("k50"),
            k46=vec("k46"),
            m80=dt.type(int("80" * size, 16)),
        )
    return Plan(
        length=layout.length,
        numbers=tuple(numbers),
        checks=tuple(checks),
        classes=classes,
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


def _gather(piece: Piece, plan: Plan, size: int, cls: _SizeClass) -> NDArray[Any]:
    """All loads of one size for every row of the piece: one gather, row by row."""
    # an overlapping view: element (i, o) is the `size` bytes at offset o of row i
    words: NDArray[Any] = np.ndarray(
        (piece.count, plan.length - size + 1),
        dtype=cls.dtype,
        buffer=piece.buffer,
        offset=piece.offset,
        strides=(piece.stride, 1),
    )
    return words[:, cls.offsets]


def decode_piece(piece: Piece, plan: Plan, out: Columns) -> None:
    """Decode every field of the rows of ``piece`` into ``out`` (rows ``piece.dest``).

    Digits are checked without a loop over bytes: every byte is printable ASCII (< 0x80), so
    bit 7 of ``b + 0x50`` is set iff ``b >= "0"`` and bit 7 of ``b + 0x46`` iff ``b > "9"``,
    with no carry across bytes; AND/OR over a row's loads leaves the flags of non-digits.
    """
    rows: NDArray[np.uint8] = np.ndarray(
        (piece.count, plan.length),
        dtype=np.uint8,
        buffer=piece.buffer,
        offset=piece.offset,
        strides=(piece.stride, 1),
    )
    bad = np.zeros(piece.count, dtype=np.bool_)
    mats: dict[int, NDArray[Any]] = {}
    for size, cls in plan.classes.items():
        m = _gather(piece, plan, size, cls)
        low = np.bitwise_and.reduce(m + cls.k50, axis=1)
        high = np.bitwise_or.reduce(m + cls.k46, axis=1)
        bad |= ((high | ~low) & cls.m80) != 0
        m &= cls.mask
        if cls.shift is not None:
            m <<= cls.shift
        if size > 1:
            full = 2 ** (8 * size) - 1
            for i, (mask, mul, shift) in enumerate(_STEPS[: {2: 1, 4: 2, 8: 3}[size]]):
                if i:
                    m &= cls.dtype.type(mask & full)
                m *= cls.dtype.type(mul & full)
                m >>= cls.dtype.type(shift)
        mats[size] = m
    for num in plan.numbers:
        first = num.loads[0]
        value = mats[first.size][:, num.cols[0]]
        if len(num.loads) > 1:
            value = value.astype(num.dtype)
            for load, col in zip(num.loads[1:], num.cols[1:], strict=True):
                value *= 10**load.width
                np.add(value, mats[load.size][:, col], out=value, casting="unsafe")
        out.ints[num.name][piece.dest] = value
    for name, start, length in plan.texts:
        # one k-byte element per row copies faster than a (rows, k) block
        void = np.dtype(f"V{length}")
        src = np.ndarray(
            (piece.count,),
            dtype=void,
            buffer=piece.buffer,
            offset=piece.offset + start,
            strides=(piece.stride,),
        )
        out.texts[name].view(void)[:, 0][piece.dest] = src
    bad_rows = np.flatnonzero(bad)
    if bad_rows.size:  # rare: find out which fields are bad
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
