"""Hypothesis strategies for TAP 3.12 call events and header groups, and their values.

A drawn event is a plain dict (digits unpadded, None: absent); :func:`value_columns` turns
events into the value columns of the columnar encoder (:mod:`clearing.codecs.tap3.encode`)
and :func:`expected_event` into the asn1tools value of TAP-0312, written out by hand from
the ASN.1 types (an independent definition of what the encoder must write). Used by the TAP
and RAP encode → decode properties.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import asn1tools
import polars as pl
from hypothesis import strategies as st

from clearing.codecs.tap3.encode import SHAPES

SPECS = Path(__file__).parents[2] / "specs" / "asn1"
KINDS = {"mo": "mobileOriginatedCall", "mt": "mobileTerminatedCall", "gprs": "gprsCall"}
OFFSETS = ("+0100", "-0500", "+0545", "+1400")  # UtcTimeOffsetCode n → OFFSETS[n]
ENTITIES = (1, 2, 7)  # RecEntityCodes of the NetworkInfo
TAXES = (0, 3)  # TaxCodes of the AccountingInfo

U31 = st.integers(0, 2**31 - 1)
U63 = st.integers(0, 2**63 - 1)


@cache
def tap_module() -> Any:
    return asn1tools.compile_files([str(SPECS / "TAP-0312.asn")], "ber")


def bcd_digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=min_size, max_size=max_size)


def padded(digits: str) -> str:
    """The BCDString digits the encoder takes: ``F``-padded when odd."""
    return digits + "F" if len(digits) % 2 else digits


def octets(digits: str) -> bytes:
    return bytes.fromhex(padded(digits))


@st.composite
def events(draw: Any) -> dict[str, Any]:
    """One event as the test knows it (digits unpadded; None: absent)."""
    shape = draw(st.sampled_from(SHAPES))
    stamp = draw(st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2099, 12, 31, 23, 59, 59)))
    return {
        "shape": shape,
        "imsi": draw(bcd_digits(5, 15)),
        "msisdn": draw(st.none() | bcd_digits(1, 15)),
        "imei": draw(st.none() | bcd_digits(14, 16)),
        "party": draw(st.none() | bcd_digits(1, 20)),
        "stamp": stamp.replace(microsecond=0),
        "offset_code": draw(st.integers(0, len(OFFSETS) - 1)),
        "entity": draw(st.sampled_from(ENTITIES)),
        "duration": draw(U31),
        "location_area": draw(st.none() | st.integers(0, 65535)),
        "cell_id": draw(st.none() | st.integers(0, 65535)),
        "cause_for_term": draw(st.none() | st.integers(0, 255)),
        "item": draw(st.sampled_from("DEX")),
        "tele": draw(st.sampled_from(["11", "21", "22"])),
        "apn": draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=63)),
        "charge": draw(U63),
        "chargeable_units": draw(U63),
        "charged_units": draw(U63),
        "taxed": draw(st.booleans()),
        "tax_code": draw(st.sampled_from(TAXES)),
        "tax": draw(U63),
        "levels": draw(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 99))),
        "charging_id": draw(st.integers(0, 2**32 - 1)),
        "volume_down": draw(U63),
        "volume_up": draw(U63),
    }


def value_columns(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The value columns of :class:`clearing.codecs.tap3.encode.Columns` for ``rows``."""
    return pl.DataFrame(
        {
            "imsi": [padded(r["imsi"]) for r in rows],
            "msisdn": [padded(r["msisdn"]) if r["msisdn"] else None for r in rows],
            "imei": [padded(r["imei"]) if r["imei"] else None for r in rows],
            "party": [padded(r["party"]) if r["party"] else None for r in rows],
            "stamp": [f"{r['stamp']:%Y%m%d%H%M%S}" for r in rows],
            "offset_code": [r["offset_code"] for r in rows],
            "entity": [r["entity"] for r in rows],
            "duration": [r["duration"] for r in rows],
            "location_area": [r["location_area"] for r in rows],
            "cell_id": [r["cell_id"] for r in rows],
            "item": [r["item"] for r in rows],
            "charge": [r["charge"] for r in rows],
            "chargeable_units": [r["chargeable_units"] for r in rows],
            "charged_units": [r["charged_units"] for r in rows],
            "taxed": [r["taxed"] for r in rows],
            "tax_code": [r["tax_code"] for r in rows],
            "tax": [r["tax"] for r in rows],
            "level1": [r["levels"][0] for r in rows],
            "level2": [r["levels"][1] for r in rows],
            "level3": [r["levels"][2] for r in rows],
            "apn": [r["apn"] for r in rows],
            "charging_id": [r["charging_id"] for r in rows],
            "volume_down": [r["volume_down"] for r in rows],
            "volume_up": [r["volume_up"] for r in rows],
            "cause_for_term": [r["cause_for_term"] for r in rows],
            "tele": [r["tele"] for r in rows],
            "_shape": [SHAPES.index(r["shape"]) for r in rows],
        },
        schema_overrides={
            "offset_code": pl.Int64,
            "entity": pl.Int64,
            "location_area": pl.Int64,
            "cell_id": pl.Int64,
            "cause_for_term": pl.Int64,
            "charge": pl.Int64,
            "chargeable_units": pl.Int64,
            "charged_units": pl.Int64,
            "tax_code": pl.Int64,
            "tax": pl.Int64,
            "charging_id": pl.Int64,
            "volume_down": pl.Int64,
            "volume_up": pl.Int64,
            "_shape": pl.Int8,
        },
    )


