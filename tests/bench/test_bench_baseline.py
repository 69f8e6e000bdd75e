"""Benchmark: the nightly of this checkout against the nightly of an earlier revision, same world.

A change of shape (issue 12, "Each stage a room") must not cost speed or memory. This runs
`clearing nightly` of the checkout and of a baseline revision (``CLEARING_BENCH_BASELINE``,
default ``7fd7e62``: the code before the redesign), checked out by ``git worktree`` into
``var/bench/baseline-<rev>``, on copies of one generated world, alternating, ``ROUNDS`` times
each (``CLEARING_BENCH_ROUNDS``, default 2). Wall time and the peak RSS of the run's process
tree are measured from outside; the time per stage is read from the JSON lines. Both runs
must account for the same records. Figures are printed and written to
``var/bench/baseline.json``. Run with ``pytest -m bench -s tests/bench/test_bench_baseline.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.bench.conftest import baseline_checkout
from tests.bench.test_bench_nightly import WORKER

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]
OUT = ROOT / "var" / "bench"
EVENTS = int(os.environ.get("CLEARING_BENCH_EVENTS", "1000000"))
BASELINE = os.environ.get("CLEARING_BENCH_BASELINE", "7fd7e62")
ROUNDS = int(os.environ.get("CLEARING_BENCH_ROUNDS", "2"))
DAY = "2026-11-22"


GENERATE = r"""
import json, sys, time
from datetime import date
from pathlib import Path
from clearing.samples.workdir import generate_world
t0 = time.perf_counter()
generate_world(Path(sys.argv[1]), day=date.fromisoformat(sys.argv[2]), events=int(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _baseline_checkout() -> Path:
    return baseline_checkout(BASELINE)


def _stages(jsonl: Path) -> tuple[dict[str, float], dict[str, Any]]:
    lines = [json.loads(x) for x in jsonl.read_text(encoding="utf-8").splitlines()]
    stages = {x["stage"]: x["seconds"] for x in lines if x.get("event") == "stage_end"}
    manifest = json.loads(
        next(jsonl.parent.glob(f"{jsonl.stem}/runs/*/manifest.json")).read_text(encoding="utf-8")
    )
    return stages, manifest["reconciliation"]


@pytest.mark.bench
def test_bench_nightly_against_baseline(
    worker: Callable[..., dict[str, float]], tmp_path: Path
) -> None:
    base = _baseline_checkout()
    world = OUT / f"world-{EVENTS}"
    if not (world / "clearing.toml").exists():
        shutil.rmtree(world, ignore_errors=True)
        worker(GENERATE, str(world), DAY, str(EVENTS))
    codes = {f"baseline {BASELINE}": base, "this checkout": ROOT}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in codes}
    identities = set()
    for i in range(ROUNDS):
        for label, code in codes.items():
            work = tmp_path / f"w{i}-{len(runs[label])}-{'base' if code == base else 'head'}"
            shutil.copytree(world, work)
            got = worker(WORKER, str(code), str(work), DAY, "1")
            stages, rec = _stages(work.with_name(work.name + ".jsonl"))
            assert rec["difference"] == 0
            # a status the baseline does not know yet counts only when it holds records
            known = {k: v for k, v in rec.items() if v or k in ("in", "difference")}
            identities.add(json.dumps(known, sort_keys=True))
            runs[label].append({"wall_s": round(got["wall"], 2), "rss_mb": round(got["rss_mb"])})
            runs[label][-1]["stages_s"] = stages
            shutil.rmtree(work)
    assert len(identities) == 1  # both account for the same records the same way
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "baseline.json").write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    print()
    for label, rs in runs.items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rs)
        rss = ", ".join(str(r["rss_mb"]) for r in rs)
        print(f"{label}: wall {walls} s; peak RSS {rss} MB")
        for name in rs[0]["stages_s"]:
            each = ", ".join(f"{r['stages_s'].get(name, 0):.2f}" for r in rs)
            print(f"  {name:<10} {each} s")
