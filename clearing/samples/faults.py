"""Planted faults: extra TAP-in files that break one known TD.57 / sequence rule each.

Every faulty file is made from a clean generated file (:func:`clearing.samples.tap.build_file`):
decoded with :func:`clearing.codecs.asn1.decode`, changed, the AuditControlInfo recomputed from
the events (except where the fault *is* the totals) and re-encoded with
:func:`clearing.codecs.asn1.encode` (then with the partner's indefinite lengths, as the clean
files are). Same ``(events, seed, day)`` → same bytes; nothing reads the clock.

Copies, reused and skipped FSNs and duplicates of earlier events only exist against an earlier
processing date, so :func:`plant_faults` assumes that the day before ``day`` was processed with
the clean files of :func:`~clearing.samples.tap.generate_tap` (same ``events`` and ``seed``);
:func:`write_two_days` writes both input sets: ``<root>/<day-1>/`` (clean) and ``<root>/<day>/``
(clean + faults). Each partner stream holds at most one sequence fault, and every other fault
sits in a file of its own with the next FSN of its stream, so no fault hides another:

========  ===================  ================================================================
partner   file (FSN)           fault
========  ===================  ================================================================
FRAF9     day-1's FSN          ``copy``: identical resend of the day-1 file (ignored)
FRAF9     day's FSN + 1        ``event.tax_value.mismatch``: TaxValue 0.05 units too high (a
                               call or GPRS event: one ChargeInformation, one TaxInformation)
FRAF9     day's FSN + 2        ``event.tax_value.mismatch``: the same in a mobileSession (one
                               SessionChargeInformation, one TaxInformation)
DEUD9     day-1's FSN          ``fsn.reused``: same FSN as day-1's file, one event less (fatal)
DEUD9     day's FSN + 1        ``event.duplicate``: an event of the day-1 file sent again
GBRG9     day's FSN + 2        ``fsn.gap``: FSN + 1 never came (warning, MissingReturn)
CHEC9     day's FSN + 1        ``aci.total_charge``: TotalCharge one unit too high (fatal)
USAU9     name FSN + 2         ``fsn.filename``: the header says FSN + 1 (fatal)
JPNJ9     day's FSN + 1        ``event.start.late``: an event 40 days older than the file
JPNJ9     day's FSN + 2        ``event.duplicate_suspect``: same IMSI and service 1 s later,
                               another duration (warning)
JPNJ9     day's FSN + 3        ``event.scu_missing``: an event without IMSI and MSISDN
========  ===================  ================================================================
"""

from __future__ import annotations

