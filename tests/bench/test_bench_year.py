"""Benchmark: a year of nights at flat cost (issue 16, item 6) — nights, a big night, a month.

Everything goes through the product as users run it, each command its own process:
``clearing samples generate --days K --events N`` makes the world (once, into a template folder
under ``var/bench/``, reused by every run and revision until the generator's code changes or
``CLEARING_BENCH_REGENERATE=1``); each run copies the template (its ``samples/`` folder, read
only, is linked, not copied), then for every night ``clearing samples deliver`` puts the day's
files in place (not measured) and ``clearing nightly`` runs (measured). The history a night sees
is made the honest way: by running every earlier night through ``clearing nightly`` — no
shortcut writes the lake. Wall time, CPU time (user + system of the process and its decode
workers, from ``getrusage(RUSAGE_CHILDREN)``) and the peak RSS of the whole process tree
(sampled every 50 ms with psutil, as ``test_bench_nightly.py`` does) are measured from outside.

1. :func:`test_bench_year_growth`: ``CLEARING_BENCH_YEAR_NIGHTS`` nights (default 12) of
   ``CLEARING_BENCH_YEAR_EVENTS`` records a day (default 200 000) one after the other; the table
   shows nights 1, 10, 30, 80 (those that exist) and the last. Targets: the last night's wall
   ≤ 1.25× night 1's, peak RSS ≤ 2 GB (asserted for this checkout only). The issue's full size
   is 81 nights × 1M.
2. :func:`test_bench_big_night`: one night of ``CLEARING_BENCH_BIG_EVENTS`` records (default
   10M), only with ``CLEARING_BENCH_BIG=1``. Targets ≤ 5 min, ≤ 4 GB. With
   ``CLEARING_BENCH_BIG_REPLAY=1`` the same night is run again right after (a replay: the
   files were sent), its peak RSS held to the same 4 GB.
3. :func:`test_bench_monthly_close`: ``CLEARING_BENCH_MONTH_NIGHTS`` nights (default 30) of
   ``CLEARING_BENCH_MONTH_EVENTS`` records (default 10 000) from 2026-11-01, then
   ``clearing monthly --period 2026-11``, measured. Target ≤ 60 s (the issue's size: 30 × 1M).

**Baseline in the same run.** With ``CLEARING_BENCH_BASELINE=<rev>`` the same scenario runs on
that revision too (checked out by ``git worktree`` into ``var/bench/baseline-<rev>``, on a copy of
the same template; ``samples deliver`` runs with the code under test) and its figures are printed
next to this checkout's. A baseline whose cost grows with history can outgrow the machine: every
run is killed when its process tree passes ``CLEARING_BENCH_RSS_CAP_MB`` (default: 80 % of the
machine's memory), and ``CLEARING_BENCH_BASELINE_NIGHTS`` stops the baseline after that many
nights; a baseline that fails or is killed ends its table there (only this checkout's failures
fail the test). ``CLEARING_BENCH_CODE=<rev>`` measures another revision in place of this
checkout (to try the harness; nothing is asserted then).

The issue's sizes (generation once, at ~7 000 records/s on this machine when busy: ~3 h for
the year's 81M records, the template ~16 GB; a run's folder ~3× its days of the template — the
harness skips when the disk has less free)::

    CLEARING_BENCH_YEAR_NIGHTS=81 CLEARING_BENCH_YEAR_EVENTS=1000000 \
    CLEARING_BENCH_BASELINE=f7a0c22 CLEARING_BENCH_BASELINE_NIGHTS=11 \
        pytest -m bench -s tests/bench/test_bench_year.py -k growth
    CLEARING_BENCH_BIG=1 CLEARING_BENCH_BASELINE=f7a0c22 \
        pytest -m bench -s tests/bench/test_bench_year.py -k big_night
    CLEARING_BENCH_MONTH_NIGHTS=30 CLEARING_BENCH_MONTH_EVENTS=1000000 \
    CLEARING_BENCH_BASELINE=f7a0c22 pytest -m bench -s tests/bench/test_bench_year.py -k monthly

Runs are one revision after the other (a run's folder is deleted before the next starts: at
full size a year of 1M-record nights takes tens of GB). Figures are printed and written to
``var/bench/year.json``, ``big_night.json`` and ``monthly_close.json``. Run with
``pytest -m bench -s tests/bench/test_bench_year.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.bench.conftest import baseline_checkout

ROOT = Path(__file__).parents[2]
OUT = ROOT / "var" / "bench"
START = "2026-11-01"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)).replace("_", ""))


NIGHTS = _env_int("CLEARING_BENCH_YEAR_NIGHTS", 12)
EVENTS = _env_int("CLEARING_BENCH_YEAR_EVENTS", 200_000)
BIG = os.environ.get("CLEARING_BENCH_BIG", "") == "1"
BIG_EVENTS = _env_int("CLEARING_BENCH_BIG_EVENTS", 10_000_000)
BIG_REPLAY = os.environ.get("CLEARING_BENCH_BIG_REPLAY", "") == "1"
MONTH_NIGHTS = _env_int("CLEARING_BENCH_MONTH_NIGHTS", 30)
MONTH_EVENTS = _env_int("CLEARING_BENCH_MONTH_EVENTS", 10_000)
BASELINE = os.environ.get("CLEARING_BENCH_BASELINE", "")
BASELINE_NIGHTS = _env_int("CLEARING_BENCH_BASELINE_NIGHTS", 0)  # 0: all of them
CODE = os.environ.get("CLEARING_BENCH_CODE", "")
# the monthly close's baseline: that revision's `clearing monthly` on the same folder, right
# after this checkout's (the same nights: the month is not run twice)
MONTH_BASELINE = os.environ.get("CLEARING_BENCH_MONTH_BASELINE", "")
# partners keep each file on their servers this many nights, then remove it (0: for ever, as
# the world delivers them): a long run's work folder stays within this machine's disk
PARTNER_KEEP_NIGHTS = _env_int("CLEARING_BENCH_PARTNER_KEEP_NIGHTS", 0)
RSS_CAP_MB = _env_int("CLEARING_BENCH_RSS_CAP_MB", int(psutil.virtual_memory().total * 0.8 / 2**20))
REGENERATE = os.environ.get("CLEARING_BENCH_REGENERATE", "") == "1"

GROWTH_RATIO = 1.25  # the last night's wall time against night 1's
YEAR_RSS_MB = 2048.0
BIG_SECONDS, BIG_RSS_MB = 300.0, 4096.0
MONTHLY_SECONDS = 60.0
TABLE_NIGHTS = (1, 10, 30, 80)
# disk: a generated day takes ~200 bytes a record; a run's folder ~3× its days of the template
# (the delivered copies, the collected inputs, the lake, the outputs)
BYTES_PER_RECORD = 250
WORKDIR_FACTOR = 3.5

CLEARING = [sys.executable, "-m", "clearing.cli"]  # run in the code's folder, on its path
# what the template's world depends on: a change here makes the template again
_GENERATOR = ("clearing/samples", "clearing/codecs", "clearing/config.py", "clearing/names.py")


@dataclass
class Run:
    """One measured command: wall, CPU, peak RSS of its process tree, its exit and JSON."""

    wall_s: float
    cpu_s: float
    rss_mb: float
    exit_code: int
    killed: str = ""
    last: dict[str, Any] = field(default_factory=dict)  # the last JSON line (the manifest)
    stderr: str = ""
    stages_rss_mb: dict[str, float] = field(default_factory=dict)  # each stage's peak RSS

    @property
    def ok(self) -> bool:
        """Exit 0 (ok) or 1 (data problems: the sample world plants some), not killed."""
        return not self.killed and self.exit_code in (0, 1)

    def why(self) -> str:
        """Why the run failed, for a message."""
        if self.killed:
            return self.killed
        said = self.last.get("message") or self.stderr.strip()[-2000:]
        trace = str(self.last.get("traceback", ""))[-1200:]
        return f"exit code {self.exit_code}: {said}" + (f"\n…{trace}" if trace else "")


@dataclass
class Night:
    """The figures of one nightly run."""

    night: int
    day: str
    wall_s: float
    cpu_s: float
    rss_mb: float
    exit_code: int
    records: int
    stages_s: dict[str, float]
    stages_rss_mb: dict[str, float] = field(default_factory=dict)


@dataclass
class Side:
    """One revision's run of a scenario."""

    label: str
    code: Path
    is_head: bool  # the code under test is this checkout (the targets are asserted)
    nights: list[Night] = field(default_factory=list)
    stopped: str = ""  # why the run ended before the last night
    extra: dict[str, Any] = field(default_factory=dict)


