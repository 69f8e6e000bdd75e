"""TD.57 file-only rules of ``check_tap``: for every rule of ``specs/td57/rules.csv`` (but the
stateful ones), a clean sample broken in exactly that way, and exactly that rule found.

The samples are the generated TAP 3.12 files of ``data_samples/tap``; most cases break
CDFRAF9HKGCL01506 (definite lengths, TapDecimalPlaces 5, one tax: code 1 at 20 %, exchange rate
codes 1 and 2, UTC offset code 1 = +0100, available 2026-11-22 01:49:00). Its events used here:
0 gprsCall, 1 mobileOriginatedCall, 36 supplServiceEvent (no charge).

Where one change unavoidably breaks more than one rule the case lists the whole expected set and
says why (``why``). Principle used for the cascades: an event that refers to a code no table of the
file defines (because the table or its group is missing) is reported with the event rule for an
undefined code; the items of a group that is missing as a whole are not reported one by one.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from math import ceil, floor
from typing import TYPE_CHECKING, Any

import pytest

from clearing.codecs.ber import element_at, iter_children, tag_key, walk
from clearing.errors import ConfigError

from .tap_mutate import (
    CHEC9,
    CHEC9_DISCOUNTS,
    DEFINITE,
    FIXED,
    NOTIFICATION,
    PARTNERS,
    TAP_SAMPLES,
    VAS_CHARGE,
    charge_info,
    check,
    content_transaction,
    csv_rule,
    csv_rules,
    encode,
    event_span,
    events,
    fixed_discount_file,
    insert_event,
    mutate,
    sample_bytes,
    sample_value,
    service_centre_usage,
    settings,
    splice,
    stamp,
    stamp_long,
    tap310,
    tlv,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from clearing.config import Settings
    from clearing.validate.tap import TapChecked

# checked against history elsewhere (sequence and duplicate stores)
STATEFUL = frozenset(
    {
        "fsn.gap",
        "fsn.reused",
        "bci.rap_fsn_expected",
        "bci.rap_fsn_unexpected",
        "event.duplicate",
        "event.duplicate_suspect",
    }
)

GPRS, MOC, SUPPL = 0, 2, 9  # events of DEFINITE
INDEFINITE = "CDUSAU9HKGCL00412"  # indefinite lengths
AVAILABLE = datetime(2026, 11, 22, 1, 15, 0)  # DEFINITE's FileAvailableTimeStamp
UNKNOWN_TAG = tag_key(1, 9999)  # no TAP release defines [APPLICATION 9999]

Body = dict[str, Any]


# --------------------------------------------------------------------------------------------
# building blocks of the cases


def _walk_to(body: Any, path: str) -> tuple[Any, Any]:
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = body
    for k in keys[:-1]:
        node = node[k]
    return node, keys[-1]


def put(path: str, value: Any, name: str = DEFINITE) -> Callable[[], bytes]:
    """Set one member (dotted path into the body; event values are ``callEventDetails.i.1``)."""

    def change(body: Body) -> None:
        node, key = _walk_to(body, path)
        node[key] = value

    return lambda: mutate(change, name)


def drop(path: str, name: str = DEFINITE) -> Callable[[], bytes]:
    def change(body: Body) -> None:
        node, key = _walk_to(body, path)
        del node[key]

    return lambda: mutate(change, name)


def add(path: str, item: Any, name: str = DEFINITE) -> Callable[[], bytes]:
    """Append an entry to a list (e.g. a second Taxation)."""

    def change(body: Body) -> None:
        node, key = _walk_to(body, path)
        node[key].append(item)

    return lambda: mutate(change, name)


def change(fn: Callable[[Body], object], name: str = DEFINITE) -> Callable[[], bytes]:
    return lambda: mutate(fn, name)


def clean(name: str = DEFINITE) -> Callable[[], bytes]:
    return lambda: sample_bytes(name)


MOC_EV = f"callEventDetails.{MOC}.1"
MOC_CI = f"{MOC_EV}.basicServiceUsedList.0.chargeInformationList.0"
MOC_START = f"{MOC_EV}.basicCallInformation.callEventStartTimeStamp"
GPRS_EV = f"callEventDetails.{GPRS}.1"


def _aci(body: Body) -> Body:
    aci: Body = body["auditControlInfo"]
    return aci


def _moc_tax(body: Body, value: int) -> None:
    """Set event 1's TaxValue and keep TotalTaxValue the sum of the TaxValues in the file."""
    tax = charge_info(body, MOC)["taxInformation"][0]
    _aci(body)["totalTaxValue"] += value - tax["taxValue"]
    tax["taxValue"] = value


def _moc_charge(body: Body, value: int) -> None:
    """Set event 1's chargeType 00 Charge and keep TotalCharge the sum of those Charges."""
    detail = charge_info(body, MOC)["chargeDetailList"][0]
    assert detail["chargeType"] == b"00"
    _aci(body)["totalCharge"] += value - detail["charge"]
    detail["charge"] = value


def _extra_detail(charge_type: bytes, charge: int) -> Callable[[], bytes]:
    """A second ChargeDetail in event 1 (not chargeType 00: the totals do not change)."""
    return add(f"{MOC_CI}.chargeDetailList", {"chargeType": charge_type, "charge": charge})


def _unknown_tag_in_event() -> bytes:
    """Event 1's ChargedUnits retagged [APPLICATION 9999] (same content, lengths rebuilt)."""
    data = sample_bytes(DEFINITE)
    start, _end = event_span(data, MOC)
    (units,) = [n for _d, n in walk(data, element_at(data, start)) if n.key == tag_key(1, 68)]
    content = data[units.content_start : units.end]
    return splice(data, units.offset, units.end, tlv(UNKNOWN_TAG, content))


