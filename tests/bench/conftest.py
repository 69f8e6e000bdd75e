"""Shared by the benchmarks: run a measuring script in its own process, read its JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]


def run_worker(code: str, *args: str) -> dict[str, float]:
    """Run ``code`` with ``args`` in a fresh interpreter (own peak RSS); return its JSON."""
    r = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    out: dict[str, float] = json.loads(r.stdout)
    return out


GENERATE = r"""
import json, sys, time
from datetime import date
from pathlib import Path
from clearing.samples.workdir import generate_world
t0 = time.perf_counter()
w = generate_world(Path(sys.argv[1]), day=date.fromisoformat(sys.argv[2]), events=int(sys.argv[3]))
out = {"seconds": time.perf_counter() - t0, "tap": w.tap_events, "cdrs": w.visitor_cdrs}
print(json.dumps(out))
"""


def bench_world(out: Path, day: str, events: int) -> Path:
    """The benchmarks' sample world of ``events`` records (``out/world-N``), generated once."""
    import shutil

    world = out / f"world-{events}"
    if not (world / "clearing.toml").exists():
        shutil.rmtree(world, ignore_errors=True)
        gen = run_worker(GENERATE, str(world), day, str(events))
        print(f"\ngenerated {events} records in {gen['seconds']:.1f} s → {world}")
    return world


def baseline_checkout(rev: str) -> Path:
    """Revision ``rev`` checked out (``git worktree``, detached) in ``var/bench/baseline-<rev>``.

    Made once and reused; the test is skipped when git or the revision is not there.
    """
    target = ROOT / "var" / "bench" / f"baseline-{rev}"
    if (target / "clearing" / "__init__.py").exists():
        return target
    if shutil.which("git") is None:
        pytest.skip("git is needed to check the baseline revision out")
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(target), rev],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"baseline {rev} not available: {done.stderr.strip()}")
    return target


@pytest.fixture
def worker() -> Callable[..., dict[str, float]]:
    """The :func:`run_worker` function, for benchmarks."""
    return run_worker
