"""Plans, complete (issue 17, item 2): assignment priority, proration, card-wide day pass.

Hand-built cards, every expected value worked out by hand in the comments. The card is the one
of :mod:`tests.rating.test_retail` (IMSI ...001, bill cycle day 1 unless a test says otherwise,
numbers PRIMARY, LOCAL, VIRTUAL (selection code +86) and DATA (APN corp.vpn)); money is HKD at
scale 2 (integer cents). November 2026 has 30 days: the cycle 2026-11-01 … 2026-11-30 is 30
days long.

Each in-memory rating is also checked against the event-by-event reference engine
(:func:`clearing.rating.retail_reference.rate_rows`), an independent route.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearing.errors import ConfigError
from clearing.rating.retail import write_retail
from clearing.rating.retail_plans import assign_plans, cycle_plans
from clearing.rating.retail_reference import rate_rows
from clearing.rating.retail_tables import RETAIL_TABLES, load_retail_tables, prepare_tables

from .test_retail import (
    DATA,
    IMSI,
    LOCAL,
    PRIMARY,
    VIRTUAL,
    by_time,
    event,
    events,
    flat_tiers,
    plan,
    rate,
    world,
)
from .test_retail_processing_order import DAY1, DAY2, at, deliver, read

SPECS = Path(__file__).parents[2] / "specs" / "rates"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
IMSI2 = "454990000000002"
PRIMARY2 = "85251110002"

# --------------------------------------------------------------------------------------------
# builders


def tables(
    primary_plan: dict[str, Any],
    *,
    numbers: list[dict[str, Any]] | None = None,
    plans: list[dict[str, Any]] = (),  # type: ignore[assignment]
    tiers: list[dict[str, Any]] | None = None,
    group: str | None = None,
    defaults: list[dict[str, Any]] = (),  # type: ignore[assignment]
    second_card: str | None = None,
) -> dict[str, pa.Table]:
    """:func:`world` with the card in ``group``, more ``plans`` (flat tiers at 100 unless
    ``tiers`` gives theirs), the ``plan_defaults`` rows ``defaults``; ``second_card``: a
    second card (IMSI ...002, its primary without a plan) in that group (``""``: no group).
    """
    ref = world(primary_plan, numbers=numbers)
    subs = ref["subscribers"].to_pylist()
    subs[0]["group_id"] = group
    nums = ref["sub_numbers"].to_pylist()
    if second_card is not None:
        subs.append(subs[0] | {"imsi": IMSI2, "msisdn": PRIMARY2, "group_id": second_card or None})
        nums.append(nums[0] | {"imsi": IMSI2, "msisdn": PRIMARY2, "plan_id": None})
    given = {t["plan_id"] for t in tiers or []}
    all_tiers = [t for t in ref["plans_tiers"].to_pylist() if t["plan_id"] not in given]
    all_tiers += tiers or []
    for p in plans:
        if p["plan_id"] not in given:
            all_tiers += flat_tiers(p["plan_id"])
    base = {"group_id": None, "valid_to": None, "note": None}
    return {
        "subscribers": pa.Table.from_pylist(subs),
        "sub_numbers": pa.Table.from_pylist(nums),
        "plans": pa.Table.from_pylist(ref["plans"].to_pylist() + list(plans)),
        "plans_tiers": pa.Table.from_pylist(all_tiers),
        "plan_defaults": pa.Table.from_pylist(
            [base | d for d in defaults],
            schema=pa.schema(
                [
                    ("group_id", pa.string()),
                    ("plan_id", pa.string()),
                    ("valid_from", pa.date32()),
                    ("valid_to", pa.date32()),
                    ("note", pa.string()),
                ]
            ),
        ),
    }


def numbers(**plans: Any) -> list[dict[str, Any]]:
    """The card's four numbers of :func:`world`, with plans (``None``: no plan of its own) and
    extra fields (a dict) per number name (``primary``, ``local``, ``virtual``, ``data``)."""
    rows = {
        "primary": {"msisdn": PRIMARY, "role": "primary", "plan_id": "P"},
        "local": {"msisdn": LOCAL, "role": "local", "plan_id": "LOCAL"},
        "virtual": {
            "msisdn": VIRTUAL,
            "role": "virtual",
            "plan_id": "LOCAL",
            "selection_code": "+86",
        },
        "data": {"msisdn": DATA, "role": "data", "plan_id": "DATA", "apn": "corp.vpn"},
    }
    out = []
    for name, row in rows.items():
        given = plans.get(name, row["plan_id"])
        extra = given if isinstance(given, dict) else {"plan_id": given}
        out.append(row | extra)
    return out


def prepared(ref: dict[str, pa.Table]) -> Any:
    return prepare_tables(
        ref["subscribers"],
        ref["sub_numbers"],
        ref["plans"],
        ref["plans_tiers"],
        ref["plan_defaults"],
    )


def rated(evs: pa.Table, ref: dict[str, pa.Table]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rate on the UTC clock, and check the reference engine gives the same lines."""
    lines, summary = rate(evs, ref)
    again = rate_rows(evs, prepared(ref), cycle_of="+0000")
    keys = (
        "sub_number",
        "attribution_rule",
        "plan_id",
        "plan_version",
        "plan_level",
        "cycle_start",
        "units",
        "allowance_units",
        "overage_units",
        "day_pass_charged",
        "amount",
    )
    mine = {(r["file_sequence_number"], r["event_index"]): r for r in lines.to_dicts()}
    for r in again:
        line = mine[(r["file_sequence_number"], r["event_index"])]
        assert {k: line[k] for k in keys} == {k: r[k] for k in keys}
    return lines, summary


