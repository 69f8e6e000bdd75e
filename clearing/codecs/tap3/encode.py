"""TAP 3.12 encoder: header groups, Notifications and columnar call events, bytes out.

What is encoded is decided by the caller (:mod:`clearing.outbound.tap` maps rated rows to TAP
values); this module only writes them, the same bytes asn1tools writes for the TAP-0312 module:

* :func:`encode_value` — a header group or Notification in asn1tools' value form, by a small
  BER writer over the TAP 3.12 types TAP-out uses (:data:`HEADER_TYPES`), no ASN.1 compilation;
* :func:`encode_events` — the CallEventDetails of many events at once, from *value columns*
  (one row per event, see :class:`Columns`) by the columnar writer
  (:mod:`clearing.codecs.ber_write`);
* :func:`encode_batch` — a TransferBatch around those parts.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from clearing.codecs import ber_write as ber
from clearing.errors import EncodeError

__all__ = [
    "HEADER_TYPES",
    "SHAPES",
    "Columns",
    "NotColumnar",
    "encode_batch",
    "encode_events",
    "encode_value",
    "text_col",
]

SHAPES: Final = ("mo", "mt", "gprs")
"""The event shapes, by the code of the ``_shape`` value column (0, 1, 2)."""
_LEVEL_TAGS: Final = (259, 255, 256)  # callTypeLevel1, 2, 3

_Mask = np.ndarray[Any, np.dtype[np.bool_]]

# The TAP 3.12 types of the header groups and Notifications (specs/asn1/TAP-0312.asn), for
# encode_value: [APPLICATION n] and either "int", "octets", ("list", item type) or the
# members in definition order. Only what TAP-out writes.
_DATE_TIME_LONG: Final = [("localTimeStamp", "LocalTimeStamp"), ("utcTimeOffset", "UtcTimeOffset")]
HEADER_TYPES: Final[dict[str, tuple[int, Any]]] = {
    "Notification": (
        2,
        [
            ("sender", "Sender"),
            ("recipient", "Recipient"),
            ("fileSequenceNumber", "FileSequenceNumber"),
            ("fileCreationTimeStamp", "FileCreationTimeStamp"),
            ("fileAvailableTimeStamp", "FileAvailableTimeStamp"),
            ("transferCutOffTimeStamp", "TransferCutOffTimeStamp"),
            ("specificationVersionNumber", "SpecificationVersionNumber"),
            ("releaseVersionNumber", "ReleaseVersionNumber"),
            ("fileTypeIndicator", "FileTypeIndicator"),
        ],
    ),
    "BatchControlInfo": (
        4,
        [
            ("sender", "Sender"),
            ("recipient", "Recipient"),
            ("fileSequenceNumber", "FileSequenceNumber"),
            ("fileCreationTimeStamp", "FileCreationTimeStamp"),
            ("transferCutOffTimeStamp", "TransferCutOffTimeStamp"),
            ("fileAvailableTimeStamp", "FileAvailableTimeStamp"),
            ("specificationVersionNumber", "SpecificationVersionNumber"),
            ("releaseVersionNumber", "ReleaseVersionNumber"),
            ("fileTypeIndicator", "FileTypeIndicator"),
            ("rapFileSequenceNumber", "RapFileSequenceNumber"),
        ],
    ),
    "Sender": (196, "octets"),
    "RapFileSequenceNumber": (181, "octets"),
    "Recipient": (182, "octets"),
    "FileSequenceNumber": (109, "octets"),
    "FileCreationTimeStamp": (108, _DATE_TIME_LONG),
    "TransferCutOffTimeStamp": (227, _DATE_TIME_LONG),
    "FileAvailableTimeStamp": (107, _DATE_TIME_LONG),
    "EarliestCallTimeStamp": (101, _DATE_TIME_LONG),
    "LatestCallTimeStamp": (133, _DATE_TIME_LONG),
    "LocalTimeStamp": (16, "octets"),
    "UtcTimeOffset": (231, "octets"),
    "SpecificationVersionNumber": (201, "int"),
    "ReleaseVersionNumber": (189, "int"),
    "FileTypeIndicator": (110, "octets"),
    "AccountingInfo": (
        5,
        [
            ("taxation", "TaxationList"),
            ("localCurrency", "LocalCurrency"),
            ("tapCurrency", "TapCurrency"),
            ("currencyConversionInfo", "CurrencyConversionList"),
            ("tapDecimalPlaces", "TapDecimalPlaces"),
        ],
    ),
    "TaxationList": (211, ("list", "Taxation")),
    "Taxation": (216, [("taxCode", "TaxCode"), ("taxType", "TaxType"), ("taxRate", "TaxRate")]),
    "TaxCode": (212, "int"),
    "TaxType": (217, "octets"),
    "TaxRate": (215, "octets"),
    "LocalCurrency": (135, "octets"),
    "TapCurrency": (210, "octets"),
    "CurrencyConversionList": (80, ("list", "CurrencyConversion")),
    "CurrencyConversion": (
        106,
        [
            ("exchangeRateCode", "ExchangeRateCode"),
            ("numberOfDecimalPlaces", "NumberOfDecimalPlaces"),
            ("exchangeRate", "ExchangeRate"),
        ],
    ),
    "ExchangeRateCode": (105, "int"),
    "NumberOfDecimalPlaces": (159, "int"),
    "ExchangeRate": (104, "int"),
    "TapDecimalPlaces": (244, "int"),
    "NetworkInfo": (
        6,
        [
            ("utcTimeOffsetInfo", "UtcTimeOffsetInfoList"),
            ("recEntityInfo", "RecEntityInfoList"),
        ],
    ),
    "UtcTimeOffsetInfoList": (234, ("list", "UtcTimeOffsetInfo")),
    "UtcTimeOffsetInfo": (
        233,
        [("utcTimeOffsetCode", "UtcTimeOffsetCode"), ("utcTimeOffset", "UtcTimeOffset")],
    ),
    "UtcTimeOffsetCode": (232, "int"),
    "RecEntityInfoList": (188, ("list", "RecEntityInformation")),
    "RecEntityInformation": (
        183,
        [
            ("recEntityCode", "RecEntityCode"),
            ("recEntityType", "RecEntityType"),
            ("recEntityId", "RecEntityId"),
        ],
    ),
    "RecEntityCode": (184, "int"),
    "RecEntityType": (186, "int"),
    "RecEntityId": (400, "octets"),
    "AuditControlInfo": (
        15,
        [
            ("earliestCallTimeStamp", "EarliestCallTimeStamp"),
            ("latestCallTimeStamp", "LatestCallTimeStamp"),
            ("totalCharge", "TotalCharge"),
            ("totalTaxValue", "TotalTaxValue"),
            ("totalDiscountValue", "TotalDiscountValue"),
            ("callEventDetailsCount", "CallEventDetailsCount"),
        ],
    ),
    "TotalCharge": (415, "int"),
    "TotalTaxValue": (226, "int"),
    "TotalDiscountValue": (225, "int"),
    "CallEventDetailsCount": (43, "int"),
}


def encode_value(type_name: str, value: Any) -> bytes:
    """BER of a header-group value (asn1tools' form) of one of :data:`HEADER_TYPES`.

    Raises:
        EncodeError: a value of the wrong kind or a member the type does not have.
    """
    number, kind = HEADER_TYPES[type_name]
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            msg = f"cannot encode tap {type_name}: {value!r} is not an integer"
            raise EncodeError(msg)
        body = value.to_bytes((8 + (value + (value < 0)).bit_length()) // 8, "big", signed=True)
        return ber.app_tag(number, constructed=False) + ber.length_octets(len(body)) + body
    if kind == "octets":
        if not isinstance(value, bytes):
            msg = f"cannot encode tap {type_name}: {value!r} is not bytes"
            raise EncodeError(msg)
        return ber.app_tag(number, constructed=False) + ber.length_octets(len(value)) + value
    if isinstance(kind, tuple):
        body = b"".join(encode_value(kind[1], item) for item in value)
    else:
        unknown = set(value) - {name for name, _ in kind}
        if unknown:
            msg = f"cannot encode tap {type_name}: no member {', '.join(sorted(unknown))}"
            raise EncodeError(msg)
        body = b"".join(encode_value(t, value[name]) for name, t in kind if name in value)
    return ber.app_tag(number, constructed=True) + ber.length_octets(len(body)) + body


class Columns:
    """The element tree of one group of events, all of one shape (``mo``, ``mt`` or ``gprs``).

    The same elements, in the same order and under the same conditions, as the asn1tools value
    of :func:`clearing.outbound.tap._event`. The value columns (``values``): ``imsi``,
    ``msisdn``, ``imei``, ``party`` (BCD digits, ``F``-padded when odd); ``stamp``, ``item``,
    ``apn``, ``tele`` (text); ``offset_code``, ``entity``, ``duration``, ``location_area``,
    ``cell_id``, ``cause_for_term`` (null: absent), ``charge``, ``chargeable_units``,
    ``charged_units``, ``tax_code``, ``tax``, ``level1``..``level3``, ``charging_id``,
    ``volume_down``, ``volume_up`` (integers); ``taxed`` (whether the TaxInformation is there);
    optionally ``rap_fsn`` (text: the RapFileSequenceNumber of a resubmitted event, null:
    absent).
    """

    def __init__(self, values: pl.DataFrame, shape: str) -> None:
        self.shape = shape
        self.rows = values.height
        self.v = values

    def ints(self, name: str) -> ber.Col:
        """An INTEGER column of value column ``name`` (null as 0)."""
        values = self.v[name].fill_null(0).cast(pl.Int64).to_numpy()
        return ber.int_col(values)

    def text(self, name: str) -> ber.Col:
        """A text column of value column ``name`` (the octets as written)."""
        return text_col(self.v[name])

    def bcd(self, name: str) -> ber.Col:
        """A BCDString column (the digits end with the ``F`` filler where odd).

        Polars decodes the hex digits, left-padded with zeros to one width (the octets
        right-aligned).
        """
        digits = self.v[name].fill_null("")
        lengths = digits.str.len_bytes().cast(pl.Int64).to_numpy()
        width = max(int(lengths.max()) if len(digits) else 0, 2)
        octets = digits.str.pad_start(width, "0").str.decode("hex", strict=False)
        if octets.null_count() or bool((lengths % 2).any()):
            raise NotColumnar(name)  # not hex digits (bytes.fromhex decides)
        arr = octets.to_arrow().cast(pa.large_binary())
        rows, size = len(digits), width // 2
        first = int(np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset])
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[first : first + rows * size]
        return ber.Col(data.reshape(rows, size), lengths // 2)

    def mask(self, name: str) -> _Mask:
        """The boolean value column ``name`` as a row mask."""
        values: _Mask = self.v[name].to_numpy()
        return values

    def not_null(self, name: str) -> _Mask:
        """The rows where value column ``name`` is not null."""
        values: _Mask = self.v[name].is_not_null().to_numpy()
        return values

    @staticmethod
    def prim(number: int, content: ber.Col, present: _Mask | None = None) -> ber.Node:
        """A primitive element of tag ``number``, on the rows of ``present`` (all if None)."""
        return ber.Node(ber.app_tag(number, constructed=False), content=content, present=present)

    @staticmethod
    def cons(number: int, *members: ber.Node, present: _Mask | None = None) -> ber.Node:
        """A constructed element of tag ``number`` over ``members``, on ``present``'s rows."""
        tag = ber.app_tag(number, constructed=True)
        return ber.Node(tag, members=list(members), present=present)

    def optional_bcd(self, number: int, name: str) -> tuple[ber.Node, _Mask]:
        """A BCDString element and the rows that have it.

        The reference tests the value's truth: null and "" are absent.
        """
        col = self.bcd(name)
        given: _Mask = col.length > 0
        return self.prim(number, col, given), given

    def int_or_absent(self, number: int, name: str) -> ber.Node:
        """An INTEGER element of ``name``, absent on the rows where it is null."""
        return self.prim(number, self.ints(name), self.not_null(name))

    def subscriber(self) -> ber.Node:
        """The ChargeableSubscriber: the IMSI and, where given, the MSISDN."""
        msisdn, _ = self.optional_bcd(152, "msisdn")
        return self.cons(427, self.cons(199, self.prim(129, self.bcd("imsi")), msisdn))

    def rap_fsn(self) -> list[ber.Node]:
        """The RapFileSequenceNumber of resubmitted events (TD.57), where given."""
        if "rap_fsn" not in self.v.columns:
            return []
        return [self.prim(181, self.text("rap_fsn"), self.not_null("rap_fsn"))]

    def start(self) -> ber.Node:
        """The CallEventStartTimeStamp: the local stamp and its UTC offset code."""
        return self.cons(
            44, self.prim(16, self.text("stamp")), self.prim(232, self.ints("offset_code"))
        )

    def imei(self) -> ber.Node:
        """The Equipment element (the IMEI), on the rows that have one."""
        imei, given = self.optional_bcd(128, "imei")
        return self.cons(429, imei, present=given)

    def charge(self) -> ber.Node:
        """A ChargeInformationList of one ChargeInformation."""
        tax = self.cons(
            213,
            self.prim(212, self.ints("tax_code")),
            self.prim(397, self.ints("tax")),
            self.prim(398, self.ints("charge")),
        )
        levels = [self.prim(n, self.ints(f"level{i + 1}")) for i, n in enumerate(_LEVEL_TAGS)]
        detail = self.cons(
            63,
            self.prim(71, ber.const_col(self.rows, b"00")),
            self.prim(62, self.ints("charge")),
            self.prim(65, self.ints("chargeable_units")),
            self.prim(68, self.ints("charged_units")),
        )
        info = self.cons(
            69,
            self.prim(66, self.text("item")),
            self.prim(105, ber.const_col(self.rows, b"\x01")),
            self.cons(258, *levels),
            self.cons(64, detail),
            self.cons(214, tax, present=self.mask("taxed")),
        )
        return self.cons(70, info)

    def location(self) -> list[ber.Node]:
        """The LocationArea and CellId elements (each absent where null)."""
        return [self.int_or_absent(136, "location_area"), self.int_or_absent(59, "cell_id")]

    def tree(self) -> ber.Node:
        """The CallEventDetail of every row."""
        return self.gprs() if self.shape == "gprs" else self.call(mo=self.shape == "mo")

    def gprs(self) -> ber.Node:
        """A GprsCall: basic info, location, equipment and the GPRS service used."""
        basic = self.cons(
            114,
            self.cons(115, self.subscriber()),
            *self.rap_fsn(),
            self.cons(116, self.prim(261, self.text("apn"))),
            self.start(),
            self.prim(223, self.ints("duration")),
            self.prim(72, self.ints("charging_id")),
        )
        network = self.cons(
            118, self.cons(185, self.prim(184, self.ints("entity"))), *self.location()
        )
        used = self.cons(
            121,
            self.prim(250, self.ints("volume_down")),
            self.prim(251, self.ints("volume_up")),
            self.charge(),
        )
        return self.cons(14, basic, self.cons(117, network), self.imei(), used)

    def call(self, *, mo: bool) -> ber.Node:
        """A MobileOriginatedCall (``mo``) or MobileTerminatedCall of every row."""
        number, given = self.optional_bcd(407 if mo else 405, "party")
        basic = self.cons(
            147 if mo else 153,
            self.subscriber(),
            *self.rap_fsn(),
            self.cons(89 if mo else 41, number, present=given),
            self.start(),
            self.prim(223, self.ints("duration")),
            self.int_or_absent(58, "cause_for_term"),
        )
        network = self.cons(156, self.prim(184, self.ints("entity")), *self.location())
        service = self.cons(36, self.cons(426, self.prim(218, self.text("tele"))))
        return self.cons(
            9 if mo else 10,
            basic,
            self.cons(138, network),
            self.imei(),
            self.cons(38, self.cons(39, service, self.charge())),
        )


class NotColumnar(Exception):
    """A value the columnar writer does not encode (the reference path takes the file)."""


def text_col(series: pl.Series) -> ber.Col:
    """The octets of a string column (null: empty), right-aligned (polars pads them)."""
    s = series.fill_null("")
    lengths = s.str.len_bytes().cast(pl.Int64).to_numpy()
    rows = len(s)
    width = max(int(lengths.max()) if rows else 0, 1)
    if bool(s.str.len_chars().cast(pl.Int64).ne(pl.Series(lengths)).any()):
        return ber.string_col(series.to_arrow())  # not ASCII: padding counts characters
    arr = s.str.pad_start(width, "\0").to_arrow().cast(pa.large_binary())
    first = int(np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset])
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[first : first + rows * width]
    return ber.Col(data.reshape(rows, width), lengths)


