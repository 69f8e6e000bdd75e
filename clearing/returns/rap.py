"""RAP 1.5 (GSMA TD.32) return batches: write the RAP for a TAP-in file, read a partner's RAP.

A ``ReturnBatch [APPLICATION 534]`` holds a ``rapBatchControlInfoRap``, the ``returnDetails``
(FatalReturn, SevereReturn, MissingReturn, StopReturn) and a ``rapAuditControlInfo``.

Byte fidelity: a SevereReturn must echo the CallEventDetail exactly as it was received, and a
FatalReturn the offending TAP group, even when the partner encoded them with indefinite lengths.
asn1tools would re-encode them (definite lengths), so :func:`write_rap` encodes only the parts it
generates itself (header, error details, audit, missing/stop returns) with asn1tools and the
RAP-0105 module, and composes the envelopes around the raw TAP bytes with
:func:`clearing.codecs.ber.encode_header`. The result decodes with the published RAP-0105 module.

:func:`read_rap` walks the envelope with the RAP tag grammar, keeps the returned raw bytes and
decodes every generated part with asn1tools. A returned event that does not decode with its TAP
module does not stop the file: its value is None and its ``problem`` says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import asn1tools

from clearing.codecs import asn1
from clearing.codecs.ber import (
    APPLICATION,
    TLV,
    element_at,
    encode_header,
    iter_children,
    tag_key,
    tag_name,
)
from clearing.codecs.indefinite import to_definite
from clearing.errors import DecodeError, EncodeError
from clearing.names import RapName
from clearing.validate.findings import PathItem

if TYPE_CHECKING:
    from collections.abc import Sequence

    from clearing.codecs.grammar import Grammar

__all__ = [
    "FATAL_GROUPS",
    "AuditMismatch",
    "ErrorDetail",
    "FatalGroup",
    "FatalItem",
    "MissingItem",
    "RapFile",
    "RapHeader",
    "RapItem",
    "ReturnedEvent",
    "SevereItem",
    "StopItem",
    "rap_file_name",
    "read_rap",
    "write_rap",
]

RAP_SPECIFICATION_VERSION = 1
RAP_RELEASE_VERSION = 5

FatalGroup = Literal[
    "transferBatch",
    "notification",
    "batchControlInfo",
    "accountingInfo",
    "networkInfo",
    "messageDescriptionInfo",
    "auditControlInfo",
]


@dataclass(frozen=True, slots=True)
class _GroupSpec:
    tap_tag: int | None  # APPLICATION tag of the TAP group copied into the error (None: no copy)
    error_tag: int  # APPLICATION tag of the RAP xxxError element
    error_member: str  # member name inside FatalReturn
    error_type: str  # RAP type name of the xxxError element


# in the member order of FatalReturn (RAP-0105)
FATAL_GROUPS: dict[FatalGroup, _GroupSpec] = {
    "transferBatch": _GroupSpec(None, 542, "transferBatchError", "TransferBatchError"),
    "notification": _GroupSpec(2, 552, "notificationError", "NotificationError"),
    "batchControlInfo": _GroupSpec(4, 517, "batchControlError", "BatchControlError"),
    "accountingInfo": _GroupSpec(5, 512, "accountingInfoError", "AccountingInfoError"),
    "networkInfo": _GroupSpec(6, 523, "networkInfoError", "NetworkInfoError"),
    "messageDescriptionInfo": _GroupSpec(
        8, 522, "messageDescriptionError", "MessageDescriptionError"
    ),
    "auditControlInfo": _GroupSpec(15, 513, "auditControlInfoError", "AuditControlInfoError"),
}
_GROUP_BY_MEMBER: dict[str, FatalGroup] = {g.error_member: n for n, g in FATAL_GROUPS.items()}

_T_RETURN_BATCH = tag_key(APPLICATION, 534)
_T_RETURN_DETAILS = tag_key(APPLICATION, 536)
_T_FATAL = tag_key(APPLICATION, 539)
_T_SEVERE = tag_key(APPLICATION, 540)
_NOT_EVENTS = {"fileSequenceNumber", "errorDetail", "operatorSpecList"}

_TADIG = re.compile(r"[A-Z0-9]{5}")
_STAMP = re.compile(r"[0-9]{14}")
_OFFSET = re.compile(r"[+-][0-9]{4}")
_CURRENCY = re.compile(r"[A-Z]{3}")


# ---------------------------------------------------------------------------------------------
# the records


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One RAP ErrorDetail: the TD.57 error code, its ErrorContext path and item offset.

    Attributes:
        code: the error code, relative to the context (the last step of ``path``).
        path: the ErrorContext, outermost first (pathItemId = APPLICATION tag number,
            itemOccurrence 1-based, itemLevel 1 = TransferBatch).
        item_offset: the ItemOffset (position of the erroneous character), when known.
    """

    code: int
    path: tuple[PathItem, ...]
    item_offset: int | None = None


