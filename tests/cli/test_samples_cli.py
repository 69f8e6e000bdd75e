"""`clearing samples generate` as a user runs it: files written, readable, reproducible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

ROOT = Path(__file__).parents[2]


def test_generate_writes_a_readable_reproducible_world(tmp_path: Path, clearing: Cli) -> None:
    args = ["samples", "generate", "--events", "400", "--seed", "3", "--date", "2026-11-22"]
    first = clearing(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    written = [Path(x) for x in first.stdout.split()]
    assert (tmp_path / "a" / "clearing.toml") in written
    assert any(p.name.startswith("CD") for p in written)
    assert any(p.name.startswith("CIBER_") for p in written)
    events = 0
    for path in (p for p in written if "exchange" in p.parts):
        r = clearing("inspect", str(path), "--json")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        if s["kind"] == "tap":
            events += s["event_count"]
            assert s["audit_mismatches"] == []
            assert s["recipient"] == "HKGCL"
            assert path.parent == tmp_path / "a" / "exchange" / s["sender"] / "to_hkgcl"
    assert events == 200  # half of the 400 usage records arrive as TAP-in
    cdr = [p for p in written if p.parent.name == "cdr"]
    assert [p.suffix for p in cdr] == [".csv", ".parquet"]
    # the other half are visitor CDRs (a header line, then one line per call or SMS) + data
    import pyarrow.parquet as pq

    lines = cdr[0].read_text(encoding="utf-8").count("\n") - 1
    assert lines + pq.ParquetFile(cdr[1]).metadata.num_rows == 200
    second = clearing(*args, "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    for path in written:
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert twin.read_bytes() == path.read_bytes()
    again = clearing(*args, "--out", str(tmp_path / "a"))
    assert again.returncode == 2
    assert "already holds a clearing.toml" in again.stderr


def test_generate_files_only(tmp_path: Path, clearing: Cli) -> None:
    r = clearing("samples", "generate", "--files-only", "--events", "60", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    names = sorted(Path(x).name for x in r.stdout.split())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    assert len([n for n in names if n.startswith("CD")]) == 7


def test_generate_rejects_a_bad_date(tmp_path: Path, clearing: Cli) -> None:
    r = clearing("samples", "generate", "--out", str(tmp_path), "--date", "22/11/2026")
    assert r.returncode == 2
    assert "error:" in r.stderr