def got(line: dict[str, Any]) -> tuple[Any, ...]:
    return (line["allowance_units"], line["overage_units"], line["amount"])


# --------------------------------------------------------------------------------------------
# proration of allowances


def test_a_number_starting_mid_cycle_gets_a_prorated_allowance() -> None:
    # LOCAL starts on 2026-11-12 on plan LOC: 10 received minutes and 10 SMS sent a cycle,
    # then HK$1.00 a minute (started minutes) / HK$1.00 an SMS.
    # active days: 2026-11-12 … 2026-11-30 = 19 of the cycle's 30 days
    #   voice_mt: 10 min × 60 s × 19 / 30 = 380 s (exact)
    #   sms_mo:   10 × 19 / 30 = 6.33… → 6 messages (floor)
    loc = plan("LOC", allowance_voice_mt_min=10, allowance_sms_mo=10, valid_from=date(2026, 1, 1))
    ref = tables(
        plan("P"),
        numbers=numbers(local={"plan_id": "LOC", "valid_from": date(2026, 11, 12)}),
        plans=[loc],
    )
    lines, summary = rated(
        events(
            # 6 min 50 s → 7 started minutes = 420 s: free on a full cycle (600 s), here
            # 380 s of the allowance and 40 s beyond: 40 × 100 / 60 = 66.67 → 67 cents
            event("mtc", T0, msisdn=LOCAL, duration=410),
            *(event("sms_mo", T0 + timedelta(minutes=10 + i), msisdn=LOCAL) for i in range(7)),
        ),
        ref,
    )
    call, *sms = by_time(lines)
    assert (call["units"], *got(call)) == (420, 380, 40, 67)
    assert (call["plan_id"], call["plan_level"], call["plan_version"]) == (
        "LOC",
        "user",
        date(2026, 1, 1),
    )
    # 6 SMS in the prorated allowance, the 7th at 100 cents
    assert [got(s) for s in sms] == [(1, 0, 0)] * 6 + [(0, 1, 100)]
    (row,) = summary.filter(pl.col("sub_number") == LOCAL).to_dicts()
    assert (row["voice_mt_allowance_units"], row["voice_mt_allowance_left"]) == (380, 0)
    assert (row["sms_mo_allowance_units"], row["sms_mo_allowance_left"]) == (6, 0)
    assert row["amount"] == 67 + 100
    assert (row["plan_level"], row["plan_version"]) == ("user", date(2026, 1, 1))


