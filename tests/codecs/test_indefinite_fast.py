"""Indefinite lengths: the fast paths give exactly what the element-by-element reading gives.

Two fast paths are checked against the pure-Python reference they replace:

* the ends of indefinite elements (:func:`clearing.codecs.ber.element_at`): one linear pass,
  siblings guessed in bulk with numpy and remembered per buffer, against the recursive
  reading kept below (``_ref_element``), errors (message and offset) included;
* the event decoder: events with an indefinite length inside read by the vectorised lanes,
  against the same decoder with ``indefinite=False`` (each such event read by
  :func:`clearing.codecs.ber.walk`): the same event table and the same problems, in the same
  order, for many indefinite variants of the samples and for mutated (broken) files.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from clearing.codecs import asn1, ber, fast
from clearing.codecs.ber import TLV, encode_header, read_header, tag_key, tag_name
from clearing.codecs.indefinite import to_indefinite
from clearing.errors import ClearingError, DecodeError

CASES = Path(__file__).parent / "cases"
SAMPLES = Path(__file__).parents[2] / "data_samples" / "tap"
MANY = CASES / "Olernov-TAP3_TAP_out.asn1"  # 109 events: enough siblings to be guessed
SAMPLE = min((p for p in SAMPLES.glob("CD*") if p.stat().st_size > 1000), key=lambda p: p.name)
FEW = CASES / "libxfsx_tap_3_12_valid_most_indef.ber"
SOURCES = [
    MANY,
    SAMPLE,
    CASES / "libxfsx_tap_3_12_valid.ber",
    CASES / "libxfsx_tap_3_12_negative_volume.ber",
    CASES / "tree-model_tap_3_12_larger_cdr.ber",
]
_EVENTS = tag_key(1, 3)


# ---------------------------------------------------------------------------------------------
# the reference: the recursive reading of the ends of indefinite elements


def _ref_element(data: bytes, pos: int, limit: int, depth: int = 0) -> TLV:
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
        p = _ref_element(data, p, limit, depth + 1).end


def _ref_children(data: bytes, parent: TLV) -> list[TLV]:
    out: list[TLV] = []
    p = parent.content_start
    stop = parent.content_end
    while p < stop:
        child = _ref_element(data, p, stop)
        out.append(child)
        p = child.end
    if p != stop:
        raise DecodeError("children overrun their container", offset=parent.offset)
    return out


def _outcome(read: Any, *args: Any) -> Any:
    try:
        return read(*args)
    except DecodeError as exc:
        return ("error", exc.reason, exc.offset)
    except RecursionError:
        return ("recursion",)


def _tree(data: bytes, element: Any, children: Any) -> Any:
    """The top element, its children and grandchildren (where the reading may fail)."""
    top = element(data, 0, len(data))
    kids = children(data, top) if top.constructed else []
    return top, [(k, _outcome(children, data, k) if k.constructed else None) for k in kids]


def _same_tree(data: bytes) -> None:
    ber.forget()
    want = _outcome(_tree, data, _ref_element, _ref_children)
    if want == ("recursion",):
        return
    got = _outcome(_tree, data, ber._element, ber.iter_children)
    assert got == want
    # and again, with whatever the first reading remembered
    assert _outcome(_tree, data, ber._element, ber.iter_children) == want


def _events(*events: bytes, indefinite_list: bool = True) -> bytes:
    """A bare TransferBatch-like tree: top [1] holding a list [3] of ``events``."""
    body = b"".join(events)
    if indefinite_list:
        lst = encode_header(_EVENTS, True, None) + body + b"\0\0"
    else:
        lst = encode_header(_EVENTS, True, len(body)) + body
    return encode_header(tag_key(1, 1), True, None) + lst + b"\0\0"


def _indef(key: int, *children: bytes) -> bytes:
    return encode_header(key, True, None) + b"".join(children) + b"\0\0"


def _prim(key: int, value: bytes) -> bytes:
    return encode_header(key, False, len(value)) + value


# ---------------------------------------------------------------------------------------------
# ends of indefinite elements


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
@pytest.mark.parametrize("depth_limit", [None, 0, 1, 2, 3])
def test_element_ends_agree_on_indefinite_variants(path: Path, depth_limit: int | None) -> None:
    _same_tree(to_indefinite(path.read_bytes(), depth_limit=depth_limit))


def test_many_siblings_are_guessed_and_remembered() -> None:
    data = to_indefinite(MANY.read_bytes())
    ber.forget()
    top = ber.element_at(data, 0)
    assert top.end == len(data)
    lst = next(c for c in ber.iter_children(data, top) if c.key == _EVENTS)
    events = ber.iter_children(data, lst)
    assert len(events) == 109
    # every event after the first ones read one by one was found by the guesses
    for ev in events[ber._GUESS_AFTER + 1 :]:
        assert ber.known_end(data, ev.offset, len(data)) == ev.end
    assert [(e.offset, e.end) for e in events] == [
        (e.offset, e.end) for e in _ref_children(data, _ref_element(data, lst.offset, len(data)))
    ]
    # remembered for this buffer only: an equal copy is read again
    last = events[-1]
    copy = bytes(bytearray(data))
    assert ber.known_end(copy, last.offset, len(data)) is None
    assert ber.element_at(copy, 0).end == top.end
    assert ber.known_end(data, last.offset, len(data)) is None
    # a remembered end holds only within its limit and nesting
    assert ber.known_end(copy, last.offset, last.end - 1) is None
    assert ber.known_end(copy, last.offset, last.end) == last.end
    assert ber.known_end(copy, last.offset, last.end, depth=64) is None
    ber.forget()
    assert ber.known_end(copy, last.offset, len(data)) is None


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_guesses_searched_in_small_blocks(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """End-of-contents octets across the blocks searched for them are found all the same."""
    monkeypatch.setattr(ber, "_GUESS_BLOCK", block)
    data = to_indefinite(MANY.read_bytes())
    _same_tree(data)
    ber.forget()
    top = ber.element_at(data, 0)
    lst = next(c for c in ber.iter_children(data, top) if c.key == _EVENTS)
    events = ber.iter_children(data, lst)
    for ev in events[ber._GUESS_AFTER + 1 :]:
        assert ber.known_end(data, ev.offset, len(data)) == ev.end


def test_false_guesses_are_never_used() -> None:
    """Inside a value, ``00 00`` followed by an event's header looks like the next event."""
    ev9, ev10 = tag_key(1, 9), tag_key(1, 10)
    fake = b"\0\0" + encode_header(ev9, True, None) + b"\x5f\x81\x00"  # not an event: a value
    events = []
    for i in range(60):
        value = fake if i % 3 == 0 else bytes([i, 0, 0, 0x69])
        inner = _indef(tag_key(1, 77), _prim(tag_key(1, 5), value))
        events.append(_indef(ev9 if i % 2 else ev10, _prim(tag_key(2, 1), bytes([i])), inner))
    data = _events(*events)
    _same_tree(data)
    ber.forget()
    assert ber.element_at(data, 0).end == len(data)


