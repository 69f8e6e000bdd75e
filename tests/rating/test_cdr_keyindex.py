"""The seen index of visitors' CDRs by start day: a lookup reads only what it can match.

``lake/cdr_seen/date=<processing date>/start=<local start day>/part-0.parquet``. The records
here are built by hand (the reader's columns, :func:`clearing.rating.cdr.empty_records`), split
with :func:`split_duplicates` and their first-seen rows written with :func:`keyindex.write`, as
the rating stage does; the expected duplicates are worked out from the rows written here. The
folders a lookup must not read are replaced by bytes that are not Parquet: opening one raises.
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from clearing import keyindex, lake
from clearing.rating.cdr import empty_records
from clearing.rating.duplicates import CDR_HARD_KEY, Split, split_duplicates

from ..cli_run import run_cli

if TYPE_CHECKING:
    from pathlib import Path

D = date(2026, 11, 20)
GARBAGE = b"these bytes are not a Parquet file"
USAGE = "same IMSI, start, service, numbers, duration and volume"


def rec(
    rid: str,
    start: datetime | None,
    *,
    imsi: str = "208011234567890",
    called: str | None = "85223456789",
    calling: str | None = None,
    apn: str | None = None,
    file: str = "CDR.csv",
    line: int = 2,
) -> dict[str, Any]:
    """A visitor's MO call of 65 s (the reader's typed columns)."""
    return {
        "record_id": rid, "record_type": "moc", "imsi": imsi, "msisdn": "33612345678",
        "imei": None, "called_number": called, "calling_number": calling, "start_time": start,
        "utc_offset": "+0800", "duration": 65, "volume_up": None, "volume_down": None,
        "apn": apn, "rec_entity_type": "msc", "rec_entity_id": "85290000001",
        "location_area": None, "cell_id": None, "charging_id": None, "cause_for_term": None,
        "file": file, "line": line,
    }  # fmt: skip


def at(day: date, minute: int = 0, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour, minute))


def night(root: Path, day: date, rows: list[dict[str, Any]], window: int) -> Split:
    """Split ``rows`` as the records of processing date ``day``; write the day's seen index."""
    split = split_duplicates(
        pl.DataFrame(rows, schema=empty_records().schema), root=root, day=day, window_days=window
    )
    lake.clear(root, lake.CDR_SEEN, day)
    keyindex.write(root, lake.CDR_SEEN, day, split.seen.to_arrow())
    return split


def reasons(split: Split) -> dict[str, str]:
    return dict(split.duplicates.select("record_id", "reason").iter_rows())


# --- (1) only the window's dates and the records' start days are read ----------------------

WINDOW = 3
DATES = [D + timedelta(days=k) for k in range(-6, 7)]  # the processing dates of the index
STARTS = [D + timedelta(days=k) for k in (-12, -8, -4, -2, -1, 0, 1, 3)]  # start days of each


def seen_id(p: date, s: date) -> str:
    return f"seen-{p:%m%d}-{s:%m%d}"


def seen_row(p: date, s: date) -> dict[str, Any]:
    """The record first seen on processing date ``p`` that started on ``s`` (its own IMSI)."""
    return rec(seen_id(p, s), at(s), imsi=f"20801000000{p:%m%d}", file=f"CDR_{p:%Y%m%d}.csv")


@pytest.fixture
def big_lake(tmp_path: Path) -> Path:
    """An index of 13 processing dates × 8 start days (one record in each folder)."""
    root = tmp_path / "lake"
    for p in DATES:
        night(root, p, [seen_row(p, s) for s in STARTS], window=0)
    assert len(lake.files(root, lake.CDR_SEEN, DATES)) == len(DATES) * len(STARTS)
    return root


def spoil_all_but(root: Path, dates: list[date], starts: set[date]) -> int:
    """Replace every index file outside ``dates`` × ``starts`` by garbage, and add garbage
    ``start=none`` folders; return how many files were spoiled."""
    spoiled = 0
    for p in DATES:
        for f in lake.files(root, lake.CDR_SEEN, [p]):
            start = date.fromisoformat(f.parent.name.removeprefix("start="))
            if p not in dates or start not in starts:
                f.write_bytes(GARBAGE)
                spoiled += 1
        none = lake.path(root, lake.CDR_SEEN, p, start=None)
        none.parent.mkdir(parents=True)
        none.write_bytes(GARBAGE)
        spoiled += 1
    return spoiled