def test_a_plan_change_mid_cycle_prorates_both_accounts() -> None:
    # PRIMARY is on OLD until 2026-11-11 (exclusive), on NEW from 2026-11-11:
    #   OLD: 2026-11-01 … 11-10 = 10 days; 6 outgoing minutes × 60 × 10 / 30 = 120 s,
    #        then HK$2.00 a minute
    #   NEW: 2026-11-11 … 11-30 = 20 days; 9 outgoing minutes × 60 × 20 / 30 = 360 s,
    #        then HK$1.50 a minute; its plans row is valid from 2026-06-01 (the plan version)
    old = plan("OLD", allowance_voice_mo_min=6)
    new = plan("NEW", allowance_voice_mo_min=9, valid_from=date(2026, 6, 1))
    nums = numbers(primary={"plan_id": "OLD", "valid_to": date(2026, 11, 11)})
    nums.append(nums[0] | {"plan_id": "NEW", "valid_from": date(2026, 11, 11), "valid_to": None})
    ref = tables(
        old, numbers=nums, plans=[new], tiers=flat_tiers("OLD", 200) + flat_tiers("NEW", 150)
    )
    lines, summary = rated(
        events(
            # 11-05, 3 min = 180 s on OLD: 120 s allowance, 60 s at 200 cents/min = 200
            event("moc", datetime(2026, 11, 5, 9, tzinfo=UTC), duration=180),
            # 11-20, 7 min = 420 s on NEW: 360 s allowance, 60 s at 150 cents/min = 150
            event("moc", datetime(2026, 11, 20, 9, tzinfo=UTC), duration=420),
        ),
        ref,
    )
    a, b = by_time(lines)
    assert (a["plan_id"], a["plan_version"], *got(a)) == ("OLD", date(2024, 1, 1), 120, 60, 200)
    assert (b["plan_id"], b["plan_version"], *got(b)) == ("NEW", date(2026, 6, 1), 360, 60, 150)
    rows = {r["plan_id"]: r for r in summary.to_dicts()}
    assert rows["OLD"]["voice_mo_allowance_units"] == 120
    assert rows["NEW"]["voice_mo_allowance_units"] == 360
    assert (rows["OLD"]["amount"], rows["NEW"]["amount"]) == (200, 150)


def test_cycle_fees_are_prorated_and_rounded_half_up() -> None:
    # fees a cycle: P 4800 (PRIMARY, the whole cycle), LOC 1005 (LOCAL from 11-12: 19 days),
    # DATA 3000 (the DATA number ends on 11-11, exclusive: 10 days), LOCAL (VIRTUAL): 0
    #   PRIMARY: 4800 × 30 / 30 = 4800
    #   LOCAL:   1005 × 19 / 30 = 19095 / 30 = 636.5 → 637 (half up)
    #   DATA:    3000 × 10 / 30 = 1000
    # tax_bp is passed through (P: 1000 = 10 %)
    ref = tables(
        plan("P", fee=4800, tax_bp=1000),
        numbers=numbers(
            local={"plan_id": "LOC", "valid_from": date(2026, 11, 12)},
            data={"valid_to": date(2026, 11, 11)},
        ),
        plans=[plan("LOC", fee=1005)],
    )
    ref["plans"] = pa.Table.from_pylist(
        [p | ({"fee": 3000} if p["plan_id"] == "DATA" else {}) for p in ref["plans"].to_pylist()]
    )
    out = cycle_plans(prepared(ref), "2026-11").to_pylist()
    got_ = {r["sub_number"]: r for r in out}
    assert set(got_) == {PRIMARY, LOCAL, VIRTUAL, DATA}
    want = {
        PRIMARY: ("P", 30, 30, 4800, 1000),
        LOCAL: ("LOC", 19, 30, 637, 0),
        DATA: ("DATA", 10, 30, 1000, 0),
        VIRTUAL: ("LOCAL", 30, 30, 0, 0),
    }
    for number, (plan_id, active, days, fee, tax) in want.items():
        r = got_[number]
        assert (r["plan_id"], r["active_days"], r["cycle_days"], r["fee"], r["tax_bp"]) == (
            plan_id,
            active,
            days,
            fee,
            tax,
        ), number
        assert (r["cycle_start"], r["cycle_last_day"]) == (date(2026, 11, 1), date(2026, 11, 30))
        assert r["plan_level"] == "user"
    # December: LOCAL the whole cycle (31 days): the full 1005; DATA has ended: no row
    dec = {r["sub_number"]: r for r in cycle_plans(prepared(ref), "2026-12").to_pylist()}
    assert (dec[LOCAL]["active_days"], dec[LOCAL]["cycle_days"], dec[LOCAL]["fee"]) == (
        31,
        31,
        1005,
    )
    assert DATA not in dec
    with pytest.raises(ConfigError, match="YYYY-MM"):
        cycle_plans(prepared(ref), "2026-13")