def expected_event(r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The asn1tools value of one event, written out from the TAP 3.12 types."""
    subscriber: dict[str, Any] = {"imsi": octets(r["imsi"])}
    if r["msisdn"]:
        subscriber["msisdn"] = octets(r["msisdn"])
    chargeable = ("simChargeableSubscriber", subscriber)
    start = {
        "localTimeStamp": f"{r['stamp']:%Y%m%d%H%M%S}".encode(),
        "utcTimeOffsetCode": r["offset_code"],
    }
    info: dict[str, Any] = {
        "chargedItem": r["item"].encode(),
        "exchangeRateCode": 1,
        "callTypeGroup": dict(
            zip(("callTypeLevel1", "callTypeLevel2", "callTypeLevel3"), r["levels"], strict=True)
        ),
        "chargeDetailList": [
            {
                "chargeType": b"00",
                "charge": r["charge"],
                "chargeableUnits": r["chargeable_units"],
                "chargedUnits": r["charged_units"],
            }
        ],
    }
    if r["taxed"]:
        info["taxInformation"] = [
            {"taxCode": r["tax_code"], "taxValue": r["tax"], "taxableAmount": r["charge"]}
        ]
    place: dict[str, Any] = {}
    if r["location_area"] is not None:
        place["locationArea"] = r["location_area"]
    if r["cell_id"] is not None:
        place["cellId"] = r["cell_id"]
    call: dict[str, Any]
    if r["shape"] == "gprs":
        call = {
            "gprsBasicCallInformation": {
                "gprsChargeableSubscriber": {"chargeableSubscriber": chargeable},
                "gprsDestination": {"accessPointNameNI": r["apn"].encode()},
                "callEventStartTimeStamp": start,
                "totalCallEventDuration": r["duration"],
                "chargingId": r["charging_id"],
            },
            "gprsLocationInformation": {
                "gprsNetworkLocation": {"recEntity": [r["entity"]], **place}
            },
        }
        if r["imei"]:
            call["equipmentIdentifier"] = ("imei", octets(r["imei"]))
        call["gprsServiceUsed"] = {
            "dataVolumeIncoming": r["volume_down"],
            "dataVolumeOutgoing": r["volume_up"],
            "chargeInformationList": [info],
        }
        return KINDS["gprs"], call
    mo = r["shape"] == "mo"
    basic: dict[str, Any] = {"chargeableSubscriber": chargeable}
    if r["party"]:
        if mo:
            basic["destination"] = {"calledNumber": octets(r["party"])}
        else:
            basic["callOriginator"] = {"callingNumber": octets(r["party"])}
    basic["callEventStartTimeStamp"] = start
    basic["totalCallEventDuration"] = r["duration"]
    if r["cause_for_term"] is not None:
        basic["causeForTerm"] = r["cause_for_term"]
    call = {
        "basicCallInformation": basic,
        "locationInformation": {"networkLocation": {"recEntityCode": r["entity"], **place}},
    }
    if r["imei"]:
        call["equipmentIdentifier"] = ("imei", octets(r["imei"]))
    call["basicServiceUsedList"] = [
        {
            "basicService": {"serviceCode": ("teleServiceCode", r["tele"].encode())},
            "chargeInformationList": [info],
        }
    ]
    return KINDS[r["shape"]], call


def stamp(t: dt.datetime, offset: str) -> dict[str, bytes]:
    return {"localTimeStamp": f"{t:%Y%m%d%H%M%S}".encode(), "utcTimeOffset": offset.encode()}


@st.composite
def headers(draw: Any) -> dict[str, Any]:
    """The header groups of a TransferBatch (asn1tools' value form)."""
    tadig = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=5, max_size=5)
    created = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 1, 1)))
    offset = draw(st.sampled_from(OFFSETS))
    bci: dict[str, Any] = {
        "sender": draw(tadig).encode(),
        "recipient": draw(tadig).encode(),
        "fileSequenceNumber": f"{draw(st.integers(1, 99999)):05d}".encode(),
        "fileCreationTimeStamp": stamp(created, offset),
        "transferCutOffTimeStamp": stamp(created, offset),
        "fileAvailableTimeStamp": stamp(created, offset),
        "specificationVersionNumber": 3,
        "releaseVersionNumber": 12,
    }
    if draw(st.booleans()):
        bci["fileTypeIndicator"] = b"T"
    accounting: dict[str, Any] = {
        "taxation": [
            {"taxCode": code, "taxType": b"01", "taxRate": f"{code * 100000:07d}".encode()}
            for code in TAXES
        ],
        "localCurrency": draw(st.sampled_from([b"EUR", b"USD", b"HKD"])),
    }
    if draw(st.booleans()):
        accounting["tapCurrency"] = b"EUR"
    accounting["currencyConversionInfo"] = [
        {
            "exchangeRateCode": 1,
            "numberOfDecimalPlaces": 5,
            "exchangeRate": draw(st.integers(1, 10**9)),
        }
    ]
    accounting["tapDecimalPlaces"] = draw(st.integers(0, 6))
    network = {
        "utcTimeOffsetInfo": [
            {"utcTimeOffsetCode": code, "utcTimeOffset": off.encode()}
            for code, off in enumerate(OFFSETS)
        ],
        "recEntityInfo": [
            {"recEntityCode": code, "recEntityType": 1, "recEntityId": f"MSC{code}".encode()}
            for code in ENTITIES
        ],
    }
    return {"batchControlInfo": bci, "accountingInfo": accounting, "networkInfo": network}


def audit_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "totalCharge": sum(r["charge"] for r in rows) % 2**63,
        "totalTaxValue": sum(r["tax"] for r in rows if r["taxed"]) % 2**63,
        "totalDiscountValue": 0,
        "callEventDetailsCount": len(rows),
    }
