"""The file register: ``files``, ``findings``, ``rap_out`` and ``ciber_returns_out``.

``files`` has one row per input file; ``ciber_returns_out`` lists the CIBER returns written.

Every table is keyed by the processing date; a stage run for a date first deletes what an
earlier run of the same date wrote (:meth:`Register.forget`), so a re-run ends in the same
state as the first run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt

    import duckdb
    import pyarrow as pa

__all__ = ["DATED_TABLES", "Register"]

#: The tables keyed by ``processing_date`` that the validate stage rewrites for a date.
DATED_TABLES = (
    "files",
    "findings",
    "rap_out",
    "acks_in",
    "raps_in",
    "returns_in",
    "ciber_returns_out",
    "ciber_batches_in",
)


class Register:
    """Typed access to ``files``, ``findings``, ``rap_out`` and ``ciber_returns_out``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def forget(self, day: dt.date, tables: tuple[str, ...] = DATED_TABLES) -> None:
        """Delete what an earlier run of ``day`` wrote (a re-run then starts clean)."""
        for t in tables:
            if t not in DATED_TABLES:
                msg = f"`{t}` is not a table keyed by processing date"
                raise ValueError(msg)
            self._con.execute(f"DELETE FROM {t} WHERE processing_date = ?", [day])

    def record_file(self, day: dt.date, row: dict[str, Any]) -> None:
        """Add one input file's row (columns of ``files`` by name; the others are null)."""
        self._insert("files", day, row)

    def set_rap_file(self, day: dt.date, file: str, rap_file: str) -> None:
        """Name the RAP (or returns) written for the input ``file`` of ``day``."""
        self._con.execute(
            "UPDATE files SET rap_file = ? WHERE processing_date = ? AND file = ?",
            [rap_file, day, file],
        )

    def record_findings(self, day: dt.date, table: pa.Table) -> None:
        """Add the findings rows of ``table`` (columns of ``findings`` by name)."""
        if table.num_rows == 0:
            return
        self._con.register("_new_findings", table)
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        try:
            self._con.execute(
                f"INSERT INTO findings (processing_date, {cols}) "
                f"SELECT ?, {cols} FROM _new_findings",
                [day],
            )
        finally:
            self._con.unregister("_new_findings")

    def record_rap(self, day: dt.date, row: dict[str, Any]) -> None:
        """Add one RAP we wrote (columns of ``rap_out`` by name)."""
        self._insert("rap_out", day, row)

    def record_ciber_return(self, day: dt.date, row: dict[str, Any]) -> None:
        """Add one CIBER return file we wrote (columns of ``ciber_returns_out`` by name)."""
        self._insert("ciber_returns_out", day, row)

    def raps_of(self, day: dt.date) -> list[tuple[str, str]]:
        """``(file, partner)`` of the RAPs written for ``day``, by file name."""
        rows = self._con.execute(
            "SELECT file, partner FROM rap_out WHERE processing_date = ? ORDER BY file", [day]
        ).fetchall()
        return [(str(f), str(p)) for f, p in rows]

    def ciber_returns_of(self, day: dt.date) -> list[str]:
        """The CIBER return files written for the CIBER inputs of ``day``, by input file."""
        rows = self._con.execute(
            "SELECT rap_file FROM files WHERE processing_date = ? AND format = 'ciber' "
            "AND rap_file IS NOT NULL ORDER BY file",
            [day],
        ).fetchall()
        return [name for (names,) in rows for name in str(names).split(", ")]

    def _insert(self, table: str, day: dt.date, row: dict[str, Any]) -> None:
        cols = ["processing_date", *row]
        marks = ", ".join("?" for _ in cols)
        self._con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", [day, *row.values()]
        )