import copy
import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from clearing.codecs import asn1
from clearing.codecs.indefinite import to_indefinite
from clearing.errors import ConfigError
from clearing.names import TapName
from clearing.samples.tap import (
    HOME_TADIG,
    PARTNERS,
    Partner,
    build_file,
    file_sequence_number,
    generate_tap,
    split_events,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from clearing.codecs.ber import TLV

__all__ = [
    "COPY",
    "FAULT_EVENTS",
    "LATE_DAYS",
    "PlantedFault",
    "TwoDays",
    "plant_faults",
    "write_two_days",
]

COPY = "copy"  # PlantedFault.rule of an identical resend: an outcome, not a finding
FAULT_EVENTS = 24  # events of each faulty TransferBatch
LATE_DAYS = 40  # age of the late record, days before the file's FileAvailableTimeStamp
_TAX_EXCESS_HUNDREDTHS = 5  # the bad tax value is 0.05 TAP currency units too high
_SUSPECT_SECONDS = 1
_SUSPECT_EXTRA_DURATION = 7
_MIN_EVENTS = 2
_CHARGE_INFORMATION_KINDS = (
    "mobileOriginatedCall",
    "mobileTerminatedCall",
    "gprsCall",
)  # FRAF9 and DEUD9 need events on the day before (copy, reuse, duplicate)


@dataclass(frozen=True, slots=True)
class PlantedFault:
    """One planted fault: the file, the rule it breaks and the event (None: the whole file)."""

    file: str
    rule: str
    event_index: int | None
    description: str


@dataclass(frozen=True, slots=True)
class TwoDays:
    """What :func:`write_two_days` wrote: the inputs and faults of each processing date."""

    inputs: dict[date, list[Path]] = field(default_factory=dict)
    faults: dict[date, list[PlantedFault]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# values


def _partner(tadig: str) -> Partner:
    return next(p for p in PARTNERS if p.tadig == tadig)


def _fsn(partner: Partner, day: date, ahead: int = 0) -> int:
    """The partner's FSN of ``day`` plus ``ahead`` (1 … 99999, wrapping as TD.57 does)."""
    return (file_sequence_number(partner, day) - 1 + ahead) % 99_999 + 1


def _name(partner: Partner, fsn: int) -> str:
    return str(TapName(False, partner.tadig, HOME_TADIG, fsn))


def _batch(data: bytes) -> dict[str, Any]:
    kind, body = asn1.decode(data).value
    if kind != "transferBatch":
        msg = f"expected a TransferBatch, got a {kind}"
        raise ConfigError(msg)
    return body  # type: ignore[no-any-return]


def _variant(partner: Partner, *, seed: int, day: date, key: str) -> dict[str, Any]:
    """A clean TransferBatch of ``partner`` for ``day``, its events drawn anew for ``key``."""
    digest = hashlib.sha256(f"faults:{seed}:{day.isoformat()}:{partner.tadig}:{key}".encode())
    other = int.from_bytes(digest.digest()[:6], "big")
    _, data = build_file(partner, events=FAULT_EVENTS, seed=other, day=day)
    return _batch(data)


def _set_fsn(batch: dict[str, Any], fsn: int) -> None:
    batch["batchControlInfo"]["fileSequenceNumber"] = f"{fsn:05d}".encode()


def _start(event: tuple[str, Any]) -> dict[str, Any]:
    kind, body = event
    if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
        return body["basicCallInformation"]["callEventStartTimeStamp"]  # type: ignore[no-any-return]
    if kind == "gprsCall":
        return body["gprsBasicCallInformation"]["callEventStartTimeStamp"]  # type: ignore[no-any-return]
    if kind == "supplServiceEvent":
        return body["supplServiceUsed"]["chargingTimeStamp"]  # type: ignore[no-any-return]
    return body["serviceStartTimestamp"]  # type: ignore[no-any-return]


def _dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside an asn1tools value (CHOICE tuples and lists included)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _dicts(v)
    elif isinstance(node, tuple) and len(node) == 2 and isinstance(node[0], str):
        yield from _dicts(node[1])


def _parse(stamp: bytes) -> datetime:
    return datetime.strptime(stamp.decode(), "%Y%m%d%H%M%S")


def _shift(event: tuple[str, Any], delta: timedelta) -> tuple[str, Any]:
    """A copy of ``event`` with every event timestamp moved by ``delta``."""
    out = copy.deepcopy(event)
    for d in _dicts(out):
        if "localTimeStamp" in d and "utcTimeOffsetCode" in d:
            d["localTimeStamp"] = (_parse(d["localTimeStamp"]) + delta).strftime("%Y%m%d%H%M%S")
            d["localTimeStamp"] = d["localTimeStamp"].encode()
    return out


def _utc(local: bytes, offset: bytes) -> datetime:
    sign = -1 if offset.startswith(b"-") else 1
    minutes = sign * (int(offset[1:3]) * 60 + int(offset[3:5]))
    return _parse(local) - timedelta(minutes=minutes)


def _finish(batch: dict[str, Any]) -> None:
    """Order the events by local start (as the generator does) and recompute the audit."""
    events: list[tuple[str, Any]] = batch["callEventDetails"]
    events.sort(key=lambda e: _start(e)["localTimeStamp"])
    charge = tax = discount = 0
    for kind, body in events:
        if kind == "messagingEvent":
            charge += body["charge"]  # MessagingEvent carries its total charge directly
        for d in _dicts(body):
            if "chargeDetailList" in d:
                charge += sum(
                    c["charge"] for c in d["chargeDetailList"] if c["chargeType"] == b"00"
                )
            charge += d.get("camelInvocationFee", 0)
            tax += d.get("taxValue", 0)
            if "discountCode" in d and "discount" in d:
                discount += d["discount"]
    offsets = {
        u["utcTimeOffsetCode"]: u["utcTimeOffset"]
        for u in batch["networkInfo"]["utcTimeOffsetInfo"]
    }
    stamps = [
        (_utc(s["localTimeStamp"], offsets[s["utcTimeOffsetCode"]]), s)
        for s in (_start(e) for e in events)
    ]
    audit: dict[str, Any] = batch["auditControlInfo"]
    if stamps:
        for key, (_t, s) in (
            ("earliestCallTimeStamp", min(stamps, key=lambda x: x[0])),
            ("latestCallTimeStamp", max(stamps, key=lambda x: x[0])),
        ):
            offset = offsets[s["utcTimeOffsetCode"]]
            audit[key] = {"localTimeStamp": s["localTimeStamp"], "utcTimeOffset": offset}
    audit["totalCharge"] = charge
    audit["totalTaxValue"] = tax
    audit["totalDiscountValue"] = discount
    audit["callEventDetailsCount"] = len(events)


def _indefinite_some(depth: int, _tlv: TLV) -> bool:
    return depth <= 2  # as the partner's clean files: TransferBatch, groups, events


def _encode(partner: Partner, batch: dict[str, Any]) -> bytes:
    """Encode like the partner's clean files (definite or indefinite lengths)."""
    data = asn1.encode("tap", ("transferBatch", batch))
    if partner.encoding == "indefinite-some":
        return to_indefinite(data, select=_indefinite_some)
    if partner.encoding == "indefinite-all":
        return to_indefinite(data)
    return data


def _index_of(batch: dict[str, Any], event: tuple[str, Any]) -> int:
    return next(i for i, e in enumerate(batch["callEventDetails"]) if e is event)


# ---------------------------------------------------------------------------------------------
# picking events


def _subscriber(event: tuple[str, Any]) -> dict[str, Any] | None:
    kind, body = event
    if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
        scu = body["basicCallInformation"]["chargeableSubscriber"]
    elif kind == "gprsCall":
        scu = body["gprsBasicCallInformation"]["gprsChargeableSubscriber"]["chargeableSubscriber"]
    else:
        return None
    return scu[1] if scu[0] == "simChargeableSubscriber" else None


def _voice(event: tuple[str, Any]) -> bool:
    kind, body = event
    if kind not in ("mobileOriginatedCall", "mobileTerminatedCall"):
        return False
    return bool(body["basicCallInformation"]["totalCallEventDuration"] > 0)


def _one_tax(event: tuple[str, Any]) -> dict[str, Any] | None:
    """The TaxInformation of an event with one charge group and one tax (else None).

    A charge group is a ChargeInformation, or a mobileSession's SessionChargeInformation.
    """
    _kind, body = event
    infos = [d for d in _dicts(body) if "chargeDetailList" in d]
    taxes = [d for d in _dicts(body) if "taxValue" in d]
    if len(infos) != 1 or len(taxes) != 1 or "camelServiceUsed" in body:
        return None
    tax = taxes[0]
    return tax if tax["taxValue"] > 0 and "taxableAmount" in tax else None


def _pick(
    make: Callable[[int], dict[str, Any]],
    ok: Callable[[tuple[str, Any]], bool],
    rng: random.Random,
) -> tuple[dict[str, Any], tuple[str, Any]]:
    """A batch (variant 1, 2, …) with an event that suits ``ok``, and one such event."""
    for k in range(1, 100):
        batch = make(k)
        fits = [e for e in batch["callEventDetails"] if ok(e)]
        if fits:
            return batch, rng.choice(fits)
    msg = "no event fits the fault in 99 sample batches"
    raise RuntimeError(msg)  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# the faults


class _Planter:
    def __init__(self, out: Path, *, events: int, seed: int, day: date) -> None:
        self.out = out
        self.seed = seed
        self.day = day
        self.prev = day - timedelta(days=1)
        self.split = split_events(events)
        self.faults: list[PlantedFault] = []

    def rng(self, what: str) -> random.Random:
        return random.Random(f"faults:{self.seed}:{self.day.isoformat()}:{what}")

    def variant(self, partner: Partner, what: str, k: int = 1) -> dict[str, Any]:
        """Clean events of their own for one faulty file (``what``; attempt ``k``)."""
        return _variant(partner, seed=self.seed, day=self.day, key=f"{what}:{k}")

    def previous(self, partner: Partner) -> tuple[str, bytes]:
        """The partner's clean file of the day before (as generate_tap wrote it)."""
        events = self.split.get(partner.tadig, 0)
        return build_file(partner, events=events, seed=self.seed, day=self.prev)

    def write(
        self,
        name: str,
        data: bytes,
        rule: str,
        event_index: int | None,
        description: str,
    ) -> None:
        (self.out / name).write_bytes(data)
        self.faults.append(PlantedFault(name, rule, event_index, description))

    def write_batch(
        self,
        partner: Partner,
        batch: dict[str, Any],
        *,
        name_fsn: int,
        rule: str,
        event: tuple[str, Any] | None,
        description: str,
    ) -> None:
        index = None if event is None else _index_of(batch, event)
        data = _encode(partner, batch)
        self.write(_name(partner, name_fsn), data, rule, index, description)

    # -- sequence faults -------------------------------------------------------------------------

    def copy(self, p: Partner) -> None:
        name, data = self.previous(p)
        self.write(name, data, COPY, None, f"identical resend of {name} of {self.prev}")

    def reused(self, p: Partner) -> None:
        name, data = self.previous(p)
        batch = _batch(data)
        dropped = batch["callEventDetails"].pop()
        _finish(batch)
        self.write(
            name,
            _encode(p, batch),
            "fsn.reused",
            None,
            f"FSN of {name} ({self.prev}) sent again with other content "
            f"(its last {dropped[0]} left out)",
        )

    def gap(self, p: Partner) -> None:
        batch = self.variant(p, "gap")
        fsn = _fsn(p, self.day, 2)
        _set_fsn(batch, fsn)
        _finish(batch)
        missing = _fsn(p, self.day, 1)
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="fsn.gap",
            event=None,
            description=f"FSN {fsn:05d} after {_fsn(p, self.day):05d}: {missing:05d} is missing",
        )

    def total_charge(self, p: Partner) -> None:
        batch = self.variant(p, "total_charge")
        fsn = _fsn(p, self.day, 1)
        _set_fsn(batch, fsn)
        _finish(batch)
        audit = batch["auditControlInfo"]
        audit["totalCharge"] += 1
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="aci.total_charge",
            event=None,
            description=f"TotalCharge {audit['totalCharge']}, one unit above the events' sum",
        )

    def filename(self, p: Partner) -> None:
        batch = self.variant(p, "filename")
        fsn = _fsn(p, self.day, 1)
        _set_fsn(batch, fsn)
        _finish(batch)
        named = _fsn(p, self.day, 2)
        self.write_batch(
            p,
            batch,
            name_fsn=named,
            rule="fsn.filename",
            event=None,
            description=f"file name says FSN {named:05d}, the header {fsn:05d}",
        )

    # -- event faults ----------------------------------------------------------------------------

    def tax(self, p: Partner, ahead: int, kinds: tuple[str, ...]) -> None:
        what = f"tax:{ahead}"
        batch, event = _pick(
            lambda k: self.variant(p, what, k),
            lambda e: e[0] in kinds and _one_tax(e) is not None,
            self.rng(what),
        )
        info = _one_tax(event)
        assert info is not None
        right = info["taxValue"]
        info["taxValue"] = right + _TAX_EXCESS_HUNDREDTHS * 10 ** (p.tap_decimal_places - 2)
        fsn = _fsn(p, self.day, ahead)
        _set_fsn(batch, fsn)
        _finish(batch)
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="event.tax_value.mismatch",
            event=event,
            description=f"{event[0]} with TaxValue {info['taxValue']} instead of {right} "
            f"(taxable amount {info['taxableAmount']})",
        )

    def duplicate(self, p: Partner, ahead: int) -> None:
        prev_name, prev_data = self.previous(p)
        earlier = _batch(prev_data)["callEventDetails"]
        rng = self.rng("duplicate")
        index = rng.randrange(len(earlier))
        event = copy.deepcopy(earlier[index])
        batch = self.variant(p, "duplicate")
        batch["callEventDetails"].append(event)
        fsn = _fsn(p, self.day, ahead)
        _set_fsn(batch, fsn)
        _finish(batch)
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="event.duplicate",
            event=event,
            description=f"event {index} of {prev_name} ({self.prev}) sent again",
        )

    def late(self, p: Partner, ahead: int) -> None:
        batch, chosen = _pick(lambda k: self.variant(p, "late", k), _voice, self.rng("late"))
        available = _parse(batch["batchControlInfo"]["fileAvailableTimeStamp"]["localTimeStamp"])
        start = _parse(_start(chosen)["localTimeStamp"])
        target = available - timedelta(days=LATE_DAYS)
        event = _shift(chosen, target - start)
        batch["callEventDetails"][_index_of(batch, chosen)] = event
        fsn = _fsn(p, self.day, ahead)
        _set_fsn(batch, fsn)
        _finish(batch)
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="event.start.late",
            event=event,
            description=f"starts {target:%Y-%m-%d %H:%M:%S}, {LATE_DAYS} days before the file "
            "was made available",
        )

    def suspect(self, p: Partner, ahead: int) -> None:
        batch, original = _pick(
            lambda k: self.variant(p, "suspect", k), _voice, self.rng("suspect")
        )
        event = _shift(original, timedelta(seconds=_SUSPECT_SECONDS))
        basic = event[1]["basicCallInformation"]
        basic["totalCallEventDuration"] += _SUSPECT_EXTRA_DURATION
        batch["callEventDetails"].append(event)
        fsn = _fsn(p, self.day, ahead)
        _set_fsn(batch, fsn)
        _finish(batch)
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="event.duplicate_suspect",
            event=event,
            description=f"same IMSI and {event[0]} as event {_index_of(batch, original)}, "
            f"{_SUSPECT_SECONDS} s later, {_SUSPECT_EXTRA_DURATION} s longer",
        )

    def scu_missing(self, p: Partner, ahead: int) -> None:
        batch, event = _pick(
            lambda k: self.variant(p, "scu", k),
            lambda e: _subscriber(e) is not None,
            self.rng("scu"),
        )
        sub = _subscriber(event)
        assert sub is not None
        sub.clear()
        fsn = _fsn(p, self.day, ahead)
        _set_fsn(batch, fsn)
        _finish(batch)
        self.write_batch(
            p,
            batch,
            name_fsn=fsn,
            rule="event.scu_missing",
            event=event,
            description=f"{event[0]} whose SimChargeableSubscriber has neither IMSI nor MSISDN",
        )


