"""Benchmark: how long a user waits for `clearing --help` and `clearing inspect` of a small file.

Targets (issue 15, item 7): ``clearing --help`` within 0.3 s and ``clearing inspect`` of a small
TAP file within 0.5 s, over what the interpreter itself costs: ``python -c pass`` is measured in
the same run, alternating with the commands, and subtracted. Each command is a fresh process
(the ``clearing`` console script, as users type it; ``python -m clearing`` for reference: runpy
adds about 50 ms), run ``ROUNDS`` times (``CLEARING_BENCH_ROUNDS``, default 7); the fastest run
of each is compared (noise from other processes only ever adds time), the median is printed
beside it, and so is each process's CPU time (user + system): on a busy machine that is what
the code costs, the wall time adds the wait for a core. The compiled ASN.1 specification is
cached between runs (:mod:`clearing.codecs.asn1`): the inspect figures are of a warm cache (any
run after the first), and one run with an empty cache folder is printed for comparison. Figures
are printed and written to ``var/bench/startup.json``. Run with
``pytest -m bench -s tests/bench/test_bench_startup.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OUT = ROOT / "var" / "bench"
ROUNDS = int(os.environ.get("CLEARING_BENCH_ROUNDS", "7"))
SMALL_TAP = ROOT / "data_samples" / "tap" / "CDCHEC9HKGCL03631"  # TAP 3.12, 150 events, 39 kB
NOTIFICATION = ROOT / "data_samples" / "tap" / "CDSGPS9HKGCL00966"  # TAP 3.12, no events
HELP_TARGET = 0.3
INSPECT_TARGET = 0.5

# what users type: the console script beside the interpreter (`pip install` puts it there);
# `python -m clearing` is measured too, for reference (runpy adds its own time)
_SCRIPT = Path(sys.executable).with_name("clearing")
CLEARING = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "clearing"]

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "clearing --help": [*CLEARING, "--help"],
    "clearing inspect (39 kB TAP)": [*CLEARING, "inspect", str(SMALL_TAP)],
    "clearing inspect (notification)": [*CLEARING, "inspect", str(NOTIFICATION)],
    "python -m clearing inspect (39 kB TAP)": [
        sys.executable,
        "-m",
        "clearing",
        "inspect",
        str(SMALL_TAP),
    ],
}


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv``."""
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, f"{argv} exited {child.returncode}"
    return wall, usage.ru_utime + usage.ru_stime


@pytest.mark.bench
def test_startup(tmp_path: Path) -> None:
    env = {**os.environ, "CLEARING_CACHE_DIR": str(tmp_path / "cache")}
    cold = _run(COMMANDS["clearing inspect (39 kB TAP)"], env)  # fills the cache
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(ROUNDS):
        for name, argv in COMMANDS.items():  # alternating: the same load for each
            runs[name].append(_run(argv, env))
    runs["clearing inspect (39 kB TAP), empty cache"] = [cold]
    base_wall = min(w for w, _ in runs["python -c pass"])
    base_cpu = min(c for _, c in runs["python -c pass"])
    figures = {
        name: {
            "fastest_s": round(min(w for w, _ in r), 4),
            "median_s": round(statistics.median(w for w, _ in r), 4),
            "over_python_s": round(min(w for w, _ in r) - base_wall, 4),
            "cpu_s": round(min(c for _, c in r), 4),
            "cpu_over_python_s": round(min(c for _, c in r) - base_cpu, 4),
        }
        for name, r in runs.items()
    }
    print(
        f"\nstartup, {ROUNDS} rounds (wall: fastest, median, fastest over `python -c pass`; "
        f"CPU: least, least over python; load average {os.getloadavg()[0]:.1f}):"
    )
    for name, f in figures.items():
        print(
            f"  {name:42} {f['fastest_s']:6.3f} s {f['median_s']:6.3f} s "
            f"{f['over_python_s']:+6.3f} s | CPU {f['cpu_s']:6.3f} s "
            f"{f['cpu_over_python_s']:+6.3f} s"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")

    assert figures["clearing --help"]["over_python_s"] <= HELP_TARGET
    assert figures["clearing inspect (39 kB TAP)"]["over_python_s"] <= INSPECT_TARGET
    assert figures["clearing inspect (notification)"]["over_python_s"] <= INSPECT_TARGET
