"""Validation state in the work folder's DuckDB file: file register, sequences, findings, RAPs.

The tables and their typed methods are :mod:`clearing.store`'s; :class:`State` is the store
opened by a path, with the validate stage's calls under their old names (the CLI's ``validate``
and ``seq`` verbs use them).

Every table is keyed by the processing date, and a stage run for a date first deletes what an
earlier run of the same date wrote, so a re-run ends in the same state as the first run (no
duplicate rows). What a date *reads* (sequence history, RAP sequence numbers) comes from
earlier dates only, so re-running an old date does not see its own later effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearing.store import SequenceCheck, Store, next_fsn
from clearing.store.register import DATED_TABLES

if TYPE_CHECKING:
    import datetime as dt

    import pyarrow as pa

__all__ = ["SequenceCheck", "State", "next_fsn"]


class State(Store):
    """The DuckDB file of a work folder (``clearing.duckdb``), opened by its path."""

    def __enter__(self) -> State:
        return self

    def forget(self, day: dt.date, tables: tuple[str, ...] = DATED_TABLES) -> None:
        """Delete what an earlier run of ``day`` wrote (a re-run then starts clean)."""
        self.register.forget(day, tables)

    def record_file(self, day: dt.date, row: dict[str, Any]) -> None:
        """Add one input file's row to the register."""
        self.register.record_file(day, row)

    def check_sequence(
        self, day: dt.date, *, sender: str, recipient: str, test: bool, fsn: int, sha256: str
    ) -> SequenceCheck:
        """Compare a file with the history of its sender → recipient stream (TD.57 FSN)."""
        return self.inbound.check(
            day, sender=sender, recipient=recipient, test=test, fsn=fsn, sha256=sha256
        )

    def silent_partners(self, day: dt.date, silent_days: dict[str, int]) -> list[tuple[str, int]]:
        """Partners whose last file is more than their limit old: (sender, last FSN)."""
        return self.inbound.silent_partners(day, silent_days)

    def record_findings(self, day: dt.date, table: pa.Table) -> None:
        """Add the day's findings rows."""
        self.register.record_findings(day, table)

    def next_rap_fsn(self, day: dt.date, partner: str, test: bool) -> int:
        """The RAP FSN for a new RAP to ``partner`` (from RAPs of earlier dates and today's)."""
        return self.inbound.next_rap_fsn(day, partner, test)

    def record_rap(self, day: dt.date, row: dict[str, Any]) -> None:
        """Add one RAP we wrote."""
        self.register.record_rap(day, row)

    def sequence_status(self) -> list[dict[str, Any]]:
        """Per stream: last FSN, files, copies, gaps reported, fatal files, RAPs, ACKs owed."""
        return self.inbound.status()
