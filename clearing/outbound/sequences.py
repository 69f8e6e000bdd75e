"""Outbound sequence numbers and the register of files written, in ``<workdir>/clearing.duckdb``.

TD.57 rules (tap3-rap.md §4.1): one FSN sequence per sender → recipient, 00001-99999 then back
to 1, test and live data apart, and a re-run or resend of the same file keeps its number. So a
number is allocated once per (partner, standard, file type, processing date) and that row is
reused by every re-run of the day: the same inputs give the same file name and bytes.

Tables (prefixed ``outbound_``):

* ``outbound_sequences``: partner, standard (tap | ciber), file_type (live | test),
  processing_date, allocation (global order of allocation), first_number / last_number (TAP:
  the FSN; CIBER: the day's batch sequence numbers), previous_number (the partner's number
  before this day's; CIBER numbering continues from it).
* ``outbound_files``: one row per file written (name, kind, partner, date, number, events,
  totals, SHA-256, path, whether a re-run changed its content).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from clearing.errors import ConfigError
from clearing.names import next_fsn

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import date
    from pathlib import Path

__all__ = ["FileRecord", "Sequences", "next_fsn"]

_DDL = """
CREATE TABLE IF NOT EXISTS outbound_sequences (
    partner VARCHAR NOT NULL,
    standard VARCHAR NOT NULL,
    file_type VARCHAR NOT NULL,
    processing_date DATE NOT NULL,
    allocation BIGINT NOT NULL,
    first_number INTEGER NOT NULL,
    last_number INTEGER NOT NULL,
    previous_number INTEGER,
    PRIMARY KEY (partner, standard, file_type, processing_date)
);
CREATE TABLE IF NOT EXISTS outbound_files (
    file_name VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    partner VARCHAR NOT NULL,
    standard VARCHAR NOT NULL,
    file_type VARCHAR NOT NULL,
    processing_date DATE NOT NULL,
    sequence_number INTEGER NOT NULL,
    events BIGINT NOT NULL,
    total_charge BIGINT NOT NULL,
    total_tax BIGINT NOT NULL,
    charge_scale INTEGER,
    currency VARCHAR,
    sha256 VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    content_changed BOOLEAN NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One outbound file, as registered in ``outbound_files``."""

    file_name: str
    kind: str  # transferBatch | notification | ciber
    partner: str
    standard: str
    file_type: str
    processing_date: date
    sequence_number: int
    events: int
    total_charge: int
    total_tax: int
    charge_scale: int | None
    currency: str | None
    sha256: str
    path: str
    content_changed: bool = False


class Sequences:
    """The outbound sequence and file tables of one DuckDB file.

    Opened per use, or once for several uses within :meth:`session`.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self._con: duckdb.DuckDBPyConnection | None = None

    def _open(self) -> duckdb.DuckDBPyConnection:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.db))
        except duckdb.Error as exc:
            msg = f"cannot open `{self.db}`: {exc}"
            raise ConfigError(msg) from None
        con.execute(_DDL)
        return con

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is not None:
            yield self._con
            return
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def session(self) -> Iterator[Sequences]:
        """Keep one connection open for the calls made inside (one writer, several files)."""
        if self._con is not None:
            yield self
            return
        self._con = self._open()
        try:
            yield self
        finally:
            self._con.close()
            self._con = None

    def allocation(
        self, partner: str, standard: str, file_type: str, day: date
    ) -> tuple[int | None, int | None, int | None]:
        """``(first, last, previous)`` stored for the day, or ``(None, None, latest)``."""
        with self._connect() as con:
            row = con.execute(
                "SELECT first_number, last_number, previous_number FROM outbound_sequences "
                "WHERE partner = ? AND standard = ? AND file_type = ? AND processing_date = ?",
                [partner, standard, file_type, day],
            ).fetchone()
            if row is not None:
                return int(row[0]), int(row[1]), None if row[2] is None else int(row[2])
            latest = con.execute(
                "SELECT last_number FROM outbound_sequences WHERE partner = ? AND standard = ? "
                "AND file_type = ? ORDER BY allocation DESC LIMIT 1",
                [partner, standard, file_type],
            ).fetchone()
        return None, None, None if latest is None else int(latest[0])

    def store(
        self,
        partner: str,
        standard: str,
        file_type: str,
        day: date,
        *,
        first: int,
        last: int,
        previous: int | None,
    ) -> None:
        """Record (or update the end of) the day's numbers."""
        with self._connect() as con:
            exists = con.execute(
                "SELECT allocation FROM outbound_sequences WHERE partner = ? AND standard = ? "
                "AND file_type = ? AND processing_date = ?",
                [partner, standard, file_type, day],
            ).fetchone()
            if exists is not None:
                con.execute(
                    "UPDATE outbound_sequences SET first_number = ?, last_number = ? "
                    "WHERE partner = ? AND standard = ? AND file_type = ? AND processing_date = ?",
                    [first, last, partner, standard, file_type, day],
                )
                return
            nxt = con.execute(
                "SELECT coalesce(max(allocation), 0) + 1 FROM outbound_sequences"
            ).fetchone()
            assert nxt is not None
            con.execute(
                "INSERT INTO outbound_sequences VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [partner, standard, file_type, day, int(nxt[0]), first, last, previous],
            )

    def tap_fsn(self, partner: str, file_type: str, day: date) -> int:
        """The FSN of the partner's TAP file of ``day`` (allocated on first use, then reused)."""
        first, _last, previous = self.allocation(partner, "tap", file_type, day)
        if first is not None:
            return first
        fsn = next_fsn(previous)
        self.store(partner, "tap", file_type, day, first=fsn, last=fsn, previous=previous)
        return fsn

    def register(self, record: FileRecord) -> bool:
        """Store a written file; True when a file of that name had other content before."""
        with self._connect() as con:
            old = con.execute(
                "SELECT sha256, content_changed FROM outbound_files WHERE file_name = ?",
                [record.file_name],
            ).fetchone()
            changed = old is not None and (old[0] != record.sha256 or bool(old[1]))
            con.execute("DELETE FROM outbound_files WHERE file_name = ?", [record.file_name])
            con.execute(
                "INSERT INTO outbound_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.file_name,
                    record.kind,
                    record.partner,
                    record.standard,
                    record.file_type,
                    record.processing_date,
                    record.sequence_number,
                    record.events,
                    record.total_charge,
                    record.total_tax,
                    record.charge_scale,
                    record.currency,
                    record.sha256,
                    record.path,
                    changed,
                ],
            )
        return changed
