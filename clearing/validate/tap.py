"""TD.57 checks of one TAP file that need nothing but the file (and the config).

Header groups are small and checked in Python on the asn1tools values; call events are checked
column-wise on the fast decoder's event table (numpy / Arrow compute, no loop per event), so a
file of a million events is checked in about the time it takes to decode it.

Checks against history (sequence numbers, duplicates) are in :mod:`clearing.validate.sequence`
and :mod:`clearing.validate.duplicates`; late records are checked here against the file's own
FileAvailableTimeStamp, so the result does not depend on the day the check runs.

C901: ``_check_bci`` and ``_check_accounting`` walk the TD.57 rules of the BatchControlInfo and
AccountingInfo groups, one check per rule in the rule table's order; split, the rules of one group
would be read in several places.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs import asn1, fast
from clearing.codecs.batch import fixed_discount_total
from clearing.codecs.ber import element_at, iter_children
from clearing.codecs.events import EVENT_SCHEMA
from clearing.codecs.tap3.values import (
    UTC_OFFSET,
    sequence_problem,
    stamp_problem,
    stamp_time,
    string,
    tadig_problem,
)
from clearing.errors import DecodeError
from clearing.money import DURATION_LIMIT, VALUE_LIMIT, VOLUME_LIMIT, exact_sum
from clearing.names import TapName
from clearing.validate.rules import RuleSet, rules_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from clearing.config import Settings
    from clearing.validate.findings import Finding

__all__ = ["PIECE_EVENTS", "TOTALS", "EventSink", "TapChecked", "check_tap", "parse_tap_name"]

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_GROUP_TAGS = {
    4: "batchControlInfo",
    5: "accountingInfo",
    6: "networkInfo",
    8: "messageDescriptionInfo",
    15: "auditControlInfo",
}
_CAUSE_FOR_TERM = [1, 3, 4, 5, 20, 21, 24]
_CALL_TYPE_LEVEL1 = [0, 1, 2, 10, 11, 12, 100]
_TELE_SERVICE = re.compile(r"^(00|[12][0-2]|6[0-3]|[78]0|9[0-2])$")
_CHARGED_ITEMS = list("ACDEFLVWX")
_NOT_AGREED = {
    "serviceCentreUsage": "event.scu_not_agreed",
    "valueAddedService": "event.vas_not_agreed",
    "contentTransaction": "event.content_not_agreed",
}
# the event columns whose values must stay within VALUE_LIMIT (rule event.value.limit)
_LIMITED = (
    "duration",
    "data_volume_incoming",
    "data_volume_outgoing",
    "charge",
    "charge_airtime",
    "charge_toll",
    "discount",
    "camel_fee",
    "tax",
    "taxable_amount",
)
# DecodeProblem (context, code) → rule
_PROBLEM_RULES = {
    ("Charge", 20): "event.charge.range",
    ("Charge", 10): "event.charge.syntax",
    ("ChargeType", 10): "event.charge_type.syntax",
    ("ChargeType", 20): "event.charge_type.range",
    ("DataVolumeIncoming", 20): "event.volume.range",
    ("DataVolumeOutgoing", 20): "event.volume.range",
    ("TaxValue", 20): "event.tax_value.range",
    ("LocalTimeStamp", 10): "event.start.syntax",
    ("UtcTimeOffsetCode", 100): "event.utc_code.unknown",
}


def parse_tap_name(name: str) -> tuple[bool, str, str, str] | None:
    """``CD``/``TD`` + sender + recipient + FSN → (test, sender, recipient, fsn), else None."""
    n = TapName.parse(name)
    if n is None:
        return None
    return n.test, n.sender, n.recipient, f"{n.fsn:05d}"


@dataclass
class TapChecked:
    """A TAP (or Notification) file and what the file-only checks found.

    Attributes:
        file: the file name.
        data: the file's bytes (returned events are echoed from them).
        kind: "tap" or "notification" ("unreadable" when nothing could be decoded).
        sender, recipient, fsn, test, rap_fsn: from the header (or the file name).
        header_sender: the sender the header declares (None: no header or no sender in it),
            compared with the file name's and the delivering channel (provenance).
        release: the TAP release (12 for 3.12).
        events: the event table (EVENT_SCHEMA), empty for a Notification.
        group_bytes: raw TLV bytes of each header group, for a FatalReturn.
        findings: what the checks found.
    """

    file: str
    data: bytes
    kind: str
    sender: str | None = None
    header_sender: str | None = None
    recipient: str | None = None
    fsn: str | None = None
    test: bool = False
    rap_fsn: str | None = None
    release: int | None = None
    tap_decimal_places: int | None = None
    tap_currency: str | None = None
    file_available: datetime | None = None
    events: pa.Table = field(default_factory=EVENT_SCHEMA.empty_table)
    group_bytes: dict[str, bytes] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    sha256: str = ""
    # the events' sums the header is checked against and the register keeps (:data:`TOTALS`)
    totals: dict[str, int] = field(default_factory=dict)
    # the number of events (``events`` holds none when they went to a sink instead)
    event_count: int = 0

    @property
    def fatal(self) -> bool:
        """Whether a finding rejects the whole file."""
        return any(f.severity == "fatal" for f in self.findings)

    def add(self, finding: Finding | None) -> None:
        """Keep ``finding``, if a check gave one."""
        if finding is not None:
            self.findings.append(finding)


class EventSink(Protocol):
    """Where :func:`check_tap` puts the event tables of a file it streams."""

    def add(self, events: pa.Table) -> None:
        """Take the next piece of the file's events (``event_index`` counts on)."""
        ...

    def clear(self) -> None:
        """Forget every piece: the file is rejected as a whole after all."""
        ...