@dataclass(frozen=True, slots=True)
class FatalItem:
    """A fatal error in one TAP group: the whole file is returned (FatalReturn).

    Attributes:
        fsn: the FileSequenceNumber of the returned TAP file, as it was in the file.
        group: the group in error; RAP 1.5 has one xxxError element per group.
        group_bytes: the raw TLV of that group exactly as it was in the TAP file (for
            ``notification`` the whole Notification). ``transferBatch`` errors carry no copy
            of any group in RAP 1.5 (``TransferBatchError`` is only an ErrorDetailList): their
            ``group_bytes`` must be empty.
        errors: the error details (at least one).
    """

    fsn: str
    group: FatalGroup
    group_bytes: bytes
    errors: list[ErrorDetail]


@dataclass(frozen=True, slots=True)
class SevereItem:
    """A severe error in one call event: that event is returned (SevereReturn).

    Attributes:
        fsn: the FileSequenceNumber of the TAP file the event came from.
        event_bytes: the raw CallEventDetail TLV exactly as received.
        errors: the error details (at least one).
        charge: the event's chargeType 00 charges plus CAMEL invocation fee (TAP units,
            scaled by tapDecimalPlaces), for totalSevereReturnValue.
        tax: the event's tax values, for totalSevereReturnTax.
    """

    fsn: str
    event_bytes: bytes
    errors: list[ErrorDetail]
    charge: int
    tax: int


@dataclass(frozen=True, slots=True)
class MissingItem:
    """Files not received (MissingReturn): FSNs ``start``..``end`` (``end`` None: one file)."""

    start: int
    end: int | None = None


@dataclass(frozen=True, slots=True)
class StopItem:
    """The partner's data stream has stopped after FSN ``last_seq`` (StopReturn)."""

    last_seq: int


RapItem = FatalItem | SevereItem | MissingItem | StopItem


@dataclass(frozen=True, slots=True)
class RapHeader:
    """The rapBatchControlInfoRap of a RAP file.

    Attributes:
        sender: the RAP sender's TADIG code: the HPMN, i.e. the *recipient* of the TAP file.
        recipient: the VPMN whose TAP file is returned (the TAP file's sender).
        rap_fsn: RapFileSequenceNumber, 1..99999 (own sequence per partner, test/live apart).
        test: test data (fileTypeIndicator ``T``).
        created_local: creation time, local, ``CCYYMMDDhhmmss`` (also used as available time).
        utc_offset: ``+hhmm`` / ``-hhmm`` of ``created_local``.
        tap_spec: specificationVersionNumber of the returned TAP files (3).
        tap_release: releaseVersionNumber of the returned TAP files (9..12).
        tap_decimal_places: tapDecimalPlaces of the returned TAP files (scale of the totals).
        tap_currency: tapCurrency of the returned TAP files, when not SDR.
        roaming_partner: RoamingPartner (when the RAP is sent by a clearing house).
    """

    sender: str
    recipient: str
    rap_fsn: int
    test: bool
    created_local: str
    utc_offset: str
    tap_spec: int = 3
    tap_release: int = 12
    tap_decimal_places: int | None = None
    tap_currency: str | None = None
    roaming_partner: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnedEvent:
    """A SevereReturn read from a partner's RAP.

    Attributes:
        fsn: FileSequenceNumber of our TAP file the event was in.
        event_bytes: the returned CallEventDetail TLV, byte for byte as in the RAP.
        errors: the error details.
        kind: the event kind (``mobileOriginatedCall``, ``gprsCall``, …).
        value: the asn1tools value of the event (a ``(kind, {...})`` tuple), None when it does
            not decode with the TAP module of the RAP's TAP release.
        charge: chargeType 00 charges plus CAMEL invocation fees; None when not decodable.
        tax: sum of the tax values; None when not decodable.
        problem: why ``value`` is None.
        offset: byte offset of the SevereReturn in the RAP file.
    """

    fsn: str
    event_bytes: bytes
    errors: list[ErrorDetail]
    kind: str
    value: Any | None
    charge: int | None
    tax: int | None
    problem: str | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class AuditMismatch:
    """A rapAuditControlInfo figure that does not agree with the return details."""

    item: str  # totalSevereReturnValue | totalSevereReturnTax | returnDetailsCount
    declared: int | None
    computed: int | None
    message: str


