"""Benchmark: decoder cost per MB for normal and hostile TAP files, side by side (issue 14).

Four inputs of about the same size, each decoded in its own process (a clean peak RSS):

* ``normal``: the sample's events repeated (a real file's shape);
* ``deep``: one event holding an element nested 100 000 levels deep (definite lengths);
* ``empty``: two million empty events;
* ``random``: random bytes.

Printed: seconds per MB and peak RSS (above the warmed-up interpreter) per MB. Hostile inputs
must cost at most 10× the normal per-MB time. Figures go to ``var/bench/decoders.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.bench.test_bench_tap import big_tap
from tests.codecs.hostile import deep, empty_events, random_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]
OUT = ROOT / "var" / "bench"

WORKER = r"""
import json, sys, time
from pathlib import Path
from clearing.codecs import fast
from clearing.errors import DecodeError
data = Path(sys.argv[1]).read_bytes()
fast.decode_tap(Path(sys.argv[2]).read_bytes())  # warm: schema compiled, grammar built
import gc
gc.collect()
Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on
status = Path("/proc/self/status").read_text()
before = int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])
t = time.perf_counter()
try:
    rows = fast.decode_tap(data).events.num_rows
    outcome = f"{rows} events"
except DecodeError as exc:
    outcome = "DecodeError: " + exc.reason[:60]
dt = time.perf_counter() - t
status = Path("/proc/self/status").read_text()
peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": dt, "rss_kb": max(peak - before, 0), "outcome": outcome}))
"""


@pytest.mark.bench
def test_decoder_cost_per_mb(tmp_path: Path, worker: Callable[..., dict[str, object]]) -> None:
    normal = tmp_path / "normal"
    big_tap(14_000, normal)  # about 3.6 MB
    inputs = {
        "normal": normal.read_bytes(),
        "deep 100000 levels": deep(100_000),
        "deep 100000 levels (indefinite)": deep(100_000, indefinite=True),
        "2 million empty events": empty_events(2_000_000),
        "random bytes": random_bytes(4_000_000),
    }
    warm = ROOT / "data_samples" / "tap" / "CDFRAF9HKGCL01506"
    rows = {}
    for name, data in inputs.items():
        path = tmp_path / name.replace(" ", "_")
        path.write_bytes(data)
        r = worker(WORKER, str(path), str(warm))
        mb = len(data) / 1e6
        rows[name] = {
            "mb": mb,
            "s_per_mb": float(r["seconds"]) / mb,  # type: ignore[arg-type]
            "rss_mb_per_mb": float(r["rss_kb"]) / 1024 / mb,  # type: ignore[arg-type]
            "outcome": r["outcome"],
        }
    print()
    print(f"{'input':34} {'MB':>6} {'s/MB':>8} {'RSS MB/MB':>10}  outcome")
    for name, row in rows.items():
        print(
            f"{name:34} {row['mb']:6.2f} {row['s_per_mb']:8.3f} {row['rss_mb_per_mb']:10.1f}  "
            f"{row['outcome']}"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "decoders.json").write_text(json.dumps(rows, indent=2))
    base = float(str(rows["normal"]["s_per_mb"]))
    for name, row in rows.items():
        assert float(str(row["s_per_mb"])) <= 10 * base, (name, row, base)