def _broken_ber_in_event() -> bytes:
    """The last element inside event 36 claims one byte more than the event holds.

    Same file size, so every outer length stays right: only the event itself is broken.
    Event 36 is a supplServiceEvent without charges, so the audit totals stay right too.
    """
    data = bytearray(sample_bytes(DEFINITE))
    start, _end = event_span(bytes(data), SUPPL)
    last = iter_children(bytes(data), element_at(bytes(data), start))[-1]
    assert last.length is not None
    assert last.length < 0x7F  # short form: the byte before the content is the length
    data[last.content_start - 1] += 1
    return bytes(data)


def _first_charged_item(name: str, item: str) -> int:
    index: int = next(
        r["event_index"] for r in events(sample_bytes(name)) if r["charged_item"] == item
    )
    return index


def _charged_item_in_place() -> bytes:
    """In an indefinite-length file: the first ChargedItem of the first event charged `D`
    overwritten with `Z` (one content byte, so no length changes)."""
    data = sample_bytes(INDEFINITE)
    start, end = event_span(data, _first_charged_item(INDEFINITE, "D"))
    nodes = [n for _d, n in walk(data, element_at(data, start, end)) if n.key == tag_key(1, 66)]
    assert data[nodes[0].content_start : nodes[0].end] == b"D"
    patched = bytearray(data)
    patched[nodes[0].content_start] = ord("Z")
    return bytes(patched)


def _unknown_tag_in_batch() -> bytes:
    """An [APPLICATION 9999] element between BatchControlInfo and AccountingInfo."""
    data = sample_bytes(DEFINITE)
    acc = iter_children(data, element_at(data, 0))[1]
    assert acc.key == tag_key(1, 5)
    return splice(data, acc.offset, acc.end, tlv(UNKNOWN_TAG, b"\x01") + data[acc.offset : acc.end])


def _no_events(body: Body) -> None:
    del body["callEventDetails"]
    aci = _aci(body)
    aci["totalCharge"] = aci["totalTaxValue"] = aci["totalDiscountValue"] = 0


def _refund(charge_refund: int = 500, tax_refund: int = 100) -> Callable[[], bytes]:
    """A refunded content transaction (charge 500, tax 100 at 20 %) with the refund totals."""

    def fn(body: Body) -> None:
        insert_event(body, 5, content_transaction(500, 100, refund=True))
        _aci(body)["totalChargeRefund"] = charge_refund
        _aci(body)["totalTaxRefund"] = tax_refund

    return change(fn)


def _with_event(value: Any) -> Callable[[], bytes]:
    return change(lambda body: insert_event(body, 5, value))


def _release_11(fn: Callable[[Body], object] = lambda body: None) -> Callable[[], bytes]:
    """CHEC9's file as TAP 3.11 (it has no 3.12-only event kinds)."""

    def build() -> bytes:
        value = sample_value(CHEC9)
        value[1]["batchControlInfo"]["releaseVersionNumber"] = 11
        fn(value[1])
        return encode(value, release=11)

    return build


def _release_10(fn: Callable[[Body], object] = lambda body: None) -> Callable[[], bytes]:
    def build() -> bytes:
        value = tap310()
        fn(value[1])
        return encode(value, release=10)

    return build


def _dup_rec(body: Body) -> None:
    recs = body["networkInfo"]["recEntityInfo"]
    recs.append(dict(recs[0]))


def _taxed(data: bytes) -> tuple[int, ...]:
    return tuple(
        r["event_index"] for r in events(data) if r["tax_code"] is not None and r["tax"] is not None
    )


def _older_than(days: int) -> Callable[[bytes], tuple[int, ...]]:
    limit = AVAILABLE - timedelta(days=days)
    return lambda data: tuple(
        r["event_index"]
        for r in events(data)
        if r["local_start"] is not None and r["local_start"] < limit
    )


def _cfg(**kw: Any) -> Callable[[], Settings]:
    return lambda: settings(**kw)


# --------------------------------------------------------------------------------------------
# the cases


@dataclass(frozen=True)
class Case:
    """One broken file and what check_tap must find in it.

    Attributes:
        rule: the rule the file breaks.
        build: makes the file's bytes.
        variant: tells cases of the same rule apart.
        also: other rules found too (an unavoidable cascade; ``why`` says why).
        events: event rules: the events broken (indices, or a function of the file's bytes).
        file: the file name passed to check_tap.
        cfg: the settings (default: us and the seven sample partners).
        release: the TAP release of the file (for the CSV row).
        group: fatal rules: the group expected when it is not the CSV's.
    """

    rule: str
    build: Callable[[], bytes]
    variant: str = ""
    also: frozenset[str] = frozenset()
    why: str = ""
    events: tuple[int, ...] | Callable[[bytes], tuple[int, ...]] = ()
    file: str = DEFINITE
    cfg: Callable[[], Settings] | None = None
    release: int = 12
    group: str | None = None

    @property
    def id(self) -> str:
        return f"{self.rule}[{self.variant}]" if self.variant else self.rule


REC_ID = b"3360800099"
NEW_RATE = {"exchangeRateCode": 3, "numberOfDecimalPlaces": 5, "exchangeRate": 117000}
NEW_TAX = {"taxCode": 2, "taxType": b"01", "taxRate": b"1000000"}
NEW_REC = {"recEntityCode": 99, "recEntityType": 1, "recEntityId": REC_ID}
ACC = "accountingInfo"
NET = "networkInfo"
BCI = "batchControlInfo"
ACI = "auditControlInfo"
REFUSE = "refused_event_kinds"