def test_a_lookup_reads_only_the_window_and_the_start_days_of_the_records(big_lake: Path) -> None:
    day_rows = [
        # A: the usage first seen on D-2 (started D-1), under a new id
        {**seen_row(D - timedelta(days=2), D - timedelta(days=1)), "record_id": "A", "line": 2},
        # B: another call (D-1 10:30) with the id of a record seen on D+2 that started on D-2
        rec(seen_id(D + timedelta(days=2), D - timedelta(days=2)), at(D - timedelta(days=1), 30)),
        # C: a new call that started on D-8
        rec("C", at(D - timedelta(days=8), 45)),
        # F: the usage first seen on D-5: outside the 3-day window, so not a duplicate
        {**seen_row(D - timedelta(days=5), D - timedelta(days=1)), "record_id": "F", "line": 5},
    ]
    for i, r in enumerate(day_rows):
        r["file"], r["line"] = "TODAY.csv", i + 2
    window = [D + timedelta(days=k) for k in (-3, -2, -1, 1, 2, 3)]  # D itself left out
    # the start days D-1 (A, B, F) and D-8 (C), each with its day before and after
    near = {D + timedelta(days=k) for k in (-9, -8, -7, -2, -1, 0)}
    spoiled = spoil_all_but(big_lake, window, near)
    # D's own folders, 7 dates outside the window, 4 start days per date in it, 13 `none`
    assert spoiled == 7 * 8 + 6 * 4 + 13

    split = split_duplicates(
        pl.DataFrame(day_rows, schema=empty_records().schema),
        root=big_lake,
        day=D,
        window_days=WINDOW,
    )

    b_of = f"CDR_{D + timedelta(days=2):%Y%m%d}.csv line 2 date {D + timedelta(days=2)}"
    assert reasons(split) == {
        "A": f"duplicate of CDR_{D - timedelta(days=2):%Y%m%d}.csv line 2 "
        f"date {D - timedelta(days=2)} ({USAGE})",
        seen_id(D + timedelta(days=2), D - timedelta(days=2)): f"duplicate of {b_of} "
        "(same record_id)",
    }
    assert split.records["record_id"].to_list() == ["C", "F"]
    # the garbage is live: a record that started on D+1 would open the spoiled folders
    late = rec("G", at(D + timedelta(days=1)))
    with pytest.raises(pl.exceptions.ComputeError, match="PAR1"):
        split_duplicates(
            pl.DataFrame([late], schema=empty_records().schema),
            root=big_lake,
            day=D,
            window_days=WINDOW,
        )


