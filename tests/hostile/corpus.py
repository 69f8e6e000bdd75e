"""The hostile-delivery corpus of issue 14: every odd entry a partner (or an operator) may deliver.

:func:`drop_corpus` puts the corpus beside the good files of a work folder made by
``clearing samples generate`` (folder transports: ``exchange/<P>/to_hkgcl``), and in ``inbox/``
for the operator's drops. Every :class:`HostileCase` says where the entry is, which channel
delivered it and which fate it must get (vocabulary of /work/notes/issue14-design.md):

=====================  ==========================================  =============  ==========
case                   entry (channel)                             fate           why
=====================  ==========================================  =============  ==========
foreign_name           ``CDDEUD9HKGCL<D+1 FSN>`` (FRAF9), DEUD9's  quarantined    provenance:
                       valid bytes                                                 name ≠ channel
unicode_digits         ``CDFRAF9HKGCL١٢٣٤٥`` (FRAF9)                quarantined    not an ASCII name
long_name              255 characters (FRAF9)                      refused        name too long
symlink_loop           a symlink to itself (FRAF9)                 refused        loop
symlink_out            a symlink to a local secret file (FRAF9)    refused        out of the root
directory              a folder under a TAP name (FRAF9)           refused        not a file
unreadable             chmod 000 (FRAF9; skipped as root)          refused        unreadable
unknown_name           ``README.txt`` (FRAF9)                      quarantined    unknown name
nrtrde                 ``NRFRAF9HKGCL00001`` (FRAF9), NRT 2.1      quarantined    not processed
rap_garbage            ``RCFRAF9HKGCL00077`` (FRAF9), random       quarantined    a RAP we cannot
                                                                                   read or answer
header_sender          ``CDFRAF9HKGCL05002`` (FRAF9), header DEUD9  quarantined    header ≠ name
empty_tap              ``CDFRAF9HKGCL01501`` (FRAF9), 0 bytes      returned       fatal RAP
garbage_tap            ``CDFRAF9HKGCL01502`` (FRAF9), random       returned       fatal RAP
nested_tap             ``CDFRAF9HKGCL01503``, 100 000 levels       returned       fatal RAP
empty_events_tap       ``CDFRAF9HKGCL01504``, 2 000 000 events     returned       fatal RAP
huge_volume_tap        ``CDFRAF9HKGCL01505``, volume 2^63−1        processed      its one event
                                                                   (or returned)  returned
garbage_ciber          ``CIBER_04172_…_962.dat`` (04172), random   returned       batch reject
unreadable_ciber       ``CIBER_04172_…_961.dat``, header + junk    returned       batch reject
long_ciber_record      ``CIBER_04172_…_960.dat``, 1 000-char rec.  returned       its one record
                                                                   (or processed)
inbox_unknown          ``inbox/mystery.bin`` (no channel)          quarantined    unknown name
inbox_header_sender    ``inbox/CDGBRG9HKGCL00999``, header USAU9   quarantined    header ≠ name
=====================  ==========================================  =============  ==========

The rule behind the fates: an entry that cannot be fetched is **refused**; a file whose channel,
name and header agree and whose name says it is a TAP or CIBER file for us is answered the
standard's way even when it cannot be read (a fatal RAP with the name's sender and FSN, as
:func:`clearing.validate.tap.check_tap` already promises; a CIBER batch reject) — **returned**;
anything else (another partner's name, an unknown or non-ASCII name, a kind we do not process,
a RAP we cannot read, a header that contradicts the name) is **quarantined**. Two cases name a
second fate the design leaves to the implementer: a value out of range on one event is a severe
finding (the event returned, the file processed) or a fatal one; an over-long CIBER record is
a record return (file processed) or a batch reject.

FSNs are picked so that a good night is not disturbed: the five FRAF9 files that reach the file
register (returned, or processed) carry FSNs 01501-01505, right before the day's good file
01506 (validated in FSN order: no gap, and tomorrow still expects 01507); FRAF9 files that must
never reach the register carry 05001 and up (if one did, the gap findings would show it). The
CIBER files of 04172 carry batch sequences 960-962 (after the good file's 951-952, the good
file keeps its place, hence the number of its record return; tomorrow's 953 is behind 960: no
gap).

Deterministic: same work folder, day and seed → same bytes.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from clearing.codecs import asn1
from clearing.codecs.ciber import encode_batch
from clearing.samples.ciber import HOME_SID_BID
from clearing.samples.tap import (
    HOME_TADIG,
    PARTNERS,
    build_file,
    file_sequence_number,
    home_subscribers,
)
from clearing.samples.workdir import REMOTE_IN

__all__ = [
    "EMPTY_EVENTS",
    "FATES",
    "NESTING",
    "HostileCase",
    "drop_corpus",
    "empty_events_tap",
    "huge_volume_tap",
    "nested_tap",
    "running_as_root",
]

FATES = ("processed", "copy_ignored", "returned", "quarantined", "refused")
NESTING = 100_000
"""Levels of the nested TAP file (definite lengths, about 0.5 MB)."""
EMPTY_EVENTS = 2_000_000
"""Empty call events of the TAP file of empty events (about 4 MB)."""
VOLUME = 2**63 - 1
"""The data volume of the out-of-range TAP file: INT64's maximum."""

