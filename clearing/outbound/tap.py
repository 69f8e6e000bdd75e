"""TAP-out: one TAP 3.12 TransferBatch (or a Notification) per partner and processing day.

Built as an asn1tools value and encoded with :func:`clearing.codecs.asn1.encode`:

* **BatchControlInfo**: sender (us), recipient, FSN, the three timestamps derived from the
  processing date ``D`` (transfer cut-off ``D 00:00:00``, creation and availability
  ``D 02:00:00``, our UTC offset; never the clock), TAP 3.12, ``fileTypeIndicator`` ``T`` for
  test data.
* **AccountingInfo**: taxation (one code per tax rate used), localCurrency, tapCurrency (only
  when not SDR), currencyConversionInfo (code 1: local currency per TAP currency unit, from the
  fx table on ``D``), tapDecimalPlaces.
* **NetworkInfo**: utcTimeOffsetInfo (one code per offset used) and recEntityInfo (one code per
  MSC / SGSN … used, in sorted order).
* **CallEventDetails**: MOC / MTC (voice, SMS) and GPRS calls, one per rated row, in start-time
  order, each with one ChargeInformation: chargeType 00 charge, chargeable and charged units,
  exchange rate code 1, call type levels and the tax.
* **AuditControlInfo**: totalCharge = Σ chargeType 00 charges (no CAMEL fees are charged on
  TAP-out), totalTaxValue = Σ taxes, totalDiscountValue 0, callEventDetailsCount and the
  earliest / latest call time stamps (by UTC), so the totals reconcile exactly (TD.57).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from clearing.codecs import asn1

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "REC_ENTITY_TYPES",
    "TapHeader",
    "TapTotals",
    "bcd",
    "encode_notification",
    "encode_transfer_batch",
    "tap_file_name",
]

# TAP RecEntityType (tap3-rap.md §4.3)
REC_ENTITY_TYPES: Final = {"msc": 1, "smsc": 2, "ggsn": 3, "sgsn": 4, "pgw": 7}

_CALL_TYPES: Final = {
    "moc_local": (1, 1, 0),
    "moc_home": (2, 1, 0),
    "moc_international": (2, 2, 0),
    "moc_destination": (2, 2, 0),
}


@dataclass(frozen=True, slots=True)
class TapHeader:
    """What a partner's file says besides its events.

    Attributes:
        sender, recipient: TADIG codes (us, the partner).
        fsn: the file sequence number.
        test: test data (``TD`` file, fileTypeIndicator ``T``).
        processing_date: the day the file is made for; every timestamp derives from it.
        utc_offset: our UTC offset ``±hhmm`` for the batch timestamps.
        local_currency, tap_currency, tap_decimal_places: AccountingInfo.
        exchange_rate, exchange_rate_decimals: local currency per TAP currency unit.
    """

    sender: str
    recipient: str
    fsn: int
    test: bool
    processing_date: date
    utc_offset: str
    local_currency: str
    tap_currency: str
    tap_decimal_places: int
    exchange_rate: int
    exchange_rate_decimals: int


@dataclass(frozen=True, slots=True)
class TapTotals:
    """The AuditControlInfo of a TransferBatch (what was written)."""

    events: int
    total_charge: int
    total_tax: int


def tap_file_name(header: TapHeader) -> str:
    """``CD<sender><recipient><FSN5>`` (``TD`` for test data)."""
    prefix = "TD" if header.test else "CD"
    return f"{prefix}{header.sender}{header.recipient}{header.fsn:05d}"


def bcd(digits: str) -> bytes:
    """TAP BCDString: first digit in the high nibble, odd lengths padded with ``F``."""
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def _stamp(t: datetime) -> bytes:
    return t.strftime("%Y%m%d%H%M%S").encode()


def _offset_minutes(offset: str) -> int:
    sign = -1 if offset[0] == "-" else 1
    return sign * (int(offset[1:3]) * 60 + int(offset[3:5]))


def _batch_control(header: TapHeader) -> dict[str, Any]:
    d = header.processing_date
    cut = datetime(d.year, d.month, d.day)
    made = cut + timedelta(hours=2)
    off = header.utc_offset.encode()

    def dtl(t: datetime) -> dict[str, bytes]:
        return {"localTimeStamp": _stamp(t), "utcTimeOffset": off}

    out: dict[str, Any] = {
        "sender": header.sender.encode(),
        "recipient": header.recipient.encode(),
        "fileSequenceNumber": f"{header.fsn:05d}".encode(),
        "fileCreationTimeStamp": dtl(made),
        "transferCutOffTimeStamp": dtl(cut),
        "fileAvailableTimeStamp": dtl(made),
        "specificationVersionNumber": 3,
        "releaseVersionNumber": 12,
    }
    if header.test:
        out["fileTypeIndicator"] = b"T"
    return out


def encode_notification(header: TapHeader) -> bytes:
    """A TAP 3.12 Notification (no traffic for the period), encoded."""
    bci = _batch_control(header)
    value: dict[str, Any] = {
        "sender": bci["sender"],
        "recipient": bci["recipient"],
        "fileSequenceNumber": bci["fileSequenceNumber"],
        "fileCreationTimeStamp": bci["fileCreationTimeStamp"],
        "fileAvailableTimeStamp": bci["fileAvailableTimeStamp"],
        "transferCutOffTimeStamp": bci["transferCutOffTimeStamp"],
        "specificationVersionNumber": 3,
        "releaseVersionNumber": 12,
    }
    if header.test:
        value["fileTypeIndicator"] = b"T"
    return asn1.encode("notification", ("notification", value))


class _Tables:
    """Code tables of one file: UTC offsets, recording entities, tax rates."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        offsets = sorted({r["utc_offset"] for r in rows})
        self.offsets = {o: i + 1 for i, o in enumerate(offsets)}
        entities = sorted({(r["rec_entity_type"], r["rec_entity_id"]) for r in rows})
        self.entities = {e: i + 1 for i, e in enumerate(entities)}
        rates = sorted({int(r["tax_rate"]) for r in rows if r["tax_rate"]})
        self.taxes = {t: i + 1 for i, t in enumerate(rates)}

    def network_info(self) -> dict[str, Any]:
        """The NetworkInfo group of the tables."""
        return {
            "utcTimeOffsetInfo": [
                {"utcTimeOffsetCode": c, "utcTimeOffset": o.encode()}
                for o, c in self.offsets.items()
            ],
            "recEntityInfo": [
                {
                    "recEntityCode": c,
                    "recEntityType": REC_ENTITY_TYPES[typ],
                    "recEntityId": ident.encode(),
                }
                for (typ, ident), c in self.entities.items()
            ],
        }


