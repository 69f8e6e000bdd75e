"""What the world does in reply to our nights, when a day of a multi-day world is delivered.

Some of a sample world's days depend on what the clearing did on the nights before, so they
cannot be written when the world is generated: :func:`clearing.samples.workdir.deliver_day`
does them when it puts the day in place, reading the work folder as the other side would.

* :func:`stamp_rap_fsn`: a partner resending a file we returned as fatal reads our RAP (in its
  exchange folder ``from_hkgcl``) and puts that RAP's RapFileSequenceNumber in the corrected
  file's BatchControlInfo (TD.57: the resubmission of a fatally rejected FSN);
* :func:`partner_rap`: a partner returns a few call events of the first TAP-out we sent it
  (the files registered in our outbox) with a severe error, in a RAP (TD.32) put in its
  exchange folder ``to_hkgcl``;
* :func:`change_tariff`: the analyst adds a new version of one IOT price to the rates sources
  (``rates/sources/iot.csv``, valid from the day) and imports it (``clearing rates import``).

Each is deterministic (same work folder, same bytes) and idempotent (done twice, nothing more).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearing._io import write_atomic
from clearing.codecs import asn1, fast
from clearing.codecs.rap import (
    ErrorDetail,
    FatalItem,
    RapHeader,
    SevereItem,
    rap_file_name,
    read_rap,
    write_rap,
)
from clearing.names import TapName
from clearing.rating import SOURCES, import_rates
from clearing.samples.tap import HOME_TADIG, PARTNERS, encode_file
from clearing.store import OutboxState, open_store
from clearing.validate.rules import rules_for

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing.samples.tap import Partner

__all__ = [
    "RETURNED_EVENTS",
    "RETURN_RULE",
    "TARIFF_CHANGE",
    "TariffChange",
    "change_tariff",
    "partner_rap",
    "stamp_rap_fsn",
]

RETURN_RULE = "event.charge.range"
"""The TD.57 rule (specs/td57/rules.csv: Charge, error code 20, severe) of a partner's returns."""
RETURNED_EVENTS = 3
"""How many call events of our TAP-out a partner's RAP returns (the first, middle, last)."""


@dataclass(frozen=True)
class TariffChange:
    """One IOT price changed by a new version of its row (the rest of the row as it was)."""

    partner: str
    direction: str
    service: str
    price: int  # at the row's price_scale (6: micro-SDR)


TARIFF_CHANGE = TariffChange("GBRG9", "inbound", "sms_mo", 16_000)
"""GBRG9's subscribers' SMS in Hong Kong: 0.014 SDR → 0.016 SDR."""

_SENT = {OutboxState.SENT, OutboxState.ACKNOWLEDGED, OutboxState.CLOSED}


def _partner(code: str) -> Partner:
    return next(p for p in PARTNERS if p.tadig == code)


def stamp_rap_fsn(workdir: Path, path: Path, partner: str, notes: list[str]) -> bool:
    """Put the RAP FSN of our fatal return of ``path``'s FSN into ``path`` (a corrected resend).

    Our RAPs to ``partner`` are read where it received them (``exchange/<P>/from_hkgcl``); the
    one with a FatalReturn of the file's FSN gives the RapFileSequenceNumber, written into the
    file's BatchControlInfo (re-encoded the way the partner encodes its files). Without such a
    RAP (the night of the fatal file was not run) the file stays as it is and a note says so.

    Returns:
        Whether the file was stamped (or already carried the number).
    """
    name = TapName.parse(path.name)
    if name is None:
        return False
    rap_fsn = _fatal_rap_fsn(workdir, partner, f"{name.fsn:05d}")
    if rap_fsn is None:
        notes.append(
            f"{path.name}: no RAP of ours returns FSN {name.fsn:05d} as fatal yet (was the "
            "night of the fatal file run?): the corrected file goes without rapFileSequenceNumber"
        )
        return False
    spec = asn1.spec("tap")
    kind, value = spec.decode("DataInterChange", path.read_bytes())
    bci = value["batchControlInfo"]
    stamp = f"{rap_fsn:05d}".encode()
    if bci.get("rapFileSequenceNumber") == stamp:
        return True
    # the member's place in BatchControlInfo (after fileSequenceNumber) is the encoder's
    value["batchControlInfo"] = {**bci, "rapFileSequenceNumber": stamp}
    p = _partner(partner)
    write_atomic(path, encode_file(p, (kind, value)))
    return True


def _fatal_rap_fsn(workdir: Path, partner: str, fsn: str) -> int | None:
    folder = workdir / "exchange" / partner / f"from_{HOME_TADIG.lower()}"
    found: int | None = None
    for rap in sorted(folder.glob(f"RC{HOME_TADIG}{partner}*")):
        if rap.name.endswith((".tmp", ".sha256")):
            continue
        got = read_rap(rap.read_bytes(), file=rap.name)
        if any(isinstance(i, FatalItem) and i.fsn == fsn for i in got.items):
            found = got.header.rap_fsn  # the latest RAP that returned it
    return found


