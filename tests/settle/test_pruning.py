"""Readers of the lake read only the partitions of their range (issue 16, item 2).

A three-night world across a month end (2026-11-29, 11-30, 12-01) is built through the CLI
(``samples generate --days 3``, ``samples deliver``, ``nightly``). Each verb below then runs on
two copies of it: an untouched one, and one where every lake Parquet file OUTSIDE the verb's
range is overwritten with bytes that are no Parquet file (so reading one is an error). Both
must give the same exit code, the same outputs under ``out/`` (workbooks cell by cell) and the
same manifest figures. A third copy, with one file INSIDE the range made garbage, must fail:
the check can see a read.

Ranges (processing dates):

* ``settle daily --date D``: D only;
* ``rerate --period 2026-11``: the month's dates (11-29, 11-30), never 12-01;
* ``monthly --period 2026-11``: TAP 11-01 … 11-30 and CIBER 10-16 … 11-15, never 12-01;
* the next night (12-01) reads of earlier dates only what the duplicate search and retail's
  lookback need: the accepted events and the key indexes (``events_in``, ``keys_in``,
  ``keys_ciber``, ``cdr_seen``); every other dataset of 11-29 and 11-30 is garbage.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from typing import TYPE_CHECKING

import pytest

from clearing import lake

from ..cli_run import run_cli
from ..test_golden import _manifest_figures, _outputs

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from pathlib import Path

D1, D2, D3 = date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)
GARBAGE = b"this is not a Parquet file " * 4
# what the next night may read of earlier dates (duplicate search, retail's lookback)
#: What a night reads of the days before it: the duplicate key indexes and retail's carried
#: state (summaries and day passes); never the earlier days' events.
_HISTORY = {ds.directory for ds in (lake.KEYS_IN, lake.KEYS_CIBER, lake.CDR_SEEN, lake.RETAIL)}


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    # exit 1: the world's planted data faults (a rejected CIBER batch), not a failure
    assert proc.returncode in (0, 1), proc.stderr


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the world after night 2, the world after night 3): read only, copy to change."""
    root = tmp_path_factory.mktemp("pruning")
    w = root / "w"
    gen = run_cli(
        "samples", "generate", "--out", str(w), "--events", "120", "--date", str(D1), "--days", "3"
    )
    assert gen.returncode == 0, gen.stderr
    _ok(run_cli("nightly", "-w", str(w), "--date", str(D1)))
    assert run_cli("samples", "deliver", "-w", str(w), "--date", str(D2)).returncode == 0
    _ok(run_cli("nightly", "-w", str(w), "--date", str(D2)))
    two = root / "after-night-2"
    shutil.copytree(w, two)
    assert run_cli("samples", "deliver", "-w", str(w), "--date", str(D3)).returncode == 0
    _ok(run_cli("nightly", "-w", str(w), "--date", str(D3)))
    return two, w


def _lake_files(world: Path) -> list[tuple[str, date, Path]]:
    """Every Parquet file of the lake: (dataset folder, processing date, path)."""
    out = []
    for f in sorted((world / "lake").rglob("*.parquet")):
        dataset, part = f.relative_to(world / "lake").parts[:2]
        out.append((dataset, date.fromisoformat(part.removeprefix("date=")), f))
    return out


def _spoil(world: Path, outside: Callable[[str, date], bool]) -> int:
    """Overwrite the lake files for which ``outside(dataset, date)`` holds; how many."""
    spoiled = [f for ds, d, f in _lake_files(world) if outside(ds, d)]
    for f in spoiled:
        f.write_bytes(GARBAGE)
    return len(spoiled)


def _spoil_one(world: Path, dataset: str, day: date) -> Path:
    """Overwrite one file of ``dataset`` of ``day`` (one inside a verb's range)."""
    (victim, *_) = [f for ds, d, f in _lake_files(world) if ds == dataset and d == day]
    victim.write_bytes(GARBAGE)
    return victim