def _accounting(header: TapHeader, tables: _Tables) -> dict[str, Any]:
    acc: dict[str, Any] = {}
    if tables.taxes:
        acc["taxation"] = [
            {"taxCode": code, "taxType": b"01", "taxRate": f"{rate:07d}".encode()}
            for rate, code in tables.taxes.items()
        ]
    acc["localCurrency"] = header.local_currency.encode()
    if header.tap_currency != "SDR":
        acc["tapCurrency"] = header.tap_currency.encode()
    acc["currencyConversionInfo"] = [
        {
            "exchangeRateCode": 1,
            "numberOfDecimalPlaces": header.exchange_rate_decimals,
            "exchangeRate": header.exchange_rate,
        }
    ]
    acc["tapDecimalPlaces"] = header.tap_decimal_places
    return acc


def _charge_information(row: dict[str, Any], tables: _Tables) -> dict[str, Any]:
    kind = row["record_type"]
    item = b"X" if kind == "gprs" else b"E" if kind in ("sms_mo", "sms_mt") else b"D"
    levels = _CALL_TYPES.get(row["service"], (10, 0, 0) if kind == "gprs" else (0, 0, 0))
    info: dict[str, Any] = {
        "chargedItem": item,
        "exchangeRateCode": 1,
        "callTypeGroup": {
            "callTypeLevel1": levels[0],
            "callTypeLevel2": levels[1],
            "callTypeLevel3": levels[2],
        },
        "chargeDetailList": [
            {
                "chargeType": b"00",
                "charge": int(row["charge"]),
                "chargeableUnits": int(row["chargeable_units"]),
                "chargedUnits": int(row["charged_units"]),
            }
        ],
    }
    if row["tax_rate"] and row["charge"]:
        info["taxInformation"] = [
            {
                "taxCode": tables.taxes[int(row["tax_rate"])],
                "taxValue": int(row["tax"]),
                "taxableAmount": int(row["charge"]),
            }
        ]
    return info


