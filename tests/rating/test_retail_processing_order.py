"""Retail bills the lake's days in processing order, worked by hand on one card.

The card of :mod:`tests.rating.test_retail` (IMSI ...001, bill cycle day 1) on plan ``P``:
10 free minutes of outgoing voice a cycle, then HK$1.00 a minute (60 s increments); data
covered by a HK$5.00 day pass (24 h from the event that opens it). Money in cents.

Processing day 1 (2026-11-21) brings an 8-minute call at 11-20 10:00 and a data session at
11-20 12:00; processing day 2 (2026-11-22) brings late events (earlier than day 1's) and new
ones. Day 2 is billed after day 1, whatever the events' times: day 1's lines are final, and
each sub-number's cycle summary is the sum of its lines.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from clearing.rating.retail import BILL_LINE_SCHEMA, SUMMARY_SCHEMA, write_retail

from .test_retail import PRIMARY, event, events, flat_tiers, plan, world

if TYPE_CHECKING:
    from pathlib import Path

DAY1 = date(2026, 11, 21)
DAY2 = date(2026, 11, 22)
MB = 1 << 20


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def setup(tmp: Path) -> None:
    """The work folder: config and the card's rates as CSV sources."""
    (tmp / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0000"\n')
    p = plan("P", allowance_voice_mo_min=10, day_pass_price=500, day_pass_services="data")
    sources = tmp / "rates" / "sources"
    sources.mkdir(parents=True)
    for name, table in world(p, tiers=flat_tiers("P", price=100)).items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")


def deliver(tmp: Path, day: date, fsn: str, *rows: dict[str, Any]) -> None:
    """One partner file of the day in the lake, its events accepted."""
    table = events(*({**r, "file_sequence_number": fsn} for r in rows))
    name = f"CDFRAF9HKGCL{fsn}"
    table = table.append_column("file", pa.array([name] * table.num_rows))
    table = table.append_column("status", pa.array(["accepted"] * table.num_rows))
    part = tmp / "lake" / "events_in" / f"date={day}" / "partner=FRAF9"
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, part / f"{name}.parquet")