@pytest.mark.parametrize(
    "bad",
    [
        b"",  # fine: the control
        b"\x7f\x88\x80\x80\x01\x80\0\0",  # a tag of 4 bytes (read one by one)
        b"\x45\x85\x00\x00\x00\x00\x01\x00",  # a length field of 5 bytes
        b"\x45\x80\0\0",  # indefinite length on a primitive element
        b"\x65\x05\x01",  # a definite element running past the event
        b"\x65\x80\x41\x01",  # no end-of-contents
    ],
)
def test_unusual_events_among_many_agree(bad: bytes) -> None:
    ev = tag_key(1, 9)
    events = [
        _indef(ev, _indef(tag_key(1, 70), _prim(tag_key(1, 71), bytes([i])))) for i in range(40)
    ]
    events[25] = _indef(ev, bad) if bad and bad[1] == 0x80 else encode_header(ev, True, None) + bad
    _same_tree(_events(*events))
    _same_tree(_events(*events[:30]) + b"\0")


@pytest.mark.parametrize("levels", [60, 63, 64, 65, 66, 70])
def test_deep_nesting_among_many_siblings(levels: int) -> None:
    ev = tag_key(1, 9)
    deep = _prim(tag_key(1, 71), b"\x01")
    for _ in range(levels):
        deep = _indef(tag_key(1, 70), deep)
    events = [_indef(ev, _prim(tag_key(1, 71), bytes([i]))) for i in range(30)]
    events[20] = _indef(ev, deep)
    _same_tree(_events(*events))
    ber.forget()
    # remembered at one depth, read again where the nesting would pass 64 levels
    data = _events(*events)
    off = 4 + sum(len(e) for e in events[:20])  # after the two headers (2 bytes each)
    assert data[off : off + 2] == encode_header(ev, True, None)
    for depth in (0, 64 - levels, 64 - levels + 1, 1):
        got = _outcome(ber._element, data, off, len(data), depth)
        assert got == _outcome(_ref_element, data, off, len(data), depth)


@pytest.mark.parametrize("seed_path", [MANY, FEW], ids=lambda p: p.name)
def test_mutated_element_ends_agree(seed_path: Path) -> None:
    seed = to_indefinite(seed_path.read_bytes())
    rng = random.Random(f"ends-{seed_path.name}")
    for _ in range(120):
        _same_tree(_mutate(seed, rng))


