"""Partners' RAP files about our TAP-out, and their ACKs of our RAPs.

* A RAP from a partner is answered with an Acknowledgement; its fatal returns mark our TAP-out
  file for correction and resubmission (same FSN, with rapFileSequenceNumber), its severe
  returns mark single events (resubmitted with rapFileSequenceNumber on the event).
* An ACK from a partner closes one of our RAPs; RAPs without an ACK are "ACKs owed to us".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing.codecs import asn1
from clearing.codecs.ber import APPLICATION, element_at, iter_children, tag_key
from clearing.codecs.rap import (
    FatalItem,
    MissingItem,
    ReturnedEvent,
    StopItem,
    ack_file_name,
    ack_for,
    read_ack,
    read_rap,
)
from clearing.errors import ClearingError, DecodeError

if TYPE_CHECKING:
    from clearing.codecs.rap import RapFile
    from clearing.store import Store

__all__ = ["Received", "event_facts", "header_sender", "receive", "tap_events"]


@dataclass(frozen=True)
class Received:
    """What :func:`receive` did with one file."""

    kind: str  # "rap" | "ack"
    sender: str
    recipient: str
    rap_fsn: int
    test: bool
    ack_file: Path | None = None
    fatal: int = 0
    severe: int = 0
    missing: int = 0
    stop: int = 0
    mismatches: tuple[str, ...] = ()
    stopped_after: tuple[int, ...] = ()  # StopReturn: the last FSN the partner takes


def header_sender(data: bytes, *, file: str) -> tuple[str, str]:
    """(``rap`` | ``ack``, the sender its header declares) of a partner's RAP or ACK.

    Raises:
        DecodeError: the bytes are neither a readable RAP nor a readable ACK.
    """
    info = asn1.sniff(data)
    if info.kind == "ack":
        return "ack", read_ack(data, file=file).sender
    if info.kind != "rap":
        msg = f"expected a RAP or an ACK file, found {info.kind}"
        raise DecodeError(msg, file=file, offset=0, hint="use `clearing inspect` to see it")
    return "rap", read_rap(data, file=file).header.sender


def receive(
    data: bytes, *, file: str, out_dir: Path, day: dt.date, state: Store | None = None
) -> Received:
    """Handle an incoming RAP (→ ACK file in ``out_dir``) or ACK (→ closes our RAP).

    The ACK's timestamps are those of the RAP it answers, so a re-run writes the same bytes.
    """
    info = asn1.sniff(data)
    from clearing._io import write_atomic

    if info.kind == "ack":
        got = read_ack(data, file=file)
        if state is not None:
            state.returns_in.record_ack_received(
                day, file=file, sender=got.sender, rap_fsn=got.rap_fsn, test=got.test
            )
        return Received("ack", got.sender, got.recipient, got.rap_fsn, got.test)
    if info.kind != "rap":
        msg = f"expected a RAP or an ACK file, found {info.kind}"
        raise DecodeError(msg, file=file, offset=0, hint="use `clearing inspect` to see it")
    rap = read_rap(data, file=file)
    h = rap.header
    ack = ack_for(rap, created_local=h.created_local, utc_offset=h.utc_offset)
    name = ack_file_name(h.recipient, h.sender, h.rap_fsn, h.test)
    path = out_dir / name
    write_atomic(path, ack)
    if state is not None:
        rows = state.returns_in
        rows.record_rap_received(
            day,
            file=file,
            sha256=hashlib.sha256(data).hexdigest(),
            sender=h.sender,
            recipient=h.recipient,
            rap_fsn=h.rap_fsn,
            test=h.test,
            ack_file=name,
        )
        _record_items(rap, file=file, day=day, state=state)
    return Received(
        "rap",
        h.sender,
        h.recipient,
        h.rap_fsn,
        h.test,
        ack_file=path,
        fatal=len(rap.fatal),
        severe=len(rap.severe),
        missing=len(rap.missing),
        stop=len(rap.stop),
        mismatches=tuple(m.message for m in rap.mismatches),
        stopped_after=tuple(x.last_seq for x in rap.stop),
    )


def tap_events(data: bytes) -> list[bytes]:
    """The CallEventDetail elements of a TAP TransferBatch, byte for byte, in file order.

    Raises:
        DecodeError: the bytes are not a TransferBatch.
    """
    top = element_at(data, 0)
    for child in iter_children(data, top):
        if child.key == tag_key(APPLICATION, 3):
            return [data[e.offset : e.end] for e in iter_children(data, child)]
    return []


def _digits(raw: Any) -> str | None:
    if not isinstance(raw, bytes):
        return None
    return raw.hex().rstrip("f").upper() or None


def event_facts(value: Any) -> tuple[str | None, dt.datetime | None]:
    """(IMSI, local start) of a decoded CallEventDetail (asn1tools' ``(kind, {...})``)."""
    if not isinstance(value, tuple) or len(value) != 2 or not isinstance(value[1], dict):
        return None, None
    body: dict[str, Any] = value[1]
    basic = body.get("basicCallInformation") or body.get("gprsBasicCallInformation") or {}
    chargeable = basic.get("chargeableSubscriber")
    if chargeable is None:
        chargeable = (basic.get("gprsChargeableSubscriber") or {}).get("chargeableSubscriber")
    imsi = None
    if isinstance(chargeable, tuple) and isinstance(chargeable[1], dict):
        imsi = _digits(chargeable[1].get("imsi"))
    stamp = (basic.get("callEventStartTimeStamp") or {}).get("localTimeStamp")
    start = None
    if isinstance(stamp, bytes):
        try:
            start = dt.datetime.strptime(stamp.decode("latin-1"), "%Y%m%d%H%M%S")
        except ValueError:
            start = None
    return imsi, start


def _our_file(state: Store, partner: str, fsn: str | None) -> tuple[str, dt.date, Path] | None:
    if fsn is None or not fsn.isdigit():
        return None
    found = state.returns_in.tap_out(partner, int(fsn))
    return None if found is None else (found[0], found[1], Path(found[2]))


def _record_items(rap: RapFile, *, file: str, day: dt.date, state: Store) -> None:
    """One ``returns_in`` row per returned event or file, numbered in RAP order.

    A severe return is found in our TAP-out by its bytes (the partner echoes the event as we
    wrote it): its ``event_index`` is its place there, and so in the day's rated rows.
    """
    h = rap.header
    rows = state.returns_in
    common: dict[str, Any] = {"partner": h.sender, "rap_fsn": h.rap_fsn}
    events_of: dict[str, list[bytes]] = {}
    fatal: dict[str, list[FatalItem]] = {}
    for x in rap.items:  # the fatal items of one file are one returned file
        if isinstance(x, FatalItem):
            fatal.setdefault(x.fsn, []).append(x)
    n = 0
    for x in rap.items:
        ours = None
        if isinstance(x, FatalItem):
            if x.fsn not in fatal:
                continue
            items = fatal.pop(x.fsn)
            ours = _our_file(state, h.sender, x.fsn)
            rows.record_return(
                day,
                rap_file=file,
                kind="fatal",
                fsn=x.fsn,
                event_kind=",".join(f.group for f in items),
                error_codes=",".join(str(e.code) for f in items for e in f.errors),
                item=n,
                tap_file=ours and ours[0],
                tap_date=ours and ours[1],
                charge_scale=h.tap_decimal_places,
                currency=h.tap_currency or "SDR",
                **common,
            )
        elif isinstance(x, ReturnedEvent):
            ours = _our_file(state, h.sender, x.fsn)
            index = None
            if ours is not None:
                if ours[0] not in events_of:
                    try:
                        events_of[ours[0]] = tap_events(ours[2].read_bytes())
                    except (OSError, ClearingError):
                        events_of[ours[0]] = []
                found = events_of[ours[0]]
                index = found.index(x.event_bytes) if x.event_bytes in found else None
            imsi, start = event_facts(x.value)
            rows.record_return(
                day,
                rap_file=file,
                kind="severe",
                fsn=x.fsn,
                event_kind=x.kind,
                event_sha256=hashlib.sha256(x.event_bytes).hexdigest(),
                charge=x.charge,
                tax=x.tax,
                error_codes=",".join(str(e.code) for e in x.errors),
                item=n,
                tap_file=ours and ours[0],
                tap_date=ours and ours[1],
                event_index=index,
                imsi=imsi,
                start_time=start,
                charge_scale=h.tap_decimal_places,
                currency=h.tap_currency or "SDR",
                **common,
            )
        elif isinstance(x, MissingItem):
            ours = _our_file(state, h.sender, f"{x.start:05d}")
            rows.record_return(
                day,
                rap_file=file,
                kind="missing",
                fsn=f"{x.start:05d}",
                event_kind=None,
                charge=None,
                tax=None,
                item=n,
                fsn_end=None if x.end is None else f"{x.end:05d}",
                tap_file=ours and ours[0],
                tap_date=ours and ours[1],
                **common,
            )
        elif isinstance(x, StopItem):
            rows.record_return(
                day,
                rap_file=file,
                kind="stop",
                fsn=f"{x.last_seq:05d}",
                event_kind=None,
                charge=None,
                tax=None,
                item=n,
                **common,
            )
        n += 1
