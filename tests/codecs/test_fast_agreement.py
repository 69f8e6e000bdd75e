"""The fast decoder agrees with a full asn1tools decode, event by event, column by column.

The reference here walks asn1tools' Python values (member names, not tags or bytes) and the
event offsets come from the pure-Python TLV walker, so it is an independent route.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clearing.codecs import asn1, fast
from clearing.codecs.ber import element_at, iter_children
from clearing.codecs.indefinite import to_indefinite

CASES = Path(__file__).parent / "cases"
SAMPLES = Path(__file__).parents[2] / "data_samples" / "tap"

THIRD_PARTY = [
    "Olernov-TAP3_TAP_out.asn1",
    "libxfsx_asn1c_sample-DataInterChange-1.ber",
    "libxfsx_tap_3_12_negative_volume_fixed.ber",
    "libxfsx_tap_3_12_timestamps.ber",
    "libxfsx_tap_3_12_valid.ber",
    "libxfsx_tap_3_12_valid_att.ber",
    "libxfsx_tap_3_12_valid_most_indef.ber",
    "libxfsx_tap_3_12_valid_some_cdr_indefinite.ber",
    "libxfsx_tap_3_12_valid_removed.ber",
    "libxfsx_tap_3_12_valid_replaced.ber",
    "tree-model_tap_3_12_larger_cdr.ber",
]

STARTS = {
    "callEventStartTimeStamp",
    "serviceStartTimestamp",
    "depositTimeStamp",
    "orderPlacedTimeStamp",
    "lCSRequestTimestamp",
}


def leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Depth-first (member-name path, value) pairs; CHOICEs contribute their alternative name."""
    out: list[tuple[tuple[str, ...], Any]] = []
    if isinstance(value, dict):
        out.append((path, value))
        for k, v in value.items():
            out.extend(leaves(v, (*path, k)))
    elif isinstance(value, list):
        for v in value:
            out.extend(leaves(v, path))
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        out.extend(leaves(value[1], (*path, value[0])))
    else:
        out.append((path, value))
    return out


def bcd(b: bytes) -> str:
    digits = b.hex().upper()
    return digits[:-1] if digits.endswith("F") else digits


