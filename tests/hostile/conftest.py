"""The hostile night and its clean twin: one sample world, two copies, the same nights run.

The world (two days) is generated once; ``clean`` and ``hostile`` are copies of it, the hostile
one with the corpus of :mod:`tests.hostile.corpus` dropped beside the good files. Both run the
same nights through the CLI, each in its own process: day D, day D again (hostile: the rerun),
then ``samples deliver`` of day D+1 and the night of D+1. Every run is bounded from outside:
killed (its whole process group) after 3 × the clean night's wall time + 120 s (issue 14's
bound), so a decoder that runs for hours fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from clearing.samples.workdir import generate_world

from .corpus import HostileCase, drop_corpus

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
NEXT = DAY + timedelta(days=1)
EVENTS = 1200
SEED = 5
BOUND_FACTOR = 3.0
BOUND_EXTRA_S = 120.0
MEMORY_GUARD = 6 * 2**30
"""Address-space limit of every run: a runaway decoder fails alone, not the shared machine."""


@dataclass
class Run:
    """One CLI run: its exit code (None: killed at the time limit), wall time, output."""

    args: tuple[str, ...]
    returncode: int | None
    seconds: float
    stdout: str
    stderr: str
    manifest: dict[str, Any] | None = None

    def describe(self) -> str:
        """A line for assertion messages."""
        code = "killed at the time limit" if self.returncode is None else f"exit {self.returncode}"
        tail = self.stderr.strip().splitlines()[-5:]
        return (
            f"`clearing {' '.join(self.args)}`: {code} after {self.seconds:.1f} s; "
            + " | ".join(tail)
        )

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The manifest's ``entries`` (issue 14): one per delivered entry; [] when absent."""
        if self.manifest is None:
            return []
        return list(self.manifest.get("entries") or [])


def _guard() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_GUARD, MEMORY_GUARD))


def cli(*args: str, timeout: float) -> Run:
    """``python -m clearing.cli *args`` in its own process group, killed after ``timeout`` s."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-m", "clearing.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
        preexec_fn=_guard,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        out, err = p.communicate(timeout=timeout)
        code: int | None = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        code = None
    return Run(args, code, time.perf_counter() - t0, out, err)


def nightly(root: Path, day: date, *, timeout: float) -> Run:
    """``clearing nightly --workdir root --date day --json``, its manifest read when written."""
    run = cli(
        "nightly", "--workdir", str(root), "--date", day.isoformat(), "--json", timeout=timeout
    )
    for line in reversed(run.stdout.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "manifest":
            path = root / "runs" / event["run_id"] / "manifest.json"
            run.manifest = json.loads(path.read_text(encoding="utf-8"))
            break
    return run


def snapshot(root: Path, tops: tuple[str, ...]) -> dict[str, bytes]:
    """The bytes of every regular file under ``root/<top>`` (symlinks never followed)."""
    out: dict[str, bytes] = {}
    for top in tops:
        base = root / top
        for folder, dirs, files in os.walk(base, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                p = Path(folder) / name
                if p.is_symlink() or not p.is_file():
                    continue
                try:
                    out[str(p.relative_to(root))] = p.read_bytes()
                except PermissionError:
                    out[str(p.relative_to(root))] = b"<unreadable>"
    return out


OUTPUT_TOPS = ("out", "lake", "failed", "inbox", "work")


@dataclass
class Nights:
    """Everything the hostile-night tests look at."""

    clean_root: Path
    hostile_root: Path
    secret: Path
    cases: list[HostileCase]
    limit_s: float
    clean: Run
    hostile: Run
    after_first: dict[str, bytes]
    rerun: Run
    after_rerun: dict[str, bytes]
    clean_next: Run | None = None
    hostile_next: Run | None = None
    delivered: list[Run] = field(default_factory=list)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    """The two copies of the world, their nights run (module docstring)."""
    base = tmp_path_factory.mktemp("hostile")
    world = generate_world(base / "world", day=DAY, events=EVENTS, seed=SEED, days=2)
    clean_root, hostile_root = base / "clean", base / "hostile"
    shutil.copytree(world.root, clean_root, symlinks=True)
    shutil.copytree(world.root, hostile_root, symlinks=True)
    secret = base / "local" / "secret.txt"  # outside both work folders
    cases = drop_corpus(hostile_root, DAY, secret)

    clean = nightly(clean_root, DAY, timeout=600)
    assert clean.returncode in (0, 1), clean.describe()
    limit = BOUND_FACTOR * clean.seconds + BOUND_EXTRA_S
    hostile = nightly(hostile_root, DAY, timeout=limit)
    after_first = snapshot(hostile_root, OUTPUT_TOPS)
    rerun = nightly(hostile_root, DAY, timeout=limit)
    after_rerun = snapshot(hostile_root, OUTPUT_TOPS)
    result = Nights(
        clean_root, hostile_root, secret, cases, limit, clean, hostile, after_first, rerun,
        after_rerun,
    )  # fmt: skip
    for root in (clean_root, hostile_root):
        result.delivered.append(
            cli(
                "samples",
                "deliver",
                "--workdir",
                str(root),
                "--date",
                NEXT.isoformat(),
                timeout=300,
            )
        )
    result.clean_next = nightly(clean_root, NEXT, timeout=600)
    result.hostile_next = nightly(hostile_root, NEXT, timeout=limit)
    return result