#: Events the decoder parses together (:func:`clearing.codecs.fast.decode_tap`'s default).
DECODE_CHUNK = 4096

#: Events :func:`check_tap` checks together (a piece): the checks' and a sink's transient
#: memory is a piece's, not the file's.
PIECE_EVENTS = 1 << 17


def check_tap(
    data: bytes,
    *,
    file: str,
    settings: Settings,
    sink: EventSink | None = None,
    piece_events: int = PIECE_EVENTS,
) -> TapChecked:
    """Run every file-only TD.57 rule on a TAP TransferBatch or Notification.

    Never raises on bad input: an undecodable file gives a fatal ``tb.syntax`` finding (the
    sender, recipient and FSN then come from the file name so that a RAP can still be sent).
    A header that does not tell the release the usual way (BatchControlInfo or
    SpecificationVersionNumber missing, SpecificationVersionNumber not 3) is not undecodable:
    the file is read as of its ReleaseVersionNumber (3.12 without one) and the header error is
    reported as its own rule.

    The events are decoded and checked ``piece_events`` at a time; the findings, totals and
    tables do not depend on the piece's size. ``sink``: each piece's event table goes there
    (and ``events`` stays empty; ``event_count`` tells how many): a big file's events are
    never held whole.
    """
    named = parse_tap_name(file)
    out = TapChecked(file=file, data=data, kind="unreadable")
    out.sha256 = hashlib.sha256(data).hexdigest()
    if named:
        out.test, out.sender, out.recipient, out.fsn = named
    try:
        info = asn1.sniff(data, lenient=True)
    except DecodeError as exc:
        rs = rules_for(12, settings.partner(out.sender).rules)
        out.add(rs.make("tb.syntax", exc.reason, byte_offset=exc.offset))
        return out
    out.release = info.tap_release or 12
    if info.kind == "notification":
        _check_notification(out, data, settings, info)
        return out
    if info.kind != "tap":
        rs = rules_for(out.release, settings.partner(out.sender).rules)
        out.add(rs.make("tb.syntax", f"not a TAP file but a {info.kind} file", byte_offset=0))
        return out
    out.kind = "tap"
    try:
        batch, chunks = fast.decode_tap_chunks(
            data, file=file, info=info, chunk_events=min(DECODE_CHUNK, piece_events)
        )
        bci = batch.groups.get("batchControlInfo") or {}
        _take_header(out, bci)
        acc = batch.groups.get("accountingInfo") or {}
        out.tap_decimal_places = acc.get("tapDecimalPlaces")
        out.tap_currency = string(acc.get("tapCurrency"))
        rs = rules_for(out.release, settings.partner(out.sender).rules)
        problems, by_rule, tables = _check_pieces(
            out, rs, batch, chunks, settings, sink, piece_events
        )
    except DecodeError as exc:
        # the file cannot be split into events, or one is beyond a call event's limits
        if sink is not None:
            sink.clear()
        # nothing of the header is used: the parties come from the file name, as above
        out = TapChecked(file=file, data=data, kind="tap", sha256=out.sha256, release=out.release)
        if named:
            out.test, out.sender, out.recipient, out.fsn = named
        rs = rules_for(out.release, settings.partner(out.sender).rules)
        out.add(rs.make("tb.syntax", exc.reason, byte_offset=exc.offset))
        return out
    if sink is None:
        out.events = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    out.group_bytes = _group_bytes(data)
    # the findings in the order of the rules: the decoder's problems, the header groups'
    # rules, then each event rule over all events
    out.findings = problems
    _check_structure(out, rs, batch)
    if "batchControlInfo" in batch.groups:  # a missing group is one finding, not one per item
        _check_bci(out, rs, bci, settings, file, "batchControlInfo")
    _check_accounting(out, rs, batch.groups.get("accountingInfo"))
    _check_network(out, rs, batch.groups.get("networkInfo"))
    _check_audit(out, rs, batch)
    out.findings.extend(f for found in by_rule for f in found)
    return out


def _check_pieces(
    out: TapChecked,
    rs: RuleSet,
    batch: fast.TapBatch,
    chunks: Iterator[pa.Table],
    settings: Settings,
    sink: EventSink | None,
    piece_events: int,
) -> tuple[list[Finding], list[list[Finding]], list[pa.Table]]:
    """Decode and check the events piece by piece.

    Returns:
        The findings of the decoder's problems, the event rules' findings (one list per rule
        check, in the order of the checks) and the tables kept (none with a sink).
    """
    problems: list[Finding] = []
    by_rule: list[list[Finding]] = []
    tables: list[pa.Table] = []
    totals: dict[str, int] = dict.fromkeys(TOTALS, 0)
    seen = 0  # problems of the batch already made findings
    first = 0
    for piece in _pieces(chunks, piece_events):
        made = len(problems)
        for p in batch.problems[seen:]:
            _problem(problems, rs, p, piece, first)
        seen = len(batch.problems)
        unknown_code = {
            f.event_index - first
            for f in problems[made:]
            if f.rule == "event.utc_code.unknown" and f.event_index is not None
        }
        view = fast.TapBatch(batch.info, batch.groups, piece, [], batch.event_list_offset)
        for name, value in _piece_totals(view).items():
            totals[name] += value
        _check_events(out, rs, view, settings, first, unknown_code, by_rule)
        if sink is not None:
            sink.add(piece)
        else:
            tables.append(piece)
        first += piece.num_rows
    # problems found after the last event (none today) are kept too
    for p in batch.problems[seen:]:
        _problem(problems, rs, p, EVENT_SCHEMA.empty_table(), first)
    out.totals, out.event_count = totals, first
    return problems, by_rule, tables


