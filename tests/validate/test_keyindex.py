"""The duplicate search through the key index: what it reads, and exact under hash collisions.

Events are built by hand here, their keys written through the validate stage's own writer
(:func:`index_accepted`), and :func:`find_duplicates` / :func:`find_ciber_duplicates` asked.
Which event repeats which is decided by the test's own construction (the same dictionary used
twice), never by the code under test.

* **only the window's partitions are read**: the index files a lookup must not need (processing
  dates outside the window, start days none of the file's events has) are overwritten with bytes
  that are not Parquet; the lookup still answers. Garbage in a partition it does need makes it
  fail — so the test can see a read.
* **a collision is never a duplicate**: ``CLEARING_KEY_HASH_BITS=1`` leaves two hash values for
  all keys; the events that differ stay apart, the true repeats are still found.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearing import lake as lakes
from clearing.validate.duplicates import (
    find_ciber_duplicates,
    find_duplicates,
    hash_keys,
    index_accepted,
    index_history,
)

if TYPE_CHECKING:
    from pathlib import Path

UTC = dt.UTC
DAY = dt.date(2026, 11, 20)
WINDOW = 5  # processing dates 11-15 … 11-19 (and the day's own, the files earlier this run)


def _event(
    i: int, *, start: dt.datetime, imsi: str = "234150000000001", **over: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source_format": "tap",
        "sender": "GBRCN",
        "recipient": "HKGCL",
        "event_index": i,
        "event_kind": "mobileOriginatedCall",
        "byte_offset": 0,
        "byte_length": 0,
        "imsi": imsi,
        "called_number": "441234567890",
        "start_utc": start,
        "local_start": start.replace(tzinfo=None),
        "duration": 60,
        "rec_entity_code": 1,
        "status": "accepted",
        "file": "unset",
    }
    row.update(over)
    return row


def _table(rows: list[dict[str, Any]], file: str) -> pa.Table:
    schema = lakes.EVENTS_IN_SCHEMA
    rows = [{**r, "event_index": i, "file": file} for i, r in enumerate(rows)]
    return pa.table(
        {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema}, schema=schema
    )


def _accept(root: Path, day: dt.date, rows: list[dict[str, Any]], file: str) -> pa.Table:
    table = _table(rows, file)
    with duckdb.connect() as con:
        index_accepted(con, root, day, table, partner="GBRCN", source=file)
    return table


def _find(
    root: Path, rows: list[dict[str, Any]], *, soft: int = 2
) -> list[tuple[int, str, int, bool]]:
    with duckdb.connect() as con:
        found = find_duplicates(
            con,
            _table(rows, "CDGBRCNHKGCL00042"),
            file="CDGBRCNHKGCL00042",
            lake=root,
            day=DAY,
            window_days=WINDOW,
            soft_seconds=soft,
        )
    return [(d.event_index, d.of_file, d.of_index, d.hard) for d in found]


def _spoil(path: Path) -> None:
    path.write_bytes(b"not parquet at all: if this is read the lookup fails")


def at(day: int, hour: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, 0, second, tzinfo=UTC)


def test_the_lookup_reads_only_the_window_dates_and_the_files_start_days(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    old = _event(0, start=at(9, 10))  # accepted on 11-10: outside the 5-day window
    inside = _event(0, start=at(18, 10))  # accepted on 11-19: inside
    other_day = _event(1, start=at(16, 10), imsi="234150000000009")  # a start day not looked up
    _accept(root, dt.date(2026, 11, 10), [old], "CDGBRCNHKGCL00001")
    _accept(root, dt.date(2026, 11, 19), [inside, other_day], "CDGBRCNHKGCL00030")
    _accept(root, dt.date(2026, 11, 12), [_event(0, start=at(18, 11))], "CDGBRCNHKGCL00002")

    folders = sorted(p.relative_to(root / "keys_in") for p in (root / "keys_in").rglob("*.parquet"))
    assert [str(p.parent) for p in folders] == [
        "date=2026-11-10/start=2026-11-09",
        "date=2026-11-12/start=2026-11-18",
        "date=2026-11-19/start=2026-11-16",
        "date=2026-11-19/start=2026-11-18",
    ]
    needed = root / "keys_in" / "date=2026-11-19" / "start=2026-11-18" / "CDGBRCNHKGCL00030.parquet"
    for f in (root / "keys_in").rglob("*.parquet"):
        if f != needed:
            _spoil(f)  # outside the window (11-10, 11-12) or a start day the file lacks (11-16)

    # the file: a repeat of `inside`, a repeat of `old` (outside the window: new), a new event
    rows = [
        _event(0, start=at(18, 10)),
        _event(1, start=at(9, 10)),
        _event(2, start=at(18, 12), duration=5),
    ]
    assert _find(root, rows) == [(0, "CDGBRCNHKGCL00030", 0, True)]

    _spoil(needed)  # the one partition it needs: now it must fail
    with pytest.raises(duckdb.Error):
        _find(root, rows)


def test_a_hash_collision_never_makes_a_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARING_KEY_HASH_BITS", "1")
    root = tmp_path / "lake"
    # 30 events accepted yesterday: one subscriber, calls an hour apart, each its own key
    history = [_event(i, start=at(18, 0) + dt.timedelta(hours=i)) for i in range(30)]
    _accept(root, dt.date(2026, 11, 19), history, "CDGBRCNHKGCL00030")
    keys = pq.read_table(root / "keys_in").select(["k1", "k2"]).to_pylist()
    assert {k["k1"] for k in keys} == {0}
    assert {k["k2"] for k in keys} == {0, 1}

    rows = [
        *(  # 30 new calls of the same subscriber on the same hours, one second longer
            _event(i, start=at(18, 0) + dt.timedelta(hours=i), duration=61) for i in range(30)
        ),
        history[4],  # 30: a true repeat of yesterday's event 4
        history[17],  # 31: of event 17
        _event(32, start=at(21, 5), duration=7),  # 32: new
        _event(33, start=at(21, 5), duration=7),  # 33: repeats 32, inside the file
    ]
    found = _find(root, rows, soft=0)
    hard = [(i, f, o) for i, f, o, h in found if h]
    assert hard == [
        (30, "CDGBRCNHKGCL00030", 4),
        (31, "CDGBRCNHKGCL00030", 17),
        (33, "CDGBRCNHKGCL00042", 32),
    ]
    # with a soft tolerance of 2 s, each 61-second call is *close* to its hour's 60-second call
    # (same subscriber and kind, same start, other duration): a warning, never a duplicate
    found = _find(root, rows, soft=2)
    assert [(i, h) for i, _f, _o, h in found] == [
        *((i, False) for i in range(30)),
        (30, True),
        (31, True),
        (33, True),
    ]


def test_the_soft_tolerance_is_exact_at_its_edges_on_a_busy_card(tmp_path: Path) -> None:
    """Close means at most ``soft`` seconds apart, wherever the two starts fall in the minute.

    The search compares a card's events by time slots of ``soft`` seconds (so that a card with
    thousands of events a day is not compared pair by pair): pairs exactly ``soft`` seconds
    apart, straddling a slot's edge or not, are close; ``soft + 1`` apart are not.
    """
    root = tmp_path / "lake"
    soft = 7
    base = at(18, 10)
    history = [
        _event(0, start=base + dt.timedelta(seconds=s), duration=30) for s in (0, 100, 203, 300)
    ]
    _accept(root, dt.date(2026, 11, 19), history, "CDGBRCNHKGCL00030")
    # a busy card: 2 000 events 40 s apart after 12:00 (never within 7 s of each other)
    busy = [_event(0, start=at(18, 12) + dt.timedelta(seconds=40 * i)) for i in range(2000)]
    rows = [
        _event(0, start=base + dt.timedelta(seconds=soft)),  # 0: 7 s after history 0: close
        _event(1, start=base + dt.timedelta(seconds=100 - soft)),  # 1: 7 s before history 1
        _event(2, start=base + dt.timedelta(seconds=203 + soft + 1)),  # 2: 8 s after: new
        _event(3, start=base + dt.timedelta(seconds=300 - soft - 1)),  # 3: 8 s before: new
        *busy,  # 4 … 2003: new, apart from each other too
        _event(2004, start=busy[10]["start_utc"] + dt.timedelta(seconds=soft)),  # close to 14
    ]
    found = _find(root, rows, soft=soft)
    assert [(i, f, o, h) for i, f, o, h in found] == [
        (0, "CDGBRCNHKGCL00030", 0, False),
        (1, "CDGBRCNHKGCL00030", 1, False),
        (2004, "CDGBRCNHKGCL00042", 14, False),
    ]
    # every offset of a pair against the slot edges: d seconds apart, for d = 0 … soft + 1
    for shift in range(soft):
        start = base + dt.timedelta(seconds=shift)
        for d in range(soft + 2):
            later = start + dt.timedelta(seconds=d)
            pair = [_event(0, start=start), _event(1, start=later, duration=61)]
            got = _find(tmp_path / f"empty-{shift}-{d}", pair, soft=soft)
            assert got == ([(1, "CDGBRCNHKGCL00042", 0, False)] if d <= soft else []), (shift, d)


def test_ciber_records_collide_without_being_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARING_KEY_HASH_BITS", "1")
    root = tmp_path / "lake"

    def rec(i: int, charge: int) -> dict[str, Any]:
        return _event(
            i,
            start=at(18, 9) + dt.timedelta(minutes=i),
            source_format="ciber",
            sender="12345",
            recipient="54321",
            msisdn="12125550100",
            charge=charge,
        )

    accepted = [rec(i, 100 + i) for i in range(20)]
    _accept(root, dt.date(2026, 11, 19), accepted, "CIBER-OLD.DAT")
    # the same calls with another charge (not the same record), and record 7 again
    rows = [rec(i, 200 + i) for i in range(20)] + [accepted[7]]
    with duckdb.connect() as con:
        found = find_ciber_duplicates(
            con,
            _table(rows, "CIBER-NEW.DAT"),
            list(range(21)),
            lake=root,
            day=DAY,
            window_days=WINDOW,
        )
    assert [(d.event_index, d.of_file, d.of_index, d.of_date) for d in found] == [
        (20, "CIBER-OLD.DAT", 7, dt.date(2026, 11, 19))
    ]


def test_a_work_folder_without_index_gets_its_window_indexed(tmp_path: Path) -> None:
    """An upgraded work folder: accepted events in ``events_in`` only, no ``keys_in`` yet."""
    root = tmp_path / "lake"
    seen = _event(0, start=at(18, 10))
    returned = _event(1, start=at(18, 11), status="returned")  # never accepted: not history
    for d, file in ((dt.date(2026, 11, 19), "CDGBRCNHKGCL00030"), (dt.date(2026, 11, 1), "OLD")):
        lakes.write(
            root, lakes.EVENTS_IN, d, _table([seen, returned], file), partner="GBRCN", source=file
        )
    with duckdb.connect() as con:
        indexed = index_history(con, root, DAY, WINDOW)
    assert indexed == [dt.date(2026, 11, 19)]  # 11-01 is outside the window
    assert _find(root, [_event(0, start=at(18, 10)), _event(1, start=at(18, 11))]) == [
        (0, "CDGBRCNHKGCL00030", 0, True)
    ]
    with duckdb.connect() as con:
        assert index_history(con, root, DAY, WINDOW) == []  # once


def test_a_file_whose_keys_are_missing_is_indexed_again(tmp_path: Path) -> None:
    """A night stopped between a file's lake rows and its keys: the next night indexes it."""
    root = tmp_path / "lake"
    d = dt.date(2026, 11, 19)
    a, b = _event(0, start=at(18, 10)), _event(0, start=at(18, 11), duration=9)
    for file, row in (("CDGBRCNHKGCL00030", a), ("CDGBRCNHKGCL00031", b)):
        lakes.write(root, lakes.EVENTS_IN, d, _table([row], file), partner="GBRCN", source=file)
    _accept(root, d, [a], "CDGBRCNHKGCL00030")  # only the first file's keys were written
    with duckdb.connect() as con:
        assert index_history(con, root, DAY, WINDOW) == [d]
        assert index_history(con, root, DAY, WINDOW) == []  # now both are indexed
    assert _find(root, [a, b]) == [
        (0, "CDGBRCNHKGCL00030", 0, True),
        (1, "CDGBRCNHKGCL00031", 0, True),
    ]