CASES: list[Case] = [
    # ---- TransferBatch structure
    Case("tb.syntax", _unknown_tag_in_batch, "unknown tag"),
    Case("tb.bci_missing", drop(BCI)),
    Case(
        "tb.acc_missing",
        drop(ACC),
        also=frozenset({"event.exchange_rate_code.unknown", "event.tax_code.unknown"}),
        why="the events' ExchangeRateCode and TaxCode are defined nowhere",
    ),
    Case(
        "tb.net_missing",
        drop(NET),
        also=frozenset({"event.utc_code.unknown", "event.rec_entity.unknown"}),
        why="the events' UtcTimeOffsetCode and RecEntityCode are defined nowhere",
    ),
    Case(
        "tb.events_missing",
        change(_no_events),
        also=frozenset({"aci.count"}),
        why="without events CallEventDetailsCount (360) cannot be both 0 and >= 1",
    ),
    Case("tb.audit_missing", drop(ACI)),
    # ---- BatchControlInfo
    Case("bci.sender_missing", drop(f"{BCI}.sender")),
    Case("bci.recipient_missing", drop(f"{BCI}.recipient")),
    Case("bci.fsn_missing", drop(f"{BCI}.fileSequenceNumber")),
    Case("bci.available_missing", drop(f"{BCI}.fileAvailableTimeStamp")),
    Case("bci.spec_missing", drop(f"{BCI}.specificationVersionNumber")),
    Case("bci.cutoff_missing", drop(f"{BCI}.transferCutOffTimeStamp")),
    Case(
        "bci.live_expected",
        put(f"{BCI}.fileTypeIndicator", b"T"),
        file="TDFRAF9HKGCL01506",
    ),
    Case("bci.test_expected", clean(), "partner", cfg=_cfg(FRAF9={"expect_test_data": True})),
    Case(
        "bci.test_expected",
        clean(),
        "default",
        cfg=_cfg(validation={"expect_test_data": True}),
    ),
    # TD.57 Sender / Recipient syntax (10): a TADIG code, 5 capital letters or digits; such a
    # party is not also reported as unknown / not us
    Case("sender.syntax", put(f"{BCI}.sender", b"FRAF"), "4 characters"),
    Case("sender.syntax", put(f"{BCI}.sender", b"FRAF9X"), "6 characters"),
    Case("sender.syntax", put(f"{BCI}.sender", b"fraf9"), "small letters"),
    Case(
        "sender.syntax",
        put("sender", b"SGP 9", NOTIFICATION),
        "notification",
        file=NOTIFICATION,
        group="notification",
    ),
    Case("recipient.syntax", put(f"{BCI}.recipient", b"HKGCL1"), "6 characters"),
    Case("recipient.syntax", put(f"{BCI}.recipient", b"HKG-L"), "a dash"),
    Case("sender.unknown", clean(), cfg=_cfg(partners=("DEUD9", "GBRG9"))),
    Case(
        "sender.unknown",
        clean(NOTIFICATION),
        "notification",
        file=NOTIFICATION,
        cfg=_cfg(partners=("FRAF9",)),
        group="notification",
    ),
    Case("recipient.not_us", put(f"{BCI}.recipient", b"SGPS9")),
    Case(
        "recipient.not_us",
        put("recipient", b"SGPS9", NOTIFICATION),
        "notification",
        file=NOTIFICATION,
        group="notification",
    ),
    Case("fsn.syntax", put(f"{BCI}.fileSequenceNumber", b"1506A")),
    Case("fsn.syntax", put(f"{BCI}.fileSequenceNumber", b"1506"), "4 digits"),
    # Latin-1 0xB2 is a superscript two: a digit to str.isdigit, not to TD.57
    Case("fsn.syntax", put(f"{BCI}.fileSequenceNumber", b"0150\xb2"), "superscript"),
    Case("fsn.range", put(f"{BCI}.fileSequenceNumber", b"00000"), file="CDFRAF9HKGCL00000"),
    Case("fsn.filename", clean(), file="CDFRAF9HKGCL01507"),
    Case(
        "fsn.filename",
        clean(NOTIFICATION),
        "notification",
        file="CDSGPS9HKGCL00967",
        group="notification",
    ),
    Case("file_type.range", put(f"{BCI}.fileTypeIndicator", b"X")),
    Case("spec.range", put(f"{BCI}.specificationVersionNumber", 2)),
    Case("rap_fsn.syntax", put(f"{BCI}.rapFileSequenceNumber", b"123")),
    Case(
        "available.syntax",
        put(f"{BCI}.fileAvailableTimeStamp", stamp_long("20261322014900")),
        "month 13",
    ),
    Case(
        "available.syntax",
        put(f"{BCI}.fileAvailableTimeStamp", stamp_long("20261122014900", "+2500")),
        "offset",
    ),
    Case(
        "available.syntax",
        put(f"{BCI}.fileAvailableTimeStamp", stamp_long("2026112201490")),
        "13 digits",
    ),
    Case(
        "available.syntax",
        put(f"{BCI}.fileAvailableTimeStamp", stamp_long("20261122014900", "0100")),
        "offset without sign",
    ),
    Case(
        "available.syntax",
        put(f"{BCI}.fileAvailableTimeStamp", stamp_long("20261122014900", "+01")),
        "offset of 2 digits",
    ),
    Case(
        "creation.syntax",
        put(f"{BCI}.fileCreationTimeStamp", stamp_long("202611220147000")),
        "15 digits",
    ),
    Case(
        "creation.syntax",
        put(f"{BCI}.fileCreationTimeStamp", stamp_long("20261122014700", "+1:00")),
        "offset with a colon",
    ),
    Case(
        "cutoff.syntax",
        put(f"{BCI}.transferCutOffTimeStamp", stamp_long("2026-11-22 00:0")),
        "ISO text",
    ),
    Case(
        "cutoff.syntax",
        put("transferCutOffTimeStamp", stamp_long("20261122000000", "+08"), NOTIFICATION),
        "notification",
        file=NOTIFICATION,
        group="notification",
    ),
    # ---- AccountingInfo
    Case(
        "acc.taxation_missing",
        drop(f"{ACC}.taxation"),
        also=frozenset({"event.tax_code.unknown"}),
        why="the events' TaxCode 1 is defined nowhere",
    ),
    Case("acc.discounting_missing", drop(f"{ACC}.discounting", CHEC9), file=CHEC9),
    Case("acc.local_currency_missing", drop(f"{ACC}.localCurrency")),
    Case(
        "acc.currency_conversion_missing",
        drop(f"{ACC}.currencyConversionInfo"),
        also=frozenset({"event.exchange_rate_code.unknown"}),
        why="the events' ExchangeRateCodes 1 and 2 are defined nowhere",
    ),
    Case("acc.decimal_places_missing", drop(f"{ACC}.tapDecimalPlaces")),
    Case("tdp.range", put(f"{ACC}.tapDecimalPlaces", 7)),
    Case("local_currency.syntax", put(f"{ACC}.localCurrency", b"eur")),
    Case("tap_currency.syntax", put(f"{ACC}.tapCurrency", b"SD")),
    Case(
        "cc.code_missing",
        add(f"{ACC}.currencyConversionInfo", {"numberOfDecimalPlaces": 5, "exchangeRate": 117000}),
    ),
    Case(
        "cc.decimals_missing",
        add(f"{ACC}.currencyConversionInfo", {"exchangeRateCode": 3, "exchangeRate": 117000}),
    ),
    Case(
        "cc.rate_missing",
        add(f"{ACC}.currencyConversionInfo", {"exchangeRateCode": 3, "numberOfDecimalPlaces": 5}),
    ),
    Case(
        "cc.duplicate",
        add(
            f"{ACC}.currencyConversionInfo",
            {"exchangeRateCode": 1, "numberOfDecimalPlaces": 5, "exchangeRate": 117234},
        ),
    ),
    Case(
        "exchange_rate_code.range",
        add(f"{ACC}.currencyConversionInfo", NEW_RATE | {"exchangeRateCode": 100}),
    ),
    Case(
        "exchange_rate.range",
        add(f"{ACC}.currencyConversionInfo", NEW_RATE | {"exchangeRate": 0}),
    ),
    Case("tax.code_missing", add(f"{ACC}.taxation", {"taxType": b"01", "taxRate": b"1000000"})),
    Case("tax.type_missing", add(f"{ACC}.taxation", {"taxCode": 2, "taxRate": b"1000000"})),
    Case(
        "tax.duplicate",
        add(f"{ACC}.taxation", {"taxCode": 1, "taxType": b"01", "taxRate": b"2000000"}),
    ),
    Case("tax_rate.syntax", add(f"{ACC}.taxation", NEW_TAX | {"taxRate": b"20%"})),
    # 120 %: with 5 implied decimals a rate above 100 % needs eight digits
    Case("tax_rate.range", add(f"{ACC}.taxation", NEW_TAX | {"taxRate": b"12000000"})),
    Case("tax_type.range", add(f"{ACC}.taxation", NEW_TAX | {"taxType": b"05"})),
    Case("tax_code.range", add(f"{ACC}.taxation", NEW_TAX | {"taxCode": 1000})),
    # ---- NetworkInfo
    Case(
        "net.utc_missing",
        drop(f"{NET}.utcTimeOffsetInfo"),
        also=frozenset({"event.utc_code.unknown"}),
        why="the events' UtcTimeOffsetCode 1 is defined nowhere (it is present, not missing)",
    ),
    Case(
        "net.rec_entity_missing",
        drop(f"{NET}.recEntityInfo"),
        also=frozenset({"event.rec_entity.unknown"}),
        why="the events' RecEntityCodes are defined nowhere",
    ),
    Case(
        "utc_offset.syntax",
        add(f"{NET}.utcTimeOffsetInfo", {"utcTimeOffsetCode": 2, "utcTimeOffset": b"+0107"}),
    ),
    Case(
        "utc_offset_code.range",
        add(f"{NET}.utcTimeOffsetInfo", {"utcTimeOffsetCode": 100, "utcTimeOffset": b"+0100"}),
    ),
    Case(
        "utc_offset_code.duplicate",
        add(f"{NET}.utcTimeOffsetInfo", {"utcTimeOffsetCode": 1, "utcTimeOffset": b"+0200"}),
    ),
    Case(
        "rec.code_missing", add(f"{NET}.recEntityInfo", {"recEntityType": 1, "recEntityId": REC_ID})
    ),
    Case(
        "rec.type_missing",
        add(f"{NET}.recEntityInfo", {"recEntityCode": 99, "recEntityId": REC_ID}),
    ),
    Case("rec.id_missing", add(f"{NET}.recEntityInfo", {"recEntityCode": 99, "recEntityType": 1})),
    Case("rec.conflict", add(f"{NET}.recEntityInfo", NEW_REC | {"recEntityCode": 1})),
    Case("rec.duplicate", change(_dup_rec), "3.12"),
    Case("rec.duplicate", _release_11(_dup_rec), "3.11", file=CHEC9, release=11),
    Case("rec.duplicate", _release_10(_dup_rec), "3.10", file=CHEC9, release=10),
    Case("rec_type.range", add(f"{NET}.recEntityInfo", NEW_REC | {"recEntityType": 12})),
    Case("rec_code.range", add(f"{NET}.recEntityInfo", NEW_REC | {"recEntityCode": 10_001})),
    # ---- AuditControlInfo
    Case("aci.total_charge_missing", drop(f"{ACI}.totalCharge")),
    Case("aci.total_tax_missing", drop(f"{ACI}.totalTaxValue")),
    Case("aci.total_discount_missing", drop(f"{ACI}.totalDiscountValue")),
    Case("aci.count_missing", drop(f"{ACI}.callEventDetailsCount")),
    Case("aci.total_charge", put(f"{ACI}.totalCharge", 7_706_368 + 1)),
    Case("aci.total_charge_refund", _refund(charge_refund=499), "refund event"),
    Case("aci.total_charge_refund", put(f"{ACI}.totalChargeRefund", 5), "no refund event"),
    Case("aci.total_tax", put(f"{ACI}.totalTaxValue", 1_541_274 + 1)),
    Case("aci.total_tax_refund", _refund(tax_refund=101), "refund event"),
    Case("aci.total_tax_refund", put(f"{ACI}.totalTaxRefund", 5), "no refund event"),
    Case("aci.total_discount", put(f"{ACI}.totalDiscountValue", 1)),
    Case(
        "aci.total_discount",
        put(f"{ACI}.totalDiscountValue", 58_184 - 1, CHEC9),
        "discounts",
        file=CHEC9,
    ),
    Case("aci.count", put(f"{ACI}.callEventDetailsCount", 361)),
    Case("refund_total.zero", put(f"{ACI}.totalChargeRefund", 0)),
    Case("tax_refund_total.zero", put(f"{ACI}.totalTaxRefund", 0)),
    Case(
        "count.range",
        put(f"{ACI}.callEventDetailsCount", 0),
        also=frozenset({"aci.count"}),
        why="a count below 1 cannot be the number of the file's 360 events",
    ),
    # ---- Notification
    *(
        Case(f"notification.{rule}", drop(member, NOTIFICATION), file=NOTIFICATION)
        for rule, member in (
            ("sender_missing", "sender"),
            ("recipient_missing", "recipient"),
            ("fsn_missing", "fileSequenceNumber"),
            ("available_missing", "fileAvailableTimeStamp"),
            ("spec_missing", "specificationVersionNumber"),
        )
    ),
    # ---- call events
    Case("event.syntax", _unknown_tag_in_event, "unknown tag", events=(MOC,)),
    Case("event.syntax", _broken_ber_in_event, "broken BER", events=(SUPPL,)),
    Case(
        "event.scu_missing",
        put(f"{MOC_EV}.basicCallInformation.chargeableSubscriber", ("simChargeableSubscriber", {})),
        events=(MOC,),
    ),
    Case(
        "event.imsi.range",
        put(
            f"{MOC_EV}.basicCallInformation.chargeableSubscriber.1.imsi",
            bytes.fromhex("4549900015939251"),  # 16 digits
        ),
        events=(MOC,),
    ),
    Case(
        "event.start.syntax", put(f"{MOC_START}.localTimeStamp", b"20261131033344"), events=(MOC,)
    ),
    Case("event.start.range", put(f"{MOC_START}.localTimeStamp", b"20261122020000"), events=(MOC,)),
    Case("event.start.utc_missing", drop(f"{MOC_START}.utcTimeOffsetCode"), events=(MOC,)),
    Case("event.utc_code.unknown", put(f"{MOC_START}.utcTimeOffsetCode", 7), events=(MOC,)),
    Case(
        "event.start.after_charge_detail",
        put(f"{MOC_CI}.chargeDetailList.0.chargeDetailTimeStamp", stamp("20261120033300")),
        events=(MOC,),
    ),
    # 30 days and one second before the file was made available (late_days defaults to 30)
    Case(
        "event.start.late",
        put(f"{MOC_START}.localTimeStamp", b"20261023011459"),
        "30 days",
        events=(MOC,),
    ),
    Case(
        "event.start.late",
        clean(),
        "partner late_days",
        events=_older_than(1),
        cfg=_cfg(FRAF9={"late_days": 1}),
    ),
    Case(
        "event.duration.range",
        put(f"{MOC_EV}.basicCallInformation.totalCallEventDuration", -5),
        events=(MOC,),
    ),
    # 1 000 001 s: one second above the duration limit (DURATION_LIMIT, 11.6 days)
    Case(
        "event.duration.limit",
        put(f"{MOC_EV}.basicCallInformation.totalCallEventDuration", 1_000_001),
        events=(MOC,),
    ),
    Case(
        "event.duration.gprs_long",
        put(f"{GPRS_EV}.gprsBasicCallInformation.totalCallEventDuration", 86_401),
        events=(GPRS,),
    ),
    Case("event.charge.range", change(lambda b: _moc_charge(b, -1900)), events=(MOC,)),
    Case("event.charge.syntax", _extra_detail(b"01", 2**70), events=(MOC,)),  # 9 bytes
    Case(
        "event.value.limit",
        change(lambda b: _moc_charge(b, 2**62)),  # 8 bytes, but beyond 2^53 - 1
        events=(MOC,),
    ),
    Case("event.charge_type.syntax", _extra_detail(b"0A", 0), events=(MOC,)),
    Case("event.charge_type.range", _extra_detail(b"99", 0), events=(MOC,)),
    Case(
        "event.volume.range",
        put(f"{GPRS_EV}.gprsServiceUsed.dataVolumeIncoming", -1),
        "incoming",
        events=(GPRS,),
    ),
    Case(
        "event.volume.range",
        put(f"{GPRS_EV}.gprsServiceUsed.dataVolumeOutgoing", -1),
        "outgoing",
        events=(GPRS,),
    ),
    # 2^40 + 1 bytes: one byte above the per-event volume limit (1 TiB), each direction
    Case(
        "event.volume.limit",
        put(f"{GPRS_EV}.gprsServiceUsed.dataVolumeIncoming", 2**40 + 1),
        "incoming",
        events=(GPRS,),
    ),
    Case(
        "event.volume.limit",
        put(f"{GPRS_EV}.gprsServiceUsed.dataVolumeOutgoing", 2**40 + 1),
        "outgoing",
        events=(GPRS,),
    ),
    Case("event.tax_value.range", change(lambda b: _moc_tax(b, -380)), events=(MOC,)),
    # 950 × 20 % = 190; 190 + 5000 is 0.05 units off (tolerance 0.02 units = 2000)
    Case("event.tax_value.mismatch", change(lambda b: _moc_tax(b, 5190)), events=(MOC,)),
    Case(
        "event.tax_value.agreement",
        clean(),
        events=_taxed,
        cfg=_cfg(FRAF9={"tax_rates": ["1900000", "0700000"]}),
    ),
    Case("event.tax_code.unknown", put(f"{MOC_CI}.taxInformation.0.taxCode", 9), events=(MOC,)),
    Case("event.exchange_rate_code.unknown", put(f"{MOC_CI}.exchangeRateCode", 9), events=(MOC,)),
    Case(
        "event.cause_for_term.range",
        put(f"{GPRS_EV}.gprsBasicCallInformation.causeForTerm", 2),
        events=(GPRS,),
    ),
    Case(
        "event.call_type_level1.range",
        put(f"{MOC_CI}.callTypeGroup.callTypeLevel1", 3),
        events=(MOC,),
    ),
    Case(
        "event.tele_service.range",
        put(
            f"{MOC_EV}.basicServiceUsedList.0.basicService.serviceCode",
            ("teleServiceCode", b"13"),
        ),
        events=(MOC,),
    ),
    Case("event.charged_item.range", put(f"{MOC_CI}.chargedItem", b"Z"), events=(MOC,)),
    Case(
        "event.charged_item.range",
        _charged_item_in_place,
        "indefinite",
        events=lambda data: (_first_charged_item(INDEFINITE, "D"),),
        file=INDEFINITE,
    ),
    Case(
        "event.rec_entity.unknown",
        put(f"{MOC_EV}.locationInformation.networkLocation.recEntityCode", 99),
        events=(MOC,),
    ),
    Case(
        "event.scu_not_agreed",
        _with_event(service_centre_usage()),
        events=(5,),
        cfg=_cfg(FRAF9={REFUSE: ["serviceCentreUsage"]}),
    ),
    # valueAddedService exists up to TAP 3.10 only
    Case(
        "event.vas_not_agreed",
        _release_10(),
        events=(0, 1),
        file=CHEC9,
        release=10,
        cfg=_cfg(CHEC9={REFUSE: ["valueAddedService"]}),
    ),
    Case(
        "event.content_not_agreed",
        _with_event(content_transaction()),
        events=(5,),
        cfg=_cfg(FRAF9={REFUSE: ["contentTransaction"]}),
    ),
]


