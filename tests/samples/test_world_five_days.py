"""A five-day sample world, night by night through ``clearing nightly``: the identity holds."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from clearing.samples.replies import TARIFF_CHANGE
from clearing.samples.workdir import tariff_day

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
DAYS = [DAY + timedelta(days=k) for k in range(5)]


@pytest.mark.slow
def test_five_nights_reconcile_and_the_tariff_change_rates(tmp_path: Path) -> None:
    world = tmp_path / "w"
    r = _cli(
        "samples", "generate", "--out", str(world), "--events", "300",
        "--date", DAY.isoformat(), "--days", "5", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    late = []
    for day in DAYS:
        r = _cli("samples", "deliver", "--workdir", str(world), "--date", day.isoformat())
        assert r.returncode == 0, r.stderr
        assert "note:" not in r.stderr  # every night before it was run: nothing skipped
        r = _cli("nightly", "--workdir", str(world), "--date", day.isoformat(), "--json")
        assert r.returncode in (0, 1), r.stderr  # 1: the planted data problems
        last = json.loads(r.stdout.splitlines()[-1])
        manifest = json.loads(
            (world / "runs" / last["run_id"] / "manifest.json").read_text(encoding="utf-8")
        )
        rec = manifest["reconciliation"]
        assert rec["difference"] == 0, (day, rec)
        late.append(rec["late"])
    assert late[0] == 0
    assert all(n > 0 for n in late[1:]), late  # late records every later day
    # the tariff change: 1-based day ceil(5/2) + 1 = 4, valid from that day (local date)
    change = DAYS[tariff_day(5) or 0]
    assert change == DAYS[3]
    rated = pl.read_parquet(
        world / "lake" / "rated_visitors" / "**" / "*.parquet", hive_partitioning=True
    ).filter(
        (pl.col("partner") == TARIFF_CHANGE.partner)
        & (pl.col("service") == TARIFF_CHANGE.service)
        & (pl.col("status") == "rated")
    )
    before = rated.filter(pl.col("start_time").dt.date() < change)
    after = rated.filter(pl.col("start_time").dt.date() >= change)
    assert before.height > 0
    assert after.height > 0
    # one SMS each: 0.014 SDR before the change, 0.016 SDR from it (SDR at price scale 6)
    assert set(before["price"].to_list()) == {14_000}
    assert set(after["price"].to_list()) == {16_000}
    # the month re-rated: only the rows a change can touch are rated again (the tariff
    # change's partner, the files rated before it), and the report is the full re-rating's
    from clearing.rating import rerate

    part = rerate(world, "2026-11")
    whole = rerate(world, "2026-11", full=True)
    assert whole.same_rows == 0
    assert 0 < part.same_rows < part.receivable_rows + part.payable_rows
    assert (part.receivable_rows, part.payable_rows) == (whole.receivable_rows, whole.payable_rows)
    assert part.delta.to_dicts() == whole.delta.to_dicts()
    assert part.changed_rows.drop("changed").sort("direction", "file", "line").to_dicts() == (
        whole.changed_rows.drop("changed").sort("direction", "file", "line").to_dicts()
    )
    assert {r["partner"] for r in part.delta.to_dicts()} <= {TARIFF_CHANGE.partner}