def test_the_lookups_hashes_reused_for_the_index_write_the_same_files(tmp_path: Path) -> None:
    """The nightly hashes a file's keys once (lookup, then index): the same bytes as hashing
    them again; an accepted event the given hashes lack makes the writer hash them itself."""
    rows = [_event(i, start=at(18, 1) + dt.timedelta(minutes=i)) for i in range(5)]
    table = _table(rows, "CDGBRCNHKGCL00030")
    accepted = table.slice(1)  # event 0 was returned
    d = dt.date(2026, 11, 19)
    with duckdb.connect() as con:
        index_accepted(con, tmp_path / "a", d, accepted, partner="GBRCN", source="F")
        hashed = hash_keys(con, table)
        index_accepted(con, tmp_path / "b", d, accepted, partner="GBRCN", source="F", hashed=hashed)
        partial = hashed.slice(2)  # lacks event 1: not used
        index_accepted(
            con, tmp_path / "c", d, accepted, partner="GBRCN", source="F", hashed=partial
        )
    files = {
        p.name: sorted(f.relative_to(p) for f in p.rglob("*.parquet"))
        for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c")
    }
    assert files["a"] == files["b"] == files["c"]
    assert files["a"]
    for rel in files["a"]:
        want = (tmp_path / "a" / rel).read_bytes()
        assert (tmp_path / "b" / rel).read_bytes() == want
        assert (tmp_path / "c" / rel).read_bytes() == want


