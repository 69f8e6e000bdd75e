"""Clean CIBER batches built with the codec's writer, and ways to break one field of them.

Positions in :func:`Kit.patch` are the 1-based CIBER positions of ciber.md §4, so a test reads
like the layout table it breaks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from clearing.codecs import ciber
from clearing.config import Settings
from clearing.validate.ciber import CiberChecked, check_ciber

DAY = dt.date(2026, 11, 22)
US = "60099"
PARTNER = "04172"
OTHER = "16425"


def settings_with(extra: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Us (60099) and the two CIBER partners of the sample world (``extra``: per partner)."""
    extra = extra or {}
    return Settings.model_validate(
        {
            "home": {"tadig": "HKGCL", "sid_bid": US},
            "partners": {
                PARTNER: {"standard": "ciber", **extra.get(PARTNER, {})},
                OTHER: {"standard": "ciber", **extra.get(OTHER, {})},
                "FRAF9": {"standard": "tap"},
            },
        }
    )


def call(n: int = 0, **changes: Any) -> tuple[str, dict[str, Any]]:
    """A clean type-22 record: an MO call of yesterday, 3 minutes of air time, taxed."""
    air, state, local = 135, 5, 3
    values: dict[str, Any] = {
        "home_sid_bid": US,
        "msid_indicator": 1,
        "msid": f"4549900012345{n:02d}",
        "mdn": f"8529123{n:04d}",
        "esn_indicator": 3,
        "esn": "12345678901234",
        "serving_sid_bid": PARTNER,
        "total_charges_and_taxes": air + state + local,
        "total_state_province_taxes": state,
        "total_local_other_taxes": local,
        "call_date": DAY - dt.timedelta(days=1),
        "call_direction": 1,
        "call_completion_indicator": 2,
        "call_termination_indicator": 2,
        "caller_id": f"8529123{n:04d}",
        "called_number": f"1205555{n:04d}",
        "currency_type": 1,
        "original_batch_sequence_number": 101,
        "initial_cell_site": "C0042",
        "time_zone_indicator": 99,
        "air_connect_time": dt.time(10, 0, n % 60),
        "air_chargeable_time": 180,
        "air_elapsed_time": 170,
        "air_rate_period": 1,
        "air_multi_rate_period": 1,
        "air_charge": air,
        "special_features_used": "0",
        "called_place": "LOCAL",
        "called_country": "USA",
        "serving_place": "MOBILE",
        "serving_state_province": "AL",
        "serving_country": "USA",
        "toll_network_carrier_id": "99001",
    }
    values.update(changes)
    return "22", values


def message(**changes: Any) -> tuple[str, dict[str, Any]]:
    """A clean type-32 record: one SMS in Charge No. 1."""
    values: dict[str, Any] = {
        "home_sid_bid": US,
        "msid_indicator": 1,
        "msid": "454990001234599",
        "mdn": "85291239999",
        "esn_indicator": 3,
        "esn": "12345678901234",
        "serving_sid_bid": PARTNER,
        "total_charges_and_taxes": 17,
        "total_state_province_taxes": 1,
        "total_local_other_taxes": 1,
        "call_date": DAY - dt.timedelta(days=1),
        "call_direction": 1,
        "call_completion_indicator": 2,
        "call_termination_indicator": 2,
        "currency_type": 1,
        "original_batch_sequence_number": 101,
        "time_zone_indicator": 99,
        "charge_no_1_indicator": 15,
        "charge_no_1_connect_time": dt.time(12, 30),
        "charge_no_1_tax_surcharge_indicator": 3,
        "charge_no_1": 15,
        "special_features_used": "0",
    }
    values.update(changes)
    return "32", values


def daily_fee(**changes: Any) -> tuple[str, dict[str, Any]]:
    """A clean type-52 record: yesterday's daily roaming access fee."""
    values: dict[str, Any] = {
        "home_sid_bid": US,
        "msid_indicator": 1,
        "msid": "454990001234598",
        "mdn": "85291239998",
        "esn_indicator": 3,
        "esn": "12345678901234",
        "serving_sid_bid": PARTNER,
        "total_charges_and_taxes": 299 + 12 + 7,
        "total_state_province_taxes": 12,
        "total_local_other_taxes": 7,
        "occ_start_date": DAY - dt.timedelta(days=1),
        "occ_end_date": DAY - dt.timedelta(days=1),
        "occ_interval_indicator": 1,
        "occ_charge": 299,
        "occ_description": "DAILY ROAMING ACCESS FEE",
        "currency_type": 1,
        "original_batch_sequence_number": 101,
        "time_zone_indicator": 99,
        "record_use_indicator": "1",
        "record_create_date": DAY,
    }
    values.update(changes)
    return "52", values


