"""The package's exceptions.

Every error the package raises on purpose derives from :class:`ClearingError`::

    ClearingError
    ├── DecodeError        bytes that are not what they claim to be (file, offset, path)
    ├── EncodeError        records that cannot be written in the requested format
    ├── MissingInputError  a stage's input is not there: an earlier stage has not run (1)
    ├── ValueRangeError    a sum or a product of accepted values beyond what can be stored (1)
    ├── LedgerError        the outbox / fetch ledger refuses: other bytes under a known name (1)
    ├── ConfigError        bad or missing configuration (CLI exit code 2)
    │   └── FaultError     the file system refused: disk full, read-only, permission (2)
    ├── StoreError         the state database cannot be opened or used: busy, or newer (2)
    └── TransportError     SFTP / folder transport failures (CLI exit code 3)
        ├── RetryableTransportError   timeouts, resets: worth another try
        └── PermanentTransportError   auth, permission, unknown host key: do not retry
            └── RemoteEntryError      one remote entry cannot be fetched: refused (1)

Data problems (decode, validation) map to CLI exit code 1. :class:`ExitCode` names every exit
code of the CLI (and of a run's manifest).
"""

from __future__ import annotations

import errno
from enum import IntEnum

__all__ = [
    "SEVERITIES",
    "ClearingError",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "ExitCode",
    "FaultError",
    "LedgerError",
    "MissingInputError",
    "PermanentTransportError",
    "RemoteEntryError",
    "RetryableTransportError",
    "StoreError",
    "TransportError",
    "ValueRangeError",
    "fault_of",
]


class ExitCode(IntEnum):
    """The exit codes of the ``clearing`` command (and ``exit_code`` of a run's manifest)."""

    OK = 0
    """Everything done, nothing to look at."""
    DATA = 1
    """A data problem: a file rejected or returned, an earlier stage not run, a difference."""
    CONFIG = 2
    """A configuration problem (or a busy work folder): nothing was done."""
    TRANSPORT = 3
    """A file could not be sent or fetched; the next run tries again."""
    INTERNAL = 4
    """A crash (a bug), not a data, config or transport problem: report it."""

    @property
    def severity(self) -> str:
        """The one word for this outcome, the same everywhere it is shown.

        ``ok``, ``data``, ``config``, ``transport``, ``crash``: the run summary's badge, the
        ``level`` of a ``--json`` line, a manifest's ``status`` and the Airflow task notes
        all use these words (see :data:`SEVERITIES`).
        """
        return SEVERITIES[self]


SEVERITIES: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.DATA: "data",
    ExitCode.CONFIG: "config",
    ExitCode.TRANSPORT: "transport",
    ExitCode.INTERNAL: "crash",
}
"""Exit code → severity word: one vocabulary for badge, JSON level, manifest status, notes."""


class ClearingError(Exception):
    """Root of every error raised by `clearing`."""

    exit_code: ExitCode = ExitCode.DATA


class DecodeError(ClearingError):
    """Input bytes could not be decoded.

    Attributes:
        reason: what is wrong, in words.
        file: the file name, when known.
        offset: byte offset in the file where the problem was found.
        path: the element path, e.g. ``transferBatch.callEventDetails[17].mobileOriginatedCall``.
        hint: what the operator can do about it.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        offset: int | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.offset = offset
        self.path = path
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file `{self.file}`")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        if self.path:
            where.append(f"at `{self.path}`")
        msg = self.reason
        if where:
            msg = f"{msg} ({', '.join(where)})"
        if self.hint:
            msg = f"{msg}: {self.hint}"
        return msg

    def with_file(self, file: str) -> DecodeError:
        """Return the same error with the file name filled in."""
        return type(self)(
            self.reason, file=file, offset=self.offset, path=self.path, hint=self.hint
        )


class EncodeError(ClearingError):
    """Records could not be encoded."""


class MissingInputError(ClearingError):
    """A stage's input is not there: an earlier stage has not run (the message says which)."""


