"""Sent history: which processing dates and partners have a file registered in the outbox.

Once day ``D``'s outbound file for partner ``P`` (TAP-out, Notification or CIBER-out, a row of
``outbound_files``) is registered in the ``outbox``, ``D`` / ``P`` is *sent*: its file is never
rewritten, on disk or in the lake rows behind it (``lake/rated_visitors/date=D/partner=P``).
A replay of ``D`` re-rates ``P``'s records into a separate re-rate result and a delta
(:mod:`clearing.rating.run`); the outbound stage leaves the file alone and checks that its bytes
still hash to the outbox's SHA-256 (:mod:`clearing.outbound.run`).

:func:`is_sent` and :func:`sent_partners` answer for a work folder (or an open
:class:`~clearing.store.db.Store`); :class:`SentHistory` is the typed read over the two tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

    import duckdb

    from clearing.store.db import Store

__all__ = ["SentFile", "SentHistory", "is_sent", "sent_files", "sent_partners"]


@dataclass(frozen=True, slots=True)
class SentFile:
    """One outbound file registered in the outbox (what was sent, or is about to be).

    Attributes:
        name: the file name (outbox and ``outbound_files`` key).
        partner: the recipient.
        kind: ``transferBatch`` | ``notification`` | ``ciber``.
        processing_date: the processing date the file belongs to.
        sha256: the outbox's hash of the bytes (what the file on disk must still hash to).
        local_path: where the outbox reads the file from.
        path: where the outbound stage wrote it (``outbound_files.path``).
        sequence_number: its FSN (TAP) or first batch sequence number (CIBER).
        events: events in the file.
        total_charge: the file's total charge (at ``charge_scale``, in ``currency``).
        total_tax: the file's total tax.
        charge_scale: the decimals of ``total_charge``.
        currency: the file's (TAP) currency.
    """

    name: str
    partner: str
    kind: str
    processing_date: date
    sha256: str
    local_path: Path
    path: Path
    sequence_number: int
    events: int
    total_charge: int
    total_tax: int
    charge_scale: int | None
    currency: str | None


class SentHistory:
    """Typed read of ``outbound_files`` joined with ``outbox`` (the sent files)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def files(self, day: date, partner: str | None = None) -> list[SentFile]:
        """The sent files of processing date ``day`` (of ``partner``), by name."""
        where, params = "o.processing_date = ?", [day]
        if partner is not None:
            where += " AND o.partner = ?"
            params.append(partner)  # type: ignore[arg-type]
        rows = self._con.execute(
            "SELECT o.file_name, o.partner, o.kind, o.processing_date, x.sha256, x.local_path, "
            "o.path, o.sequence_number, o.events, o.total_charge, o.total_tax, o.charge_scale, "
            "o.currency "
            "FROM outbound_files o JOIN outbox x ON x.name = o.file_name "
            f"WHERE {where} ORDER BY o.file_name",
            params,
        ).fetchall()
        return [
            SentFile(
                name=str(r[0]),
                partner=str(r[1]),
                kind=str(r[2]),
                processing_date=r[3],
                sha256=str(r[4]),
                local_path=Path(r[5]),
                path=Path(r[6]),
                sequence_number=int(r[7]),
                events=int(r[8]),
                total_charge=int(r[9]),
                total_tax=int(r[10]),
                charge_scale=None if r[11] is None else int(r[11]),
                currency=None if r[12] is None else str(r[12]),
            )
            for r in rows
        ]

    def partners(self, day: date) -> frozenset[str]:
        """The partners with a sent file of processing date ``day``."""
        return frozenset(f.partner for f in self.files(day))


def _history(where: Store | Path) -> tuple[Store | None, bool]:
    """An open store for ``where`` (and whether this call opened it); None: no state file."""
    from clearing.store.db import Store, open_store
    from clearing.store.schema import STATE

    if isinstance(where, Store):
        return where, False
    path = Path(where)
    db = path / STATE.file if path.is_dir() else path
    if not db.exists():  # nothing was ever registered
        return None, False
    return open_store(db), True


def sent_files(where: Store | Path, day: date, partner: str | None = None) -> list[SentFile]:
    """The files of ``day`` (for ``partner``) registered in the outbox, by name.

    Args:
        where: a work folder, its ``clearing.duckdb``, or an open store.
        day: the processing date.
        partner: only this partner's (None: every partner's).

    Raises:
        StoreError: the state file cannot be opened.
    """
    store, opened = _history(where)
    if store is None:
        return []
    try:
        return SentHistory(store.con).files(day, partner)
    finally:
        if opened:
            store.close()


def sent_partners(where: Store | Path, day: date) -> frozenset[str]:
    """The partners for which day ``day`` is sent (see :func:`is_sent`).

    Raises:
        StoreError: the state file cannot be opened.
    """
    return frozenset(f.partner for f in sent_files(where, day))


def is_sent(where: Store | Path, day: date, partner: str) -> bool:
    """True once day ``day``'s outbound file for ``partner`` is registered in the outbox.

    A sent day / partner is never rewritten: not its file, not its rated rows.

    Args:
        where: a work folder, its ``clearing.duckdb``, or an open store.
        day: the processing date.
        partner: the partner (TADIG or SID/BID).

    Raises:
        StoreError: the state file cannot be opened.
    """
    return bool(sent_files(where, day, partner))
