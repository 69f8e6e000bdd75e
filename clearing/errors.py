"""The package's exceptions.

Every error the package raises on purpose derives from :class:`ClearingError`::

    ClearingError
    ├── DecodeError        bytes that are not what they claim to be (file, offset, path)
    ├── EncodeError        records that cannot be written in the requested format
    ├── MissingInputError  a stage's input is not there: an earlier stage has not run (1)
    ├── ConfigError        bad or missing configuration (CLI exit code 2)
    ├── StoreError         the state database cannot be opened or used: busy, or newer (2)
    └── TransportError     SFTP / folder transport failures (CLI exit code 3)
        ├── RetryableTransportError   timeouts, resets: worth another try
        └── PermanentTransportError   auth, permission, unknown host key: do not retry

Data problems (decode, validation) map to CLI exit code 1.
"""

from __future__ import annotations

__all__ = [
    "ClearingError",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "MissingInputError",
    "PermanentTransportError",
    "RetryableTransportError",
    "StoreError",
    "TransportError",
]


class ClearingError(Exception):
    """Root of every error raised by `clearing`."""

    exit_code = 1


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


class ConfigError(ClearingError):
    """Configuration is missing or invalid."""

    exit_code = 2


class StoreError(ClearingError):
    """A state database (``clearing.duckdb``, the fetch ledger) cannot be opened or used.

    Usually another clearing process holds the file; the message names the file and says
    what to do. Like a busy or configuration problem, nothing was done: CLI exit code 2.
    """

    exit_code = 2


class TransportError(ClearingError):
    """A file transfer failed."""

    exit_code = 3


class RetryableTransportError(TransportError):
    """A transient transfer failure (timeout, reset): safe to retry."""


class PermanentTransportError(TransportError):
    """A permanent transfer failure (auth, permission, host key): do not retry."""
