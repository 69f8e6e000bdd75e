"""The header facts of a file, as the register records them once (architecture review #3).

What settlement shows about a file (when it was made available, its TAP currency and decimal
places, its audit totals as declared, the CIBER batch totals) is read here from the file's
bytes by the stage that has them (validate for partners' files, the writers for ours) and
stored in ``clearing.duckdb``; settlement reads the register and never decodes a file again.

* :func:`tap_header_facts`: a TAP TransferBatch or Notification, decoding only its header
  groups (not the call events);
* :func:`ciber_facts`: a decoded CIBER file's batch totals, currency and creation date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from clearing.errors import ClearingError

if TYPE_CHECKING:
    from clearing.codecs.ciber import Decoded

__all__ = ["CiberFacts", "TapHeaderFacts", "ciber_facts", "parse_tap_stamp", "tap_header_facts"]

_STAMP = re.compile(r"(\d{14})([+-]\d{4})?")


@dataclass(frozen=True, slots=True)
class TapHeaderFacts:
    """What the header groups of a TAP file or Notification declare.

    Attributes:
        kind: "tap" (TransferBatch) or "notification".
        file_available: fileAvailableTimeStamp as naive UTC (None when absent or malformed).
        file_created: fileCreationTimeStamp as naive UTC (None when absent or malformed).
        tap_currency: accountingInfo tapCurrency (None when absent).
        tap_decimal_places: accountingInfo tapDecimalPlaces (None when absent).
        total_charge: auditControlInfo totalCharge (None when absent).
        total_tax: auditControlInfo totalTaxValue (None when absent).
        total_discount: auditControlInfo totalDiscountValue (None when absent).
        event_count: auditControlInfo callEventDetailsCount (None when absent).
    """

    kind: str
    file_available: datetime | None = None
    file_created: datetime | None = None
    tap_currency: str | None = None
    tap_decimal_places: int | None = None
    total_charge: int | None = None
    total_tax: int | None = None
    total_discount: int | None = None
    event_count: int | None = None


@dataclass(frozen=True, slots=True)
class CiberFacts:
    """What the batches of a CIBER file declare and what its records add up to.

    Attributes:
        total: Σ of the batch trailers' Total Charges and Taxes, as declared (cents).
        detail_total: Σ of the batches' detail records' charges and taxes (cents).
        charge: Σ charge of the decoded records (cents).
        currency: the first batch's currency.
        created: the first batch's creation date (midnight), None when absent.
        events: the number of detail records decoded.
        sender, recipient: the first batch's sending / receiving SID/BID.
    """

    total: int
    detail_total: int
    charge: int
    currency: str | None
    created: datetime | None
    events: int
    sender: str | None = None
    recipient: str | None = None


def parse_tap_stamp(text: str | None) -> datetime | None:
    """``CCYYMMDDhhmmss±hhmm`` (TAP DateTimeLong) → naive UTC datetime (None when malformed)."""
    if not text:
        return None
    m = _STAMP.fullmatch(text)
    if m is None:
        return None
    local = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    off = m.group(2) or "+0000"
    sign = 1 if off[0] == "+" else -1
    delta = timedelta(hours=int(off[1:3]), minutes=int(off[3:5]))
    return local - sign * delta


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("latin-1")
    return str(v)


def _stamp(v: Any) -> datetime | None:
    """A DateTimeLong value (``localTimeStamp`` + ``utcTimeOffset``) as naive UTC."""
    if not isinstance(v, dict):
        return None
    local = _text(v.get("localTimeStamp")) or ""
    off = v.get("utcTimeOffset", v.get("utcTimeOffsetCode"))
    return parse_tap_stamp(f"{local}{_text(off) or ''}")


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def tap_header_facts(data: bytes) -> TapHeaderFacts | None:
    """The header facts of a TAP TransferBatch or Notification (header groups only).

    Returns:
        None when the bytes are not a TAP file or Notification of a known release, or when
        its header groups cannot be decoded.
    """
    from clearing.codecs import asn1
    from clearing.codecs.ber import element_at, iter_children

    try:
        info = asn1.sniff(data)
    except ClearingError:
        return None
    if info.kind not in ("tap", "notification") or info.tap_release is None:
        return None
    try:
        spec = asn1.spec("tap", info.tap_release)
        grammar = asn1.grammar("tap", info.tap_release)
        root = "TransferBatch" if info.kind == "tap" else "Notification"
        groups: dict[str, Any] = {}
        for child in iter_children(data, element_at(data, 0)):
            meaning = grammar.child(root, child.key)
            if meaning is None or not meaning.name or meaning.name == "callEventDetails":
                continue
            if meaning.type_name and meaning.constructed:
                groups[meaning.name] = spec.decode(
                    meaning.type_name, data[child.offset : child.end]
                )
    except (ClearingError, ValueError, KeyError, IndexError, TypeError):
        return None
    except Exception as exc:  # asn1tools' own errors
        if type(exc).__module__.startswith("asn1tools"):
            return None
        raise
    bci = groups.get("batchControlInfo") or {}
    acc = groups.get("accountingInfo") or {}
    aci = groups.get("auditControlInfo") or {}
    available = bci.get("fileAvailableTimeStamp") or groups.get("fileAvailableTimeStamp")
    created = bci.get("fileCreationTimeStamp") or groups.get("fileCreationTimeStamp")
    if info.kind != "tap":  # a Notification has no accounting or audit groups
        acc, aci = {}, {}
    return TapHeaderFacts(
        kind=info.kind,
        file_available=_stamp(available),
        file_created=_stamp(created),
        tap_currency=_text(acc.get("tapCurrency")),
        tap_decimal_places=_int(acc.get("tapDecimalPlaces")),
        total_charge=_int(aci.get("totalCharge")),
        total_tax=_int(aci.get("totalTaxValue")),
        total_discount=_int(aci.get("totalDiscountValue")),
        event_count=_int(aci.get("callEventDetailsCount")),
    )


def ciber_facts(decoded: Decoded) -> CiberFacts:
    """The batch totals, currency and creation date of a decoded CIBER file."""
    batches = decoded.batches.to_pylist()
    created = next((b["batch_creation_date"] for b in batches), None)
    charge = 0
    if decoded.events.num_rows:
        charge = sum(int(v or 0) for v in decoded.events.column("charge").to_pylist())
    return CiberFacts(
        total=sum(int(b["batch_total_charges_and_taxes"] or 0) for b in batches),
        detail_total=sum(int(b["detail_total_charges_and_taxes"] or 0) for b in batches),
        charge=charge,
        currency=next((b["currency"] for b in batches), None),
        created=None if created is None else datetime.fromisoformat(created.isoformat()),
        events=decoded.events.num_rows,
        sender=next((b["sending_sid_bid"] for b in batches), None),
        recipient=next((b["receiving_sid_bid"] for b in batches), None),
    )
