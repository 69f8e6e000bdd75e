"""A TAP file validated in pieces: the same findings, events and lake rows as read whole.

Big files are decoded, checked and written to the lake a piece of events at a time (issue 16:
memory bounded whatever the file's size). Every rule over events must give what it gives on
the whole file, in the same order (the findings are listed rule by rule, each over all events,
not piece by piece), and the header's audit totals must be the sums over every piece.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from clearing.validate.tap import check_tap

from .tap_mutate import DEFINITE, encode, event, sample_value, settings

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.validate.tap import TapChecked


class _Sink:
    def __init__(self) -> None:
        self.pieces: list[pa.Table] = []
        self.added = 0
        self.cleared = 0

    def add(self, events: pa.Table) -> None:
        self.pieces.append(events)
        self.added += 1

    def clear(self) -> None:
        self.pieces = []
        self.cleared += 1


def _faulty() -> bytes:
    """DEFINITE (360 events) with faults in events far apart and in the audit group."""
    value = sample_value(DEFINITE)
    body: dict[str, Any] = value[1]
    kinds = [alt for alt, _v in body["callEventDetails"]]
    mocs = [i for i, k in enumerate(kinds) if k == "mobileOriginatedCall"]
    gprs = [i for i, k in enumerate(kinds) if k == "gprsCall"]
    first, second, middle, last = mocs[0], mocs[1], mocs[len(mocs) // 2], mocs[-1]
    # a 16-digit IMSI (event.imsi.range) at both ends of the file
    for i in (first, last):
        event(body, i)["basicCallInformation"]["chargeableSubscriber"][1]["imsi"] = bytes.fromhex(
            "4549900015939251"
        )
    # an undefined UtcTimeOffsetCode: a decoder problem, not also a missing code
    event(body, middle)["basicCallInformation"]["callEventStartTimeStamp"]["utcTimeOffsetCode"] = 7
    # no UtcTimeOffsetCode at all (event.start.utc_missing), a negative duration
    del event(body, second)["basicCallInformation"]["callEventStartTimeStamp"]["utcTimeOffsetCode"]
    event(body, last)["basicCallInformation"]["totalCallEventDuration"] = -5
    # a GPRS session over 24 h (event.duration.gprs_long)
    event(body, gprs[-1])["gprsBasicCallInformation"]["totalCallEventDuration"] = 86_401
    # the audit's charge total off by one (aci.total_charge: the sums of every piece)
    body["auditControlInfo"]["totalCharge"] += 1
    return encode(value)


def _whole(data: bytes) -> TapChecked:
    return check_tap(data, file=DEFINITE, settings=settings())


def test_the_planted_faults_are_found_in_the_file_read_whole() -> None:
    """The premise, by hand: what each fault gives (so that the comparisons below compare
    findings, not two empty lists)."""
    c = _whole(_faulty())
    rules = [f.rule for f in c.findings]
    assert rules.count("event.imsi.range") == 2
    assert rules.count("event.utc_code.unknown") == 1
    assert rules.count("event.start.utc_missing") == 1
    assert rules.count("event.duration.range") == 1
    assert rules.count("event.duration.gprs_long") == 1
    assert rules.count("aci.total_charge") == 1
    assert c.event_count == c.events.num_rows == 360
    # the decoder's problem first, the audit group's next, then rule by rule
    assert rules.index("event.utc_code.unknown") < rules.index("aci.total_charge")
    assert rules.index("aci.total_charge") < rules.index("event.imsi.range")
    imsi = [f.event_index or 0 for f in c.findings if f.rule == "event.imsi.range"]
    assert imsi == sorted(imsi)


@pytest.mark.parametrize("piece", [2, 7, 100, 359])
def test_a_file_checked_in_pieces_gives_what_it_gives_whole(piece: int) -> None:
    data = _faulty()
    whole = _whole(data)
    pieces = check_tap(data, file=DEFINITE, settings=settings(), piece_events=piece)
    assert pieces.findings == whole.findings  # the same findings, in the same order
    assert pieces.totals == whole.totals
    assert pieces.events.equals(whole.events)
    sink = _Sink()
    streamed = check_tap(data, file=DEFINITE, settings=settings(), sink=sink, piece_events=piece)
    assert streamed.findings == whole.findings
    assert streamed.events.num_rows == 0  # the events went to the sink
    assert streamed.event_count == 360
    assert [t.num_rows for t in sink.pieces[:-1]] == [sink.pieces[0].num_rows] * (
        len(sink.pieces) - 1
    )
    assert sink.pieces[0].num_rows == piece
    assert pa.concat_tables(sink.pieces).equals(whole.events)


def test_an_event_beyond_the_limits_rejects_the_streamed_file_and_empties_the_sink() -> None:
    """An event nested deeper than any call event makes the file fatal (tb.syntax) even when
    pieces before it went to the sink: the sink is cleared, the parties from the file name."""
    value = sample_value(DEFINITE)
    body: dict[str, Any] = value[1]
    clean = encode(value)
    whole = _whole(clean)
    assert not whole.fatal
    # one more event after the last, 40 levels deep
    from clearing.codecs.ber import encode_header, tag_key

    from .tap_mutate import event_span, splice

    _start, end = event_span(clean, len(body["callEventDetails"]) - 1)
    inner = encode_header(tag_key(2, 0), False, 1) + b"\x00"
    for _ in range(40):
        inner = encode_header(tag_key(1, 9), True, len(inner)) + inner
    deep = splice(clean, end, end, inner)
    sink = _Sink()
    c = check_tap(deep, file=DEFINITE, settings=settings(), sink=sink, piece_events=7)
    want = _whole(deep)
    assert want.fatal
    assert [f.rule for f in want.findings] == ["tb.syntax"]
    assert c.findings == want.findings
    assert sink.added == 360 // 7  # the pieces before the piece of event 360 went to the sink
    assert sink.cleared == 1
    assert sink.pieces == []
    assert c.event_count == 0
    assert (c.sender, c.fsn) == (want.sender, want.fsn)


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    """A work folder at ``root`` with ``files`` in ``in/``, partner FRAF9 configured."""
    (root / "in").mkdir(parents=True)
    (root / "clearing.toml").write_text(
        '[home]\ntadig = "HKGCL"\nsid_bid = "60099"\n[partners.FRAF9]\n'
    )
    for name, data in files.items():
        (root / "in" / name).write_bytes(data)
    return root


def test_a_streamed_day_validated_again_after_a_kill_leaves_no_piece_and_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed while a file's pieces were spooled leaves them under ``W/tmp/events``; the
    next run of the date removes them and writes the lake rows of the file read whole."""
    import datetime as dt

    import pyarrow.parquet as pq

    from clearing.config import WorkDir
    from clearing.samples.tap import PARTNERS, build_file
    from clearing.validate.stage import validate_day

    day = dt.date(2026, 11, 21)
    fra = next(p for p in PARTNERS if p.tadig == "FRAF9")
    name, data = build_file(fra, events=23, seed=5, day=day)
    rows = {}
    for streamed in (False, True):
        root = _folder(tmp_path / ("s" if streamed else "w"), {name: data})
        if streamed:
            monkeypatch.setenv("CLEARING_VALIDATE_PIECE_EVENTS", "4")
            # another file's pieces (this file's would be overwritten anyway)
            stale = root / "tmp" / "events" / "CDDEUD9HKGCL00001.events.parquet"
            stale.parent.mkdir(parents=True)
            stale.write_bytes(b"half a piece, from a run killed with -9")
        result = validate_day(WorkDir(root), day, [root / "in" / name])
        assert result.files[0].counts()["in"] == 23
        lake = root / "lake" / "events_in" / f"date={day}" / "partner=FRAF9" / f"{name}.parquet"
        rows[streamed] = pq.read_table(lake, partitioning=None).to_pylist()
        if streamed:
            assert not list((root / "tmp" / "events").iterdir())
            assert pq.ParquetFile(lake).metadata.num_row_groups == 6  # 23 events in pieces of 4
    assert rows[True] == rows[False]


