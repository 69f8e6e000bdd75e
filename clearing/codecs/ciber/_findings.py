"""Findings: bad field values and failed batch checks, as rows (not exceptions)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["FINDINGS_SCHEMA", "HEADER_REJECT", "TRAILER_REJECT", "Findings"]

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("severity", pa.string(), nullable=False),  # "batch" | "record"
        pa.field("batch_index", pa.int64()),
        pa.field("line", pa.int64(), nullable=False),  # 1-based line number in the file
        pa.field("byte_offset", pa.int64(), nullable=False),
        pa.field("record_type", pa.string(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("field_id", pa.int64()),  # CIBER Invalid Field Identifier (record findings)
        pa.field("return_code", pa.int64()),  # suggested record Return Code
        pa.field("return_reason_code", pa.int64()),
        pa.field("batch_reject_reason_code", pa.int64()),  # suggested batch reject reason
        pa.field("message", pa.string(), nullable=False),
    ]
)

# Header/trailer field → batch reject reason when it is malformed (ciber.md §7.1).
HEADER_REJECT = {
    "batch_creation_date": 2,
    "sending_sid_bid": 4,
    "sending_clearinghouse_bid": 4,
    "receiving_sid_bid": 5,
    "original_home_sid_bid": 5,
    "original_serving_sid_bid": 4,
    "record_release_number": 6,
    "currency_type": 7,
    "batch_sequence_number": 8,
    "batch_reject_reason_code": 9,
    "original_return_indicator": 10,
    "clearinghouse_id": 11,
    "settlement_period": 12,
    "batch_contents": 15,
}
TRAILER_REJECT = {
    "batch_creation_date": 22,
    "sending_sid_bid": 23,
    "sending_clearinghouse_bid": 23,
    "receiving_sid_bid": 5,
    "original_serving_sid_bid": 5,
    "original_home_sid_bid": 5,
    "total_number_of_records": 25,
    "batch_total_charges_and_taxes": 26,
    "settlement_period": 27,
    "currency_type": 28,
    "batch_sequence_number": 29,
    "clearinghouse_id": 30,
    "original_batch_sequence_number": 32,
    "original_batch_creation_date": 33,
    "original_total_number_of_records": 34,
    "original_total_charges_and_taxes": 35,
}


# Header field ↔ trailer field that must agree, and the reject reason when they do not.
class Findings:
    """Findings collected while decoding, turned into one table at the end."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []

    def add(self, **cols: Any) -> None:
        self.parts.append(cols)

    def table(self) -> pa.Table:
        if not self.parts:
            return FINDINGS_SCHEMA.empty_table()
        tables = []
        for part in self.parts:
            n = len(part["line"])
            arrays = []
            for f in FINDINGS_SCHEMA:
                v = part.get(f.name)
                if v is None or isinstance(v, (str, int)):
                    arrays.append(pa.array([v] * n, type=f.type))
                else:
                    arrays.append(pa.array(v, type=f.type))
            tables.append(pa.Table.from_arrays(arrays, schema=FINDINGS_SCHEMA))
        out = pa.concat_tables(tables)
        # a total order, so that threads adding findings cannot change the output
        keys = ["line", "field_id", "batch_reject_reason_code", "field", "message"]
        return out.sort_by([(k, "ascending") for k in keys])
