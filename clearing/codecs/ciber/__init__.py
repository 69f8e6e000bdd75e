"""CIBER 2.5 codec: fixed-width batches in and out, record returns and batch rejects.

Layouts are data (``specs/ciber/typeNN.csv``); positions live there, not in code.

* :func:`read` — a file's bytes → the normalised event table (``EVENT_SCHEMA``).
* :func:`decode` — events plus the batch table, every field of every record, and findings.
* :func:`inspect_summary` — the JSON summary of ``clearing inspect --json``.
* :func:`write` — CIBER-out batches from the normalised event table.
* :func:`record_returns`, :func:`batch_reject`, :func:`returns_table` — CIBER returns.
"""

from __future__ import annotations

from typing import Any

from clearing.codecs.ciber._codes import (
    BATCH_REJECT_REASONS,
    CURRENCY_CODE_BY_ISO,
    UNSUPPORTED_TYPES,
    YEAR_PIVOT,
)
from clearing.codecs.ciber._errors import (
    CiberDecodeError,
    CiberStructureError,
    UnsupportedRecordTypeError,
)
from clearing.codecs.ciber._layouts import DETAIL_TYPES, Field, Layout, layout, layouts, specs_dir
from clearing.codecs.ciber._reader import FINDINGS_SCHEMA, Decoded, decode, read
from clearing.codecs.ciber._returns import (
    RETURNS_SCHEMA,
    RecordReturn,
    batch_reject,
    record_returns,
    returns_table,
)
from clearing.codecs.ciber._writer import (
    MAX_RECORDS,
    encode_batch,
    encode_record,
    next_sequence,
    settlement_period_for,
    write,
)

__all__ = [
    "CURRENCY_CODE_BY_ISO",
    "DETAIL_TYPES",
    "FINDINGS_SCHEMA",
    "MAX_RECORDS",
    "RETURNS_SCHEMA",
    "YEAR_PIVOT",
    "CiberDecodeError",
    "CiberStructureError",
    "Decoded",
    "Field",
    "Layout",
    "RecordReturn",
    "UnsupportedRecordTypeError",
    "batch_reject",
    "decode",
    "encode_batch",
    "encode_record",
    "inspect_summary",
    "layout",
    "layouts",
    "looks_like_ciber",
    "next_sequence",
    "read",
    "record_returns",
    "returns_table",
    "settlement_period_for",
    "specs_dir",
    "write",
]

_TYPES = frozenset(t.encode() for t in ("01", "02", "97", "98", *DETAIL_TYPES, *UNSUPPORTED_TYPES))


def looks_like_ciber(data: bytes) -> bool:
    """True when ``data`` starts like a CIBER record: a known type and six digits."""
    return len(data) >= 8 and data[:2] in _TYPES and data[2:8].isdigit()


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


def inspect_summary(data: bytes, *, file: str | None = None) -> dict[str, Any]:
    """The summary of a CIBER file, as printed by ``clearing inspect --json``.

    Keys: ``kind`` ("ciber"), ``event_count`` (detail records), ``returned_records`` (details
    with a non-zero Return Code), ``rejected_batches`` (header indicator 3), ``batches`` (per
    batch: SID/BIDs, sequence number, trailer count and total in cents, records by type,
    currency...) and ``findings`` (bad values and failed batch checks, first 50); also
    ``sender``/``recipient``/``file_sequence_number`` (every batch's, comma-separated),
    ``event_count_by_type`` and ``header_problems`` for the generic text view.
    """
    decoded = decode(data, file=file)
    batches = []
    for b in decoded.batches.to_pylist():
        reject = b["batch_reject_reason_code"]
        batches.append(
            {
                "sending_sid_bid": b["sending_sid_bid"],
                "receiving_sid_bid": b["receiving_sid_bid"],
                "batch_sequence_number": b["batch_sequence_number"],
                "record_count": b["total_number_of_records"],
                "total_charges_and_taxes": b["batch_total_charges_and_taxes"],
                "records_by_type": {
                    rt: b[f"count_{rt}"] for rt in DETAIL_TYPES if b[f"count_{rt}"]
                },
                "currency": b["currency"],
                "header_record_type": b["header_record_type"],
                "batch_creation_date": _iso(b["batch_creation_date"]),
                "settlement_period": _iso(b["settlement_period"]),
                "clearinghouse_id": b["clearinghouse_id"],
                "original_return_indicator": b["original_return_indicator"],
                "batch_reject_reason_code": reject,
                "batch_reject_reason": BATCH_REJECT_REASONS.get(reject) if reject else None,
                "detail_count": b["detail_count"],
                "detail_total_charges_and_taxes": b["detail_total_charges_and_taxes"],
                "returned_records": b["returned_records"],
                "lines": [b["header_line"], b["trailer_line"]],
            }
        )
    findings = decoded.findings.to_pylist()
    by_type: dict[str, int] = {}
    for b in batches:
        for rt, n in b["records_by_type"].items():
            by_type[rt] = by_type.get(rt, 0) + n

    def joined(key: str) -> str | None:
        values = list(dict.fromkeys(str(b[key]) for b in batches if b[key] is not None))
        return ", ".join(values) if values else None

    return {
        "kind": "ciber",
        "file": file,
        "format": "CIBER 2.5",
        "version": "2.5",
        # the keys of the generic text view: parties and batch sequence numbers of all batches
        "sender": joined("sending_sid_bid"),
        "recipient": joined("receiving_sid_bid"),
        "file_sequence_number": joined("batch_sequence_number"),
        "event_count_by_type": {rt: by_type[rt] for rt in sorted(by_type)},
        "header_problems": [f"line {f['line']}: {f['message']}" for f in findings[:20]],
        "event_count": decoded.events.num_rows,
        "returned_records": sum(b["returned_records"] for b in batches),
        "rejected_batches": sum(1 for b in batches if b["original_return_indicator"] == "3"),
        "batch_count": len(batches),
        "batches": batches,
        "finding_count": len(findings),
        "findings": [
            {k: f[k] for k in ("severity", "line", "record_type", "field", "message")}
            | {
                "code": f["batch_reject_reason_code"]
                if f["severity"] == "batch"
                else f"{f['return_code']}/{f['return_reason_code']:02d}/{f['field_id'] or 0:03d}"
            }
            for f in findings[:50]
        ],
    }