def test_a_plan_change_mid_cycle_prorates_both_fees() -> None:
    # PRIMARY on OLD (fee 3000) 11-01 … 11-10 and on NEW (fee 4500) from 11-11:
    #   OLD: 3000 × 10 / 30 = 1000;  NEW: 4500 × 20 / 30 = 3000
    nums = numbers(primary={"plan_id": "OLD", "valid_to": date(2026, 11, 11)})
    nums.append(nums[0] | {"plan_id": "NEW", "valid_from": date(2026, 11, 11), "valid_to": None})
    ref = tables(plan("OLD", fee=3000), numbers=nums, plans=[plan("NEW", fee=4500)])
    rows = [r for r in cycle_plans(prepared(ref), "2026-11").to_pylist() if r["imsi"] == IMSI]
    fees = {r["plan_id"]: (r["active_days"], r["fee"]) for r in rows if r["sub_number"] == PRIMARY}
    assert fees == {"OLD": (10, 1000), "NEW": (20, 3000)}


# --------------------------------------------------------------------------------------------
# assignment priority


def test_group_default_from_a_later_day_falls_back_to_the_global_one_before() -> None:
    # the card is in group ACME; PRIMARY has no plan of its own, LOCAL has LOCAL (user).
    # defaults: global GBASE from 2024-01-01; ACME's CORP from 2026-11-16.
    # PRIMARY: GBASE (global) until 11-15, CORP (group) from 11-16; a second card in group
    # GLOBEX (which has no default) takes the global GBASE all along.
    # CORP has two versions: 2024-01-01 (HK$3.00/min) and 2026-11-20 (HK$9.00/min); its cycle's
    # anchor day is 11-16 (the first day PRIMARY has CORP), so November is rated with the
    # 2024-01-01 version, even for a call on 11-25. GBASE: HK$2.00/min. LOCAL: HK$1.00/min.
    corp1 = plan("CORP", valid_to=date(2026, 11, 20))
    corp2 = plan("CORP", valid_from=date(2026, 11, 20))
    tiers = flat_tiers("GBASE", 200)
    tiers += [t | {"valid_to": date(2026, 11, 20)} for t in flat_tiers("CORP", 300)]
    tiers += [t | {"valid_from": date(2026, 11, 20)} for t in flat_tiers("CORP", 900)]
    ref = tables(
        plan("P"),
        numbers=numbers(primary=None),
        plans=[plan("GBASE"), corp1, corp2],
        tiers=tiers,
        group="ACME",
        defaults=[
            {"plan_id": "GBASE", "valid_from": date(2024, 1, 1), "note": "global"},
            {"group_id": "ACME", "plan_id": "CORP", "valid_from": date(2026, 11, 16)},
        ],
        second_card="GLOBEX",
    )
    # assign_plans cuts PRIMARY's one row on 2026-11-16
    resolved = assign_plans(prepared(ref)).to_pylist()
    mine = [
        (r["plan_id"], r["plan_level"], r["valid_from"], r["valid_to"])
        for r in resolved
        if r["msisdn"] == PRIMARY
    ]
    assert mine == [
        ("GBASE", "global", date(2024, 1, 1), date(2026, 11, 16)),
        ("CORP", "group", date(2026, 11, 16), None),
    ]
    other = [(r["plan_id"], r["plan_level"]) for r in resolved if r["msisdn"] == PRIMARY2]
    assert other == [("GBASE", "global")]
    assert [r["plan_level"] for r in resolved if r["msisdn"] == LOCAL] == ["user"]

    lines, summary = rated(
        events(
            event("moc", datetime(2026, 11, 10, 9, tzinfo=UTC), duration=120),  # GBASE: 400
            event("moc", datetime(2026, 11, 25, 9, tzinfo=UTC), duration=120),  # CORP v1: 600
            event("moc", datetime(2026, 11, 25, 10, tzinfo=UTC), msisdn=LOCAL, duration=120),
            event(
                "moc",
                datetime(2026, 11, 25, 11, tzinfo=UTC),
                imsi=IMSI2,
                msisdn=PRIMARY2,
                duration=60,
            ),  # GBASE: 200
        ),
        ref,
    )
    out = [
        (r["sub_number"], r["plan_id"], r["plan_level"], r["plan_version"], r["amount"])
        for r in by_time(lines)
    ]
    assert out == [
        (PRIMARY, "GBASE", "global", date(2024, 1, 1), 400),
        (PRIMARY, "CORP", "group", date(2024, 1, 1), 600),
        (LOCAL, "LOCAL", "user", date(2024, 1, 1), 200),  # 2 min × 100: its own plan wins
        (PRIMARY2, "GBASE", "global", date(2024, 1, 1), 200),
    ]
    levels = {(r["sub_number"], r["plan_id"]): r["plan_level"] for r in summary.to_dicts()}
    assert levels == {
        (PRIMARY, "GBASE"): "global",
        (PRIMARY, "CORP"): "group",
        (LOCAL, "LOCAL"): "user",
        (PRIMARY2, "GBASE"): "global",
    }
    # fees (none set) aside, cycle_plans sees the same split: 15 days each
    days = {
        (r["sub_number"], r["plan_id"]): (r["plan_level"], r["active_days"])
        for r in cycle_plans(prepared(ref), "2026-11").to_pylist()
    }
    assert days[(PRIMARY, "GBASE")] == ("global", 15)  # 11-01 … 11-15
    assert days[(PRIMARY, "CORP")] == ("group", 15)  # 11-16 … 11-30


