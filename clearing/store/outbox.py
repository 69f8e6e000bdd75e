"""The ``outbox`` table: every file we send, its bytes' hash and its state.

The life cycle and its rules (a name is bound to its bytes for ever) are
:class:`clearing.transport.outbox.Outbox`'s; this module only reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

__all__ = ["OutboxEntry", "OutboxState", "OutboxTable"]

_COLUMNS = (
    "name, partner, kind, sha256, size, local_path, state, attempts, last_error, destination, "
    "registered_at, sent_at, acknowledged_at, closed_at"
)


class OutboxState(StrEnum):
    """Where an outbound file is in its life."""

    GENERATED = "generated"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbound file as the outbox knows it (timestamps are UTC)."""

    name: str
    partner: str
    kind: str
    sha256: str
    size: int
    local_path: Path
    state: OutboxState
    attempts: int
    last_error: str | None
    destination: str | None
    registered_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    closed_at: datetime | None


_STAMPS = {
    OutboxState.SENT: "sent_at",
    OutboxState.ACKNOWLEDGED: "acknowledged_at",
    OutboxState.CLOSED: "closed_at",
}


class OutboxTable:
    """Typed access to ``outbox`` (timestamps given and returned in UTC)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def find(self, name: str) -> OutboxEntry | None:
        """The entry of ``name``, or None."""
        row = self._con.execute(f"SELECT {_COLUMNS} FROM outbox WHERE name = ?", [name]).fetchone()
        return None if row is None else _entry(row)

    def entries(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        """All entries (in one state), by registration time then name."""
        where, params = ("WHERE state = ?", [str(state)]) if state is not None else ("", [])
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY registered_at, name", params
        ).fetchall()
        return [_entry(r) for r in rows]

    def due(self) -> list[OutboxEntry]:
        """Entries to send: ``generated`` or ``failed``, by registration time then name."""
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state IN ('generated', 'failed') "
            "ORDER BY registered_at, name"
        ).fetchall()
        return [_entry(r) for r in rows]

    def insert(
        self, *, name: str, partner: str, kind: str, sha256: str, size: int, local_path: Path
    ) -> None:
        """A new ``generated`` entry, registered now."""
        self._con.execute(
            f"INSERT INTO outbox ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, 'generated', 0, NULL, NULL, ?, NULL, NULL, NULL)",
            [name, partner, kind, sha256, size, str(local_path), _now()],
        )

    def set_state(self, name: str, state: OutboxState, *, error: str | None = None) -> None:
        """Move ``name`` to ``state``, stamping the time (and the error of a failure)."""
        sets = ["state = ?"]
        params: list[Any] = [str(state)]
        stamp = _STAMPS.get(state)
        if stamp is not None:
            sets.append(f"{stamp} = ?")
            params.append(_now())
        if state == OutboxState.FAILED:
            sets.append("last_error = ?")
            params.append(error)
        self._con.execute(f"UPDATE outbox SET {', '.join(sets)} WHERE name = ?", [*params, name])

    def record_sent(self, name: str, state: OutboxState, *, destination: str) -> None:
        """One more attempt, successful: to ``destination`` now, no error, in ``state``."""
        self._con.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = NULL, "
            "destination = ?, sent_at = ? WHERE name = ?",
            [str(state), destination, _now(), name],
        )

    def record_failure(self, name: str, state: OutboxState, *, error: str) -> None:
        """One more attempt, failed with ``error``, in ``state``."""
        self._con.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ? WHERE name = ?",
            [str(state), error, name],
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    (name, partner, kind, sha256, size, local_path, state, attempts, last_error, destination) = row[
        :10
    ]
    registered_at, sent_at, acknowledged_at, closed_at = row[10:]
    return OutboxEntry(
        name=name,
        partner=partner,
        kind=kind,
        sha256=sha256,
        size=size,
        local_path=Path(local_path),
        state=OutboxState(state),
        attempts=attempts,
        last_error=last_error,
        destination=destination,
        registered_at=registered_at.replace(tzinfo=UTC),
        sent_at=_utc(sent_at),
        acknowledged_at=_utc(acknowledged_at),
        closed_at=_utc(closed_at),
    )
