"""The ``outbox`` table: every file we send, its bytes' hash and its state.

The life cycle and its rules (a name is bound to its bytes for ever) are
:class:`clearing.transport.outbox.Outbox`'s; this module only reads and writes the rows.
The one exception to the rule, a fatally returned TAP-out resent under its name, keeps the
replaced version in ``outbox_versions`` (:meth:`OutboxTable.replace`) and its bytes at
:func:`returned_copy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

__all__ = ["OutboxEntry", "OutboxState", "OutboxTable", "OutboxVersion", "returned_copy"]

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


@dataclass(frozen=True, slots=True)
class OutboxVersion:
    """A version of an outbox file replaced by other bytes under the same name (UTC stamps)."""

    name: str
    version: int
    sha256: str
    size: int
    local_path: Path
    state: str
    sent_at: datetime | None
    replaced_at: datetime
    replaced_by: str
    rap_file: str
    item: int


def returned_copy(path: Path, sha256: str) -> Path:
    """Where the bytes of a fatally returned file are kept: ``returned/<name>.<sha12>``.

    Args:
        path: the file's place (``out/tap/<name>``).
        sha256: the hash of the returned bytes.
    """
    return path.parent / "returned" / f"{path.name}.{sha256[:12]}"


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

    def replace(
        self,
        name: str,
        *,
        sha256: str,
        size: int,
        local_path: Path,
        kept_at: Path,
        rap_file: str,
        item: int,
    ) -> None:
        """``name`` now holds other bytes (``generated`` again); the old version is kept.

        The current row goes to ``outbox_versions`` (with ``kept_at``, where its bytes now
        are, and the fatal return ``rap_file`` / ``item`` that allowed it); the row then holds
        the new bytes, registered now, never sent.
        """
        self._con.execute(
            "INSERT INTO outbox_versions (name, version, partner, kind, sha256, size, "
            "local_path, state, attempts, destination, registered_at, sent_at, replaced_at, "
            "replaced_by, rap_file, item) "
            "SELECT name, (SELECT count(*) + 1 FROM outbox_versions v WHERE v.name = o.name), "
            "partner, kind, sha256, size, ?, state, attempts, destination, registered_at, "
            "sent_at, ?, ?, ?, ? FROM outbox o WHERE name = ?",
            [str(kept_at), _now(), sha256, rap_file, item, name],
        )
        self._con.execute(
            "UPDATE outbox SET sha256 = ?, size = ?, local_path = ?, state = 'generated', "
            "attempts = 0, last_error = NULL, destination = NULL, registered_at = ?, "
            "sent_at = NULL, acknowledged_at = NULL, closed_at = NULL WHERE name = ?",
            [sha256, size, str(local_path), _now(), name],
        )

    def versions(self, name: str) -> list[OutboxVersion]:
        """The replaced versions of ``name``, oldest first."""
        rows = self._con.execute(
            "SELECT name, version, sha256, size, local_path, state, sent_at, replaced_at, "
            "replaced_by, rap_file, item FROM outbox_versions WHERE name = ? ORDER BY version",
            [name],
        ).fetchall()
        return [
            OutboxVersion(
                name=r[0],
                version=int(r[1]),
                sha256=r[2],
                size=int(r[3]),
                local_path=Path(r[4]),
                state=r[5],
                sent_at=_utc(r[6]),
                replaced_at=r[7].replace(tzinfo=UTC),
                replaced_by=r[8],
                rap_file=r[9],
                item=int(r[10]),
            )
            for r in rows
        ]

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
