"""Held records: what rating could not price or convert, and the night each was released.

The tables (migration 4): ``held_records`` and ``held_recycles``.

A record is *held* when its partner's reference data cannot price it (no IOT row, no time band,
no agreement: a visitor CDR, ``kind = 'cdr'``) or cannot convert what we owe (no FX rate, an
unknown currency: a partner event, ``kind = 'payable'``). It is neither billed nor zero: it is
listed here with the processing date of its first rating (``origin_date``) and the reason.

A later night ``D`` *recycles* the held records of earlier dates: those that rate now are
*released on D* (``released_date = D``) and go out with D's rated rows, once. The first
recycle of ``D`` is recorded in ``held_recycles``; from then on ``D`` releases exactly the same
records (a replay of ``D`` picks the same ones, and no other date picks them again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable

    import duckdb

__all__ = ["HeldRecord", "HeldRecords"]

_COLUMNS = "kind, origin_date, file, position, record_id, partner, service, reason, released_date"


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """One held record.

    Attributes:
        kind: ``cdr`` (a visitor CDR: a receivable) or ``payable`` (a partner event).
        origin_date: the processing date of its first rating.
        file: the mediation file (``cdr``) or the partner's file (``payable``).
        position: the line in the mediation file, or the event index in the partner's file.
        record_id: the mediation record id (``cdr``), else None.
        partner: the partner it is billed to / owed to.
        service: the service (or the usage kind when no service was found).
        reason: why it could not be priced or converted.
        released_date: the processing date whose rated rows carry it (None: still held).
    """

    kind: str
    origin_date: dt.date
    file: str
    position: int
    record_id: str | None
    partner: str
    service: str | None
    reason: str
    released_date: dt.date | None = None

    @property
    def key(self) -> tuple[str, int]:
        """``(file, position)``: the record within its origin date."""
        return (self.file, self.position)


class HeldRecords:
    """Typed access to ``held_records`` and ``held_recycles``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _rows(self, where: str, params: list[object]) -> list[HeldRecord]:
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM held_records WHERE {where} "
            "ORDER BY origin_date, file, position",
            params,
        ).fetchall()
        return [HeldRecord(*r) for r in rows]

    def hold(self, records: Iterable[HeldRecord]) -> int:
        """List ``records`` as held (those already listed are kept as they are); return new ones."""
        added = 0
        for r in records:
            found = self._con.execute(
                "SELECT count(*) FROM held_records WHERE kind = ? AND origin_date = ? "
                "AND file = ? AND position = ?",
                [r.kind, r.origin_date, r.file, r.position],
            ).fetchone()
            if found and found[0]:
                continue
            self._con.execute(
                f"INSERT INTO held_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [
                    r.kind,
                    r.origin_date,
                    r.file,
                    r.position,
                    r.record_id,
                    r.partner,
                    r.service,
                    r.reason,
                ],
            )
            added += 1
        return added

    def of_origin(self, kind: str, day: dt.date) -> list[HeldRecord]:
        """The records of ``kind`` first rated on ``day`` and held then (released or not)."""
        return self._rows("kind = ? AND origin_date = ?", [kind, day])

    def recycled(self, kind: str, day: dt.date) -> bool:
        """Whether ``day`` has recycled the held records of ``kind`` (its releases are fixed)."""
        row = self._con.execute(
            "SELECT count(*) FROM held_recycles WHERE kind = ? AND processing_date = ?",
            [kind, day],
        ).fetchone()
        return bool(row and row[0])

    def candidates(self, kind: str, day: dt.date) -> list[HeldRecord]:
        """The held records ``day`` may release.

        Once ``day`` has recycled: exactly those it released. Before: every record still held
        whose origin date is before ``day``.
        """
        if self.recycled(kind, day):
            return self._rows("kind = ? AND released_date = ?", [kind, day])
        return self._rows("kind = ? AND released_date IS NULL AND origin_date < ?", [kind, day])

    def release(self, kind: str, day: dt.date, records: Iterable[HeldRecord]) -> None:
        """Record that ``day`` carries ``records`` and that ``day`` has recycled ``kind``."""
        for r in records:
            self._con.execute(
                "UPDATE held_records SET released_date = ? WHERE kind = ? AND origin_date = ? "
                "AND file = ? AND position = ?",
                [day, kind, r.origin_date, r.file, r.position],
            )
        if not self.recycled(kind, day):
            self._con.execute("INSERT INTO held_recycles VALUES (?, ?)", [day, kind])

    def pending(self, kind: str | None = None) -> list[HeldRecord]:
        """Every record still held (of ``kind``, or of both kinds)."""
        if kind is None:
            return self._rows("released_date IS NULL", [])
        return self._rows("kind = ? AND released_date IS NULL", [kind])
