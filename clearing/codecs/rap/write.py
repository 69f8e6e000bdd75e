"""RAP 1.5 (GSMA TD.32) writer: the RAP ReturnBatch for a partner's TAP-in file.

A ``ReturnBatch [APPLICATION 534]`` holds a ``rapBatchControlInfoRap``, the ``returnDetails``
(FatalReturn, SevereReturn, MissingReturn, StopReturn) and a ``rapAuditControlInfo``.

Byte fidelity: a SevereReturn must echo the CallEventDetail exactly as it was received, and a
FatalReturn the offending TAP group, even when the partner encoded them with indefinite lengths.
asn1tools would re-encode them (definite lengths), so :func:`write_rap` encodes only the parts it
generates itself (header, error details, audit, missing/stop returns) with asn1tools and the
RAP-0105 module, and composes the envelopes around the raw TAP bytes with
:func:`clearing.codecs.ber.encode_header`. The result decodes with the published RAP-0105 module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asn1tools

from clearing.codecs import asn1
from clearing.codecs.ber import APPLICATION, TLV, element_at, encode_header, tag_key
from clearing.codecs.rap.records import (
    CURRENCY,
    FATAL_GROUPS,
    NOT_EVENTS,
    RAP_RELEASE_VERSION,
    RAP_SPECIFICATION_VERSION,
    T_FATAL,
    T_RETURN_BATCH,
    T_RETURN_DETAILS,
    T_SEVERE,
    ErrorDetail,
    FatalGroup,
    FatalItem,
    MissingItem,
    RapHeader,
    RapItem,
    SevereItem,
    StopItem,
    check_party,
    check_stamp,
    rap_schema,
)
from clearing.codecs.tap3.values import date_time_long
from clearing.errors import DecodeError, EncodeError
from clearing.names import RapName

if TYPE_CHECKING:
    from collections.abc import Sequence

    from clearing.codecs.grammar import Grammar

__all__ = ["rap_file_name", "write_rap"]


def rap_file_name(header: RapHeader) -> str:
    """``RC`` (live) / ``RT`` (test) + sender + recipient + RAP FSN on 5 digits.

    Example: ``RCHKGCLUSAU900007`` (HKGCL returns USAU9's TAP files).
    """
    check_party("sender", header.sender)
    check_party("recipient", header.recipient)
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
        s, g = rap_schema(header.tap_release)
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
            raise _wrong_type(where, "a RAP item", item)

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
            _tlv(T_RETURN_DETAILS, details),
            _encode(s, "RapAuditControlInfo", audit),
        ]
    )
    return _tlv(T_RETURN_BATCH, body)


def _tlv(key: int, content: bytes) -> bytes:
    return encode_header(key, True, len(content)) + content


def _encode(s: Any, type_name: str, value: Any) -> bytes:
    try:
        return bytes(s.encode(type_name, value))
    except (asn1tools.Error, ValueError, TypeError, KeyError) as exc:
        msg = f"cannot encode {type_name}: {exc}"
        raise EncodeError(msg) from None


def _wrong_type(where: str, expected: str, value: object) -> EncodeError:
    """The error for a value of the wrong type (a guard the types already rule out)."""
    msg = f"{where}: not {expected}: {type(value).__name__}"
    return EncodeError(msg)


def _fsn(n: int) -> bytes:
    return f"{n:05d}".encode("ascii")


def _ascii(what: str, text: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        msg = f"{what} {text!r} is not ASCII"
        raise EncodeError(msg) from None


def _check_int(what: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{what} must be an int, not {type(value).__name__}"
        raise EncodeError(msg)
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f"..{high}"
        msg = f"{what} {value} is out of range ({low}{upper})"
        raise EncodeError(msg)


def _check_seq(what: str, value: object) -> None:
    _check_int(what, value, 1, 99999)


def _check_header(h: RapHeader) -> None:
    check_party("sender", h.sender)
    check_party("recipient", h.recipient)
    _check_seq("rap_fsn", h.rap_fsn)
    check_stamp(h.created_local, h.utc_offset)
    if h.tap_spec != 3 or h.tap_release not in asn1.RAP_TAP_RELEASES:
        msg = f"cannot return TAP {h.tap_spec}.{h.tap_release} files in RAP 1.5"
        raise EncodeError(msg)
    if h.tap_decimal_places is not None:
        _check_int("tap_decimal_places", h.tap_decimal_places, 0, 6)
    if h.tap_currency is not None and not CURRENCY.fullmatch(h.tap_currency):
        msg = f"tap_currency {h.tap_currency!r} is not an ISO 4217 code"
        raise EncodeError(msg)
    if h.roaming_partner is not None:
        check_party("roaming_partner", h.roaming_partner)


def _bci_value(h: RapHeader) -> dict[str, Any]:
    value: dict[str, Any] = {
        "sender": h.sender.encode("ascii"),
        "recipient": h.recipient.encode("ascii"),
        "rapFileSequenceNumber": _fsn(h.rap_fsn),
        "rapFileCreationTimeStamp": date_time_long(h.created_local, h.utc_offset),
        "rapFileAvailableTimeStamp": date_time_long(h.created_local, h.utc_offset),
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
        msg = f"{where}: a return needs at least one error detail"
        raise EncodeError(msg)
    out = []
    for e in errors:
        if not isinstance(e, ErrorDetail):
            raise _wrong_type(where, "an ErrorDetail", e)
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
        msg = f"{what}: no bytes"
        raise EncodeError(msg)
    try:
        node = element_at(bytes(raw), 0)
    except DecodeError as exc:
        msg = f"{what}: not a BER element: {exc.reason}"
        raise EncodeError(msg) from None
    if node.end != len(raw):
        msg = f"{what}: {len(raw) - node.end} byte(s) after the element"
        raise EncodeError(msg)
    if not node.constructed:
        msg = f"{what}: a primitive element, expected a constructed group"
        raise EncodeError(msg)
    return node


def _check_fatal(item: FatalItem, where: str) -> None:
    spec = FATAL_GROUPS.get(item.group)
    if spec is None:
        msg = f"{where}: unknown fatal group {item.group!r}"
        raise EncodeError(msg)
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
    return _tlv(T_FATAL, b"".join(parts))


def _event_tags(g: Grammar) -> set[int]:
    kids = g.children.get("SevereReturn", {})
    return {k for k, c in kids.items() if c.name not in NOT_EVENTS}


def _severe_return(s: Any, item: SevereItem, event_tags: set[int], where: str) -> bytes:
    fsn = _ascii(f"{where}: fsn", item.fsn)
    node = _one_tlv(item.event_bytes, f"{where}: event bytes")
    if node.key not in event_tags:
        msg = f"{where}: event bytes are not a CallEventDetail of this TAP release"
        raise EncodeError(msg)
    _check_int(f"{where}: charge", item.charge, 0)
    _check_int(f"{where}: tax", item.tax, 0)
    errors = _encode(s, "ErrorDetailList", _error_list_value(item.errors, where))
    content = _encode(s, "FileSequenceNumber", fsn) + bytes(item.event_bytes) + errors
    return _tlv(T_SEVERE, content)
