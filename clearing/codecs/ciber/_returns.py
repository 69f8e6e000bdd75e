"""CIBER record returns and batch rejects (ciber.md §7), written and read.

* A **record return** sends records back inside the same format: a type-01 header with
  Original/Return Indicator ``2``, sending and receiving SID/BID swapped, a new batch sequence
  number of the returning carrier, clearinghouse ID 0 and a zero settlement period; each
  returned record is the original line with positions 3-8 replaced by Return Code, Return
  Reason Code and Invalid Field Identifier; a trailer with the returned count and total
  (S1's ``CIBER_v25_RetOutGrammar``).
* A **batch reject** sends the whole batch back with header indicator ``3`` and a Batch
  Reject Reason Code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from clearing.codecs.ciber._codes import BATCH_REJECT_REASONS, RETURN_REASONS
from clearing.codecs.ciber._layouts import DETAIL_TYPES, layout
from clearing.codecs.ciber._reader import Decoded, decode
from clearing.codecs.ciber._writer import encode_record, next_sequence
from clearing.errors import EncodeError

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, MutableMapping

__all__ = [
    "RETURNS_SCHEMA",
    "RecordReturn",
    "batch_reject",
    "record_returns",
    "returns_table",
]


@dataclass(frozen=True, slots=True)
class RecordReturn:
    """Return the detail record on ``line`` (1-based) with these codes (ciber.md §7.2-7.3)."""

    line: int
    return_code: int
    return_reason_code: int
    invalid_field_identifier: int


def _patch(line: bytearray, record_type: str, field: str, text: str) -> None:
    f = layout(record_type).field(field)
    if len(text) != f.length:
        msg = f"`{field}` takes {f.length} characters, got {text!r}"
        raise EncodeError(msg)
    line[f.start : f.end] = text.encode("ascii")


def _lines(data: bytes, decoded: Decoded) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for table in decoded.records.values():
        for no, off, n in zip(
            table.column("line").to_pylist(),
            table.column("byte_offset").to_pylist(),
            table.column("byte_length").to_pylist(),
            strict=True,
        ):
            out[no] = data[off : off + n]
    return out


def record_returns(
    data: bytes,
    returns: Iterable[RecordReturn],
    *,
    creation_date: dt.date,
    sequences: MutableMapping[tuple[str, str], int] | None = None,
    file: str | None = None,
    line_ending: bytes = b"\r\n",
) -> bytes:
    """A file returning the given detail records of ``data``, one return batch per batch.

    ``sequences`` maps (sending, receiving) SID/BID to the last sequence number used by us
    (the returning side) and is updated.
    """
    if sequences is None:
        sequences = {}
    decoded = decode(data, file=file)
    raw = _lines(data, decoded)
    line_type: dict[int, str] = {}
    line_batch: dict[int, int] = {}
    line_total: dict[int, int] = {}
    for rt in DETAIL_TYPES:
        if rt in decoded.records:
            t = decoded.records[rt]
            for no, b, tot in zip(
                t.column("line").to_pylist(),
                t.column("batch_index").to_pylist(),
                t.column("total_charges_and_taxes").to_pylist(),
                strict=True,
            ):
                line_type[no], line_batch[no], line_total[no] = rt, b, tot or 0
    by_batch: dict[int, list[RecordReturn]] = {}
    for r in sorted(returns, key=lambda r: r.line):
        if r.line not in line_type:
            msg = f"line {r.line} is not a detail record"
            raise EncodeError(msg)
        if not 1 <= r.return_code <= 9:
            msg = f"line {r.line}: a returned record needs a return code 1-9"
            raise EncodeError(msg)
        by_batch.setdefault(line_batch[r.line], []).append(r)
    batches = decoded.batches.to_pylist()
    out: list[bytes] = []
    for b, rets in sorted(by_batch.items()):
        batch = batches[b]
        sending, receiving = batch["receiving_sid_bid"], batch["sending_sid_bid"]
        seq = next_sequence(sequences.get((sending, receiving)))
        sequences[(sending, receiving)] = seq
        details = []
        total = 0
        for r in rets:
            line = bytearray(raw[r.line])
            rt = line_type[r.line]
            _patch(line, rt, "return_code", f"{r.return_code:01d}")
            _patch(line, rt, "return_reason_code", f"{r.return_reason_code:02d}")
            _patch(line, rt, "invalid_field_identifier", f"{r.invalid_field_identifier:03d}")
            details.append(bytes(line))
            total += line_total[r.line]
        common = {
            "batch_creation_date": creation_date,
            "batch_sequence_number": seq,
            "sending_sid_bid": sending,
            "receiving_sid_bid": receiving,
            "settlement_period": None,
            "clearinghouse_id": 0,
            "currency_type": batch["currency_type"],
        }
        header = encode_record(
            "01",
            {
                **common,
                "record_release_number": 25,
                "original_return_indicator": "2",
                "batch_contents": batch["batch_contents"],
            },
        )
        trailer = encode_record(
            "98",
            {
                **common,
                "total_number_of_records": len(details),
                "batch_total_charges_and_taxes": total,
                "batch_total_charges_and_taxes_sign": "0",
                "original_total_charges_and_taxes_sign": "0",
                "original_total_number_of_records": batch["total_number_of_records"],
                "original_total_charges_and_taxes": batch["batch_total_charges_and_taxes"],
            },
        )
        out.append(line_ending.join([header, *details, trailer]) + line_ending)
    return b"".join(out)


def batch_reject(
    data: bytes,
    batch_index: int,
    reason_code: int,
    *,
    file: str | None = None,
    line_ending: bytes = b"\r\n",
) -> bytes:
    """The batch ``batch_index`` of ``data`` sent back whole: indicator 3 + reject reason."""
    if reason_code not in BATCH_REJECT_REASONS and not 1 <= reason_code <= 42:
        msg = f"batch reject reason {reason_code} is not 01-42"
        raise EncodeError(msg)
    decoded = decode(data, file=file)
    if not 0 <= batch_index < decoded.batches.num_rows:
        msg = f"no batch {batch_index} in the file"
        raise EncodeError(msg)
    batch = decoded.batches.slice(batch_index, 1).to_pylist()[0]
    raw = _lines(data, decoded)
    numbers = sorted(n for n in raw if batch["header_line"] <= n <= batch["trailer_line"])
    header = bytearray(raw[batch["header_line"]])
    rt = batch["header_record_type"]
    _patch(header, rt, "original_return_indicator", "3")
    _patch(header, rt, "batch_reject_reason_code", f"{reason_code:02d}")
    lines = [bytes(header)] + [raw[n] for n in numbers[1:]]
    return line_ending.join(lines) + line_ending


RETURNS_SCHEMA = pa.schema(
    [
        ("batch_index", pa.int64()),
        ("batch_sequence_number", pa.int64()),
        ("sending_sid_bid", pa.string()),
        ("receiving_sid_bid", pa.string()),
        ("line", pa.int64()),
        ("record_type", pa.string()),
        ("return_code", pa.int64()),
        ("return_reason_code", pa.int64()),
        ("invalid_field_identifier", pa.int64()),
        ("field", pa.string()),  # layout field with that identifier, when there is one
        ("reason", pa.string()),
        ("total_charges_and_taxes", pa.int64()),
    ]
)


def returns_table(decoded: Decoded) -> pa.Table:
    """The returned detail records (non-zero Return Code) of a decoded file."""
    batches = decoded.batches.to_pylist()
    rows = []
    for rt in DETAIL_TYPES:
        if rt not in decoded.records:
            continue
        t = decoded.records[rt]
        names = {f.field_id: f.name for f in layout(rt).fields if f.field_id is not None}
        cols = {
            c: t.column(c).to_pylist()
            for c in (
                "line",
                "batch_index",
                "return_code",
                "return_reason_code",
                "invalid_field_identifier",
                "total_charges_and_taxes",
            )
        }
        for i, rc in enumerate(cols["return_code"]):
            if not rc:
                continue
            b = batches[cols["batch_index"][i]]
            reason = cols["return_reason_code"][i]
            fid = cols["invalid_field_identifier"][i]
            rows.append(
                {
                    "batch_index": b["batch_index"],
                    "batch_sequence_number": b["batch_sequence_number"],
                    "sending_sid_bid": b["sending_sid_bid"],
                    "receiving_sid_bid": b["receiving_sid_bid"],
                    "line": cols["line"][i],
                    "record_type": rt,
                    "return_code": rc,
                    "return_reason_code": reason,
                    "invalid_field_identifier": fid,
                    "field": names.get(fid),
                    "reason": RETURN_REASONS.get((rc, reason)),
                    "total_charges_and_taxes": cols["total_charges_and_taxes"][i],
                }
            )
    rows.sort(key=lambda r: r["line"])
    return pa.Table.from_pylist(rows, schema=RETURNS_SCHEMA)
