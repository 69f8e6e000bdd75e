"""The outbox: every file we send, its bytes' hash and its state, in DuckDB (table ``outbox``).

A file is registered once it is generated; it is then sent, acknowledged by the partner
and closed::

    generated ──send──▶ sent ──▶ acknowledged ──▶ closed
        │                ▲
        └──(error)──▶ failed ──send again──┘

The rule that matters: a name is bound to its bytes for ever. Registering the same name with
other bytes is refused, and every send (first, retry or resend) checks that the local file
still hashes to the registered value, so nothing is ever sent twice with different bytes.

One exception, by TD.57: a TAP-out a partner returned as a whole (a fatal return in its RAP)
is corrected and sent again under its own name and FSN. Once that return is resubmitted
(``clearing returns resubmit``, carried out by a night), the name may be registered once with
the corrected bytes: the returned bytes must be kept at
:func:`~clearing.store.returned_copy` (``out/tap/returned/<name>.<sha12>``) and their outbox
row is kept as a version (``outbox_versions``); the entry starts again as ``generated``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clearing.errors import ClearingError
from clearing.store import OutboxEntry, OutboxState, open_store, returned_copy
from clearing.transport._base import file_sha256
from clearing.transport._db import LedgerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from clearing.transport._base import Transport

__all__ = ["LedgerError", "Outbox", "OutboxEntry", "OutboxState", "SendReport"]

log = logging.getLogger("clearing.transport")

# The moves `Outbox.mark` allows (staying put is always allowed).
_MOVES: dict[OutboxState, frozenset[OutboxState]] = {
    OutboxState.GENERATED: frozenset({OutboxState.SENT, OutboxState.FAILED, OutboxState.CLOSED}),
    OutboxState.FAILED: frozenset({OutboxState.GENERATED, OutboxState.SENT, OutboxState.CLOSED}),
    OutboxState.SENT: frozenset({OutboxState.ACKNOWLEDGED, OutboxState.FAILED, OutboxState.CLOSED}),
    OutboxState.ACKNOWLEDGED: frozenset({OutboxState.CLOSED}),
    OutboxState.CLOSED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class SendReport:
    """What one `Outbox.send_due` did.

    Attributes:
        sent: names sent, in order.
        failed: ``(name, error message)`` of the files that could not be sent.
    """

    sent: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed


class Outbox:
    """The outbox ledger in the DuckDB file ``db_path`` (table ``outbox``, created if missing).

    Args:
        db_path: the DuckDB database file (normally the work folder's ``clearing.duckdb``).
    """

    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        with open_store(self.path):
            pass

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> OutboxEntry:
        """The entry of ``name``; `LedgerError` if the outbox does not know it."""
        entry = self._find(name)
        if entry is None:
            msg = f"`{name}` is not in the outbox `{self.path}`: check the name (see `status`)"
            raise LedgerError(msg)
        return entry

    def entries(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        """All entries (in one state), by registration time then name."""
        with open_store(self.path) as store:
            return store.outbox.entries(state)

    def due(self) -> list[OutboxEntry]:
        """Entries to send: ``generated`` or ``failed``, by registration time then name."""
        with open_store(self.path) as store:
            return store.outbox.due()

    # -- writing ---------------------------------------------------------------------------

    def register(self, path: Path, partner: str, kind: str) -> OutboxEntry:
        """Register a generated file (state ``generated``); return its entry.

        Registering the same name with the same bytes, partner and kind again is a no-op.
        Other bytes under a registered name replace it only for a fatally returned file
        being resubmitted (see the module's docstring), once per fatal return.

        Raises:
            LedgerError: the name is registered with other bytes (or for another partner or
                kind), or the file cannot be read; a replaced file's bytes are not kept.
        """
        path = Path(path)
        sha256, size = _hash(path)
        existing = self._find(path.name)
        if existing is not None:
            if (existing.sha256, existing.partner, existing.kind) == (sha256, partner, kind):
                return existing
            same = (existing.partner, existing.kind) == (partner, kind)
            if existing.sha256 != sha256 and same and self._replace(existing, path, sha256, size):
                return self.get(path.name)
            if existing.sha256 != sha256:
                msg = (
                    f"`{path.name}` is already in the outbox with other bytes (sha256 "
                    f"{existing.sha256[:12]}…, {existing.size} bytes, {existing.state}) than "
                    f"`{path}` (sha256 {sha256[:12]}…, {size} bytes): a file name is never "
                    "sent with different bytes; generate the file under a new name (next "
                    "sequence number) instead"
                )
            else:
                msg = (
                    f"`{path.name}` is already in the outbox for partner {existing.partner} "
                    f"({existing.kind}), not {partner} ({kind}): check the partner and kind"
                )
            raise LedgerError(msg)
        with open_store(self.path) as store, store.transaction():
            store.outbox.insert(
                name=path.name,
                partner=partner,
                kind=kind,
                sha256=sha256,
                size=size,
                local_path=path.resolve(),
            )
        return self.get(path.name)

    def _replace(self, existing: OutboxEntry, path: Path, sha256: str, size: int) -> bool:
        """Replace a fatally returned file by its resubmission; False: not one."""
        with open_store(self.path) as store:
            item = store.returns_in.replacing(existing.name)
            if item is None:
                return False
            kept = returned_copy(path, existing.sha256)
            try:
                kept_sha, _ = _hash(kept)
            except LedgerError:
                kept_sha = None
            if kept_sha != existing.sha256:
                msg = (
                    f"`{existing.name}` was returned by {item.rap_file} (fatal) and is resent "
                    f"with other bytes, but the returned bytes (sha256 {existing.sha256[:12]}…) "
                    f"are not kept at `{kept}`: put them back there and run again"
                )
                raise LedgerError(msg)
            with store.transaction():
                store.outbox.replace(
                    existing.name,
                    sha256=sha256,
                    size=size,
                    local_path=path.resolve(),
                    kept_at=kept.resolve(),
                    rap_file=item.rap_file,
                    item=item.item,
                )
        log.info(
            "outbox: `%s` replaced by its resubmission after the fatal return %s item %d "
            "(returned bytes kept at %s)",
            existing.name,
            item.rap_file,
            item.item,
            kept,
        )
        return True

    def mark(self, name: str, state: OutboxState | str, *, error: str | None = None) -> OutboxEntry:
        """Move ``name`` to ``state`` (e.g. ``acknowledged`` when the partner's ACK arrives).

        Raises:
            LedgerError: unknown name, unknown state, or a move the life cycle does not
                allow (``closed`` is final; ``acknowledged`` only goes to ``closed``).
        """
        try:
            target = OutboxState(state)
        except ValueError:
            msg = f"unknown outbox state `{state}`: use one of {', '.join(OutboxState)}"
            raise LedgerError(msg) from None
        entry = self.get(name)
        if target == entry.state and target != OutboxState.FAILED:
            return entry  # staying put: nothing to stamp again
        if target != entry.state and target not in _MOVES[entry.state]:
            msg = f"`{name}` cannot go from {entry.state} to {target} in the outbox"
            raise LedgerError(msg)
        with open_store(self.path) as store, store.transaction():
            store.outbox.set_state(name, target, error=error)
        return self.get(name)

    # -- sending ---------------------------------------------------------------------------

    def send_due(self, transport_for_partner: Callable[[str], Transport]) -> SendReport:
        """Send every due file with its partner's transport; failures are kept, not raised.

        One transport per partner is asked for (and closed at the end). A file whose local
        bytes no longer match the registered hash is not sent: it is marked ``failed`` with
        the reason.
        """
        sent: list[str] = []
        failed: list[tuple[str, str]] = []
        transports: dict[str, Transport | ClearingError] = {}
        try:
            for entry in self.due():
                if entry.partner not in transports:
                    try:
                        transports[entry.partner] = transport_for_partner(entry.partner)
                    except ClearingError as exc:
                        transports[entry.partner] = exc
                transport = transports[entry.partner]
                try:
                    if isinstance(transport, ClearingError):
                        raise transport
                    self._send(entry, transport)
                except ClearingError as exc:
                    log.error(
                        "outbox: `%s` for %s not sent: %s",
                        entry.name,
                        entry.partner,
                        exc,
                        extra={"severity": exc.exit_code.severity},
                    )
                    self._failed(entry, str(exc))
                    failed.append((entry.name, str(exc)))
                else:
                    sent.append(entry.name)
        finally:
            for transport in transports.values():
                if not isinstance(transport, ClearingError):
                    transport.close()
        return SendReport(sent=tuple(sent), failed=tuple(failed))

    def resend(self, name: str, transport: Transport) -> OutboxEntry:
        """Send ``name`` again, with exactly the registered bytes.

        A ``generated`` or ``failed`` file becomes ``sent``; an acknowledged or closed file
        keeps its state (the partner asked for a copy).

        Raises:
            LedgerError: unknown name, or the local file changed since it was registered.
            TransportError: the transfer failed (recorded in ``last_error``).
        """
        entry = self.get(name)
        try:
            self._send(entry, transport)
        except ClearingError as exc:
            self._failed(entry, str(exc), keep_state=entry.state != OutboxState.GENERATED)
            raise
        return self.get(name)

    def _send(self, entry: OutboxEntry, transport: Transport) -> None:
        sha256, size = _hash(entry.local_path)
        if sha256 != entry.sha256:
            msg = (
                f"`{entry.local_path}` changed since it was registered (sha256 {sha256[:12]}…, "
                f"{size} bytes, registered {entry.sha256[:12]}…, {entry.size} bytes): refusing "
                f"to send `{entry.name}` with different bytes; restore the original file or "
                "generate a new one under a new name"
            )
            raise LedgerError(msg)
        transport.put(entry.local_path, entry.name)
        state = entry.state
        if state in {OutboxState.GENERATED, OutboxState.FAILED}:
            state = OutboxState.SENT
        with open_store(self.path) as store, store.transaction():
            store.outbox.record_sent(entry.name, state, destination=transport.where)
        log.info("outbox: sent `%s` to %s (%s)", entry.name, entry.partner, transport.where)

    def _failed(self, entry: OutboxEntry, error: str, *, keep_state: bool = False) -> None:
        state = entry.state if keep_state else OutboxState.FAILED
        with open_store(self.path) as store, store.transaction():
            store.outbox.record_failure(entry.name, state, error=error)

    def _find(self, name: str) -> OutboxEntry | None:
        with open_store(self.path) as store:
            return store.outbox.find(name)


def _hash(path: Path) -> tuple[str, int]:
    try:
        return file_sha256(path)
    except OSError as exc:
        msg = f"cannot read outbound file `{path}` ({exc.strerror}); was it moved or deleted?"
        raise LedgerError(msg) from None
