"""Retail rating over generated worlds: the vectorised rating equals the per-event reference,
and the bill lines add up (units split exactly, amounts = usage + passes, summary = lines).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing.codecs.events import EVENT_SCHEMA
from clearing.rating.retail import rate_retail
from clearing.rating.retail_reference import rate_rows
from clearing.rating.retail_tables import prepare_tables

SERVICES = ("voice_mo", "voice_mt", "sms_mo", "sms_mt", "data")
CARDS = ("454990000000001", "454990000000002")
START = datetime(2026, 10, 25, tzinfo=UTC)


@st.composite
def plans(draw: st.DrawFn, plan_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    covered = draw(st.sets(st.sampled_from(SERVICES)))
    pass_price = draw(st.integers(0, 20_000)) if covered else None
    plan = {
        "plan_id": plan_id,
        "currency": "HKD",
        "scale": 2,
        "allowance_voice_mo_min": draw(st.integers(0, 10)),
        "allowance_voice_mt_min": draw(st.integers(0, 10)),
        "allowance_sms_mo": draw(st.integers(0, 3)),
        "allowance_data_mb": draw(st.integers(0, 50)),
        "voice_increment_s": draw(st.sampled_from((1, 30, 60))),
        "data_increment_kb": draw(st.sampled_from((1, 10, 1024))),
        "day_pass_price": pass_price,
        "day_pass_services": " ".join(sorted(covered)) if covered else None,
        "valid_from": date(2024, 1, 1),
    }
    tiers = []
    for service in SERVICES:
        bounds = sorted(draw(st.sets(st.integers(1, 60), max_size=3)))
        for lo in (0, *bounds):
            price = draw(st.integers(0, 500))
            tiers.append(
                {"plan_id": plan_id, "service": service, "from_units": lo, "price": price}
                | {"valid_from": date(2024, 1, 1)}
            )
    return plan, tiers


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    (p1, t1), (p2, t2) = draw(plans("P1")), draw(plans("P2"))
    subscribers = [
        {"imsi": imsi, "msisdn": f"8525000000{i}", "bill_cycle_day": draw(st.integers(1, 28))}
        | {"valid_from": date(2024, 1, 1)}
        for i, imsi in enumerate(CARDS)
    ]
    numbers: list[dict[str, Any]] = [
        {"msisdn": s["msisdn"], "imsi": s["imsi"], "role": "primary", "plan_id": "P1"}
        for s in subscribers
    ] + [
        {"msisdn": "33600000001", "imsi": CARDS[0], "role": "local", "plan_id": "P2"},
        {"msisdn": "8613900000001", "imsi": CARDS[0], "role": "virtual", "plan_id": "P2"}
        | {"selection_code": "+86"},
        {"msisdn": "85240000001", "imsi": CARDS[1], "role": "data", "plan_id": "P2"}
        | {"apn": "corp.vpn", "valid_from": date(2026, 11, 10)},
    ]
    for n in numbers:
        n.setdefault("valid_from", date(2024, 1, 1))
    msisdns = [None, *(n["msisdn"] for n in numbers)]
    n_events = draw(st.integers(1, 40))
    # distinct seconds: the two implementations order same-second events differently
    seconds = draw(
        st.lists(st.integers(0, 50 * 86400), min_size=n_events, max_size=n_events, unique=True)
    )
    events = []
    for i, sec in enumerate(seconds):
        kind, tele = draw(
            st.sampled_from(
                (
                    ("mobileOriginatedCall", "11"),
                    ("mobileOriginatedCall", "22"),
                    ("mobileTerminatedCall", "11"),
                    ("mobileTerminatedCall", "21"),
                    ("gprsCall", None),
                    ("supplServiceEvent", None),
                )
            )
        )
        volume = draw(st.integers(0, 30 * 2**20)) if kind == "gprsCall" else None
        events.append(
            {
                "source_format": "tap",
                "sender": "FRAF9",
                "file_sequence_number": "00001",
                "event_index": i,
                "event_kind": kind,
                "byte_offset": 0,
                "byte_length": 0,
                "imsi": draw(st.sampled_from((*CARDS, "454990000000009"))),
                "msisdn": draw(st.sampled_from(msisdns)),
                "dialled_digits": draw(st.sampled_from((None, "+8610000", "+3310000")))
                if tele == "11" or tele == "22"
                else None,
                "apn_ni": draw(st.sampled_from(("internet", "Corp.VPN")))
                if volume is not None
                else None,
                "start_utc": START + timedelta(seconds=sec),
                "duration": draw(st.integers(0, 900)) if tele in ("11", None) else 0,
                "data_volume_incoming": volume,
                "data_volume_outgoing": None if volume is None else volume // 7,
                "tele_service_code": tele,
            }
        )
    return {
        "tables": {
            "subscribers": pa.Table.from_pylist(subscribers),
            "sub_numbers": pa.Table.from_pylist(numbers),
            "plans": pa.Table.from_pylist([p1, p2]),
            "plans_tiers": pa.Table.from_pylist(t1 + t2),
        },
        "events": pa.Table.from_pylist(events, schema=EVENT_SCHEMA),
        "cycle_of": draw(st.sampled_from(("+0000", "+0800", "-0500"))),
        "primary_decides": draw(st.booleans()),
    }


KEYS = (
    "sub_number",
    "attribution_rule",
    "plan_id",
    "cycle_start",
    "service",
    "units",
    "allowance_units",
    "overage_units",
    "tier_units",
    "day_pass_units",
    "day_pass_charged",
    "usage_amount",
    "day_pass_amount",
    "amount",
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_vectorised_equals_reference_and_lines_add_up(world: dict[str, Any]) -> None:
    t = world["tables"]
    lines, summary = rate_retail(
        world["events"],
        **t,
        cycle_of=world["cycle_of"],
        primary_msisdn_decides=world["primary_decides"],
    )
    ref = rate_rows(
        world["events"],
        prepare_tables(*t.values()),
        cycle_of=world["cycle_of"],
        primary_msisdn_decides=world["primary_decides"],
    )
    got = {r["event_index"]: tuple(r[k] for k in KEYS) for r in lines.to_pylist()}
    want = {r["event_index"]: tuple(r[k] for k in KEYS) for r in ref}
    assert got == want

    df = pl.DataFrame(pl.from_arrow(lines)).filter(pl.col("attribution_rule") != "none")
    # every counted unit is in exactly one place
    split = df["allowance_units"] + df["overage_units"] + df["day_pass_units"]
    assert (split == df["units"]).all()
    assert (df["tier_units"].list.sum().fill_null(0) == df["overage_units"]).all()
    assert (df["amount"] == df["usage_amount"] + df["day_pass_amount"]).all()
    s = pl.DataFrame(pl.from_arrow(summary))
    assert s["amount"].sum() == df["amount"].sum()
    assert s["events"].sum() == df.height
    assert s["day_passes"].sum() == df["day_pass_charged"].sum()
    assert (s.select(pl.col("^.*_allowance_left$")).min_horizontal() >= 0).all()
