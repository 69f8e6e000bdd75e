"""Re-rating a month: the same tariffs give no delta, a changed price the hand-computed one."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import polars as pl
import pytest

from clearing.errors import ConfigError
from clearing.rating import import_rates, rate_day, rerate
from tests.rating.test_check import events

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.rating.rerate import Rerate

DAY = date(2026, 11, 24)


def _partner_events(workdir: Path) -> None:
    # one accepted TAP-in call of TSTA1: 95 s to +33 at 0.038/min 30/1 → 0.06017 SDR
    ev = events(
        {
            "event_kind": "mobileOriginatedCall",
            "called_number": "33612345678",
            "duration": 95,
            "charge": 6017,
            "local_start": datetime(2026, 11, 23, 9, 0, 0),
        }
    ).with_columns(pl.lit("accepted").alias("status"))
    folder = workdir / "lake" / "events_in" / f"date={DAY}" / "partner=TSTA1"
    folder.mkdir(parents=True)
    ev.write_parquet(folder / "part-0.parquet")


def _set_price(workdir: Path, old: str, new: str) -> None:
    src = workdir / "rates" / "sources" / "iot.csv"
    text = src.read_text(encoding="utf-8")
    assert text.count(old) == 1
    src.write_text(text.replace(old, new), encoding="utf-8")
    import_rates(workdir / "rates")


def test_same_tariffs_no_delta_changed_price_the_difference(tiny_workdir: Path) -> None:
    _partner_events(tiny_workdir)
    summary = rate_day(tiny_workdir, DAY)
    assert (summary.partner_events, summary.iot_breaches) == (1, 0)

    same = rerate(tiny_workdir, "2026-11")
    assert (same.receivable_rows, same.payable_rows) == (8, 1)
    assert same.delta.height == 0
    assert same.changed_rows.height == 0
    report = tiny_workdir / "out" / "rerate" / "rerate_2026-11.csv"
    assert report.read_text().splitlines() == [
        "direction,partner,service,currency,charge_scale,events,changed,old_total,new_total,delta"
    ]

    # our peak local price for TSTA1 visitors: 0.12 → 0.15 SDR/min. R1 (95 s, peak):
    # 0.15 × 95 / 60 = 0.2375 SDR → 23750 instead of 19000: delta +0.04750 (4750)
    _set_price(
        tiny_workdir,
        "TSTA1,inbound,moc_local,852,peak,12345,08:00,20:00,60,120000,",
        "TSTA1,inbound,moc_local,852,peak,12345,08:00,20:00,60,150000,",
    )
    # TSTA1's IOT for our roamers, local calls: 0.038 → 0.040 SDR/min. The TAP-in call
    # (95 s): 0.04 × 95 / 60 = 0.063333… → 0.06333 instead of 0.06017: delta +0.00316 (316)
    _set_price(
        tiny_workdir,
        "TSTA1,outbound,moc_local,33,all,1234567,00:00,24:00,60,38000,",
        "TSTA1,outbound,moc_local,33,all,1234567,00:00,24:00,60,40000,",
    )
    changed = rerate(tiny_workdir, "2026-11")
    rows = changed.delta.to_dicts()
    assert rows == [
        {
            "direction": "payable",
            "partner": "TSTA1",
            "service": "moc_local",
            "currency": "SDR",
            "charge_scale": 5,
            "events": 1,
            "changed": 1,
            "old_total": 6017,
            "new_total": 6333,
            "delta": 316,
        },
        {
            "direction": "receivable",
            "partner": "TSTA1",
            "service": "moc_local",
            "currency": "SDR",
            "charge_scale": 5,
            "events": 1,
            "changed": 1,
            "old_total": 19000,
            "new_total": 23750,
            "delta": 4750,
        },
    ]
    assert changed.changed_rows.height == 2
    assert len(report.read_text().splitlines()) == 3
    assert (tiny_workdir / "lake" / "rerate" / "period=2026-11" / "delta.parquet").exists()


def test_period_must_be_a_month(tiny_workdir: Path) -> None:
    with pytest.raises(ConfigError, match="must be a month YYYY-MM"):
        rerate(tiny_workdir, "2026-13")


def test_a_month_reported_a_day_at_a_time_equals_the_whole_month() -> None:
    """The report of the month's rows in parts (a day each) is the report of all of them.

    The expected report is summed here in plain Python over all the rows at once; the parts
    cut the same rows by date, with partners and changes on both sides of every cut.
    """
    import random
    from collections import defaultdict

    from clearing.rating.delta import delta_report_of_parts

    rnd = random.Random(16)
    rows = pl.DataFrame(
        [
            {
                "direction": rnd.choice(["receivable", "payable"]),
                "date": f"2026-11-{1 + i % 5:02d}",
                "file": f"F{i % 7}",
                "line": i,
                "record_id": None,
                "partner": rnd.choice(["DEUD9", "FRAF9", None]),
                "service": rnd.choice(["voice_mo", "data"]),
                "currency": "EUR",
                "charge_scale": 6,
                "old_status": "rated",
                "new_status": rnd.choice(["rated", "rated", "unrated"]),
                "old_charge": rnd.choice([None, rnd.randrange(10**6)]),
                "new_charge": rnd.choice([None, rnd.randrange(10**6)]),
                "old_tax": 0,
                "new_tax": 0,
                "old_version": "v1",
                "new_version": rnd.choice(["v1", "v2"]),
            }
            for i in range(400)
        ]
    )
    sides = ("charge", "tax", "status", "version")
    sums: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    changed_lines = set()
    for r in rows.iter_rows(named=True):
        key = (r["direction"], r["partner"], r["service"], r["currency"], r["charge_scale"])
        changed = any(r[f"old_{c}"] != r[f"new_{c}"] for c in sides)
        s = sums[key]
        s[0] += 1
        s[1] += changed
        s[2] += r["old_charge"] or 0
        s[3] += r["new_charge"] or 0
        if changed:
            changed_lines.add(r["line"])
    want = {k: (v[0], v[1], v[2], v[3], v[3] - v[2]) for k, v in sums.items() if v[1]}

    parts = [rows.filter(pl.col("date") == d) for d in sorted(set(rows["date"]))]
    got_rows, got = delta_report_of_parts(parts)
    assert len(want) > 3
    assert {tuple(r[:5]): tuple(r[5:]) for r in got.iter_rows()} == want
    assert set(got_rows["line"]) == changed_lines
    assert delta_report_of_parts([])[1].height == 0


def _same_report(a: Rerate, b: Rerate) -> None:
    assert a.delta.to_dicts() == b.delta.to_dicts()
    assert a.changed_rows.drop("changed").to_dicts() == b.changed_rows.drop("changed").to_dicts()
    assert (a.receivable_rows, a.payable_rows) == (b.receivable_rows, b.payable_rows)


def test_a_partner_s_tariff_change_re_rates_that_partner_only(tiny_workdir: Path) -> None:
    # the day's 8 visitor records (conftest's CDRS) and one TAP-in call of TSTA1
    _partner_events(tiny_workdir)
    rate_day(tiny_workdir, DAY)
    same = rerate(tiny_workdir, "2026-11")
    assert same.same_rows == 9  # every row was rated with these tables: none again
    assert rerate(tiny_workdir, "2026-11", full=True).same_rows == 0

    # TSTB2's local calls (R5): 0.10 → 0.12 SDR/min; 120 s → 0.240 SDR instead of 0.200
    _set_price(
        tiny_workdir,
        "TSTB2,inbound,moc_local,852,all,1234567,00:00,24:00,60,100000,",
        "TSTB2,inbound,moc_local,852,all,1234567,00:00,24:00,60,120000,",
    )
    part = rerate(tiny_workdir, "2026-11")
    whole = rerate(tiny_workdir, "2026-11", full=True)
    _same_report(part, whole)
    assert [(r["partner"], r["delta"]) for r in part.delta.to_dicts()] == [("TSTB2", 40)]
    others = sum(
        pl.read_parquet(f).height
        for f in (tiny_workdir / "lake" / "rated_visitors").rglob("*.parquet")
        if f.parent.name != "partner=TSTB2"
    )
    assert others > 0
    # the other partners' files and the TAP-in call (outbound IOT unchanged) are not rated
    # again; TSTB2's file and the unrated rows' (any inbound change can rate them) are
    assert part.same_rows == others + 1


def test_a_rewritten_file_or_other_fx_is_rated_again(tiny_workdir: Path) -> None:
    _partner_events(tiny_workdir)
    rate_day(tiny_workdir, DAY)
    # a file changed after the rating (here: a charge edited in place) is not the file the
    # rate stage recorded: its rows are rated again and the edit shows as a change
    target = next((tiny_workdir / "lake" / "rated_visitors").rglob("partner=TSTB2/*.parquet"))
    rows = pl.read_parquet(target)
    rows.with_columns(pl.col("charge") + 1).write_parquet(target)
    part = rerate(tiny_workdir, "2026-11")
    _same_report(part, rerate(tiny_workdir, "2026-11", full=True))
    assert part.changed_rows.height == rows.height
    assert {r["delta"] for r in part.delta.to_dicts()} == {-1}

    # another fx table: nothing can be trusted, every row is rated again
    src = tiny_workdir / "rates" / "sources" / "fx.csv"
    src.write_text(src.read_text(encoding="utf-8") + "JPY,2026-12-01,16000000,5,test\n")
    import_rates(tiny_workdir / "rates")
    assert rerate(tiny_workdir, "2026-11").same_rows == 0