def _copies(src: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(untouched, spoiled outside the range, spoiled inside it): three copies of ``src``."""
    out = (tmp_path / "untouched", tmp_path / "outside", tmp_path / "inside")
    for target in out:
        shutil.copytree(src, target)
    return out


def _results(world: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    return {
        "code": proc.returncode,
        "out": _outputs(world),
        "manifests": _manifest_figures(world),
        "stdout": hashlib.sha256(proc.stdout.replace(str(world), "W").encode()).hexdigest(),
    }


def _same_outside_fails_inside(
    src: Path,
    tmp_path: Path,
    verb: Callable[[Path], subprocess.CompletedProcess[str]],
    outside: Callable[[str, date], bool],
    inside: tuple[str, date],
    *,
    compare_stdout: bool = True,
) -> dict[str, object]:
    untouched, spoiled, broken = _copies(src, tmp_path)
    assert _spoil(spoiled, outside) > 0  # the world has history outside the range
    want = _results(untouched, verb(untouched))
    got = _results(spoiled, verb(spoiled))
    if not compare_stdout:  # a run's summary names its run id (the wall clock)
        want.pop("stdout"), got.pop("stdout")
    assert got == want
    victim = _spoil_one(broken, *inside)
    bad = verb(broken)
    assert bad.returncode not in (0, 1), bad.stdout
    # the garbage file was read: DuckDB names it, Polars says what it lacks
    assert str(victim) in bad.stderr or "must end with PAR1" in bad.stderr, bad.stderr
    return want


def test_daily_settle_reads_only_its_day(worlds: tuple[Path, Path], tmp_path: Path) -> None:
    def settle(w: Path) -> subprocess.CompletedProcess[str]:
        return run_cli("settle", "daily", "-w", str(w), "--date", str(D2), "--run-id", "again")

    want = _same_outside_fails_inside(
        worlds[1], tmp_path, settle, lambda _ds, d: d != D2, (lake.RATED_VISITORS.directory, D2)
    )
    assert want["code"] == 0
    assert f"out/settlement/daily/settlement_daily_HKGCL_{D2}.xlsx" in want["out"]  # type: ignore[operator]


def test_rerate_reads_only_its_month(worlds: tuple[Path, Path], tmp_path: Path) -> None:
    def rerate(w: Path) -> subprocess.CompletedProcess[str]:
        return run_cli("rerate", "-w", str(w), "--period", "2026-11")

    want = _same_outside_fails_inside(
        worlds[1],
        tmp_path,
        rerate,
        lambda _ds, d: d.month != 11,
        (lake.RATED_PARTNER.directory, D1),
    )
    assert want["code"] == 0


def test_monthly_reads_only_its_period(worlds: tuple[Path, Path], tmp_path: Path) -> None:
    def monthly(w: Path) -> subprocess.CompletedProcess[str]:
        return run_cli("monthly", "-w", str(w), "--period", "2026-11")

    want = _same_outside_fails_inside(
        worlds[1],
        tmp_path,
        monthly,
        lambda _ds, d: not date(2026, 10, 16) <= d <= date(2026, 11, 30),
        (lake.EVENTS_IN.directory, D2),
        compare_stdout=False,
    )
    assert want["code"] == 0
    assert "out/settlement/monthly/settlement_monthly_HKGCL_2026-11_v1.xlsx" in want["out"]  # type: ignore[operator]


def test_next_night_reads_only_the_window_it_needs(
    worlds: tuple[Path, Path], tmp_path: Path
) -> None:
    def night(w: Path) -> subprocess.CompletedProcess[str]:
        assert run_cli("samples", "deliver", "-w", str(w), "--date", str(D3)).returncode == 0
        return run_cli("nightly", "-w", str(w), "--date", str(D3))

    want = _same_outside_fails_inside(
        worlds[0],
        tmp_path,
        night,
        lambda ds, d: d < D3 and ds not in _HISTORY,
        # retail carries yesterday's summaries and day passes
        (lake.RETAIL.directory, D2),
        compare_stdout=False,
    )
    assert want["code"] in (0, 1)
    assert f"out/settlement/daily/settlement_daily_HKGCL_{D3}.xlsx" in want["out"]  # type: ignore[operator]