def _pieces(chunks: Iterator[pa.Table], events: int) -> Iterator[pa.Table]:
    """The decoder's chunks joined into pieces of at least ``events`` events (the last less)."""
    held: list[pa.Table] = []
    n = 0
    for chunk in chunks:
        held.append(chunk)
        n += chunk.num_rows
        if n >= events:
            yield pa.concat_tables(held)
            held, n = [], 0
    if held:
        yield pa.concat_tables(held)


TOTALS = (
    "events",
    "charge",
    "tax",
    "discount_codes",
    "charge_not_refund",
    "camel_fee_not_refund",
    "charge_refund",
    "tax_not_refund",
    "tax_refund",
    "discount_not_refund",
    "fixed_discount",
    "recomputed_charge",
    "recomputed_tax",
    "recomputed_discount",
)
"""The sums of a TAP file's events :func:`check_tap` keeps (``TapChecked.totals``): what the
header's audit and accounting groups are checked against, and the register's recomputed
totals (``recomputed_*``: Σ over events that are not refunds, a missing flag read as none)."""


def _piece_totals(batch: fast.TapBatch) -> dict[str, int]:
    ev = batch.events
    not_refund = pc.invert(pc.fill_null(ev.column("refund"), False))

    def recomputed(column: str) -> int:
        return exact_sum(ev.column(column).filter(not_refund))

    return {
        "events": ev.num_rows,
        "charge": exact_sum(ev.column("charge")),
        "tax": exact_sum(ev.column("tax")),
        "discount_codes": ev.num_rows - ev.column("discount_code").null_count,
        "charge_not_refund": _total(ev, "charge", False),
        "camel_fee_not_refund": _total(ev, "camel_fee", False),
        "charge_refund": _total(ev, "charge", True),
        "tax_not_refund": _total(ev, "tax", False),
        "tax_refund": _total(ev, "tax", True),
        "discount_not_refund": _total(ev, "discount", False),
        # fixed discounts count once per application (TD.57 totalDiscountValue)
        "fixed_discount": fixed_discount_total(batch),
        "recomputed_charge": recomputed("charge") + recomputed("camel_fee"),
        "recomputed_tax": recomputed("tax"),
        "recomputed_discount": recomputed("discount"),
    }


def _take_header(out: TapChecked, bci: dict[str, Any]) -> None:
    """Take what a BatchControlInfo (or a Notification) declares into ``out``.

    The parties, FSN, type and availability; the file name's where it declares none.
    """
    out.header_sender = string(bci.get("sender"))
    out.sender = out.header_sender or out.sender
    out.recipient = string(bci.get("recipient")) or out.recipient
    out.fsn = string(bci.get("fileSequenceNumber")) or out.fsn
    out.test = string(bci.get("fileTypeIndicator")) == "T"
    out.rap_fsn = string(bci.get("rapFileSequenceNumber"))
    out.file_available, _ok = stamp_time(bci.get("fileAvailableTimeStamp"))


def _group_bytes(data: bytes) -> dict[str, bytes]:
    try:
        top = element_at(data, 0)
        out = {"transferBatch": data[top.offset : top.end]}
        for child in iter_children(data, top):
            name = _GROUP_TAGS.get(child.key & 0xFFFFFF)
            if name:
                out[name] = data[child.offset : child.end]
    except DecodeError:
        return {}
    return out


def _problem(
    findings: list[Finding], rs: RuleSet, p: fast.DecodeProblem, events: pa.Table, first: int
) -> None:
    """Add the finding of a decoder problem to ``findings``.

    ``events``: the piece of the file's events from ``first`` on (an event's kind when the
    problem does not tell it).
    """

    def add(f: Finding | None) -> None:
        if f is not None:
            findings.append(f)

    if p.event_index is None:
        add(rs.make("tb.syntax", p.message, byte_offset=p.offset))
        return
    rule = _PROBLEM_RULES.get((p.context or "", p.code or 0), "event.syntax")
    kind = p.event_kind
    if kind is None and 0 <= p.event_index - first < events.num_rows:
        kind = events.column("event_kind")[p.event_index - first].as_py()
    add(
        rs.make(
            rule,
            f"{p.message} (at `{p.path}`)",
            event_index=p.event_index,
            event_kind=kind,
            byte_offset=p.offset,
        )
    )


def _check_structure(out: TapChecked, rs: RuleSet, batch: fast.TapBatch) -> None:
    g = batch.groups
    for name, rule in (
        ("batchControlInfo", "tb.bci_missing"),
        ("networkInfo", "tb.net_missing"),
        ("auditControlInfo", "tb.audit_missing"),
    ):
        if name not in g:
            out.add(rs.make(rule, f"{name} is missing"))
    if batch.event_list_offset is None:
        out.add(rs.make("tb.events_missing", "callEventDetails is missing"))
    charged = out.totals.get("charge", 0)
    if "accountingInfo" not in g and charged > 0:
        out.add(rs.make("tb.acc_missing", f"accountingInfo is missing; events charge {charged}"))


