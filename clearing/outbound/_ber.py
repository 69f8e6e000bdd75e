"""A columnar BER (X.690, definite lengths) writer: one static element tree, many rows at once.

asn1tools encodes one Python value at a time (tens of microseconds per TAP call event). TAP-out
writes hundreds of thousands of events that share a handful of shapes, so this writer takes the
shape once, as a tree of :class:`Node` (tag, members, presence per row), and the values as
numpy columns, then works per *element of the tree*, never per row:

1. bottom-up, the length of every element in every row (absent elements count 0);
2. the rows laid end to end (cumulative sums), each element's offset within its row;
3. top-down, every tag, length and content written into one buffer with fancy indexing.

The bytes are those asn1tools writes for the same values (BER as asn1tools does it: minimal
definite lengths, minimal two's-complement integers, members in definition order, absent
OPTIONAL members left out); ``tests/outbound`` compares the two.

Only APPLICATION-class tags are used (every TAP type has one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "Col",
    "Node",
    "app_tag",
    "bcd_col",
    "bytes_col",
    "const_col",
    "encode_rows",
    "int_col",
    "length_octets",
    "string_col",
]

I64 = np.int64
U8 = np.uint8

# ASCII → nibble value (hex digits, either case), 255 for anything else
_NIBBLE = np.full(256, 255, dtype=U8)
for _i, _c in enumerate(b"0123456789"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _NIBBLE[_c] = 10 + _i
    _NIBBLE[_c - 32] = 10 + _i


def app_tag(number: int, *, constructed: bool) -> bytes:
    """The identifier octets of ``[APPLICATION number]`` (as asn1tools writes them)."""
    first = 0x40 | (0x20 if constructed else 0)
    if number < 31:
        return bytes([first | number])
    groups: list[int] = []
    n = number
    while n:
        groups.append(n & 0x7F)
        n >>= 7
    groups.reverse()
    return bytes([first | 0x1F, *(g | 0x80 for g in groups[:-1]), groups[-1]])


def length_octets(length: int) -> bytes:
    """A definite length, short form below 128, else the minimal long form."""
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


@dataclass(frozen=True, slots=True)
class Col:
    """Per row, the content octets ``data[i, start[i] : start[i] + length[i]]``."""

    data: NDArray[np.uint8]  # (rows, width)
    start: NDArray[np.int64]
    length: NDArray[np.int64]

    def take(self, rows: NDArray[np.int64]) -> Col:
        """The rows ``rows`` of the column."""
        return Col(self.data[rows], self.start[rows], self.length[rows])


def _int_octets(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Octets of the minimal two's-complement form of each value (1 to 8)."""
    mag = values ^ (values >> 63)  # ~v for negative values: the bits that must be kept
    n = np.ones(values.shape, dtype=I64)
    for bits in range(7, 63, 8):
        n += mag >= (1 << bits)
    return n


def int_col(values: NDArray[np.int64]) -> Col:
    """INTEGER contents (asn1tools' ``encode_signed_integer``)."""
    v = np.ascontiguousarray(values, dtype=I64)
    data = v.astype(">i8").view(U8).reshape(-1, 8)
    n = _int_octets(v)
    return Col(data, 8 - n, n)


def const_col(rows: int, content: bytes) -> Col:
    """The same content octets in every row."""
    data = np.broadcast_to(np.frombuffer(content, dtype=U8), (rows, len(content)))
    return Col(data, np.zeros(rows, dtype=I64), np.full(rows, len(content), dtype=I64))


def bytes_col(matrix: NDArray[np.uint8]) -> Col:
    """Fixed-width contents: row ``i`` is ``matrix[i]``."""
    rows, width = matrix.shape
    return Col(matrix, np.zeros(rows, dtype=I64), np.full(rows, width, dtype=I64))


def string_col(array: pa.Array | pa.ChunkedArray) -> Col:
    """The UTF-8 octets of a string (or binary) column; nulls are empty (mask them out)."""
    arr = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    arr = arr.cast(pa.large_binary())
    rows = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=I64)[arr.offset : arr.offset + rows + 1]
    buf = arr.buffers()[2]
    values = np.frombuffer(buf, dtype=U8) if buf is not None else np.zeros(0, dtype=U8)
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths = np.where(np.asarray(arr.is_valid()), lengths, 0)
    width = int(lengths.max()) if rows else 0
    data = np.zeros((rows, max(width, 1)), dtype=U8)
    cols = np.arange(data.shape[1], dtype=I64)
    mask = cols < lengths[:, None]
    data[mask] = values[(offsets[:-1, None] + cols)[mask]]
    return Col(data, np.zeros(rows, dtype=I64), lengths.astype(I64))