# ---------------------------------------------------------------------------------------------
# the event decoder


def _decoded(data: bytes, chunk: int, *, indefinite: bool) -> Any:
    ber.forget()
    try:
        batch = fast._decode_tap(data, chunk, None, indefinite=indefinite)
    except ClearingError as exc:
        return ("error", type(exc).__name__, str(exc))
    return batch


def _assert_same_decoding(data: bytes, chunk: int = 4096) -> None:
    want = _decoded(data, chunk, indefinite=False)
    got = _decoded(data, chunk, indefinite=True)
    if isinstance(want, tuple) or isinstance(got, tuple):
        assert got == want
        return
    assert got.events.equals(want.events)
    assert got.problems == want.problems
    assert got.groups == want.groups
    assert got.event_list_offset == want.event_list_offset


def _variants(data: bytes) -> list[bytes]:
    rng = random.Random(len(data))
    out = [to_indefinite(data, depth_limit=d) for d in (None, 0, 1, 2, 3, 4)]
    out.append(to_indefinite(data, select=lambda depth, _tlv: depth >= 3))
    out.append(to_indefinite(data, select=lambda _depth, _tlv: rng.random() < 0.5))
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_vectorised_indefinite_events_match_the_pure_python_path(path: Path) -> None:
    for variant in _variants(path.read_bytes()):
        _assert_same_decoding(variant)
        _assert_same_decoding(variant, chunk=7)


def test_vectorised_indefinite_events_match_on_every_generated_sample() -> None:
    for path in sorted(p for p in SAMPLES.glob("CD*") if p.stat().st_size > 1000):
        _assert_same_decoding(to_indefinite(path.read_bytes()))


def test_indefinite_events_are_read_by_the_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    """No event of a well-formed indefinite file is left to the pure-Python path."""
    data = to_indefinite(SAMPLE.read_bytes())
    calls = []
    original = fast._slow_event

    def spy(*args: Any) -> Any:
        calls.append(args[1])
        return original(*args)

    monkeypatch.setattr(fast, "_slow_event", spy)
    batch = fast.decode_tap(data)
    assert batch.events.num_rows > 100
    assert calls == []


def test_problems_keep_their_order() -> None:
    """Problems found in indefinite events come out as the pure-Python path reported them."""
    data = (CASES / "libxfsx_tap_3_12_negative_volume.ber").read_bytes()
    many = to_indefinite(data, select=lambda depth, _tlv: depth != 1)
    want = _decoded(many, 4096, indefinite=False)
    assert want.problems
    _assert_same_decoding(many)


@pytest.mark.parametrize("seed_path", [MANY, FEW, SAMPLE], ids=lambda p: p.name)
def test_mutated_indefinite_files_decode_the_same(seed_path: Path) -> None:
    seeds = [
        to_indefinite(seed_path.read_bytes()),
        to_indefinite(seed_path.read_bytes(), depth_limit=2),
    ]
    rng = random.Random(f"decode-{seed_path.name}")
    for n in range(60):
        data = _mutate(seeds[n % 2], rng)
        try:
            asn1.sniff(data)
        except ClearingError:
            continue
        _assert_same_decoding(data, chunk=rng.choice((5, 4096)))


@pytest.mark.slow
@pytest.mark.parametrize("seed_path", [MANY, FEW, SAMPLE], ids=lambda p: p.name)
def test_many_mutated_indefinite_files_decode_the_same(seed_path: Path) -> None:
    seed = to_indefinite(seed_path.read_bytes())
    rng = random.Random(f"decode-many-{seed_path.name}")
    for _ in range(600):
        data = _mutate(seed, rng)
        _same_tree(data)
        try:
            asn1.sniff(data)
        except ClearingError:
            continue
        _assert_same_decoding(data, chunk=rng.choice((5, 4096, 4096, 4096)))


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Damage a few bytes, favouring the ones that matter to indefinite lengths."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        i = rng.randrange(len(b))
        op = rng.randrange(6)
        if op == 0:
            b[i] = rng.choice((0x00, 0x80, 0x81, 0x84, 0x85, 0x1F, 0x7F, 0xFF))
        elif op == 1:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 2:
            b.insert(i, rng.choice((0x00, 0x80)))
        elif op == 3:
            del b[i]
        elif op == 4:
            zeros = [j for j in range(len(b) - 1) if b[j] == 0 and b[j + 1] == 0]
            if zeros:
                del b[rng.choice(zeros)]  # an end-of-contents loses a byte
        else:
            del b[rng.randrange(len(b)) :]
    return bytes(b)
