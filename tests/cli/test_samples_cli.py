"""`clearing samples generate` as a user runs it: files written, readable, reproducible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

ROOT = Path(__file__).parents[2]


def test_generate_writes_a_readable_reproducible_world(tmp_path: Path, clearing: Cli) -> None:
    args = ["samples", "generate", "--events", "400", "--seed", "3", "--date", "2026-11-22"]
    first = clearing(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    written = [Path(x) for x in first.stdout.split()]
    assert any(p.name.startswith("CD") for p in written)
    assert any(p.name.startswith("CIBER_") for p in written)
    events = 0
    for path in written:
        r = clearing("inspect", str(path), "--json")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        if s["kind"] == "tap":
            events += s["event_count"]
            assert s["audit_mismatches"] == []
            assert s["recipient"] == "HKGCL"
    assert events == 400
    second = clearing(*args, "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    for path in written:
        assert (tmp_path / "b" / path.name).read_bytes() == path.read_bytes()


def test_generate_rejects_a_bad_date(tmp_path: Path, clearing: Cli) -> None:
    r = clearing("samples", "generate", "--out", str(tmp_path), "--date", "22/11/2026")
    assert r.returncode == 2
    assert "error:" in r.stderr