def _summary(out: TapChecked) -> str:
    counts = Counter(f.rule for f in out.findings)
    first = {f.rule: f.message for f in reversed(out.findings)}
    return "\n".join(f"{rule} ×{n}: {first[rule]}" for rule, n in sorted(counts.items()))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule(case: Case) -> None:
    data = case.build()
    out = check(data, file=case.file, cfg=case.cfg() if case.cfg else None)
    found = {f.rule for f in out.findings}
    assert found == {case.rule} | case.also, f"{case.why}\n{_summary(out)}".strip()

    row = csv_rule(case.rule, case.release)
    mine = [f for f in out.findings if f.rule == case.rule]
    for f in mine:
        assert (f.code, f.severity, f.context) == (row.code, row.severity, row.context)
    if row.group is None:  # a call-event rule: the events broken, each named in its path
        want = case.events(data) if callable(case.events) else case.events
        assert want, "an event case must name its events"
        assert sorted(f.event_index for f in mine if f.event_index is not None) == sorted(want)
        for f in mine:
            assert f.group is None
            assert f.event_index is not None
            level3 = [p for p in f.path if p.level == 3]
            assert [p.occurrence for p in level3] == [f.event_index + 1], f.path
            assert [p.level for p in f.path] == list(range(1, len(f.path) + 1)), f.path
    else:  # a file-level rule: once, for the group of the FatalReturn
        assert len(mine) == 1, [f.message for f in mine]
        (f,) = mine
        assert f.event_index is None
        assert f.group == (case.group or row.group)
        top = 2 if out.kind == "notification" else 1  # Notification / TransferBatch
        assert f.path[0].item_id == top, f.path


