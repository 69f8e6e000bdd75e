"""The ``entry_fates`` table: what became of every entry a partner delivered.

One row per entry, deciding stage and processing date (``processed``, ``copy_ignored``,
``returned``, ``quarantined``, ``refused``). A stage re-run for a date replaces its own rows of
that date (:meth:`EntryFates.replace_stage`), so a re-run never lists an entry twice.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    import duckdb

__all__ = ["FATES", "EntryFate", "EntryFates"]

#: Every fate an entry can have, in the order a summary lists them.
FATES: Final = ("processed", "copy_ignored", "returned", "quarantined", "refused")


@dataclass(frozen=True, slots=True)
class EntryFate:
    """One entry's fate on one processing date, as stored.

    Attributes:
        processing_date: the date of the run that decided it.
        stage: the stage that decided it (``collect``, ``claim``, ``validate``).
        name: the entry's name as delivered (escaped when not safe to print).
        partner: the channel that delivered it (``""``: none known, an operator's drop).
        fate: one of :data:`FATES`.
        reason: why, in words.
        hint: what to do about it.
        path: where it is now, relative to the work folder (None: left on the server).
        recorded_at: when (UTC).
    """

    processing_date: date
    stage: str
    name: str
    partner: str
    fate: str
    reason: str = ""
    hint: str = ""
    path: str | None = None
    recorded_at: datetime | None = None


_COLUMNS = ", ".join(f.name for f in fields(EntryFate))
_MARKS = ", ".join("?" for _ in fields(EntryFate))


class EntryFates:
    """Typed access to ``entry_fates``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def record(self, fate: EntryFate) -> None:
        """Record one entry's fate (replacing that entry's row of the same date and stage)."""
        if fate.fate not in FATES:
            msg = f"unknown fate `{fate.fate}`: one of {', '.join(FATES)}"
            raise ValueError(msg)
        self._con.execute(
            "DELETE FROM entry_fates WHERE processing_date = ? AND stage = ? AND name = ? "
            "AND partner = ?",
            [fate.processing_date, fate.stage, fate.name, fate.partner],
        )
        row = list(astuple(fate))
        row[-1] = fate.recorded_at or datetime.now(UTC).replace(tzinfo=None)
        self._con.execute(f"INSERT INTO entry_fates ({_COLUMNS}) VALUES ({_MARKS})", row)

    def replace_stage(self, day: date, stage: str, fates: Iterable[EntryFate]) -> None:
        """The rows of ``stage`` on ``day`` become exactly ``fates``."""
        self._con.execute(
            "DELETE FROM entry_fates WHERE processing_date = ? AND stage = ?", [day, stage]
        )
        for f in fates:
            self.record(f)

    def of_day(self, day: date) -> list[EntryFate]:
        """Every fate of processing date ``day``, by stage order of the night, then name."""
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM entry_fates WHERE processing_date = ? "
            "ORDER BY CASE stage WHEN 'collect' THEN 0 WHEN 'claim' THEN 1 "
            "WHEN 'validate' THEN 2 ELSE 3 END, stage, name, partner",
            [day],
        ).fetchall()
        return [EntryFate(*r) for r in rows]

    def of_name(self, name: str, partner: str | None = None) -> list[EntryFate]:
        """Every fate ever recorded for an entry name (of one channel), oldest first."""
        where, params = "name = ?", [name]
        if partner is not None:
            where, params = "name = ? AND partner = ?", [name, partner]
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM entry_fates WHERE {where} ORDER BY processing_date, stage",
            params,
        ).fetchall()
        return [EntryFate(*r) for r in rows]
