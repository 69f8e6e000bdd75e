"""The fetch ledger's ``fetched`` table, in ``fetch_ledger.duckdb``.

What was fetched from whom, by (partner, name, size, sha256).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["Fetched", "FetchedFile"]


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """One row of the fetch ledger: a file that was fetched from a partner."""

    partner: str
    name: str
    size: int
    sha256: str
    mtime: int
    local_path: Path
    fetched_at: datetime


class Fetched:
    """Typed access to ``fetched``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def seen(
        self,
        partner: str,
        name: str,
        size: int,
        mtime: int,
        *,
        fetched_before: datetime | None = None,
    ) -> bool:
        """Whether a file of this name, size and mtime was fetched from ``partner``.

        Args:
            partner: the partner's code.
            name: the remote name.
            size: its size in bytes.
            mtime: its remote modification time.
            fetched_before: only rows first fetched at or before this time (UTC) count.
        """
        query = "SELECT 1 FROM fetched WHERE partner = ? AND name = ? AND size = ? AND mtime = ?"
        params: list[object] = [partner, name, size, mtime]
        if fetched_before is not None:
            query += " AND fetched_at <= ?"
            params.append(fetched_before.astimezone(UTC).replace(tzinfo=None))
        return self._con.execute(query, params).fetchone() is not None

    def has(self, partner: str, name: str, size: int, sha256: str) -> bool:
        """Whether exactly these bytes were fetched from ``partner`` under ``name``."""
        row = self._con.execute(
            "SELECT 1 FROM fetched WHERE partner = ? AND name = ? AND size = ? AND sha256 = ?",
            [partner, name, size, sha256],
        ).fetchone()
        return row is not None

    def record(
        self, partner: str, name: str, size: int, sha256: str, mtime: int, local_path: Path
    ) -> None:
        """Remember a fetched file now (or the new mtime of bytes fetched before)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        self._con.execute(
            """
            INSERT INTO fetched (partner, name, size, sha256, mtime, local_path, fetched_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (partner, name, size, sha256) DO UPDATE SET mtime = excluded.mtime
            """,
            [partner, name, size, sha256, mtime, str(local_path), now],
        )

    def entries(self, partner: str | None = None) -> list[FetchedFile]:
        """All rows (of one partner), in fetch order."""
        query = "SELECT partner, name, size, sha256, mtime, local_path, fetched_at FROM fetched"
        params: list[str] = []
        if partner is not None:
            query += " WHERE partner = ?"
            params.append(partner)
        rows = self._con.execute(query + " ORDER BY fetched_at, partner, name", params).fetchall()
        return [
            FetchedFile(p, n, s, h, m, Path(lp), at.replace(tzinfo=UTC))
            for p, n, s, h, m, lp, at in rows
        ]