class ValueRangeError(ClearingError):
    """A sum or a product of values (units, prices, amounts) is beyond what a column can hold.

    The values one event may carry are bounded by validation (``event.value.limit``,
    ``event.duration.limit``, ``event.volume.limit``); this is what rating raises instead of
    wrapping silently or crashing when a combination of them still does not fit (exit code 1).
    """


class ConfigError(ClearingError):
    """Configuration is missing or invalid."""

    exit_code = ExitCode.CONFIG


class FaultError(ConfigError):
    """The local file system refused a write or a read: disk full, read-only, permission denied.

    Nothing is wrong with the data or the configuration, but the run cannot go on: exit code 2
    with the path and the fix. Every stage is idempotent, so the run after the fix converges.

    Attributes:
        path: the file or folder refused (``None`` when the system did not say).
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# errno → (what happened, what to do); also matched by their text (DuckDB, Arrow)
_FAULTS: dict[int, tuple[str, str, str]] = {
    errno.ENOSPC: (
        "No space left on device",
        "disk full",
        "free space on that file system (`df -h`) or move the work folder, then run again",
    ),
    errno.EDQUOT: (
        "Disk quota exceeded",
        "disk quota exceeded",
        "raise the quota or free space, then run again",
    ),
    errno.EROFS: (
        "Read-only file system",
        "read-only file system",
        "remount it read-write (or point the work folder elsewhere), then run again",
    ),
    errno.EACCES: (
        "Permission denied",
        "permission denied",
        "give the user running clearing write access to it (chown / chmod u+w), then run again",
    ),
    errno.EPERM: (
        "Operation not permitted",
        "operation not permitted",
        "give the user running clearing write access to it (chown / chmod u+w), then run again",
    ),
}


def fault_of(exc: BaseException) -> FaultError | None:
    """The :class:`FaultError` an exception is, if it is a local file-system fault.

    An :class:`OSError` of ENOSPC, EDQUOT, EROFS, EACCES or EPERM (or an error of DuckDB or
    Arrow whose text is one of those) becomes one error with the path and the fix; anything
    else (a bug, a data problem) is ``None``.
    """
    if isinstance(exc, FaultError):
        return exc
    if isinstance(exc, ClearingError):
        return None
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code not in _FAULTS:
        code = next((c for c, (t, _, _) in _FAULTS.items() if t in text), None)
    if code is None:
        return None
    _, what, fix = _FAULTS[code]
    path = getattr(exc, "filename", None)
    where = f" on `{path}`" if path else f" ({text.strip()})"
    msg = f"{what}{where}: {fix}"
    return FaultError(msg, path=None if path is None else str(path))


class StoreError(ClearingError):
    """A state database (``clearing.duckdb``, the fetch ledger) cannot be opened or used.

    Usually another clearing process holds the file; the message names the file and says
    what to do. Like a busy or configuration problem, nothing was done: CLI exit code 2.
    """

    exit_code = ExitCode.CONFIG


class LedgerError(ClearingError):
    """A ledger (the outbox or the fetch ledger) cannot do what was asked.

    For example a name already registered with other bytes, or a fetched file whose name is
    taken in the inbox by other bytes: a data problem the analyst decides (exit code 1). A
    ledger that cannot be opened is a :class:`StoreError`.
    """


class TransportError(ClearingError):
    """A file transfer failed."""

    exit_code = ExitCode.TRANSPORT


class RetryableTransportError(TransportError):
    """A transient transfer failure (timeout, reset): safe to retry."""


class PermanentTransportError(TransportError):
    """A permanent transfer failure (auth, permission, host key): do not retry."""


class RemoteEntryError(PermanentTransportError):
    """One remote entry cannot be fetched (unreadable, a loop, too long), the others can.

    The entry is refused and reported as a problem of its own (a data problem, exit code 1):
    never retried as transient, never blocking the partner's other files.

    Attributes:
        entry: the remote entry's name.
    """

    exit_code = ExitCode.DATA

    def __init__(self, message: str, *, entry: str = "") -> None:
        super().__init__(message)
        self.entry = entry
