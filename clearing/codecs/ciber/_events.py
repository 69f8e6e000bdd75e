"""CIBER records → the normalised event table (ciber.md §9).

C901: ``_events_of`` maps each CIBER record type's columns onto the event schema in one place; its
branches are the record types' differences (start, duration, serving SID/BID), read side by side.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs.ciber._codes import EVENT_KIND_BY_DIRECTION, EVENT_KIND_BY_TYPE
from clearing.codecs.ciber._fields import PIECE_ROWS, THREADS
from clearing.codecs.ciber._layouts import DETAIL_TYPES
from clearing.codecs.events import EVENT_SCHEMA

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from clearing.codecs.ciber._lines import Lines

__all__ = ["event_table"]


def event_table(records: dict[str, pa.Table], batches: pa.Table, lines: Lines) -> pa.Table:
    detail_rank = np.cumsum(np.isin(lines.codes, [22, 32, 42, 52])) - 1
    parts: list[pa.Table] = []
    seq_text = pa.array(
        [
            None if s is None else f"{s:03d}"
            for s in batches.column("batch_sequence_number").to_pylist()
        ],
        type=pa.string(),
    )
    for rt in DETAIL_TYPES:
        if rt not in records:
            continue
        t = records[rt]
        parts.append(_events_of(rt, t, batches, seq_text, lines, detail_rank))
    if not parts:
        return EVENT_SCHEMA.empty_table()
    events = pa.concat_tables(parts)
    if len(parts) == 1:
        return events
    return events.take(pc.sort_indices(events.column("event_index")))


def _s(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return pc.cast(arr, pa.string())


def _lookup(values: pa.Array | pa.ChunkedArray | list[Any], index: NDArray[Any]) -> pa.Array:
    """``values[index]`` for a short list of values and a long numpy index."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif isinstance(values, list):
        values = pa.array(values)
    return values.take(pa.array(index))


def _events_of(
    rt: str,
    t: pa.Table,
    batches: pa.Table,
    seq_text: pa.Array,
    lines: Lines,
    detail_rank: NDArray[np.int64],
) -> pa.Table:
    n = t.num_rows
    b = t.column("batch_index").to_numpy()
    line_pos = np.searchsorted(lines.numbers, t.column("line").to_numpy())
    null_s = pa.scalar(None, pa.string())

    def col(name: str) -> pa.ChunkedArray:
        return t.column(name)

    def kinds() -> pa.Array:
        names = [EVENT_KIND_BY_TYPE[rt], *EVENT_KIND_BY_DIRECTION.values()]
        idx = np.zeros(n, dtype=np.int32)
        if rt in ("22", "32"):
            direction = col("call_direction").fill_null(0).to_numpy()
            for j, code in enumerate(EVENT_KIND_BY_DIRECTION, start=1):
                idx[direction == code] = j
        return _lookup(names, idx)

    zeros = np.zeros(n, dtype=np.int32)
    if rt == "52":
        date, time = col("occ_start_date"), col("connect_time")
    elif rt == "22":
        date, time = col("call_date"), col("air_connect_time")
    else:
        date, time = col("call_date"), col("charge_no_1_connect_time")

    def local_start() -> Any:
        secs = pc.add(
            pc.multiply(pc.cast(pc.cast(date, pa.int32()), pa.int64()), 86400),
            pc.cast(pc.cast(time, pa.int32()), pa.int64()),
        )
        return pc.cast(secs, pa.timestamp("s"))

    if rt == "22":
        duration: Any = col("air_chargeable_time")
    elif rt in ("32", "42"):
        duration = col("charge_no_1_chargeable_time")
    else:
        duration = None
    tax = pc.add(col("total_state_province_taxes"), col("total_local_other_taxes"))
    names = t.column_names
    has_numbers = "called_number" in names
    serving = col("sending_sid_bid") if rt == "42" else col("serving_sid_bid")
    mo = "call_direction" in names and has_numbers

    def imsi() -> Any:
        return pc.if_else(pc.equal(col("msid_indicator"), 1), _s(col("msid")), null_s)

    def dialled() -> Any:
        return pc.if_else(pc.equal(col("call_direction"), 1), _s(col("called_number")), null_s)

    cols: dict[str, Any] = {
        "source_format": lambda: _lookup(["ciber"], zeros),
        "sender": lambda: _lookup(batches.column("sending_sid_bid"), b),
        "recipient": lambda: _lookup(batches.column("receiving_sid_bid"), b),
        "file_sequence_number": lambda: _lookup(seq_text, b),
        "event_index": lambda: pa.array(detail_rank[line_pos]),
        "event_kind": kinds,
        "byte_offset": col("byte_offset"),
        "byte_length": col("byte_length"),
        "imsi": imsi if "msid_indicator" in names else None,
        "msisdn": col("mdn"),
        "called_number": col("called_number") if has_numbers else None,
        "calling_number": col("caller_id") if has_numbers else None,
        "dialled_digits": dialled if mo else None,
        "local_start": local_start,
        "duration": duration,
        # CIBER 22 is voice (ciber.md §3, S4): TD.57 teleservice 11, telephony
        "tele_service_code": (lambda: _lookup(["11"], zeros)) if rt == "22" else None,
        "serving_network": serving,
        "currency": lambda: _lookup(batches.column("currency"), b),
        "charge_scale": lambda: pa.array(np.full(n, 2, dtype=np.int8)),
        "charge": lambda: pc.subtract(col("total_charges_and_taxes"), tax),
        "charge_airtime": col("air_charge") if rt == "22" else None,
        "charge_toll": col("toll_charge") if rt == "22" else None,
        "tax": tax,
    }
    # one zero-filled buffer (lazily mapped by calloc) backs every all-null column
    zero = pa.py_buffer(np.zeros(n + 1, dtype=np.int64))

    def build(f: pa.Field) -> pa.Array:
        v = cols.get(f.name)
        if v is None:
            if pa.types.is_string(f.type):
                buffers = [zero, zero, pa.py_buffer(b"")]
            else:
                buffers = [zero, zero]
            return pa.Array.from_buffers(f.type, n, buffers, null_count=n)
        if callable(v):
            v = v()
        v = pc.cast(v, f.type)
        return v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v

    if n > 4 * PIECE_ROWS:  # Arrow compute releases the GIL
        with ThreadPoolExecutor(THREADS) as pool:
            arrays = list(pool.map(build, EVENT_SCHEMA))
    else:
        arrays = [build(f) for f in EVENT_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
