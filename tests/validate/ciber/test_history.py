"""CIBER-in against history: copies, reused sequences, gaps, duplicates across files and days.

Each test validates CIBER files of one processing date after another in a work folder (the
validate stage with the returns written, :func:`clearing.returns.validate_and_return`) and
reads back what it recorded; the CIBER returns are read by position (ciber.md §4, §7), not with
the codec.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import duckdb
import pyarrow.parquet as pq
import pytest

from clearing import lake
from clearing.config import WorkDir
from clearing.returns import validate_and_return
from tests.validate.ciber.conftest import DAY, PARTNER, US, batch, call, clean_details

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.validate.stage import CiberResult, ValidateResult

D1 = DAY
D2 = DAY + dt.timedelta(days=1)
D5 = DAY + dt.timedelta(days=4)


def config(partner: str = "") -> str:
    """Us and the two CIBER partners (``partner``: more lines for 04172's table)."""
    return (
        f'[home]\ntadig = "HKGCL"\nsid_bid = "{US}"\n\n'
        f'[partners.{PARTNER}]\nstandard = "ciber"\n{partner}\n'
        '[partners.16425]\nstandard = "ciber"\n'
    )


@pytest.fixture
def wd(tmp_path: Path) -> WorkDir:
    (tmp_path / "clearing.toml").write_text(config(), encoding="utf-8")
    return WorkDir(tmp_path)


def validate(wd: WorkDir, day: dt.date, *files: tuple[str, bytes]) -> ValidateResult:
    paths = []
    for name, data in files:
        p = wd.root / "in" / day.isoformat() / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    return validate_and_return(wd, day, paths)


def name(day: dt.date, seq: int) -> str:
    return f"CIBER_{PARTNER}_{US}_{day:%Y%m%d}_{seq:03d}.dat"


def of(result: ValidateResult, file: str) -> CiberResult:
    return next(c for c in result.ciber if c.file == file)


def batches(wd: WorkDir, day: dt.date) -> list[tuple[str, int, str, str | None]]:
    con = duckdb.connect(str(wd.db), read_only=True)
    try:
        rows = con.execute(
            "SELECT file, sequence, outcome, copy_of FROM ciber_batches_in "
            "WHERE processing_date = ? ORDER BY rowid",
            [day],
        ).fetchall()
    finally:
        con.close()
    return [(str(f), int(s), str(o), c) for f, s, o, c in rows]


def lake_status(wd: WorkDir, day: dt.date, file: str) -> list[str]:
    found = [f for f in lake.files(wd.lake, lake.EVENTS_IN, [day]) if f.name == f"{file}.parquet"]
    (path,) = found
    return [str(s) for s in pq.read_table(path).column("status").to_pylist()]


def return_lines(wd: WorkDir, result: CiberResult) -> list[bytes]:
    out: list[bytes] = []
    for n in result.returns:
        out += [x.rstrip(b"\r") for x in (wd.out / "ciber_returns" / n).read_bytes().split(b"\n")]
    return [x for x in out if x]


def test_a_batch_copied_under_another_name_on_another_day_is_ignored(wd: WorkDir) -> None:
    original = batch()
    r1 = validate(wd, D1, (name(D1, 101), original))
    assert of(r1, name(D1, 101)).status == ["accepted"] * 4
    r2 = validate(wd, D2, (name(D2, 555), original))
    copy = of(r2, name(D2, 555))
    # not paid (no accepted row), not returned (no return file), recorded
    assert copy.status == ["duplicate"] * 4
    assert lake_status(wd, D2, name(D2, 555)) == ["duplicate"] * 4
    assert copy.returns == []
    assert [(f.rule, f.severity) for f in copy.findings] == [("ciber.batch.copy", "warning")]
    assert name(D1, 101) in copy.findings[0].message
    assert batches(wd, D2) == [(name(D2, 555), 101, "copy", name(D1, 101))]
    rec = r2.reconciliation()
    assert (rec["in"], rec["accepted"], rec["duplicate"], rec["difference"]) == (4, 0, 4, 0)


def test_a_copy_in_a_second_file_of_the_same_day_is_ignored(wd: WorkDir) -> None:
    data = batch()
    r = validate(wd, D1, (name(D1, 101), data), (name(D1, 900), data))
    assert of(r, name(D1, 101)).status == ["accepted"] * 4
    assert of(r, name(D1, 900)).status == ["duplicate"] * 4
    assert [o for _, _, o, _ in batches(wd, D1)] == ["accepted", "copy"]


def test_a_copy_with_other_line_endings_and_cut_tails_is_still_a_copy(wd: WorkDir) -> None:
    data = batch()
    validate(wd, D1, (name(D1, 101), data))
    lf = b"\n".join(line.rstrip(b"\r").rstrip(b" ") for line in data.split(b"\n"))
    assert lf != data
    r = validate(wd, D2, (name(D2, 556), lf))
    assert of(r, name(D2, 556)).status == ["duplicate"] * 4


def test_a_reused_sequence_with_other_content_is_rejected_whole(wd: WorkDir) -> None:
    validate(wd, D1, (name(D1, 101), batch()))
    other = batch([call(5), call(6)])  # sequence 101 again, other records
    r = validate(wd, D2, (name(D2, 101), other))
    reused = of(r, name(D2, 101))
    assert reused.status == ["returned", "returned"]
    (f,) = [f for f in reused.findings if f.severity == "fatal"]
    assert (f.rule, f.code) == ("ciber.batch.sequence_reused", 8)
    assert name(D1, 101) in f.message
    # the CIBER return: the batch back whole, header indicator 3 (pos 24) and reason 08 (34-35)
    lines = return_lines(wd, reused)
    assert [x[:2] for x in lines] == [b"01", b"22", b"22", b"98"]
    header = lines[0]
    assert header[23:24] == b"3"
    assert header[33:35] == b"08"
    assert header[8:11] == b"101"
    assert batches(wd, D2) == [(name(D2, 101), 101, "reused", name(D1, 101))]
    assert r.reconciliation()["returned"] == 2
    # the partner's next batch continues the sequence: no gap after a rejected reuse
    r3 = validate(wd, D5, (name(D5, 102), batch([call(7)], batch_sequence_number=102)))
    assert of(r3, name(D5, 102)).gaps == []


def test_a_gap_in_the_sequence_is_reported(wd: WorkDir) -> None:
    validate(wd, D1, (name(D1, 101), batch()))
    r = validate(wd, D2, (name(D2, 104), batch([call(9)], batch_sequence_number=104)))
    c = of(r, name(D2, 104))
    (gap,) = [f for f in c.findings if f.rule == "ciber.batch.sequence_gap"]
    assert gap.severity == "warning"
    assert c.gaps == [f"batch sequence 104 of {PARTNER} → {US} but 102 expected: 102-103 missing"]
    assert c.status == ["accepted"]  # a gap returns nothing
    assert c.returns == []


def test_a_rejected_batch_sent_again_corrected_is_no_reuse_and_no_gap(wd: WorkDir) -> None:
    lines = batch(clean_details()[:2]).split(b"\r\n")
    trailer = bytearray(lines[-2])  # the trailer's batch total (26-37) one cent off: reject 26
    total = int(trailer[25:37]) + 1
    trailer[25:37] = f"{total:012d}".encode()
    lines[-2] = bytes(trailer)
    r1 = validate(wd, D1, (name(D1, 101), b"\r\n".join(lines)))
    assert of(r1, name(D1, 101)).status == ["returned", "returned"]
    r2 = validate(wd, D2, (name(D2, 101), batch(clean_details()[:2])))
    c = of(r2, name(D2, 101))
    assert c.status == ["accepted", "accepted"]
    assert c.gaps == []
    assert [o for _, _, o, _ in batches(wd, D1) + batches(wd, D2)] == ["rejected", "accepted"]


def test_a_record_already_accepted_in_another_batch_is_returned_as_duplicate(
    wd: WorkDir,
) -> None:
    validate(wd, D1, (name(D1, 101), batch()))
    # a new batch (sequence 102) carrying call 0 of the first again, and a new call
    r = validate(wd, D2, (name(D2, 102), batch([call(0), call(7)], batch_sequence_number=102)))
    c = of(r, name(D2, 102))
    assert c.status == ["duplicate", "accepted"]
    (f,) = [f for f in c.findings if f.severity == "severe"]
    assert (f.rule, f.code, f.event_index) == ("ciber.record.duplicate", 11, 0)
    assert f"`{name(D1, 101)}` (processed {D1})" in f.message
    # returned in a record-return batch: return code 4, reason 11, field 042 (positions 3-8)
    lines = return_lines(wd, c)
    details = [x for x in lines if x[:2] == b"22"]
    assert [x[2:8] for x in details] == [b"411042"]
    assert r.reconciliation()["duplicate"] == 1


def test_a_replay_finds_neither_its_own_batches_nor_its_own_records(wd: WorkDir) -> None:
    data = batch()
    inputs = {
        D1: [(name(D1, 101), data)],
        # the copy of D1's batch, and a new batch repeating none of D1's records
        D2: [(name(D2, 102), batch([call(8)], batch_sequence_number=102)), (name(D2, 555), data)],
    }
    want = {
        D1: [["accepted"] * 4],
        D2: [["accepted"], ["duplicate"] * 4],
    }
    for day in (D1, D2, D1, D2, D2):  # each date replayed, before and after the other
        r = validate(wd, day, *inputs[day])
        assert [c.status for c in r.ciber] == want[day], day
        assert [f.rule for c in r.ciber for f in c.findings if f.severity != "warning"] == []
        assert r.reconciliation()["difference"] == 0
    assert [o for _, _, o, _ in batches(wd, D1)] == ["accepted"]
    assert [o for _, _, o, _ in batches(wd, D2)] == ["accepted", "copy"]


def test_outside_the_window_a_sequence_and_its_records_are_new(wd: WorkDir) -> None:
    (wd.root / "clearing.toml").write_text(config("duplicate_window_days = 2"), encoding="utf-8")
    data = batch()
    validate(wd, D1, (name(D1, 101), data))
    r = validate(wd, D5, (name(D5, 101), data))  # four days later: the sequence wrapped
    c = of(r, name(D5, 101))
    assert c.status == ["accepted"] * 4
    assert c.gaps == []
