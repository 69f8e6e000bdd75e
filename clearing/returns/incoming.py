"""Partners' RAP files about our TAP-out, and their ACKs of our RAPs.

* A RAP from a partner is answered with an Acknowledgement; its fatal returns mark our TAP-out
  file for correction and resubmission (same FSN, with rapFileSequenceNumber), its severe
  returns mark single events (resubmitted with rapFileSequenceNumber on the event).
* An ACK from a partner closes one of our RAPs; RAPs without an ACK are "ACKs owed to us".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearing.codecs import asn1
from clearing.codecs.rap import ack_file_name, ack_for, read_ack, read_rap
from clearing.errors import DecodeError

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from clearing.store import Store

__all__ = ["Received", "receive"]


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
        for f in rap.fatal:
            rows.record_return(
                day,
                rap_file=file,
                kind="fatal",
                fsn=f.fsn,
                event_kind=f.group,
                error_codes=",".join(str(e.code) for e in f.errors),
            )
        for e in rap.severe:
            rows.record_return(
                day,
                rap_file=file,
                kind="severe",
                fsn=e.fsn,
                event_kind=e.kind,
                event_sha256=hashlib.sha256(e.event_bytes).hexdigest(),
                charge=e.charge,
                tax=e.tax,
                error_codes=",".join(str(x.code) for x in e.errors),
            )
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
    )
