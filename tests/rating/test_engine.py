"""Inbound rating worked by hand: increments, minimum, bands, longest prefix, data, tax.

The tiny world (conftest): TSTA1 has tapDecimalPlaces 5, so a charge of 0.19 SDR is 19000.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from clearing.errors import ConfigError
from clearing.money import charged_units, round_div, tax_value
from clearing.rating.inbound import rate_visitors
from tests.rating.conftest import records

if TYPE_CHECKING:
    from clearing.rating._book import Rates


def rate_one(rates: Rates, **row: Any) -> dict[str, Any]:
    out = rate_visitors(records(row), rates)
    assert out.height == 1
    return out.row(0, named=True)


def test_95s_at_30_1_is_95s_with_a_30s_minimum(tiny_rates: Rates) -> None:
    # TSTA1 moc_local peak: 0.12 SDR per 60 s, 30/1, minimum 30 s.
    # 95 s → 30 + 65 × 1 = 95 s; 0.12 × 95 / 60 = 0.19 SDR exactly → 19000 at 5 dp
    r = rate_one(tiny_rates, record_type="moc", called_number="85291234567", duration=95)
    assert (r["status"], r["service"], r["time_band"]) == ("rated", "moc_local", "peak")
    assert (r["chargeable_units"], r["charged_units"]) == (95, 95)
    assert (r["charge"], r["charge_scale"], r["currency"]) == (19000, 5, "SDR")
    assert r["iot_key"] == "TSTA1/inbound/moc_local/852/peak@2026-01-01"
    assert len(r["iot_version"]) == 16
    # 10 s → the 30 s minimum: 0.12 × 30 / 60 = 0.06 SDR
    r = rate_one(tiny_rates, record_type="moc", called_number="85291234567", duration=10)
    assert (r["charged_units"], r["charge"]) == (30, 6000)


def test_95s_at_60_60_is_120s(tiny_rates: Rates) -> None:
    # TSTA1 moc_home (+33): 0.20 SDR per 60 s, 60/60. 95 s → 60 + 60 = 120 s → 0.40 SDR
    r = rate_one(tiny_rates, record_type="moc", called_number="33612345678", duration=95)
    assert (r["service"], r["charged_units"], r["charge"]) == ("moc_home", 120, 40000)


def test_a_call_crossing_a_band_boundary_is_charged_in_the_band_of_its_start(
    tiny_rates: Rates,
) -> None:
    # Monday 19:59:30 + 95 s ends at 20:01:05, after peak ends (20:00): the whole call is peak,
    # 0.12 × 95 / 60 = 0.19 SDR (not split 30 s peak + 65 s off-peak)
    r = rate_one(
        tiny_rates,
        record_type="moc",
        called_number="85291234567",
        duration=95,
        start="2026-11-23T19:59:30",
    )
    assert (r["time_band"], r["charge"]) == ("peak", 19000)
    # starting at 20:00:00 it is off-peak: 0.06 × 95 / 60 = 0.095 SDR → 9500
    r = rate_one(
        tiny_rates,
        record_type="moc",
        called_number="85291234567",
        duration=95,
        start="2026-11-23T20:00:00",
    )
    assert (r["time_band"], r["charge"]) == ("offpeak", 9500)
    # off-peak wraps past midnight: Tuesday 02:00 is off-peak too
    r = rate_one(
        tiny_rates,
        record_type="moc",
        called_number="85291234567",
        duration=60,
        start="2026-11-24T02:00:00",
    )
    assert (r["time_band"], r["charge"]) == ("offpeak", 6000)  # 0.06 SDR
    # Saturday 10:00 is the weekend band: 0.03 × 60 / 60 = 0.03 SDR
    r = rate_one(
        tiny_rates,
        record_type="moc",
        called_number="85291234567",
        duration=60,
        start="2026-11-21T10:00:00",
    )
    assert (r["time_band"], r["charge"]) == ("weekend", 3000)


@pytest.mark.parametrize(
    ("number", "service", "prefix", "charge"),
    [
        # 95 s at 60/60 → 120 s = 2 minutes
        ("8613912345678", "moc_destination", "8613", 60000),  # 0.30 × 2 = 0.60 SDR
        ("862112345678", "moc_destination", "86", 80000),  # 0.40 × 2 = 0.80 SDR
        ("4412345678", "moc_international", "", 100000),  # 0.50 × 2 = 1.00 SDR
        ("33612345678", "moc_home", "33", 40000),  # 0.20 × 2 = 0.40 SDR
    ],
)
def test_destination_is_the_longest_prefix(
    tiny_rates: Rates, number: str, service: str, prefix: str, charge: int
) -> None:
    r = rate_one(tiny_rates, record_type="moc", called_number=number, duration=95)
    assert (r["service"], r["destination_prefix"], r["charge"]) == (service, prefix, charge)


def test_gprs_in_1_kib_increments(tiny_rates: Rates) -> None:
    # 1 000 000 + 500 000 = 1 500 000 bytes → ceil(1 500 000 / 1024) = 1465 KiB = 1 500 160 B.
    # 2.5 SDR per MiB × 1 500 160 / 1 048 576 = 3.57666015625 SDR → 3.57666 (half up, 5 dp)
    r = rate_one(
        tiny_rates,
        record_type="gprs",
        volume_up=500_000,
        volume_down=1_000_000,
        duration=600,
        apn="internet",
    )
    assert (r["service"], r["chargeable_units"], r["charged_units"]) == (
        "gprs",
        1_500_000,
        1_500_160,
    )
    assert r["charge"] == 357666


def test_tax_is_computed_on_the_rounded_charge(tiny_rates: Rates) -> None:
    # sms_mo: 0.01373 SDR per message, tax 20 % → 0.002746 SDR → 0.00275 at 5 dp (half up)
    r = rate_one(tiny_rates, record_type="sms_mo", called_number="85291234567")
    assert (r["charge"], r["tax_rate"], r["tax"]) == (1373, 2000000, 275)


def test_half_even_rounding_and_partner_by_longest_imsi_prefix(tiny_rates: Rates) -> None:
    # IMSI 2080199… is TSTB2's (7 digits beat TSTA1's 20801). TSTB2 mtc: 0.045 SDR/min per
    # second, 3 dp, half even. 10 s → 0.045 × 10 / 60 = 0.0075 SDR = 7.5 units → 8 (to even);
    # 30 s → 0.0225 = 22.5 units → 22 (to even)
    r = rate_one(tiny_rates, record_type="mtc", duration=10, imsi="208019900000001")
    assert (r["partner"], r["charge_scale"], r["charge"]) == ("TSTB2", 3, 8)
    r = rate_one(tiny_rates, record_type="mtc", duration=30, imsi="208019900000001")
    assert r["charge"] == 22


def test_unrated_rows_say_why_and_are_kept(tiny_rates: Rates) -> None:
    rows = records(
        {"record_type": "moc", "called_number": "85291234567", "duration": 5, "imsi": "99999"},
        {"record_type": "gprs", "imsi": "208019900000001", "volume_up": 1, "volume_down": 1},
        {"record_type": "sms_mo", "called_number": "1", "imsi": "311000000000001"},
    )
    out = rate_visitors(rows, tiny_rates)
    assert out["status"].to_list() == ["unrated"] * 3
    reasons = out["reason"].to_list()
    assert reasons[0] == "no partner for this subscriber (IMSI not in imsi_ranges)"
    assert reasons[1] == "no IOT row for TSTB2 gprs valid on 2026-11-23"
    assert reasons[2] == "no IOT row for 01234 sms_mo valid on 2026-11-23"


def test_cdma_partner_is_rated_in_cents(tiny_rates: Rates) -> None:
    # 01234: 45 cents per started minute: 61 s → 120 s → 0.90 USD
    r = rate_one(
        tiny_rates,
        record_type="moc",
        called_number="85291234567",
        duration=61,
        imsi="311000000000001",
    )
    assert (r["partner"], r["standard"], r["currency"], r["charge_scale"], r["charge"]) == (
        "01234",
        "ciber",
        "USD",
        2,
        90,
    )


def test_python_rules() -> None:
    assert charged_units(95, 30, 30, 1) == 95
    assert charged_units(95, 60, 60, 60) == 120
    assert charged_units(0, 30, 30, 1) == 30
    assert charged_units(0, 0, 1024, 1024) == 0
    assert round_div(15, 2, "half_up") == 8
    assert round_div(15, 2, "half_even") == 8
    assert round_div(45, 2, "half_even") == 22
    assert round_div(11, 10, "up") == 2
    assert round_div(19, 10, "down") == 1
    assert tax_value(2746, 10**7) == 2746
    assert tax_value(1373, 2_000_000) == 275


def test_overlapping_time_bands_are_refused(tiny_rates: Rates) -> None:
    import polars as pl

    bad = pl.concat(
        [
            tiny_rates.iot,
            tiny_rates.iot.filter(pl.col("time_band") == "peak").with_columns(
                pl.lit("late").alias("time_band"), pl.lit(19 * 3600, pl.Int32).alias("band_start")
            ),
        ]
    )
    rates = type(tiny_rates)(
        tiny_rates.root, bad, tiny_rates.agreements, tiny_rates.imsi_ranges, tiny_rates.fx
    )
    with pytest.raises(ConfigError, match="time bands overlap: TSTA1/inbound/moc_local/852/peak"):
        rate_visitors(records({"record_type": "mtc", "duration": 1}), rates)