def test_every_rule_is_covered() -> None:
    """Each rule of rules.csv but the stateful ones has a case above (and no case is stale)."""
    in_csv = {r.rule for r in csv_rules()}
    assert in_csv >= STATEFUL
    assert {c.rule for c in CASES} == in_csv - STATEFUL
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------------------------
# clean files


@pytest.mark.parametrize("name", [*TAP_SAMPLES, NOTIFICATION])
def test_clean_samples_have_no_findings(name: str) -> None:
    out = check(sample_bytes(name), file=name, cfg=settings(partners=PARTNERS))
    assert out.findings == [], _summary(out)


@pytest.mark.parametrize(
    ("build", "file"),
    [
        pytest.param(_release_11(), CHEC9, id="3.11"),
        pytest.param(_release_10(), CHEC9, id="3.10-vas"),
    ],
)
def test_clean_other_releases_have_no_findings(build: Callable[[], bytes], file: str) -> None:
    out = check(build(), file=file)
    assert out.release in (10, 11)
    assert out.findings == [], _summary(out)


def test_clean_310_totals_are_checked() -> None:
    """TAP 3.10 carries TotalCharge in TotalChargeValueList (per chargeType): a wrong one is
    aci.total_charge."""

    def wrong(body: Body) -> None:
        body[ACI]["totalChargeValueList"][0]["totalCharge"] = 2 * VAS_CHARGE + 1

    out = check(_release_10(wrong)(), file=CHEC9)
    assert {f.rule for f in out.findings} == {"aci.total_charge"}, _summary(out)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_refund(), id="refund"),
        pytest.param(_with_event(content_transaction()), id="content"),
        pytest.param(_with_event(service_centre_usage()), id="scu"),
        # a duplicate UtcTimeOffsetCode with the same offset is harmless (rule: different offsets)
        pytest.param(
            add(f"{NET}.utcTimeOffsetInfo", {"utcTimeOffsetCode": 1, "utcTimeOffset": b"+0100"}),
            id="same-utc-twice",
        ),
        # exactly 30 days before the file was made available is not late yet
        pytest.param(put(f"{MOC_START}.localTimeStamp", b"20261023011500"), id="30-days"),
        # 24 hours of GPRS is not long yet
        pytest.param(
            put(f"{GPRS_EV}.gprsBasicCallInformation.totalCallEventDuration", 86_400),
            id="gprs-24h",
        ),
        # the start may equal the ChargeDetailTimeStamp
        pytest.param(
            put(f"{MOC_CI}.chargeDetailList.0.chargeDetailTimeStamp", stamp("20261120062847")),
            id="charge-detail-at-start",
        ),
        # the reserved FileTypeIndicators are in range (and are not test data)
        pytest.param(put(f"{BCI}.fileTypeIndicator", b"B"), id="file-type-B"),
        # a chargeType 01 detail with a big charge is fine up to 2^53 - 1 (issue 13, item 9:
        # 2^62, 8 bytes, is now event.value.limit, see that case)
        pytest.param(_extra_detail(b"01", 2**53 - 1), id="charge-at-the-value-limit"),
    ],
)
def test_edge_cases_pass(build: Callable[[], bytes]) -> None:
    out = check(build(), cfg=settings(FRAF9={REFUSE: ["valueAddedService"]}))
    assert out.findings == [], _summary(out)


