"""The returns step handed to validate: validate alone writes no return, the writer adds them.

The sample world's TAP and CIBER files are validated twice, once by ``validate_day`` without
a writer and once through :func:`clearing.returns.validate_and_return`: the findings and the
record identity are the same, and only the second writes RAPs / CIBER returns and records
them. Validate does not import the returns package.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from clearing.config import WorkDir
from clearing.returns import WRITER, validate_and_return
from clearing.samples.tap import PARTNERS, build_file
from clearing.validate.stage import ReturnWriter, validate_day
from clearing.validate.state import State

ROOT = Path(__file__).parents[2]
DAY1 = dt.date(2026, 11, 21)
DAY2 = dt.date(2026, 11, 22)
FRA = next(p for p in PARTNERS if p.tadig == "FRAF9")


def world(tmp: Path) -> WorkDir:
    lines = ['[home]\ntadig = "HKGCL"\nsid_bid = "60099"\n']
    lines += [f"[partners.{p.tadig}]\n" for p in PARTNERS]
    lines += ['[partners.04172]\nstandard = "ciber"\n', '[partners.16425]\nstandard = "ciber"\n']
    tmp.mkdir()
    (tmp / "clearing.toml").write_text("".join(lines))
    return WorkDir(tmp)


def inputs(tmp: Path) -> tuple[list[Path], list[Path]]:
    """FRAF9's file of DAY1; on DAY2 its FSN again with other content (fatal) and the CIBER
    samples (a record return and a batch reject)."""
    name, data = build_file(FRA, events=30, seed=5, day=DAY1)
    _, other = build_file(FRA, events=31, seed=6, day=DAY1)
    (tmp / "1").mkdir()
    (tmp / "2").mkdir()
    first = tmp / "1" / name
    first.write_bytes(data)
    second = [tmp / "2" / name]
    second[0].write_bytes(other)
    for src in sorted((ROOT / "data_samples" / "ciber").iterdir()):
        second.append(Path(shutil.copy(src, tmp / "2" / src.name)))
    return [first], second


def findings(day: object) -> list[tuple[str, str, int | None]]:
    files = [*day.files, *day.ciber]  # type: ignore[attr-defined]
    return [(f.file, x.rule, x.event_index) for f in files for x in f.findings]


def test_validate_alone_writes_no_return_and_the_writer_adds_them(tmp_path: Path) -> None:
    day1, day2 = inputs(tmp_path)
    wd = world(tmp_path / "alone")
    validate_day(wd, DAY1, day1)
    alone = validate_day(wd, DAY2, day2)
    wd2 = world(tmp_path / "returned")
    validate_and_return(wd2, DAY1, day1)
    returned = validate_and_return(wd2, DAY2, day2)

    assert findings(alone) == findings(returned)
    assert alone.reconciliation() == returned.reconciliation()
    assert alone.raps == []
    assert not (wd.out / "rap").exists()
    assert not (wd.out / "ciber_returns").exists()
    with State(wd.db, read_only=True) as s:
        assert s.con.execute("SELECT count(*) FROM rap_out").fetchone() == (0,)
        assert s.con.execute(
            "SELECT count(*) FROM files WHERE rap_file IS NOT NULL"
        ).fetchone() == (0,)

    assert any(f.fatal for f in returned.files)
    assert len(returned.raps) == 1
    assert [p.parent for p in returned.raps] == [wd2.out / "rap"] * len(returned.raps)
    sent = [n for c in returned.ciber for n in c.returns]
    assert sent
    assert sorted(p.name for p in (wd2.out / "ciber_returns").iterdir()) == sorted(sent)
    with State(wd2.db, read_only=True) as s:
        row = s.con.execute("SELECT count(*) FROM rap_out").fetchone()
        assert row is not None
        (n,) = row
        rows = s.con.execute(
            "SELECT rap_file FROM files WHERE processing_date = ? AND rap_file IS NOT NULL", [DAY2]
        ).fetchall()
    rap_files = {r[0] for r in rows}
    assert n == len(returned.raps)  # DAY1 had nothing to return
    assert {f.rap_file for f in returned.files if f.rap_file} | {
        ", ".join(c.returns) for c in returned.ciber if c.returns
    } == rap_files


def test_the_writer_is_a_return_writer() -> None:
    writer: ReturnWriter = WRITER
    assert callable(writer.tap_returns)
    assert callable(writer.ciber_returns)


def test_validate_does_not_import_returns() -> None:
    code = (
        "import sys, clearing.validate.stage, clearing.validate.ciber;"
        "print(sorted(m for m in sys.modules if m.startswith('clearing.returns')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"
