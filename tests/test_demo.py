"""`make demo`'s job: every file of a samples folder inspected into the work folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from clearing.demo import main

ROOT = Path(__file__).parents[1]


def test_demo_inspects_every_file_and_reports_bad_ones(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    shutil.copytree(ROOT / "data_samples" / "tap", samples / "tap")
    bad = ROOT / "tests" / "codecs" / "cases" / "libxfsx_tap_3_12_trailing_eoc_invalid.ber"
    shutil.copy(bad, samples / "tap" / "broken.ber")
    (samples / "README.md").write_text("not a data file")
    work = tmp_path / "var"

    assert main([str(samples), str(work)]) == 0

    out = work / "inspect" / "tap"
    summaries = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    tap_files = [p.name for p in (ROOT / "data_samples" / "tap").iterdir()]
    assert set(summaries) == {f"{n}.json" for n in tap_files}
    for name, s in summaries.items():
        if s["kind"] == "tap":
            table = pq.read_table(out / name.replace(".json", ".events.parquet"))
            assert table.num_rows == s["event_count"] == s["audit"]["call_event_details_count"]
    error = (out / "broken.ber.error.txt").read_text()
    assert "trailing byte(s)" in error
    assert not (work / "inspect" / "README.md.json").exists()


def test_demo_needs_a_folder(tmp_path: Path) -> None:
    assert main([str(tmp_path / "missing"), str(tmp_path / "var")]) == 2


def test_demo_reports_planted_ciber_faults(tmp_path: Path, capsys: object) -> None:
    import pytest

    cap = capsys
    assert isinstance(cap, pytest.CaptureFixture)
    assert main([str(ROOT / "data_samples"), str(tmp_path / "var")]) == 0
    out = cap.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("ciber/CIBER_16425"))
    # data_samples/README.md: partner 16425's trailer total is 1.00 too high
    assert "trailer total 7156 differs" in line


def test_demo_runs_the_nightly_on_the_samples(tmp_path: Path, capsys: object) -> None:
    import pytest

    cap = capsys
    assert isinstance(cap, pytest.CaptureFixture)
    work = tmp_path / "var"
    assert main([str(ROOT / "data_samples"), str(work)]) == 0
    out = cap.readouterr().out
    assert "Record identity" in out
    (run_dir,) = (work / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # data_samples/README.md: 1500 TAP events + 16 CIBER records; 1500 CDR rows in cdr/
    cdr_rows = (ROOT / "data_samples" / "cdr" / "CDR_HKGCL_20261122_001.csv").read_text().count(
        "\n"
    ) - 1
    cdr_rows += pq.ParquetFile(
        ROOT / "data_samples" / "cdr" / "CDR_HKGCL_20261122_002.parquet"
    ).metadata.num_rows
    assert cdr_rows == 1500
    assert manifest["reconciliation"]["in"] == 1500 + 16 + cdr_rows
    assert manifest["reconciliation"]["difference"] == 0
    assert (work / manifest["workbook"]).is_file()
    assert (run_dir / "summary.html").read_text().lstrip().lower().startswith("<!doctype html")
    # a second `make demo` is a re-run of the same date: same outputs, nothing fetched again
    assert main([str(ROOT / "data_samples"), str(work)]) == 0
    second = max((work / "runs").iterdir())
    m2 = json.loads((second / "manifest.json").read_text())
    assert m2["outputs"] == manifest["outputs"]