@dataclass(frozen=True, slots=True)
class RapFile:
    """A RAP ReturnBatch as read by :func:`read_rap`.

    Attributes:
        header: the batch control info (``created_local``/``utc_offset`` = creation stamp).
        available_local: rapFileAvailableTimeStamp, local ``CCYYMMDDhhmmss``.
        available_utc_offset: its UTC offset.
        items: the returns in file order; a FatalReturn naming several groups gives one
            :class:`FatalItem` per group (in the RAP-0105 member order).
        total_severe_return_value: as declared in rapAuditControlInfo.
        total_severe_return_tax: as declared (None when absent).
        return_details_count: as declared.
        mismatches: what does not reconcile (empty when the audit agrees).
    """

    header: RapHeader
    available_local: str
    available_utc_offset: str
    items: list[FatalItem | ReturnedEvent | MissingItem | StopItem]
    total_severe_return_value: int
    total_severe_return_tax: int | None
    return_details_count: int
    mismatches: list[AuditMismatch] = field(default_factory=list)

    @property
    def fatal(self) -> list[FatalItem]:
        """The fatal returns (one per group in error)."""
        return [i for i in self.items if isinstance(i, FatalItem)]

    @property
    def severe(self) -> list[ReturnedEvent]:
        """The returned events."""
        return [i for i in self.items if isinstance(i, ReturnedEvent)]

    @property
    def missing(self) -> list[MissingItem]:
        """The missing FSN ranges."""
        return [i for i in self.items if isinstance(i, MissingItem)]

    @property
    def stop(self) -> list[StopItem]:
        """The stop returns."""
        return [i for i in self.items if isinstance(i, StopItem)]


# ---------------------------------------------------------------------------------------------
# writing


def rap_file_name(header: RapHeader) -> str:
    """``RC`` (live) / ``RT`` (test) + sender + recipient + RAP FSN on 5 digits.

    Example: ``RCHKGCLUSAU900007`` (HKGCL returns USAU9's TAP files).
    """
    _check_party("sender", header.sender)
    _check_party("recipient", header.recipient)
    _check_seq("rap_fsn", header.rap_fsn)
    return str(RapName(header.test, header.sender, header.recipient, header.rap_fsn))


def write_rap(header: RapHeader, items: Sequence[RapItem]) -> bytes:
    """Encode a RAP 1.5 ReturnBatch (definite lengths; returned TAP bytes spliced as received).

    Fatal items of the same FSN are written as *one* FatalReturn (RAP 1.5 has one optional
    xxxError member per group), placed where the first of them is; every other item is one
    ReturnDetail, in the order given. ``returnDetailsCount`` counts the ReturnDetails written;
    ``totalSevereReturnValue`` / ``totalSevereReturnTax`` sum the severe items' charge and tax.
    The same arguments always give the same bytes.

    Raises:
        EncodeError: a header field or item that cannot be written (bad TADIG code, FSN out of
            range, raw bytes that are not one complete TLV of the expected tag, no errors, the
            same group twice for one FSN, …).
    """
    _check_header(header)
    try:
        s, g = _schema(header.tap_release)
    except DecodeError as exc:
        raise EncodeError(exc.reason) from None
    event_tags = _event_tags(g)

    slots: list[bytes | dict[FatalGroup, FatalItem]] = []
    fatal_by_fsn: dict[str, dict[FatalGroup, FatalItem]] = {}
    total_value = 0
    total_tax = 0
    for n, item in enumerate(items):
        where = f"item {n}"
        if isinstance(item, FatalItem):
            _check_fatal(item, where)
            groups = fatal_by_fsn.get(item.fsn)
            if groups is None:
                groups = fatal_by_fsn[item.fsn] = {}
                slots.append(groups)
            if item.group in groups:
                msg = f"{where}: a second {item.group} error for FSN {item.fsn!r}; put all its "
                msg += "error details in one FatalItem"
                raise EncodeError(msg)
            groups[item.group] = item
        elif isinstance(item, SevereItem):
            slots.append(_severe_return(s, item, event_tags, where))
            total_value += item.charge
            total_tax += item.tax
        elif isinstance(item, MissingItem):
            _check_seq(f"{where}: start", item.start)
            value: dict[str, Any] = {"startMissingSeqNumber": _fsn(item.start)}
            if item.end is not None:
                _check_seq(f"{where}: end", item.end)
                value["endMissingSeqNumber"] = _fsn(item.end)
            slots.append(_encode(s, "MissingReturn", value))
        elif isinstance(item, StopItem):
            _check_seq(f"{where}: last_seq", item.last_seq)
            slots.append(_encode(s, "StopReturn", {"lastSeqNumber": _fsn(item.last_seq)}))
        else:
            raise EncodeError(f"{where}: not a RAP item: {type(item).__name__}")

    details = b"".join(
        slot if isinstance(slot, bytes) else _fatal_return(s, slot) for slot in slots
    )
    audit = {
        "totalSevereReturnValue": total_value,
        "returnDetailsCount": len(slots),
        "totalSevereReturnTax": total_tax,
    }
    body = b"".join(
        [
            _encode(s, "RapBatchControlInfo", _bci_value(header)),
            _tlv(_T_RETURN_DETAILS, details),
            _encode(s, "RapAuditControlInfo", audit),
        ]
    )
    return _tlv(_T_RETURN_BATCH, body)


