"""Batch tables carry the header groups, checked against values read off the samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing.codecs import fast
from clearing.codecs.batch import batch_tables

CASES = Path(__file__).parent / "cases"


def test_tap_out_accounting_tables() -> None:
    batch = fast.decode_tap((CASES / "Olernov-TAP3_TAP_out.asn1").read_bytes())
    t = batch_tables(batch)
    # SOURCES.md: 2 exchange rates and 6 tax codes; recipient EUR01, FSN 00001, test data
    assert t["exchange_rates"].num_rows == 2
    assert t["taxation"].num_rows == 6
    bc = t["batch_control"].to_pylist()[0]
    assert (bc["sender"], bc["recipient"], bc["file_sequence_number"]) == (None, "EUR01", "00001")
    assert bc["test_data"] is True
    assert bc["release_version_number"] == 12
    audit = t["audit"].to_pylist()[0]
    assert audit["total_charge_refund"] == 795
    assert audit["total_tax_value"] == 1814282
    assert audit["call_event_details_count"] == 109
    assert audit["earliest_call_local"] == "19981024100000"


def test_generated_file_tables_match_events() -> None:
    path = Path(__file__).parents[2] / "data_samples" / "tap" / "CDGBRG9HKGCL00353"
    batch = fast.decode_tap(path.read_bytes())
    t = batch_tables(batch)
    acc = t["accounting"].to_pylist()[0]
    assert acc["local_currency"] == "GBP"
    assert acc["tap_currency"] == "SDR"
    # every exchange-rate code an event uses is defined in the accounting table
    used = set(batch.events.column("exchange_rate_code").drop_null().to_pylist())
    assert used <= set(t["exchange_rates"].column("exchange_rate_code").to_pylist())
    codes = set(t["rec_entities"].column("rec_entity_code").to_pylist())
    assert set(batch.events.column("rec_entity_code").drop_null().to_pylist()) <= codes
    assert t["audit"].column("call_event_details_count")[0].as_py() == batch.events.num_rows


def test_out_of_range_header_value_is_a_decode_error() -> None:
    from clearing.errors import DecodeError

    batch = fast.decode_tap((CASES / "tree-model_tap_3_12_larger_cdr.ber").read_bytes())
    batch.groups["accountingInfo"]["tapDecimalPlaces"] = 1 << 70  # found by the fuzzer
    with pytest.raises(DecodeError, match="header value out of range"):
        batch_tables(batch)
