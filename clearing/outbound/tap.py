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
from typing import Any, Final

import asn1tools
import numpy as np
import polars as pl
import pyarrow as pa

from clearing.codecs import asn1
from clearing.errors import EncodeError
from clearing.outbound import _ber as ber

__all__ = [
    "REC_ENTITY_TYPES",
    "TapHeader",
    "TapTotals",
    "bcd",
    "encode_notification",
    "encode_transfer_batch",
    "encode_transfer_batch_reference",
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


_ORDER: Final = ("start_time", "record_id", "file", "line")
_KINDS: Final = ("moc", "mtc", "sms_mo", "sms_mt", "gprs")
_SHAPES: Final = {"moc": "mo", "sms_mo": "mo", "mtc": "mt", "sms_mt": "mt", "gprs": "gprs"}
_TELE: Final = {"moc": "11", "mtc": "11", "sms_mo": "22", "sms_mt": "21"}
_ITEM: Final = {"moc": "D", "mtc": "D", "sms_mo": "E", "sms_mt": "E", "gprs": "X"}
_STAMP: Final = "%Y%m%d%H%M%S"
_LEVEL_TAGS: Final = (259, 255, 256)  # callTypeLevel1, 2, 3
_CHUNK: Final = 65_536  # events the columnar writer encodes at once (bounds its scratch memory)

_Mask = np.ndarray[Any, np.dtype[np.bool_]]


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
        | (pl.col("start_time").dt.strftime(_STAMP).str.len_bytes() != 14).any()
        | ~pl.col("utc_offset").str.contains(r"^[+-]\d{4}$").all()
    ).item()
    return not bad