def _reference(
    history: list[tuple[dt.date, str, list[dict[str, Any]]]],
    rows: list[dict[str, Any]],
    file: str,
    soft: int,
) -> list[tuple[int, str, int, bool]]:
    """The duplicates of ``rows`` by their definition, pair by pair (no hash, no join).

    Hard: an earlier event (history, or before it in the file) with the whole key equal.
    Soft (not hard): one of the same card and kind, starts at most ``soft`` s apart, another
    key. The first occurrence: history before the file, then by date, file and position.
    """
    from clearing.validate.duplicates import HARD_KEY

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(r.get(c) for c in HARD_KEY)

    seen = [(False, d, f, i, r) for d, f, rs in history for i, r in enumerate(rs)]
    out = []
    for i, c in enumerate(rows):
        earlier = [*seen, *((True, DAY, file, j, r) for j, r in enumerate(rows[:i]))]
        ranked = sorted(earlier, key=lambda x: (x[0], x[1], x[2], x[3]))
        hard = [x for x in ranked if key(x[4]) == key(c)]
        close = [
            x
            for x in ranked
            if x[4]["imsi"] is not None
            and x[4]["imsi"] == c["imsi"]
            and x[4]["event_kind"] == c["event_kind"]
            and abs((x[4]["start_utc"] - c["start_utc"]).total_seconds()) <= soft
            and key(x[4]) != key(c)
        ]
        if hard:
            out.append((i, hard[0][2], hard[0][3], True))
        elif close:
            out.append((i, close[0][2], close[0][3], False))
    return out


