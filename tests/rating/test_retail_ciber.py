"""Our subscribers' CIBER usage is billed per sub-number once it has a UTC start (issue 13, 7).

A CIBER record has a local time; the partner's ``utc_offset`` makes it UTC (validation), and
retail rating places it in a bill cycle on our billing clock. Without an offset the event cannot
be billed, and the night says so (an anomaly, exit 1) instead of leaving it silently ``none``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing.rating.retail import rate_retail
from clearing.rating.retail_tables import load_retail_tables
from clearing.samples.subscribers import write_subscriber_sources
from clearing.validate.stage import validate_ciber_file
from tests.validate.ciber.conftest import PARTNER, batch, call, settings_with

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
# a card of the sample subscribers (specs written by write_subscriber_sources): primary number
# 85288892149 on plan DATA_PLUS (voice per second, 60 min MO allowance), bill cycle day 8
IMSI, PRIMARY = "454990001007919", "85288892149"


def test_a_ciber_call_of_ours_is_rated_on_its_utc_start(tmp_path: Path) -> None:
    # 14:30:00 local on 7 December at UTC−5 is 19:30:00 UTC, 03:30 on 8 December on our +0800
    # clock: the cycle that starts on the 8th (read as UTC, it would be the 7th: November's)
    record = call(
        0,
        msid=IMSI,
        mdn=PRIMARY,
        caller_id=PRIMARY,
        call_date=dt.date(2026, 12, 7),
        air_connect_time=dt.time(14, 30, 0),
        air_chargeable_time=180,
    )
    data = batch([record], creation_date=dt.date(2026, 12, 8))
    result, _ = validate_ciber_file(
        data,
        file="CIBER_04172_60099_20261208_101.dat",
        settings=settings_with({PARTNER: {"utc_offset": "-05:00"}}),
        day=dt.date(2026, 12, 8),
    )
    assert result.status == ["accepted"]
    events = result.events.append_column("file", pa.array(["CIBER_04172_60099_20261208_101.dat"]))
    write_subscriber_sources(tmp_path / "rates")
    t = load_retail_tables(tmp_path / "rates")
    lines, summary = rate_retail(
        events,
        t.subscribers,
        t.sub_numbers,
        t.plans,
        t.plans_tiers,
        cycle_of="+0800",
        plan_defaults=t.plan_defaults,
        topups=t.topups,
    )
    (line,) = lines.to_pylist()
    assert line["start_utc"] == dt.datetime(2026, 12, 7, 19, 30, 0, tzinfo=dt.UTC)
    assert line["attribution_rule"] == "primary"
    assert (line["sub_number"], line["plan_id"]) == (PRIMARY, "DATA_PLUS")
    assert line["cycle_start"] == dt.date(2026, 12, 8)
    assert (line["service"], line["units"], line["allowance_units"]) == ("voice_mo", 180, 180)
    assert line["amount"] == 0  # inside the allowance: rated, nothing over it
    assert summary.num_rows == 1


def _night(world: Path, offset: str | None) -> tuple[int, dict[str, Any]]:
    day = "2026-11-22"
    r = _cli("samples", "generate", "--out", str(world), "--events", "300", "--date", day)
    assert r.returncode == 0, r.stderr
    # the sample world gives its CIBER partners an offset: take 04172's out, then set ours
    toml = world / "clearing.toml"
    text = toml.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    at = lines.index("[partners.04172]\n")
    (set_at,) = [i for i in range(at, at + 8) if lines[i].startswith("utc_offset = ")]
    del lines[set_at]
    text = "".join(lines)
    if offset is not None:
        text = text.replace("[partners.04172]\n", f'[partners.04172]\nutc_offset = "{offset}"\n')
    toml.write_text(text, encoding="utf-8")
    r = _cli("nightly", "--workdir", str(world), "--date", day)
    (manifest,) = (world / "runs").glob("*/manifest.json")
    return r.returncode, json.loads(manifest.read_text(encoding="utf-8"))


def _retail_problems(manifest: dict[str, Any]) -> list[str]:
    return [p for p in manifest["problems"] if p.startswith("retail:")]


def test_a_night_without_an_offset_reports_the_unbilled_ciber_usage(tmp_path: Path) -> None:
    code, manifest = _night(tmp_path / "w", None)
    assert code == 1
    (problem,) = _retail_problems(manifest)
    assert "from 04172" in problem
    assert "[partners.04172]" in problem
    assert "utc_offset" in problem
    (retail,) = [s for s in manifest["stages"] if s["name"] == "retail"]
    assert retail["detail"]["no_utc_start"] > 0


def test_a_night_with_the_offset_bills_it(tmp_path: Path) -> None:
    _code, manifest = _night(tmp_path / "w", "-05:00")
    assert _retail_problems(manifest) == []
    lines = pq.read_table(tmp_path / "w/lake/retail/date=2026-11-22/bill_lines.parquet")
    ciber = lines.filter(pc.equal(lines["sender"], "04172")).to_pylist()
    assert ciber, "the sample world has CIBER usage of our subscribers"
    assert all(r["attribution_rule"] != "none" and r["start_utc"] is not None for r in ciber)