def read(paths: tuple[Path, Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = pl.from_arrow(pq.read_table(paths[0]).cast(BILL_LINE_SCHEMA))
    summary = pl.from_arrow(pq.read_table(paths[1]).cast(SUMMARY_SCHEMA))
    assert isinstance(lines, pl.DataFrame)
    assert isinstance(summary, pl.DataFrame)
    return lines.sort("start_utc").to_dicts(), summary.to_dicts()


def test_a_late_call_uses_what_the_days_before_left_of_the_allowance(tmp_path: Path) -> None:
    setup(tmp_path)
    deliver(tmp_path, DAY1, "00001", event("moc", at(20, 10), duration=480))
    day1, _ = read(write_retail(tmp_path, DAY1))
    # 8 of the 10 free minutes
    assert [(r["allowance_units"], r["overage_units"], r["amount"]) for r in day1] == [(480, 0, 0)]
    before = (tmp_path / "lake" / "retail" / f"date={DAY1}" / "bill_lines.parquet").read_bytes()

    # day 2: a 5-minute call made at 09:00, an hour BEFORE day 1's call (a late file)
    deliver(tmp_path, DAY2, "00002", event("moc", at(20, 9), duration=300))
    lines, summary = read(write_retail(tmp_path, DAY2))
    # it comes after day 1's 480 s: 120 s left in the allowance, 180 s beyond at 100 cents a
    # minute = 300 cents (in event-time order it would have been free and day 1's call would
    # have cost the 300 cents instead, rewriting a line already billed)
    assert [(r["allowance_units"], r["overage_units"], r["amount"]) for r in lines] == [
        (120, 180, 300)
    ]
    # day 1's lines are not rewritten
    day1_path = tmp_path / "lake" / "retail" / f"date={DAY1}" / "bill_lines.parquet"
    assert day1_path.read_bytes() == before
    # the cycle's summary to date: both calls, and it is the sum of the two days' lines
    (row,) = [s for s in summary if s["plan_id"] == "P"]
    assert row["sub_number"] == PRIMARY
    assert row["cycle_start"] == date(2026, 11, 1)
    assert row["events"] == 2
    assert row["voice_mo_units"] == 780
    assert row["voice_mo_allowance_units"] == 600
    assert row["voice_mo_allowance_left"] == 0
    assert row["voice_mo_overage_units"] == 180
    assert row["voice_mo_amount"] == row["amount"] == 0 + 300


def test_a_day_pass_opened_on_an_earlier_day_covers_a_late_session(tmp_path: Path) -> None:
    setup(tmp_path)
    deliver(tmp_path, DAY1, "00001", event("gprs", at(20, 12), mb=1))
    day1, _ = read(write_retail(tmp_path, DAY1))
    assert [(r["day_pass_charged"], r["amount"]) for r in day1] == [(True, 500)]

    deliver(
        tmp_path,
        DAY2,
        "00002",
        event("gprs", at(20, 20), mb=1),  # D: inside day 1's pass (12:00 → 11-21 12:00)
        event("gprs", at(20, 11), mb=1),  # E: before day 1's pass: opens its own
        event("gprs", at(21, 11, 30), mb=1),  # F: inside day 1's pass (and after E's)
        event("gprs", at(21, 13), mb=1),  # G: after both windows: opens a pass
    )
    lines, summary = read(write_retail(tmp_path, DAY2))
    got = [(r["start_utc"], r["day_pass_charged"], r["day_pass_start"], r["amount"]) for r in lines]
    naive = [
        (t.replace(tzinfo=None), c, s.replace(tzinfo=None), a)
        for t, c, s, a in (
            (at(20, 11), True, at(20, 11), 500),
            (at(20, 20), False, at(20, 12), 0),
            (at(21, 11, 30), False, at(20, 12), 0),
            (at(21, 13), True, at(21, 13), 500),
        )
    ]
    assert [(t.replace(tzinfo=None), c, s.replace(tzinfo=None), a) for t, c, s, a in got] == naive
    (row,) = [s for s in summary if s["plan_id"] == "P"]
    # three passes in the cycle: day 1's and two of day 2's; no data allowance used
    assert (row["day_passes"], row["day_pass_amount"], row["amount"]) == (3, 1500, 1500)
    assert row["data_units"] == 5 * MB
    assert row["events"] == 5


def test_a_day_whose_retail_never_ran_is_billed_first(tmp_path: Path) -> None:
    """Day 2 runs while day 1 was never billed: day 1 is billed first, then day 2 after it."""
    setup(tmp_path)
    deliver(tmp_path, DAY1, "00001", event("moc", at(20, 10), duration=480))
    deliver(tmp_path, DAY2, "00002", event("moc", at(20, 9), duration=300))
    lines, summary = read(write_retail(tmp_path, DAY2))
    assert [(r["allowance_units"], r["overage_units"], r["amount"]) for r in lines] == [
        (120, 180, 300)
    ]
    day1 = tmp_path / "lake" / "retail" / f"date={DAY1}"
    day1_lines, _ = read((day1 / "bill_lines.parquet", day1 / "summary.parquet"))
    assert [(r["allowance_units"], r["amount"]) for r in day1_lines] == [(480, 0)]
    # a re-run of day 2 carries the same and writes the same bytes
    paths = write_retail(tmp_path, DAY2)
    again = read(paths)
    assert again == (lines, summary)


def test_a_lake_written_before_the_plan_and_balance_columns_carries_the_same(
    tmp_path: Path,
) -> None:
    """Day 1 billed by an older version (no plan/balance columns): day 2 gives the same lines."""
    new_columns = {
        "plan_version",
        "plan_level",
        "balance_after",
        "over_balance_amount",
        "over_balance",
        "over_balance_events",
    }
    results = []
    for strip in (False, True):
        root = tmp_path / str(strip)
        root.mkdir()
        setup(root)
        deliver(root, DAY1, "00001", event("moc", at(20, 10), duration=480))
        deliver(root, DAY1, "00002", event("gprs", at(20, 12), mb=1))
        write_retail(root, DAY1)
        if strip:
            for name in ("bill_lines.parquet", "summary.parquet"):
                path = root / "lake" / "retail" / f"date={DAY1}" / name
                table = pq.read_table(path)
                pq.write_table(table.drop_columns(new_columns & set(table.column_names)), path)
            (root / "lake" / "retail" / f"date={DAY1}" / "balances.parquet").unlink()
        deliver(root, DAY2, "00003", event("moc", at(20, 9), duration=300))
        deliver(root, DAY2, "00004", event("gprs", at(20, 20), mb=1))
        lines, summary = read(write_retail(root, DAY2))
        # (event indexes differ between the two worlds: `event` numbers every event it makes)
        results.append(
            ([{k: v for k, v in r.items() if k != "event_index"} for r in lines], summary)
        )
    assert results[0] == results[1]
    lines, _ = results[1]
    # the late call after day 1's 480 s (300 cents); the late session inside day 1's pass
    assert [(r["amount"], r["day_pass_charged"]) for r in lines] == [(300, False), (0, False)]
