"""Temporary Parquet parts of a day rated in chunks, and the lake files made from them.

When a day's CDRs do not fit the ``[performance] memory_mb`` budget, :func:`clearing.rating.run.
rate_day` rates them a chunk at a time; each chunk's rows go to parts under the work folder's
``tmp/rate-<day>/`` (:class:`Spool`), and each lake file is then made from its parts without
holding it whole: :func:`concat_to` (the parts in order) or :func:`sorted_to` (DuckDB's
out-of-core ``ORDER BY`` within half the budget). Both write row groups of
:data:`clearing._io.ROW_GROUP` rows, one chunk per column, so a file's bytes are those a
one-chunk run writes for the same rows (:func:`clearing._io.write_row_groups_atomic`).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Final

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from clearing._io import ROW_GROUP, row_groups, write_row_groups_atomic
from clearing._memory import spill_past

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["ROW_GROUP", "Spool", "concat_to", "row_groups", "sorted_to"]

_BATCH: Final = 1 << 16  # rows per batch read from a part or from DuckDB


class Spool:
    """Parts of named tables under ``folder``, in the order they are added.

    The folder is emptied on entry and removed on exit (``with Spool(folder) as spool``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._parts: dict[str, list[Path]] = {}

    def __enter__(self) -> Spool:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, name: str, df: pl.DataFrame) -> None:
        """Add ``df``'s rows to the table ``name`` (its Arrow types kept)."""
        parts = self._parts.setdefault(name, [])
        folder = self.folder / f"t{list(self._parts).index(name):05d}"
        folder.mkdir(exist_ok=True)
        target = folder / f"{len(parts):06d}.parquet"
        # read once, in order: no dictionary pages, no statistics (3x faster to write)
        pq.write_table(
            df.to_arrow(), target, compression="lz4", use_dictionary=False, write_statistics=False
        )
        parts.append(target)

    def files(self, name: str) -> list[Path]:
        """The parts of ``name``, in order (none: ``[]``)."""
        return list(self._parts.get(name, []))

    def names(self, prefix: str = "") -> list[str]:
        """The tables whose name starts with ``prefix``, in the order first added."""
        return [n for n in self._parts if n.startswith(prefix)]

    @property
    def tmp(self) -> Path:
        """A folder for DuckDB's spill files."""
        return self.folder / "duckdb"


def _read_parts(files: list[Path]) -> Iterator[pa.RecordBatch]:
    for f in files:
        yield from pq.ParquetFile(f).iter_batches(batch_size=_BATCH)


def concat_to(
    files: list[Path], path: Path, *, compression: str, columns: list[str] | None = None
) -> None:
    """Write the rows of the parts ``files``, in order, as the Parquet file ``path``.

    ``columns``: only these, in this order (None: the parts' columns).
    """
    schema = pq.read_schema(files[0])
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    batches = (
        b
        if columns is None
        else pa.RecordBatch.from_arrays(b.select(columns).columns, schema=schema)
        for b in _read_parts(files)
    )
    write_row_groups_atomic(row_groups(batches, schema), schema, path, compression=compression)


def _connect(tmp: Path, memory_mb: int) -> duckdb.DuckDBPyConnection:
    tmp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    spill_past(con, tmp, memory_mb // 2)
    con.execute("SET preserve_insertion_order = false")
    return con


def _order_by(order: list[str], *, nulls_last: bool) -> str:
    nulls = "NULLS LAST" if nulls_last else "NULLS FIRST"
    return ", ".join(f'"{c}" ASC {nulls}' for c in order)


def _sorted_batches(
    con: duckdb.DuckDBPyConnection, files: list[Path], order: list[str], *, nulls_last: bool
) -> Iterator[pa.RecordBatch]:
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    query = (
        f"SELECT * FROM read_parquet([{listing}], hive_partitioning = false) "
        f"ORDER BY {_order_by(order, nulls_last=nulls_last)}"
    )
    yield from con.sql(query).to_arrow_reader(_BATCH)


def _as_parts(batch: pa.RecordBatch, schema: pl.Schema, drop: list[str]) -> pa.RecordBatch:
    """DuckDB's rows with the parts' types (as the one-chunk run's frame has them)."""
    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    (out,) = df.cast(schema).drop(drop).rechunk().to_arrow().to_batches()
    return out


def sorted_to(
    files: list[Path],
    path: Path,
    order: list[str],
    *,
    nulls_last: bool,
    compression: str,
    tmp: Path,
    memory_mb: int,
    drop: list[str] | None = None,
) -> None:
    """Write the rows of the parts ``files`` sorted by ``order`` as the Parquet file ``path``.

    The order is polars' ``sort(order, nulls_last=...)`` (strings by their bytes): DuckDB
    sorts out of core within half of ``memory_mb``, spilling under ``tmp``. ``drop``: columns
    of the parts left out of the file (a sort key only).
    """
    schema = pl.Schema(pl.read_parquet_schema(files[0]))
    gone = drop or []
    arrow = pl.DataFrame(schema=schema).drop(gone).to_arrow().schema
    con = _connect(tmp, memory_mb)
    try:
        batches = (
            _as_parts(b, schema, gone)
            for b in _sorted_batches(con, files, order, nulls_last=nulls_last)
            if b.num_rows
        )
        groups = row_groups(batches, arrow)
        write_row_groups_atomic(groups, arrow, path, compression=compression)
    finally:
        con.close()
