"""CIBER-in batch sequences: ``ciber_batches_in``, one row per batch of a partner's CIBER file.

A CIBER batch sequence number (001-999, wrapping) runs per sending → receiving SID/BID pair
(ciber.md §2). Every batch the validate stage reads is recorded with its content hash and
what became of it (``outcome``):

* ``accepted`` — a new batch, taken (its records may still be returned one by one);
* ``rejected`` — returned whole (a batch rule, or ``reused`` below);
* ``copy`` — the same sequence and the same content as a batch already accepted: ignored,
  not paid, not returned (``copy_of`` names the file it copies);
* ``reused`` — the same sequence as a batch already accepted, other content: rejected
  (``copy_of`` names the file that used the sequence first).

:meth:`CiberBatches.check` compares a batch with that history; the rows of a processing date
are deleted by :meth:`clearing.store.register.Register.forget` when the date is validated again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from clearing.names import CIBER_SEQUENCE_MAX, next_ciber_sequence

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

__all__ = ["BATCH_OUTCOMES", "BatchCheck", "CiberBatches"]

#: The values of ``ciber_batches_in.outcome``.
BATCH_OUTCOMES = ("accepted", "rejected", "copy", "reused")


@dataclass(frozen=True)
class BatchCheck:
    """What the sequence history of its SID/BID pair says about one incoming batch.

    Attributes:
        copy_of: ``(file, processing date)`` of an accepted batch with the same sequence and
            content (this one is a copy: ignore it).
        reused: ``(file, processing date)`` of an accepted batch with the same sequence and
            other content (this one reuses the number: reject it).
        expected: the sequence expected after the pair's last batch (None: its first batch).
        missing: the sequences skipped before this batch, ``(first, last)`` (None: no gap).
    """

    copy_of: tuple[str, dt.date] | None = None
    reused: tuple[str, dt.date] | None = None
    expected: int | None = None
    missing: tuple[int, int] | None = None


class CiberBatches:
    """Typed access to ``ciber_batches_in``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def check(
        self,
        day: dt.date,
        *,
        sender: str,
        recipient: str,
        sequence: int,
        sha256: str,
        window_days: int,
    ) -> BatchCheck:
        """Compare a batch with the history of its sender → recipient pair.

        Copies and reused numbers are looked for among the accepted batches of the processing
        dates within ``window_days`` of ``day`` (before or after it; the batches of ``day``
        recorded so far included): the sequence wraps after 999, so an older number is a new
        batch. The gap is measured from the pair's last batch recorded up to ``day`` (accepted
        or rejected); a sequence already seen in the window (a rejected batch sent again) or
        behind the stream (more than half the cycle ahead) is no gap.

        Args:
            day: the processing date.
            sender: the batch's sending SID/BID.
            recipient: its receiving SID/BID.
            sequence: its batch sequence number.
            sha256: the hash of its content (:func:`clearing.validate.ciber.batch_sha256`).
            window_days: the duplicate window.

        Returns:
            The check.
        """
        lo, hi = day - timedelta(days=window_days), day + timedelta(days=window_days)
        same = self._con.execute(
            """
            SELECT sha256, file, processing_date FROM ciber_batches_in
            WHERE sender = ? AND recipient = ? AND sequence = ? AND outcome = 'accepted'
              AND processing_date BETWEEN ? AND ?
            ORDER BY processing_date, rowid
            """,
            [sender, recipient, sequence, lo, hi],
        ).fetchall()
        for sha, file, d in same:
            if sha == sha256:
                return BatchCheck(copy_of=(str(file), d))
        if same:
            return BatchCheck(reused=(str(same[0][1]), same[0][2]))
        last = self._con.execute(
            """
            SELECT sequence FROM ciber_batches_in
            WHERE sender = ? AND recipient = ? AND outcome IN ('accepted', 'rejected')
              AND processing_date <= ?
            ORDER BY processing_date DESC, rowid DESC LIMIT 1
            """,
            [sender, recipient, day],
        ).fetchone()
        if last is None:
            return BatchCheck()
        expected = next_ciber_sequence(int(last[0]))
        if sequence == expected:
            return BatchCheck(expected=expected)
        seen = self._con.execute(
            """
            SELECT count(*) FROM ciber_batches_in
            WHERE sender = ? AND recipient = ? AND sequence = ?
              AND processing_date BETWEEN ? AND ?
            """,
            [sender, recipient, sequence, lo, day],
        ).fetchone()
        if seen and seen[0]:
            return BatchCheck(expected=expected)
        ahead = (sequence - expected) % CIBER_SEQUENCE_MAX
        if ahead >= CIBER_SEQUENCE_MAX // 2:  # behind the pair's stream, not ahead of it
            return BatchCheck(expected=expected)
        last_missing = (expected + ahead - 2) % CIBER_SEQUENCE_MAX + 1
        return BatchCheck(expected=expected, missing=(expected, last_missing))

    def record(self, day: dt.date, row: dict[str, Any]) -> None:
        """Add one batch (columns of ``ciber_batches_in`` by name; the others are null)."""
        cols = ["processing_date", *row]
        marks = ", ".join("?" for _ in cols)
        self._con.execute(
            f"INSERT INTO ciber_batches_in ({', '.join(cols)}) VALUES ({marks})",
            [day, *row.values()],
        )

    def of_day(self, day: dt.date) -> list[dict[str, Any]]:
        """The batches recorded for ``day``, in the order recorded."""
        cur = self._con.execute(
            "SELECT * FROM ciber_batches_in WHERE processing_date = ? ORDER BY rowid", [day]
        )
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