def plant_faults(out: Path, *, seed: int, day: date, events: int = 2000) -> list[PlantedFault]:
    """Write the faulty TAP files of processing date ``day`` into ``out``; list the faults.

    The files go next to the day's clean files (:func:`~clearing.samples.tap.generate_tap` with
    the same ``events`` and ``seed``); they assume the day before was processed with its clean
    files (see the module docstring for the table of faults and :func:`write_two_days`).

    Raises:
        ConfigError: ``events`` too small for FRAF9 and DEUD9 to have traffic.
    """
    split = split_events(max(events, 0))
    if min(split["FRAF9"], split["DEUD9"]) < _MIN_EVENTS:
        msg = f"--events {events} is too small to plant faults (try 100 or more)"
        raise ConfigError(msg)
    out.mkdir(parents=True, exist_ok=True)
    pl = _Planter(out, events=events, seed=seed, day=day)
    fra, deu, gbr, che, usa, jpn = (
        _partner(t) for t in ("FRAF9", "DEUD9", "GBRG9", "CHEC9", "USAU9", "JPNJ9")
    )
    pl.copy(fra)
    pl.tax(fra, 1, _CHARGE_INFORMATION_KINDS)
    pl.tax(fra, 2, ("mobileSession",))
    pl.reused(deu)
    pl.duplicate(deu, 1)
    pl.gap(gbr)
    pl.total_charge(che)
    pl.filename(usa)
    pl.late(jpn, 1)
    pl.suspect(jpn, 2)
    pl.scu_missing(jpn, 3)
    return sorted(pl.faults, key=lambda f: (f.file, -1 if f.event_index is None else f.event_index))


def write_two_days(root: Path, *, seed: int, day: date, events: int = 2000) -> TwoDays:
    """Two processing dates of inputs: ``root/<day-1>/`` clean, ``root/<day>/`` clean + faults.

    Validate ``day - 1`` first, then ``day``: the copy, the reused FSN and the duplicate refer
    to the day before.
    """
    prev = day - timedelta(days=1)
    first = generate_tap(root / prev.isoformat(), events=events, seed=seed, day=prev)
    second = generate_tap(root / day.isoformat(), events=events, seed=seed, day=day)
    faults = plant_faults(root / day.isoformat(), seed=seed, day=day, events=events)
    second += [root / day.isoformat() / f for f in sorted({f.file for f in faults})]
    return TwoDays(inputs={prev: first, day: second}, faults={prev: [], day: faults})
