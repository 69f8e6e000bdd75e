"""Re-encode a BER blob with indefinite (or definite) lengths on chosen constructed elements.

asn1tools only writes definite lengths, but partners' encoders often write indefinite ones
(``61 80 … 00 00``), for the whole file or for some groups. These pure byte transformations
produce such files from a definite-length encoding, and turn any file back into the definite
form, so that both shapes can be generated and compared in tests. Values are not touched:
primitive elements are copied byte for byte.

Example::

    every = to_indefinite(data)                       # every constructed element
    outer = to_indefinite(data, depth_limit=0)        # the top-level element only
    some = to_indefinite(data, select=lambda depth, tlv: depth <= 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearing.codecs.ber import TLV, element_at, encode_header, iter_children
from clearing.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["to_definite", "to_indefinite"]

_EOC = b"\x00\x00"
_MAX_DEPTH = 64


def _reencode(
    data: bytes, node: TLV, depth: int, select: Callable[[int, TLV], bool], out: list[bytes]
) -> None:
    if not node.constructed:
        out.append(data[node.offset : node.end])
        return
    if depth > _MAX_DEPTH:
        msg = "constructed nesting deeper than 64"
        raise DecodeError(msg, offset=node.offset)
    inner: list[bytes] = []
    for child in iter_children(data, node):
        _reencode(data, child, depth + 1, select, inner)
    body = b"".join(inner)
    if select(depth, node):
        out.append(encode_header(node.key, True, None))
        out.append(body)
        out.append(_EOC)
    else:
        out.append(encode_header(node.key, True, len(body)))
        out.append(body)


def _top(data: bytes) -> TLV:
    top = element_at(data, 0)
    if top.end != len(data):
        extra = len(data) - top.end
        msg = f"{extra} trailing byte(s) after the top-level element"
        raise DecodeError(msg, offset=top.end)
    return top


def to_indefinite(
    data: bytes,
    *,
    depth_limit: int | None = None,
    select: Callable[[int, TLV], bool] | None = None,
) -> bytes:
    """Re-encode ``data`` so that chosen constructed elements use indefinite lengths.

    Args:
        data: one BER top-level element (definite, indefinite or mixed lengths).
        depth_limit: make constructed elements at depth ``<= depth_limit`` indefinite
            (0 = the top-level element only). None, with no ``select``: all of them.
        select: ``select(depth, tlv) -> bool`` decides per constructed element instead
            (the top-level element has depth 0). Elements not selected get definite lengths.

    Raises:
        DecodeError: ``data`` is not well-formed BER (or has trailing bytes).
    """
    if select is not None and depth_limit is not None:
        msg = "give depth_limit or select, not both"
        raise ValueError(msg)
    chosen: Callable[[int, TLV], bool]
    if select is not None:
        chosen = select
    elif depth_limit is not None:
        limit = depth_limit

        def chosen(depth: int, _tlv: TLV) -> bool:
            return depth <= limit
    else:

        def chosen(_depth: int, _tlv: TLV) -> bool:
            return True

    out: list[bytes] = []
    _reencode(data, _top(data), 0, chosen, out)
    return b"".join(out)


def to_definite(data: bytes) -> bytes:
    """Re-encode ``data`` with definite, minimal lengths everywhere (the DER-like form).

    Raises:
        DecodeError: ``data`` is not well-formed BER (or has trailing bytes).
    """
    out: list[bytes] = []
    _reencode(data, _top(data), 0, lambda _d, _t: False, out)
    return b"".join(out)