def _env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}


def measure(argv: list[str], code: Path, log: Path) -> Run:
    """Run ``argv`` with ``code`` first on the path; stdout to ``log``; measured from outside.

    The peak RSS is of the whole process tree (the run and its workers), sampled every 50 ms;
    the tree is killed when it passes :data:`RSS_CAP_MB` (the machine is shared).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    err = log.with_suffix(".stderr")
    t0 = time.perf_counter()
    killed = ""
    with log.open("w") as out, err.open("w") as errors:
        p = subprocess.Popen(argv, stdout=out, stderr=errors, env=_env(code), cwd=code)
        root, peak = psutil.Process(p.pid), 0
        procs = [root]
        samples: list[tuple[float, int]] = []  # (epoch seconds, RSS of the tree)
        while p.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                rss = sum(x.memory_info().rss for x in procs)
                samples.append((time.time(), rss))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            if peak > RSS_CAP_MB * 2**20 and not killed:
                killed = f"killed at the RSS cap ({RSS_CAP_MB} MB, CLEARING_BENCH_RSS_CAP_MB)"
                for x in reversed(procs):  # the children first, then the run itself
                    with contextlib.suppress(psutil.Error):
                        x.kill()
            time.sleep(0.05)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last: dict[str, Any] = {}
    lines = [x for x in log.read_text(encoding="utf-8").splitlines() if x.startswith("{")]
    if lines:
        try:
            last = json.loads(lines[-1])
        except json.JSONDecodeError:
            last = {}
    return Run(
        wall,
        cpu,
        peak / 2**20,
        p.returncode,
        killed,
        last,
        err.read_text(errors="replace"),
        _stage_peaks(lines, samples),
    )


def _stage_peaks(lines: list[str], samples: list[tuple[float, int]]) -> dict[str, float]:
    """Each stage's peak RSS (MB): the samples from its ``stage_start`` line to the next's."""
    starts: list[tuple[float, str]] = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError, KeyError, ValueError):
            event = json.loads(line)
            if event.get("event") == "stage_start":
                ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
                starts.append((ts, event["stage"]))
    peaks: dict[str, float] = {}
    for k, (begin, stage) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else float("inf")
        inside = [rss for t, rss in samples if begin <= t < end]
        if inside:
            peaks[stage] = round(max(inside) / 2**20)
    return peaks


def _source_hash() -> str:
    digest = hashlib.sha256()
    for part in _GENERATOR:
        path = ROOT / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(ROOT)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:10]


def template(events: int, days: int, start: str) -> Path:
    """The world of ``days`` days × ``events`` records from ``start``, generated once.

    Made by this checkout's ``clearing samples generate`` into ``var/bench/`` (a temporary
    folder renamed when complete); older templates of the same size are removed.
    """
    stem = f"year-world-{events}x{days}-{start}"
    world = OUT / f"{stem}-{_source_hash()}"
    if REGENERATE:
        shutil.rmtree(world, ignore_errors=True)
    if (world / "clearing.toml").exists():
        return world
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob(f"{stem}-*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = world.with_name(world.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _need_disk(OUT, events * days * BYTES_PER_RECORD / 1e9, "the template")
    argv = [*CLEARING, "samples", "generate", "--out", str(tmp)]
    argv += ["--events", str(events), "--days", str(days), "--date", start]
    got = measure(argv, ROOT, OUT / f"{stem}.generate.log")
    assert got.ok, f"samples generate failed: {got.why()}"
    tmp.rename(world)
    print(
        f"\ngenerated {days} day(s) × {events} records in {got.wall_s:.0f} s "
        f"(peak RSS {got.rss_mb:.0f} MB) → {world}"
    )
    return world


def _need_disk(folder: Path, gb: float, what: str) -> None:
    """Skip (before filling the shared disk) when ``folder``'s disk has less than ``gb`` free."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free / 1e9
    if free < gb:
        pytest.skip(f"{what} needs about {gb:.1f} GB, {folder} has {free:.1f} GB free")