def _check_bci(
    out: TapChecked,
    rs: RuleSet,
    bci: dict[str, Any],
    settings: Settings,
    file: str,
    group: str,
) -> None:
    prefix = "bci" if group == "batchControlInfo" else "notification"
    for member, rule in (
        ("sender", "sender_missing"),
        ("recipient", "recipient_missing"),
        ("fileSequenceNumber", "fsn_missing"),
        ("fileAvailableTimeStamp", "available_missing"),
        ("specificationVersionNumber", "spec_missing"),
    ):
        if member not in bci:
            out.add(rs.make(f"{prefix}.{rule}", f"{member} is missing"))
    if prefix == "bci" and "transferCutOffTimeStamp" not in bci:
        out.add(rs.make("bci.cutoff_missing", "transferCutOffTimeStamp is missing"))
    sender = string(bci.get("sender"))
    recipient = string(bci.get("recipient"))
    # a Sender / Recipient that is no TADIG code is that finding, not also an unknown party
    sender_bad = sender is not None and _syntax(out, rs, "sender.syntax", "Sender", sender)
    recipient_bad = recipient is not None and _syntax(
        out, rs, "recipient.syntax", "Recipient", recipient
    )
    # fails closed: no [partners], no partner
    if sender and not sender_bad and sender not in settings.partners:
        out.add(rs.make("sender.unknown", f"sender {sender} is not a configured partner"))
    if recipient and not recipient_bad and recipient != settings.home.tadig:
        out.add(
            rs.make("recipient.not_us", f"recipient {recipient} is not us ({settings.home.tadig})")
        )
    fsn = string(bci.get("fileSequenceNumber"))
    if fsn is not None:
        if sequence_problem(fsn):
            out.add(rs.make("fsn.syntax", f"FileSequenceNumber `{fsn}` is not five digits"))
        elif fsn == "00000":
            out.add(rs.make("fsn.range", "FileSequenceNumber 00000 is out of range"))
        else:
            named = parse_tap_name(file)
            if named and named[3] != fsn:
                out.add(
                    rs.make(
                        "fsn.filename",
                        f"FileSequenceNumber {fsn} differs from {named[3]} in the file name",
                    )
                )
    indicator = string(bci.get("fileTypeIndicator"))
    if indicator is not None and indicator not in ("T", "B", "H", "S", "V"):
        out.add(rs.make("file_type.range", f"FileTypeIndicator `{indicator}` is not T/B/H/S/V"))
    expect_test = settings.expect_test_data(sender)
    if indicator == "T" and not expect_test:
        out.add(rs.make("bci.live_expected", "test data (FileTypeIndicator T) but live expected"))
    if indicator is None and expect_test:
        out.add(rs.make("bci.test_expected", "live data but test data is expected"))
    spec = bci.get("specificationVersionNumber")
    if spec is not None and spec != 3:
        out.add(rs.make("spec.range", f"SpecificationVersionNumber {spec} is not 3"))
    rap_fsn = string(bci.get("rapFileSequenceNumber"))
    if rap_fsn is not None and sequence_problem(rap_fsn):
        out.add(rs.make("rap_fsn.syntax", f"RapFileSequenceNumber `{rap_fsn}` is not 5 digits"))
    for member, rule in _STAMPS:
        if member in bci:
            problem = stamp_problem(bci[member])
            if problem:
                out.add(rs.make(rule, f"{member}: {problem}"))


# the DateTimeLong items of BatchControlInfo (and Notification) and their TD.57 syntax rules
_STAMPS = (
    ("fileCreationTimeStamp", "creation.syntax"),
    ("fileAvailableTimeStamp", "available.syntax"),
    ("transferCutOffTimeStamp", "cutoff.syntax"),
)


def _syntax(out: TapChecked, rs: RuleSet, rule: str, item: str, value: str) -> bool:
    """Report ``rule`` when ``value`` is no TADIG code; whether it was reported."""
    problem = tadig_problem(value)
    if problem:
        out.add(rs.make(rule, f"{item} {problem}"))
    return problem is not None


