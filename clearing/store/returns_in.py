"""Partners' RAPs about our TAP-out and their ACKs of our RAPs.

The tables: ``raps_in``, ``acks_in``, ``returns_in``.

A re-run of a date replaces what it recorded for the same file (delete, then insert).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

__all__ = ["ReturnsIn"]


class ReturnsIn:
    """Typed access to ``raps_in``, ``acks_in`` and ``returns_in``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def record_ack_received(
        self, day: dt.date, *, file: str, sender: str, rap_fsn: int, test: bool
    ) -> None:
        """An ACK of one of our RAPs arrived (replaces the same file's row of ``day``)."""
        self._con.execute("DELETE FROM acks_in WHERE file = ? AND processing_date = ?", [file, day])
        self._con.execute(
            "INSERT INTO acks_in (processing_date, file, sender, rap_fsn, test) "
            "VALUES (?, ?, ?, ?, ?)",
            [day, file, sender, rap_fsn, test],
        )

    def record_rap_received(
        self,
        day: dt.date,
        *,
        file: str,
        sha256: str,
        sender: str,
        recipient: str,
        rap_fsn: int,
        test: bool,
        ack_file: str | None,
    ) -> None:
        """A partner's RAP arrived: its row, and none of its returns yet (replaces a re-run's)."""
        self._con.execute("DELETE FROM raps_in WHERE file = ? AND processing_date = ?", [file, day])
        self._con.execute(
            "DELETE FROM returns_in WHERE rap_file = ? AND processing_date = ?", [file, day]
        )
        self._con.execute(
            "INSERT INTO raps_in (processing_date, file, sha256, sender, recipient, rap_fsn, "
            "test, ack_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [day, file, sha256, sender, recipient, rap_fsn, test, ack_file],
        )

    def record_return(
        self,
        day: dt.date,
        *,
        rap_file: str,
        kind: str,
        fsn: str | None,
        event_kind: str | None,
        event_sha256: str | None = None,
        charge: int | None = 0,
        tax: int | None = 0,
        error_codes: str | None = None,
        status: str = "to_correct",
    ) -> None:
        """One return of a partner's RAP: ``kind`` fatal (a file) or severe (one event)."""
        self._con.execute(
            "INSERT INTO returns_in (processing_date, rap_file, kind, fsn, event_kind, "
            "event_sha256, charge, tax, error_codes, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [day, rap_file, kind, fsn, event_kind, event_sha256, charge, tax, error_codes, status],
        )

    def acks_written(self, day: dt.date) -> list[tuple[str, str]]:
        """``(ack file, partner)`` of the ACKs we wrote for partners' RAPs of ``day``."""
        rows = self._con.execute(
            "SELECT ack_file, sender FROM raps_in WHERE processing_date = ? "
            "AND ack_file IS NOT NULL ORDER BY ack_file",
            [day],
        ).fetchall()
        return [(str(a), str(s)) for a, s in rows]