def test_fixed_discounts_reconcile() -> None:
    """TotalDiscountValue = the events' Discount values + each fixedDiscountValue applied."""
    good = check(fixed_discount_file(CHEC9_DISCOUNTS + 2 * FIXED), file=CHEC9)
    assert good.findings == [], _summary(good)
    short = check(fixed_discount_file(CHEC9_DISCOUNTS), file=CHEC9)
    assert [(f.rule, f.message) for f in short.findings] == [
        ("aci.total_discount", "totalDiscountValue is 48099, the events give 49499")
    ]


# --------------------------------------------------------------------------------------------
# per-partner overrides


def _tax_mismatch() -> bytes:
    return mutate(lambda b: _moc_tax(b, 5190))


@pytest.mark.parametrize(
    ("rule", "build", "file"),
    [
        ("fsn.filename", clean(), "CDFRAF9HKGCL01507"),
        ("event.tax_value.mismatch", _tax_mismatch, DEFINITE),
        ("bci.cutoff_missing", drop(f"{BCI}.transferCutOffTimeStamp"), DEFINITE),
    ],
)
def test_override(rule: str, build: Callable[[], bytes], file: str) -> None:
    data = build()
    row = csv_rule(rule, 12)
    plain = check(data, file=file)
    assert [(f.rule, f.severity) for f in plain.findings] == [(rule, row.severity)]

    off = check(data, file=file, cfg=settings(FRAF9={"rules": {rule: "off"}}))
    assert off.findings == []

    for severity in ("fatal", "severe", "warning"):
        out = check(data, file=file, cfg=settings(FRAF9={"rules": {rule: severity}}))
        assert [(f.rule, f.severity, f.code) for f in out.findings] == [(rule, severity, row.code)]

    # another partner's override changes nothing for FRAF9
    other = check(data, file=file, cfg=settings(DEUD9={"rules": {rule: "off"}}))
    assert [(f.rule, f.severity) for f in other.findings] == [(rule, row.severity)]