def test_an_explicit_plan_beats_the_group_default() -> None:
    # group ACME's default is CORP (HK$3.00/min); PRIMARY has its own plan P (HK$1.00/min);
    # DATA has none: it takes CORP (1 MB at HK$3.00/MB = 300)
    ref = tables(
        plan("P"),
        numbers=numbers(data=None),
        plans=[plan("CORP"), plan("GBASE")],
        tiers=flat_tiers("CORP", 300),
        group="ACME",
        defaults=[
            {"group_id": "ACME", "plan_id": "CORP", "valid_from": date(2024, 1, 1)},
            {"plan_id": "GBASE", "valid_from": date(2024, 1, 1)},
        ],
    )
    lines, _ = rated(
        events(
            event("moc", T0, duration=60),
            event("gprs", T0 + timedelta(minutes=5), apn="corp.vpn", mb=1),
        ),
        ref,
    )
    out = [(r["sub_number"], r["plan_id"], r["plan_level"], r["amount"]) for r in by_time(lines)]
    assert out == [(PRIMARY, "P", "user", 100), (DATA, "CORP", "group", 300)]


def test_a_number_with_no_plan_on_some_day_is_refused() -> None:
    # the global default ends on 2026-11-10 (exclusive) and ACME's starts on 2026-11-16:
    # PRIMARY (no plan of its own) has none from 2026-11-10 to 11-15
    ref = tables(
        plan("P"),
        numbers=numbers(primary=None),
        plans=[plan("CORP"), plan("GBASE")],
        group="ACME",
        defaults=[
            {"plan_id": "GBASE", "valid_from": date(2024, 1, 1), "valid_to": date(2026, 11, 10)},
            {"group_id": "ACME", "plan_id": "CORP", "valid_from": date(2026, 11, 16)},
        ],
    )
    want = (
        rf"number {PRIMARY} \(card {IMSI}\) has no `plan_id`, and no default plan of its "
        r"group `ACME` or global default \(`plan_defaults`\) is valid on 2026-11-10"
    )
    with pytest.raises(ConfigError, match=want):
        assign_plans(prepared(ref))
    with pytest.raises(ConfigError, match=want):
        rate(events(event("moc", T0, duration=60)), ref)


