"""Collect: fetch every partner's new files into ``inbox/``, each fetched once, each decided.

One function for the nightly's ``collect`` step and the ``clearing collect`` verb: each partner
is tried in turn; an unreachable partner is noted and the others are still fetched.

Each listed entry is decided on its own, and one bad entry never stops the others:

* **fetched** into ``inbox/`` (the claim step decides it further, by name and content);
* **quarantined** into ``failed/<D>/`` with a reason file (:func:`~clearing.ingest.fates.
  quarantine`): a name that is not a safe local file name (non-ASCII, control characters,
  longer than 200 characters); a channel whose code is not a ``[partners]`` entry (fails
  closed); a name whose sender is not the channel's partner or whose recipient is not us
  (*provenance by name*, :class:`Provenance`); a name ``inbox/`` already holds with other bytes,
  not yet processed;
* **refused**: the transport cannot fetch it at all (``Remote.problem``, or ``fetch`` raises
  :class:`~clearing.errors.RemoteEntryError`): left on the server, a problem of that entry
  only (exit 1), reported new the first night and "still refused since" after.

Quarantined bytes are recorded in the fetch ledger like fetched ones, so a file the partner
keeps on its server is not fetched and quarantined again every night.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from clearing import config
from clearing._io import file_sha256
from clearing.errors import RemoteEntryError, TransportError
from clearing.ingest.fates import Fate, quarantine, record_fate, refused_since
from clearing.names import (
    STORED_NAME_MAX,
    AckName,
    CiberName,
    RapName,
    TapName,
    printable_name,
    stored_name,
)
from clearing.stage import Remote, Source, Sources
from clearing.store import FetchedFile, open_ledger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import date

    from clearing.store import LedgerStore

__all__ = [
    "FETCH_NAME_MAX_BYTES",
    "Collected",
    "FetchLedger",
    "FetchedFile",
    "Provenance",
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
        self._open: LedgerStore | None = None
        with open_ledger(self.path):
            pass

    @contextmanager
    def session(self) -> Iterator[FetchLedger]:
        """Keep the ledger file open until the block ends.

        A night's collect opens it once, not once per listed entry: opening it was most of the
        cost of an entry already known, and the entries listed grow with what partners keep
        on their servers.
        """
        if self._open is not None:
            yield self
            return
        with open_ledger(self.path) as store:
            self._open = store
            try:
                yield self
            finally:
                self._open = None

    @contextmanager
    def _ledger(self) -> Iterator[LedgerStore]:
        if self._open is not None:
            yield self._open
        else:
            with open_ledger(self.path) as store:
                yield store

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
        with self._ledger() as ledger:
            return ledger.fetched.seen(
                partner, remote.name, remote.size, remote.mtime, fetched_before=before
            )

    def has(self, partner: str, name: str, size: int, sha256: str) -> bool:
        """Whether exactly these bytes were fetched from ``partner`` under ``name``."""
        with self._ledger() as ledger:
            return ledger.fetched.has(partner, name, size, sha256)

    def record(self, partner: str, remote: Remote, sha256: str, local_path: Path) -> None:
        """Remember a fetched file (or the new mtime of bytes fetched before)."""
        with self._ledger() as ledger, ledger.transaction():
            ledger.fetched.record(
                partner, remote.name, remote.size, sha256, remote.mtime, local_path
            )

    def entries(self, partner: str | None = None) -> list[FetchedFile]:
        """All rows (of one partner), in fetch order."""
        with self._ledger() as ledger:
            return ledger.fetched.entries(partner)


@dataclass(frozen=True)
class Provenance:
    """Who may deliver what through a partner's channel: provenance by name.

    A channel is a ``[transport.partners.X]`` table; its key ``X`` is the partner's code
    (TADIG for TAP, SID/BID for CIBER) and must be a ``[partners]`` entry, else every file it
    delivers is quarantined (an empty ``[partners]`` table turns nothing off). The sender a
    file's name claims (TAP / Notification ``CD|TD``, RAP ``RC|RT``, ACK ``AC|AT``: the TADIG
    after the prefix; CIBER ``CIBER_<from>_...``) must be the channel's partner and its
    recipient must be us (``[home] tadig``; CIBER: ``[home] sid_bid``). A name of no known
    kind is not decided here (the claim step decides it by name and content).

    Attributes:
        tadig: our TADIG code.
        sid_bid: our CIBER SID/BID (None: we clear no CIBER).
        partners: the codes of ``[partners]``.
    """

    tadig: str
    sid_bid: str | None
    partners: frozenset[str]

    @classmethod
    def of(cls, settings: config.Settings) -> Provenance:
        """The provenance rules of a deployment's settings."""
        return cls(settings.home.tadig, settings.home.sid_bid, frozenset(settings.partners))

    def problem(self, channel: str, name: str) -> tuple[str, str] | None:
        """``(reason, hint)`` when ``channel`` may not deliver ``name``, else None."""
        if channel not in self.partners:
            return (
                f"delivered by {channel}'s channel, and {channel} is not a partner "
                f"(no [partners.{channel}] in {config.CONFIG_NAME})",
                f"if {channel} is a partner, add [partners.{channel}] (its channel key must be "
                f"its TADIG or SID/BID) and move the file into inbox/; otherwise remove "
                f"[transport.partners.{channel}]",
            )
        claim = _sender_recipient(name)
        if claim is None:
            return None
        sender, recipient, ciber = claim
        if sender != channel:
            return (
                f"delivered by {channel}'s channel, claims {sender}",
                f"ask {channel} why it delivered {sender}'s file; {sender}'s own channel is "
                "not affected",
            )
        ours = self.sid_bid if ciber else self.tadig
        if recipient != ours:
            us = (
                f"us ({ours})"
                if ours
                else f"us (no [home] sid_bid in {config.CONFIG_NAME}: we clear no CIBER)"
            )
            return (
                f"addressed to {recipient}, not to {us}",
                f"ask {channel} why it sent us a file for {recipient}; nothing of it was processed",
            )
        return None


