"""The daily DAG's command lines run for real, without Airflow: the real CLI on a generated
world, built exactly as the DAG builds them, run by bash in the DAG's order with its exit-code
policy (1 → the next task still runs; 2, 3, a crash → the night stops)."""

from __future__ import annotations

import importlib
import shlex
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

DAY = "2024-06-30"


@pytest.fixture(scope="module")
def cc(pipelines_on_path: Path) -> ModuleType:
    return importlib.import_module("clearing_common")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated work folder (config, rates, partners' files in their exchange folders)."""
    out = tmp_path_factory.mktemp("world") / "w"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearing.cli",
            "samples",
            "generate",
            "--out",
            str(out),
            "--events",
            "200",
            "--date",
            DAY,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def _night(cc: ModuleType, layout: str, workdir: Path) -> dict[str, int]:
    codes: dict[str, int] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARING_BIN", shlex.join([sys.executable, "-m", "clearing.cli"]))
        for task_id, words, dated in cc.LAYOUTS[layout]:
            line = cc.command(words, str(workdir), *(("--date", DAY) if dated else ()))
            done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False)
            codes[task_id] = done.returncode
            if done.returncode not in (0, cc.EXIT_DATA_PROBLEM):
                pytest.fail(f"{task_id} exited {done.returncode}: {done.stderr[-2000:]}")
    return codes


def _delivered(workdir: Path) -> set[str]:
    """What we delivered to the partners (the folder transport's side of the exchange)."""
    return {
        str(p.relative_to(workdir / "exchange"))
        for p in (workdir / "exchange").glob("*/from_hkgcl/*")
        if not p.name.endswith(".sha256")
    }


@pytest.fixture(scope="module")
def nightly_layout(cc: ModuleType, world: Path) -> tuple[Path, dict[str, int]]:
    """The world after one night run as the default DAG runs it."""
    workdir = world.parent / "nightly"
    shutil.copytree(world, workdir, symlinks=True)
    return workdir, _night(cc, "nightly", workdir)


def test_the_nightly_layout_clears_and_sends_a_day(
    nightly_layout: tuple[Path, dict[str, int]],
) -> None:
    workdir, codes = nightly_layout
    assert list(codes) == ["collect", "nightly", "send"]
    assert codes["collect"] == 0
    assert codes["send"] == 0
    # the world has planted faults: a data problem (1) that must not stop `send`
    assert codes["nightly"] in (0, 1)
    assert list((workdir / "runs").glob(f"nightly-{DAY}-*/manifest.json"))
    sent = _delivered(workdir)
    assert any("/CD" in name for name in sent), sent  # TAP-out
    assert any("/CIBER_" in name for name in sent), sent  # CIBER-out and returns


def test_the_stages_layout_delivers_what_the_nightly_layout_delivers(
    cc: ModuleType, world: Path, tmp_path: Path, nightly_layout: tuple[Path, dict[str, int]]
) -> None:
    workdir = tmp_path / "stages"
    shutil.copytree(world, workdir, symlinks=True)
    _night(cc, "stages", workdir)
    assert _delivered(workdir) == _delivered(nightly_layout[0])
