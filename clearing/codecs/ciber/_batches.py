"""The batch table: header, trailer, what the details add up to, and the batch checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from clearing.codecs.ciber._codes import BATCH_REJECT_REASONS, CURRENCY_BY_CODE
from clearing.codecs.ciber._layouts import DETAIL_TYPES, HEADER_TYPES, TRAILER_TYPES

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from clearing.codecs.ciber._findings import Findings
    from clearing.codecs.ciber._lines import Lines

__all__ = ["BATCH_SCHEMA", "batch_table", "detail_checks"]

_AGREE = (
    ("batch_creation_date", "batch_creation_date", 22),
    ("batch_sequence_number", "batch_sequence_number", 29),
    ("sending_sid_bid", "sending_sid_bid", 23),
    ("receiving_sid_bid", "receiving_sid_bid", 5),
    ("sending_clearinghouse_bid", "sending_clearinghouse_bid", 23),
    ("original_serving_sid_bid", "original_serving_sid_bid", 23),
    ("original_home_sid_bid", "original_home_sid_bid", 5),
    ("settlement_period", "settlement_period", 27),
    ("clearinghouse_id", "clearinghouse_id", 30),
    ("currency_type", "currency_type", 28),
)


def batch_table(
    records: dict[str, pa.Table],
    lines: Lines,
    header_idx: NDArray[np.intp],
    trailer_idx: NDArray[np.intp],
    findings: Findings,
) -> pa.Table:
    by_line: dict[int, dict[str, Any]] = {}
    for rt in (*HEADER_TYPES, *TRAILER_TYPES):
        if rt in records:
            for row in records[rt].to_pylist():
                by_line[row["line"]] = row
    nb = header_idx.size
    counts = {rt: np.zeros(nb, dtype=np.int64) for rt in DETAIL_TYPES}
    totals = np.zeros(nb, dtype=np.int64)
    returned = np.zeros(nb, dtype=np.int64)
    for rt in DETAIL_TYPES:
        if rt not in records:
            continue
        t = records[rt]
        b = t.column("batch_index").to_numpy()
        counts[rt] = np.bincount(b, minlength=nb).astype(np.int64)
        tot = t.column("total_charges_and_taxes").fill_null(0).to_numpy()
        np.add.at(totals, b, tot)
        rc = t.column("return_code").fill_null(0).to_numpy()
        returned += np.bincount(b[rc != 0], minlength=nb)
    rows: list[dict[str, Any]] = []
    for i in range(nb):
        h = by_line[int(lines.numbers[header_idx[i]])]
        t = by_line[int(lines.numbers[trailer_idx[i]])]
        clearing_hdr = h["record_type"] == "02"
        detail_count = int(sum(int(counts[rt][i]) for rt in DETAIL_TYPES))
        cur = h["currency_type"]
        row = {
            "batch_index": i,
            "header_line": h["line"],
            "trailer_line": t["line"],
            "header_record_type": h["record_type"],
            "trailer_record_type": t["record_type"],
            "batch_creation_date": h["batch_creation_date"],
            "batch_sequence_number": h["batch_sequence_number"],
            "sending_sid_bid": h["original_serving_sid_bid" if clearing_hdr else "sending_sid_bid"],
            "receiving_sid_bid": h[
                "original_home_sid_bid" if clearing_hdr else "receiving_sid_bid"
            ],
            "sending_clearinghouse_bid": h.get("sending_clearinghouse_bid"),
            "record_release_number": h["record_release_number"],
            "original_return_indicator": h["original_return_indicator"],
            "currency_type": cur,
            "currency": None if cur is None else CURRENCY_BY_CODE.get(cur, f"CIBER-{cur:02d}"),
            "settlement_period": h["settlement_period"],
            "clearinghouse_id": h["clearinghouse_id"],
            "batch_reject_reason_code": h["batch_reject_reason_code"],
            "batch_contents": h["batch_contents"],
            "local_carrier_reserved": h.get("local_carrier_reserved"),
            "total_number_of_records": t["total_number_of_records"],
            "batch_total_charges_and_taxes": t["batch_total_charges_and_taxes"],
            "original_total_number_of_records": t["original_total_number_of_records"],
            "original_total_charges_and_taxes": t["original_total_charges_and_taxes"],
            "detail_count": detail_count,
            "detail_total_charges_and_taxes": int(totals[i]),
            "returned_records": int(returned[i]),
            **{f"count_{rt}": int(counts[rt][i]) for rt in DETAIL_TYPES},
        }
        rows.append(row)
        _batch_checks(i, h, t, row, findings)
    return pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)


BATCH_SCHEMA = pa.schema(
    [
        ("batch_index", pa.int64()),
        ("header_line", pa.int64()),
        ("trailer_line", pa.int64()),
        ("header_record_type", pa.string()),
        ("trailer_record_type", pa.string()),
        ("batch_creation_date", pa.date32()),
        ("batch_sequence_number", pa.int64()),
        ("sending_sid_bid", pa.string()),
        ("receiving_sid_bid", pa.string()),
        ("sending_clearinghouse_bid", pa.string()),
        ("record_release_number", pa.int64()),
        ("original_return_indicator", pa.string()),
        ("currency_type", pa.int64()),
        ("currency", pa.string()),
        ("settlement_period", pa.date32()),
        ("clearinghouse_id", pa.int64()),
        ("batch_reject_reason_code", pa.int64()),
        ("batch_contents", pa.int64()),
        ("local_carrier_reserved", pa.string()),
        ("total_number_of_records", pa.int64()),
        ("batch_total_charges_and_taxes", pa.int64()),
        ("original_total_number_of_records", pa.int64()),
        ("original_total_charges_and_taxes", pa.int64()),
        ("detail_count", pa.int64()),
        ("detail_total_charges_and_taxes", pa.int64()),
        ("returned_records", pa.int64()),
        *((f"count_{rt}", pa.int64()) for rt in DETAIL_TYPES),
    ]
)


def _batch_checks(
    i: int, h: dict[str, Any], t: dict[str, Any], row: dict[str, Any], findings: Findings
) -> None:
    def add(rec: dict[str, Any], field: str | None, code: int, message: str) -> None:
        findings.add(
            severity="batch",
            batch_index=[i],
            line=[rec["line"]],
            byte_offset=[rec["byte_offset"]],
            record_type=rec["record_type"],
            field=field,
            batch_reject_reason_code=code,
            message=message,
        )

    for hf, tf, code in _AGREE:
        if hf in h and tf in t and h[hf] is not None and t[tf] is not None and h[hf] != t[tf]:
            add(t, tf, code, f"trailer `{tf}` {t[tf]} differs from the header's {h[hf]}")
    count = t["total_number_of_records"]
    if count is not None and count != row["detail_count"]:
        add(
            t,
            "total_number_of_records",
            25,
            f"trailer counts {count} records, the batch holds {row['detail_count']}",
        )
    total = t["batch_total_charges_and_taxes"]
    if total is not None and total != row["detail_total_charges_and_taxes"]:
        add(
            t,
            "batch_total_charges_and_taxes",
            26,
            f"trailer total {total} differs from the sum of the details, "
            f"{row['detail_total_charges_and_taxes']} (cents)",
        )
    seq = h["batch_sequence_number"]
    if seq is not None and not 1 <= seq <= 999:
        add(h, "batch_sequence_number", 8, BATCH_REJECT_REASONS[8])
    if h["record_release_number"] not in (None, 2, 25):
        add(h, "record_release_number", 6, BATCH_REJECT_REASONS[6])
    if h["original_return_indicator"] not in ("1", "2", "3"):
        add(h, "original_return_indicator", 10, BATCH_REJECT_REASONS[10])
    cur = h["currency_type"]
    if cur is not None and not 1 <= cur <= 98:
        add(h, "currency_type", 7, BATCH_REJECT_REASONS[7])
    ch = h["clearinghouse_id"]
    if ch is not None and ch > 5:
        add(h, "clearinghouse_id", 11, BATCH_REJECT_REASONS[11])


def detail_checks(records: dict[str, pa.Table], batches: pa.Table, findings: Findings) -> None:
    """Record-level checks that need the batch: currency and return-code consistency."""
    cur_b = batches.column("currency_type").fill_null(-1).to_numpy()
    ind_b = np.asarray(batches.column("original_return_indicator").to_pylist(), dtype=object)
    for rt in DETAIL_TYPES:
        if rt not in records:
            continue
        t = records[rt]
        b = t.column("batch_index").to_numpy()
        cur = t.column("currency_type").fill_null(-1).to_numpy()
        rc = t.column("return_code").fill_null(-1).to_numpy()
        checks = (
            (
                (cur != cur_b[b]) & (cur >= 0) & (cur_b[b] >= 0),
                "currency_type",
                21,
                6,
                "`currency_type` differs from the batch header's",
            ),
            (
                (ind_b[b] == "1") & (rc > 0),
                "return_code",
                46,
                18,
                "non-zero `return_code` in an initial-issue batch",
            ),
            (
                (ind_b[b] == "2") & (rc == 0),
                "return_code",
                44,
                18,
                "zero `return_code` in a batch of returned records",
            ),
        )
        for mask, field, fid, reason, message in checks:
            where = np.flatnonzero(np.asarray(mask, dtype=np.bool_))
            if where.size == 0:
                continue
            findings.add(
                severity="record",
                batch_index=b[where],
                line=t.column("line").to_numpy()[where],
                byte_offset=t.column("byte_offset").to_numpy()[where],
                record_type=rt,
                field=field,
                field_id=fid,
                return_code=4,
                return_reason_code=reason,
                message=message,
            )