def test_the_same_record_id_counts_only_within_a_day_of_the_start(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    s = D - timedelta(days=3)
    night(
        root,
        D - timedelta(days=1),
        [
            rec("near", at(s, 59, hour=23), file="Y.csv"),  # 23:59 the day before midnight
            rec("far", at(s, 0), file="Y.csv", line=3),
            rec("late", at(s + timedelta(days=1), 5), file="Y.csv", line=4),
        ],
        window=0,
    )
    today = [
        rec("near", at(s + timedelta(days=1), 1, hour=0), called="1"),  # 00:01 the next day
        rec("far", at(s + timedelta(days=2), 0), called="2"),  # two days later: another call
        rec("late", at(s, 5), called="3"),  # the day before the one seen: within a day
    ]
    split = split_duplicates(
        pl.DataFrame(today, schema=empty_records().schema), root=root, day=D, window_days=5
    )
    of = f"Y.csv line {{}} date {D - timedelta(days=1)} (same record_id)"
    assert reasons(split) == {
        "near": f"duplicate of {of.format(2)}",
        "late": f"duplicate of {of.format(4)}",
    }
    assert split.records["record_id"].to_list() == ["far"]


# --- (2) a hash collision never makes a duplicate -------------------------------------------


def test_colliding_hashes_of_different_records_are_not_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARING_KEY_HASH_BITS", "2")  # 4 hash values: collisions on purpose
    root = tmp_path / "lake"
    start = D - timedelta(days=1)
    d1 = D - timedelta(days=2)
    seen = [rec(f"h{i}", at(start, i), file="H.csv", line=i + 2) for i in range(12)]
    night(root, d1, seen, window=0)
    index = pl.concat([pl.read_parquet(f) for f in lake.files(root, lake.CDR_SEEN, [d1])])
    assert index["k1"].unique().to_list() == [0]
    assert set(index["k2"].to_list()) <= {0, 1, 2, 3}

    # 12 other calls (a minute later, or another number) and 2 true repeats under new ids
    others = [rec(f"n{i}", at(start, i, hour=11)) for i in range(6)]
    others += [rec(f"m{i}", at(start, i), called=f"8522345678{i}") for i in range(6)]
    again = [{**seen[3], "record_id": "x3"}, {**seen[7], "record_id": "x7"}]
    today = [*others, *again]
    for i, r in enumerate(today):
        r["file"], r["line"] = "TODAY.csv", i + 2
    split = night(root, D, today, window=5)

    hashes = set(index.select("k1", "k2").iter_rows())
    colliding = [r for r in split.seen.select("k1", "k2").iter_rows() if r in hashes]
    assert len(colliding) >= 8  # 12 new keys in 4 hash values, each value taken by history
    assert reasons(split) == {
        "x3": f"duplicate of H.csv line 5 date {d1} ({USAGE})",
        "x7": f"duplicate of H.csv line 9 date {d1} ({USAGE})",
    }
    assert split.records["record_id"].to_list() == [r["record_id"] for r in others]


def test_keys_with_the_same_hash_text_are_different_records(tmp_path: Path) -> None:
    """The full 128 bits: a null hashes as ``~`` and the key's columns are joined by ``|``."""
    root = tmp_path / "lake"
    s = D - timedelta(days=1)
    night(
        root,
        D - timedelta(days=1),
        [
            rec("a", at(s), apn=None, file="Y.csv"),
            rec("b", at(s, 1), called="852|1", calling="2", file="Y.csv", line=3),
            rec("c", at(s, 2), apn="web", file="Y.csv", line=4),
        ],
        window=0,
    )
    today = [
        rec("a2", at(s), apn="~"),  # the text of a null
        rec("b2", at(s, 1), called="852", calling="1|2"),  # the separator moved
        rec("c2", at(s, 2), apn="web"),  # a true repeat
    ]
    split = night(root, D, today, window=5)
    hist = pl.concat([pl.read_parquet(f) for f in lake.files(root, lake.CDR_SEEN, [s])])
    same = split.seen.join(hist.select("k1", "k2"), on=["k1", "k2"], how="semi")
    assert same["record_id"].to_list() == ["a2", "b2"]  # a true MD5 match of other records
    assert reasons(split) == {"c2": f"duplicate of Y.csv line 4 date {s} ({USAGE})"}


def test_the_index_holds_the_first_seen_records_by_start_day(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    rows = [
        rec("a", at(D - timedelta(days=1), 59, hour=23)),
        rec("b", at(D, 0, hour=0), line=3),
        rec("a", at(D, 1, hour=0), line=4),  # the same id again the same day: a duplicate
    ]
    night(root, D, rows, window=0)
    files = lake.files(root, lake.CDR_SEEN, [D])
    assert [f.relative_to(root).as_posix() for f in files] == [
        f"cdr_seen/date={D}/start={D - timedelta(days=1)}/part-0.parquet",
        f"cdr_seen/date={D}/start={D}/part-0.parquet",
    ]
    got = [pl.read_parquet(f) for f in files]
    assert [g["record_id"].to_list() for g in got] == [["a"], ["b"]]
    assert got[0].columns == list(lake.CDR_SEEN.schema.names)
    assert got[0].columns[:2] == ["k1", "k2"]
    assert list(CDR_HARD_KEY) == got[0].columns[3:-2]


# --- (3) two nights through the CLI -----------------------------------------------------------


def test_a_file_delivered_again_the_next_night_is_found_in_the_index(tmp_path: Path) -> None:
    world = tmp_path / "w"
    d1, d2 = D, D + timedelta(days=1)
    r = run_cli(
        "samples", "generate", "--out", str(world), "--events", "200",
        "--date", d1.isoformat(), "--days", "2", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("nightly", "--workdir", str(world), "--date", d1.isoformat())
    assert r.returncode in (0, 1), r.stderr
    original = f"CDR_HKGCL_{d1:%Y%m%d}_001.csv"
    taken = pl.concat(
        [
            pl.read_parquet(p, columns=["record_id", "file", "start_time"])
            for ds in (lake.RATED_VISITORS, lake.UNRATED_VISITORS)
            for p in lake.files(world / "lake", ds, [d1])
        ]
    ).filter(pl.col("file") == original)
    assert taken.height > 50
    # the index of night 1: a folder per local start day of the records it took
    seen = lake.files(world / "lake", lake.CDR_SEEN, [d1])
    starts = {f.parent.name for f in seen}
    assert {f"start={d}" for d in taken["start_time"].dt.date().unique()} <= starts

    r = run_cli("samples", "deliver", "--workdir", str(world), "--date", d2.isoformat())
    assert r.returncode == 0, r.stderr
    again = f"CDR_HKGCL_{d2:%Y%m%d}_009.csv"
    inbox = world / "inbox" / "cdr"
    (inbox / again).write_bytes((inbox / original).read_bytes())
    # folders night 2 cannot need: a date far outside the 80-day window, a start day years off
    for p, s in ((d1 - timedelta(days=200), d1), (d1, date(2020, 1, 1))):
        f = lake.path(world / "lake", lake.CDR_SEEN, p, start=s)
        f.parent.mkdir(parents=True)
        f.write_bytes(GARBAGE)
    r = run_cli("nightly", "--workdir", str(world), "--date", d2.isoformat(), "--json")
    assert r.returncode in (0, 1), r.stderr
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["event"] == "manifest", r.stderr

    q = pl.read_parquet(lake.path(world / "lake", lake.CDR_QUARANTINE, d2))
    dupes = q.filter(pl.col("reason").str.starts_with(f"duplicate of {original} "))
    with (inbox / again).open(newline="", encoding="utf-8") as text:
        ids = [row["record_id"] for row in csv.DictReader(text)]
    expected = sorted({i for i in ids if i in set(taken["record_id"].to_list())})
    assert sorted(dupes["record_id"].to_list()) == expected
    assert set(dupes["file"].to_list()) == {again}
    assert all(f"date {d1} (" in reason for reason in dupes["reason"].to_list())
    for rated in lake.files(world / "lake", lake.RATED_VISITORS, [d2]):
        assert again not in pl.read_parquet(rated, columns=["file"])["file"].to_list()