class _Columns:
    """Element trees of one group of events, all of one shape (``mo``, ``mt`` or ``gprs``).

    The same elements, in the same order and under the same conditions, as :func:`_event`.
    """

    def __init__(self, part: pl.DataFrame, tables: _Tables) -> None:
        self.part = part
        self.tables = tables

    def ints(self, expr: pl.Expr) -> ber.Col:
        return ber.int_col(self.part.select(expr.cast(pl.Int64)).to_series().to_numpy())

    def text(self, expr: pl.Expr) -> ber.Col:
        return ber.string_col(self.part.select(expr).to_series().to_arrow())

    def bcd(self, name: str) -> ber.Col:
        col = ber.bcd_col(self.text(pl.col(name)))
        if col is None:
            raise _NotColumnar(name)
        return col

    def given(self, name: str) -> _Mask:
        """Rows whose value is true to Python (not null, not empty)."""
        given = self.part.select(pl.col(name).str.len_bytes().fill_null(0) > 0)
        mask: _Mask = given.to_series().to_numpy()
        return mask

    def not_null(self, name: str) -> _Mask:
        return self.part[name].is_not_null().to_numpy()

    @staticmethod
    def prim(number: int, content: ber.Col, present: _Mask | None = None) -> ber.Node:
        return ber.Node(ber.app_tag(number, constructed=False), content=content, present=present)

    @staticmethod
    def cons(number: int, *members: ber.Node, present: _Mask | None = None) -> ber.Node:
        tag = ber.app_tag(number, constructed=True)
        return ber.Node(tag, members=list(members), present=present)

    def int_or_absent(self, number: int, name: str) -> ber.Node:
        return self.prim(number, self.ints(pl.col(name).fill_null(0)), self.not_null(name))

    def subscriber(self) -> ber.Node:
        sim = self.cons(
            199,
            self.prim(129, self.bcd("imsi")),
            self.prim(152, self.bcd("msisdn"), self.given("msisdn")),
        )
        return self.cons(427, sim)

    def start(self) -> ber.Node:
        offset = pl.col("utc_offset").replace_strict(self.tables.offsets, return_dtype=pl.Int64)
        return self.cons(
            44,
            self.prim(16, self.text(pl.col("start_time").dt.strftime(_STAMP))),
            self.prim(232, self.ints(offset)),
        )

    def entity(self) -> ber.Col:
        codes = pl.DataFrame(
            [(t, i, c) for (t, i), c in self.tables.entities.items()],
            schema={"rec_entity_type": pl.String, "rec_entity_id": pl.String, "_c": pl.Int64},
            orient="row",
        )
        keys = ["rec_entity_type", "rec_entity_id"]
        found = self.part.select(keys).join(codes, on=keys, how="left", maintain_order="left")
        return ber.int_col(found["_c"].to_numpy())

    def imei(self) -> ber.Node:
        return self.cons(429, self.prim(128, self.bcd("imei")), present=self.given("imei"))

    def charge(self) -> ber.Node:
        """A ChargeInformationList of one ChargeInformation (see :func:`_charge_information`)."""
        kind = pl.col("record_type")
        default = pl.when(kind == "gprs").then(pl.lit(10)).otherwise(pl.lit(0))
        levels = [
            pl.col("service")
            .fill_null("")
            .replace_strict(
                {s: v[i] for s, v in _CALL_TYPES.items()}, default=default if i == 0 else 0
            )
            for i in range(3)
        ]
        taxed = (pl.col("tax_rate").fill_null(0) != 0) & (pl.col("charge") != 0)
        tax_code = pl.col("tax_rate").replace_strict(self.tables.taxes, default=0)
        tax = self.cons(
            213,
            self.prim(212, self.ints(pl.when(taxed).then(tax_code).otherwise(0))),
            self.prim(397, self.ints(pl.col("tax").fill_null(0))),
            self.prim(398, self.ints(pl.col("charge"))),
        )
        taxed_rows = self.part.select(taxed).to_series().to_numpy()
        call_types = [self.prim(n, self.ints(v)) for n, v in zip(_LEVEL_TAGS, levels, strict=True)]

        info = self.cons(
            69,
            self.prim(66, self.text(kind.replace_strict(_ITEM, return_dtype=pl.String))),
            self.prim(105, ber.const_col(self.part.height, b"\x01")),
            self.cons(258, *call_types),
            self.cons(
                64,
                self.cons(
                    63,
                    self.prim(71, ber.const_col(self.part.height, b"00")),
                    self.prim(62, self.ints(pl.col("charge"))),
                    self.prim(65, self.ints(pl.col("chargeable_units"))),
                    self.prim(68, self.ints(pl.col("charged_units"))),
                ),
            ),
            self.cons(214, tax, present=taxed_rows),
        )
        return self.cons(70, info)

    def location(self) -> list[ber.Node]:
        return [
            self.int_or_absent(136, "location_area"),
            self.int_or_absent(59, "cell_id"),
        ]

    def gprs(self) -> ber.Node:
        apn = self.text(pl.col("apn").cast(pl.String).fill_null("None"))
        basic = self.cons(
            114,
            self.cons(115, self.subscriber()),
            self.cons(116, self.prim(261, apn)),
            self.start(),
            self.prim(223, self.ints(pl.col("duration").fill_null(0))),
            self.prim(72, self.ints(pl.col("charging_id").fill_null(0))),
        )
        network = self.cons(118, self.cons(185, self.prim(184, self.entity())), *self.location())
        used = self.cons(
            121,
            self.prim(250, self.ints(pl.col("volume_down").fill_null(0))),
            self.prim(251, self.ints(pl.col("volume_up").fill_null(0))),
            self.charge(),
        )
        return self.cons(14, basic, self.cons(117, network), self.imei(), used)

    def call(self, *, mo: bool) -> ber.Node:
        number = "called_number" if mo else "calling_number"
        party = self.cons(
            89 if mo else 41,
            self.prim(407 if mo else 405, self.bcd(number)),
            present=self.given(number),
        )
        basic = self.cons(
            147 if mo else 153,
            self.subscriber(),
            party,
            self.start(),
            self.prim(223, self.ints(pl.col("duration").fill_null(0))),
            self.int_or_absent(58, "cause_for_term"),
        )
        network = self.cons(156, self.prim(184, self.entity()), *self.location())
        tele = self.text(pl.col("record_type").replace_strict(_TELE, return_dtype=pl.String))
        service = self.cons(36, self.cons(426, self.prim(218, tele)))
        return self.cons(
            9 if mo else 10,
            basic,
            self.cons(138, network),
            self.imei(),
            self.cons(38, self.cons(39, service, self.charge())),
        )


class _NotColumnar(Exception):
    """A value the columnar writer does not encode (the reference path takes the file)."""


