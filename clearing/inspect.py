"""What `clearing inspect` shows: a summary of any file the pipeline handles.

The summary is a plain dict (JSON-ready). Amounts are raw integers as in the file; their scale is
``tap_decimal_places`` (TAP) or cents (CIBER).
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from clearing.codecs import asn1
from clearing.codecs.tap3.values import (
    sequence_problem,
    stamp_problem,
    stamp_text,
    string,
    tadig_problem,
    text,
)
from clearing.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from clearing.codecs import fast

__all__ = ["SYNTAX_ITEMS", "event_rows", "event_table", "render_text", "summarize", "write_csv"]

_KEY = ["sender", "recipient", "file_sequence_number"]

# BatchControlInfo items TD.57 marks mandatory, with the fatal code for their absence
_BCI_MANDATORY = {
    "sender": 30,
    "recipient": 31,
    "fileSequenceNumber": 32,
    "fileAvailableTimeStamp": 33,
    "specificationVersionNumber": 34,
    "transferCutOffTimeStamp": 36,
}

# BatchControlInfo / Notification items with a TD.57 syntax rule (code 10, fatal): member,
# TD.57 context, the check (specs/td57/rules.csv has the same rows; a test keeps them equal)
SYNTAX_ITEMS = (
    ("sender", "Sender", tadig_problem),
    ("recipient", "Recipient", tadig_problem),
    ("fileSequenceNumber", "FileSequenceNumber", sequence_problem),
    ("rapFileSequenceNumber", "RapFileSequenceNumber", sequence_problem),
    ("fileCreationTimeStamp", "FileCreationTimeStamp", stamp_problem),
    ("fileAvailableTimeStamp", "FileAvailableTimeStamp", stamp_problem),
    ("transferCutOffTimeStamp", "TransferCutOffTimeStamp", stamp_problem),
)
_SYNTAX_CODE = 10


def _syntax_problems(group: dict[str, Any]) -> list[str]:
    """The header items of ``group`` that break their TD.57 syntax, one line each."""
    out: list[str] = []
    for member, context, check in SYNTAX_ITEMS:
        if member not in group:
            continue
        value = group[member]
        if check is not stamp_problem:
            value = string(value)
            if value is None:
                continue
        problem = check(value)
        if problem:
            out.append(f"{member}: {problem} (TD.57 {context} fatal {_SYNTAX_CODE})")
    return out


def _is_ciber(data: bytes) -> bool:
    from clearing.codecs import ciber

    return bool(ciber.looks_like_ciber(data))


def summarize(data: bytes, *, file: str | None = None) -> dict[str, Any]:
    """Summarise a TAP, Notification, RAP, ACK, NRT or CIBER file.

    Raises:
        DecodeError: the file cannot be read as any of those, or is broken.
    """
    if data[:1].isdigit() and _is_ciber(data):
        from clearing.codecs import ciber

        out: dict[str, Any] = ciber.inspect_summary(data, file=file)
        return out
    info = asn1.sniff(data) if data else asn1.sniff(b"")
    if info.kind == "tap":
        return _summarize_tap(data, file)
    decoded = asn1.decode(data, file=file)
    value = decoded.value
    if info.kind == "notification":
        return _summarize_notification(info, value[1])
    if info.kind == "rap":
        return _summarize_rap(info, value[1])
    if info.kind == "ack":
        return _summarize_ack(value[1])
    return _summarize_nrt(info, value)


def _raise_problems(batch: fast.TapBatch, file: str | None) -> None:
    if not batch.problems:
        return
    p = batch.problems[0]
    more = len(batch.problems) - 1
    reason = p.message + (f" (and {more} more problem(s))" if more else "")
    where = f"callEventDetails[{p.event_index}]: {p.path}" if p.event_index is not None else p.path
    raise DecodeError(
        reason,
        file=file,
        offset=p.offset if p.offset >= 0 else None,
        path=where,
        hint="the file breaks TAP 3.12 structure or value ranges; validate it and return it",
    )


def _summarize_tap(data: bytes, file: str | None) -> dict[str, Any]:
    import pyarrow.compute as pc  # numpy and pyarrow: only for a TAP file's events

    from clearing.codecs import fast
    from clearing.codecs.batch import batch_tables, fixed_discount_total

    batch = fast.decode_tap(data, file=file)
    _raise_problems(batch, file)
    tables = batch_tables(batch)
    bci = batch.groups.get("batchControlInfo") or {}
    acc = batch.groups.get("accountingInfo") or {}
    aci = batch.groups.get("auditControlInfo") or {}
    ev = batch.events
    by_type = Counter(ev.column("event_kind").to_pylist())

    def total(col: str, where: pa.Array | None = None) -> int:
        arr = ev.column(col)
        if where is not None:
            arr = arr.filter(where)
        s = pc.sum(arr).as_py()
        return int(s) if s is not None else 0

    refund = ev.column("refund")
    not_refund = pc.invert(refund)
    start = ev.column("start_utc")
    missing = [
        f"{name} missing (TD.57 Batch Control fatal {code})"
        for name, code in _BCI_MANDATORY.items()
        if name not in bci
    ]
    missing += _syntax_problems(bci)
    recomputed = {
        # TD.57: totalCharge = chargeType 00 charges + CAMEL invocation fees, refunds apart
        "total_charge": total("charge", not_refund) + total("camel_fee", not_refund),
        "total_charge_refund": total("charge", refund),
        "total_tax_value": total("tax", not_refund),
        "total_tax_refund": total("tax", refund),
        # TD.57: discounts stated by the events plus the fixed discounts they apply
        "total_discount_value": total("discount", not_refund) + fixed_discount_total(batch),
        "call_event_details_count": ev.num_rows,
    }
    audit = {
        "total_charge": aci.get("totalCharge"),
        "total_charge_refund": aci.get("totalChargeRefund"),
        "total_tax_value": aci.get("totalTaxValue"),
        "total_tax_refund": aci.get("totalTaxRefund"),
        "total_discount_value": aci.get("totalDiscountValue"),
        "call_event_details_count": aci.get("callEventDetailsCount"),
    }
    # an absent refund total means 0 (TD.57: present only when > 0)
    for k in ("total_charge_refund", "total_tax_refund"):
        if audit[k] is None:
            audit[k] = 0
    mismatches = [k for k, v in audit.items() if v is not None and recomputed[k] != v]
    earliest = pc.min(start).as_py()
    latest = pc.max(start).as_py()
    return {
        "kind": "tap",
        "version": batch.info.version,
        "sender": text(bci.get("sender")),
        "recipient": text(bci.get("recipient")),
        "file_sequence_number": text(bci.get("fileSequenceNumber")),
        "rap_file_sequence_number": text(bci.get("rapFileSequenceNumber")),
        "test_data": text(bci.get("fileTypeIndicator")) == "T",
        "file_available": stamp_text(bci.get("fileAvailableTimeStamp")),
        "transfer_cut_off": stamp_text(bci.get("transferCutOffTimeStamp")),
        "event_count": ev.num_rows,
        "event_count_by_type": dict(sorted(by_type.items())),
        "audit": audit,
        "recomputed": recomputed,
        "audit_mismatches": mismatches,
        "header_problems": missing,
        "tap_decimal_places": acc.get("tapDecimalPlaces"),
        "local_currency": text(acc.get("localCurrency")),
        "tap_currency": text(acc.get("tapCurrency")) or "SDR",
        "exchange_rates": tables["exchange_rates"].drop_columns(_KEY).to_pylist(),
        "taxation": tables["taxation"].drop_columns(_KEY).to_pylist(),
        "start_utc_range": [
            earliest.isoformat() if earliest else None,
            latest.isoformat() if latest else None,
        ],
        "bytes": len(data),
    }


def _header(kind: str, version: str | None, v: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "version": version,
        "sender": text(v.get("sender")),
        "recipient": text(v.get("recipient")),
        "file_sequence_number": text(v.get("fileSequenceNumber")),
        "rap_file_sequence_number": text(v.get("rapFileSequenceNumber")),
        "test_data": text(v.get("fileTypeIndicator")) == "T",
    }


def _summarize_notification(info: asn1.FileInfo, v: dict[str, Any]) -> dict[str, Any]:
    out = _header("notification", info.version, v)
    out.update(
        event_count=0,
        event_count_by_type={},
        file_available=stamp_text(v.get("fileAvailableTimeStamp")),
        transfer_cut_off=stamp_text(v.get("transferCutOffTimeStamp")),
        header_problems=_syntax_problems(v),
    )
    return out


def _summarize_rap(info: asn1.FileInfo, v: dict[str, Any]) -> dict[str, Any]:
    bc = v.get("rapBatchControlInfoRap", {})
    out = _header("rap", info.version, bc)
    out["file_sequence_number"] = text(bc.get("rapFileSequenceNumber"))
    out["tap_version"] = f"3.{bc.get('releaseVersionNumber')}"
    details = v.get("returnDetails", [])
    by_type = Counter(name for name, _ in details)
    audit = v.get("rapAuditControlInfo", {})
    out.update(
        event_count=len(details),
        event_count_by_type=dict(sorted(by_type.items())),
        audit={
            "total_severe_return_value": audit.get("totalSevereReturnValue"),
            "total_severe_return_tax": audit.get("totalSevereReturnTax"),
            "return_details_count": audit.get("returnDetailsCount"),
        },
        tap_decimal_places=bc.get("tapDecimalPlaces"),
        tap_currency=text(bc.get("tapCurrency")) or "SDR",
    )
    return out


def _summarize_ack(v: dict[str, Any]) -> dict[str, Any]:
    out = _header("ack", None, v)
    out["file_sequence_number"] = text(v.get("rapFileSequenceNumber"))
    out.update(event_count=0, event_count_by_type={})
    return out


def _summarize_nrt(info: asn1.FileInfo, v: dict[str, Any]) -> dict[str, Any]:
    out = _header("nrt", info.version, v)
    out["file_sequence_number"] = text(v.get("sequenceNumber"))
    events = v.get("callEvents", [])
    out.update(
        event_count=len(events),
        event_count_by_type=dict(sorted(Counter(name for name, _ in events).items())),
        audit={"call_events_count": v.get("callEventsCount")},
        file_available=_nrt_available(v),
    )
    return out


def _nrt_available(v: dict[str, Any]) -> str | None:
    """NRTRDE's FileAvailableTimeStamp (``CCYYMMDDhhmmss``) and its own UtcTimeOffset, as TAP's.

    Unlike TAP's DateTimeLong, NRTRDE 2.1 gives the two as separate items of the file.
    """
    local = text(v.get("fileAvailableTimeStamp"))
    if local is None:
        return None
    return f"{local}{text(v.get('utcTimeOffset')) or ''}"


def event_table(data: bytes, *, file: str | None = None) -> pa.Table:
    """The normalised event table of a TAP or CIBER file (empty for a Notification).

    Raises:
        DecodeError: the file is broken, or its kind carries no call events to tabulate.
    """
    if data[:1].isdigit() and _is_ciber(data):
        from clearing.codecs import ciber

        table: pa.Table = ciber.read(data, file=file)
        return table
    from clearing.codecs import fast
    from clearing.codecs.events import EVENT_SCHEMA

    info = asn1.sniff(data)
    if info.kind == "tap":
        batch = fast.decode_tap(data, file=file)
        _raise_problems(batch, file)
        return batch.events
    if info.kind == "notification":
        asn1.decode(data, file=file)
        return EVENT_SCHEMA.empty_table()
    msg = f"a {info.kind.upper()} file has no call-event table"
    raise DecodeError(msg, file=file, hint="use `clearing inspect --json` for its summary")


def write_csv(table: pa.Table, out: TextIO) -> None:
    """Write the event table as CSV (header row, ISO timestamps)."""
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    out.write(buf.getvalue().decode("utf-8"))


def event_rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    """The event table as JSON-ready dicts."""
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            yield {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def render_text(summary: dict[str, Any]) -> str:
    """A short human-readable view of a summary."""
    lines = [
        f"{summary['kind'].upper()} {summary.get('version') or ''}".rstrip(),
        f"  {summary.get('sender')} → {summary.get('recipient')}  "
        f"FSN {summary.get('file_sequence_number')}"
        + ("  (test data)" if summary.get("test_data") else ""),
        f"  events: {summary.get('event_count')}",
    ]
    for name, n in (summary.get("event_count_by_type") or {}).items():
        lines.append(f"    {name:<24} {n:>8}")
    audit = summary.get("audit")
    rec = summary.get("recomputed")
    if isinstance(audit, dict):
        lines.append("  audit (as in file / recomputed):")
        for k, v in audit.items():
            r = rec.get(k, "") if isinstance(rec, dict) else ""
            differs = isinstance(rec, dict) and v is not None and k in rec and rec[k] != v
            flag = "  <-- differs" if differs else ""
            lines.append(f"    {k:<26} {v!s:>14} {r!s:>14}{flag}")
    for p in summary.get("header_problems") or []:
        lines.append(f"  ! {p}")
    if summary.get("kind") == "tap":
        lines.append(
            f"  currency: local {summary.get('local_currency')}, "
            f"TAP {summary.get('tap_currency')}, decimals {summary.get('tap_decimal_places')}"
        )
    return "\n".join(lines)