def partner_rap(workdir: Path, partner: str, day: date, notes: list[str]) -> Path | None:
    """``partner``'s RAP about the first TAP-out we sent it: a few events returned as severe.

    The TAP-out is the first live TAP file to ``partner`` registered in our outbox and sent
    (``clearing.duckdb``); :data:`RETURNED_EVENTS` of its call events (the first, the middle
    and the last) are returned with :data:`RETURN_RULE`, echoed byte for byte. The RAP is the
    partner's first (RAP FSN 1), made at 08:00 partner time on ``day`` and written to
    ``exchange/<P>/to_hkgcl/``. With no such file yet (no night run), nothing is written and
    a note says why.

    Returns:
        The RAP written, or None.
    """
    sent = _first_tap_out(workdir, partner)
    if sent is None:
        notes.append(
            f"{partner}'s RAP of {day.isoformat()} skipped: no TAP-out to {partner} was sent "
            "yet (run the nights before this day first)"
        )
        return None
    data = sent.read_bytes()
    batch = fast.decode_tap(data, file=sent.name)
    ev = batch.events
    n = ev.num_rows
    picks = sorted({0, n // 2, n - 1})[:RETURNED_EVENTS] if n else []
    rs = rules_for(12)
    kinds = ev.column("event_kind").to_pylist()
    items = []
    for i in picks:
        off = ev.column("byte_offset")[i].as_py()
        length = ev.column("byte_length")[i].as_py()
        finding = rs.make(RETURN_RULE, "charge disputed", event_index=i, event_kind=kinds[i])
        assert finding is not None
        charge = (ev.column("charge")[i].as_py() or 0) + (ev.column("camel_fee")[i].as_py() or 0)
        items.append(
            SevereItem(
                fsn=sent.name[-5:],
                event_bytes=data[off : off + length],
                errors=[ErrorDetail(code=finding.code, path=finding.path)],
                charge=charge,
                tax=ev.column("tax")[i].as_py() or 0,
            )
        )
    acc = batch.groups.get("accountingInfo") or {}
    header = RapHeader(
        sender=partner,
        recipient=HOME_TADIG,
        rap_fsn=1,
        test=False,
        created_local=f"{day:%Y%m%d}080000",
        utc_offset=_partner(partner).utc_offsets[0],
        tap_decimal_places=acc.get("tapDecimalPlaces"),
    )
    target = workdir / "exchange" / partner / f"to_{HOME_TADIG.lower()}" / rap_file_name(header)
    target.parent.mkdir(parents=True, exist_ok=True)
    rap = write_rap(header, items)
    if not (target.is_file() and target.read_bytes() == rap):
        write_atomic(target, rap)
    return target


def _first_tap_out(workdir: Path, partner: str) -> Path | None:
    if not (workdir / "clearing.duckdb").is_file():
        return None
    with open_store(workdir, read_only=True) as store:
        entries = store.outbox.entries()
    for e in entries:
        name = TapName.parse(e.name)
        if (
            e.partner == partner
            and e.state in _SENT
            and name is not None
            and not name.test
            and name.sender == HOME_TADIG
        ):
            path = e.local_path if e.local_path.is_absolute() else workdir / e.local_path
            if path.is_file():
                return path
    return None


def change_tariff(rates_dir: Path, day: date, change: TariffChange = TARIFF_CHANGE) -> Path:
    """Add the new version of one IOT row (valid from ``day``) to the sources and import.

    The row of ``change``'s partner, direction and service valid before ``day`` is copied with
    the new price and ``valid_from = day`` and appended to ``rates_dir/sources/iot.csv`` (the
    old row stays: an empty ``valid_to`` runs until the next version); then every source is
    imported, as ``clearing rates import`` does. Done already (the row is there): only the
    import runs again.

    Returns:
        The IOT source file.
    """
    src = rates_dir / SOURCES / "iot.csv"
    text = src.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    key = (change.partner, change.direction, change.service)
    same = [r for r in rows if (r["partner"], r["direction"], r["service"]) == key]
    if not any(r["valid_from"] == day.isoformat() for r in same):
        old = max((r for r in same if r["valid_from"] < day.isoformat()), key=_valid_from)
        new = {
            **old,
            "price": str(change.price),
            "valid_from": day.isoformat(),
            "valid_to": "",
            "note": f"tariff change of {day.isoformat()} (was {old['price']})",
        }
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=list(old), lineterminator="\n").writerow(new)
        write_atomic(src, (text + buf.getvalue()).encode("utf-8"))
    import_rates(rates_dir)
    return src


def _valid_from(row: dict[str, str]) -> str:
    return row["valid_from"]