def _event_list(rows: pl.DataFrame, tables: _Tables) -> bytes:
    """The concatenated CallEventDetail elements of ``rows`` (sorted), columnar.

    Raises:
        _NotColumnar: a BCD value holds a character that is not a hex digit.
    """
    out: list[bytes] = []
    for lo in range(0, rows.height, _CHUNK):
        chunk = rows.slice(lo, _CHUNK).with_row_index("_pos")
        shape = chunk["record_type"].replace_strict(_SHAPES, return_dtype=pl.String)
        parts: list[tuple[np.ndarray[Any, np.dtype[np.int64]], bytes, Any]] = []
        for name in ("mo", "mt", "gprs"):
            part = chunk.filter(shape == name)
            if part.height == 0:
                continue
            cols = _Columns(part, tables)
            root = cols.gprs() if name == "gprs" else cols.call(mo=name == "mo")
            data, sizes = ber.encode_rows(root, part.height)
            parts.append((part["_pos"].to_numpy().astype(np.int64), data, sizes))
        if len(parts) == 1:
            out.append(parts[0][1])
            continue
        # the groups' events back in file order
        arrays = []
        for _pos, data, sizes in parts:
            offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=offsets[1:])
            arrays.append(
                pa.LargeBinaryArray.from_buffers(
                    pa.large_binary(),
                    len(sizes),
                    [None, pa.py_buffer(offsets), pa.py_buffer(data)],
                )
            )
        where = np.concatenate([p[0] for p in parts])
        order = np.empty_like(where)
        order[where] = np.arange(len(where), dtype=np.int64)
        merged = pa.concat_arrays(arrays).take(pa.array(order))
        out.append(_binary_values(merged))
    return b"".join(out)


def _binary_values(array: pa.LargeBinaryArray) -> bytes:
    """The values of a (non-null) binary array, end to end."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    first, last = offsets[array.offset], offsets[array.offset + len(array)]
    data = array.buffers()[2]
    return b"" if data is None else data.to_pybytes()[first:last]


def _encode_group(type_name: str, value: dict[str, Any]) -> bytes:
    try:
        return bytes(asn1.spec("tap").encode(type_name, value))
    except (asn1tools.Error, ValueError, TypeError, KeyError) as exc:
        msg = f"cannot encode tap {type_name}: {exc}"
        raise EncodeError(msg) from None


def _audit(rows: pl.DataFrame) -> tuple[dict[str, Any], int, int]:
    """The AuditControlInfo of the (sorted) rows, with the total charge and tax."""
    total_charge = sum(rows["charge"].to_list())
    total_tax = sum(rows["tax"].fill_null(0).to_list())
    audit: dict[str, Any] = {}
    if rows.height:
        minutes = {o: _offset_minutes(o) for o in set(rows["utc_offset"].to_list())}
        utc = rows.select(
            pl.col("start_time").cast(pl.Int64)
            - pl.col("utc_offset").replace_strict(minutes, return_dtype=pl.Int64) * 60_000_000
        ).to_series()
        if rows.schema["start_time"] != pl.Datetime("us"):
            raise _NotColumnar("start_time")
        values = utc.to_numpy()
        # min() / max() keep the first of equal values: so does argmin / argmax
        for name, i in (
            ("earliestCallTimeStamp", int(values.argmin())),
            ("latestCallTimeStamp", int(values.argmax())),
        ):
            row = rows.row(i, named=True)
            audit[name] = {
                "localTimeStamp": _stamp(row["start_time"]),
                "utcTimeOffset": row["utc_offset"].encode(),
            }
    audit["totalCharge"] = total_charge
    audit["totalTaxValue"] = total_tax
    audit["totalDiscountValue"] = 0
    audit["callEventDetailsCount"] = rows.height
    return audit, total_charge, total_tax


def encode_transfer_batch(rated: pl.DataFrame, header: TapHeader) -> tuple[bytes, TapTotals]:
    """A TransferBatch of the partner's rated rows (any order; written by start time).

    ``rated`` holds rated visitor rows (:data:`clearing.rating.inbound.RATED_VISITOR_COLUMNS`
    and the mediation columns), all of the header's partner.

    The call events are written by the columnar BER writer (:mod:`clearing.outbound._ber`),
    the header groups by asn1tools: the same bytes as
    :func:`encode_transfer_batch_reference`, which takes the rows the columnar writer does
    not (missing mandatory values, digits that are not BCD...).
    """
    rows = _sorted(rated)
    if not _columnar_ok(rows):
        return encode_transfer_batch_reference(rated, header)
    tables = _Tables.of_frame(rows)
    try:
        events = _event_list(rows, tables)
        audit, total_charge, total_tax = _audit(rows)
    except _NotColumnar:
        return encode_transfer_batch_reference(rated, header)
    content = b"".join(
        (
            _encode_group("BatchControlInfo", _batch_control(header)),
            _encode_group("AccountingInfo", _accounting(header, tables)),
            _encode_group("NetworkInfo", tables.network_info()),
            ber.app_tag(3, constructed=True),
            ber.length_octets(len(events)),
            events,
            _encode_group("AuditControlInfo", audit),
        )
    )
    data = ber.app_tag(1, constructed=True) + ber.length_octets(len(content)) + content
    return data, TapTotals(rows.height, total_charge, total_tax)


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