def test_override_release_dependent_rule() -> None:
    """An override wins over the release's own severity (rec.duplicate: fatal in 3.11)."""
    data = _release_11(_dup_rec)()
    out = check(data, file=CHEC9, cfg=settings(CHEC9={"rules": {"rec.duplicate": "warning"}}))
    assert [(f.rule, f.severity) for f in out.findings] == [("rec.duplicate", "warning")]


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param({"fsn.filenme": "off"}, id="unknown-rule"),
        pytest.param({"fsn.gap.missing": "warning"}, id="unknown-rule-2"),
        pytest.param({"fsn.filename": "critical"}, id="unknown-severity"),
    ],
)
def test_bad_override_is_a_config_error(rules: dict[str, str]) -> None:
    def load_and_check() -> None:
        # the config loader or the check: either may refuse it, but one must
        check(sample_bytes(DEFINITE), cfg=settings(FRAF9={"rules": rules}))

    with pytest.raises(ConfigError):
        load_and_check()


# --------------------------------------------------------------------------------------------
# undecodable files


def _undecodable() -> list[Any]:
    rng = random.Random(57)
    definite = sample_bytes(DEFINITE)
    indefinite = sample_bytes(INDEFINITE)
    note = sample_bytes(NOTIFICATION)
    cases: list[Any] = [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00", id="one-byte"),
        pytest.param(b"\x61\x80", id="open-indefinite"),
        pytest.param(b"\x61\x03\x02\x01\x05", id="no-bci"),
        pytest.param(b"TAP3 file, honest\n" * 20, id="text"),
        pytest.param(definite + b"\x00", id="trailing-byte"),
        pytest.param(definite[:-1], id="definite-last-byte-cut"),
        pytest.param(indefinite[:-2], id="indefinite-no-final-eoc"),
        pytest.param(indefinite[:-1], id="indefinite-half-eoc"),
        pytest.param(note[:-1], id="notification-cut"),
        pytest.param(note[:40], id="notification-cut-40"),
    ]
    for n in range(25):
        size = rng.choice([1, 2, 3, 8, 64, 500, 5000])
        blob = bytes(rng.getrandbits(8) for _ in range(size))
        cases.append(pytest.param(blob, id=f"garbage-{n}-{size}"))
    for name, data in (("definite", definite), ("indefinite", indefinite)):
        cuts = [1, 2, 3, 4, 10, 100, 495, 496, 497, len(data) // 2]
        cuts += sorted(rng.sample(range(5, len(data) - 1), 15))
        cases += [pytest.param(data[:cut], id=f"{name}-cut-{cut}") for cut in cuts]
    return cases


@pytest.mark.parametrize("data", _undecodable())
@pytest.mark.parametrize("file", [DEFINITE, "garbage.bin"])
def test_undecodable_gives_one_syntax_finding(data: bytes, file: str) -> None:
    out = check(data, file=file)
    assert [(f.rule, f.severity, f.group, f.event_index) for f in out.findings] == [
        ("tb.syntax", "fatal", "transferBatch", None)
    ], _summary(out)
    assert out.findings[0].code == csv_rule("tb.syntax", 12).code


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(
            b'<?xml version="1.0"?>\n<TransferBatch></TransferBatch>\n',
            "XML (<TransferBatch>), not a TAP file",
            id="xml",
        ),
        pytest.param(
            b"\x61\x00" + sample_bytes(DEFINITE),
            "a second top-level element [APPLICATION 1] at offset 2",
            id="second-root",
        ),
        pytest.param(
            # TransferBatch (61 80) > callEventDetails (63 80, at 2) > entry 0: gprsCall (6E 80,
            # at 4) whose member at 6 is a primitive with an indefinite length (04 80)
            b"\x61\x80\x63\x80\x6e\x80\x04\x80" + b"\x00" * 6,
            "decoding stopped at offset 6 in `transferBatch.callEventDetails[0].gprsCall`",
            id="deep",
        ),
    ],
)
def test_undecodable_says_what_and_where(data: bytes, says: str) -> None:
    out = check(data, file="CDFRAF9HKGCL01506")
    assert [f.rule for f in out.findings] == ["tb.syntax"]
    assert says in out.findings[0].message


