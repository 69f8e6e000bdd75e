"""Prepaid plans consume the card's balance in event order, worked by hand.

The card of :mod:`tests.rating.test_retail` (IMSI ...001, bill cycle day 1, billing clock
+0000): its primary number is on ``PRE``, a prepaid plan with no allowance and outgoing voice
at HK$1.00 a started minute (100 cents); its local number stays on the postpaid ``LOCAL``.
Credit (``topups``): HK$10.00 opening on 2026-11-01 00:00, a HK$5.00 top-up on 2026-11-20
12:00. Money in cents.

The day's calls, all on 2026-11-20 (balance before → after):

====  =====  ========  ======  ===============  ==============================
call  time   duration  amount  balance           note
====  =====  ========  ======  ===============  ==============================
A     10:00  180 s     300     1000 → 700
B     11:00  420 s     700     700 → 0           exactly used up: not over
C     11:30   60 s     100     0 → −100          100 beyond the balance
(top-up 12:00: +500)
E     12:30  240 s     400     1500−1100=400 → 0
F     13:00   90 s     200     0 → −200          2 started minutes, all beyond
====  =====  ========  ======  ===============  ==============================
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearing.errors import ConfigError
from clearing.rating.retail import (
    BILL_LINE_SCHEMA,
    SUMMARY_SCHEMA,
    low_balance_crossings,
    write_retail,
)
from tests.cli_run import run_cli

from .test_retail import IMSI, LOCAL, PRIMARY, event, events, flat_tiers, plan, rate, world
from .test_retail_processing_order import deliver

if TYPE_CHECKING:
    from pathlib import Path

DAY1 = date(2026, 11, 20)
DAY2 = date(2026, 11, 21)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def credit(day: str, time: str, amount: int, kind: str = "topup", **kw: Any) -> dict[str, Any]:
    return {
        "imsi": IMSI,
        "day": date.fromisoformat(day),
        "time": time,
        "kind": kind,
        "amount": amount,
        "currency": "HKD",
        "note": None,
    } | kw


CREDIT = [credit("2026-11-01", "00:00", 1000, "opening"), credit("2026-11-20", "12:00", 500)]


def reference(topups: list[dict[str, Any]] | None = None) -> dict[str, pa.Table]:
    ref = world(plan("PRE", kind="prepaid"), tiers=flat_tiers("PRE", 100))
    schema = pa.Table.from_pylist(CREDIT).schema
    ref["topups"] = pa.Table.from_pylist(CREDIT if topups is None else topups, schema=schema)
    return ref


CALLS = (
    ("A", at(20, 10), 180),
    ("B", at(20, 11), 420),
    ("C", at(20, 11, 30), 60),
    ("E", at(20, 12, 30), 240),
    ("F", at(20, 13), 90),
)


def test_each_line_consumes_the_balance_in_event_order() -> None:
    # given in reverse order: rating follows event time, never the input's order
    evs = [event("moc", t, duration=d) for _, t, d in reversed(CALLS)]
    evs.append(event("moc", at(20, 12, 45), duration=60, msisdn=LOCAL))  # postpaid number
    lines, summary = rate(events(*evs), reference())
    mine = lines.filter(pl.col("sub_number") == PRIMARY).sort("start_utc")
    got = [
        (r["amount"], r["balance_after"], r["over_balance_amount"], r["over_balance"])
        for r in mine.to_dicts()
    ]
    assert got == [
        (300, 700, 0, False),  # A
        (700, 0, 0, False),  # B: exactly used up
        (100, -100, 100, True),  # C: nothing left before it
        (400, 0, 0, False),  # E: 1000 + 500 − (300 + 700 + 100) = 400 before it
        (200, -200, 200, True),  # F
    ]
    (local,) = lines.filter(pl.col("sub_number") == LOCAL).to_dicts()
    # the postpaid number of the same card neither consumes nor is flagged
    assert (local["amount"], local["balance_after"], local["over_balance"]) == (100, None, False)
    (row,) = summary.filter(pl.col("plan_id") == "PRE").to_dicts()
    assert (row["over_balance_events"], row["over_balance_amount"]) == (2, 300)
    assert row["amount"] == 300 + 700 + 100 + 400 + 200


def test_a_card_without_credit_is_over_balance_from_its_first_line() -> None:
    lines, _ = rate(events(event("moc", at(20, 10), duration=30)), reference(topups=[]))
    (line,) = lines.to_dicts()
    assert (line["amount"], line["balance_after"], line["over_balance_amount"]) == (100, -100, 100)


def test_credit_in_another_currency_is_refused() -> None:
    ref = reference(topups=[credit("2026-11-01", "00:00", 1000, currency="EUR")])
    with pytest.raises(ConfigError, match=r"topups.*454990000000001.*EUR.*HKD"):
        rate(events(event("moc", at(20, 10), duration=30)), ref)


# --------------------------------------------------------------------------------------------
# through the work folder: carried across days, warnings of the run


def setup(tmp: Path, levels: str = '["8", "2", "0"]') -> None:
    (tmp / "clearing.toml").write_text(
        f'[home]\ntadig = "HKGCL"\ntimezone_offset = "+0000"\n[retail]\nlow_balance = {levels}\n'
    )
    sources = tmp / "rates" / "sources"
    sources.mkdir(parents=True)
    for name, table in reference().items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")


def balances(paths: tuple[Path, Path]) -> list[tuple[Any, ...]]:
    lines = pq.read_table(paths[0]).cast(BILL_LINE_SCHEMA).to_pylist()
    pq.read_table(paths[1]).cast(SUMMARY_SCHEMA)
    return [(r["amount"], r["balance_after"]) for r in sorted(lines, key=lambda r: r["start_utc"])]


def test_the_balance_is_carried_from_the_days_before(tmp_path: Path) -> None:
    setup(tmp_path)
    # processing day 1: calls A and B; day 2: C, E, F (C, E, F happened on 11-20 too)
    deliver(tmp_path, DAY1, "00001", *(event("moc", t, duration=d) for _, t, d in CALLS[:2]))
    deliver(tmp_path, DAY2, "00002", *(event("moc", t, duration=d) for _, t, d in CALLS[2:]))
    assert balances(write_retail(tmp_path, DAY1)) == [(300, 700), (700, 0)]
    # day 2 starts from the 1000 cents days before consumed (not from the full credit)
    assert balances(write_retail(tmp_path, DAY2)) == [(100, -100), (400, 0), (200, -200)]
    spent = pq.read_table(tmp_path / "lake" / "retail" / f"date={DAY2}" / "balances.parquet")
    assert spent.to_pylist() == [
        {"imsi": IMSI, "spent": 300 + 700 + 100 + 400 + 200, "currency": "HKD", "scale": 2}
    ]
    # a re-run of day 2 carries the same state: the same bytes
    lines = tmp_path / "lake" / "retail" / f"date={DAY2}" / "bill_lines.parquet"
    before = lines.read_bytes()
    write_retail(tmp_path, DAY2)
    assert lines.read_bytes() == before


def test_the_three_warning_levels_are_warnings_of_the_retail_verb(tmp_path: Path) -> None:
    setup(tmp_path)
    deliver(tmp_path, DAY1, "00001", *(event("moc", t, duration=d) for _, t, d in CALLS))
    done = run_cli("retail", "--workdir", str(tmp_path), "--date", str(DAY1), "--json")
    # a low balance is the subscriber's business, not a fault of the night: exit 0
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["problems"] == []
    # levels HK$8, HK$2, HK$0 = 800, 200, 0 cents; a crossing: before > level >= after
    #   A 1000 → 700: 8          B 700 → 0: 2 and 0          C 0 → −100: none (not above 0)
    #   E 400 → 0: 2 and 0 (the top-up lifted it above them)  F 0 → −200: none
    said = [
        (p.split("after its event of ")[1][:20], p.split("at or below the HKD ")[1].split(";")[0])
        for p in out["warnings"]
    ]
    # one warning per line, naming every level it crossed
    assert said == [
        ("2026-11-20 10:00:00Z", "8 warning level"),
        ("2026-11-20 11:00:00Z", "2 and 0 warning levels"),
        ("2026-11-20 12:30:00Z", "2 and 0 warning levels"),
    ]
    assert "prepaid card 454990000000001 (number 85251110001) is at HKD 7.00" in out["warnings"][0]
    assert done.stderr.count("warning: retail: prepaid card") == 3


def test_no_levels_no_warnings(tmp_path: Path) -> None:
    setup(tmp_path, levels="[]")
    deliver(tmp_path, DAY1, "00001", *(event("moc", t, duration=d) for _, t, d in CALLS))
    done = run_cli("retail", "--workdir", str(tmp_path), "--date", str(DAY1))
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr


def test_crossings_of_levels_between_two_cents_and_of_a_table_or_a_file(tmp_path: Path) -> None:
    """Levels finer than the card's cents: a crossing is ``before > L >= after`` exactly.

    Worked by hand at scale 2 (cents): level 0.005 is 0.5 cents, level -0.005 is -0.5 cents.
    Line 1: 1 → 0 cents crosses 0.5 (1 > 0.5 >= 0), not -0.5 (0 is above it). Line 2: 0 → -1
    crosses -0.5 only. Line 3: postpaid (no balance): never. Line 4: 3 → 1: crosses neither.
    """
    rows = [
        ("C1", 1, 0, "f", 1),
        ("C1", 1, -1, "f", 2),
        ("C2", 5, None, "f", 3),
        ("C3", 2, 1, "f", 4),
    ]
    lines = pa.table(
        {
            "imsi": [r[0] for r in rows],
            "sub_number": ["852" + r[0] for r in rows],
            "balance_after": pa.array([r[2] for r in rows], pa.int64()),
            "amount": pa.array([r[1] for r in rows], pa.int64()),
            "currency": ["HKD"] * 4,
            "scale": pa.array([2] * 4, pa.int32()),
            "start_utc": pa.array(
                [datetime(2026, 11, 20, 10, i, tzinfo=UTC) for i in range(4)], pa.timestamp("s")
            ),
            "file": [r[3] for r in rows],
            "event_index": pa.array([r[4] for r in rows], pa.int64()),
            "other": ["not read"] * 4,
        }
    )
    levels = [Decimal("0.005"), Decimal("-0.005")]
    got = low_balance_crossings(lines, levels)
    assert [(c.imsi, c.level, c.balance_after, c.line) for c in got] == [
        ("C1", Decimal("0.005"), 0, ("f", 1)),
        ("C1", Decimal("-0.005"), -1, ("f", 2)),
    ]
    path = tmp_path / "lines.parquet"
    pq.write_table(lines, path)
    assert low_balance_crossings(path, levels) == got
    assert low_balance_crossings(lines, []) == []