def _sender_recipient(name: str) -> tuple[str, str, bool] | None:
    """(sender, recipient, CIBER?) a partner file's name claims, None for other names."""
    tap = TapName.parse(name) or RapName.parse(name) or AckName.parse(name)
    if tap is not None:
        return tap.sender, tap.recipient, False
    ciber = CiberName.parse(name)
    if ciber is not None:
        return ciber.sender, ciber.recipient, True
    return None


#: The longest name (UTF-8 bytes) a fetch can stage locally: ``.{name}.part`` fits 255 bytes.
FETCH_NAME_MAX_BYTES = 249


def _unfetchable(name: str) -> str | None:
    """Why an entry of this name cannot be fetched into a local folder at all, else None."""
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        return f"the name `{printable_name(name)}` is not a plain file name"
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > FETCH_NAME_MAX_BYTES:
        return (
            f"the name is {size} bytes long, too long to be stored here "
            f"(at most {FETCH_NAME_MAX_BYTES})"
        )
    return None


def _unsafe(name: str) -> str | None:
    """Why ``name`` is not a safe local file name (it is quarantined under another), else None."""
    if not name.isascii():
        return "not ASCII"
    if not name.isprintable():
        return "control characters"
    if len(name) > STORED_NAME_MAX:
        return f"longer than {STORED_NAME_MAX} characters"
    return None


@dataclass(frozen=True, slots=True)
class _Key:
    """A remote entry as the fetch ledger keys it: by its stored (safe) name."""

    name: str
    size: int
    mtime: int
    problem: str | None = None