def _copy(world: Path, work: Path) -> None:
    """The template as a new work folder: everything copied but ``samples/``, which is linked."""
    shutil.copytree(world, work, ignore=lambda d, _: ["samples"] if Path(d) == world else [])
    if (world / "samples").is_dir():
        (work / "samples").symlink_to(world / "samples", target_is_directory=True)


def sides() -> list[Side]:
    """This checkout (or ``CLEARING_BENCH_CODE``) and, when asked for, the baseline."""
    head = (
        Side(f"revision {CODE}", baseline_checkout(CODE), is_head=False)
        if CODE
        else Side("this checkout", ROOT, is_head=True)
    )
    if not BASELINE:
        return [head]
    return [head, Side(f"baseline {BASELINE}", baseline_checkout(BASELINE), is_head=False)]


def run_nights(side: Side, world: Path, work: Path, days: int, limit: int = 0) -> None:
    """Copy ``world`` to ``work`` and run its ``days`` nights in order on ``side``'s code.

    Night 1's files are in place already; before every later night ``samples deliver`` puts the
    day's in place (with the code under test, not measured). Stops at the first failed night.
    """
    # partners cleaning their servers keep a run's folder near 2.6× the template (30 × 1M)
    factor = 2.8 if PARTNER_KEEP_NIGHTS else WORKDIR_FACTOR
    _need_disk(work.parent, factor * _size_gb(world), "a run's work folder")
    _copy(world, work)
    logs = work.with_name(work.name + "-logs")
    logs.mkdir(exist_ok=True)
    first = date.fromisoformat(START)
    seen: dict[Path, int] = {}  # a partner server's file → the night it was first there
    for i in range(1, days + 1):
        if limit and i > limit:
            side.stopped = f"stopped after {limit} nights (CLEARING_BENCH_BASELINE_NIGHTS)"
            return
        day = (first + timedelta(days=i - 1)).isoformat()
        if i > 1:
            argv = [*CLEARING, "samples", "deliver", "--workdir", str(work)]
            got = measure([*argv, "--date", day], side.code, logs / f"deliver-{day}.log")
            if not got.ok:
                side.stopped = f"samples deliver {day} failed: {got.why()}"
                return
        argv = [*CLEARING, "nightly", "--workdir", str(work), "--date", day]
        got = measure([*argv, "--json"], side.code, logs / f"nightly-{day}.jsonl")
        if not got.ok:
            side.stopped = f"night {i} ({day}) failed: {got.why()}"
            return
        rec = got.last.get("reconciliation") or {}
        assert rec.get("difference", 0) == 0, f"{side.label} night {i}: {rec}"
        if PARTNER_KEEP_NIGHTS:
            _partners_clean_up(work / "exchange", seen, i)
        stages = {s["name"]: s["seconds"] for s in got.last.get("stages", []) if "name" in s}
        side.nights.append(
            Night(
                i,
                day,
                got.wall_s,
                got.cpu_s,
                got.rss_mb,
                got.exit_code,
                rec.get("in", 0),
                stages,
                got.stages_rss_mb,
            )
        )
        print(
            f"  {side.label}: night {i} {day}: {rec.get('in', 0)} records, "
            f"{got.wall_s:.1f} s wall, {got.cpu_s:.1f} s CPU, {got.rss_mb:.0f} MB",
            flush=True,
        )
    side.extra["workdir_gb"] = round(_size_gb(work), 2)
    print(f"  {side.label}: the work folder holds {side.extra['workdir_gb']:.2f} GB", flush=True)