TAP_PARTNER = "FRAF9"
"""The channel most cases arrive through."""
FOREIGN_PARTNER = "DEUD9"
"""The partner whose name / header the provenance cases claim."""
CIBER_PARTNER = "04172"
"""The CIBER channel of the CIBER cases (CR LF line endings)."""
SECRET_MARK = b"HOSTILE-CORPUS-SECRET:"


@dataclass(frozen=True)
class HostileCase:
    """One hostile entry.

    Attributes:
        key: a short id (the test ids).
        name: the entry's name as delivered (what the manifest's ``entries`` list names).
        channel: the partner channel that delivered it; None for a drop into ``inbox/``.
        fate: the fate it must get.
        what: what it is, in a few words.
        also: another fate the design allows (module docstring); empty when only ``fate``.
    """

    key: str
    name: str
    channel: str | None
    fate: str
    what: str
    also: tuple[str, ...] = ()

    @property
    def fates(self) -> tuple[str, ...]:
        """Every fate accepted for this entry, the expected one first."""
        return (self.fate, *self.also)

    def where(self, root: Path) -> Path:
        """The entry's path in the work folder ``root``."""
        if self.channel is None:
            return root / "inbox" / self.name
        return root / "exchange" / self.channel / REMOTE_IN / self.name


# ---------------------------------------------------------------------------------------------
# BER by hand (definite lengths)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _application(number: int, content: bytes) -> bytes:
    """A constructed [APPLICATION number] element (number < 31) with ``content``."""
    return bytes([0x60 | number]) + _length(len(content)) + content


def _elements(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int, int]]:
    """(first identifier octet, start, end) of each definite-length element in data[start:end]."""
    end = len(data) if end is None else end
    out = []
    p = start
    while p < end:
        first = data[p]
        q = p + 1
        if first & 0x1F == 0x1F:  # high tag number form
            while data[q] & 0x80:
                q += 1
            q += 1
        n = data[q]
        q += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[q : q + k], "big")
            q += k
        out.append((first, p, q + n))
        p = q + n
    return out


# ---------------------------------------------------------------------------------------------
# TAP values


def _partner(code: str) -> Any:
    return next(p for p in PARTNERS if p.tadig == code)


def _batch(code: str, *, day: date, events: int, seed: int) -> dict[str, Any]:
    """A clean TransferBatch value of partner ``code`` (asn1tools form)."""
    _, data = build_file(_partner(code), events=events, seed=seed, day=day)
    kind, body = asn1.decode(data).value
    assert kind == "transferBatch", kind
    return body  # type: ignore[no-any-return]


def _encode(batch: dict[str, Any], *, fsn: int | None = None) -> bytes:
    if fsn is not None:
        batch["batchControlInfo"]["fileSequenceNumber"] = f"{fsn:05d}".encode()
    return asn1.encode("tap", ("transferBatch", batch))


def _tap_name(sender: str, fsn: int) -> str:
    return f"CD{sender}{HOME_TADIG}{fsn:05d}"


def _dicts(node: Any) -> list[dict[str, Any]]:
    """Every dict inside an asn1tools value (CHOICE tuples and lists included)."""
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out += _dicts(v)
    elif isinstance(node, list):
        for v in node:
            out += _dicts(v)
    elif isinstance(node, tuple) and len(node) == 2 and isinstance(node[0], str):
        out += _dicts(node[1])
    return out