def _event(row: dict[str, Any], tables: _Tables) -> tuple[str, Any]:
    kind = row["record_type"]
    subscriber: dict[str, bytes] = {"imsi": bcd(row["imsi"])}
    if row["msisdn"]:
        subscriber["msisdn"] = bcd(row["msisdn"])
    chargeable = ("simChargeableSubscriber", subscriber)
    start = {
        "localTimeStamp": _stamp(row["start_time"]),
        "utcTimeOffsetCode": tables.offsets[row["utc_offset"]],
    }
    entity = tables.entities[(row["rec_entity_type"], row["rec_entity_id"])]
    charge = _charge_information(row, tables)
    imei = ("imei", bcd(row["imei"])) if row["imei"] else None
    if kind == "gprs":
        basic: dict[str, Any] = {
            "gprsChargeableSubscriber": {"chargeableSubscriber": chargeable},
            "gprsDestination": {"accessPointNameNI": str(row["apn"]).encode()},
            "callEventStartTimeStamp": start,
            "totalCallEventDuration": int(row["duration"] or 0),
            "chargingId": int(row["charging_id"] or 0),
        }
        location: dict[str, Any] = {"recEntity": [entity]}
        if row["location_area"] is not None:
            location["locationArea"] = int(row["location_area"])
        if row["cell_id"] is not None:
            location["cellId"] = int(row["cell_id"])
        call: dict[str, Any] = {
            "gprsBasicCallInformation": basic,
            "gprsLocationInformation": {"gprsNetworkLocation": location},
        }
        if imei:
            call["equipmentIdentifier"] = imei
        call["gprsServiceUsed"] = {
            "dataVolumeIncoming": int(row["volume_down"] or 0),
            "dataVolumeOutgoing": int(row["volume_up"] or 0),
            "chargeInformationList": [charge],
        }
        return ("gprsCall", call)
    mo = kind in ("moc", "sms_mo")
    basic = {"chargeableSubscriber": chargeable}
    if mo and row["called_number"]:
        basic["destination"] = {"calledNumber": bcd(row["called_number"])}
    if not mo and row["calling_number"]:
        basic["callOriginator"] = {"callingNumber": bcd(row["calling_number"])}
    basic["callEventStartTimeStamp"] = start
    basic["totalCallEventDuration"] = int(row["duration"] or 0)
    if row["cause_for_term"] is not None:
        basic["causeForTerm"] = int(row["cause_for_term"])
    network: dict[str, Any] = {"recEntityCode": entity}
    if row["location_area"] is not None:
        network["locationArea"] = int(row["location_area"])
    if row["cell_id"] is not None:
        network["cellId"] = int(row["cell_id"])
    call = {"basicCallInformation": basic, "locationInformation": {"networkLocation": network}}
    if imei:
        call["equipmentIdentifier"] = imei
    service = {"moc": b"11", "mtc": b"11", "sms_mo": b"22", "sms_mt": b"21"}[kind]
    call["basicServiceUsedList"] = [
        {
            "basicService": {"serviceCode": ("teleServiceCode", service)},
            "chargeInformationList": [charge],
        }
    ]
    return ("mobileOriginatedCall" if mo else "mobileTerminatedCall", call)


def encode_transfer_batch(rated: pl.DataFrame, header: TapHeader) -> tuple[bytes, TapTotals]:
    """A TransferBatch of the partner's rated rows (any order; written by start time).

    ``rated`` holds rated visitor rows (:data:`clearing.rating.inbound.RATED_VISITOR_COLUMNS`
    and the mediation columns), all of the header's partner.
    """
    rows = rated.sort("start_time", "record_id", "file", "line").to_dicts()
    tables = _Tables(rows)
    events = [_event(r, tables) for r in rows]
    total_charge = sum(int(r["charge"]) for r in rows)
    total_tax = sum(int(r["tax"] or 0) for r in rows)
    audit: dict[str, Any] = {}
    if rows:

        def utc(r: dict[str, Any]) -> datetime:
            t: datetime = r["start_time"]
            return t - timedelta(minutes=_offset_minutes(r["utc_offset"]))

        first = min(rows, key=utc)
        last = max(rows, key=utc)
        audit["earliestCallTimeStamp"] = {
            "localTimeStamp": _stamp(first["start_time"]),
            "utcTimeOffset": first["utc_offset"].encode(),
        }
        audit["latestCallTimeStamp"] = {
            "localTimeStamp": _stamp(last["start_time"]),
            "utcTimeOffset": last["utc_offset"].encode(),
        }
    audit["totalCharge"] = total_charge
    audit["totalTaxValue"] = total_tax
    audit["totalDiscountValue"] = 0
    audit["callEventDetailsCount"] = len(events)
    batch = {
        "batchControlInfo": _batch_control(header),
        "accountingInfo": _accounting(header, tables),
        "networkInfo": tables.network_info(),
        "callEventDetails": events,
        "auditControlInfo": audit,
    }
    data = asn1.encode("tap", ("transferBatch", batch))
    return data, TapTotals(len(events), total_charge, total_tax)