def _partners_clean_up(exchange: Path, seen: dict[Path, int], night: int) -> None:
    """Remove what partners have kept :data:`PARTNER_KEEP_NIGHTS` nights (not measured)."""
    for f in exchange.rglob("*"):
        if f.is_file():
            seen.setdefault(f, night)
    for f, first in list(seen.items()):
        if night - first >= PARTNER_KEEP_NIGHTS:
            f.unlink(missing_ok=True)
            del seen[f]


def _size_gb(folder: Path) -> float:
    """The bytes of the files under ``folder`` (links not followed), in GB."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total / 1e9


def _table_nights(count: int) -> list[int]:
    return sorted({n for n in TABLE_NIGHTS if n <= count} | {count})


def print_growth(all_sides: list[Side], nights: int, events: int) -> None:
    """The growth table: nights 1, 10, 30, 80 and the last, every side next to the others."""
    print(f"\nsteady state: {nights} nights × {events} records/day from {START}")
    print(f"target (this checkout): last night ≤ {GROWTH_RATIO}× night 1, peak RSS ≤ 2048 MB")
    print("(CPU = user + system of the run and its workers: on a busy machine wall adds waiting)")
    head = f"{'night':>5} {'date':<10} {'records':>9}"
    sub = " " * len(head)
    for s in all_sides:
        head += f" | {s.label:^26}"
        sub += f" | {'wall s':>8} {'CPU s':>7} {'RSS MB':>7} "
    print(head)
    print(sub)
    for n in _table_nights(nights):
        got = [next((x for x in s.nights if x.night == n), None) for s in all_sides]
        known = next((x for x in got if x is not None), None)
        if known is None:
            continue
        line = f"{n:>5} {known.day:<10} {known.records:>9}"
        for x in got:
            line += (
                f" | {x.wall_s:>8.1f} {x.cpu_s:>7.1f} {x.rss_mb:>7.0f} "
                if x
                else f" | {'—':>8} {'—':>7} {'—':>7} "
            )
        print(line)
    line = f"{'last / night 1':<26}"
    for s in all_sides:
        if len(s.nights) > 1:
            a, z = s.nights[0], s.nights[-1]
            line += f" | {z.wall_s / a.wall_s:>7.2f}× {z.cpu_s / a.cpu_s:>6.2f}× "
            line += f"{z.rss_mb / a.rss_mb:>6.2f}× "
        else:
            line += f" | {'':>26}"
    print(line)
    for s in all_sides:
        if s.stopped:
            print(f"{s.label}: {s.stopped}")
        if len(s.nights) > 1:
            a, z = s.nights[0], s.nights[-1]
            names = list(dict.fromkeys([*a.stages_s, *z.stages_s]))
            each = ", ".join(
                f"{name} {a.stages_s.get(name, 0):.1f}→{z.stages_s.get(name, 0):.1f}"
                for name in names
            )
            print(f"{s.label}: stages night 1 → night {z.night} (s): {each}")


def _save(name: str, result: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _side_json(s: Side) -> dict[str, Any]:
    return {
        "code": str(s.code),
        "nights": [asdict(n) for n in s.nights],
        "stopped": s.stopped,
        **s.extra,
    }


def _fail_head(s: Side) -> None:
    if s.is_head and s.stopped:
        pytest.fail(f"{s.label}: {s.stopped}")


@pytest.mark.bench
def test_bench_year_growth(tmp_path: Path) -> None:
    world = template(EVENTS, NIGHTS, START)
    all_sides = sides()
    for i, s in enumerate(all_sides):
        work = tmp_path / f"year-{i}"
        print(f"\n{s.label} ({s.code}): {NIGHTS} nights", flush=True)
        try:
            run_nights(s, world, work, NIGHTS, BASELINE_NIGHTS if i else 0)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_growth(all_sides, NIGHTS, EVENTS)
    _save(
        "year.json",
        {
            "nights": NIGHTS,
            "events_per_day": EVENTS,
            "start": START,
            "target_ratio": GROWTH_RATIO,
            "target_rss_mb": YEAR_RSS_MB,
            **{s.label: _side_json(s) for s in all_sides},
        },
    )
    for s in all_sides:
        _fail_head(s)
        if s.is_head:
            first, last = s.nights[0], s.nights[-1]
            assert last.wall_s <= GROWTH_RATIO * first.wall_s, (
                f"night {last.night} took {last.wall_s:.1f} s, night 1 {first.wall_s:.1f} s"
            )
            peak = max(n.rss_mb for n in s.nights)
            assert peak <= YEAR_RSS_MB, f"peak RSS {peak:.0f} MB"


@pytest.mark.bench
@pytest.mark.skipif(not BIG, reason="CLEARING_BENCH_BIG=1 runs the 10M-record night")
def test_bench_big_night(tmp_path: Path) -> None:
    world = template(BIG_EVENTS, 1, START)
    all_sides = sides()
    for i, s in enumerate(all_sides):
        work = tmp_path / f"big-{i}"
        print(f"\n{s.label} ({s.code}): one night of {BIG_EVENTS} records", flush=True)
        try:
            run_nights(s, world, work, 1)
            if BIG_REPLAY and s.nights:
                _replay_night(s, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\none night of {BIG_EVENTS} records; target ≤ {BIG_SECONDS:.0f} s, ≤ 4096 MB")
    for s in all_sides:
        if s.nights:
            n = s.nights[0]
            print(
                f"{s.label:<24} {n.records:>9} records: {n.wall_s:7.1f} s wall, "
                f"{n.cpu_s:7.1f} s CPU, peak RSS {n.rss_mb:6.0f} MB"
            )
            print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in n.stages_s.items()))
            print(
                "  stages' peak RSS (MB): "
                + ", ".join(f"{k} {v:.0f}" for k, v in n.stages_rss_mb.items())
            )
            r = s.extra.get("replay")
            if r:
                print(
                    f"  the same night again (a replay): {r['wall_s']:.1f} s wall, "
                    f"{r['cpu_s']:.1f} s CPU, peak RSS {r['rss_mb']:.0f} MB"
                )
        else:
            print(f"{s.label:<24} {s.stopped}")
    _save(
        "big_night.json",
        {
            "events": BIG_EVENTS,
            "target_wall_s": BIG_SECONDS,
            "target_rss_mb": BIG_RSS_MB,
            **{s.label: _side_json(s) for s in all_sides},
        },
    )
    for s in all_sides:
        _fail_head(s)
        if s.is_head:
            n = s.nights[0]
            assert n.wall_s <= BIG_SECONDS, f"{n.wall_s:.1f} s"
            assert n.rss_mb <= BIG_RSS_MB, f"peak RSS {n.rss_mb:.0f} MB"
            r = s.extra.get("replay")
            if r:  # a re-run of a sent night keeps what was sent: no more memory for that
                assert r["rss_mb"] <= BIG_RSS_MB, f"replay peak RSS {r['rss_mb']:.0f} MB"


def _replay_night(s: Side, work: Path) -> None:
    """Run the night of ``work`` again (its files sent: a replay); figures in ``s.extra``.

    ``CLEARING_BENCH_BIG_REPLAY=1``: the analyst's re-run after a problem, on the biggest
    night; what was sent is kept and the re-rating compared with it, partner by partner.
    """
    day = s.nights[0].day
    argv = [*CLEARING, "nightly", "--workdir", str(work), "--date", day, "--json"]
    got = measure(argv, s.code, work.with_name(work.name + "-logs") / f"replay-{day}.jsonl")
    if not got.ok:
        s.stopped = f"the replay of {day} failed: {got.why()}"
        return
    stages = {x["name"]: x["seconds"] for x in got.last.get("stages", []) if "name" in x}
    s.extra["replay"] = {
        "wall_s": got.wall_s,
        "cpu_s": got.cpu_s,
        "rss_mb": got.rss_mb,
        "stages_s": stages,
        "stages_rss_mb": got.stages_rss_mb,
    }


def _close_month(s: Side, work: Path, period: str, key: str, code: Path) -> bool:
    """Run ``clearing monthly`` of ``code`` on ``work``; its figures in ``s.extra[key]``."""
    argv = [*CLEARING, "monthly", "--workdir", str(work)]
    log = work.with_name(work.name + "-logs") / f"{key}.jsonl"
    got = measure([*argv, "--period", period, "--json"], code, log)
    if not got.ok:
        s.stopped = f"{key} {period} failed: {got.why()}"
        return False
    stages = {x["name"]: x["seconds"] for x in got.last.get("stages", []) if "name" in x}
    issues = sorted(p.name for p in (work / "out" / "settlement" / "monthly").glob("*.xlsx"))
    s.extra[key] = {
        "code": str(code),
        "wall_s": got.wall_s,
        "cpu_s": got.cpu_s,
        "rss_mb": got.rss_mb,
        "exit_code": got.exit_code,
        "stages_s": stages,
        "workbooks": issues,  # one: the baseline's figures were the same (no new issue)
    }
    return True


@pytest.mark.bench
def test_bench_monthly_close(tmp_path: Path) -> None:
    world = template(MONTH_EVENTS, MONTH_NIGHTS, START)
    period = START[:7]
    all_sides = sides()
    for i, s in enumerate(all_sides):
        work = tmp_path / f"month-{i}"
        print(f"\n{s.label} ({s.code}): {MONTH_NIGHTS} nights, then the month", flush=True)
        try:
            run_nights(s, world, work, MONTH_NIGHTS)
            if not s.stopped:
                runs = [("monthly", s.code)]
                if MONTH_BASELINE:
                    runs.append((f"monthly_{MONTH_BASELINE}", baseline_checkout(MONTH_BASELINE)))
                for key, code in runs:
                    if not _close_month(s, work, period, key, code):
                        break
        finally:
            shutil.rmtree(work, ignore_errors=True)
    # the month's nights are a growth run of their own (the table of nights 1, 10, 30)
    print_growth(all_sides, MONTH_NIGHTS, MONTH_EVENTS)
    print(
        f"\nmonthly close of {period} over {MONTH_NIGHTS} nights × {MONTH_EVENTS} records; "
        f"target ≤ {MONTHLY_SECONDS:.0f} s (at 30 × 1M)"
    )
    for s in all_sides:
        if "monthly" not in s.extra:
            print(f"{s.label:<24} {s.stopped}")
        walls = [n.wall_s for n in s.nights] or [0.0]
        for key in [k for k in s.extra if k.startswith("monthly")]:
            m = s.extra[key]
            label = s.label if key == "monthly" else f"  same folder, {key.split('_', 1)[1]}"
            print(
                f"{label:<24} monthly {m['wall_s']:6.1f} s wall, {m['cpu_s']:6.1f} s CPU, "
                f"peak RSS {m['rss_mb']:5.0f} MB (the nights: {min(walls):.1f}–{max(walls):.1f} s)"
            )
            print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in m["stages_s"].items()))
            print(f"  workbooks after it: {', '.join(m['workbooks'])}")
    _save(
        "monthly_close.json",
        {
            "nights": MONTH_NIGHTS,
            "events_per_day": MONTH_EVENTS,
            "period": period,
            "target_wall_s": MONTHLY_SECONDS,
            **{s.label: _side_json(s) for s in all_sides},
        },
    )
    for s in all_sides:
        _fail_head(s)
        if s.is_head:
            assert s.extra["monthly"]["wall_s"] <= MONTHLY_SECONDS
