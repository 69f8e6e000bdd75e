"""A columnar BER (X.690, definite lengths) writer: static element trees, many rows at once.

asn1tools encodes one Python value at a time (tens of microseconds per TAP call event). TAP-out
writes hundreds of thousands of events that share a handful of shapes, so this writer takes
each shape once, as a tree of :class:`Node` (tag, members, presence per row), and the values as
numpy columns, then works per *element of the tree*, never per row:

1. bottom-up, the length of every element in every row (absent elements count 0);
2. the rows laid end to end in their final order, each behind ``slack`` spare octets;
3. every element written for all its rows at once, in *reverse* document order (last member
   first, an element's header after its content). Each write is a fixed-width block that ends
   where the element's octets end: what it puts before them lands on octets that are written
   later (preceding siblings, headers) or in the row's slack, never on finished octets, so no
   write needs a per-row mask. Fewer, wider writes where the layout allows: a subtree of the
   same size in every row is laid out in one block; so is an element's *lead* (its header, the
   fixed members that open it, and the lead of the next member); a short INTEGER goes with its
   tag and length as one 64-bit number;
4. the slack cut out.

The bytes are those asn1tools writes for the same values (BER as asn1tools does it: minimal
definite lengths, minimal two's-complement integers, members in definition order, absent
OPTIONAL members left out); ``tests/outbound/test_tap_columnar.py`` compares the two.
Tags and lengths come from :mod:`clearing.codecs.ber` (one writer of them).

Only APPLICATION-class tags are used (every TAP type has one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from clearing.codecs.ber import APPLICATION, length_octets, tag_key, tag_octets

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "Col",
    "Node",
    "app_tag",
    "const_col",
    "encode",
    "int_col",
    "length_octets",
    "string_col",
]

I64 = np.int64
U8 = np.uint8
U64 = np.uint64


def app_tag(number: int, *, constructed: bool) -> bytes:
    """The identifier octets of ``[APPLICATION number]`` (as asn1tools writes them)."""
    return tag_octets(tag_key(APPLICATION, number), constructed)


@dataclass(frozen=True, slots=True)
class Col:
    """Per row, content octets *right-aligned* in a fixed width.

    The row's octets are the last ``length[i]`` of ``data[i]`` (what comes before them is
    ignored).
    """

    data: NDArray[np.uint8]  # (rows, width)
    length: NDArray[np.int64]
    # the octets as a big-endian number (INTEGER contents: the two's complement), when known
    number: NDArray[np.uint64] | None = None

    def take(self, rows: NDArray[np.int64]) -> Col:
        """The rows ``rows`` of the column."""
        number = None if self.number is None else self.number[rows]
        return Col(self.data[rows], self.length[rows], number)


# 2**7, 2**15 ... 2**55: a magnitude at or above the k-th needs k + 2 octets
_INT_LIMITS = np.array([1 << bits for bits in range(7, 63, 8)], dtype=I64)


def _int_octets(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Octets of the minimal two's-complement form of each value (1 to 8)."""
    mag = values ^ (values >> 63)  # ~v for negative values: the bits that must be kept
    return np.searchsorted(_INT_LIMITS, mag, side="right").astype(I64) + 1


def int_col(values: NDArray[np.int64]) -> Col:
    """INTEGER contents (asn1tools' ``encode_signed_integer``)."""
    v = np.ascontiguousarray(values, dtype=I64)
    return Col(v.astype(">i8").view(U8).reshape(-1, 8), _int_octets(v), v.view(U64))


def const_col(rows: int, content: bytes) -> Col:
    """The same content octets in every row."""
    data = np.broadcast_to(np.frombuffer(content, dtype=U8), (rows, len(content)))
    return Col(data, np.full(rows, len(content), dtype=I64))


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
    width = max(int(lengths.max()) if rows else 0, 1)
    data = np.zeros((rows, width), dtype=U8)
    cols = np.arange(width, dtype=I64)
    skip = width - lengths  # leading pad of each row
    mask = cols >= skip[:, None]
    data[mask] = values[(offsets[:-1, None] - skip[:, None] + cols)[mask]]
    return Col(data, lengths.astype(I64))


