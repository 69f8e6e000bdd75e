"""The UTC start of CIBER events: their local time and the partner's UTC offset.

A CIBER record carries a local date and time and a Time Zone Indicator *code* (00-37, 99
unknown; ciber.md §5: the code table itself is not in our reference), never a UTC offset. An
event gets ``utc_offset`` (``"+hhmm"``) and ``start_utc`` = ``local_start`` − offset from, in
order (:meth:`clearing.config.Partner.offset_seconds`):

1. the partner's ``time_zones`` entry for the record's code and Daylight Savings Indicator
   (``"08/1"``), then for the code alone (``"08"``);
2. the partner's ``utc_offset``.

Otherwise both stay null: retail rating cannot bill such an event of one of our subscribers
and reports it (the ``retail`` stage's anomaly), it is never silently left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from clearing.codecs.ciber import Decoded
    from clearing.config import Settings

__all__ = ["with_utc_start"]

_ZONE = "time_zone_indicator"
_DST = "daylight_savings_indicator"


def _zone_codes(decoded: Decoded, offsets: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each event's time zone code and daylight savings indicator (null when absent)."""
    keys, zones, dsts = [], [], []
    for t in decoded.records.values():
        if _ZONE in t.column_names:
            keys.append(pc.cast(t.column("byte_offset"), pa.int64()))
            zones.append(pc.cast(t.column(_ZONE), pa.int16()))
            dst = t.column(_DST) if _DST in t.column_names else pa.nulls(t.num_rows)
            dsts.append(pc.cast(dst, pa.int16()))
    if not keys:
        nulls = pa.nulls(len(offsets), pa.int16())
        return nulls, nulls
    key = pa.chunked_array([c for k in keys for c in k.chunks], pa.int64()).combine_chunks()
    at = pc.index_in(offsets, value_set=key)

    def gather(parts: list[pa.ChunkedArray]) -> pa.Array:
        whole = pa.chunked_array([c for p in parts for c in p.chunks], pa.int16())
        return whole.combine_chunks().take(at)

    return gather(zones), gather(dsts)


def _text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def with_utc_start(events: pa.Table, decoded: Decoded | None, settings: Settings) -> pa.Table:
    """``events`` (one CIBER file's) with ``utc_offset`` and ``start_utc`` where known.

    Args:
        events: the file's :data:`~clearing.codecs.events.EVENT_SCHEMA` rows.
        decoded: the decoded file (its records give each event's time zone code by byte
            offset); None: the partner's ``utc_offset`` alone.
        settings: the partners' ``utc_offset`` / ``time_zones``.

    Returns:
        The same rows and columns; an event that already has a ``start_utc`` is left as is.
    """
    n = events.num_rows
    if n == 0:
        return events
    if decoded is not None:
        zones, dsts = _zone_codes(decoded, events.column("byte_offset").combine_chunks())
    else:
        zones = dsts = pa.nulls(n, pa.int16())
    senders = events.column("sender").to_pylist()
    seconds = np.zeros(n, dtype=np.int64)
    known = np.zeros(n, dtype=np.bool_)
    cache: dict[tuple[str | None, int | None, int | None], int | None] = {}
    for i, key in enumerate(zip(senders, zones.to_pylist(), dsts.to_pylist(), strict=True)):
        if key not in cache:
            cache[key] = settings.partner(key[0]).offset_seconds(key[1], key[2])
        value = cache[key]
        if value is not None:
            seconds[i], known[i] = value, True
    if not known.any():
        return events
    old_start = events.column("start_utc")
    local_start = pc.cast(events.column("local_start"), pa.int64())
    has_local = np.asarray(pc.is_valid(local_start).to_numpy(zero_copy_only=False))
    no_utc = np.asarray(pc.is_null(old_start).to_numpy(zero_copy_only=False))
    fill = known & no_utc & has_local
    local = local_start.fill_null(0).to_numpy(zero_copy_only=False)
    utc = pa.array(local - seconds, pa.int64(), mask=~fill)
    new_start = pc.if_else(fill, pc.cast(utc.cast(pa.timestamp("s")), old_start.type), old_start)
    texts = pa.array([_text(int(s)) if f else None for s, f in zip(seconds, fill, strict=True)])
    new_offset = pc.if_else(fill, texts, events.column("utc_offset"))
    out = events.set_column(events.schema.get_field_index("start_utc"), "start_utc", new_start)
    i = events.schema.get_field_index("utc_offset")
    return out.set_column(i, "utc_offset", new_offset)
