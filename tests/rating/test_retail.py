"""Retail rating per sub-number, worked by hand: every amount is derived in the comments.

One card (IMSI ...001, bill cycle day 1 unless a test says otherwise) with four numbers:

=================  =========  ================  ===========  ========
msisdn             role       selection code    APN          plan
=================  =========  ================  ===========  ========
85251110001        primary                                   (test)
33612345678        local                                     LOCAL
8613912345678      virtual    +86                            LOCAL
85240000001        data                         corp.vpn     DATA
=================  =========  ================  ===========  ========

Money is HKD at scale 2 (integer cents). 1 MB = 1048576 bytes.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from clearing.codecs.events import EVENT_SCHEMA
from clearing.errors import ConfigError
from clearing.rating.retail import BILL_LINE_SCHEMA, SUMMARY_SCHEMA, rate_retail

IMSI = "454990000000001"
PRIMARY = "85251110001"
LOCAL = "33612345678"
VIRTUAL = "8613912345678"
DATA = "85240000001"
MB = 1 << 20
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

# --------------------------------------------------------------------------------------------
# builders


def plan(plan_id: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "plan_id": plan_id,
        "name": plan_id.title(),
        "currency": "HKD",
        "scale": 2,
        "allowance_voice_mo_min": 0,
        "allowance_voice_mt_min": 0,
        "allowance_sms_mo": 0,
        "allowance_data_mb": 0,
        "voice_increment_s": 60,
        "data_increment_kb": 1,
        "day_pass_price": None,
        "day_pass_services": None,
        "valid_from": date(2024, 1, 1),
        "valid_to": None,
    }
    return row | kw


def flat_tiers(plan_id: str, price: int = 100, **prices: int) -> list[dict[str, Any]]:
    """One tier from 0 per service at ``price`` cents per unit (``prices`` override)."""
    return [
        {
            "plan_id": plan_id,
            "service": s,
            "from_units": 0,
            "price": prices.get(s, price),
            "valid_from": date(2024, 1, 1),
            "valid_to": None,
        }
        for s in ("voice_mo", "voice_mt", "sms_mo", "sms_mt", "data")
    ]


def world(
    primary_plan: dict[str, Any],
    *,
    tiers: list[dict[str, Any]] | None = None,
    bill_cycle_day: int = 1,
    numbers: list[dict[str, Any]] | None = None,
) -> dict[str, pa.Table]:
    """The four reference tables: the card, its numbers, plans (the primary's, LOCAL, DATA)."""
    subscribers = [
        {
            "imsi": IMSI,
            "msisdn": PRIMARY,
            "bill_cycle_day": bill_cycle_day,
            "valid_from": date(2024, 1, 1),
            "valid_to": None,
        }
    ]
    base = {"selection_code": None, "apn": None, "label": None, "valid_to": None}
    nums = numbers or [
        {"msisdn": PRIMARY, "role": "primary", "plan_id": primary_plan["plan_id"]},
        {"msisdn": LOCAL, "role": "local", "plan_id": "LOCAL"},
        {"msisdn": VIRTUAL, "role": "virtual", "plan_id": "LOCAL", "selection_code": "+86"},
        {"msisdn": DATA, "role": "data", "plan_id": "DATA", "apn": "corp.vpn"},
    ]
    nums = [base | {"imsi": IMSI, "valid_from": date(2024, 1, 1)} | n for n in nums]
    plans = [primary_plan, plan("LOCAL"), plan("DATA")]
    all_tiers = (tiers or flat_tiers(primary_plan["plan_id"])) + flat_tiers("LOCAL")
    all_tiers += flat_tiers("DATA")
    return {
        "subscribers": pa.Table.from_pylist(subscribers),
        "sub_numbers": pa.Table.from_pylist(nums),
        "plans": pa.Table.from_pylist(plans),
        "plans_tiers": pa.Table.from_pylist(all_tiers),
    }


_INDEX = iter(range(10**9))


def event(
    kind: str,
    at: datetime,
    *,
    msisdn: str | None = PRIMARY,
    imsi: str = IMSI,
    duration: int | None = None,
    mb: float | None = None,
    volume: int | None = None,
    dialled: str | None = None,
    apn: str | None = None,
    tele: str | None = None,
) -> dict[str, Any]:
    """One EVENT_SCHEMA row (only the columns rating reads are set)."""
    kinds = {
        "moc": ("mobileOriginatedCall", "11"),
        "sms_mo": ("mobileOriginatedCall", "22"),
        "mtc": ("mobileTerminatedCall", "11"),
        "sms_mt": ("mobileTerminatedCall", "21"),
        "gprs": ("gprsCall", None),
        "ss": ("supplServiceEvent", None),
    }
    event_kind, code = kinds[kind]
    if mb is not None:
        volume = int(mb * MB)
    return {
        "source_format": "tap",
        "sender": "FRAF9",
        "file_sequence_number": "00001",
        "event_index": next(_INDEX),
        "event_kind": event_kind,
        "byte_offset": 0,
        "byte_length": 0,
        "imsi": imsi,
        "msisdn": msisdn,
        "dialled_digits": dialled,
        "start_utc": at,
        "local_start": at.replace(tzinfo=None) + timedelta(hours=1),
        "duration": duration,
        # a data session's volume, split 3:1 between download and upload
        "data_volume_incoming": None if volume is None else volume - volume // 4,
        "data_volume_outgoing": None if volume is None else volume // 4,
        "tele_service_code": tele or code,
        "apn_ni": apn,
    }


def events(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=EVENT_SCHEMA)


def rate(evs: pa.Table, ref: dict[str, pa.Table], **kw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    kw.setdefault("cycle_of", "+0000")
    lines, summary = rate_retail(evs, **ref, **kw)
    assert lines.schema == BILL_LINE_SCHEMA
    assert summary.schema == SUMMARY_SCHEMA
    lines_df, summary_df = pl.from_arrow(lines), pl.from_arrow(summary)
    assert isinstance(lines_df, pl.DataFrame)
    assert isinstance(summary_df, pl.DataFrame)
    return lines_df, summary_df


def by_time(lines: pl.DataFrame) -> list[dict[str, Any]]:
    return lines.sort("start_utc", "event_index").to_dicts()


# --------------------------------------------------------------------------------------------
# allowance


def test_allowance_runs_out_mid_call() -> None:
    # plan VOICE: 5 outgoing minutes a cycle, per started minute, then HK$2.00 a minute
    ref = world(plan("VOICE", allowance_voice_mo_min=5), tiers=flat_tiers("VOICE", 200))
    lines, summary = rate(
        events(
            event("moc", T0, duration=95),  # 95 s → 2 started minutes: 120 s of the 300 s
            # 4:10 → 5 minutes = 300 s; 180 s (3 min) left → 180 s allowance, 120 s overage
            event("moc", T0 + timedelta(hours=1), duration=250),
        ),
        ref,
    )
    first, second = by_time(lines)
    assert (first["units"], first["allowance_units"], first["overage_units"]) == (120, 120, 0)
    assert first["amount"] == 0
    assert (second["units"], second["allowance_units"], second["overage_units"]) == (300, 180, 120)
    assert second["tier_units"] == [120]
    # 2 minutes × 200 cents = 400 cents = HK$4.00
    assert second["amount"] == 400
    row = summary.row(0, named=True)
    assert row["voice_mo_allowance_units"] == 300
    assert row["voice_mo_allowance_left"] == 0
    assert row["voice_mo_overage_units"] == 120
    assert row["amount"] == 400


def test_per_second_overage_is_rounded_once_half_up() -> None:
    # plan SEC: 1 outgoing minute, per second, then HK$1.50 a minute = 150 cents / 60 s
    ref = world(
        plan("SEC", allowance_voice_mo_min=1, voice_increment_s=1),
        tiers=flat_tiers("SEC", 150),
    )
    lines, _ = rate(
        events(
            event("moc", T0, duration=61),  # 60 s allowance + 1 s: 150 / 60 = 2.5 → 3 (half up)
            event("moc", T0 + timedelta(minutes=5), duration=121),  # 121 × 150 / 60 = 302.5 → 303
        ),
        ref,
    )
    first, second = by_time(lines)
    assert (first["allowance_units"], first["overage_units"], first["amount"]) == (60, 1, 3)
    assert (second["allowance_units"], second["overage_units"], second["amount"]) == (0, 121, 303)


def test_new_bill_cycle_resets_the_allowance() -> None:
    # cycles start on the 15th, on the HKT clock (+0800). 5 outgoing minutes, then HK$2.00/min
    ref = world(
        plan("VOICE", allowance_voice_mo_min=5),
        tiers=flat_tiers("VOICE", 200),
        bill_cycle_day=15,
    )
    lines, summary = rate(
        events(
            # 2026-11-14 10:00 HKT: cycle 2026-10-15 … 2026-11-14; 4 min, within the allowance
            event("moc", datetime(2026, 11, 14, 2, 0, tzinfo=UTC), duration=240),
            # 2026-11-15 04:00 HKT (still the 14th in UTC): the new cycle, a fresh 5 minutes
            event("moc", datetime(2026, 11, 14, 20, 0, tzinfo=UTC), duration=240),
            # 2026-11-16: 1 minute left of the new cycle → 60 s allowance, 180 s at 200 = 600
            event("moc", datetime(2026, 11, 16, 2, 0, tzinfo=UTC), duration=240),
        ),
        ref,
        cycle_of="+0800",
    )
    a, b, c = by_time(lines)
    assert a["cycle_start"] == date(2026, 10, 15)
    assert b["cycle_start"] == c["cycle_start"] == date(2026, 11, 15)
    assert [x["allowance_units"] for x in (a, b, c)] == [240, 240, 60]
    assert [x["amount"] for x in (a, b, c)] == [0, 0, 600]
    assert summary["cycle_start"].to_list() == [date(2026, 10, 15), date(2026, 11, 15)]
    assert summary["cycle_last_day"].to_list() == [date(2026, 11, 14), date(2026, 12, 14)]
    assert summary["voice_mo_allowance_left"].to_list() == [60, 0]
    # on the UTC clock the second call is still in the old cycle: 1 min left there
    lines_utc, _ = rate(
        events(
            event("moc", datetime(2026, 11, 14, 2, 0, tzinfo=UTC), duration=240),
            event("moc", datetime(2026, 11, 14, 20, 0, tzinfo=UTC), duration=240),
        ),
        ref,
        cycle_of="+0000",
    )
    assert [x["amount"] for x in by_time(lines_utc)] == [0, 600]


# --------------------------------------------------------------------------------------------
# tiers


def test_tier_crossing_is_split_within_one_session() -> None:
    # plan TIERED: 50 MB included; beyond it the first 100 MB at HK$0.80/MB, then HK$0.30/MB
    tiers = [t for t in flat_tiers("TIERED") if t["service"] != "data"] + [
        {"plan_id": "TIERED", "service": "data", "from_units": 0, "price": 80},
        {"plan_id": "TIERED", "service": "data", "from_units": 100, "price": 30},
    ]
    for t in tiers:
        t.setdefault("valid_from", date(2024, 1, 1))
        t.setdefault("valid_to", None)
    ref = world(plan("TIERED", allowance_data_mb=50), tiers=tiers)
    lines, summary = rate(
        events(
            # 120 MB: 50 MB allowance, 70 MB in tier 1 → 70 × 80 = 5600 (HK$56.00)
            event("gprs", T0, mb=120),
            # 60 MB, cycle usage 120 → 180 MB: tier 1 ends at 50 + 100 = 150 MB, so 30 MB in
            # tier 1 (30 × 80 = 2400) and 30 MB in tier 2 (30 × 30 = 900): 3300 (HK$33.00)
            event("gprs", T0 + timedelta(hours=2), mb=60),
            # 1.5 MB, all in tier 2: 1.5 × 30 = 45 cents
            event("gprs", T0 + timedelta(hours=3), mb=1.5),
        ),
        ref,
    )
    a, b, c = by_time(lines)
    assert (a["allowance_units"], a["tier_units"], a["amount"]) == (50 * MB, [70 * MB, 0], 5600)
    assert (b["allowance_units"], b["tier_units"], b["amount"]) == (0, [30 * MB, 30 * MB], 3300)
    assert (c["tier_units"], c["amount"]) == ([0, MB + MB // 2], 45)
    row = summary.row(0, named=True)
    assert row["data_units"] == int(181.5 * MB)
    assert row["data_overage_units"] == int(131.5 * MB)
    assert row["data_amount"] == row["amount"] == 5600 + 3300 + 45


def test_data_is_counted_in_started_increments() -> None:
    # 10 KB blocks: 10241 bytes → 2 blocks = 20480 bytes; at HK$1.00/MB: 20480 / 1048576 ×
    # 100 = 1.95 cents → 2
    ref = world(plan("KB", data_increment_kb=10), tiers=flat_tiers("KB", 100))
    lines, _ = rate(events(event("gprs", T0, volume=10241)), ref)
    (line,) = by_time(lines)
    assert (line["unit"], line["units"], line["amount"]) == ("byte", 20480, 2)


# --------------------------------------------------------------------------------------------
# day pass


def test_day_pass_window_of_24_hours_from_the_first_chargeable_event() -> None:
    # plan PASS: HK$98.00 a pass covering outgoing calls and data; SMS received are free
    ref = world(
        plan("PASS", day_pass_price=9800, day_pass_services="voice_mo data"),
        tiers=flat_tiers("PASS", 0),
    )
    lines, summary = rate(
        events(
            event("sms_mt", T0 - timedelta(hours=1)),  # not covered: opens nothing, costs 0
            event("gprs", T0, mb=10),  # t0: opens pass 1 → 9800
            event("moc", T0 + timedelta(hours=23, minutes=59), duration=120),  # covered
            event("gprs", T0 + timedelta(hours=24, minutes=1), mb=5),  # opens pass 2 → 9800
            event("moc", T0 + timedelta(hours=30), duration=60),  # covered by pass 2
        ),
        ref,
    )
    sms, p1, covered, p2, covered2 = by_time(lines)
    assert (sms["day_pass_units"], sms["day_pass_charged"], sms["amount"]) == (0, False, 0)
    assert (p1["day_pass_charged"], p1["day_pass_amount"], p1["amount"]) == (True, 9800, 9800)
    assert p1["day_pass_units"] == 10 * MB
    assert p1["allowance_units"] == p1["overage_units"] == 0
    assert (covered["day_pass_charged"], covered["amount"]) == (False, 0)
    assert covered["day_pass_start"] == p1["start_utc"] == T0
    assert (p2["day_pass_charged"], p2["amount"]) == (True, 9800)
    assert covered2["day_pass_start"] == p2["start_utc"]
    row = summary.row(0, named=True)
    assert (row["day_passes"], row["day_pass_amount"], row["amount"]) == (2, 19600, 19600)


def test_day_pass_boundary_is_exclusive() -> None:
    # an event exactly 24 h after the opener is outside the window [t0, t0 + 24 h)
    ref = world(
        plan("PASS", day_pass_price=9800, day_pass_services="data"), tiers=flat_tiers("PASS", 0)
    )
    lines, _ = rate(
        events(
            event("gprs", T0, mb=1),
            event("gprs", T0 + timedelta(hours=24) - timedelta(seconds=1), mb=1),
            event("gprs", T0 + timedelta(hours=24), mb=1),
        ),
        ref,
    )
    assert [x["day_pass_charged"] for x in by_time(lines)] == [True, False, True]


# --------------------------------------------------------------------------------------------
# attribution


def test_attribution_by_each_rule() -> None:
    ref = world(plan("BASIC"))
    lines, summary = rate(
        events(
            # the VPMN carried the local number: rule msisdn
            event("mtc", T0, msisdn=LOCAL, duration=60),
            # primary MSISDN, dialled +86…: the virtual number's selection code
            event("moc", T0 + timedelta(minutes=1), dialled="+8613800138000", duration=60),
            # primary MSISDN, a session on corp.vpn (case does not matter): the data number
            event("gprs", T0 + timedelta(minutes=2), apn="CORP.VPN", mb=1),
            # nothing else matches: the primary number
            event("moc", T0 + timedelta(minutes=3), dialled="+33140000000", duration=60),
            event("gprs", T0 + timedelta(minutes=4), msisdn=None, apn="internet", mb=1),
            # not one of our cards
            event("moc", T0 + timedelta(minutes=5), imsi="454990009999999", duration=60),
        ),
        ref,
    )
    got = [(x["attribution_rule"], x["sub_number"], x["role"]) for x in by_time(lines)]
    assert got == [
        ("msisdn", LOCAL, "local"),
        ("selection_code", VIRTUAL, "virtual"),
        ("apn", DATA, "data"),
        ("primary", PRIMARY, "primary"),
        ("primary", PRIMARY, "primary"),
        ("none", None, None),
    ]
    none = by_time(lines)[-1]
    assert none["imsi"] == "454990009999999"
    assert none["amount"] is None
    assert none["units"] is None
    # every line (and only attributed ones) is in the summary, per sub-number
    assert summary["events"].sum() == 5
    assert sorted(summary["sub_number"].to_list()) == sorted([LOCAL, VIRTUAL, DATA, PRIMARY])


def test_msisdn_beats_apn_and_primary_msisdn_does_not_decide_by_default() -> None:
    ref = world(plan("BASIC"))
    evs = events(
        # the local number's MSISDN and the data number's APN: the MSISDN wins
        event("gprs", T0, msisdn=LOCAL, apn="corp.vpn", mb=1),
        # the primary MSISDN (as VPMNs write it on nearly everything) and the data APN
        event("gprs", T0 + timedelta(minutes=1), apn="corp.vpn", mb=1),
    )
    lines, _ = rate(evs, ref)
    assert [(x["attribution_rule"], x["sub_number"]) for x in by_time(lines)] == [
        ("msisdn", LOCAL),
        ("apn", DATA),
    ]
    # when the primary MSISDN is taken at its word, it decides before the APN
    lines, _ = rate(evs, ref, primary_msisdn_decides=True)
    assert [(x["attribution_rule"], x["sub_number"]) for x in by_time(lines)] == [
        ("msisdn", LOCAL),
        ("msisdn", PRIMARY),
    ]


def test_longest_selection_code_wins_and_validity_is_respected() -> None:
    base = {"selection_code": None, "apn": None}
    numbers: list[dict[str, Any]] = [
        base | {"msisdn": PRIMARY, "role": "primary", "plan_id": "BASIC"},
        base | {"msisdn": VIRTUAL, "role": "virtual", "plan_id": "LOCAL", "selection_code": "+86"},
        base
        | {
            "msisdn": "8613800000009",
            "role": "virtual",
            "plan_id": "LOCAL",
            "selection_code": "+86138",
        },
        # a local number that starts in December
        base
        | {"msisdn": LOCAL, "role": "local", "plan_id": "LOCAL", "valid_from": date(2026, 12, 1)},
    ]
    ref = world(plan("BASIC"), numbers=numbers)
    lines, _ = rate(
        events(
            event("moc", T0, dialled="+8613812345678", duration=60),
            event("moc", T0 + timedelta(minutes=1), dialled="+8610123456789", duration=60),
            event("mtc", T0 + timedelta(minutes=2), msisdn=LOCAL, duration=60),  # November
            event("mtc", datetime(2026, 12, 1, tzinfo=UTC), msisdn=LOCAL, duration=60),
        ),
        ref,
    )
    got = [(x["attribution_rule"], x["sub_number"]) for x in by_time(lines)]
    assert got == [
        ("selection_code", "8613800000009"),
        ("selection_code", VIRTUAL),
        ("primary", PRIMARY),
        ("msisdn", LOCAL),
    ]


def test_other_events_are_kept_with_no_units() -> None:
    ref = world(plan("BASIC"))
    lines, _ = rate(events(event("ss", T0)), ref)
    (line,) = by_time(lines)
    assert (line["service"], line["unit"], line["units"], line["amount"]) == ("other", None, 0, 0)


# --------------------------------------------------------------------------------------------
# order


def test_input_order_does_not_matter() -> None:
    # plan VOICE: 3 minutes then HK$2.00/min; tiered data; several events in the same second
    tiers = [t for t in flat_tiers("MIX", 200) if t["service"] != "data"] + [
        {"plan_id": "MIX", "service": "data", "from_units": 0, "price": 80},
        {"plan_id": "MIX", "service": "data", "from_units": 10, "price": 30},
    ]
    for t in tiers:
        t |= {"valid_from": date(2024, 1, 1), "valid_to": None}
    ref = world(plan("MIX", allowance_voice_mo_min=3, allowance_data_mb=5), tiers=tiers)
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for i in range(200):
        at = T0 + timedelta(seconds=rng.randrange(0, 3 * 86400, 7))
        if i % 10 == 0:  # same second as the previous one
            at = rows[-1]["start_utc"] if rows else at
        kind = rng.choice(("moc", "mtc", "gprs", "sms_mo"))
        rows.append(event(kind, at, duration=rng.randrange(1, 400), mb=rng.random() * 4))
    forward = rate(events(*rows), ref)
    for seed in (1, 2):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        again = rate(events(*shuffled), ref)
        assert again[0].equals(forward[0])
        assert again[1].equals(forward[1])
    assert forward[1]["amount"].sum() > 0


# --------------------------------------------------------------------------------------------
# errors


def test_a_plan_without_tiers_for_a_used_service_is_refused() -> None:
    ref = world(plan("NODATA"), tiers=[t for t in flat_tiers("NODATA") if t["service"] != "data"])
    with pytest.raises(ConfigError, match=r"plan `NODATA` has no tier from 0 for service `data`"):
        rate(events(event("gprs", T0, mb=1)), ref)


def test_a_plan_without_a_version_for_the_cycle_is_refused() -> None:
    ref = world(plan("LATE", valid_from=date(2026, 11, 10)))
    with pytest.raises(
        ConfigError, match=r"no version of plan `LATE` is valid on 2026-11-01, the first day"
    ):
        rate(events(event("moc", T0, duration=60)), ref)


def test_bad_cycle_of_is_refused() -> None:
    with pytest.raises(ConfigError, match="cycle_of must be a UTC offset"):
        rate(events(), world(plan("BASIC")), cycle_of="HKT")