def _check_accounting(out: TapChecked, rs: RuleSet, acc: dict[str, Any] | None) -> None:
    if acc is None:
        return
    has_tax = out.totals.get("tax", 0) > 0
    has_discount = out.totals.get("discount_codes", 0) > 0
    has_charge = out.totals.get("charge", 0) > 0
    if has_tax and not acc.get("taxation"):
        out.add(rs.make("acc.taxation_missing", "events carry tax but Taxation is missing"))
    if has_discount and not acc.get("discounting"):
        out.add(rs.make("acc.discounting_missing", "events carry discounts, Discounting missing"))
    if "localCurrency" not in acc:
        out.add(rs.make("acc.local_currency_missing", "LocalCurrency is missing"))
    if has_charge and not acc.get("currencyConversionInfo"):
        out.add(
            rs.make(
                "acc.currency_conversion_missing",
                "events carry charges but CurrencyConversionList is missing",
            )
        )
    tdp = acc.get("tapDecimalPlaces")
    if tdp is None:
        out.add(rs.make("acc.decimal_places_missing", "TapDecimalPlaces is missing"))
    elif not 0 <= tdp <= 6:
        out.add(rs.make("tdp.range", f"TapDecimalPlaces {tdp} is not 0-6"))
    for member, rule in (("localCurrency", "local_currency"), ("tapCurrency", "tap_currency")):
        v = string(acc.get(member))
        if v is not None and not _CURRENCY.match(v):
            out.add(rs.make(f"{rule}.syntax", f"{member} `{v}` is not an ISO 4217 code"))
    seen: set[int] = set()
    for i, cc in enumerate(acc.get("currencyConversionInfo") or [], start=1):
        code = cc.get("exchangeRateCode")
        for member, rule in (
            ("exchangeRateCode", "cc.code_missing"),
            ("numberOfDecimalPlaces", "cc.decimals_missing"),
            ("exchangeRate", "cc.rate_missing"),
        ):
            if member not in cc:
                out.add(rs.make(rule, f"CurrencyConversion #{i}: {member} missing", occurrence=i))
        if code is not None:
            if not 0 <= code <= 99:
                out.add(
                    rs.make("exchange_rate_code.range", f"ExchangeRateCode {code}", occurrence=i)
                )
            if code in seen:
                out.add(rs.make("cc.duplicate", f"ExchangeRateCode {code} twice", occurrence=i))
            seen.add(code)
        rate = cc.get("exchangeRate")
        if rate is not None and rate <= 0:
            out.add(rs.make("exchange_rate.range", f"ExchangeRate {rate}", occurrence=i))
    codes: set[int] = set()
    for i, tax in enumerate(acc.get("taxation") or [], start=1):
        code = tax.get("taxCode")
        if code is None:
            out.add(rs.make("tax.code_missing", f"Taxation #{i}: TaxCode missing", occurrence=i))
        else:
            if not 0 <= code <= 999:
                out.add(rs.make("tax_code.range", f"TaxCode {code}", occurrence=i))
            if code in codes:
                out.add(rs.make("tax.duplicate", f"TaxCode {code} defined twice", occurrence=i))
            codes.add(code)
        ttype = string(tax.get("taxType"))
        if ttype is None:
            out.add(rs.make("tax.type_missing", f"Taxation #{i}: TaxType missing", occurrence=i))
        elif ttype not in ("01", "02", "03", "04"):
            out.add(rs.make("tax_type.range", f"TaxType `{ttype}` is not 01-04", occurrence=i))
        rate = string(tax.get("taxRate"))
        if rate is not None:
            if not rate.isdigit() or len(rate) < 7:
                out.add(rs.make("tax_rate.syntax", f"TaxRate `{rate}`", occurrence=i))
            elif len(rate) > 7 or int(rate) > 10_000_000:
                out.add(rs.make("tax_rate.range", f"TaxRate {rate} is above 100 %", occurrence=i))


def _check_network(out: TapChecked, rs: RuleSet, net: dict[str, Any] | None) -> None:
    if net is None:
        return
    if not net.get("utcTimeOffsetInfo"):
        out.add(rs.make("net.utc_missing", "UtcTimeOffsetInfo is missing"))
    if not net.get("recEntityInfo"):
        out.add(rs.make("net.rec_entity_missing", "RecEntityInfo is missing"))
    _check_utc_offsets(out, rs, net.get("utcTimeOffsetInfo") or [])
    _check_rec_entities(out, rs, net.get("recEntityInfo") or [])


def _check_utc_offsets(out: TapChecked, rs: RuleSet, infos: list[dict[str, Any]]) -> None:
    """UtcTimeOffsetInfo: offset syntax, code range, a code given two offsets."""
    offsets: dict[int, str | None] = {}
    for i, u in enumerate(infos, start=1):
        code = u.get("utcTimeOffsetCode")
        text = string(u.get("utcTimeOffset"))
        if text is not None and not UTC_OFFSET.match(text):
            out.add(rs.make("utc_offset.syntax", f"UtcTimeOffset `{text}`", occurrence=i))
        if code is not None:
            if not 0 <= code <= 99:
                out.add(rs.make("utc_offset_code.range", f"UtcTimeOffsetCode {code}", occurrence=i))
            if code in offsets and offsets[code] != text:
                out.add(
                    rs.make(
                        "utc_offset_code.duplicate",
                        f"UtcTimeOffsetCode {code}: {offsets[code]} and {text}",
                        occurrence=i,
                    )
                )
            offsets[code] = text


def _check_rec_entities(out: TapChecked, rs: RuleSet, infos: list[dict[str, Any]]) -> None:
    """RecEntityInfo: members present, type and code in range, a code defined twice."""
    recs: dict[int, tuple[Any, Any]] = {}
    for i, r in enumerate(infos, start=1):
        for member, rule in (
            ("recEntityCode", "rec.code_missing"),
            ("recEntityType", "rec.type_missing"),
            ("recEntityId", "rec.id_missing"),
        ):
            if member not in r:
                out.add(rs.make(rule, f"RecEntityInformation #{i}: {member}", occurrence=i))
        code = r.get("recEntityCode")
        rtype = r.get("recEntityType")
        if rtype is not None and not 1 <= rtype <= 11:
            out.add(rs.make("rec_type.range", f"RecEntityType {rtype}", occurrence=i))
        if code is None:
            continue
        if not 0 <= code <= 10_000:
            out.add(rs.make("rec_code.range", f"RecEntityCode {code}", occurrence=i))
        this = (rtype, r.get("recEntityId"))
        if code in recs:
            same = recs[code] == this
            out.add(
                rs.make(
                    "rec.duplicate" if same else "rec.conflict",
                    f"RecEntityCode {code} defined twice" + ("" if same else " differently"),
                    occurrence=i,
                )
            )
        recs[code] = this


