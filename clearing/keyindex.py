"""Duplicate key indexes: what a night reads to find an event seen before, sized by the window.

A duplicate search must not read the whole lake: the lake grows every night, the search must
not. Each accepted event (or visitor's record) leaves one row in a key index of the lake::

    lake/<index>/date=<processing date>/start=<day the event started>/<file>.parquet

with the 128-bit MD5 of its key (``k1``: upper 64 bits, ``k2``: lower), the key's columns
themselves and where the event is (file, position). A duplicate has the same key, so the same
start time, so the same start day: a lookup reads only the partitions of the window's
processing dates **and** the start days of the events it looks up (±1 day where a soft match
may cross midnight) — a few days of volume, however long the pipeline has run.

The hash is the join key; a match is confirmed on the full key before it is returned, so a hash
collision never makes a false duplicate (``CLEARING_KEY_HASH_BITS``, for tests only, shrinks the
hash to force collisions). The hash text is independent of the column's storage type
(timestamps hash as epoch milliseconds), so an index written by one release is read by the next.

Rows are written as each input file is accepted (incrementally: a file later the same night
finds them); a re-run of a processing date clears the date's partition first, like the lake.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from clearing import lake
from clearing._io import write_row_groups_atomic, write_table_atomic
from clearing.environment import key_hash_bits

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    import duckdb

__all__ = [
    "add_key_hash",
    "files",
    "key_hash_sql",
    "mark_indexed",
    "start_days",
    "window_dates",
    "write",
]


def _text_sql(column: str, t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        # as microsecond timestamps first (DuckDB's epoch_ms takes no second timestamps)
        micro = "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
        return f"CAST(epoch_ms(CAST({column} AS {micro})) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"


def key_hash_sql(key: Sequence[str], schema: pa.Schema, alias: str = "") -> tuple[str, str]:
    """DuckDB SQL of the two 64-bit halves (``k1``, ``k2``) of the hash of ``key``'s columns.

    ``schema``: the Arrow types of the columns (timestamps hash as epoch milliseconds, so a
    second or millisecond column, naive or UTC, gives the same hash). Nulls hash as ``~``.
    """
    prefix = f"{alias}." if alias else ""
    parts = [f"coalesce({_text_sql(prefix + c, schema.field(c).type)}, '~')" for c in key]
    text = f"concat_ws('|', {', '.join(parts)})"
    bits = key_hash_bits()
    whole = f"md5_number({text})"  # one MD5 (UHUGEINT), split in two halves below
    if bits >= 128:
        # the halves DuckDB's md5_number_upper / md5_number_lower give, for one MD5 not two
        return (
            f"CAST({whole} & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT)",
            f"CAST({whole} >> 64 AS UBIGINT)",
        )
    # a shrunk hash (tests): collisions on purpose
    return "CAST(0 AS UBIGINT)", f"CAST({whole} % {2**bits} AS UBIGINT)"


def _start_day_sql(column: str, t: pa.DataType) -> str:
    if pa.types.is_timestamp(t) and t.tz:
        return f"CAST(timezone('UTC', {column}) AS DATE)"
    return f"CAST({column} AS DATE)"


def add_key_hash(
    con: duckdb.DuckDBPyConnection, table: pa.Table, key: Sequence[str], start: str
) -> pa.Table:
    """``table`` with ``k1``, ``k2`` (the key's hash) first and ``start_day`` last.

    ``start_day``: the (UTC, when the column has a time zone) day of column ``start``.
    """
    k1, k2 = key_hash_sql(key, table.schema)
    day = _start_day_sql(start, table.schema.field(start).type)
    con.register("_keyed", table.select(sorted({*key, start})))
    try:
        sql = f"SELECT {k1} AS k1, {k2} AS k2, {day} AS start_day FROM _keyed"
        extra = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("_keyed")
    out = table
    out = out.add_column(0, "k2", extra.column("k2")).add_column(0, "k1", extra.column("k1"))
    return out.append_column("start_day", extra.column("start_day"))


def start_days(days: pa.ChunkedArray | pa.Array, *, both_sides: bool = False) -> set[date | None]:
    """The start days to look up for events of the start days ``days`` (None: no start).

    ``both_sides``: also the day before and after each (a soft match within seconds may fall
    on the other side of midnight).
    """
    out: set[date | None] = set()
    for d in pc.unique(days).to_pylist():
        out.add(d)
        if both_sides and d is not None:
            out.update((d - timedelta(days=1), d + timedelta(days=1)))
    return out


def window_dates(
    root: Path,
    ds: lake.Dataset,
    day: date,
    window_days: int,
    *,
    after: bool = False,
    include_day: bool = False,
) -> list[date]:
    """The processing dates of index ``ds`` whose keys a lookup on ``day`` reads.

    From ``window_days`` before ``day``; up to the day before it, or (``after``) up to
    ``window_days`` after it; ``day`` itself only with ``include_day`` (the files accepted
    earlier in the same run).
    """
    lo = day - timedelta(days=window_days)
    hi = day + timedelta(days=window_days) if after else day
    return [d for d in lake.dates(root, ds) if lo <= d <= hi and (d != day or include_day)]


#: Rows of a key index file's row group (and of the pieces :func:`write` filters at once).
WRITE_ROWS = 1 << 18


def write(
    root: Path,
    ds: lake.Dataset,
    day: date,
    keyed: pa.Table,
    *,
    source: str | None = None,
) -> list[Path]:
    """Write the rows of ``keyed`` (from :func:`add_key_hash`) into ``ds`` for ``day``.

    One file per start day (``date=<day>/start=<S>/``), the dataset's columns in its order
    (``start_day`` is the folder); ``source`` names the file when the dataset has one file per
    input. Returns the files written.
    """
    written: list[Path] = []
    if keyed.num_rows == 0:
        return written
    names = ds.schema.names
    keyed_names = keyed.select(names)
    days = keyed.column("start_day")
    for s in sorted(pc.unique(days).to_pylist(), key=lambda d: d or date.min):
        mask = pc.is_null(days) if s is None else pc.equal(days, pa.scalar(s, pa.date32()))
        target = lake.path(root, ds, day, source=source, start=s)
        # a start day's rows in pieces of WRITE_ROWS, a row group each: a big file's filtered
        # copy is never held whole (it is as big as the file's keys)
        pieces = (
            keyed_names.slice(at, WRITE_ROWS).filter(mask.slice(at, WRITE_ROWS))
            for at in range(0, keyed.num_rows, WRITE_ROWS)
        )
        write_row_groups_atomic(
            (piece for piece in pieces if piece.num_rows),
            keyed_names.schema,
            target,
            compression=ds.compression,
        )
        written.append(target)
    return written


def mark_indexed(root: Path, ds: lake.Dataset, day: date, *, source: str) -> Path:
    """Record that input ``source`` of ``day`` left no key: an empty file of it.

    Written in the folder of events without a start, so that the upgrade path (which indexes
    every input of the window without an index file) never reads that input again.
    """
    target = lake.path(root, ds, day, source=source, start=None)
    write_table_atomic(ds.schema.empty_table(), target, compression=ds.compression)
    return target


def files(
    root: Path, ds: lake.Dataset, dates: Iterable[date], starts: Iterable[date | None]
) -> list[Path]:
    """The index files of ``dates`` and start days ``starts`` (only these folders are read)."""
    return lake.files(root, ds, dates, starts=starts)