@dataclass(frozen=True)
class Collected:
    """What :func:`collect_partners` (or :func:`collect`) did.

    Attributes:
        partners: the partners tried, in order.
        fetched: the files fetched into the inbox, in the order they came.
        unreachable: ``(partner, error)`` of each partner that could not be collected from.
        quarantined: the fates of the entries set aside into ``failed/<D>/``.
        refused: the fates of the entries left on the server (new and still refused).
        problems: one line per new quarantined or refused entry (an anomaly, exit 1).
        still_refused: one line per entry refused on earlier nights too (not an anomaly).
    """

    partners: list[str]
    fetched: list[Path] = field(default_factory=list)
    unreachable: list[tuple[str, TransportError]] = field(default_factory=list)
    quarantined: list[Fate] = field(default_factory=list)
    refused: list[Fate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    still_refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Night:
    """What one partner's collect needs besides its connection."""

    inbox: Path
    wd: config.WorkDir
    day: date
    provenance: Provenance | None
    ledger: FetchLedger
    into: Collected


def collect(
    partner: str,
    transport: Source,
    pattern: str,
    inbox_dir: Path,
    ledger: FetchLedger,
    *,
    day: date | None = None,
    provenance: Provenance | None = None,
    into: Collected | None = None,
) -> list[Path]:
    """Fetch the partner's new files into ``inbox_dir``; decide every listed entry on its own.

    For each remote entry matching ``pattern``: refuse it (a fate, left on the server) when
    the transport says it cannot be fetched; skip it if the ledger knows it; otherwise
    download it into ``inbox_dir/.partial/`` and hash it. Bytes fetched before under that name
    are dropped; others are quarantined into ``failed/<day>/`` when their name is unsafe, the
    channel is not a partner's, the name's sender or recipient is wrong
    (:class:`Provenance`) or ``inbox_dir`` holds other bytes under that name; else moved into
    ``inbox_dir`` (atomic rename). The ledger records both, and only then does the remote
    after-fetch action (archive / delete) run, so a crash at any point loses nothing and
    fetches nothing twice.

    Args:
        partner: the channel's partner code (its ``[transport.partners.X]`` key).
        transport: the connection.
        pattern: which remote names to list.
        inbox_dir: the work folder's ``inbox/`` (its parent is the work folder: ``failed/``,
            the fates).
        ledger: the fetch ledger.
        day: the processing date (``failed/<day>/``, the fates' date); default today (UTC).
        provenance: who may deliver what (:func:`collect_partners` always passes the
            deployment's); None checks no names' senders (a transport's own tests).
        into: where the quarantined and refused entries and the problems are added.

    Returns:
        The files fetched into ``inbox_dir``, in the order they came.

    Raises:
        TransportError: from the transport (the partner is unreachable); the entries decided
            before are in ``into``.
    """
    inbox_dir = Path(inbox_dir)
    night = _Night(
        inbox_dir,
        config.WorkDir(inbox_dir.parent),
        day if day is not None else datetime.now(UTC).date(),
        provenance,
        ledger,
        into if into is not None else Collected([partner]),
    )
    start = len(night.into.fetched)
    for remote in transport.poll(pattern):
        _entry(night, partner, transport, remote)
    return night.into.fetched[start:]


def _entry(night: _Night, partner: str, transport: Source, remote: Remote) -> None:
    """Decide one listed entry: refused, skipped (known), quarantined or fetched."""
    problem = remote.problem or _unfetchable(remote.name)
    if problem is not None:
        _refuse(night, partner, transport, remote.name, problem)
        return
    key = _Key(stored_name(remote.name), remote.size, remote.mtime)
    ledger = night.ledger
    if ledger.seen(partner, key):
        _release(partner, transport, remote.name)
        return
    staging = night.inbox / ".partial"
    try:
        staged = transport.fetch(remote.name, staging, release=False)
    except RemoteEntryError as exc:
        _refuse(night, partner, transport, remote.name, str(exc))
        return
    sha256, size = file_sha256(staged)
    if ledger.has(partner, key.name, size, sha256):
        staged.unlink()
        ledger.record(partner, key, sha256, night.inbox / key.name)
        _release(partner, transport, remote.name)
        log.debug(  # every night for a file kept on the server: shown with -v only
            "%s: `%s` unchanged (touched on the server), not fetched again",
            partner,
            printable_name(remote.name),
        )
        return
    final = night.inbox / remote.name
    why = _quarantine_reason(night, partner, remote.name, final, sha256)
    if why is not None:
        fate = quarantine(
            night.wd,
            night.day,
            staged,
            partner=partner,
            reason=why[0],
            hint=why[1],
            stage="collect",
            name=remote.name,
        )
        ledger.record(partner, key, sha256, night.wd.root / (fate.path or ""))
        _release(partner, transport, remote.name)
        night.into.quarantined.append(fate)
        night.into.problems.append(
            f"collect: {partner}: quarantined `{printable_name(remote.name)}` "
            f"({fate.reason}): {fate.path}"
        )
        # a line of progress: the anomaly itself is the caller's to report (the run, the verb)
        log.info("%s: quarantined `%s`: %s", partner, printable_name(remote.name), fate.reason)
        return
    staged.replace(final)
    ledger.record(partner, key, sha256, final)
    _release(partner, transport, remote.name)
    log.info("%s: fetched `%s` (%d bytes) from %s", partner, remote.name, size, transport.where)
    night.into.fetched.append(final)


def _quarantine_reason(
    night: _Night, partner: str, name: str, final: Path, sha256: str
) -> tuple[str, str] | None:
    """``(reason, hint)`` when a fetched entry is set aside instead of going to the inbox."""
    unsafe = _unsafe(name)
    if unsafe is not None:
        return (
            f"the name `{printable_name(name)}` is not a safe file name ({unsafe})",
            f"ask {partner} to send the file again under its proper name (printable ASCII, "
            f"at most {STORED_NAME_MAX} characters); the bytes are kept here",
        )
    wrong = None if night.provenance is None else night.provenance.problem(partner, name)
    if wrong is not None:
        return wrong
    if final.exists() and file_sha256(final)[0] != sha256:
        return (
            f"inbox/ already holds a different file named `{name}`, not processed yet",
            f"let the file in inbox/ be processed first; if this one is a correction, ask "
            f"{partner} to send it under a new name (a new FSN), or once the first one is "
            "processed move this one into inbox/ to have it processed as a new delivery",
        )
    return None


def _refuse(night: _Night, partner: str, transport: Source, name: str, problem: str) -> None:
    """Record a refused entry (left on the server); an anomaly only the first night."""
    since = refused_since(night.wd, night.day, name, partner)
    reason = problem if since is None else f"{problem}; still refused since {since.isoformat()}"
    fate = record_fate(
        night.wd,
        night.day,
        Fate(
            name,
            partner,
            "refused",
            "collect",
            reason=reason,
            hint=(
                f"the entry stays on {transport.where} and is not fetched; ask {partner} to "
                "fix or remove it (it is listed as refused each night it is there)"
            ),
        ),
    )
    night.into.refused.append(fate)
    line = f"collect: {partner}: refused `{printable_name(name)}` ({reason})"
    if since is None:
        night.into.problems.append(line)
        log.info("%s", line)  # progress: the anomaly is the caller's to report
    else:
        night.into.still_refused.append(line)
        log.info("%s", line)


def _release(partner: str, transport: Source, name: str) -> None:
    """The after-fetch action; one entry that cannot be archived or deleted stops nothing."""
    try:
        transport.release(name)
    except RemoteEntryError as exc:
        log.warning(
            "%s: `%s` not released on the server: %s",
            partner,
            printable_name(name),
            exc,
            extra={"severity": exc.exit_code.severity},
        )


def collect_partners(
    workdir: Path,
    sources: Sources,
    *,
    day: date,
    settings: config.Settings | None = None,
    partners: Sequence[str] | None = None,
) -> Collected:
    """Fetch the new files of ``partners`` (default: every connected one) into ``inbox/``.

    Args:
        workdir: the work folder (``inbox/``, ``failed/``, the fetch ledger; relative paths).
        sources: the partners' connections.
        day: the processing date (where quarantined entries go, the date of their fates).
        settings: the deployment's settings (default: read from ``workdir``): provenance.
        partners: only these partner codes, in this order.

    Raises:
        ConfigError: an unknown partner.
    """
    names = list(partners) if partners else sorted(sources.partners)
    result = Collected(names)
    if not names:
        return result
    wd = config.WorkDir(Path(workdir))
    provenance = Provenance.of(settings if settings is not None else wd.settings())
    ledger = FetchLedger(
        wd.root, recheck_days=getattr(sources, "recheck_days", FetchLedger.RECHECK_DAYS)
    )
    with ledger.session():
        for code in names:
            cfg = sources.partner(code)
            try:
                with sources.transport_for(code, wd.root) as transport:
                    collect(
                        code,
                        transport,
                        cfg.pattern,
                        wd.inbox,
                        ledger,
                        day=day,
                        provenance=provenance,
                        into=result,
                    )
            except TransportError as exc:
                result.unreachable.append((code, exc))
    return result