def test_no_file_s_bytes_are_kept_after_it_is_validated(tmp_path: Path) -> None:
    """The decoder remembers where a file's indefinite-length elements end, and so the file's
    bytes: once the file is validated they go (a 10M night held the previous big file's
    308 MB beside each next one, and the last one's after the stage)."""
    import datetime as dt

    from clearing.codecs import ber, fast
    from clearing.codecs.indefinite import to_indefinite
    from clearing.config import WorkDir
    from clearing.samples.tap import PARTNERS, build_file
    from clearing.validate.stage import validate_day

    day = dt.date(2026, 11, 21)
    by = {p.tadig: p for p in PARTNERS}
    first, data = build_file(by["DEUD9"], events=40, seed=5, day=day)  # validated first
    second, other = build_file(by["FRAF9"], events=30, seed=6, day=day)
    data = to_indefinite(data)
    # the premise: decoding the indefinite file leaves its bytes remembered
    fast.decode_tap(data)
    assert ber._memo is not None
    assert ber._memo[0] is data
    ber.forget()
    root = tmp_path / "w"
    (root / "in").mkdir(parents=True)
    (root / "clearing.toml").write_text(
        '[home]\ntadig = "HKGCL"\nsid_bid = "60099"\n[partners.FRAF9]\n[partners.DEUD9]\n'
    )
    (root / "in" / first).write_bytes(data)
    (root / "in" / second).write_bytes(other)
    result = validate_day(WorkDir(root), day, [root / "in" / first, root / "in" / second])
    assert [f.counts()["in"] for f in result.files] == [40, 30]
    assert ber._memo is None


