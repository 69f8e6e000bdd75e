"""Minimal BER (X.690) TLV primitives in pure Python.

Used to sniff headers, to walk a file's tag tree (unknown-tag detection, indefinite-length
handling) and as the reference slow path of the fast decoder. Tags are represented as one
integer ``key = (class << 24) | number`` (class: 0 universal, 1 application, 2 context,
3 private) so that they can live in numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearing.errors import DecodeError

__all__ = [
    "APPLICATION",
    "TLV",
    "encode_header",
    "iter_children",
    "read_header",
    "tag_key",
    "tag_name",
    "walk",
]

UNIVERSAL, APPLICATION, CONTEXT, PRIVATE = 0, 1, 2, 3
_CLASS_NAMES = ("UNIVERSAL", "APPLICATION", "CONTEXT", "PRIVATE")


def tag_key(cls: int, number: int) -> int:
    """Pack a tag class and number into one integer."""
    return (cls << 24) | number


def tag_name(key: int) -> str:
    """Human-readable form of a packed tag, e.g. ``[APPLICATION 9]``."""
    return f"[{_CLASS_NAMES[key >> 24]} {key & 0xFFFFFF}]"


@dataclass(frozen=True, slots=True)
class TLV:
    """One BER element: where it starts, its tag, and where its content lies.

    ``end`` is the offset just past the element, end-of-contents octets included.
    ``length`` is None for an indefinite-length element.
    """

    offset: int
    key: int
    constructed: bool
    content_start: int
    length: int | None
    end: int

    @property
    def content_end(self) -> int:
        """Offset just past the content (before the EOC of an indefinite element)."""
        return self.end - 2 if self.length is None else self.end


def read_header(
    data: bytes, pos: int, limit: int | None = None
) -> tuple[int, bool, int, int | None]:
    """Read a tag and length at ``pos``.

    Returns:
        ``(key, constructed, content_start, length)``; ``length`` is None when indefinite.

    Raises:
        DecodeError: the header is truncated or malformed.
    """
    end = len(data) if limit is None else limit
    if pos >= end:
        raise DecodeError("truncated element: no tag byte", offset=pos)
    first = data[pos]
    cls = first >> 6
    constructed = bool(first & 0x20)
    number = first & 0x1F
    p = pos + 1
    if number == 0x1F:
        number = 0
        for _ in range(4):
            if p >= end:
                raise DecodeError("truncated element: tag runs past the end", offset=pos)
            b = data[p]
            p += 1
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            raise DecodeError("tag number longer than 4 bytes", offset=pos)
        if number >= 1 << 24:
            raise DecodeError("tag number out of range", offset=pos)
    if p >= end:
        raise DecodeError("truncated element: no length byte", offset=pos)
    lb = data[p]
    p += 1
    length: int | None
    if lb < 0x80:
        length = lb
    elif lb == 0x80:
        if not constructed:
            raise DecodeError("indefinite length on a primitive element", offset=pos)
        length = None
    else:
        n = lb & 0x7F
        if n > 8 or p + n > end:
            raise DecodeError("malformed or truncated length field", offset=pos)
        length = int.from_bytes(data[p : p + n], "big")
        p += n
    return (cls << 24) | number, constructed, p, length


def _element(data: bytes, pos: int, limit: int, depth: int = 0) -> TLV:
    key, constructed, start, length = read_header(data, pos, limit)
    if length is not None:
        end = start + length
        if end > limit:
            msg = f"element {tag_name(key)} of length {length} runs past its container"
            raise DecodeError(msg, offset=pos)
        return TLV(pos, key, constructed, start, length, end)
    if depth > 64:
        raise DecodeError("indefinite-length nesting deeper than 64", offset=pos)
    p = start
    while True:
        if p + 2 <= limit and data[p] == 0 and data[p + 1] == 0:
            return TLV(pos, key, constructed, start, None, p + 2)
        if p >= limit:
            msg = f"indefinite-length element {tag_name(key)} has no end-of-contents"
            raise DecodeError(msg, offset=pos)
        p = _element(data, p, limit, depth + 1).end


def element_at(data: bytes, pos: int, limit: int | None = None) -> TLV:
    """The element starting at ``pos`` (its extent resolved, indefinite lengths included)."""
    return _element(data, pos, len(data) if limit is None else limit)


def iter_children(data: bytes, parent: TLV) -> list[TLV]:
    """The direct children of a constructed element, in order."""
    out: list[TLV] = []
    p = parent.content_start
    stop = parent.content_end
    while p < stop:
        child = _element(data, p, stop)
        out.append(child)
        p = child.end
    if p != stop:
        raise DecodeError("children overrun their container", offset=parent.offset)
    return out


def walk(data: bytes, node: TLV, depth: int = 0) -> list[tuple[int, TLV]]:
    """Depth-first list of ``(depth, element)`` for a subtree, the root first."""
    out = [(depth, node)]
    if node.constructed:
        for child in iter_children(data, node):
            out.extend(walk(data, child, depth + 1))
    return out


def encode_header(key: int, constructed: bool, length: int | None) -> bytes:
    """Encode a tag and a length (None for indefinite)."""
    cls, number = key >> 24, key & 0xFFFFFF
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 0x1F:
        head = bytes([first | number])
    else:
        groups = []
        n = number
        while True:
            groups.append(n & 0x7F)
            n >>= 7
            if not n:
                break
        groups.reverse()
        head = bytes([first | 0x1F] + [g | 0x80 for g in groups[:-1]] + [groups[-1]])
    if length is None:
        return head + b"\x80"
    if length < 0x80:
        return head + bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return head + bytes([0x80 | len(body)]) + body
