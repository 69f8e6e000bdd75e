"""Backup → restore → the next night on the restored folder is the next night of the original.

A two-day sample world: night 1 in W, ``clearing backup`` of W, ``clearing restore`` into R,
then day 2 delivered into both and night 2 run in both. Every output under ``out/`` (workbooks
by their cells: their bytes carry the clock), the manifests' figures and the exit codes must be
the same. A backup that was damaged or never finished restores nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING

from ..cli_run import run_cli
from ..test_golden import _manifest_figures, _workbook_digest
from .conftest import DAY

if TYPE_CHECKING:
    from pathlib import Path

D1, D2 = DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()


def _outputs(world: Path) -> dict[str, str]:
    out = {}
    for p in sorted((world / "out").rglob("*")):
        if p.is_file():
            rel = p.relative_to(world).as_posix()
            if p.suffix == ".xlsx":
                out[rel] = _workbook_digest(p)
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` but the lock, with its SHA-256 (read here, not by the code)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != ".clearing.lock"
    }


def test_backup_restore_and_the_next_night_is_the_same(tmp_path: Path) -> None:
    w, b, r = tmp_path / "w", tmp_path / "backup", tmp_path / "restored"
    gen = run_cli(
        "samples", "generate", "--out", str(w), "--events", "400", "--date", D1, "--days", "2"
    )
    assert gen.returncode == 0, gen.stderr
    first = run_cli("nightly", "-w", str(w), "--date", D1)
    assert first.returncode in (0, 1), first.stderr

    before = _files(w)
    done = run_cli("backup", "-w", str(w), "--to", str(b), "--json")
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert (line["event"], line["files"]) == ("backup", len(before))
    assert _files(w) == before  # a backup changes nothing in the work folder
    # backup.json lists every file with the SHA-256 computed here independently
    listed = json.loads((b / "backup.json").read_text(encoding="utf-8"))["files"]
    assert {e["path"]: e["sha256"] for e in listed} == before

    back = run_cli("restore", "--from", str(b), "-w", str(r))
    assert back.returncode == 0, back.stderr
    assert _files(r) == before

    codes = {}
    for world in (w, r):
        assert run_cli("samples", "deliver", "-w", str(world), "--date", D2).returncode == 0
        codes[world.name] = run_cli("nightly", "-w", str(world), "--date", D2).returncode
    assert codes["w"] == codes["restored"]
    assert codes["w"] in (0, 1)
    assert _outputs(r) == _outputs(w)
    assert _manifest_figures(r) == _manifest_figures(w)
    # night 2 did work: its workbook and its manifest exist in both
    assert f"out/settlement/daily/settlement_daily_HKGCL_{D2}.xlsx" in _outputs(w)
    assert any(k.startswith(f"nightly {D2}") for k in _manifest_figures(w))


def test_a_damaged_or_unfinished_backup_restores_nothing(tmp_path: Path) -> None:
    w, b = tmp_path / "w", tmp_path / "backup"
    gen = run_cli("samples", "generate", "--out", str(w), "--events", "200", "--date", D1)
    assert gen.returncode == 0, gen.stderr
    assert run_cli("backup", "-w", str(w), "--to", str(b)).returncode == 0

    # into a folder that is not empty: refused, nothing written there
    again = run_cli("backup", "-w", str(w), "--to", str(b))
    assert again.returncode == 2
    assert "not empty" in again.stderr

    # one byte changed in one file of the backup: named, nothing restored
    victim = b / "files" / "clearing.toml"
    data = bytearray(victim.read_bytes())
    data[0] ^= 0x20
    victim.write_bytes(bytes(data))
    r = tmp_path / "r1"
    bad = run_cli("restore", "--from", str(b), "-w", str(r))
    assert bad.returncode == 2
    assert "clearing.toml" in bad.stderr
    assert "damaged" in bad.stderr
    assert not (r / "clearing.toml").exists()
    assert [p.name for p in r.iterdir()] in ([], [".clearing.lock"])

    # no backup.json: an unfinished backup
    (b / "backup.json").unlink()
    r2 = tmp_path / "r2"
    unfinished = run_cli("restore", "--from", str(b), "-w", str(r2))
    assert unfinished.returncode == 2
    assert "no finished backup" in unfinished.stderr