# --------------------------------------------------------------------------------------------
# the TaxValue tolerance (0.02 units)


def test_tax_tolerance_by_hand() -> None:
    """DEFINITE, event 2: TaxableAmount 950, TaxRate 2000000 (20.00000 %), TapDecimalPlaces 5.

    Exact tax: 950 × 0.2 = 190 (0.00190 SDR). Tolerance: 0.02 SDR = 0.02 × 10^5 = 2000 raw.
    So 190 ± 2000 passes (2190; the low side would be negative) and 2191 fails.
    """
    body = sample_value()[1]
    tax = charge_info(body, MOC)["taxInformation"][0]
    assert (tax["taxableAmount"], tax["taxValue"]) == (950, 190)
    assert body[ACC]["tapDecimalPlaces"] == 5
    assert body[ACC]["taxation"][0]["taxRate"] == b"2000000"
    for value, ok in ((2190, True), (2191, False), (0, True), (189, True), (191, True)):
        out = check(mutate(functools.partial(_moc_tax, value=value)))
        found = [(f.rule, f.event_index) for f in out.findings]
        assert found == ([] if ok else [("event.tax_value.mismatch", MOC)]), (value, found)


def _taxed_event(body: Body) -> tuple[int, Body]:
    """The first MOC with one ChargeInformation carrying one TaxInformation with a
    TaxableAmount (the case the tax check covers)."""
    for i, (kind, value) in enumerate(body["callEventDetails"]):
        if kind != "mobileOriginatedCall" or len(value.get("basicServiceUsedList", [])) != 1:
            continue
        infos = value["basicServiceUsedList"][0].get("chargeInformationList", [])
        if len(infos) == 1 and len(infos[0].get("taxInformation", [])) == 1:
            tax: Body = infos[0]["taxInformation"][0]
            if "taxableAmount" in tax and tax["taxValue"] > 0:
                return i, tax
    raise AssertionError("no taxed MOC")


@pytest.mark.parametrize(
    "name", ["CDFRAF9HKGCL01506", "CDDEUD9HKGCL00738", "CDGBRG9HKGCL00353", CHEC9]
)
def test_tax_tolerance(name: str) -> None:
    """TaxValue may differ from TaxableAmount × TaxRate by 0.02 units, and no more.

    In raw units (value × 10^TapDecimalPlaces) the tolerance is 0.02 × 10^dp; the exact tax is
    TaxableAmount × TaxRate / 10^7 (TaxRate has 5 implied decimals and is a percentage).
    """
    body = sample_value(name)[1]
    dp = body[ACC]["tapDecimalPlaces"]
    (taxation,) = body[ACC]["taxation"]
    index, tax = _taxed_event(body)
    assert tax["taxCode"] == taxation["taxCode"]
    exact = Fraction(tax["taxableAmount"] * int(taxation["taxRate"]), 10**7)
    tolerance = Fraction(2, 100) * 10**dp
    high, low = floor(exact + tolerance), ceil(exact - tolerance)
    trials = [(high, True), (high + 1, False), (low, True), (low - 1, False)]

    def build(value: int) -> bytes:
        def fn(b: Body) -> None:
            info = charge_info(b, index)
            target = info["taxInformation"][0]
            b[ACI]["totalTaxValue"] += value - target["taxValue"]
            target["taxValue"] = value

        return mutate(fn, name)

    for value, ok in trials:
        if value < 0:
            continue  # a negative TaxValue is another rule
        out = check(build(value), file=name)
        found = [(f.rule, f.event_index) for f in out.findings]
        want = [] if ok else [("event.tax_value.mismatch", index)]
        assert found == want, (name, dp, float(exact), value, found)