# --------------------------------------------------------------------------------------------
# day pass per card


def card_pass_world() -> dict[str, pa.Table]:
    # PRIMARY and LOCAL on CPASS: a card-wide HK$128.00 pass for outgoing calls and data;
    # VIRTUAL on SPASS: a HK$98.00 pass of its own (sub-number scope); usage otherwise free
    cpass = plan(
        "CPASS", day_pass_price=12800, day_pass_services="voice_mo data", day_pass_scope="card"
    )
    spass = plan(
        "SPASS",
        day_pass_price=9800,
        day_pass_services="voice_mo data",
        day_pass_scope="sub_number",
    )
    return tables(
        cpass,
        numbers=numbers(primary="CPASS", local="CPASS", virtual={"plan_id": "SPASS"}),
        plans=[spass],
        tiers=flat_tiers("CPASS", 0) + flat_tiers("SPASS", 0),
    )


def test_a_card_wide_pass_covers_the_other_numbers_of_the_card() -> None:
    lines, summary = rated(
        events(
            event("gprs", T0, mb=1),  # PRIMARY opens the card's pass: 12800
            # LOCAL, 2 h later: inside the card's window [T0, T0 + 24 h): covered, 0
            event("moc", T0 + timedelta(hours=2), msisdn=LOCAL, duration=60),
            # VIRTUAL (SPASS, its own passes): not covered by the card's, opens one: 9800
            event("moc", T0 + timedelta(hours=3), dialled="+8613800000000", duration=60),
            # LOCAL, 25 h later: outside the window, opens the card's second pass: 12800
            event("moc", T0 + timedelta(hours=25), msisdn=LOCAL, duration=60),
            # PRIMARY, 26 h later: inside LOCAL's pass: covered, 0
            event("gprs", T0 + timedelta(hours=26), mb=1),
        ),
        card_pass_world(),
    )
    out = [
        (r["sub_number"], r["day_pass_charged"], r["day_pass_start"], r["amount"])
        for r in by_time(lines)
    ]
    second = T0 + timedelta(hours=25)
    assert [(n, c, s.replace(tzinfo=UTC), a) for n, c, s, a in out] == [
        (PRIMARY, True, T0, 12800),
        (LOCAL, False, T0, 0),
        (VIRTUAL, True, T0 + timedelta(hours=3), 9800),
        (LOCAL, True, second, 12800),
        (PRIMARY, False, second, 0),
    ]
    passes = {r["sub_number"]: (r["day_passes"], r["amount"]) for r in summary.to_dicts()}
    assert passes == {PRIMARY: (1, 12800), LOCAL: (1, 12800), VIRTUAL: (1, 9800)}
    assert all(x["day_pass_units"] > 0 for x in by_time(lines))
    assert by_time(lines)[1]["day_pass_units"] == 60


