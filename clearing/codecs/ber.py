"""Minimal BER (X.690) TLV primitives in pure Python.

Used to sniff headers, to walk a file's tag tree (unknown-tag detection, indefinite-length
handling) and as the reference slow path of the fast decoder. Tags are represented as one
integer ``key = (class << 24) | number`` (class: 0 universal, 1 application, 2 context,
3 private) so that they can live in numpy arrays.

:func:`tag_octets` / :func:`length_octets` (:func:`encode_header`) are the one tag and length
writer of the package: the RAP writer and the columnar writer (:mod:`clearing.codecs.ber_write`)
use them.

C901: ``_indefinite_end`` is the BER walk to an indefinite length's end-of-contents, one loop over
tags, lengths and nesting on the hot path; cut into helpers it would pay a call per element and
spread one state machine over several functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearing.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "APPLICATION",
    "TLV",
    "LimitError",
    "encode_header",
    "forget",
    "iter_children",
    "known_end",
    "known_ends",
    "length_octets",
    "locate",
    "read_header",
    "tag_key",
    "tag_name",
    "tag_octets",
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


class LimitError(DecodeError):
    """Well-formed BER beyond what any TAP, RAP or NRT file holds (nesting, element count).

    Raised where a hostile file would otherwise cost time or memory out of proportion to its
    size; readers turn it into a fatal error of the whole file.
    """


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
        msg = "truncated element: no tag byte"
        raise DecodeError(msg, offset=pos)
    first = data[pos]
    cls = first >> 6
    constructed = bool(first & 0x20)
    number = first & 0x1F
    p = pos + 1
    if number == 0x1F:
        number = 0
        for _ in range(4):
            if p >= end:
                msg = "truncated element: tag runs past the end"
                raise DecodeError(msg, offset=pos)
            b = data[p]
            p += 1
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            msg = "tag number longer than 4 bytes"
            raise DecodeError(msg, offset=pos)
        if number >= 1 << 24:
            msg = "tag number out of range"
            raise DecodeError(msg, offset=pos)
    if p >= end:
        msg = "truncated element: no length byte"
        raise DecodeError(msg, offset=pos)
    lb = data[p]
    p += 1
    length: int | None
    if lb < 0x80:
        length = lb
    elif lb == 0x80:
        if not constructed:
            msg = "indefinite length on a primitive element"
            raise DecodeError(msg, offset=pos)
        length = None
    else:
        n = lb & 0x7F
        if n > 8 or p + n > end:
            msg = "malformed or truncated length field"
            raise DecodeError(msg, offset=pos)
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
    if depth > _MAX_NESTING:
        msg = "indefinite-length nesting deeper than 64"
        raise DecodeError(msg, offset=pos)
    end, _nest = _indefinite_end(data, pos, key, start, limit, depth)
    return TLV(pos, key, constructed, start, None, end)


# ---------------------------------------------------------------------------------------------
# ends of indefinite-length elements
#
# The end of an indefinite element is only found by reading everything inside it. That is done
# in one linear pass (no recursion, no TLV objects), and for an element with many indefinite
# children (a CallEventDetailList) the children's ends are guessed in bulk with numpy: every
# place right after an end-of-contents that starts an element with a sibling's tag is scanned
# at once, one token per lane and step; the pass then hops from child to child through those
# results. A guess is only ever used where the pass itself arrives, and a scan started there
# is the scan the pass would do, so the result is the same as reading it one by one.
#
# Ends found that way (and those of large elements) are remembered for the last buffer read,
# so that sniffing, splitting the header groups and decoding the events do not read the same
# bytes again. An end found with some limit and depth holds for any limit not below it and
# any depth at which its nesting stays within 64 levels; anything else is read again.

_MAX_NESTING = 64
_GUESS_AFTER = 16  # indefinite children read one by one before their siblings are guessed
_MAX_GUESSES = 16  # distinct sibling tags guessed per element
_REMEMBER = 1 << 16  # indefinite elements at least this long are remembered
# guessed siblings shorter than this are not remembered: reading them again costs less than
# remembering them (and millions of empty elements would otherwise take a dict entry each)
_REMEMBER_MIN = 16
_GUESS_BLOCK = 1 << 22  # bytes searched for end-of-contents octets at a time
_LANE_BLOCK = 1 << 16  # elements whose ends are guessed together
_LANE_STEPS = 4096  # tokens a guessed element may have (larger ones are read one by one)

# (buffer, {offset: (end, nesting)}): the last buffer whose indefinite elements were read.
# ``nesting`` is how many levels of indefinite elements lie inside (0: none).
_memo: tuple[bytes, dict[int, tuple[int, int]]] | None = None


def _known(data: bytes) -> dict[int, tuple[int, int]] | None:
    m = _memo
    return m[1] if m is not None and m[0] is data else None


def _remembered(data: bytes) -> dict[int, tuple[int, int]] | None:
    """The memo of ``data``, started anew if it is another buffer (None: not a bytes object)."""
    global _memo
    if type(data) is not bytes:
        return None
    m = _memo
    if m is not None and m[0] is data:
        return m[1]
    fresh: dict[int, tuple[int, int]] = {}
    _memo = (data, fresh)
    return fresh


def forget() -> None:
    """Drop the remembered ends (and the reference to the buffer they belong to)."""
    global _memo
    _memo = None


def known_end(data: bytes, pos: int, limit: int, depth: int = 0) -> int | None:
    """The end of the indefinite element at ``pos`` if already found, else None.

    It is the end :func:`element_at` would give with that limit and depth.
    """
    known = _known(data)
    if known is None:
        return None
    hit = known.get(pos)
    if hit is None or hit[0] > limit or depth + hit[1] > _MAX_NESTING:
        return None
    return hit[0]


def known_ends(data: bytes) -> Mapping[int, tuple[int, int]]:
    """The remembered ends of ``data``: offset → (end, nesting); empty for another buffer.

    An entry holds for :func:`element_at` at that offset with a limit not below ``end`` and a
    depth whose sum with ``nesting`` is at most 64 (see :func:`known_end`).
    """
    known = _known(data)
    return {} if known is None else known


class _Guesses:
    """Offsets right after each end-of-contents of a region and the tag found there."""

    def __init__(self, data: bytes, lo: int, limit: int) -> None:
        import numpy as np  # only for indefinite lengths: not loaded to read a header

        buf = np.frombuffer(data, dtype=np.uint8, count=limit)
        offsets = [np.array([lo], dtype=np.int64)]
        # in blocks, so that the temporary arrays stay small whatever the size of the file
        for at in range(lo, limit, _GUESS_BLOCK):
            block = buf[at : min(at + _GUESS_BLOCK + 1, limit)]
            after = np.flatnonzero((block[:-1] == 0) & (block[1:] == 0)) + (at + 2)
            after = after[after < limit]
            after = after[(buf[after] & 0x20) != 0]  # constructed (not another end-of-contents)
            offsets.append(after)
        self.data = data
        self.limit = limit
        self.buf = buf
        found = [_indefinite_keys(buf, part, limit) for part in offsets]
        self.offsets = np.concatenate([f[0] for f in found])
        self.keys = np.concatenate([f[1] for f in found])
        self.tried: set[int] = set()

    def guess(self, key: int, memo: dict[int, tuple[int, int]]) -> None:
        self.tried.add(key)
        starts = self.offsets[self.keys == key]
        starts = starts[[s not in memo for s in starts.tolist()]] if memo else starts
        if not len(starts):
            return
        # in blocks, so that the lanes' temporary arrays stay small whatever the file
        for at in range(0, len(starts), _LANE_BLOCK):
            part = starts[at : at + _LANE_BLOCK]
            ends, nests = _lane_ends(self.buf, part, self.limit)
            found = (ends >= 0) & (ends - part >= _REMEMBER_MIN)
            memo.update(
                zip(
                    part[found].tolist(),
                    zip(ends[found].tolist(), nests[found].tolist(), strict=True),
                    strict=True,
                )
            )


def _indefinite_keys(
    buf: NDArray[np.uint8], offsets: NDArray[np.int64], limit: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(offsets, tag keys) of the offsets where an indefinite constructed header starts."""
    import numpy as np  # only for indefinite lengths: not loaded to read a header

    last = len(buf) - 1
    pos = offsets[offsets < limit].astype(np.int64)
    b0 = buf[pos].astype(np.int64)
    b1 = buf[np.minimum(pos + 1, last)].astype(np.int64)
    b2 = buf[np.minimum(pos + 2, last)].astype(np.int64)
    multi = (b0 & 0x1F) == 0x1F
    two = multi & ((b1 & 0x80) != 0)
    hl = np.where(multi, np.where(two, 3, 2), 1)
    num = np.where(multi, np.where(two, ((b1 & 0x7F) << 7) | (b2 & 0x7F), b1 & 0x7F), b0 & 0x1F)
    lpos = pos + hl
    lb = buf[np.minimum(lpos, last)]
    keep = ((b0 & 0x20) != 0) & (lb == 0x80) & (lpos < limit) & ~(two & ((b2 & 0x80) != 0))
    return pos[keep], ((b0[keep] >> 6) << 24) | num[keep]


