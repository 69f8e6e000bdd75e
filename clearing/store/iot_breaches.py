"""The ``iot_breaches`` table: partners' charges above the IOT beyond the thresholds.

One row per event of a partner's file that the IOT check found charged above the IOT by more
than the configured thresholds (``[validation] iot_breach_absolute`` / ``iot_breach_percent``).
Its ``status`` is ``held`` (not in the payable) until someone decides: ``accepted`` (released
into the payable of the date the file was received on) or ``disputed`` (stays out of the
payable). A re-run of the rating stage of a date keeps the decisions and re-records only the
rows still ``held``.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import duckdb

__all__ = ["BreachStatus", "IotBreach", "IotBreaches"]


class BreachStatus(StrEnum):
    """What was decided about a breach above the thresholds."""

    HELD = "held"
    ACCEPTED = "accepted"
    DISPUTED = "disputed"


@dataclass(frozen=True, slots=True)
class IotBreach:
    """One breach above the thresholds (amounts are integers at their scale)."""

    processing_date: date
    partner: str
    file: str
    event_index: int
    service: str | None
    currency: str | None
    charge_scale: int | None
    charged: int | None
    expected: int | None
    difference: int | None
    settlement_currency: str | None
    settlement_scale: int | None
    settlement_amount: int | None
    over_settlement: int | None
    status: str = BreachStatus.HELD
    detected_at: datetime | None = None
    decided_at: datetime | None = None
    reason: str | None = None


_COLUMNS = ", ".join(f.name for f in fields(IotBreach))
_MARKS = ", ".join("?" for _ in fields(IotBreach))
_ORDER = "ORDER BY processing_date, partner, file, event_index"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class IotBreaches:
    """Typed access to ``iot_breaches``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def record_day(self, day: date, found: Iterable[IotBreach]) -> list[IotBreach]:
        """The rating of ``day`` found these breaches: keep decisions, replace what is held.

        Rows of ``day`` still ``held`` are deleted, then every found breach without a row is
        inserted as ``held``. Returns every row of ``day`` afterwards.
        """
        self._con.execute(
            "DELETE FROM iot_breaches WHERE processing_date = ? AND status = ?",
            [day, BreachStatus.HELD.value],
        )
        decided = {(r.file, r.event_index) for r in self.of_day(day)}
        now = _now()
        for b in found:
            if (b.file, b.event_index) in decided:
                continue
            row = replace(b, status=BreachStatus.HELD, detected_at=now, decided_at=None)
            self._con.execute(
                f"INSERT INTO iot_breaches ({_COLUMNS}) VALUES ({_MARKS})", list(astuple(row))
            )
        return self.of_day(day)

    def of_day(self, day: date) -> list[IotBreach]:
        """Every breach of processing date ``day``."""
        return self._rows("WHERE processing_date = ?", [day])

    def all(self) -> list[IotBreach]:
        """Every breach, by date, partner, file and event."""
        return self._rows("", [])

    def decide(
        self, keys: Sequence[tuple[date, str, int]], status: BreachStatus, reason: str | None
    ) -> None:
        """Set the status of the breaches ``keys`` (processing date, file, event index)."""
        now = _now()
        for day, file, index in keys:
            self._con.execute(
                "UPDATE iot_breaches SET status = ?, decided_at = ?, reason = ? "
                "WHERE processing_date = ? AND file = ? AND event_index = ?",
                [status.value, now, reason, day, file, index],
            )

    def _rows(self, where: str, params: list[object]) -> list[IotBreach]:
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM iot_breaches {where} {_ORDER}", params
        ).fetchall()
        return [IotBreach(*r) for r in rows]