@pytest.mark.parametrize("bits", ["128", "2"])
@pytest.mark.parametrize("soft", [0, 3])
def test_the_search_finds_what_the_definition_finds_on_a_dense_random_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bits: str, soft: int
) -> None:
    """Random events of three cards in ten minutes: repeats, near repeats, the same key under
    another card, across two history dates, two files and inside the file; with 128-bit
    hashes and with 2 bits (every hash shared by thousands of keys)."""
    import random

    monkeypatch.setenv("CLEARING_KEY_HASH_BITS", bits)
    rnd = random.Random(20261206 + soft + len(bits))
    cards = ["234150000000001", "234150000000002", "234150000000003"]
    kinds = ["mobileOriginatedCall", "gprsCall"]

    def some(n: int) -> list[dict[str, Any]]:
        return [
            _event(
                0,
                start=at(18, 10) + dt.timedelta(seconds=rnd.randrange(600)),
                imsi=rnd.choice(cards),
                event_kind=rnd.choice(kinds),
                duration=rnd.choice([60, 61]),
            )
            for _ in range(n)
        ]

    root = tmp_path / "lake"
    history = [
        (dt.date(2026, 11, 18), "CDGBRCNHKGCL00010", some(150)),
        (dt.date(2026, 11, 19), "CDGBRCNHKGCL00011", some(150)),
        (dt.date(2026, 11, 19), "CDGBRCNHKGCL00009", some(100)),
    ]
    for d, f, rs in history:
        _accept(root, d, rs, f)
    rows = some(200)
    # exact repeats of history and of the file's own events, and one under another card
    rows += [dict(history[0][2][5]), dict(history[2][2][7]), dict(rows[3]), dict(rows[150])]
    rows.append({**rows[10], "imsi": cards[(cards.index(rows[10]["imsi"]) + 1) % 3]})
    for i, r in enumerate(rows):
        r["event_index"] = i
    for _, _, rs in history:
        for i, r in enumerate(rs):
            r["event_index"] = i
    expected = _reference(history, rows, "CDGBRCNHKGCL00042", soft)
    assert any(h for *_, h in expected)
    if soft:
        assert sum(not h for *_, h in expected) > 50
    assert _find(root, rows, soft=soft) == expected