def test_a_streamed_file_s_bytes_go_before_its_duplicate_search_and_its_returns_are_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a streamed file is decoded its bytes are not held (nor by the decoder's memo): a
    10M night held the biggest file's 308 MB through its duplicate search, lake rows and key
    index. The events it returns are read back from the file: the RAP echoes the same bytes as
    for the file read whole (here a copy of the day's file under the next FSN: every event a
    duplicate, returned)."""
    import datetime as dt

    from clearing.codecs import asn1, ber
    from clearing.config import WorkDir
    from clearing.returns import validate_and_return
    from clearing.samples.tap import PARTNERS, build_file
    from clearing.validate import stage

    day = dt.date(2026, 11, 21)
    fra = next(p for p in PARTNERS if p.tadig == "FRAF9")
    name, data = build_file(fra, events=23, seed=5, day=day)
    _, value = asn1.decode(data).value
    fsn = int(value["batchControlInfo"]["fileSequenceNumber"]) + 1
    value["batchControlInfo"]["fileSequenceNumber"] = f"{fsn:05d}".encode()
    again = asn1.encode("tap", ("transferBatch", value))
    again_name = name[:-5] + f"{fsn:05d}"
    searched: list[tuple[bytes, object]] = []
    validate_one = stage.validate_one

    def spying(*args: Any, **kwargs: Any) -> Any:
        searched.append((kwargs["checked"].data, ber._memo))
        return validate_one(*args, **kwargs)

    raps = {}
    for streamed in (False, True):
        root = _folder(tmp_path / ("s" if streamed else "w"), {name: data, again_name: again})
        with monkeypatch.context() as m:
            if streamed:
                m.setenv("CLEARING_VALIDATE_PIECE_EVENTS", "4")
                m.setattr(stage, "validate_one", spying)
            result = validate_and_return(
                WorkDir(root), day, [root / "in" / name, root / "in" / again_name]
            )
        assert [f.counts()["duplicate"] for f in result.files] == [0, 23]
        (rap,) = result.raps
        raps[streamed] = rap.read_bytes()
    assert raps[True] == raps[False]
    assert [(held, memo) for held, memo in searched] == [(b"", None), (b"", None)]


def test_a_streamed_file_that_changed_on_disk_is_an_error_naming_it(tmp_path: Path) -> None:
    from clearing.errors import ClearingError
    from clearing.validate.stage import _Spool

    source = tmp_path / "CDFRAF9HKGCL00001"
    source.write_bytes(b"0123456789")
    spool = _Spool(tmp_path / "spool", source)
    assert spool.event_bytes([2, 7], [3, 3]) == [b"234", b"789"]
    source.write_bytes(b"01234")  # truncated while it was validated
    with pytest.raises(ClearingError, match="00001: 3 bytes expected at offset 3, 2 read"):
        spool.event_bytes([3], [3])