def handoff(**changes: Any) -> tuple[str, dict[str, Any]]:
    """A clean type-42 record (carrier to carrier: we are the receiving carrier)."""
    values: dict[str, Any] = {
        "receiving_sid_bid": US,
        "msid_indicator": 1,
        "msid": "454990001234597",
        "mdn": "85291239997",
        "transaction_code_i": "00001234",
        "translation_code_ii": 1,
        "sending_sid_bid": PARTNER,
        "total_charges_and_taxes": 250,
        "call_date": DAY - dt.timedelta(days=2),
        "currency_type": 1,
        "original_batch_sequence_number": 102,
        "time_zone_indicator": 99,
        "charge_no_1_indicator": 5,
        "charge_no_1_connect_time": dt.time(8, 15),
        "charge_no_1_chargeable_time": 120,
        "charge_no_1": 250,
    }
    values.update(changes)
    return "42", values


def clean_details() -> list[tuple[str, dict[str, Any]]]:
    """Two calls, an SMS and a daily fee: events 0-3 of a batch."""
    return [call(0), call(1), message(), daily_fee()]


def batch(details: list[tuple[str, dict[str, Any]]] | None = None, **header: Any) -> bytes:
    """One type-01/98 batch from 04172 to us (CR LF), sequence 101, USD."""
    args: dict[str, Any] = {
        "creation_date": DAY,
        "batch_sequence_number": 101,
        "sending_sid_bid": PARTNER,
        "receiving_sid_bid": US,
        "currency_type": 1,
    }
    args.update(header)
    return ciber.encode_batch(clean_details() if details is None else details, **args)


def clearinghouse_batch(**trailer: Any) -> bytes:
    """One type-02/97 batch: Syniverse (31103) forwarding 04172's records to us."""
    details = [ciber.encode_record(rt, v) for rt, v in clean_details()]
    total = sum(v["total_charges_and_taxes"] for _, v in clean_details())
    common = {
        "batch_creation_date": DAY,
        "batch_sequence_number": 55,
        "sending_clearinghouse_bid": "31103",
        "original_serving_sid_bid": PARTNER,
        "settlement_period": dt.date(2026, 12, 15),
        "clearinghouse_id": 2,
        "currency_type": 1,
    }
    header = ciber.encode_record(
        "02",
        {
            **common,
            "record_release_number": 25,
            "original_return_indicator": "1",
            "original_home_sid_bid": US,
            "batch_contents": 1,
        },
    )
    trailer_values = {
        **common,
        "total_number_of_records": len(details),
        "batch_total_charges_and_taxes": total,
        "batch_total_charges_and_taxes_sign": "0",
        "original_total_charges_and_taxes_sign": "0",
        "original_home_sid_bid": US,
        "original_batch_sequence_number": 101,
        "original_batch_creation_date": DAY - dt.timedelta(days=1),
        "original_total_number_of_records": len(details),
        "original_total_charges_and_taxes": total,
    }
    trailer_values.update(trailer)
    return b"\r\n".join([header, *details, ciber.encode_record("97", trailer_values)]) + b"\r\n"


def patch(data: bytes, line: int, position: int, text: str) -> bytes:
    """Overwrite ``text`` at 1-based ``position`` of the 1-based ``line`` (CR LF file)."""
    lines = data.split(b"\r\n")
    raw = lines[line - 1]
    lines[line - 1] = raw[: position - 1] + text.encode() + raw[position - 1 + len(text) :]
    return b"\r\n".join(lines)


def check(data: bytes, settings: Settings | None = None, today: dt.date = DAY) -> CiberChecked:
    """Run the validation against the sample world's settings."""
    return check_ciber(
        data,
        file="CIBER_04172_60099_20261122_101.dat",
        settings=settings or settings_with(),
        today=today,
    )


def acted(checked: CiberChecked) -> list[tuple[str, int, int | None]]:
    """The (rule, code, event) of every fatal or severe finding."""
    return [(f.rule, f.code, f.event_index) for f in checked.findings if f.severity != "warning"]


@pytest.fixture
def settings() -> Settings:
    """The sample world's settings."""
    return settings_with()