def _lane_ends(
    buf: NDArray[np.uint8], starts: NDArray[np.int64], limit: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Ends (and nesting) of the elements at ``starts``, all read at once; -1 where unsure.

    One lane per element, one token (header or end-of-contents) per lane and step. A lane
    gives up (-1) on anything :func:`read_header` or the linear pass would reject, and on
    what it does not handle (tags over 3 bytes, length fields over 4 bytes, more than
    ``_LANE_STEPS`` tokens): those are left to the pass itself.
    """
    import numpy as np  # only for indefinite lengths: not loaded to read a header

    n = len(starts)
    ends = np.full(n, -1, dtype=np.int64)
    nests = np.zeros(n, dtype=np.int64)
    last = len(buf) - 1
    lane = np.arange(n, dtype=np.int64)
    pos = starts.astype(np.int64)
    dep = np.zeros(n, dtype=np.int64)  # indefinite elements open
    deep = np.zeros(n, dtype=np.int64)  # deepest nesting met
    for _step in range(_LANE_STEPS):
        if not len(lane):
            break
        b0 = buf[np.minimum(pos, last)].astype(np.int64)
        b1 = buf[np.minimum(pos + 1, last)].astype(np.int64)
        eoc = (dep > 0) & (pos + 2 <= limit) & (b0 == 0) & (b1 == 0)
        multi = (b0 & 0x1F) == 0x1F
        two = multi & ((b1 & 0x80) != 0)
        ok = eoc | (pos < limit)
        if two.any():
            b2 = buf[np.minimum(pos + 2, last)].astype(np.int64)
            ok &= eoc | ~(two & ((b2 & 0x80) != 0))
        lpos = pos + np.where(multi, np.where(two, 3, 2), 1)
        lb = buf[np.minimum(lpos, last)].astype(np.int64)
        indef = ~eoc & (lb == 0x80)
        long_form = ~eoc & (lb > 0x80)
        nl = np.where(long_form, lb & 0x7F, 0)
        ok &= eoc | (lpos < limit)
        ok &= ~(indef & ((b0 & 0x20) == 0)) & (nl <= 4)
        length = np.where(long_form | indef | eoc, 0, lb)
        if long_form.any():
            for i in range(4):
                bi = buf[np.minimum(lpos + 1 + i, last)].astype(np.int64)
                length = np.where(long_form & (i < nl), (length << 8) | bi, length)
        cstart = lpos + 1 + nl
        cend = cstart + length
        ok &= eoc | (cend <= limit)
        ok &= ~(indef & (dep > _MAX_NESTING))
        deep = np.where(indef, np.maximum(deep, dep), deep)
        dep = dep + indef - eoc
        pos = np.where(eoc, pos + 2, np.where(indef, cstart, cend))
        done = ok & (dep == 0)
        ends[lane[done]] = pos[done]
        nests[lane[done]] = deep[done]
        more = ok & (dep > 0)
        lane, pos, dep, deep = lane[more], pos[more], dep[more], deep[more]
    return ends, nests


def _indefinite_end(
    data: bytes, pos: int, key: int, start: int, limit: int, depth: int
) -> tuple[int, int]:
    """End of the indefinite element at ``pos`` (content at ``start``), and its nesting.

    Raises:
        DecodeError: as the element-by-element reading would, at the same place.
    """
    known = _known(data)
    if known is not None:
        hit = known.get(pos)
        if hit is not None and hit[0] <= limit and depth + hit[1] <= _MAX_NESTING:
            return hit
    # open elements: [offset, key, depth, deepest depth inside, indefinite children, guesses]
    frames: list[list[Any]] = [[pos, key, depth, depth, 0, None]]
    p = start
    while True:
        if known is not None:
            # only indefinite constructed elements are remembered: no end-of-contents here,
            # and their header reads well
            hit = known.get(p)
            if hit is not None:
                f = frames[-1]
                d = f[2] + 1
                if hit[0] <= limit and d + hit[1] <= _MAX_NESTING:
                    p = hit[0]
                    if d + hit[1] > f[3]:
                        f[3] = d + hit[1]
                    continue
        if p + 2 <= limit and data[p] == 0 and data[p + 1] == 0:
            p += 2
            off, _key, d, deepest, _n, _g = frames.pop()
            found = (p, deepest - d)
            if frames:
                parent = frames[-1]
                if deepest > parent[3]:
                    parent[3] = deepest
                if (parent[5] is not None and p - off >= _REMEMBER_MIN) or p - off >= _REMEMBER:
                    known = _remembered(data)
                    if known is not None:
                        known[off] = found
                continue
            if p - off >= _REMEMBER:
                known = _remembered(data)
                if known is not None:
                    known[off] = found
            return found
        if p >= limit:
            f = frames[-1]
            msg = f"indefinite-length element {tag_name(f[1])} has no end-of-contents"
            raise DecodeError(msg, offset=f[0])
        k, _c, s, n = read_header(data, p, limit)
        if n is not None:
            e = s + n
            if e > limit:
                msg = f"element {tag_name(k)} of length {n} runs past its container"
                raise DecodeError(msg, offset=p)
            p = e
            continue
        f = frames[-1]
        d = f[2] + 1
        if d > _MAX_NESTING:
            msg = "indefinite-length nesting deeper than 64"
            raise DecodeError(msg, offset=p)
        f[4] += 1
        guesses: _Guesses | None = f[5]
        if guesses is None and f[4] > _GUESS_AFTER and type(data) is bytes:
            guesses = f[5] = _Guesses(data, p, limit)
        if guesses is not None and k not in guesses.tried and len(guesses.tried) < _MAX_GUESSES:
            known = _remembered(data)
            if known is not None:
                guesses.guess(k, known)
        if known is not None:
            hit = known.get(p)
            if hit is not None and hit[0] <= limit and d + hit[1] <= _MAX_NESTING:
                p = hit[0]
                if d + hit[1] > f[3]:
                    f[3] = d + hit[1]
                continue
        frames.append([p, k, d, d, 0, None])
        p = s


def element_at(data: bytes, pos: int, limit: int | None = None) -> TLV:
    """The element starting at ``pos`` (its extent resolved, indefinite lengths included)."""
    return _element(data, pos, len(data) if limit is None else limit)


def locate(data: bytes, offset: int, *, max_depth: int = 64) -> list[tuple[int, int, int]]:
    """The elements of a (possibly broken) file that enclose ``offset``, outermost first.

    Each is ``(key, element offset, index among its siblings)``. Best effort, for messages:
    only headers are read; a sibling whose end cannot be told (a broken indefinite length) is
    taken to hold the offset, and the walk stops where a header cannot be read.
    """
    out: list[tuple[int, int, int]] = []
    pos, stop, index = 0, len(data), 0
    while pos < stop and len(out) < max_depth:
        try:
            key, constructed, start, length = read_header(data, pos)
        except DecodeError:
            break
        end: int | None = start + length if length is not None else None
        if length is None:
            try:
                end = element_at(data, pos).end
            except DecodeError:
                end = None
        if end is not None and end <= offset:
            pos, index = end, index + 1
            continue
        out.append((key, pos, index))
        if not constructed or offset < start:
            break
        pos, index = start, 0
        stop = min(stop, end) if end is not None else stop
    return out


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
        msg = "children overrun their container"
        raise DecodeError(msg, offset=parent.offset)
    return out


def walk(
    data: bytes,
    node: TLV,
    depth: int = 0,
    *,
    max_depth: int | None = None,
    max_elements: int | None = None,
) -> list[tuple[int, TLV]]:
    """Depth-first list of ``(depth, element)`` for a subtree, the root first.

    One pass with an explicit stack (no recursion, so any nesting is read in linear time).

    Args:
        data: the buffer.
        node: the subtree's root.
        depth: the depth given to the root.
        max_depth: elements more than this many levels below the root are refused.
        max_elements: subtrees of more elements than this are refused.

    Raises:
        LimitError: a limit is passed (at the first element beyond it, in document order).
        DecodeError: the BER is broken.
    """
    out: list[tuple[int, TLV]] = []
    stack = [(depth, node)]
    while stack:
        d, n = stack.pop()
        out.append((d, n))
        if max_elements is not None and len(out) > max_elements:
            msg = f"more than {max_elements} elements in one subtree"
            raise LimitError(msg, offset=n.offset)
        if n.constructed:
            children = iter_children(data, n)
            if children and max_depth is not None and d + 1 - depth > max_depth:
                msg = f"elements nested more than {max_depth} levels deep"
                raise LimitError(msg, offset=children[0].offset)
            stack.extend((d + 1, c) for c in reversed(children))
    return out


def tag_octets(key: int, constructed: bool) -> bytes:
    """The identifier octets of a packed tag (low-tag-number form below 31, else high)."""
    cls, number = key >> 24, key & 0xFFFFFF
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 0x1F:
        return bytes([first | number])
    groups = []
    n = number
    while True:
        groups.append(n & 0x7F)
        n >>= 7
        if not n:
            break
    groups.reverse()
    return bytes([first | 0x1F] + [g | 0x80 for g in groups[:-1]] + [groups[-1]])


def length_octets(length: int | None) -> bytes:
    """The length octets: indefinite (None), short form below 128, else the minimal long form."""
    if length is None:
        return b"\x80"
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_header(key: int, constructed: bool, length: int | None) -> bytes:
    """Encode a tag and a length (None for indefinite)."""
    return tag_octets(key, constructed) + length_octets(length)
