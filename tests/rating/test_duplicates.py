"""Visitors' CDRs seen twice: across files and days, within the window, never rated again.

Each test writes mediation CSVs by hand into a tiny work folder (the rating ``tiny_workdir``
of ``conftest.py``) and rates one processing day after another with :func:`rate_day`; the
expected counts are worked out from the rows written here.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl
import pytest

from clearing import lake
from clearing.rating.run import rate_day

if TYPE_CHECKING:
    from pathlib import Path

D1 = date(2026, 11, 24)
D2 = D1 + timedelta(days=1)
D3 = D1 + timedelta(days=2)

HEADER = [
    "record_id", "record_type", "imsi", "msisdn", "called_number", "start_time",
    "utc_offset", "duration", "rec_entity_type", "rec_entity_id",
]  # fmt: skip


def row(rid: str, minute: int, *, called: str = "85223456789", duration: int = 65) -> list[str]:
    """A visitor's MO call (TSTA1's IMSI range) at 10:<minute> on 2026-11-23."""
    return [
        rid, "moc", "208011234567890", "33612345678", called,
        f"2026-11-23T10:{minute:02d}:00", "+0800", str(duration), "msc", "85290000001",
    ]  # fmt: skip


def write_cdrs(workdir: Path, name: str, rows: list[list[str]]) -> Path:
    path = workdir / "inbox" / "cdr" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def quarantine(workdir: Path, day: date) -> pl.DataFrame:
    return pl.read_parquet(lake.path(workdir / "lake", lake.CDR_QUARANTINE, day))


def rated_ids(workdir: Path, day: date) -> list[str]:
    files = lake.files(workdir / "lake", lake.RATED_VISITORS, [day])
    return sorted(pl.concat([pl.read_parquet(f) for f in files])["record_id"].to_list())


@pytest.fixture
def wd(tiny_workdir: Path, tmp_path: Path) -> Path:
    """The tiny world with an empty CDR inbox (its own file for D1 set aside)."""
    root = tmp_path / "dupes"
    shutil.copytree(tiny_workdir, root)
    shutil.rmtree(root / "inbox" / "cdr", ignore_errors=True)
    return root


def test_a_file_delivered_again_on_another_day_is_not_rated_again(wd: Path) -> None:
    first = [row("a1", 1), row("a2", 2), row("a3", 3)]
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", first)
    s1 = rate_day(wd, D1, window_days=30)
    assert (s1.records_in, s1.rated, s1.duplicates) == (3, 3, 0)
    # the same three records again, under the next day's name, with one new record
    write_cdrs(wd, f"CDR_HKGCL_{D2:%Y%m%d}_001.csv", [*first, row("b1", 4)])
    s2 = rate_day(wd, D2, window_days=30)
    assert (s2.records_in, s2.rated, s2.unrated, s2.quarantined, s2.duplicates) == (4, 1, 0, 0, 3)
    assert s2.identity_ok
    assert rated_ids(wd, D2) == ["b1"]
    q = quarantine(wd, D2)
    assert q["record_id"].to_list() == ["a1", "a2", "a3"]
    assert q["reason"].to_list() == [
        f"duplicate of CDR_HKGCL_{D1:%Y%m%d}_001.csv line {n} date {D1} (same record_id)"
        for n in (2, 3, 4)
    ]
    findings = pl.read_parquet(lake.path(wd / "lake", lake.CDR_FINDINGS, D2))
    assert findings["record_id"].to_list() == ["a1", "a2", "a3"]
    # 65 s at TSTA1's peak 0.12 SDR/min (30/1): 0.13 SDR a call, 5 decimals; D2 bills b1 only
    assert s1.receivable == [("TSTA1", "SDR", 5, 3 * 13000)]
    assert s2.receivable == [("TSTA1", "SDR", 5, 13000)]


def test_the_same_usage_under_another_record_id_is_a_duplicate(wd: Path) -> None:
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", [row("a1", 1), row("a2", 2)])
    rate_day(wd, D1, window_days=30)
    # a re-export with new ids: a2's usage again; a call 1 s longer is other usage
    write_cdrs(
        wd,
        f"CDR_HKGCL_{D2:%Y%m%d}_001.csv",
        [row("x2", 2), row("x3", 1, duration=66)],
    )
    s2 = rate_day(wd, D2, window_days=30)
    assert (s2.rated, s2.duplicates) == (1, 1)
    (reason,) = quarantine(wd, D2)["reason"].to_list()
    assert reason.startswith(f"duplicate of CDR_HKGCL_{D1:%Y%m%d}_001.csv line 3 date {D1} ")
    assert "same IMSI, start, service" in reason
    assert rated_ids(wd, D2) == ["x3"]


def test_two_files_of_one_day_share_a_record(wd: Path) -> None:
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", [row("a1", 1), row("a2", 2)])
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_002.csv", [row("a2", 2), row("a3", 3)])
    s = rate_day(wd, D1, window_days=30)
    assert (s.records_in, s.rated, s.duplicates) == (4, 3, 1)
    (q,) = quarantine(wd, D1).select("file", "line", "reason").rows()
    assert q == (
        f"CDR_HKGCL_{D1:%Y%m%d}_002.csv",
        2,
        f"duplicate of CDR_HKGCL_{D1:%Y%m%d}_001.csv line 3 date {D1} (same record_id)",
    )


def test_a_replay_of_the_day_does_not_find_its_own_records(wd: Path) -> None:
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", [row("a1", 1), row("a2", 2)])
    first = rate_day(wd, D1, window_days=30)
    write_cdrs(wd, f"CDR_HKGCL_{D2:%Y%m%d}_001.csv", [row("a1", 1), row("b1", 5)])
    rate_day(wd, D2, window_days=30)
    for day, rated, dupes in ((D1, 2, 0), (D2, 1, 1), (D1, 2, 0)):
        again = rate_day(wd, day, window_days=30)
        assert (again.rated, again.duplicates) == (rated, dupes), day
    assert rate_day(wd, D1, window_days=30).receivable == first.receivable
    assert rated_ids(wd, D1) == ["a1", "a2"]
    assert rated_ids(wd, D2) == ["b1"]


def test_records_seen_outside_the_window_are_rated(wd: Path) -> None:
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", [row("a1", 1)])
    rate_day(wd, D1, window_days=1)
    write_cdrs(wd, f"CDR_HKGCL_{D3:%Y%m%d}_001.csv", [row("a1", 1)])
    # D3 is two days after D1: outside a 1-day window, inside a 2-day one
    assert rate_day(wd, D3, window_days=1).duplicates == 0
    assert rate_day(wd, D3, window_days=2).duplicates == 1


def test_the_window_defaults_to_the_configured_duplicate_window(wd: Path) -> None:
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", [row("a1", 1)])
    rate_day(wd, D1)
    write_cdrs(wd, f"CDR_HKGCL_{D3:%Y%m%d}_001.csv", [row("a1", 1)])
    assert rate_day(wd, D3).duplicates == 1  # no [validation] in clearing.toml: 80 days
    config = wd / "clearing.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[validation]\nduplicate_window_days = 1\n",
        encoding="utf-8",
    )
    assert rate_day(wd, D3).duplicates == 0
    config.unlink()  # none at all: the default window
    assert rate_day(wd, D3).duplicates == 1


def test_the_seen_index_of_an_earlier_release_is_read_after_an_upgrade(wd: Path) -> None:
    """A folder whose D1 index is in the former layout (``date=D/part-0.parquet``, no hash)."""
    write_cdrs(wd, f"CDR_HKGCL_{D1:%Y%m%d}_001.csv", [row("a1", 1), row("a2", 2)])
    rate_day(wd, D1, window_days=30)
    root = wd / "lake"
    (new,) = lake.files(root, lake.CDR_SEEN, [D1])
    assert new.parent.name == "start=2026-11-23"
    # the file an earlier release wrote: the same rows without k1, k2, in the date's folder
    legacy = lake.partition(root, lake.CDR_SEEN, D1) / "part-0.parquet"
    pl.read_parquet(new).drop("k1", "k2").write_parquet(legacy)
    shutil.rmtree(new.parent)
    assert lake.files(root, lake.CDR_SEEN, [D1]) == []  # not in the start-day layout
    write_cdrs(wd, f"CDR_HKGCL_{D2:%Y%m%d}_001.csv", [row("a1", 1), row("x2", 2), row("b1", 4)])
    s2 = rate_day(wd, D2, window_days=30)
    assert (s2.rated, s2.duplicates) == (1, 2)
    assert quarantine(wd, D2)["reason"].to_list() == [
        f"duplicate of CDR_HKGCL_{D1:%Y%m%d}_001.csv line 2 date {D1} (same record_id)",
        f"duplicate of CDR_HKGCL_{D1:%Y%m%d}_001.csv line 3 date {D1} "
        "(same IMSI, start, service, numbers, duration and volume)",
    ]
    assert not legacy.exists()
    assert lake.files(root, lake.CDR_SEEN, [D1]) == [new]
    assert pl.read_parquet(new)["record_id"].to_list() == ["a1", "a2"]