def encode_events(values: pl.DataFrame) -> bytes:
    """The concatenated CallEventDetail elements of the value rows, in row order.

    ``values`` holds the value columns of :class:`Columns` and ``_shape``, the index of the
    row's shape in :data:`SHAPES`.

    Raises:
        NotColumnar: a BCD value holds a character that is not a hex digit.
    """
    # the shapes' rows side by side: each shape's values are then one slice
    codes = values["_shape"].to_numpy()
    where = np.argsort(codes, kind="stable").astype(np.int64)
    values = values[where]
    counts = np.bincount(codes, minlength=len(SHAPES))
    trees = []
    at = 0
    for code, shape in enumerate(SHAPES):
        n = int(counts[code])
        if n:
            part = Columns(values.slice(at, n), shape)
            trees.append((part.tree(), where[at : at + n]))
        at += n
    return ber.encode(trees, values.height)


def encode_batch(
    batch_control: dict[str, Any],
    accounting: dict[str, Any],
    network: dict[str, Any],
    events: bytes,
    audit: dict[str, Any],
) -> bytes:
    """A TransferBatch: the header groups (asn1tools' value form) around encoded call events.

    Raises:
        EncodeError: a header value of the wrong kind.
    """
    content = b"".join(
        (
            encode_value("BatchControlInfo", batch_control),
            encode_value("AccountingInfo", accounting),
            encode_value("NetworkInfo", network),
            ber.app_tag(3, constructed=True),
            ber.length_octets(len(events)),
            events,
            encode_value("AuditControlInfo", audit),
        )
    )
    return ber.app_tag(1, constructed=True) + ber.length_octets(len(content)) + content
