"""TAP encode → decode: what the columnar TAP encoder writes decodes back to its values.

Hypothesis draws call events (MO, MT and GPRS, every optional element present or absent,
integers of every width the types take) and header values (:mod:`.tap_events`); they are
written by :mod:`clearing.codecs.tap3.encode` (the columnar event writer inside
``encode_batch``) and decoded by asn1tools with the TAP-0312 module compiled in the test from
``specs/asn1`` (not the package's own compiled module): every event and header group must come
back as the value written out by hand from the row. The package's fast decoder must read the
same file to the same event columns.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.codecs.fast import decode_tap
from clearing.codecs.tap3.encode import encode_batch, encode_events

from .tap_events import (
    KINDS,
    OFFSETS,
    audit_of,
    events,
    expected_event,
    headers,
    tap_module,
    value_columns,
)


@settings(deadline=None)
@given(rows=st.lists(events(), min_size=1, max_size=12), header=headers())
def test_events_decode_with_asn1tools_to_their_values(
    rows: list[dict[str, Any]], header: dict[str, Any]
) -> None:
    audit = audit_of(rows)
    data = encode_batch(
        header["batchControlInfo"],
        header["accountingInfo"],
        header["networkInfo"],
        encode_events(value_columns(rows)),
        audit,
    )
    kind, value = tap_module().decode("DataInterChange", data)
    assert kind == "transferBatch"
    assert value["callEventDetails"] == [expected_event(r) for r in rows]
    for group in ("batchControlInfo", "accountingInfo", "networkInfo"):
        assert value[group] == header[group]
    assert value["auditControlInfo"] == audit


def _digits(value: str | None) -> str | None:
    return value or None


@settings(deadline=None)
@given(rows=st.lists(events(), min_size=1, max_size=12), header=headers())
def test_the_fast_decoder_reads_the_same_events(
    rows: list[dict[str, Any]], header: dict[str, Any]
) -> None:
    data = encode_batch(
        header["batchControlInfo"],
        header["accountingInfo"],
        header["networkInfo"],
        encode_events(value_columns(rows)),
        audit_of(rows),
    )
    batch = decode_tap(data)
    assert batch.problems == []
    ev = batch.events.to_pylist()
    assert len(ev) == len(rows)
    for got, r in zip(ev, rows, strict=True):
        mo, gprs = r["shape"] == "mo", r["shape"] == "gprs"
        assert got["event_kind"] == KINDS[r["shape"]]
        assert got["imsi"] == r["imsi"]
        assert got["msisdn"] == _digits(r["msisdn"])
        assert got["called_number"] == (_digits(r["party"]) if mo else None)
        assert got["calling_number"] == (_digits(r["party"]) if r["shape"] == "mt" else None)
        assert got["local_start"] == r["stamp"]
        assert got["utc_offset"] == OFFSETS[r["offset_code"]]
        assert got["duration"] == r["duration"]
        assert got["rec_entity_code"] == r["entity"]
        assert got["location_area"] == r["location_area"]
        assert got["cell_id"] == r["cell_id"]
        assert got["charge"] == r["charge"]
        assert got["tax"] == (r["tax"] if r["taxed"] else None)
        assert got["charged_item"] == r["item"]
        levels = (got["call_type_level1"], got["call_type_level2"], got["call_type_level3"])
        assert levels == r["levels"]
        assert got["data_volume_incoming"] == (r["volume_down"] if gprs else None)
        assert got["data_volume_outgoing"] == (r["volume_up"] if gprs else None)
        assert got["apn_ni"] == (r["apn"] if gprs else None)
        assert got["charging_id"] == (r["charging_id"] if gprs else None)
        assert got["tele_service_code"] == (None if gprs else r["tele"])
        assert got["cause_for_term"] == (None if gprs else r["cause_for_term"])
