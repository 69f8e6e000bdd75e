"""Benchmark: the hostile night against the clean night of the same world (issue 14).

Run with `make bench` (or `pytest -m bench -s tests/bench/test_bench_hostile.py`). The world of
the nightly benchmark (`var/bench/world-N/`, N = `CLEARING_BENCH_EVENTS`, 1 000 000 by
default; generated once, shared with `test_bench_nightly.py`) is copied twice; one copy gets the
hostile-delivery corpus of `tests/hostile/corpus.py` (every case of issue 14: a 100 000-level
nesting, two million empty events, symlinks, garbage, …) beside its good files. Each copy's
night runs as a user runs it, in its own process; its wall time and the peak RSS of its whole
process tree (sampled every 50 ms) are measured from outside and printed side by side.

The bound (issue 14, "Must show"): the hostile night ≤ 3 × the clean night's wall time + 120 s
and ≤ 1.5 GB peak RSS, with all hostile entries present. A hostile night past the time bound is
killed (process group) and fails the benchmark. Figures go to `var/bench/hostile.json`.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.hostile.corpus import drop_corpus

from .conftest import bench_world

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]
OUT = ROOT / "var" / "bench"
EVENTS = int(os.environ.get("CLEARING_BENCH_EVENTS", "1000000"))
DAY = "2026-11-22"
FACTOR, EXTRA_S = 3.0, 120.0
TARGET_RSS_MB = 1536.0

# code, work folder, date, time limit (s): wall, peak RSS of the process tree, exit code
WORKER = r"""
import json, os, signal, subprocess, sys, time
import psutil
code, work, day, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
env = {**os.environ, "PYTHONPATH": code}
t0 = time.perf_counter()
with open(work + ".jsonl", "w") as out:
    p = subprocess.Popen(
        [sys.executable, "-m", "clearing.cli", "nightly", "--workdir", work, "--date", day,
         "--json"],
        stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=code, start_new_session=True,
    )
    root, peak, killed = psutil.Process(p.pid), 0, False
    while p.poll() is None:  # the whole process tree: the run and its decode workers
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(x.memory_info().rss for x in procs))
        except psutil.Error:
            pass
        if time.perf_counter() - t0 > limit:
            os.killpg(p.pid, signal.SIGKILL)
            killed = True
            p.wait()
            break
        time.sleep(0.05)
wall = time.perf_counter() - t0
code = None if killed else p.returncode
print(json.dumps({"wall": wall, "rss_mb": peak / 2**20, "exit_code": code, "killed": killed}))
"""


@pytest.mark.bench
def test_bench_hostile_night(worker: Callable[..., dict[str, float]], tmp_path: Path) -> None:
    world = bench_world(OUT, DAY, EVENTS)
    clean_dir, hostile_dir = tmp_path / "clean", tmp_path / "hostile"
    shutil.copytree(world, clean_dir)
    shutil.copytree(world, hostile_dir)
    cases = drop_corpus(hostile_dir, date.fromisoformat(DAY), tmp_path / "local" / "secret.txt")

    clean = worker(WORKER, str(ROOT), str(clean_dir), DAY, "3600")
    assert clean["exit_code"] in (0, 1), clean
    limit = FACTOR * clean["wall"] + EXTRA_S
    hostile = worker(WORKER, str(ROOT), str(hostile_dir), DAY, str(limit))

    figures = {
        "events": EVENTS,
        "hostile_entries": len(cases),
        "bound_wall_s": round(limit, 1),
        "bound_rss_mb": TARGET_RSS_MB,
        "clean": clean,
        "hostile": hostile,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hostile.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\n{EVENTS} records, {len(cases)} hostile entries beside them")
    print(f"{'':<16}{'clean':>12}{'hostile':>12}{'bound':>12}")
    print(f"{'wall (s)':<16}{clean['wall']:>12.1f}{hostile['wall']:>12.1f}{limit:>12.1f}")
    print(
        f"{'peak RSS (MB)':<16}{clean['rss_mb']:>12.0f}{hostile['rss_mb']:>12.0f}"
        f"{TARGET_RSS_MB:>12.0f}"
    )
    print(f"{'exit code':<16}{clean['exit_code']!s:>12}{hostile['exit_code']!s:>12}{'1':>12}")

    assert not hostile["killed"], f"the hostile night ran past {limit:.0f} s: killed"
    assert hostile["wall"] <= limit
    assert hostile["rss_mb"] <= TARGET_RSS_MB
    assert hostile["exit_code"] == 1