def reference_rows(data: bytes) -> list[dict[str, Any]]:
    value = asn1.decode(data).value[1]
    net = value.get("networkInfo", {})
    offsets = {
        x["utcTimeOffsetCode"]: x["utcTimeOffset"].decode()
        for x in net.get("utcTimeOffsetInfo", [])
    }
    rec_ids = {
        x["recEntityCode"]: x.get("recEntityId", b"").decode() for x in net.get("recEntityInfo", [])
    }
    top = element_at(data, 0)
    event_list = next(c for c in iter_children(data, top) if c.key == (1 << 24 | 3))
    tlvs = iter_children(data, event_list)
    rows = []
    for i, (event, tlv) in enumerate(zip(value["callEventDetails"], tlvs, strict=True)):
        kind, body = event
        items = leaves(body)

        def first(name: str, items: list[tuple[tuple[str, ...], Any]] = items) -> Any:
            return next(
                (v for p, v in items if p and p[-1] == name and not isinstance(v, dict)), None
            )

        def total(name: str, items: list[tuple[tuple[str, ...], Any]] = items) -> int | None:
            vals = [v for p, v in items if p and p[-1] == name and isinstance(v, int)]
            return sum(vals) if vals else None

        charges: dict[str, list[int]] = {}
        for _p, v in items:
            if isinstance(v, dict) and "chargeType" in v and "charge" in v:
                charges.setdefault(v["chargeType"].decode(), []).append(v["charge"])
        if kind == "messagingEvent" and "charge" in body:
            charges.setdefault("00", []).append(body["charge"])
        stamp = None
        for p, v in items:
            if (
                isinstance(v, dict)
                and p
                and (
                    p[-1] in STARTS
                    or (
                        kind == "supplServiceEvent"
                        and p[-2:] == ("supplServiceUsed", "chargingTimeStamp")
                    )
                )
            ):
                stamp = v
                break
        local = start_utc = off = None
        if stamp is not None and "localTimeStamp" in stamp:
            local = datetime.strptime(stamp["localTimeStamp"].decode(), "%Y%m%d%H%M%S")
            off = offsets.get(stamp.get("utcTimeOffsetCode"))
            if off is not None:
                minutes = int(off[1:3]) * 60 + int(off[3:5])
                sign = -1 if off[0] == "-" else 1
                start_utc = (local - timedelta(minutes=sign * minutes)).replace(tzinfo=UTC)
        rec = first("recEntityCode")
        if rec is None:
            rec = next(
                (v for p, v in items if p and p[-1] in ("recEntity", "recEntityCodeList")), None
            )
        detail = next(
            (v for p, v in items if p and p[-1] == "chargeDetailTimeStamp" and isinstance(v, dict)),
            None,
        )
        detail_local = (
            datetime.strptime(detail["localTimeStamp"].decode(), "%Y%m%d%H%M%S")
            if detail and "localTimeStamp" in detail
            else None
        )
        refund = any(p and p[-1] == "chargeRefundIndicator" and v == 1 for p, v in items)
        text = first
        rows.append(
            {
                "event_index": i,
                "event_kind": kind,
                "byte_offset": tlv.offset,
                "byte_length": tlv.end - tlv.offset,
                "imsi": bcd(first("imsi")) if first("imsi") is not None else None,
                "msisdn": bcd(first("msisdn")) if first("msisdn") is not None else None,
                "called_number": bcd(first("calledNumber"))
                if first("calledNumber") is not None
                else None,
                "calling_number": bcd(first("callingNumber"))
                if first("callingNumber") is not None
                else None,
                "dialled_digits": text("dialledDigits").decode() if text("dialledDigits") else None,
                "local_start": local,
                "utc_offset": off,
                "start_utc": start_utc,
                "duration": first("totalCallEventDuration"),
                "data_volume_incoming": total("dataVolumeIncoming"),
                "data_volume_outgoing": total("dataVolumeOutgoing"),
                "tele_service_code": _s(first("teleServiceCode")),
                "bearer_service_code": _s(first("bearerServiceCode")),
                "supplementary_service_code": _s(first("supplServiceCode")),
                "apn_ni": _s(first("accessPointNameNI")),
                "apn_oi": _s(first("accessPointNameOI")),
                "rec_entity_code": rec,
                "rec_entity_id": rec_ids.get(rec) if rec is not None else None,
                "serving_network": _s(first("servingNetwork")),
                "location_area": first("locationArea"),
                "cell_id": first("cellId"),
                "charge": sum(charges["00"]) if "00" in charges else None,
                "charge_airtime": sum(charges["01"]) if "01" in charges else None,
                "charge_toll": sum(charges["03"]) if "03" in charges else None,
                "tax": total("taxValue"),
                "discount": total("discount"),
                "camel_fee": total("camelInvocationFee"),
                "refund": refund,
                "exchange_rate_code": first("exchangeRateCode"),
                "charged_item": _s(first("chargedItem")),
                "call_type_level1": first("callTypeLevel1"),
                "call_type_level2": first("callTypeLevel2"),
                "call_type_level3": first("callTypeLevel3"),
                "tax_code": first("taxCode"),
                "tax_items": sum(
                    1
                    for p, v in items
                    if p
                    and p[-1] in ("taxInformation", "taxInformationList")
                    and isinstance(v, dict)
                ),
                "charge_items": sum(
                    1
                    for p, v in items
                    if p
                    and p[-1]
                    in ("chargeInformation", "chargeInformationList", "sessionChargeInfoList")
                    and isinstance(v, dict)
                ),
                "discount_code": first("discountCode"),
                "taxable_amount": total("taxableAmount"),
                "cause_for_term": first("causeForTerm"),
                "charging_id": first("chargingId"),
                "partial_type": _s(first("partialTypeIndicator")),
                "rap_file_sequence_number": _s(first("rapFileSequenceNumber")),
                "charge_detail_local": detail_local,
            }
        )
    return rows


def _s(v: Any) -> str | None:
    return v.decode("latin-1") if isinstance(v, bytes) else v


def assert_agrees(data: bytes) -> int:
    batch = fast.decode_tap(data)
    assert batch.problems == []
    got = batch.events.to_pylist()
    want = reference_rows(data)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for column, expected in w.items():
            assert g[column] == expected, (w["event_index"], column, g[column], expected)
    return len(got)


@pytest.mark.parametrize("name", THIRD_PARTY)
def test_third_party_samples_agree(name: str) -> None:
    assert assert_agrees((CASES / name).read_bytes()) > 0


@pytest.mark.parametrize(
    "path", sorted(p for p in SAMPLES.glob("CD*") if p.stat().st_size > 1000), ids=lambda p: p.name
)
def test_generated_samples_agree(path: Path) -> None:
    assert assert_agrees(path.read_bytes()) > 100


def test_indefinite_lengths_give_the_same_table() -> None:
    path = next(p for p in sorted(SAMPLES.glob("CD*")) if p.stat().st_size > 1000)
    data = path.read_bytes()
    indef = to_indefinite(data)
    assert indef != data
    a = fast.decode_tap(data).events.drop_columns(["byte_offset", "byte_length"])
    b = fast.decode_tap(indef).events.drop_columns(["byte_offset", "byte_length"])
    assert a.equals(b)
    assert_agrees(indef)


def test_small_chunks_give_the_same_table() -> None:
    data = (CASES / "Olernov-TAP3_TAP_out.asn1").read_bytes()
    assert fast.decode_tap(data, chunk_events=7).events.equals(fast.decode_tap(data).events)