@dataclass(eq=False)
class Node:
    """An element of a tree: a primitive (``content``) or a constructed one (``members``).

    ``present``: which rows have the element (None: every row). A constructed element is
    written whenever it is present, members or not (as asn1tools does for a given value).
    """

    tag: bytes
    content: Col | None = None
    members: list[Node] = field(default_factory=list)
    present: NDArray[np.bool_] | None = None
    # worked out by encode
    _body: NDArray[np.int64] = field(init=False, repr=False)
    _head: NDArray[np.uint64] = field(init=False, repr=False)  # tag and length, as an integer
    _size: NDArray[np.int64] = field(init=False, repr=False)
    _head_width: int = field(init=False, repr=False)  # octets of the longest tag and length
    _content_width: int = field(init=False, repr=False)  # octets of the longest content
    # every row that has the element has it at the same size: one block for the whole subtree
    _fixed: bool = field(init=False, repr=False)
    _fixed_head: bytes = field(init=False, repr=False)
    # the tag and length take the same octets in every row that has the element
    _even_head: bool = field(init=False, repr=False)
    # the element's lead: its header, its first `_lead_members` members (fixed), and the lead of
    # `_lead_partial` (the next member) when it has one: octets at the same places in every row
    _lead_members: int = field(init=False, repr=False)
    _lead_partial: Node | None = field(init=False, repr=False)
    _lead_width: int = field(init=False, repr=False)

    def widest(self) -> int:
        """The widest block the subtree writes past its own octets' start (headers: 8)."""
        own = self.content.data.shape[1] if self.content is not None else 0
        return max(8, own, *(m.widest() for m in self.members))


def _measure(node: Node, rows: int) -> NDArray[np.int64]:
    if len(node.tag) > 3:
        msg = f"tag {node.tag.hex()} is longer than 3 octets"
        raise ValueError(msg)
    here = np.flatnonzero(node.present) if node.present is not None else None
    node._content_width = 0
    if node.content is not None:
        body = node.content.length.astype(I64, copy=True)
        widths = body if here is None else body[here]  # of the rows that have the element
        node._content_width = int(widths.max()) if widths.size else 0
    else:
        body = np.zeros(rows, dtype=I64)
        for m in node.members:
            body += _measure(m, rows)
    if rows and int(body.max()) > 0xFFFFFFFF:
        msg = "an element longer than 4 GiB"
        raise ValueError(msg)
    tag = U64(int.from_bytes(node.tag, "big"))
    if rows == 0 or int(body.max()) <= 0x7F:  # short form everywhere
        extra = np.zeros(rows, dtype=I64)
        node._head = (tag << U64(8)) | body.astype(U64)
        size = len(node.tag) + 1 + body
    else:
        extra = np.zeros(rows, dtype=I64)  # length octets after the first
        for limit in (0x7F, 0xFF, 0xFFFF, 0xFFFFFF):
            extra += body > limit
        long = extra > 0
        first = np.where(long, 0x80 | extra, body).astype(U64)
        length = (first << (8 * extra).astype(U64)) | np.where(long, body, 0).astype(U64)
        node._head = (tag << (8 * (extra + 1)).astype(U64)) | length
        size = len(node.tag) + 1 + extra + body
    if node.present is not None:
        size = np.where(node.present, size, 0)
    node._body, node._size = body, size
    sizes = size if here is None else size[here]
    extras = extra if here is None else extra[here]
    node._head_width = len(node.tag) + 1 + (int(extras.max()) if extras.size else 0)
    node._even_head = extras.size > 0 and int(extras.min()) == int(extras.max())
    node._fixed = (
        sizes.size > 0
        and int(sizes.min()) == int(sizes.max())
        and all(m._fixed and m.present is None for m in node.members)
    )
    if node._fixed:
        first_row = 0 if here is None else int(here[0])
        node._fixed_head = int(node._head[first_row]).to_bytes(8, "big")[8 - node._head_width :]
    node._lead_members, node._lead_partial, node._lead_width = 0, None, node._head_width
    if node.content is None and not node._fixed and node._even_head:
        j = 0
        while j < len(node.members) and node.members[j]._fixed and node.members[j].present is None:
            node._lead_width += int(node.members[j]._size[0])
            j += 1
        node._lead_members = j
        if j < len(node.members):
            m = node.members[j]
            if m.present is None and m.content is None and not m._fixed and m._even_head:
                node._lead_partial = m
                node._lead_width += m._lead_width
    return size


def _render(node: Node, block: NDArray[np.uint8], at: int, rows: NDArray[np.int64] | None) -> int:
    """Lay a fixed subtree into columns ``at…`` of ``block``; return the column after it."""
    head = node._fixed_head
    block[:, at : at + len(head)] = np.frombuffer(head, dtype=U8)
    at += len(head)
    if node.content is not None:
        data = node.content.data if rows is None else node.content.data[rows]
        n = node._content_width
        block[:, at : at + n] = data[:, data.shape[1] - n :]
        return at + n
    for m in node.members:
        at = _render(m, block, at, rows)
    return at