def card_pass_workdir(tmp: Path) -> None:
    (tmp / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0000"\n')
    sources = tmp / "rates" / "sources"
    sources.mkdir(parents=True)
    for name, table in card_pass_world().items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")


def test_a_card_wide_pass_of_an_earlier_day_covers_the_other_number(tmp_path: Path) -> None:
    card_pass_workdir(tmp_path)
    # day 1: PRIMARY's session at 11-20 12:00 opens the card's pass (until 11-21 12:00)
    deliver(tmp_path, DAY1, "00001", event("gprs", at(20, 12), mb=1))
    day1, _ = read(write_retail(tmp_path, DAY1))
    assert [(r["sub_number"], r["day_pass_charged"], r["amount"]) for r in day1] == [
        (PRIMARY, True, 12800)
    ]
    deliver(
        tmp_path,
        DAY2,
        "00002",
        # LOCAL at 11-20 20:00 (a late file): inside day 1's card pass: covered, 0
        event("moc", at(20, 20), msisdn=LOCAL, duration=60),
        # VIRTUAL (its own pass) at 11-20 21:00: not covered by the card's pass: 9800
        event("moc", at(20, 21), dialled="+8613800000000", duration=60),
        # LOCAL at 11-21 13:00: after day 1's window: opens the card's next pass, 12800
        event("moc", at(21, 13), msisdn=LOCAL, duration=60),
    )
    lines, summary = read(write_retail(tmp_path, DAY2))
    out = [
        (r["sub_number"], r["day_pass_charged"], r["day_pass_start"], r["amount"]) for r in lines
    ]
    assert out == [
        (LOCAL, False, at(20, 12), 0),
        (VIRTUAL, True, at(20, 21), 9800),
        (LOCAL, True, at(21, 13), 12800),
    ]
    passes = {r["sub_number"]: r["day_passes"] for r in summary}
    assert passes[LOCAL] == 1
    assert passes[VIRTUAL] == 1


def test_a_sub_number_pass_of_an_earlier_day_does_not_cover_the_card(tmp_path: Path) -> None:
    card_pass_workdir(tmp_path)
    # day 1: VIRTUAL (SPASS, sub-number scope) opens ITS pass at 11-20 12:00
    deliver(
        tmp_path, DAY1, "00001", event("moc", at(20, 12), dialled="+8613800000000", duration=60)
    )
    day1, _ = read(write_retail(tmp_path, DAY1))
    assert [(r["sub_number"], r["amount"]) for r in day1] == [(VIRTUAL, 9800)]
    # day 2: LOCAL (CPASS, card-wide) at 11-20 20:00: VIRTUAL's pass is not the card's, so it
    # opens the card's pass: 12800
    deliver(tmp_path, DAY2, "00002", event("moc", at(20, 20), msisdn=LOCAL, duration=60))
    lines, _ = read(write_retail(tmp_path, DAY2))
    assert [(r["sub_number"], r["day_pass_charged"], r["amount"]) for r in lines] == [
        (LOCAL, True, 12800)
    ]


# --------------------------------------------------------------------------------------------
# the importer


def test_imported_plan_defaults_keep_the_global_default(tmp_path: Path) -> None:
    """``plan_defaults`` imported as Parquet: the global row's empty ``group_id`` is stored as
    '' by the importer and must read back as the global default (null)."""
    refdata = pytest.importorskip("clearing.rating._refdata")
    ref = tables(
        plan("P"),
        numbers=numbers(primary=None),
        plans=[plan("CORP"), plan("GBASE")],
        group="ACME",
        defaults=[
            {"plan_id": "GBASE", "valid_from": date(2024, 1, 1), "note": "global"},
            {"group_id": "ACME", "plan_id": "CORP", "valid_from": date(2026, 11, 16)},
        ],
    )
    sources = tmp_path / "sources"
    sources.mkdir()
    for name, table in ref.items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")
    from_csv = load_retail_tables(tmp_path)
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in RETAIL_TABLES:
        shutil.copy(SPECS / f"{name}.csv", specs)
    refdata.import_rates(tmp_path, specs=specs)
    shutil.rmtree(sources)
    stored = pq.read_table(next((tmp_path / "plan_defaults").rglob("*.parquet")))
    assert "" in stored.column("group_id").to_pylist()  # what the importer writes
    from_parquet = load_retail_tables(tmp_path)
    defaults = pl.from_arrow(from_parquet.plan_defaults)
    assert isinstance(defaults, pl.DataFrame)
    assert sorted(defaults["group_id"].to_list(), key=str) == ["ACME", None]
    a = pl.from_arrow(assign_plans(from_csv))
    b = pl.from_arrow(assign_plans(from_parquet))
    assert isinstance(a, pl.DataFrame)
    assert isinstance(b, pl.DataFrame)
    assert a.drop("source_line", strict=False).equals(b.drop("source_line", strict=False))
    primary = b.filter(pl.col("msisdn") == PRIMARY)
    assert primary.select("plan_id", "plan_level").rows() == [
        ("GBASE", "global"),
        ("CORP", "group"),
    ]