def _total(events: pa.Table, column: str, refund: bool) -> int:
    mask = events.column("refund")
    if not refund:
        mask = pc.invert(mask)
    return exact_sum(events.column(column).filter(mask))


_PER_CHARGE_TYPE = ("totalCharge", "totalChargeRefund")  # in TotalChargeValueList up to 3.10


def _charge_totals(aci: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The AuditControlInfo with ``totalCharge`` and ``totalChargeRefund`` as TAP 3.11+ has them.

    Up to TAP 3.10 they are given per chargeType in TotalChargeValueList; the chargeType 00 entry
    is the one TD.57 checks (sum of the chargeType 00 charges). Returns the view and the
    occurrence of that entry in the list (1 from 3.11, for the RAP ErrorContext). The entries of
    other charge types are not reconciled (the event table sums chargeTypes 00, 01 and 03 only).
    """
    entries = aci.get("totalChargeValueList")
    if entries is None:
        return aci, 1
    view = {k: v for k, v in aci.items() if k != "totalChargeValueList"}
    for i, entry in enumerate(entries, start=1):
        if string(entry.get("chargeType")) == "00":
            view.update({m: entry[m] for m in _PER_CHARGE_TYPE if m in entry})
            return view, i
    return view, 1


def _check_audit(out: TapChecked, rs: RuleSet, batch: fast.TapBatch) -> None:
    aci = batch.groups.get("auditControlInfo")
    if aci is None:
        return
    aci, charge_at = _charge_totals(aci)
    t = out.totals
    for member, rule in (
        ("totalCharge", "aci.total_charge_missing"),
        ("totalTaxValue", "aci.total_tax_missing"),
        ("totalDiscountValue", "aci.total_discount_missing"),
        ("callEventDetailsCount", "aci.count_missing"),
    ):
        if member not in aci:
            out.add(rs.make(rule, f"{member} is missing"))
    expected = {
        "totalCharge": ("aci.total_charge", t["charge_not_refund"] + t["camel_fee_not_refund"]),
        "totalChargeRefund": ("aci.total_charge_refund", t["charge_refund"]),
        "totalTaxValue": ("aci.total_tax", t["tax_not_refund"]),
        "totalTaxRefund": ("aci.total_tax_refund", t["tax_refund"]),
        "totalDiscountValue": (
            "aci.total_discount",
            t["discount_not_refund"] + t["fixed_discount"],
        ),
        "callEventDetailsCount": ("aci.count", t["events"]),
    }
    for member, (rule, want) in expected.items():
        got = aci.get(member)
        if got is None and member in ("totalChargeRefund", "totalTaxRefund"):
            got = 0  # present only when > 0
        if got is not None and got != want:
            occurrence = charge_at if member in _PER_CHARGE_TYPE else 1
            message = f"{member} is {got}, the events give {want}"
            out.add(rs.make(rule, message, occurrence=occurrence))
    for member, rule in (
        ("totalChargeRefund", "refund_total.zero"),
        ("totalTaxRefund", "tax_refund_total.zero"),
    ):
        if aci.get(member) == 0:
            occurrence = charge_at if member in _PER_CHARGE_TYPE else 1
            out.add(rs.make(rule, f"{member} is present with value 0", occurrence=occurrence))
    count = aci.get("callEventDetailsCount")
    if count is not None and count < 1:
        out.add(rs.make("count.range", f"CallEventDetailsCount {count}"))


def _check_events(
    out: TapChecked,
    rs: RuleSet,
    batch: fast.TapBatch,
    settings: Settings,
    first: int,
    unknown_code: set[int],
    by_rule: list[list[Finding]],
) -> None:
    """The event rules over ``batch``'s events (a piece of the file's, from event ``first``).

    Each rule check adds its findings to its own list of ``by_rule`` (the n-th check to the
    n-th list, made on the first piece), so that the file's findings are in the order of the
    checks whatever the pieces. ``unknown_code``: the piece's events (from 0) whose
    UtcTimeOffsetCode the decoder found undefined.
    """
    ev = batch.events
    n = ev.num_rows
    if n == 0:
        return
    kinds = ev.column("event_kind").to_numpy(zero_copy_only=False)
    checks = iter(range(1 << 30))

    def null(name: str) -> Any:
        return ev.column(name).is_null().to_numpy(zero_copy_only=False)

    def flag(rule: str, where: Any, message: Any) -> None:
        at = next(checks)
        if at == len(by_rule):
            by_rule.append([])
        if not rs.active(rule):
            return
        found = by_rule[at]
        for i in np.flatnonzero(where).tolist():
            text = message(i) if callable(message) else message
            f = rs.make(rule, text, event_index=first + i, event_kind=str(kinds[i]))
            if f is not None:
                found.append(f)

    imsi_null, msisdn_null = null("imsi"), null("msisdn")
    # content transactions and location services name their parties differently
    subscriber_kinds = ~np.isin(kinds, ["contentTransaction", "locationService", "unknown"])
    flag(
        "event.scu_missing",
        subscriber_kinds & imsi_null & msisdn_null,
        "neither IMSI nor MSISDN",
    )
    imsi = ev.column("imsi")
    bad_imsi = pc.fill_null(
        pc.or_(pc.greater(pc.utf8_length(imsi), 15), pc.invert(pc.utf8_is_digit(imsi))), False
    ).to_numpy(zero_copy_only=False)
    flag("event.imsi.range", bad_imsi, lambda i: f"IMSI `{imsi[i].as_py()}`")

    local = ev.column("local_start")
    local_np = local.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    has_local = ~null("local_start")
    # an undefined UtcTimeOffsetCode is reported by the decoder (event.utc_code.unknown)
    utc_missing = has_local & null("utc_offset")
    if unknown_code:
        utc_missing[list(unknown_code)] = False
    flag("event.start.utc_missing", utc_missing, "no UtcTimeOffsetCode for the start time")
    if out.file_available is not None:
        avail_np = np.int64(int((out.file_available - datetime(1970, 1, 1)).total_seconds()))
        flag(
            "event.start.range",
            has_local & (local_np > avail_np),
            lambda i: f"starts {local[i].as_py()}, after the file was made available",
        )
        late_days = settings.late_days(out.sender)
        limit = avail_np - np.int64(late_days * 86400)
        flag(
            "event.start.late",
            has_local & (local_np < limit),
            lambda i: (
                f"starts {local[i].as_py()}: more than {late_days} days before "
                f"the file was made available ({out.file_available})"
            ),
        )
    detail = ev.column("charge_detail_local").cast(pa.int64()).fill_null(0)
    detail_np = detail.to_numpy(zero_copy_only=False)
    flag(
        "event.start.after_charge_detail",
        has_local & ~null("charge_detail_local") & (local_np > detail_np),
        "the event starts after its ChargeDetailTimeStamp",
    )
    duration = ev.column("duration").fill_null(0).to_numpy(zero_copy_only=False)
    flag("event.duration.range", duration < 0, lambda i: f"duration {duration[i]}")
    for column in _LIMITED:  # beyond what can be summed and shown exactly: a finding, no overflow
        values = ev.column(column)
        over = pc.fill_null(pc.greater(pc.abs(values), VALUE_LIMIT), False)
        flag(
            "event.value.limit",
            over.to_numpy(zero_copy_only=False),
            lambda i, c=column, v=values: f"{c} {v[i].as_py()} is above {VALUE_LIMIT}",
        )
    _check_ranges(ev, flag)
    flag(
        "event.duration.gprs_long",
        (kinds == "gprsCall") & (duration > 86_400),
        lambda i: f"GPRS session of {duration[i]} s (> 24 h)",
    )
    _check_event_values(out, batch, settings, flag, null)
    refused = settings.partner(out.sender).refused_event_kinds
    for kind, rule in _NOT_AGREED.items():
        if kind in refused:
            flag(rule, kinds == kind, f"{kind} is not agreed with this partner")


def _check_ranges(ev: pa.Table, flag: Any) -> None:
    """Durations and data volumes beyond what one TD.57 event can hold: severe range findings.

    Values above :data:`~clearing.money.VALUE_LIMIT` are ``event.value.limit`` already (one
    finding per value); these rules take the range below it, where a value is valid BER but no
    network makes it, and where it would overflow later (a date plus the duration, a cycle's
    sum of volumes, units times a price).
    """
    duration = ev.column("duration").fill_null(0).to_numpy(zero_copy_only=False)
    flag(
        "event.duration.limit",
        (duration > DURATION_LIMIT) & (duration <= VALUE_LIMIT),
        lambda i: (
            f"TotalCallEventDuration {duration[i]} s is above the limit of {DURATION_LIMIT} s "
            "(11.6 days): the event is returned; the partner closes such a call or session "
            "with partial records, or corrects the duration"
        ),
    )
    for column, item in (
        ("data_volume_incoming", "DataVolumeIncoming"),
        ("data_volume_outgoing", "DataVolumeOutgoing"),
    ):
        volume = ev.column(column).fill_null(0).to_numpy(zero_copy_only=False)
        flag(
            "event.volume.limit",
            (volume > VOLUME_LIMIT) & (volume <= VALUE_LIMIT),
            lambda i, v=volume, name=item: (
                f"{name} {v[i]} bytes is above the limit of {VOLUME_LIMIT} bytes (1 TiB) for "
                "one event: the event is returned; the partner splits the session into "
                "partial records, or corrects the volume"
            ),
        )


def _check_event_values(
    out: TapChecked, batch: fast.TapBatch, settings: Settings, flag: Any, null: Any
) -> None:
    ev = batch.events
    acc = batch.groups.get("accountingInfo") or {}
    net = batch.groups.get("networkInfo") or {}
    cause = ev.column("cause_for_term")
    flag(
        "event.cause_for_term.range",
        ~null("cause_for_term") & ~np.isin(cause.fill_null(1).to_numpy(), _CAUSE_FOR_TERM),
        lambda i: f"CauseForTerm {cause[i].as_py()}",
    )
    level1 = ev.column("call_type_level1")
    flag(
        "event.call_type_level1.range",
        ~null("call_type_level1") & ~np.isin(level1.fill_null(0).to_numpy(), _CALL_TYPE_LEVEL1),
        lambda i: f"CallTypeLevel1 {level1[i].as_py()}",
    )
    tele = ev.column("tele_service_code")
    bad_tele = pc.invert(pc.match_substring_regex(tele, _TELE_SERVICE.pattern))
    flag(
        "event.tele_service.range",
        pc.fill_null(bad_tele, False).to_numpy(zero_copy_only=False),
        lambda i: f"TeleServiceCode `{tele[i].as_py()}`",
    )
    item = ev.column("charged_item")
    bad_item = pc.invert(pc.is_in(item, pa.array(_CHARGED_ITEMS)))
    flag(
        "event.charged_item.range",
        pc.fill_null(pc.and_(bad_item, pc.invert(item.is_null())), False).to_numpy(
            zero_copy_only=False
        ),
        lambda i: f"ChargedItem `{item[i].as_py()}`",
    )
    rates = {c.get("exchangeRateCode") for c in acc.get("currencyConversionInfo") or []}
    rate_code = ev.column("exchange_rate_code")
    flag(
        "event.exchange_rate_code.unknown",
        ~null("exchange_rate_code")
        & ~np.isin(rate_code.fill_null(-1).to_numpy(), np.array(sorted(rates - {None}))),
        lambda i: f"ExchangeRateCode {rate_code[i].as_py()} is not in CurrencyConversion",
    )
    recs = {r.get("recEntityCode") for r in net.get("recEntityInfo") or []}
    rec = ev.column("rec_entity_code")
    flag(
        "event.rec_entity.unknown",
        ~null("rec_entity_code")
        & ~np.isin(rec.fill_null(-1).to_numpy(), np.array(sorted(recs - {None}))),
        lambda i: f"RecEntityCode {rec[i].as_py()} is not in NetworkInfo",
    )
    # tax: TaxValue ≈ taxable amount (or charge) × rate, tolerance 0.02 units (TD.57)
    tax_rates = {
        t["taxCode"]: int(string(t.get("taxRate")) or "0")
        for t in acc.get("taxation") or []
        if "taxCode" in t and (string(t.get("taxRate")) or "").isdigit()
    }
    tax_code = ev.column("tax_code")
    has_tax = ~null("tax_code") & ~null("tax")
    known_code = np.isin(tax_code.fill_null(-1).to_numpy(), np.array(sorted(tax_rates)))
    flag(
        "event.tax_code.unknown",
        has_tax & ~known_code,
        lambda i: f"TaxCode {tax_code[i].as_py()} is not in Taxation",
    )
    if tax_rates and out.tap_decimal_places is not None:
        code_np = tax_code.fill_null(-1).to_numpy()
        rate_np = np.zeros(len(code_np), dtype=np.int64)
        for code, rate in tax_rates.items():
            rate_np[code_np == code] = rate
        # taxable: TaxableAmount when given, else the charge (CAMEL fees are taxed too)
        base = np.where(
            null("taxable_amount"),
            ev.column("charge").fill_null(0).to_numpy()
            + ev.column("camel_fee").fill_null(0).to_numpy(),
            ev.column("taxable_amount").fill_null(0).to_numpy(),
        )
        tax = ev.column("tax").fill_null(0).to_numpy()
        # |tax × 10^7 − base × rate| ≤ tolerance × 10^dp × 10^7, all in integers
        dp = out.tap_decimal_places or 0
        tol = int(settings.validation.tax_tolerance * 10**dp * 10**7)
        # one TaxInformation for one ChargeInformation: the taxable base is unambiguous.
        # (Several taxes or charge groups per event are not checked: their bases would
        # have to be matched per group; see README, Validation.)
        single = (ev.column("tax_items").to_numpy() == 1) & (
            ev.column("charge_items").to_numpy() == 1
        )
        wrong = has_tax & known_code & single & _tax_off(tax, base, rate_np, tol)
        flag(
            "event.tax_value.mismatch",
            wrong,
            lambda i: (
                f"TaxValue {int(tax[i])} but {int(base[i])} × {rate_np[i] / 10**5}% "
                f"= {Decimal(int(base[i]) * int(rate_np[i])) / 10**7}"
            ),
        )
        agreed = settings.partner(out.sender).tax_rates
        if agreed is not None:
            flag(
                "event.tax_value.agreement",
                has_tax & known_code & ~np.isin(rate_np, np.array([int(r) for r in agreed])),
                lambda i: f"tax rate {rate_np[i]} is not agreed ({sorted(agreed)})",
            )


_SAFE = 900_000_000_000  # |value| below this: value × 10^7 fits in int64


def _tax_off(tax: Any, base: Any, rate: Any, tol: int) -> Any:
    """Rows where |tax × 10^7 − base × rate| > tol, exactly (int64, Python ints if huge)."""
    big = (np.abs(tax) >= _SAFE) | (np.abs(base) >= _SAFE)
    t = np.where(big, 0, tax).astype(np.int64)
    b = np.where(big, 0, base).astype(np.int64)
    off = np.abs(t * np.int64(10**7) - b * rate.astype(np.int64)) > tol
    for i in np.flatnonzero(big).tolist():
        off[i] = abs(int(tax[i]) * 10**7 - int(base[i]) * int(rate[i])) > tol
    return off


def _check_notification(
    out: TapChecked, data: bytes, settings: Settings, info: asn1.FileInfo
) -> None:
    out.kind = "notification"
    try:
        value = asn1.decode(data, file=out.file, info=info).value
    except DecodeError as exc:
        rs = rules_for(out.release, settings.partner(out.sender).rules)
        out.add(rs.make("tb.syntax", exc.reason, byte_offset=exc.offset))
        return
    body = value[1] if isinstance(value, tuple) else {}
    _take_header(out, body)
    out.group_bytes = {"notification": data}
    rs = rules_for(out.release, settings.partner(out.sender).rules)
    rs.notification = True
    _check_bci(out, rs, body, settings, out.file, "notification")
