"""The mediation CDR reader: typed records, findings with file/line/field, never a crash."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from clearing.rating.cdr import read_cdrs
from tests.rating.conftest import CDRS

if TYPE_CHECKING:
    from pathlib import Path

HEADER = CDRS.splitlines()[0]


def test_good_csv_is_typed(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(CDRS, encoding="utf-8")
    r = read_cdrs([path])
    assert r.findings.height == 0
    assert r.records.height == 8
    row = r.records.row(0, named=True)
    assert row["start_time"] == datetime(2026, 11, 23, 10, 0, 0)
    assert (row["duration"], row["line"], row["file"]) == (95, 2, "a.csv")
    assert r.records.schema["volume_down"] == pl.Int64


def test_bad_values_are_findings_and_quarantine(tmp_path: Path) -> None:
    rows = [
        HEADER,
        "A1,moc,208010000000001,,,8529123456X,,2026-11-23T10:00:00,+0800,95,,,,msc,85290100001,,,,",
        "A2,moc,208010000000001,,,,,2026-11-23 10:00:00,+0800,-3,,,,msc,85290100001,,,,",
        "A3,gprs,208010000000001,,,,,2026-11-23T25:00:00,+0800,10,1,2,,sgsn,203.0.113.1,,,,",
        "A3,fax,20801,,,,,2026-11-23T10:00:00,0800,,,,,msc,85290100001,70000,,,",
        "A5,mtc,208010000000001,,,,,2026-11-23T10:00:00,+0800,30,,,,msc,85290100001,,,,",
        "A6,mtc,too,few,cells",
    ]
    path = tmp_path / "b.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = read_cdrs([path])
    assert r.records["record_id"].to_list() == ["A5"]
    assert r.records["line"].to_list() == [6]
    found = {(f["line"], f["field"], f["problem"]) for f in r.findings.iter_rows(named=True)}
    assert found == {
        (2, "called_number", "does not match `^[0-9]{1,20}$`"),
        (3, "called_number", "is required for record type moc/sms_mo"),
        (3, "duration", "must be >=0"),
        (4, "start_time", "not a local time YYYY-MM-DDTHH:MM:SS"),
        (4, "apn", "is required for record type gprs"),
        (5, "record_type", "not one of moc|mtc|sms_mo|sms_mt|gprs"),
        (5, "imsi", "does not match `^[0-9]{6,15}$`"),
        (5, "utc_offset", "does not match `^[+-][01][0-9][0-5][0-9]$`"),
        (5, "location_area", "must be in 0..65535"),
        (5, "record_id", "duplicate record_id in the file"),
        (7, "*", "the line does not have as many cells as the header"),
    }
    assert set(r.findings["severity"].to_list()) == {"error"}
    assert r.findings.filter(pl.col("line") == 2)["value"].to_list() == ["8529123456X"]
    assert r.findings.filter(pl.col("line") == 2)["action"].to_list() == [
        "correct the value in the mediation export and resend the record"
    ]
    q = r.quarantined.sort("line")
    assert q["line"].to_list() == [2, 3, 4, 5, 7]
    assert q["reason"][0] == "called_number: does not match `^[0-9]{1,20}$`"
    assert q["called_number"][0] == "8529123456X"  # as found


def test_parquet_input_and_file_level_problems(tmp_path: Path) -> None:
    good = tmp_path / "a.csv"
    good.write_text(CDRS, encoding="utf-8")
    typed = read_cdrs([good]).records.drop("file", "line")
    pq_path = tmp_path / "c.parquet"
    typed.with_columns(pl.lit("x").alias("extra")).write_parquet(pq_path)
    missing = tmp_path / "d.csv"
    missing.write_text("record_id,record_type\nX1,moc\n", encoding="utf-8")
    broken = tmp_path / "e.parquet"
    broken.write_bytes(b"PAR1 not really")
    r = read_cdrs([pq_path, missing, broken])
    assert r.records.height == 8
    assert r.records.drop("file", "line").equals(typed)
    assert r.records["line"].to_list()[:2] == [1, 2]  # Parquet: row numbers
    by_file = {f["file"]: f for f in r.findings.iter_rows(named=True)}
    assert by_file["c.parquet"]["severity"] == "warning"
    assert by_file["c.parquet"]["problem"] == "unknown column(s) ignored: extra"
    assert by_file["d.csv"]["problem"].startswith("required column(s) missing: imsi, start_time")
    assert by_file["e.parquet"]["problem"].startswith("unreadable file")
    assert by_file["e.parquet"]["line"] == 0
    assert r.quarantined.filter(pl.col("file") == "d.csv").height == 1


def test_short_lines_whatever_the_line_breaks(tmp_path: Path) -> None:
    rows = [
        HEADER,
        "A5,mtc,208010000000001,,,,,2026-11-23T10:00:00,+0800,30,,,,msc,85290100001,,,,",
        "A6,mtc,too,few,cells",
        "A7,mtc,208010000000001,,,,,2026-11-23T10:00:00,+0800,30,,,,msc,85290100001,,,,",
    ]
    for sep, end in (("\n", "\n"), ("\n", ""), ("\r\n", "\r\n")):
        path = tmp_path / "s.csv"
        path.write_text(sep.join(rows) + end, encoding="utf-8")
        r = read_cdrs([path])
        assert r.records["record_id"].to_list() == ["A5", "A7"], repr(sep)
        assert r.quarantined["reason"].to_list() == [
            "*: the line does not have as many cells as the header"
        ]


def test_commas_per_line_is_splitlines() -> None:
    from clearing.rating.cdr import _commas_per_line

    rng = np.random.default_rng(3)
    for _ in range(200):
        raw = bytes(rng.choice(list(b"a,,\n"), int(rng.integers(0, 40))))
        lines = [x for x in raw.decode().splitlines() if x]
        counts = _commas_per_line(raw)
        assert counts is not None, raw
        assert list(counts) == [x.count(",") for x in lines], raw
    assert _commas_per_line(b"a,b\r\nc,d\r\n") is None
    assert _commas_per_line("a,b\u2028c".encode()) is None
