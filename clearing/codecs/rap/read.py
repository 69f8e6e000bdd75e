"""RAP 1.5 (GSMA TD.32) reader: a partner's RAP about our TAP-out.

:func:`read_rap` walks the envelope with the RAP tag grammar, keeps the returned raw bytes and
decodes every generated part with asn1tools. A returned event that does not decode with its TAP
module does not stop the file: its value is None and its ``problem`` says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asn1tools

from clearing.codecs import asn1
from clearing.codecs.ber import TLV, element_at, iter_children, tag_name
from clearing.codecs.indefinite import to_definite
from clearing.codecs.rap.records import (
    FATAL_GROUPS,
    GROUP_BY_MEMBER,
    NOT_EVENTS,
    AuditMismatch,
    ErrorDetail,
    FatalItem,
    MissingItem,
    PathItem,
    RapFile,
    RapHeader,
    ReturnedEvent,
    StopItem,
    rap_schema,
)
from clearing.codecs.tap3.values import latin1
from clearing.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["read_rap"]


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
        self.spec, self.grammar = rap_schema(tap_release)

    def members(self, node: TLV, type_name: str, path: str) -> list[tuple[str, TLV]]:
        """The children of ``node`` named by the grammar (unknown or repeated tags refused)."""
        out: list[tuple[str, TLV]] = []
        seen: set[str] = set()
        for child in iter_children(self.data, node):
            meaning = self.grammar.child(type_name, child.key)
            if meaning is None:
                msg = f"unexpected tag {tag_name(child.key)} inside `{type_name}`"
                raise DecodeError(
                    msg,
                    offset=child.offset,
                    path=path,
                )
            if meaning.name in seen:
                msg = f"`{meaning.name}` occurs twice"
                raise DecodeError(msg, offset=child.offset, path=path)
            if child.constructed != meaning.constructed:
                msg = f"`{meaning.name}` has the wrong form (constructed/primitive)"
                raise DecodeError(
                    msg,
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
            msg = f"schema violation: {reason}"
            raise DecodeError(
                msg,
                offset=node.offset + (off or 0),
                path=where,
                hint="the RAP file does not follow RAP-0105",
            ) from None
        except (ValueError, IndexError, KeyError, TypeError, RecursionError) as exc:
            msg = f"undecodable `{type_name}`: {exc!r}"
            raise DecodeError(msg, offset=node.offset, path=path) from None


def _decode_piece(s: Any, type_name: str, piece: bytes) -> Any:
    try:
        value, _length = s.decode_with_length(type_name, piece)
    except asn1tools.Error as exc:
        # asn1tools cannot find the end of some indefinite-length SEQUENCEs (see asn1.py)
        if "end-of-contents" not in str(getattr(exc, "message", exc)):
            raise
        value, _length = s.decode_with_length(type_name, to_definite(piece))
    return value


def _seq_number(raw: Any, path: str, node: TLV) -> int:
    text = latin1(raw)
    if not text.isascii() or not text.isdigit():
        msg = f"sequence number {text!r} is not digits"
        raise DecodeError(msg, offset=node.offset, path=path)
    return int(text)


def _require(found: dict[str, TLV], names: Sequence[str], node: TLV, path: str) -> None:
    for name in names:
        if name not in found:
            msg = f"mandatory `{name}` is missing"
            raise DecodeError(msg, offset=node.offset, path=path)


def _read_rap(data: bytes) -> RapFile:
    info = asn1.sniff(data)
    if info.kind != "rap":
        msg = f"not a RAP ReturnBatch but a {info.kind.upper()} file"
        raise DecodeError(
            msg,
            offset=0,
            hint="read an Acknowledgement with clearing.codecs.rap.read_ack",
        )
    if info.length != len(data):
        raise asn1.trailing_error(data, info.length)
    rel = info.tap_release or 12
    r = _Reader(data, rel)
    top = element_at(data, 0)
    path = "returnBatch"
    kids = r.members(top, "ReturnBatch", path)
    found = dict(kids)
    _require(found, ("rapBatchControlInfoRap", "returnDetails", "rapAuditControlInfo"), top, path)
    order = [name for name, _ in kids]
    if order != ["rapBatchControlInfoRap", "returnDetails", "rapAuditControlInfo"]:
        msg = f"members out of order: {order}"
        raise DecodeError(msg, offset=top.offset, path=path)

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
        available_local=latin1(available.get("localTimeStamp", b"")),
        available_utc_offset=latin1(available.get("utcTimeOffset", b"")),
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
            msg = f"unexpected tag {tag_name(child.key)} in returnDetails"
            raise DecodeError(
                msg,
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
        sender=latin1(bci["sender"]),
        recipient=latin1(bci["recipient"]),
        rap_fsn=_seq_number(bci["rapFileSequenceNumber"], f"{path}.rapFileSequenceNumber", node),
        test=fti is not None and latin1(fti) == "T",
        created_local=latin1(created.get("localTimeStamp", b"")),
        utc_offset=latin1(created.get("utcTimeOffset", b"")),
        tap_spec=int(spec_v) if spec_v is not None else 3,
        tap_release=int(rel_v) if rel_v is not None else 12,
        tap_decimal_places=None if dec is None else int(dec),
        tap_currency=None if cur is None else latin1(cur),
        roaming_partner=None if partner is None else latin1(partner),
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
    fsn = latin1(r.decode("FileSequenceNumber", found["fileSequenceNumber"], path))
    out: list[FatalItem] = []
    for member, child in kids:
        group = GROUP_BY_MEMBER.get(member)
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
                msg = f"the copy of `{group}` is missing"
                raise DecodeError(msg, offset=child.offset, path=gpath)
            group_bytes = r.data[copy[0].offset : copy[0].end]
        errors = _errors(r.decode("ErrorDetailList", parts["errorDetail"], f"{gpath}.errorDetail"))
        out.append(FatalItem(fsn, group, group_bytes, errors))
    if not out:
        msg = "FatalReturn names no group in error"
        raise DecodeError(msg, offset=node.offset, path=path)
    return out


def _returned_event(r: _Reader, node: TLV, path: str) -> ReturnedEvent:
    kids = r.members(node, "SevereReturn", path)
    found = dict(kids)
    events = [(name, t) for name, t in kids if name not in NOT_EVENTS]
    _require(found, ("fileSequenceNumber",), node, path)
    if not events:
        msg = "mandatory `callEventDetail` is missing"
        raise DecodeError(msg, offset=node.offset, path=path)
    _require(found, ("errorDetail",), node, path)
    fsn = latin1(r.decode("FileSequenceNumber", found["fileSequenceNumber"], path))
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
    """ChargeType 00 charges + CAMEL invocation fees, and tax values, of one decoded event.

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