def _audit_of_one(batch: dict[str, Any], event: tuple[str, Any]) -> None:
    """Make ``event`` the batch's only event, its AuditControlInfo summing that event."""
    kind, body = event
    charge = tax = discount = 0
    if kind == "messagingEvent":
        charge += body["charge"]
    for d in _dicts(body):
        if "chargeDetailList" in d:
            charge += sum(c["charge"] for c in d["chargeDetailList"] if c["chargeType"] == b"00")
        charge += d.get("camelInvocationFee", 0)
        tax += d.get("taxValue", 0)
        if "discountCode" in d and "discount" in d:
            discount += d["discount"]
    stamp = next(d for d in _dicts(body) if "localTimeStamp" in d and "utcTimeOffsetCode" in d)
    offsets = {
        u["utcTimeOffsetCode"]: u["utcTimeOffset"]
        for u in batch["networkInfo"]["utcTimeOffsetInfo"]
    }
    when = {
        "localTimeStamp": stamp["localTimeStamp"],
        "utcTimeOffset": offsets[stamp["utcTimeOffsetCode"]],
    }
    batch["callEventDetails"] = [event]
    audit = batch["auditControlInfo"]
    audit["earliestCallTimeStamp"] = dict(when)
    audit["latestCallTimeStamp"] = dict(when)
    audit["totalCharge"] = charge
    audit["totalTaxValue"] = tax
    audit["totalDiscountValue"] = discount
    audit["callEventDetailsCount"] = 1


def huge_volume_tap(*, day: date, fsn: int, seed: int) -> bytes:
    """A FRAF9 TransferBatch of one GPRS event whose incoming data volume is 2^63−1.

    Everything else is right (the audit sums that one event), so only the value range can
    tell: TD.57 has no such volume, and INT64 overflows as soon as it is added to anything.
    """
    batch = _batch(TAP_PARTNER, day=day, events=60, seed=seed)
    gprs = next(e for e in batch["callEventDetails"] if e[0] == "gprsCall")
    gprs = copy.deepcopy(gprs)
    gprs[1]["gprsServiceUsed"]["dataVolumeIncoming"] = VOLUME
    _audit_of_one(batch, gprs)
    return _encode(batch, fsn=fsn)


def _splice_events(header: bytes, events: bytes) -> bytes:
    """``header`` (a definite TransferBatch) with its CallEventDetailList's content replaced."""
    ((first, start, end),) = _elements(header)
    assert first == 0x61, hex(first)  # [APPLICATION 1] TransferBatch
    parts = [
        _application(3, events) if f == 0x63 else header[s:e]  # [APPLICATION 3] the events
        for f, s, e in _elements_of(header, start, end)
    ]
    return _application(1, b"".join(parts))


