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

The tables and their SQL are :mod:`clearing.store.sequences`'s; this class decides the numbers.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from clearing.names import next_fsn
from clearing.store import FileRecord, SentFile, Store, open_store, sent_files

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import date
    from pathlib import Path

__all__ = ["FileRecord", "SentFile", "Sequences", "next_fsn"]


class Sequences:
    """The outbound sequence and file tables of one DuckDB file.

    Opened per use, or once for several uses within :meth:`session`.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self._store: Store | None = None

    def _open(self) -> Store:
        return open_store(self.db)

    @contextmanager
    def _connect(self) -> Iterator[Store]:
        if self._store is not None:
            yield self._store
            return
        store = self._open()
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def session(self) -> Iterator[Sequences]:
        """Keep one connection open for the calls made inside (one writer, several files)."""
        if self._store is not None:
            yield self
            return
        self._store = self._open()
        try:
            yield self
        finally:
            self._store.close()
            self._store = None

    def allocation(
        self, partner: str, standard: str, file_type: str, day: date
    ) -> tuple[int | None, int | None, int | None]:
        """``(first, last, previous)`` stored for the day, or ``(None, None, latest)``."""
        with self._connect() as st:
            return st.outbound.allocation(partner, standard, file_type, day)

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
        with self._connect() as st:
            st.outbound.save(
                partner, standard, file_type, day, first=first, last=last, previous=previous
            )

    def tap_fsn(self, partner: str, file_type: str, day: date) -> int:
        """The FSN of the partner's TAP file of ``day`` (allocated on first use, then reused)."""
        first, _last, previous = self.allocation(partner, "tap", file_type, day)
        if first is not None:
            return first
        fsn = next_fsn(previous)
        self.store(partner, "tap", file_type, day, first=fsn, last=fsn, previous=previous)
        return fsn

    def sent(self, day: date) -> list[SentFile]:
        """The files of ``day`` registered in the outbox (sent: never written again)."""
        with self._connect() as st:
            return sent_files(st, day)

    def register(self, record: FileRecord) -> bool:
        """Store a written file; True when a file of that name had other content before."""
        with self._connect() as st:
            return st.outbound.register_file(record)