def _tlv(key: int, content: bytes) -> bytes:
    return encode_header(key, True, len(content)) + content


def _encode(s: Any, type_name: str, value: Any) -> bytes:
    try:
        return bytes(s.encode(type_name, value))
    except (asn1tools.Error, ValueError, TypeError, KeyError) as exc:
        raise EncodeError(f"cannot encode {type_name}: {exc}") from None


def _fsn(n: int) -> bytes:
    return f"{n:05d}".encode("ascii")


def _ascii(what: str, text: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} {text!r} is not ASCII") from None


def _check_party(what: str, code: object) -> None:
    if not isinstance(code, str) or not _TADIG.fullmatch(code):
        raise EncodeError(f"{what} {code!r} is not a TADIG code (5 characters A-Z, 0-9)")


def _check_int(what: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"{what} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f"..{high}"
        raise EncodeError(f"{what} {value} is out of range ({low}{upper})")


def _check_seq(what: str, value: object) -> None:
    _check_int(what, value, 1, 99999)


def _check_stamp(local: object, offset: object) -> None:
    if not isinstance(local, str) or not _STAMP.fullmatch(local):
        raise EncodeError(f"created_local {local!r} is not CCYYMMDDhhmmss")
    if not isinstance(offset, str) or not _OFFSET.fullmatch(offset):
        raise EncodeError(f"utc_offset {offset!r} is not +hhmm / -hhmm")


def _check_header(h: RapHeader) -> None:
    _check_party("sender", h.sender)
    _check_party("recipient", h.recipient)
    _check_seq("rap_fsn", h.rap_fsn)
    _check_stamp(h.created_local, h.utc_offset)
    if h.tap_spec != 3 or h.tap_release not in asn1.RAP_TAP_RELEASES:
        raise EncodeError(f"cannot return TAP {h.tap_spec}.{h.tap_release} files in RAP 1.5")
    if h.tap_decimal_places is not None:
        _check_int("tap_decimal_places", h.tap_decimal_places, 0, 6)
    if h.tap_currency is not None and not _CURRENCY.fullmatch(h.tap_currency):
        raise EncodeError(f"tap_currency {h.tap_currency!r} is not an ISO 4217 code")
    if h.roaming_partner is not None:
        _check_party("roaming_partner", h.roaming_partner)


def _stamp(local: str, offset: str) -> dict[str, bytes]:
    return {"localTimeStamp": local.encode("ascii"), "utcTimeOffset": offset.encode("ascii")}


def _bci_value(h: RapHeader) -> dict[str, Any]:
    value: dict[str, Any] = {
        "sender": h.sender.encode("ascii"),
        "recipient": h.recipient.encode("ascii"),
        "rapFileSequenceNumber": _fsn(h.rap_fsn),
        "rapFileCreationTimeStamp": _stamp(h.created_local, h.utc_offset),
        "rapFileAvailableTimeStamp": _stamp(h.created_local, h.utc_offset),
        "specificationVersionNumber": h.tap_spec,
        "releaseVersionNumber": h.tap_release,
        "rapSpecificationVersionNumber": RAP_SPECIFICATION_VERSION,
        "rapReleaseVersionNumber": RAP_RELEASE_VERSION,
    }
    if h.test:
        value["fileTypeIndicator"] = b"T"
    if h.roaming_partner is not None:
        value["roamingPartner"] = h.roaming_partner.encode("ascii")
    if h.tap_decimal_places is not None:
        value["tapDecimalPlaces"] = h.tap_decimal_places
    if h.tap_currency is not None:
        value["tapCurrency"] = h.tap_currency.encode("ascii")
    return value


def _error_list_value(errors: Sequence[ErrorDetail], where: str) -> list[dict[str, Any]]:
    if not errors:
        raise EncodeError(f"{where}: a return needs at least one error detail")
    out = []
    for e in errors:
        if not isinstance(e, ErrorDetail):
            raise EncodeError(f"{where}: not an ErrorDetail: {type(e).__name__}")
        _check_int(f"{where}: error code", e.code, 0)
        value: dict[str, Any] = {}
        if e.path:
            ctx = []
            for p in e.path:
                _check_int(f"{where}: pathItemId", p.item_id, 0)
                _check_int(f"{where}: itemOccurrence", p.occurrence, 1)
                _check_int(f"{where}: itemLevel", p.level, 1)
                ctx.append(
                    {"pathItemId": p.item_id, "itemOccurrence": p.occurrence, "itemLevel": p.level}
                )
            value["errorContext"] = ctx
        if e.item_offset is not None:
            _check_int(f"{where}: item offset", e.item_offset, 0)
            value["itemOffset"] = e.item_offset
        value["errorCode"] = e.code
        out.append(value)
    return out


def _one_tlv(raw: object, what: str) -> TLV:
    """The single complete BER element that ``raw`` must be."""
    if not isinstance(raw, bytes | bytearray) or not raw:
        raise EncodeError(f"{what}: no bytes")
    try:
        node = element_at(bytes(raw), 0)
    except DecodeError as exc:
        raise EncodeError(f"{what}: not a BER element: {exc.reason}") from None
    if node.end != len(raw):
        raise EncodeError(f"{what}: {len(raw) - node.end} byte(s) after the element")
    if not node.constructed:
        raise EncodeError(f"{what}: a primitive element, expected a constructed group")
    return node


def _check_fatal(item: FatalItem, where: str) -> None:
    spec = FATAL_GROUPS.get(item.group)
    if spec is None:
        raise EncodeError(f"{where}: unknown fatal group {item.group!r}")
    _ascii(f"{where}: fsn", item.fsn)
    if spec.tap_tag is None:
        if item.group_bytes:
            msg = f"{where}: a transferBatch error carries no group copy in RAP 1.5; "
            msg += "group_bytes must be empty"
            raise EncodeError(msg)
    else:
        node = _one_tlv(item.group_bytes, f"{where}: {item.group} bytes")
        if node.key != tag_key(APPLICATION, spec.tap_tag):
            msg = f"{where}: {item.group} bytes start with the wrong tag "
            msg += f"(expected [APPLICATION {spec.tap_tag}])"
            raise EncodeError(msg)
    _error_list_value(item.errors, where)


def _fatal_return(s: Any, groups: dict[FatalGroup, FatalItem]) -> bytes:
    first = next(iter(groups.values()))
    parts = [_encode(s, "FileSequenceNumber", _ascii("fsn", first.fsn))]
    for name, spec in FATAL_GROUPS.items():  # member order of FatalReturn
        item = groups.get(name)
        if item is None:
            continue
        errors = _encode(s, "ErrorDetailList", _error_list_value(item.errors, name))
        content = bytes(item.group_bytes) + errors
        parts.append(_tlv(tag_key(APPLICATION, spec.error_tag), content))
    return _tlv(_T_FATAL, b"".join(parts))


def _schema(tap_release: int) -> tuple[Any, Grammar]:
    """The compiled RAP module and its tag grammar for a TAP release."""
    try:
        return asn1.spec("rap", tap_release), asn1.grammar("rap", tap_release)
    except asn1tools.Error as exc:
        # e.g. the RAP-0105 variant for TAP < 3.11 that clearing.codecs.asn1 derives
        msg = f"no usable RAP 1.5 module for TAP 3.{tap_release}: {str(exc)[:120]}"
        raise DecodeError(msg, hint="a schema problem, not a data problem") from None


def _event_tags(g: Grammar) -> set[int]:
    kids = g.children.get("SevereReturn", {})
    return {k for k, c in kids.items() if c.name not in _NOT_EVENTS}


def _severe_return(s: Any, item: SevereItem, event_tags: set[int], where: str) -> bytes:
    fsn = _ascii(f"{where}: fsn", item.fsn)
    node = _one_tlv(item.event_bytes, f"{where}: event bytes")
    if node.key not in event_tags:
        raise EncodeError(f"{where}: event bytes are not a CallEventDetail of this TAP release")
    _check_int(f"{where}: charge", item.charge, 0)
    _check_int(f"{where}: tax", item.tax, 0)
    errors = _encode(s, "ErrorDetailList", _error_list_value(item.errors, where))
    content = _encode(s, "FileSequenceNumber", fsn) + bytes(item.event_bytes) + errors
    return _tlv(_T_SEVERE, content)


# ---------------------------------------------------------------------------------------------
# reading


def read_rap(data: bytes, *, file: str | None = None) -> RapFile:
    """Decode a RAP 1.5 ReturnBatch (a partner's RAP about our TAP-out).

    The returned raw bytes (events, groups) are kept byte for byte; the audit totals are
    checked against the returned events (``mismatches``).

    Raises:
        DecodeError: with file, offset and element path, for anything that is not a readable
            RAP 1.5 ReturnBatch (an ACK, truncated or garbage bytes, schema violations).
    """
    try:
        return _read_rap(bytes(data))
    except DecodeError as exc:
        raise exc.with_file(file) if file else exc from None
    except (asn1tools.Error, ValueError, IndexError, KeyError, TypeError, RecursionError) as exc:
        err = DecodeError(f"undecodable RAP content: {str(exc)[:200]}")
        raise err.with_file(file) if file else err from None


class _Reader:
    def __init__(self, data: bytes, tap_release: int) -> None:
        self.data = data
        self.spec, self.grammar = _schema(tap_release)

    def members(self, node: TLV, type_name: str, path: str) -> list[tuple[str, TLV]]:
        """The children of ``node`` named by the grammar (unknown or repeated tags refused)."""
        out: list[tuple[str, TLV]] = []
        seen: set[str] = set()
        for child in iter_children(self.data, node):
            meaning = self.grammar.child(type_name, child.key)
            if meaning is None:
                raise DecodeError(
                    f"unexpected tag {tag_name(child.key)} inside `{type_name}`",
                    offset=child.offset,
                    path=path,
                )
            if meaning.name in seen:
                raise DecodeError(f"`{meaning.name}` occurs twice", offset=child.offset, path=path)
            if child.constructed != meaning.constructed:
                raise DecodeError(
                    f"`{meaning.name}` has the wrong form (constructed/primitive)",
                    offset=child.offset,
                    path=f"{path}.{meaning.name}",
                )
            seen.add(meaning.name)
            out.append((meaning.name, child))
        return out

    def decode(self, type_name: str, node: TLV, path: str) -> Any:
        """asn1tools value of one element, errors placed in the file."""
        piece = self.data[node.offset : node.end]
        try:
            return _decode_piece(self.spec, type_name, piece)
        except asn1tools.Error as exc:
            reason, off, inner = asn1.asn1_error_parts(exc)
            where = path if not inner else f"{path} ({inner})"
            raise DecodeError(
                f"schema violation: {reason}",
                offset=node.offset + (off or 0),
                path=where,
                hint="the RAP file does not follow RAP-0105",
            ) from None
        except (ValueError, IndexError, KeyError, TypeError, RecursionError) as exc:
            raise DecodeError(
                f"undecodable `{type_name}`: {exc!r}", offset=node.offset, path=path
            ) from None


def _decode_piece(s: Any, type_name: str, piece: bytes) -> Any:
    try:
        value, _length = s.decode_with_length(type_name, piece)
    except asn1tools.Error as exc:
        # asn1tools cannot find the end of some indefinite-length SEQUENCEs (see asn1.py)
        if "end-of-contents" not in str(getattr(exc, "message", exc)):
            raise
        value, _length = s.decode_with_length(type_name, to_definite(piece))
    return value


def _text(raw: Any) -> str:
    return bytes(raw).decode("latin-1")


def _seq_number(raw: Any, path: str, node: TLV) -> int:
    text = _text(raw)
    if not text.isascii() or not text.isdigit():
        raise DecodeError(f"sequence number {text!r} is not digits", offset=node.offset, path=path)
    return int(text)


def _require(found: dict[str, TLV], names: Sequence[str], node: TLV, path: str) -> None:
    for name in names:
        if name not in found:
            raise DecodeError(f"mandatory `{name}` is missing", offset=node.offset, path=path)


def _read_rap(data: bytes) -> RapFile:
    info = asn1.sniff(data)
    if info.kind != "rap":
        raise DecodeError(
            f"not a RAP ReturnBatch but a {info.kind.upper()} file",
            offset=0,
            hint="read an Acknowledgement with clearing.returns.read_ack",
        )
    if info.length != len(data):
        raise DecodeError(
            f"{len(data) - info.length} trailing byte(s) after the top-level element",
            offset=info.length,
        )
    rel = info.tap_release or 12
    r = _Reader(data, rel)
    top = element_at(data, 0)
    path = "returnBatch"
    kids = r.members(top, "ReturnBatch", path)
    found = dict(kids)
    _require(found, ("rapBatchControlInfoRap", "returnDetails", "rapAuditControlInfo"), top, path)
    order = [name for name, _ in kids]
    if order != ["rapBatchControlInfoRap", "returnDetails", "rapAuditControlInfo"]:
        raise DecodeError(f"members out of order: {order}", offset=top.offset, path=path)

    bci_path = f"{path}.rapBatchControlInfoRap"
    bci = r.decode("RapBatchControlInfo", found["rapBatchControlInfoRap"], bci_path)
    header = _header(bci, found["rapBatchControlInfoRap"], bci_path)
    available = bci["rapFileAvailableTimeStamp"]

    items: list[FatalItem | ReturnedEvent | MissingItem | StopItem] = []
    details = found["returnDetails"]
    n_details = 0
    for n, (name, node) in enumerate(_list(r, details)):
        n_details += 1
        item_path = f"{path}.returnDetails[{n}].{name}"
        if name == "stopReturn":
            v = r.decode("StopReturn", node, item_path)
            items.append(StopItem(_seq_number(v["lastSeqNumber"], item_path, node)))
        elif name == "missingReturn":
            v = r.decode("MissingReturn", node, item_path)
            start = _seq_number(v["startMissingSeqNumber"], item_path, node)
            end_raw = v.get("endMissingSeqNumber")
            end = None if end_raw is None else _seq_number(end_raw, item_path, node)
            items.append(MissingItem(start, end))
        elif name == "fatalReturn":
            items.extend(_fatal_items(r, node, item_path))
        else:
            items.append(_returned_event(r, node, item_path))

    audit_path = f"{path}.rapAuditControlInfo"
    audit = r.decode("RapAuditControlInfo", found["rapAuditControlInfo"], audit_path)
    declared_tax = audit.get("totalSevereReturnTax")
    rap = RapFile(
        header=header,
        available_local=_text(available.get("localTimeStamp", b"")),
        available_utc_offset=_text(available.get("utcTimeOffset", b"")),
        items=items,
        total_severe_return_value=int(audit["totalSevereReturnValue"]),
        total_severe_return_tax=None if declared_tax is None else int(declared_tax),
        return_details_count=int(audit["returnDetailsCount"]),
    )
    rap.mismatches.extend(_reconcile(rap, n_details))
    return rap


def _list(r: _Reader, details: TLV) -> list[tuple[str, TLV]]:
    out: list[tuple[str, TLV]] = []
    for child in iter_children(r.data, details):
        meaning = r.grammar.child("ReturnDetailList", child.key)
        if meaning is None or not child.constructed:
            raise DecodeError(
                f"unexpected tag {tag_name(child.key)} in returnDetails",
                offset=child.offset,
                path=f"returnBatch.returnDetails[{len(out)}]",
                hint="expected a stop, missing, fatal or severe return",
            )
        out.append((meaning.name, child))
    return out


def _header(bci: dict[str, Any], node: TLV, path: str) -> RapHeader:
    created = bci["rapFileCreationTimeStamp"]
    fti = bci.get("fileTypeIndicator")
    spec_v = bci.get("specificationVersionNumber")
    rel_v = bci.get("releaseVersionNumber")
    dec = bci.get("tapDecimalPlaces")
    cur = bci.get("tapCurrency")
    partner = bci.get("roamingPartner")
    return RapHeader(
        sender=_text(bci["sender"]),
        recipient=_text(bci["recipient"]),
        rap_fsn=_seq_number(bci["rapFileSequenceNumber"], f"{path}.rapFileSequenceNumber", node),
        test=fti is not None and _text(fti) == "T",
        created_local=_text(created.get("localTimeStamp", b"")),
        utc_offset=_text(created.get("utcTimeOffset", b"")),
        tap_spec=int(spec_v) if spec_v is not None else 3,
        tap_release=int(rel_v) if rel_v is not None else 12,
        tap_decimal_places=None if dec is None else int(dec),
        tap_currency=None if cur is None else _text(cur),
        roaming_partner=None if partner is None else _text(partner),
    )


def _errors(value: list[dict[str, Any]]) -> list[ErrorDetail]:
    out = []
    for e in value:
        path = tuple(
            PathItem(int(c["pathItemId"]), int(c.get("itemOccurrence", 1)), int(c["itemLevel"]))
            for c in e.get("errorContext", [])
        )
        offset = e.get("itemOffset")
        out.append(ErrorDetail(int(e["errorCode"]), path, None if offset is None else int(offset)))
    return out


def _fatal_items(r: _Reader, node: TLV, path: str) -> list[FatalItem]:
    kids = r.members(node, "FatalReturn", path)
    found = dict(kids)
    _require(found, ("fileSequenceNumber",), node, path)
    fsn = _text(r.decode("FileSequenceNumber", found["fileSequenceNumber"], path))
    out: list[FatalItem] = []
    for member, child in kids:
        group = _GROUP_BY_MEMBER.get(member)
        if group is None:
            continue
        spec = FATAL_GROUPS[group]
        gpath = f"{path}.{member}"
        parts = dict(r.members(child, spec.error_type, gpath))
        _require(parts, ("errorDetail",), child, gpath)
        group_bytes = b""
        if spec.tap_tag is not None:
            copy = [t for name, t in parts.items() if name != "errorDetail"]
            if not copy:
                raise DecodeError(
                    f"the copy of `{group}` is missing", offset=child.offset, path=gpath
                )
            group_bytes = r.data[copy[0].offset : copy[0].end]
        errors = _errors(r.decode("ErrorDetailList", parts["errorDetail"], f"{gpath}.errorDetail"))
        out.append(FatalItem(fsn, group, group_bytes, errors))
    if not out:
        raise DecodeError("FatalReturn names no group in error", offset=node.offset, path=path)
    return out


def _returned_event(r: _Reader, node: TLV, path: str) -> ReturnedEvent:
    kids = r.members(node, "SevereReturn", path)
    found = dict(kids)
    events = [(name, t) for name, t in kids if name not in _NOT_EVENTS]
    _require(found, ("fileSequenceNumber",), node, path)
    if not events:
        raise DecodeError("mandatory `callEventDetail` is missing", offset=node.offset, path=path)
    _require(found, ("errorDetail",), node, path)
    fsn = _text(r.decode("FileSequenceNumber", found["fileSequenceNumber"], path))
    kind, ev = events[0]
    raw = r.data[ev.offset : ev.end]
    errors = _errors(r.decode("ErrorDetailList", found["errorDetail"], f"{path}.errorDetail"))
    value: Any | None = None
    problem: str | None = None
    charge: int | None = None
    tax: int | None = None
    try:
        value = _decode_piece(r.spec, "CallEventDetail", raw)
    except asn1tools.Error as exc:
        reason, off, inner = asn1.asn1_error_parts(exc)
        at = "" if off is None else f" at offset {ev.offset + off}"
        problem = f"the event does not decode with its TAP module: {reason}{at}"
        if inner:
            problem += f" ({inner})"
    except (ValueError, IndexError, KeyError, TypeError, RecursionError) as exc:
        problem = f"the event does not decode with its TAP module: {exc!r}"
    if value is not None:
        charge, tax = _event_money(value)
    return ReturnedEvent(fsn, raw, errors, kind, value, charge, tax, problem, node.offset)


def _event_money(value: Any) -> tuple[int, int]:
    """chargeType 00 charges + CAMEL invocation fees, and tax values, of one decoded event.

    Same rule as the fast decoder's ``charge + camel_fee`` and ``tax`` columns.
    """
    charge = 0
    tax = 0
    # (value, is the messagingEvent itself: its `charge` is of type 00 without a ChargeType)
    stack: list[tuple[Any, bool]] = []
    if isinstance(value, tuple) and len(value) == 2:
        stack.append((value[1], value[0] == "messagingEvent"))
    else:
        stack.append((value, False))
    while stack:
        v, direct = stack.pop()
        if isinstance(v, list):
            stack.extend((x, False) for x in v)
        elif isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str):
            stack.append((v[1], False))
        elif isinstance(v, dict):
            for key, sub in v.items():
                if key == "taxValue" and isinstance(sub, int):
                    tax += sub
                elif key == "camelInvocationFee" and isinstance(sub, int):
                    charge += sub
                elif key == "charge" and isinstance(sub, int):
                    ctype = v.get("chargeType")
                    if direct or (ctype is not None and bytes(ctype) == b"00"):
                        charge += sub
                elif isinstance(sub, dict | list | tuple):
                    stack.append((sub, False))
    return charge, tax