def _elements_of(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The children of the definite element data[start:end] (its header skipped)."""
    q = start + 1
    n = data[q]
    q += 1
    if n & 0x80:
        q += n & 0x7F
    return _elements(data, q, end)


def nested_tap(*, day: date, fsn: int, seed: int, depth: int = NESTING) -> bytes:
    """A FRAF9 TransferBatch whose one call event nests ``depth`` levels deep (definite lengths).

    Right header groups, then a MobileOriginatedCall ([APPLICATION 9]) inside a
    MobileOriginatedCall … ``depth`` times: about 5 bytes a level, 0.5 MB for 100 000 levels.
    """
    base = _encode(_batch(TAP_PARTNER, day=day, events=1, seed=seed), fsn=fsn)
    # from the inside out: each level's header is its tag and the length of what it holds
    headers: list[bytes] = []
    inner = 0
    for _ in range(depth):
        h = b"\x69" + _length(inner)
        headers.append(h)
        inner += len(h)
    headers.reverse()
    return _splice_events(base, b"".join(headers))


def empty_events_tap(*, day: date, fsn: int, seed: int, count: int = EMPTY_EVENTS) -> bytes:
    """A FRAF9 TransferBatch of ``count`` empty MobileOriginatedCalls (2 bytes each: ~4 MB)."""
    base = _encode(_batch(TAP_PARTNER, day=day, events=1, seed=seed), fsn=fsn)
    return _splice_events(base, b"\x69\x00" * count)


def _foreign_header(code: str, *, day: date, fsn: int, seed: int) -> bytes:
    """A valid TAP file of partner ``code`` (its header names ``code``) with FSN ``fsn``."""
    return _encode(_batch(code, day=day, events=12, seed=seed), fsn=fsn)


# ---------------------------------------------------------------------------------------------
# CIBER


def _ciber_name(sequence: int, day: date) -> str:
    return f"CIBER_{CIBER_PARTNER}_{HOME_SID_BID}_{day:%Y%m%d}_{sequence:03d}.dat"


def _ciber_message(day: date, sequence: int) -> tuple[str, dict[str, Any]]:
    """One type-32 record (an SMS, 0.15 USD + taxes) of one of our roamers in Alabama."""
    imsi, msisdn = home_subscribers()[0]
    start = datetime.combine(day - timedelta(days=1), datetime.min.time()) + timedelta(hours=9)
    charge, state, local = 15, 1, 0
    return "32", {
        "home_sid_bid": HOME_SID_BID,
        "msid_indicator": 1,
        "msid": imsi,
        "mdn": msisdn,
        "esn_indicator": 3,
        "esn": "00000000000042",
        "serving_sid_bid": CIBER_PARTNER,
        "currency_type": 1,
        "original_batch_sequence_number": sequence,
        "initial_cell_site": "C0042",
        "time_zone_indicator": 99,
        "total_charges_and_taxes": charge + state + local,
        "total_state_province_taxes": state,
        "total_local_other_taxes": local,
        "call_date": start.date(),
        "call_direction": 1,
        "call_completion_indicator": 2,
        "call_termination_indicator": 2,
        "charge_no_1_indicator": 15,
        "charge_no_1_connect_time": start.time(),
        "charge_no_1_tax_surcharge_indicator": 3,
        "charge_no_1": charge,
        "special_features_used": "0",
    }


def _ciber_batch(day: date, sequence: int) -> list[bytes]:
    """The lines (CR LF ended) of a one-record CIBER batch of 04172 for us."""
    batch = encode_batch(
        [_ciber_message(day, sequence)],
        creation_date=day,
        batch_sequence_number=sequence,
        sending_sid_bid=CIBER_PARTNER,
        receiving_sid_bid=HOME_SID_BID,
        currency_type=1,
        line_ending=b"\r\n",
    )
    return batch.split(b"\r\n")


def long_ciber_record(*, day: date, sequence: int) -> bytes:
    """A one-batch CIBER file whose one record is 1 000 characters long (digits after its end)."""
    lines = _ciber_batch(day, sequence)
    i = next(k for k, line in enumerate(lines) if line.startswith(b"32"))
    lines[i] = lines[i] + b"9" * (1000 - len(lines[i]))
    return b"\r\n".join(lines)


def unreadable_ciber(*, day: date, sequence: int, rng: random.Random) -> bytes:
    """A right CIBER batch header and trailer around a record of binary junk."""
    lines = _ciber_batch(day, sequence)
    i = next(k for k, line in enumerate(lines) if line.startswith(b"32"))
    junk = bytes(rng.randrange(0x80, 0x100) for _ in range(len(lines[i])))
    lines[i] = b"32" + junk[2:]
    return b"\r\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the corpus


def running_as_root() -> bool:
    """Whether permissions mean nothing here (root reads a chmod 000 file)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _nrt_bytes() -> bytes:
    return (Path(__file__).parents[1] / "codecs" / "cases" / "libxfsx_nrt_2_1.ber").read_bytes()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def secret_bytes(seed: int) -> bytes:
    """The content of the local file the out-of-root symlink points to (unique, recognisable)."""
    rng = random.Random(f"secret:{seed}")
    return SECRET_MARK + rng.randbytes(48).hex().encode() + b"\n"


def drop_corpus(root: Path, day: date, secret: Path, *, seed: int = 14) -> list[HostileCase]:
    """Drop every hostile case beside the good files of the sample world ``root``.

    Args:
        root: a work folder made by ``clearing samples generate`` (day ``day`` delivered).
        day: its processing date.
        secret: a local file outside ``root``; written with :func:`secret_bytes` (the target
            of the out-of-root symlink: its bytes must never appear under ``root``).
        seed: the seed of the random bytes and of the cases' events (not the world's).

    Returns:
        The cases dropped (the unreadable one only when not running as root).
    """
    rng = random.Random(f"hostile:{seed}:{day.isoformat()}")
    other = 10_000 + seed  # the cases' events are drawn anew: no duplicate of a good event
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(secret_bytes(seed))
    cases: list[HostileCase] = []

    def add(case: HostileCase, data: bytes | None = None) -> Path:
        path = case.where(root)
        if data is not None:
            _write(path, data)
        cases.append(case)
        return path

    tap = TAP_PARTNER
    foreign_fsn = file_sequence_number(_partner(FOREIGN_PARTNER), day + timedelta(days=1))
    foreign = _tap_name(FOREIGN_PARTNER, foreign_fsn)
    add(
        HostileCase("foreign_name", foreign, tap, "quarantined", f"{FOREIGN_PARTNER}'s name"),
        _foreign_header(FOREIGN_PARTNER, day=day, fsn=foreign_fsn, seed=other),
    )
    add(
        HostileCase("unicode_digits", f"CD{tap}{HOME_TADIG}١٢٣٤٥", tap, "refused", "Arabic digits"),
        _foreign_header(tap, day=day, fsn=5001, seed=other),
    )
    long_name = f"CD{tap}{HOME_TADIG}".ljust(255, "0")
    add(
        HostileCase("long_name", long_name, tap, "refused", "a 255-character name"),
        _foreign_header(tap, day=day, fsn=5003, seed=other),
    )
    loop = add(HostileCase("symlink_loop", _tap_name(tap, 5005), tap, "refused", "symlink loop"))
    os.symlink(loop.name, loop)
    out = add(HostileCase("symlink_out", _tap_name(tap, 5006), tap, "refused", "symlink out"))
    os.symlink(secret.resolve(), out)
    folder = add(HostileCase("directory", _tap_name(tap, 5007), tap, "refused", "a folder"))
    folder.mkdir()
    (folder / "inside").write_bytes(b"a file in a folder under a TAP name\n")
    if not running_as_root():
        locked = add(
            HostileCase("unreadable", _tap_name(tap, 5008), tap, "refused", "chmod 000"),
            _foreign_header(tap, day=day, fsn=5008, seed=other),
        )
        locked.chmod(0)
    add(
        HostileCase("unknown_name", "README.txt", tap, "quarantined", "an unknown name"),
        b"Files for HKGCL are in this folder.\n",
    )
    add(
        HostileCase("nrtrde", f"NR{tap}{HOME_TADIG}00001", tap, "quarantined", "an NRTRDE file"),
        _nrt_bytes(),
    )
    add(
        HostileCase("rap_garbage", f"RC{tap}{HOME_TADIG}00077", tap, "quarantined", "random RAP"),
        rng.randbytes(4096),
    )
    add(
        HostileCase("header_sender", _tap_name(tap, 5002), tap, "quarantined", "header says DEUD9"),
        _foreign_header(FOREIGN_PARTNER, day=day, fsn=5002, seed=other),
    )
    # the five that reach the file register: FSNs 01501-01505, right before the good 01506
    good = file_sequence_number(_partner(tap), day)
    first = good - 5
    add(HostileCase("empty_tap", _tap_name(tap, first), tap, "quarantined", "empty"), b"")
    add(
        HostileCase("garbage_tap", _tap_name(tap, first + 1), tap, "returned", "random bytes"),
        rng.randbytes(65_536),
    )
    add(
        HostileCase("nested_tap", _tap_name(tap, first + 2), tap, "returned", "nested 100 000"),
        nested_tap(day=day, fsn=first + 2, seed=other),
    )
    add(
        HostileCase(
            "empty_events_tap", _tap_name(tap, first + 3), tap, "returned", "2 000 000 events"
        ),
        empty_events_tap(day=day, fsn=first + 3, seed=other),
    )
    add(
        HostileCase(
            "huge_volume_tap",
            _tap_name(tap, first + 4),
            tap,
            "processed",
            "data volume 2^63-1",
            also=("returned",),
        ),
        huge_volume_tap(day=day, fsn=first + 4, seed=other),
    )
    # CIBER: batch sequences after the good file's (951, 952 on 2026-11-22)
    seq = 960
    add(
        HostileCase(
            "long_ciber_record",
            _ciber_name(seq, day),
            CIBER_PARTNER,
            "returned",
            "a 1 000-character record",
            also=("processed",),
        ),
        long_ciber_record(day=day, sequence=seq),
    )
    add(
        HostileCase(
            "unreadable_ciber", _ciber_name(seq + 1, day), CIBER_PARTNER, "quarantined", "junk"
        ),
        unreadable_ciber(day=day, sequence=seq + 1, rng=rng),
    )
    add(
        HostileCase(
            "garbage_ciber", _ciber_name(seq + 2, day), CIBER_PARTNER, "quarantined", "random bytes"
        ),
        rng.randbytes(8192),
    )
    # an operator's drops into inbox/: no channel, only the name and the header tell
    add(
        HostileCase("inbox_unknown", "mystery.bin", None, "quarantined", "an unknown name"),
        rng.randbytes(1024),
    )
    add(
        HostileCase(
            "inbox_header_sender", _tap_name("GBRG9", 999), None, "quarantined", "header USAU9"
        ),
        _foreign_header("USAU9", day=day, fsn=999, seed=other),
    )
    return cases
