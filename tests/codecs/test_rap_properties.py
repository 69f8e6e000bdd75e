"""RAP write → decode: what ``write_rap`` writes decodes back to its header and items.

Hypothesis draws a RAP header and return details: fatal returns (every group of RAP 1.5 but
the message description, each with a copy of a TAP group written by the TAP encoder), severe
returns (call events written by the columnar TAP encoder, :mod:`.tap_events`), missing and
stop returns, with error details of any path. The RAP is decoded by asn1tools with the
RAP-0105 and TAP-0312 modules compiled in the test from ``specs/asn1``, and read back by the
package's own reader: ``read_rap(write_rap(header, items))`` gives the header and the items
again (fatal items of one FSN in one FatalReturn, in RAP-0105 member order; a severe item as
the returned event with its charge and tax) and an audit that agrees.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import asn1tools
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.codecs.rap import (
    FATAL_GROUPS,
    ErrorDetail,
    FatalItem,
    MissingItem,
    PathItem,
    RapHeader,
    RapItem,
    ReturnedEvent,
    SevereItem,
    StopItem,
    read_rap,
    write_rap,
)
from clearing.codecs.tap3.encode import encode_events, encode_value

from .tap_events import events, expected_event, headers, value_columns

SPECS = Path(__file__).parents[2] / "specs" / "asn1"
TADIG = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=5, max_size=5)
FSN = st.integers(1, 99999).map(lambda n: f"{n:05d}")
SEQ = st.integers(1, 99999)
QUARTERS = (0, 15, 30, 45)
# the TAP group copied into each fatal return, and the TAP type that encodes it
COPIED = {
    "notification": ("Notification", "notification"),
    "batchControlInfo": ("BatchControlInfo", "batchControlInfo"),
    "accountingInfo": ("AccountingInfo", "accountingInfo"),
    "networkInfo": ("NetworkInfo", "networkInfo"),
    "auditControlInfo": ("AuditControlInfo", "auditControlInfo"),
}
GROUPS = ["transferBatch", *COPIED]


@cache
def rap_module() -> Any:
    return asn1tools.compile_files(
        [str(SPECS / "RAP-0105.asn"), str(SPECS / "TAP-0312.asn")], "ber"
    )


@dataclass(frozen=True)
class Drawn:
    """What the test wrote, with the asn1tools values it expects back."""

    header: RapHeader
    items: list[RapItem]
    group_values: dict[tuple[str, str], Any]  # (fsn, group) → the copied group's value
    event_values: dict[bytes, Any]  # event bytes → the event's asn1tools value


error_details = st.builds(
    ErrorDetail,
    code=st.integers(0, 2**31 - 1),
    path=st.lists(
        st.builds(
            PathItem,
            item_id=st.integers(0, 2**15),
            occurrence=st.integers(1, 2**15),
            level=st.integers(1, 20),
        ),
        max_size=4,
    ).map(tuple),
    item_offset=st.none() | st.integers(0, 2**31 - 1),
)
error_lists = st.lists(error_details, min_size=1, max_size=3)


@st.composite
def rap_headers(draw: Any) -> RapHeader:
    created = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)))
    sign = draw(st.sampled_from("+-"))
    return RapHeader(
        sender=draw(TADIG),
        recipient=draw(TADIG),
        rap_fsn=draw(SEQ),
        test=draw(st.booleans()),
        created_local=f"{created:%Y%m%d%H%M%S}",
        utc_offset=f"{sign}{draw(st.integers(0, 14)):02d}{draw(st.sampled_from(QUARTERS)):02d}",
        tap_release=12,
        tap_decimal_places=draw(st.none() | st.integers(0, 6)),
        tap_currency=draw(st.none() | st.sampled_from(["EUR", "USD", "XDR"])),
        roaming_partner=draw(st.none() | TADIG),
    )


def notification(h: dict[str, Any]) -> dict[str, Any]:
    bci = h["batchControlInfo"]
    keys = (
        "sender",
        "recipient",
        "fileSequenceNumber",
        "fileCreationTimeStamp",
        "fileAvailableTimeStamp",
        "transferCutOffTimeStamp",
        "specificationVersionNumber",
        "releaseVersionNumber",
    )
    return {k: bci[k] for k in keys} | (
        {"fileTypeIndicator": bci["fileTypeIndicator"]} if "fileTypeIndicator" in bci else {}
    )


@st.composite
def drawn(draw: Any) -> Drawn:
    items: list[RapItem] = []
    group_values: dict[tuple[str, str], Any] = {}
    event_values: dict[bytes, Any] = {}
    used: set[tuple[str, str]] = set()
    for kind in draw(st.lists(st.sampled_from(["fatal", "severe", "missing", "stop"]))):
        if kind == "fatal":
            fsn, group = draw(FSN), draw(st.sampled_from(GROUPS))
            if (fsn, group) in used:  # RAP 1.5: one error element per group and FSN
                continue
            used.add((fsn, group))
            raw = b""
            if group in COPIED:
                type_name, member = COPIED[group]
                h = draw(headers())
                value = {
                    "notification": notification(h),
                    "auditControlInfo": {
                        "totalCharge": draw(st.integers(0, 2**40)),
                        "totalTaxValue": draw(st.integers(0, 2**40)),
                        "totalDiscountValue": 0,
                        "callEventDetailsCount": draw(st.integers(0, 10**6)),
                    },
                }.get(group) or h[member]
                raw = encode_value(type_name, value)
                group_values[(fsn, group)] = value
            items.append(FatalItem(fsn, group, raw, draw(error_lists)))
        elif kind == "severe":
            row = draw(events())
            raw = encode_events(value_columns([row]))
            event_values[raw] = expected_event(row)
            tax = row["tax"] if row["taxed"] else 0
            items.append(SevereItem(draw(FSN), raw, draw(error_lists), row["charge"], tax))
        elif kind == "missing":
            items.append(MissingItem(draw(SEQ), draw(st.none() | SEQ)))
        else:
            items.append(StopItem(draw(SEQ)))
    return Drawn(draw(rap_headers()), items, group_values, event_values)


def slots(items: list[RapItem]) -> list[RapItem | list[FatalItem]]:
    """The return details ``write_rap`` writes: the fatal items of one FSN together, where
    the first of them is, in RAP-0105 member order."""
    out: list[RapItem | list[FatalItem]] = []
    fatal: dict[str, list[FatalItem]] = {}
    for item in items:
        if isinstance(item, FatalItem):
            if item.fsn not in fatal:
                fatal[item.fsn] = []
                out.append(fatal[item.fsn])
            fatal[item.fsn].append(item)
        else:
            out.append(item)
    order = list(FATAL_GROUPS)
    for group in fatal.values():
        group.sort(key=lambda i: order.index(i.group))
    return out


def error_values(errors: list[ErrorDetail]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        value: dict[str, Any] = {}
        if e.path:
            value["errorContext"] = [
                {"pathItemId": p.item_id, "itemOccurrence": p.occurrence, "itemLevel": p.level}
                for p in e.path
            ]
        if e.item_offset is not None:
            value["itemOffset"] = e.item_offset
        value["errorCode"] = e.code
        out.append(value)
    return out


def expected_detail(slot: RapItem | list[FatalItem], d: Drawn) -> tuple[str, Any]:
    if isinstance(slot, list):
        value: dict[str, Any] = {"fileSequenceNumber": slot[0].fsn.encode()}
        for item in slot:
            member = FATAL_GROUPS[item.group].error_member
            error: dict[str, Any] = {}
            if item.group in COPIED:
                error[COPIED[item.group][1]] = d.group_values[(item.fsn, item.group)]
            error["errorDetail"] = error_values(item.errors)
            value[member] = error
        return "fatalReturn", value
    if isinstance(slot, SevereItem):
        return "severeReturn", {
            "fileSequenceNumber": slot.fsn.encode(),
            "callEventDetail": d.event_values[slot.event_bytes],
            "errorDetail": error_values(slot.errors),
        }
    if isinstance(slot, MissingItem):
        value = {"startMissingSeqNumber": f"{slot.start:05d}".encode()}
        if slot.end is not None:
            value["endMissingSeqNumber"] = f"{slot.end:05d}".encode()
        return "missingReturn", value
    assert isinstance(slot, StopItem)
    return "stopReturn", {"lastSeqNumber": f"{slot.last_seq:05d}".encode()}


def expected_header(h: RapHeader) -> dict[str, Any]:
    stamp = {"localTimeStamp": h.created_local.encode(), "utcTimeOffset": h.utc_offset.encode()}
    value: dict[str, Any] = {
        "sender": h.sender.encode(),
        "recipient": h.recipient.encode(),
        "rapFileSequenceNumber": f"{h.rap_fsn:05d}".encode(),
        "rapFileCreationTimeStamp": stamp,
        "rapFileAvailableTimeStamp": stamp,
        "specificationVersionNumber": 3,
        "releaseVersionNumber": 12,
        "rapSpecificationVersionNumber": 1,
        "rapReleaseVersionNumber": 5,
    }
    if h.test:
        value["fileTypeIndicator"] = b"T"
    if h.roaming_partner is not None:
        value["roamingPartner"] = h.roaming_partner.encode()
    if h.tap_decimal_places is not None:
        value["tapDecimalPlaces"] = h.tap_decimal_places
    if h.tap_currency is not None:
        value["tapCurrency"] = h.tap_currency.encode()
    return value


@settings(deadline=None)
@given(drawn())
def test_rap_decodes_with_asn1tools_to_its_header_and_items(d: Drawn) -> None:
    data = write_rap(d.header, d.items)
    kind, value = rap_module().decode("RapDataInterChange", data)
    assert kind == "returnBatch"
    assert value["rapBatchControlInfoRap"] == expected_header(d.header)
    details = slots(d.items)
    assert value["returnDetails"] == [expected_detail(s, d) for s in details]
    severe = [i for i in d.items if isinstance(i, SevereItem)]
    assert value["rapAuditControlInfo"] == {
        "totalSevereReturnValue": sum(i.charge for i in severe),
        "returnDetailsCount": len(details),
        "totalSevereReturnTax": sum(i.tax for i in severe),
    }


def returned(item: RapItem) -> Any:
    """A written item as :func:`read_rap` gives it back (a severe item: the returned event)."""
    if isinstance(item, SevereItem):
        return (item.fsn, item.event_bytes, item.errors, item.charge, item.tax, None)
    return item


def read_back(item: Any) -> Any:
    if isinstance(item, ReturnedEvent):
        return (item.fsn, item.event_bytes, item.errors, item.charge, item.tax, item.problem)
    return item


@settings(deadline=None)
@given(drawn())
def test_read_rap_of_write_rap_gives_the_header_and_items_back(d: Drawn) -> None:
    rap = read_rap(write_rap(d.header, d.items))
    assert rap.header == d.header
    assert (rap.available_local, rap.available_utc_offset) == (
        d.header.created_local,
        d.header.utc_offset,
    )
    flat = [i for s in slots(d.items) for i in (s if isinstance(s, list) else [s])]
    assert [read_back(i) for i in rap.items] == [returned(i) for i in flat]
    kinds = [i.kind for i in rap.items if isinstance(i, ReturnedEvent)]
    severe = [i for i in d.items if isinstance(i, SevereItem)]
    assert kinds == [d.event_values[i.event_bytes][0] for i in severe]
    assert rap.mismatches == []
    assert rap.total_severe_return_value == sum(i.charge for i in severe)
    assert rap.total_severe_return_tax == sum(i.tax for i in severe)