def _reconcile(rap: RapFile, n_details: int) -> list[AuditMismatch]:
    out: list[AuditMismatch] = []
    if rap.return_details_count != n_details:
        out.append(
            AuditMismatch(
                "returnDetailsCount",
                rap.return_details_count,
                n_details,
                f"returnDetailsCount is {rap.return_details_count} but the file has "
                f"{n_details} return details",
            )
        )
    severe = rap.severe
    undecoded = [e for e in severe if e.charge is None or e.tax is None]
    if undecoded:
        out.append(
            AuditMismatch(
                "totalSevereReturnValue",
                rap.total_severe_return_value,
                None,
                f"{len(undecoded)} returned event(s) do not decode: the totals cannot be checked",
            )
        )
        return out
    value = sum(e.charge or 0 for e in severe)
    tax = sum(e.tax or 0 for e in severe)
    if value != rap.total_severe_return_value:
        out.append(
            AuditMismatch(
                "totalSevereReturnValue",
                rap.total_severe_return_value,
                value,
                f"totalSevereReturnValue is {rap.total_severe_return_value} but the returned "
                f"events sum to {value}",
            )
        )
    declared_tax = rap.total_severe_return_tax
    if declared_tax is not None and declared_tax != tax:
        out.append(
            AuditMismatch(
                "totalSevereReturnTax",
                declared_tax,
                tax,
                f"totalSevereReturnTax is {declared_tax} but the returned events' taxes sum to "
                f"{tax}",
            )
        )
    return out
