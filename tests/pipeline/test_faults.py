"""Disk full, read-only, permission denied: exit 2 with the path and the fix, never a crash.

The run's manifest is closed as ``failed`` with the stage that failed, no temporary file is
left behind, and the run after the fault is fixed ends with the bytes of a clean night. The
disk is really filled where the test may mount a small tmpfs (root); the refusal of one
rename is simulated otherwise.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearing.cli import app
from clearing.errors import ExitCode
from tests.pipeline.conftest import DAY, Cli, snapshot

RUN = CliRunner()


BOOK = "out/settlement/daily/settlement_daily_HKGCL_2026-11-22.xlsx"


def _files(root: Path) -> dict[str, str]:
    """The night's files but the daily workbook (it lists real fetch / send times)."""
    out = snapshot(root)
    assert out.pop(BOOK)
    return out


def _manifests(world: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((world / "runs").glob("*/manifest.json"))]


def _temps(world: Path) -> list[Path]:
    return [p for p in world.rglob("*") if p.name.endswith(".tmp") or ".importing-" in p.name]


@pytest.fixture
def clean(world: Path, tmp_path: Path, clearing: Cli) -> tuple[int, dict[str, str]]:
    """The exit code and the files of a night of the same world without a fault."""
    other = tmp_path / "clean"
    shutil.copytree(world, other)
    r = clearing("nightly", "--workdir", str(other), "--date", DAY.isoformat())
    assert r.returncode == ExitCode.DATA, r.stderr  # the sample world has a rejected CIBER file
    return r.returncode, _files(other)


def test_a_refused_write_is_exit_2_the_manifest_says_where(
    world: Path, clean: tuple[int, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settle stage's workbook cannot be renamed into place: disk full."""
    real = Path.replace
    refused: list[str] = []

    def full(self: Path, target: str | os.PathLike[str]) -> Path:
        if "settlement" in str(target):
            refused.append(str(target))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self), None, str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "replace", full)
    r = RUN.invoke(app, ["nightly", "--workdir", str(world), "--date", DAY.isoformat()])
    assert refused
    assert r.exit_code == ExitCode.CONFIG, r.output
    assert "Traceback" not in r.output
    (manifest,) = _manifests(world)
    assert manifest["status"] == "config"  # stopped: failed_stage says where
    assert manifest["exit_code"] == ExitCode.CONFIG
    assert manifest["failed_stage"] == "settle"
    stages = {s["name"]: s for s in manifest["stages"]}  # type: ignore[attr-defined]
    assert stages["settle"]["status"] == "failed"
    assert stages["settle"]["error"].startswith(f"disk full on `{refused[0]}`: free space")
    assert _temps(world) == []

    monkeypatch.setattr(Path, "replace", real)  # space freed
    again = RUN.invoke(app, ["nightly", "--workdir", str(world), "--date", DAY.isoformat()])
    assert again.exit_code == clean[0], again.output
    assert _manifests(world)[-1]["status"] == "data"
    assert _files(world) == clean[1]


def test_permission_denied_anywhere_is_exit_2_not_a_crash(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EACCES out of a library (not our writer): the stage fails with the fix, exit 2."""
    import clearing.ingest.stage

    def denied(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(world / "work"))

    monkeypatch.setattr(clearing.ingest.stage, "claim_inputs", denied)
    r = RUN.invoke(app, ["nightly", "--workdir", str(world), "--date", DAY.isoformat()])
    assert r.exit_code == ExitCode.CONFIG, r.output
    (manifest,) = _manifests(world)
    assert manifest["status"] == "config"
    assert manifest["failed_stage"] == "claim"
    assert "permission denied on" in str(manifest["problems"])
    assert "chmod" in str(manifest["problems"])


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return r.returncode == 0


def test_a_really_full_disk_is_exit_2_and_the_rerun_converges(
    world: Path, clean: tuple[int, dict[str, str]], tmp_path: Path, clearing: Cli
) -> None:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "64m"):
        pytest.skip("a small tmpfs needs root (mount)")
    try:
        w = disk / "w"
        shutil.copytree(world, w)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        with filler.open("wb") as fh:  # leave 64 KiB: the night's first outputs fill it
            fh.write(b"\0" * max(0, free - 64 * 1024))
        r = clearing("nightly", "--workdir", str(w), "--date", DAY.isoformat())
        assert r.returncode == ExitCode.CONFIG, r.stderr
        assert "Traceback" not in r.stderr
        assert "disk full" in r.stderr + str(_manifests(w))
        (manifest,) = _manifests(w)
        if manifest["status"] == "running":
            # the disk refused the manifest too: the error names it, the manifest is whole
            assert "manifest.json`: free space" in r.stderr
        else:
            assert manifest["status"] == "config"
            assert manifest["failed_stage"]
        assert _temps(w) == []

        filler.unlink()  # the operator frees space
        again = clearing("nightly", "--workdir", str(w), "--date", DAY.isoformat())
        assert again.returncode == clean[0], again.stderr
        assert _files(w) == clean[1]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_outputs_and_state_are_not_world_readable(world: Path, clearing: Cli) -> None:
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat())
    assert r.returncode == ExitCode.DATA, r.stderr
    made = [
        p
        for top in ("out", "lake", "runs", "work", "clearing.duckdb")
        for p in [world / top, *(world / top).rglob("*")]
        if p.exists()
    ]
    assert any(p.name == "manifest.json" for p in made)
    assert any(p.suffix == ".parquet" for p in made)
    open_to_world = [f"{p.stat().st_mode & 0o777:o} {p}" for p in made if p.stat().st_mode & 0o007]
    assert open_to_world == []
    for p in made:
        assert p.stat().st_mode & 0o777 == (0o750 if p.is_dir() else 0o640), p


def test_the_modes_come_from_the_config(world: Path, clearing: Cli) -> None:
    config = world / "clearing.toml"
    config.write_text(config.read_text() + '\n[output]\nfile_mode = "0600"\ndir_mode = "0700"\n')
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat())
    assert r.returncode == ExitCode.DATA, r.stderr
    for p in [*(world / "out").rglob("*"), *(world / "lake").rglob("*")]:
        assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p
