"""The sample world: reproducible reference data and visitor CDRs, and a whole day rated."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import asn1tools
import polars as pl

from clearing.outbound import write_day
from clearing.rating import rate_day, read_cdrs
from clearing.samples.world import write_reference_data, write_visitor_cdrs

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)


def _hashes(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_reference_data_and_cdrs_are_reproducible(tmp_path: Path) -> None:
    a = _hashes(write_reference_data(tmp_path / "a", DAY), tmp_path / "a")
    b = _hashes(write_reference_data(tmp_path / "b", DAY), tmp_path / "b")
    assert a == b
    assert "iot/partner=FRAF9/valid_from=2025-01-01/part-0.parquet" in a
    assert "sources/iot.csv" in a
    c1 = _hashes(write_visitor_cdrs(tmp_path / "c1", events=500, seed=3, day=DAY), tmp_path / "c1")
    c2 = _hashes(write_visitor_cdrs(tmp_path / "c2", events=500, seed=3, day=DAY), tmp_path / "c2")
    c3 = _hashes(write_visitor_cdrs(tmp_path / "c3", events=500, seed=4, day=DAY), tmp_path / "c3")
    assert c1 == c2
    assert c1 != c3
    assert sorted(c1) == ["CDR_HKGCL_20261122_001.csv", "CDR_HKGCL_20261122_002.parquet"]


def test_planted_faults_are_found(tmp_path: Path) -> None:
    paths = write_visitor_cdrs(tmp_path, events=500, seed=3, day=DAY)
    read = read_cdrs(paths)
    problems = sorted((f["field"], f["problem"]) for f in read.findings.iter_rows(named=True))
    assert problems == [
        ("called_number", "does not match `^[0-9]{1,20}$`"),
        ("duration", "must be >=0"),
        ("record_id", "duplicate record_id in the file"),
    ]
    assert read.records.height + read.quarantined.height == 500


def test_a_sample_day_rates_and_every_tap_out_reconciles(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "clearing.toml").write_text(
        '[home]\ntadig = "HKGCL"\nsid_bid = "60099"\ntimezone_offset = "+0800"\n',
        encoding="utf-8",
    )
    write_reference_data(work / "rates", DAY)
    write_visitor_cdrs(work / "inbox" / "cdr", events=1500, seed=7, day=DAY)
    summary = rate_day(work, DAY)
    outbound = write_day(work, DAY)  # the next stage: TAP-out from the rated rows
    assert summary.identity_ok
    assert (summary.quarantined, summary.unrated) == (3, 1)  # the planted faults
    kinds = {f.partner: f.kind for f in outbound}
    assert kinds["SGPS9"] == "notification"  # an agreement, no visitors
    assert kinds["04172"] == kinds["16425"] == "ciber"
    assert sum(1 for k in kinds.values() if k == "transferBatch") == 6
    spec = asn1tools.compile_files([str(ROOT / "specs" / "asn1" / "TAP-0312.asn")], "ber")
    rated = pl.read_parquet(work / "lake" / "rated_visitors", hive_partitioning=True)
    for f in outbound:
        if f.kind != "transferBatch":
            continue
        _, batch = spec.decode("DataInterChange", f.path.read_bytes())
        audit = batch["auditControlInfo"]
        total = 0
        for kind, body in batch["callEventDetails"]:
            if kind == "gprsCall":
                infos = body["gprsServiceUsed"]["chargeInformationList"]
            else:
                infos = [
                    i for u in body["basicServiceUsedList"] for i in u["chargeInformationList"]
                ]
            total += sum(d["charge"] for i in infos for d in i["chargeDetailList"])
        assert audit["totalCharge"] == total == f.total_charge
        assert audit["callEventDetailsCount"] == len(batch["callEventDetails"]) == f.events
        mine = rated.filter(pl.col("partner") == f.partner)
        assert mine.height == f.events
        assert mine["charge"].sum() == total


def test_committed_rates_folder_matches_the_generator(tmp_path: Path) -> None:
    """`rates/` of the repository is `write_reference_data(…, 2026-11-22)`, byte for byte."""
    fresh = _hashes(write_reference_data(tmp_path / "rates", DAY), tmp_path / "rates")
    committed = ROOT / "rates"
    for name, digest in fresh.items():
        path = committed / name
        assert path.exists(), f"{name} missing: regenerate rates/ (see rates/README.md)"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} drifted"
    for table in ("agreements", "fx", "imsi_ranges", "iot"):
        manifest = (tmp_path / "rates" / table / "_manifest.json").read_text()
        assert (committed / table / "_manifest.json").read_text() == manifest
