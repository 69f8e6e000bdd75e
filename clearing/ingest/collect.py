"""Collect: fetch every partner's new files into ``inbox/``, each fetched once.

One function for the nightly's ``collect`` step and the ``clearing collect`` verb: each partner
is tried in turn; an unreachable partner is noted and the others are still fetched.

Ingest sits below the transport package (imports run one way), so it opens no connection
itself: the run hands it the partners' connections as :class:`~clearing.stage.Sources` (in
practice :class:`clearing.transport.settings.Transports`, built from ``[transport]`` by the
pipeline or the CLI). Anything with ``poll`` / ``fetch`` / ``release`` is a
:class:`~clearing.stage.Source` (the SFTP and folder transports are).

The :class:`FetchLedger` (``fetch_ledger.duckdb``, tables of :mod:`clearing.store`) remembers
what was fetched from whom by name, size and SHA-256, so a file is fetched once however often
it is polled. A remote file whose name, size and mtime are known is downloaded and hashed
again during ``recheck_days`` after its fetch (``[transport] recheck_days``, default 7): other
bytes under the same name, size and mtime are then a new delivery; after that it is trusted
by name, size and mtime (bounded cost: a kept file is re-read at most that many nights).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from clearing._io import file_sha256
from clearing.errors import LedgerError, TransportError
from clearing.stage import Remote, Source, Sources
from clearing.store import FetchedFile, open_ledger

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "Collected",
    "FetchLedger",
    "FetchedFile",
    "Remote",
    "Source",
    "Sources",
    "collect",
    "collect_partners",
]

log = logging.getLogger("clearing.transport")


class FetchLedger:
    """What was fetched from whom, by (partner, name, size, sha256), in its own DuckDB file.

    A file is fetched again only if its bytes differ from everything fetched under that name
    from that partner. A remote file whose name, size and mtime are already known is not even
    downloaded again, once ``recheck_days`` have passed since those bytes were first fetched;
    before that it is downloaded and hashed again each time (so bytes that changed while
    name, size and mtime stayed the same are a new delivery, not silently skipped). The
    re-reading is bounded: a file kept on the server is read at most on ``recheck_days``
    nights; an archived or deleted one is gone from the listing anyway.

    Args:
        state_dir: the folder that holds the ledger file ``fetch_ledger.duckdb``.
        recheck_days: days after a fetch during which known files are hashed again (0:
            trust name, size and mtime at once, as before).
        clock: the current time (UTC; tests may pass their own).
    """

    FILE_NAME = "fetch_ledger.duckdb"
    RECHECK_DAYS = 7

    def __init__(
        self,
        state_dir: Path,
        *,
        recheck_days: int = RECHECK_DAYS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = Path(state_dir) / self.FILE_NAME
        self.recheck_days = recheck_days
        self._clock = clock if clock is not None else (lambda: datetime.now(UTC))
        with open_ledger(self.path):
            pass

    def __repr__(self) -> str:
        return f"FetchLedger({str(self.path)!r})"

    def seen(self, partner: str, remote: Remote) -> bool:
        """Whether ``remote`` can be skipped without downloading it.

        Its name, size and mtime are known from ``partner``, and those bytes were fetched
        more than ``recheck_days`` ago (or ``recheck_days`` is 0).
        """
        before = None
        if self.recheck_days > 0:
            before = self._clock() - timedelta(days=self.recheck_days)
        with open_ledger(self.path) as ledger:
            return ledger.fetched.seen(
                partner, remote.name, remote.size, remote.mtime, fetched_before=before
            )

    def has(self, partner: str, name: str, size: int, sha256: str) -> bool:
        """Whether exactly these bytes were fetched from ``partner`` under ``name``."""
        with open_ledger(self.path) as ledger:
            return ledger.fetched.has(partner, name, size, sha256)

    def record(self, partner: str, remote: Remote, sha256: str, local_path: Path) -> None:
        """Remember a fetched file (or the new mtime of bytes fetched before)."""
        with open_ledger(self.path) as ledger, ledger.transaction():
            ledger.fetched.record(
                partner, remote.name, remote.size, sha256, remote.mtime, local_path
            )

    def entries(self, partner: str | None = None) -> list[FetchedFile]:
        """All rows (of one partner), in fetch order."""
        with open_ledger(self.path) as ledger:
            return ledger.fetched.entries(partner)


def collect(
    partner: str,
    transport: Source,
    pattern: str,
    inbox_dir: Path,
    ledger: FetchLedger,
) -> list[Path]:
    """Fetch the partner's new files into ``inbox_dir``; return their paths (by name).

    For each remote file matching ``pattern``: skip it if the ledger knows it; otherwise
    download it into ``inbox_dir/.partial/``, hash it, and if these bytes are new move it into
    ``inbox_dir`` (atomic rename) and record it. Only then does the remote after-fetch action
    (archive / delete) run, so a crash at any point loses nothing and fetches nothing twice.

    Raises:
        TransportError: from the transport.
        LedgerError: ``inbox_dir`` already holds a different file of the same name.
    """
    inbox_dir = Path(inbox_dir)
    staging = inbox_dir / ".partial"
    fetched: list[Path] = []
    for remote in transport.poll(pattern):
        if ledger.seen(partner, remote):
            transport.release(remote.name)
            continue
        staged = transport.fetch(remote.name, staging, release=False)
        sha256, size = file_sha256(staged)
        if ledger.has(partner, remote.name, size, sha256):
            staged.unlink()
            ledger.record(partner, remote, sha256, inbox_dir / remote.name)
            transport.release(remote.name)
            log.info(
                "%s: `%s` unchanged (touched on the server), not fetched again",
                partner,
                remote.name,
            )
            continue
        final = inbox_dir / remote.name
        if final.exists() and file_sha256(final)[0] != sha256:
            staged.unlink()
            msg = (
                f"`{remote.name}` from {partner} ({transport.where}) differs from the file of "
                f"the same name already in `{inbox_dir}`; let the current one be processed (or "
                "move it away) and collect again"
            )
            raise LedgerError(msg)
        staged.replace(final)
        ledger.record(partner, remote, sha256, final)
        transport.release(remote.name)
        log.info("%s: fetched `%s` (%d bytes) from %s", partner, remote.name, size, transport.where)
        fetched.append(final)
    return fetched


@dataclass(frozen=True)
class Collected:
    """What :func:`collect_partners` did.

    Attributes:
        partners: the partners tried, in order.
        fetched: the files fetched into the inbox, in the order they came.
        unreachable: ``(partner, error)`` of each partner that could not be collected from.
    """

    partners: list[str]
    fetched: list[Path] = field(default_factory=list)
    unreachable: list[tuple[str, TransportError]] = field(default_factory=list)


def collect_partners(
    workdir: Path,
    sources: Sources,
    *,
    partners: Sequence[str] | None = None,
) -> Collected:
    """Fetch the new files of ``partners`` (default: every connected one) into ``inbox/``.

    Args:
        workdir: the work folder (``inbox/``, the fetch ledger; relative key paths).
        sources: the partners' connections.
        partners: only these partner codes, in this order.

    Raises:
        ConfigError: an unknown partner.
        LedgerError: the inbox already holds a different file of a fetched name.
    """
    names = list(partners) if partners else sorted(sources.partners)
    result = Collected(names)
    if not names:
        return result
    ledger = FetchLedger(
        workdir, recheck_days=getattr(sources, "recheck_days", FetchLedger.RECHECK_DAYS)
    )
    for code in names:
        cfg = sources.partner(code)
        try:
            with sources.transport_for(code, workdir) as transport:
                result.fetched.extend(
                    collect(code, transport, cfg.pattern, workdir / "inbox", ledger)
                )
        except TransportError as exc:
            result.unreachable.append((code, exc))
    return result
