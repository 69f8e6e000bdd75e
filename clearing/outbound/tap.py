"""TAP-out: one TAP 3.12 TransferBatch (or a Notification) per partner and processing day.

This module maps rated rows to TAP values (what goes into the file); the bytes are written by
:mod:`clearing.codecs.tap3.encode` without per-event Python: the call events by the columnar BER
writer (whole columns per element), the header groups and Notifications by a small BER writer
over the TAP 3.12 types they use. The asn1tools encoders they replace
(:func:`encode_transfer_batch_reference`, :func:`encode_notification_reference`, through
:func:`clearing.codecs.asn1.encode`) stay as the definition of the bytes: the tests compare
both, and rows the columnar writer does not take (missing mandatory values, digits that are not
BCD) go to the reference. The file holds:

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

:func:`write_tap_file` writes a file in pieces: the call events a chunk of rows at a time (in
file order) into a temporary file, then the header with the outer lengths they make, the
events and the audit group; :func:`encode_tap_file` gives the same bytes at once.
"""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from clearing.codecs import asn1
from clearing.codecs import ber_write as ber
from clearing.codecs.tap3.encode import NotColumnar, encode_batch, encode_events, encode_value
from clearing.codecs.tap3.values import bcd, local_stamp, require_offset_minutes
from clearing.names import TapName

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = [
    "READS",
    "REC_ENTITY_TYPES",
    "TapHeader",
    "TapTotals",
    "encode_notification",
    "encode_notification_reference",
    "encode_tap_file",
    "encode_transfer_batch",
    "encode_transfer_batch_reference",
    "tap_file_name",
    "write_tap_file",
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
        rap_fsn: the RapFileSequenceNumber of a fatally returned file sent again under its
            FSN (TD.57; None: a first sending).
        made_on: the day a file sent again is made (fileCreationTimeStamp and
            fileAvailableTimeStamp; the cut-off stays ``processing_date``'s). None: the
            processing date.
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
    rap_fsn: int | None = None
    made_on: date | None = None


@dataclass(frozen=True, slots=True)
class TapTotals:
    """The AuditControlInfo of a TransferBatch (what was written)."""

    events: int
    total_charge: int
    total_tax: int


def tap_file_name(header: TapHeader) -> str:
    """``CD<sender><recipient><FSN5>`` (``TD`` for test data)."""
    return str(TapName(header.test, header.sender, header.recipient, header.fsn))


def _batch_control(header: TapHeader) -> dict[str, Any]:
    d = header.processing_date
    cut = datetime(d.year, d.month, d.day)
    m = header.made_on or d
    made = datetime(m.year, m.month, m.day) + timedelta(hours=2)
    off = header.utc_offset.encode()

    def dtl(t: datetime) -> dict[str, bytes]:
        return {"localTimeStamp": local_stamp(t), "utcTimeOffset": off}

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
    if header.rap_fsn is not None:
        out["rapFileSequenceNumber"] = f"{header.rap_fsn:05d}".encode()
    return out


def _notification_value(header: TapHeader) -> dict[str, Any]:
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
    return value


def encode_notification(header: TapHeader) -> bytes:
    """A TAP 3.12 Notification (no traffic for the period), encoded.

    Written by :func:`clearing.codecs.tap3.encode.encode_value` (no ASN.1 compilation): the
    bytes of :func:`encode_notification_reference`.
    """
    return encode_value("Notification", _notification_value(header))


def encode_notification_reference(header: TapHeader) -> bytes:
    """:func:`encode_notification` with asn1tools (the reference)."""
    return asn1.encode("notification", ("notification", _notification_value(header)))


class _Tables:
    """Code tables of one file: UTC offsets, recording entities, tax rates."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        offsets = sorted({r["utc_offset"] for r in rows})
        self.offsets = {o: i + 1 for i, o in enumerate(offsets)}
        entities = sorted({(r["rec_entity_type"], r["rec_entity_id"]) for r in rows})
        self.entities = {e: i + 1 for i, e in enumerate(entities)}
        rates = sorted({int(r["tax_rate"]) for r in rows if r["tax_rate"]})
        self.taxes = {t: i + 1 for i, t in enumerate(rates)}

    @classmethod
    def of_frame(cls, rows: pl.DataFrame) -> _Tables:
        """The same tables from the columns (distinct values, no row dicts)."""
        tables = cls([])
        offsets = sorted(set(rows["utc_offset"].unique().to_list()))
        tables.offsets = {o: i + 1 for i, o in enumerate(offsets)}
        pairs = rows.select("rec_entity_type", "rec_entity_id").unique().rows()
        tables.entities = {e: i + 1 for i, e in enumerate(sorted(pairs))}
        rates = {int(t) for t in rows["tax_rate"].unique().to_list() if t}
        tables.taxes = {t: i + 1 for i, t in enumerate(sorted(rates))}
        return tables

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
        "localTimeStamp": local_stamp(row["start_time"]),
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
        if row.get("rap_file_sequence_number") is not None:
            basic["rapFileSequenceNumber"] = f"{int(row['rap_file_sequence_number']):05d}".encode()
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
    rap_fsn = row.get("rap_file_sequence_number")
    mo = kind in ("moc", "sms_mo")
    basic = {"chargeableSubscriber": chargeable}
    if rap_fsn is not None:
        basic["rapFileSequenceNumber"] = f"{int(rap_fsn):05d}".encode()
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


_ORDER: Final = ("start_time", "record_id", "file", "line")
_KINDS: Final = ("moc", "mtc", "sms_mo", "sms_mt", "gprs")
_SHAPE_CODES: Final = {"moc": 0, "sms_mo": 0, "mtc": 1, "sms_mt": 1, "gprs": 2}  # in SHAPES
_TELE: Final = {"moc": "11", "mtc": "11", "sms_mo": "22", "sms_mt": "21"}
_ITEM: Final = {"moc": "D", "mtc": "D", "sms_mo": "E", "sms_mt": "E", "gprs": "X"}
_STAMP: Final = "%Y%m%d%H%M%S"
_CHUNK: Final = 32_768  # events the columnar writer encodes at once (bounds its scratch memory)
#: Encoded call events held in memory before they go on to a temporary file (per file).
_SPOOL: Final = 16 << 20
_COPY: Final = 1 << 20  # bytes copied from the temporary file at once
#: The columns the events are written from (and sorted by).
_READS: Final = (
    *_ORDER,
    "record_type",
    "imsi",
    "msisdn",
    "imei",
    "called_number",
    "calling_number",
    "utc_offset",
    "duration",
    "volume_up",
    "volume_down",
    "apn",
    "rec_entity_type",
    "rec_entity_id",
    "location_area",
    "cell_id",
    "charging_id",
    "cause_for_term",
    "service",
    "chargeable_units",
    "charged_units",
    "tax_rate",
    "charge",
    "tax",
)


_RAP_FSN: Final = "rap_file_sequence_number"
#: Every column a TAP-out file is written from (the optional RAP FSN of a resubmitted event too).
READS: Final = (*_READS, _RAP_FSN)


def _has_rap_fsn(rated: pl.DataFrame) -> bool:
    """Whether some row is a resubmitted event (it carries its RAP's FSN)."""
    return _RAP_FSN in rated.columns and rated[_RAP_FSN].null_count() < rated.height


def _sorted(rated: pl.DataFrame) -> pl.DataFrame:
    """The rows in file order: start time, then record id, file and line."""
    return rated.sort(*_ORDER)


def _columnar_ok(rows: pl.DataFrame) -> bool:
    """Whether every row has what the columnar writer assumes (else: the reference path).

    The reference raises, or writes what Python makes of it, for a missing IMSI or charge, an
    unknown record type, a timestamp that is not 14 digits...: such rows are left to it.
    """
    required = ["record_type", "imsi", "start_time", "utc_offset", "rec_entity_type"]
    required += ["rec_entity_id", "charge", "chargeable_units", "charged_units"]
    taxed = pl.col("tax_rate").fill_null(0).ne(0) & pl.col("charge").fill_null(0).ne(0)
    bad = rows.select(
        pl.any_horizontal(pl.col(required).is_null()).any()
        | ~pl.col("record_type").is_in(_KINDS).all()
        | ~pl.col("rec_entity_type").is_in(list(REC_ENTITY_TYPES)).all()
        | (taxed & pl.col("tax").is_null()).any()
        # 14 digits in CCYYMMDDhhmmss
        | ~pl.col("start_time").dt.year().is_between(1000, 9999).all()
    ).item()
    offsets = rows["utc_offset"].unique().to_list()
    return not bad and all(re.fullmatch(r"[+-][0-9]{4}", o) for o in offsets)


def _bcd_text(name: str) -> pl.Expr:
    """The digits of a BCDString, with the ``F`` filler when their count is odd."""
    s = pl.col(name)
    return pl.when(s.str.len_bytes() % 2 == 1).then(s + "F").otherwise(s)


def _values(tables: _Tables, *, resubmitted: bool = False) -> dict[str, pl.Expr]:
    """What the element trees read, as one select (:class:`clearing.codecs.tap3.encode.Columns`)."""
    kind = pl.col("record_type")
    entity_key = pl.concat_str(["rec_entity_type", "rec_entity_id"], separator="\x1f")
    entities = {f"{t}\x1f{i}": c for (t, i), c in tables.entities.items()}
    default = pl.when(kind == "gprs").then(pl.lit(10)).otherwise(pl.lit(0))
    service = pl.col("service").fill_null("")
    taxed = (pl.col("tax_rate").fill_null(0) != 0) & (pl.col("charge") != 0)
    out: dict[str, pl.Expr] = {
        "imsi": _bcd_text("imsi"),
        "msisdn": _bcd_text("msisdn"),
        "imei": _bcd_text("imei"),
        "stamp": pl.col("start_time").dt.strftime(_STAMP),
        "offset_code": pl.col("utc_offset").replace_strict(tables.offsets, return_dtype=pl.Int64),
        "entity": entity_key.replace_strict(entities, return_dtype=pl.Int64),
        "duration": pl.col("duration").fill_null(0),
        "location_area": pl.col("location_area"),
        "cell_id": pl.col("cell_id"),
        "item": kind.replace_strict(_ITEM, return_dtype=pl.String),
        "charge": pl.col("charge"),
        "chargeable_units": pl.col("chargeable_units"),
        "charged_units": pl.col("charged_units"),
        "taxed": taxed,
        "tax_code": pl.when(taxed)
        .then(pl.col("tax_rate").replace_strict(tables.taxes, default=0, return_dtype=pl.Int64))
        .otherwise(0),
        "tax": pl.col("tax").fill_null(0),
    }
    for i, name in enumerate(("level1", "level2", "level3")):
        levels = {s: v[i] for s, v in _CALL_TYPES.items()}
        fallback = default if i == 0 else pl.lit(0)
        out[name] = service.replace_strict(levels, default=fallback, return_dtype=pl.Int64)
    # gprs
    out["apn"] = pl.col("apn").cast(pl.String).fill_null("None")
    out["charging_id"] = pl.col("charging_id").fill_null(0)
    out["volume_down"] = pl.col("volume_down").fill_null(0)
    out["volume_up"] = pl.col("volume_up").fill_null(0)
    # calls (gprs rows: anything, unused)
    mo = kind.is_in(("moc", "sms_mo"))
    out["party"] = (
        pl.when(mo).then(_bcd_text("called_number")).otherwise(_bcd_text("calling_number"))
    )
    out["cause_for_term"] = pl.col("cause_for_term")
    out["tele"] = kind.replace_strict(_TELE, default="", return_dtype=pl.String)
    out["_shape"] = kind.replace_strict(_SHAPE_CODES, return_dtype=pl.Int8)
    if resubmitted:
        out["rap_fsn"] = pl.col(_RAP_FSN).cast(pl.Int64).cast(pl.String).str.zfill(5)
    return out


def _file_order(rows: pl.DataFrame) -> pl.Series:
    """The row numbers of ``rows`` in file order (:func:`_sorted`'s, without a sorted copy)."""
    return rows.select(pl.arg_sort_by(*_ORDER)).to_series()


def _spool_events(
    rows: pl.DataFrame,
    order: pl.Series,
    tables: _Tables,
    spool: tempfile.SpooledTemporaryFile[bytes],
) -> None:
    """Write the CallEventDetail elements of ``rows`` (in ``order``) to ``spool``, columnar.

    ``_CHUNK`` rows at a time (taken in file order): the rows and encoded events of one chunk
    are in memory at once, the rest are in the spool (on disk past ``_SPOOL`` bytes).

    Raises:
        NotColumnar: a BCD value holds a character that is not a hex digit.
    """
    exprs = _values(tables, resubmitted=_RAP_FSN in rows.columns)
    for lo in range(0, rows.height, _CHUNK):
        chunk = rows.select(pl.all().gather(order.slice(lo, _CHUNK)))
        spool.write(encode_events(chunk.select(**exprs)))


def _total(values: pl.Series) -> int:
    """The exact sum of a column of amounts (no int64 wrap, no float)."""
    if values.dtype.is_integer():
        return int(values.cast(pl.Int128).sum() or 0)
    return sum(values.to_list())


def _audit(rows: pl.DataFrame, order: pl.Series) -> tuple[dict[str, Any], int, int]:
    """The AuditControlInfo of the rows (in file ``order``), with the total charge and tax."""
    total_charge = _total(rows["charge"])
    total_tax = _total(rows["tax"].fill_null(0))
    audit: dict[str, Any] = {}
    if rows.height:
        minutes = {o: require_offset_minutes(o) for o in rows["utc_offset"].unique().to_list()}
        utc = rows.select(
            pl.col("start_time").cast(pl.Int64)
            - pl.col("utc_offset").replace_strict(minutes, return_dtype=pl.Int64) * 60_000_000
        ).to_series()
        if rows.schema["start_time"] != pl.Datetime("us"):
            msg = "start_time"
            raise NotColumnar(msg)
        at = order.to_numpy()
        values = utc.to_numpy()[at]  # in file order
        # min() / max() keep the first of equal values (in file order): so does argmin / argmax
        for name, i in (
            ("earliestCallTimeStamp", int(at[values.argmin()])),
            ("latestCallTimeStamp", int(at[values.argmax()])),
        ):
            row = rows.row(i, named=True)
            audit[name] = {
                "localTimeStamp": local_stamp(row["start_time"]),
                "utcTimeOffset": row["utc_offset"].encode(),
            }
    audit["totalCharge"] = total_charge
    audit["totalTaxValue"] = total_tax
    audit["totalDiscountValue"] = 0
    audit["callEventDetailsCount"] = rows.height
    return audit, total_charge, total_tax


def _whole(
    encoded: tuple[bytes, TapTotals], write: Callable[[bytes], object]
) -> tuple[TapTotals, bytes]:
    data, totals = encoded
    write(data)
    return totals, data


def _write_transfer_batch(
    rated: pl.DataFrame,
    header: TapHeader,
    write: Callable[[bytes], object],
    spool_dir: Path | None,
) -> tuple[TapTotals, bytes]:
    """The TransferBatch of :func:`encode_transfer_batch`, given to ``write`` in pieces.

    The call events are encoded ``_CHUNK`` rows at a time into a temporary file (in
    ``spool_dir``; in memory up to ``_SPOOL`` bytes); their length then known, the file is
    written as its header (tags and definite lengths, the header groups), the events copied
    from the temporary file, and the AuditControlInfo: the bytes of :func:`encode_batch`
    over all the events at once, without holding them.

    Returns:
        The totals and the file without its call events (an empty CallEventDetailList): its
        header groups, for :func:`clearing.codecs.facts.tap_header_facts`. A file written
        by the reference: its bytes.
    """
    if not set(_READS) <= set(rated.columns):
        return _whole(encode_transfer_batch_reference(rated, header), write)
    reads = [*_READS, _RAP_FSN] if _has_rap_fsn(rated) else list(_READS)
    rows = rated.select(reads)  # the columns, not a copy of them
    if not _columnar_ok(rows):
        return _whole(encode_transfer_batch_reference(rated, header), write)
    tables = _Tables.of_frame(rows)
    order = _file_order(rows)
    with tempfile.SpooledTemporaryFile(
        max_size=_SPOOL, dir=None if spool_dir is None else str(spool_dir)
    ) as spool:
        try:
            _spool_events(rows, order, tables, spool)
            audit, total_charge, total_tax = _audit(rows, order)
        except NotColumnar:
            return _whole(encode_transfer_batch_reference(rated, header), write)
        size = spool.tell()
        groups = (
            encode_value("BatchControlInfo", _batch_control(header))
            + encode_value("AccountingInfo", _accounting(header, tables))
            + encode_value("NetworkInfo", tables.network_info())
        )
        tail = encode_value("AuditControlInfo", audit)
        events = ber.app_tag(3, constructed=True) + ber.length_octets(size)
        content = len(groups) + len(events) + size + len(tail)
        write(ber.app_tag(1, constructed=True) + ber.length_octets(content) + groups + events)
        spool.seek(0)
        while piece := spool.read(_COPY):
            write(piece)
        write(tail)
    skeleton = encode_batch(
        _batch_control(header), _accounting(header, tables), tables.network_info(), b"", audit
    )
    return TapTotals(rows.height, total_charge, total_tax), skeleton


def encode_transfer_batch(rated: pl.DataFrame, header: TapHeader) -> tuple[bytes, TapTotals]:
    """A TransferBatch of the partner's rated rows (any order; written by start time).

    ``rated`` holds rated visitor rows (:data:`clearing.rating.inbound.RATED_VISITOR_COLUMNS`
    and the mediation columns), all of the header's partner.

    The call events are written by the columnar BER writer, the header groups by
    :func:`clearing.codecs.tap3.encode.encode_value`: the same bytes as
    :func:`encode_transfer_batch_reference`, which takes the rows the columnar writer does
    not (missing mandatory values, digits that are not BCD...). :func:`write_tap_file`
    writes the same bytes to a file without holding them.
    """
    buf = io.BytesIO()
    totals, _ = _write_transfer_batch(rated, header, buf.write, None)
    return buf.getvalue(), totals


def write_tap_file(
    rated: pl.DataFrame,
    header: TapHeader,
    write: Callable[[bytes], object],
    *,
    spool_dir: Path | None = None,
) -> tuple[str, TapTotals, bytes]:
    """The bytes of :func:`encode_tap_file`, given to ``write`` in pieces (not held whole).

    A TransferBatch's call events are encoded a chunk of rows at a time into a temporary file
    in ``spool_dir`` (default: the system's), then copied to ``write`` after the header, whose
    lengths they make; so the memory is one chunk's, whatever the file's size.

    Returns:
        The kind (``transferBatch`` / ``notification``), the totals (all 0 for a
        Notification) and the file's header: the file without its call events, whose header
        groups are the written file's (what :func:`clearing.codecs.facts.tap_header_facts`
        reads); a Notification's bytes.
    """
    if rated.height:
        totals, skeleton = _write_transfer_batch(rated, header, write, spool_dir)
        return "transferBatch", totals, skeleton
    data = encode_notification(header)
    write(data)
    return "notification", TapTotals(0, 0, 0), data


def encode_tap_file(rated: pl.DataFrame, header: TapHeader) -> tuple[bytes, str, TapTotals]:
    """The TAP-out file of ``rated`` rows: a TransferBatch, or a Notification without rows.

    Returns:
        The bytes, the kind (``transferBatch`` / ``notification``) and the totals (all 0 for
        a Notification).
    """
    buf = io.BytesIO()
    kind, totals, _ = write_tap_file(rated, header, buf.write)
    return buf.getvalue(), kind, totals


def encode_transfer_batch_reference(
    rated: pl.DataFrame, header: TapHeader
) -> tuple[bytes, TapTotals]:
    """:func:`encode_transfer_batch` one event at a time with asn1tools (the reference).

    Slow (tens of microseconds per event); kept as the definition the columnar encoder is
    tested against, and used for rows the columnar encoder does not take.
    """
    rows = _sorted(rated).to_dicts()
    tables = _Tables(rows)
    events = [_event(r, tables) for r in rows]
    total_charge = sum(int(r["charge"]) for r in rows)
    total_tax = sum(int(r["tax"] or 0) for r in rows)
    audit: dict[str, Any] = {}
    if rows:

        def utc(r: dict[str, Any]) -> datetime:
            t: datetime = r["start_time"]
            return t - timedelta(minutes=require_offset_minutes(r["utc_offset"]))

        first = min(rows, key=utc)
        last = max(rows, key=utc)
        audit["earliestCallTimeStamp"] = {
            "localTimeStamp": local_stamp(first["start_time"]),
            "utcTimeOffset": first["utc_offset"].encode(),
        }
        audit["latestCallTimeStamp"] = {
            "localTimeStamp": local_stamp(last["start_time"]),
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