def bcd_col(digits: Col) -> Col | None:
    """TAP BCDString of ASCII hex digits (high nibble first, odd lengths padded with ``F``).

    None when a row holds a character that is not a hex digit (the caller falls back to the
    per-row encoder, which decides what that means).
    """
    rows, width = digits.data.shape
    cols = np.arange(width, dtype=I64)
    inside = cols < digits.length[:, None]
    nib = _NIBBLE[digits.data]
    if bool((nib[inside] == 255).any()):
        return None
    padded = np.full((rows, width + (width % 2)), 0x0F, dtype=U8)
    padded[:, :width] = np.where(inside, nib, 0x0F)
    data: NDArray[np.uint8] = ((padded[:, 0::2] << 4) | padded[:, 1::2]).astype(U8)
    return Col(data, np.zeros(rows, dtype=I64), (digits.length + 1) // 2)


@dataclass(eq=False)
class Node:
    """An element of the tree: a primitive (``content``) or a constructed one (``members``).

    ``present``: which rows have the element (None: every row). A constructed element is
    written whenever it is present, members or not (as asn1tools does for a given value).
    """

    tag: bytes
    content: Col | None = None
    members: list[Node] = field(default_factory=list)
    present: NDArray[np.bool_] | None = None
    # worked out by encode_rows
    _body: NDArray[np.int64] = field(init=False, repr=False)
    _head: NDArray[np.int64] = field(init=False, repr=False)
    _size: NDArray[np.int64] = field(init=False, repr=False)


def _length_size(body: NDArray[np.int64]) -> NDArray[np.int64]:
    """Octets of the definite length of each body (short form below 128)."""
    n = np.ones(body.shape, dtype=I64)
    for limit in (0x7F, 0xFF, 0xFFFF, 0xFFFFFF):
        n += body > limit
    return n


def _measure(node: Node, rows: int) -> NDArray[np.int64]:
    if node.content is not None:
        body = node.content.length.astype(I64, copy=True)
    else:
        body = np.zeros(rows, dtype=I64)
        for m in node.members:
            body += _measure(m, rows)
    head = len(node.tag) + _length_size(body)
    size = head + body
    if node.present is not None:
        size = np.where(node.present, size, 0)
    node._body, node._head, node._size = body, head, size
    return size


def _scatter(buf: NDArray[np.uint8], pos: NDArray[np.int64], col: Col) -> None:
    """Write ``col``'s octets of each row at ``pos`` (rows of ``pos`` and ``col`` match)."""
    width = col.data.shape[1]
    if width == 0 or pos.size == 0:
        return
    cols = np.arange(width, dtype=I64)
    rel = cols - col.start[:, None]
    mask = (rel >= 0) & (rel < col.length[:, None])
    buf[(pos[:, None] + rel)[mask]] = col.data[mask]


def _write(
    buf: NDArray[np.uint8], node: Node, pos: NDArray[np.int64], rows: NDArray[np.int64]
) -> None:
    """Write ``node`` for the rows ``rows`` (indices), ``pos`` being where each one starts."""
    if node.present is not None:
        keep = node.present[rows]
        rows, pos = rows[keep], pos[keep]
    if rows.size == 0:
        return
    tag = np.frombuffer(node.tag, dtype=U8)
    buf[pos[:, None] + np.arange(len(tag), dtype=I64)] = tag
    body = node._body[rows]
    at = pos + len(tag)
    long = body > 0x7F
    n = node._head[rows] - len(tag) - 1  # octets after the first length octet
    first = np.where(long, 0x80 | n, body).astype(U8)
    buf[at] = first
    if bool(long.any()):
        be = body.astype(">i8").view(U8).reshape(-1, 8)
        _scatter(buf, at + 1, Col(be, 8 - n, n))
    start = pos + node._head[rows]
    if node.content is not None:
        _scatter(buf, start, node.content.take(rows))
        return
    for m in node.members:
        _write(buf, m, start, rows)
        start = start + m._size[rows]


def encode_rows(root: Node, rows: int) -> tuple[bytes, NDArray[np.int64]]:
    """Encode ``root`` once per row; the rows' elements end to end and each one's size."""
    if rows == 0:
        return b"", np.zeros(0, dtype=I64)
    sizes = _measure(root, rows)
    ends = np.cumsum(sizes)
    buf = np.zeros(int(ends[-1]), dtype=U8)
    _write(buf, root, ends - sizes, np.arange(rows, dtype=I64))
    return buf.tobytes(), sizes
