"""Hostile TAP files built from the bytes of a real sample (shared by tests and benchmarks).

Each builder keeps the sample's header groups (BatchControlInfo, AccountingInfo, NetworkInfo,
AuditControlInfo) byte for byte and replaces the call-event list with something no real
partner sends: a constructed element nested thousands of levels deep inside one event, or
millions of empty events. Tags and lengths are written with :func:`encode_header`.
"""

from __future__ import annotations

import random
from pathlib import Path

from clearing.codecs.ber import element_at, encode_header, iter_children, tag_key

__all__ = ["SAMPLE", "deep", "empty_events", "random_bytes", "wide"]

SAMPLE = Path(__file__).parents[2] / "data_samples" / "tap" / "CDFRAF9HKGCL01506"
_BATCH = tag_key(1, 1)
_EVENTS = tag_key(1, 3)
_MOC = tag_key(1, 9)  # mobileOriginatedCall
_BASIC = tag_key(1, 37)  # basicCallInformation (any constructed tag will do)


def _wrap(key: int, body: bytes, *, indefinite: bool = False) -> bytes:
    if indefinite:
        return encode_header(key, True, None) + body + b"\0\0"
    return encode_header(key, True, len(body)) + body


def _batch(events: bytes, *, indefinite: bool = False) -> bytes:
    """The sample's TransferBatch with ``events`` as the content of its event list."""
    data = SAMPLE.read_bytes()
    kids = iter_children(data, element_at(data, 0))
    at = next(i for i, k in enumerate(kids) if k.key == _EVENTS)
    before = b"".join(data[k.offset : k.end] for k in kids[:at])
    after = b"".join(data[k.offset : k.end] for k in kids[at + 1 :])
    body = before + _wrap(_EVENTS, events, indefinite=indefinite) + after
    return _wrap(_BATCH, body, indefinite=indefinite)


def deep(levels: int, *, indefinite: bool = False) -> bytes:
    """One event holding a constructed element nested ``levels`` times (empty at the bottom)."""
    if indefinite:
        inner = encode_header(_BASIC, True, None) * levels + b"\0\0" * levels
    else:
        inner = b""
        for _ in range(levels):
            inner = _wrap(_BASIC, inner)
    return _batch(_wrap(_MOC, inner, indefinite=indefinite), indefinite=indefinite)


def empty_events(n: int, *, indefinite: bool = False) -> bytes:
    """``n`` empty mobileOriginatedCall events (2 bytes each, 4 indefinite)."""
    one = _wrap(_MOC, b"", indefinite=indefinite)
    return _batch(one * n, indefinite=indefinite)


def wide(n: int) -> bytes:
    """One event holding ``n`` empty primitive elements side by side."""
    return _batch(_wrap(_MOC, encode_header(_BASIC, False, 0) * n))


def random_bytes(size: int, seed: int = 14) -> bytes:
    """``size`` random bytes (a reproducible seed)."""
    return random.Random(seed).randbytes(size)
