"""The TAP decoder is bounded: hostile nesting and empty events are fatal, quickly (issue 14).

A real call event is at most about 10 levels deep (TD.57's deepest path, GPRS charge details)
and has a few hundred elements; an event shorter than 16 bytes cannot hold a MOC's IMSI and
start time. Files beyond these limits are rejected as a whole with a DecodeError that names the
event, the offset and what to do, in well under a second, whatever their size.
"""

from __future__ import annotations

import time

import pytest

from clearing.codecs import fast
from clearing.codecs.ber import LimitError, element_at, iter_children, read_header, walk
from clearing.config import parse
from clearing.errors import DecodeError
from clearing.validate.tap import check_tap

from .hostile import SAMPLE, deep, empty_events, wide


def _decode_error(data: bytes) -> DecodeError:
    t = time.perf_counter()
    with pytest.raises(DecodeError) as info:
        fast.decode_tap(data, file="CDFRAF9HKGCL01506")
    assert time.perf_counter() - t < 5  # hours before issue 14
    return info.value


def _events_at(data: bytes) -> int:
    """Offset of the first event: after the sample's groups before the event list."""
    top = element_at(data, 0)
    lst = next(k for k in iter_children(data, top) if k.key == (1 << 24) | 3)
    return lst.content_start


@pytest.mark.parametrize("indefinite", [False, True])
def test_100000_levels_deep_is_fatal_in_seconds(indefinite: bool) -> None:
    data = deep(100_000, indefinite=indefinite)
    assert len(data) > 500_000
    exc = _decode_error(data)
    assert exc.file == "CDFRAF9HKGCL01506"
    if not indefinite:  # (the indefinite form fails on BER's own 64-level limit, earlier)
        assert exc.path == "transferBatch.callEventDetails[0]"
        assert "nested more than 32 levels" in exc.reason
        assert "rejected as a whole" in (exc.hint or "")
        # the first element at level 33 below the event: 33 headers down from the event
        pos = _events_at(data)
        for _ in range(33):
            pos = read_header(data, pos)[2]
        assert exc.offset == pos


def test_nesting_at_the_limit_is_read_and_one_more_level_is_not() -> None:
    # the event's root is level 0; 32 nested elements reach level 32 (allowed)
    fast.decode_tap(deep(32))
    with pytest.raises(DecodeError, match="nested more than 32 levels"):
        fast.decode_tap(deep(33))


def test_two_million_empty_events_are_fatal_without_a_row_each() -> None:
    data = empty_events(2_000_000)
    assert len(data) > 4_000_000
    exc = _decode_error(data)
    assert "more than 1000 call events of under 16 bytes" in exc.reason
    assert exc.path == "transferBatch.callEventDetails[1000]"
    # each empty event is 2 bytes (69 00): the 1001st starts 2000 bytes after the first
    assert exc.offset == _events_at(data) + 2 * 1000


def test_a_thousand_empty_events_are_still_read() -> None:
    batch = fast.decode_tap(empty_events(1000))
    assert batch.events.num_rows == 1000


def test_an_event_of_more_than_4096_elements_is_fatal() -> None:
    fast.decode_tap(wide(4000))  # 4001 elements with the event: read
    with pytest.raises(DecodeError, match="more than 4096 elements"):
        fast.decode_tap(wide(5000))


def test_walk_is_iterative_and_bounded() -> None:
    data = deep(5000)
    rows = walk(data, element_at(data, 0))  # no RecursionError at 5000 levels
    assert max(d for d, _ in rows) >= 5000
    with pytest.raises(LimitError):
        walk(data, element_at(data, 0), max_depth=10)
    with pytest.raises(LimitError):
        walk(data, element_at(data, 0), max_elements=100)


def test_validation_returns_the_hostile_file_as_fatal() -> None:
    cfg = parse('[home]\ntadig = "HKGCL"\n\n[partners.FRAF9]\n')
    out = check_tap(deep(100_000), file=SAMPLE.name, settings=cfg)
    assert out.fatal
    assert [f.rule for f in out.findings] == ["tb.syntax"]