def test_a_files_keys_written_in_pieces_keep_every_row_in_its_start_days_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big file's keys are filtered and written in pieces of ``WRITE_ROWS`` rows (one row
    group each); each start day's file holds exactly that day's rows, in the file's order, and
    later lookups find events of every piece."""
    from clearing import keyindex

    monkeypatch.setattr(keyindex, "WRITE_ROWS", 3)
    # 11 events over three start days, interleaved: 17, 18, 19, 17, 18, ...
    rows = [_event(i, start=at(17 + i % 3, 1) + dt.timedelta(minutes=i)) for i in range(11)]
    table = _accept(tmp_path, dt.date(2026, 11, 19), rows, "CDGBRCNHKGCL00030")
    day_dir = tmp_path / "keys_in" / "date=2026-11-19"
    for d, pieces in ((17, 4), (18, 4), (19, 3)):
        f = day_dir / f"start=2026-11-{d}" / "CDGBRCNHKGCL00030.parquet"
        got = pq.read_table(f, partitioning=None)
        assert got.column("event_index").to_pylist() == [i for i in range(11) if 17 + i % 3 == d]
        # pieces of 3 source rows (0-2, 3-5, 6-8, 9-10), a row group for each with the day
        assert pq.ParquetFile(f).num_row_groups == pieces
    # every event is found again as a hard duplicate from a later file of the window
    again = [{**r, "file": "x"} for r in table.to_pylist()]
    assert _find(tmp_path, again) == [(i, "CDGBRCNHKGCL00030", i, True) for i in range(11)]