def _render_lead(
    node: Node, block: NDArray[np.uint8], at: int, rows: NDArray[np.int64] | None
) -> int:
    """Lay the lead of a constructed element into columns ``at…`` of ``block``."""
    head = node._head if rows is None else node._head[rows]
    width = node._head_width
    block[:, at : at + width] = head.astype(">u8").view(U8).reshape(-1, 8)[:, 8 - width :]
    at += width
    for m in node.members[: node._lead_members]:
        at = _render(m, block, at, rows)
    if node._lead_partial is not None:
        at = _render_lead(node._lead_partial, block, at, rows)
    return at


def _put(buf: NDArray[np.uint8], end: NDArray[np.int64], block: NDArray[np.uint8]) -> None:
    """Write row ``i`` of ``block`` so that it ends just before ``end[i]``."""
    width = block.shape[1]
    if width == 1:
        buf[end - 1] = block[:, 0]
        return
    buf[(end - width)[:, None] + np.arange(width, dtype=I64)] = block


def _write(
    buf: NDArray[np.uint8],
    node: Node,
    start: NDArray[np.int64],
    rows: NDArray[np.int64] | None,
    *,
    in_lead: bool = False,
) -> None:
    """Write ``node`` for the rows ``rows`` (None: all) whose element starts at ``start``.

    ``in_lead``: the element's lead is part of its parent's (written by the parent).
    """
    if node.present is not None:
        keep = node.present if rows is None else node.present[rows]
        rows = np.flatnonzero(keep) if rows is None else rows[keep]
        start = start[keep]
        if rows.size == 0:
            return
    size = node._size if rows is None else node._size[rows]
    if node._fixed:
        block = np.empty((size.size, int(size[0])), dtype=U8)
        _render(node, block, 0, rows)
        _put(buf, start + size, block)
        return
    head = node._head if rows is None else node._head[rows]
    body = node._body if rows is None else node._body[rows]
    content_start = start + size - body
    if node.content is not None:
        col = node.content if rows is None else node.content.take(rows)
        width = node._content_width
        if width <= 8 and node._head_width + width <= 8:
            # tag, length and content as one integer, one block of at most 8 octets
            if col.number is not None:
                value = col.number
            else:
                padded = np.zeros((size.size, 8), dtype=U8)
                padded[:, 8 - width :] = col.data[:, col.data.shape[1] - width :]
                value = padded.view(">u8").reshape(-1).astype(U64)
            bits = (8 * col.length).astype(U64)
            keep = np.where(col.length >= 8, ~U64(0), (U64(1) << bits) - U64(1))
            octets = ((head << bits) | (value & keep)).astype(">u8").view(U8).reshape(-1, 8)
            _put(buf, start + size, octets[:, 8 - node._head_width - width :])
            return
        _put(buf, content_start + body, col.data[:, col.data.shape[1] - width :])
        _put(
            buf,
            content_start,
            head.astype(">u8").view(U8).reshape(-1, 8)[:, 8 - node._head_width :],
        )
        return
    starts = []
    at = content_start
    for m in node.members:
        starts.append(at)
        at = at + (m._size if rows is None else m._size[rows])
    # last member first; the members in the lead are written with it
    for i in range(len(node.members) - 1, node._lead_members - 1, -1):
        m = node.members[i]
        _write(buf, m, starts[i], rows, in_lead=m is node._lead_partial)
    if in_lead:
        return
    if node._even_head:
        block = np.empty((size.size, node._lead_width), dtype=U8)
        _render_lead(node, block, 0, rows)
        _put(buf, start + node._lead_width, block)
        return
    _put(buf, content_start, head.astype(">u8").view(U8).reshape(-1, 8)[:, 8 - node._head_width :])


def encode(trees: list[tuple[Node, NDArray[np.int64]]], rows: int) -> bytes:
    """Encode each tree once per row of its own, all rows end to end in row order.

    Args:
        trees: ``(root, where)``: ``where[j]`` is the row (of ``rows``) that the tree's row
            ``j`` is; together the trees hold every row once.
        rows: the number of rows.
    """
    if rows == 0:
        return b""
    slack = max(root.widest() for root, _where in trees)
    sizes = np.zeros(rows, dtype=I64)
    for root, where in trees:
        sizes[where] = _measure(root, len(where))
    ends = np.cumsum(sizes + slack)
    starts = ends - sizes
    buf = np.zeros(int(ends[-1]), dtype=U8)
    for root, where in trees:
        _write(buf, root, starts[where], None)
    # cut the slack out
    runs = np.column_stack([np.full(rows, slack, dtype=I64), sizes]).ravel()
    keep = np.repeat(np.tile(np.array([False, True]), rows), runs)
    out: bytes = buf[keep].tobytes()
    return out
