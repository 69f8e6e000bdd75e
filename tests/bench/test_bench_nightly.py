"""Benchmark: `clearing nightly` on a generated world of 1 000 000 usage records.

Run with `make bench` (or `pytest -m bench -s tests/bench/test_bench_nightly.py`). The world
(`clearing samples generate --events N`: N/2 TAP-in events from six partners, N/2 visitor
CDRs, CIBER batches) is generated once into `var/bench/world-N/` and copied for each run. The
nightly runs as a user runs it, in its own process; its wall time and the peak RSS of its
whole process tree (the run and its decode workers, sampled every 50 ms) are measured from
outside, the time per stage is read from its manifest. The targets (issue 8) are ≤ 60 s
and ≤ 2 GB on the project's 2-core machine; they are printed beside the figures and written to
`var/bench/nightly.json`. `CLEARING_BENCH_EVENTS` changes N.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import bench_world

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]
OUT = ROOT / "var" / "bench"
EVENTS = int(os.environ.get("CLEARING_BENCH_EVENTS", "1000000"))
DAY = "2026-11-22"
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 2048.0

# the measuring script, shared with the baseline benchmark: code, work folder, date, workers
WORKER = r"""
import json, os, subprocess, sys, time
import psutil
code, work, day, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
env = {**os.environ, "PYTHONPATH": code, "CLEARING_WORKERS": workers}
if workers != "1":
    env["CLEARING_PARALLEL_MIN_MB"] = "0"
t0 = time.perf_counter()
with open(work + ".jsonl", "w") as out:
    p = subprocess.Popen(
        [sys.executable, "-m", "clearing.cli", "nightly", "--workdir", work, "--date", day,
         "--json"],
        stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=code,
    )
    root, peak = psutil.Process(p.pid), 0
    while p.poll() is None:  # the whole process tree: the run and its decode workers
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(x.memory_info().rss for x in procs))
        except psutil.Error:
            pass
        time.sleep(0.05)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss_mb": peak / 2**20, "exit_code": p.returncode}))
"""


@pytest.mark.bench
def test_bench_nightly(worker: Callable[..., dict[str, float]], tmp_path: Path) -> None:
    world = bench_world(OUT, DAY, EVENTS)
    figures = {}
    runs = (("serial (the default below 256 MB of TAP)", "1"), ("file checks in 2 workers", "2"))
    for label, workers in runs:
        work = tmp_path / f"w{workers}"
        shutil.copytree(world, work)
        got = worker(WORKER, str(ROOT), str(work), DAY, workers)
        (run_dir,) = (work / "runs").iterdir()
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        rec = manifest["reconciliation"]
        assert rec["difference"] == 0
        assert rec["in"] >= EVENTS  # every record generated is accounted for
        figures[label] = {
            "events": rec["in"],
            "wall_s": round(got["wall"], 2),
            "events_per_s": round(rec["in"] / got["wall"]),
            "peak_rss_mb": round(got["rss_mb"]),
            "within_target": got["wall"] <= TARGET_SECONDS and got["rss_mb"] <= TARGET_RSS_MB,
            "exit_code": got["exit_code"],
            "stages_s": {s["name"]: s["seconds"] for s in manifest["stages"]},
        }
        shutil.rmtree(work)
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"target_wall_s": TARGET_SECONDS, "target_rss_mb": TARGET_RSS_MB, **figures}
    (OUT / "nightly.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\ntarget: ≤ {TARGET_SECONDS:.0f} s, ≤ {TARGET_RSS_MB:.0f} MB (whole process tree)")
    for label, f in figures.items():
        print(
            f"{label}: {f['events']} records in {f['wall_s']:.1f} s "
            f"({f['events_per_s']} records/s), peak RSS {f['peak_rss_mb']} MB"
        )
        for name, seconds in f["stages_s"].items():
            print(f"  {name:<10} {seconds:8.2f} s")
