"""What every transport shares: the `Transport` protocol, remote file rows, retries, names.

A transport moves files between this machine and one partner's exchange point. Inbound, it
lists (`poll`) and downloads (`fetch`) the partner's files; outbound, it uploads (`put`) ours.
Both directions are atomic: a file appears under its final name only when it is complete.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

from clearing._io import file_sha256
from clearing.errors import (
    ConfigError,
    PermanentTransportError,
    RemoteEntryError,
    RetryableTransportError,
)
from clearing.names import printable_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = [
    "MAX_NAME_LENGTH",
    "AfterFetch",
    "RemoteFile",
    "RetryPolicy",
    "Transport",
    "entry_error",
    "file_sha256",
    "match_names",
    "name_matcher",
    "name_problem",
    "part_name",
    "shown_name",
    "sidecar_name",
    "sidecar_text",
]

log = logging.getLogger("clearing.transport")

AfterFetch = Literal["keep", "archive", "delete"]
"""What happens to a remote inbound file once it is safely here: nothing, moved, deleted."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file in a remote inbound folder.

    Attributes:
        name: the file name (no folder).
        size: size in bytes.
        mtime: modification time, seconds since the epoch (as the server reports it).
        problem: why this entry cannot be fetched at all (name too long, a symlink loop or a
            link out of the exchange root, not a regular file, unreadable), else None: the
            entry is reported as a permanent problem of its own and never fetched.
    """

    name: str
    size: int
    mtime: int
    problem: str | None = None

    @classmethod
    def refused(cls, name: str, problem: str, size: int = 0, mtime: int = 0) -> RemoteFile:
        """An entry that is listed only to be reported: ``problem`` says why and what to do."""
        return cls(shown_name(name), size, mtime, problem)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, a transient failure is retried.

    The delay before retry ``n`` (1-based) is ``min(max_delay, base_delay * 2 ** (n - 1))``.

    Attributes:
        attempts: tries in all, the first included (1 = no retry).
        base_delay: seconds before the first retry.
        max_delay: upper bound of one delay, in seconds.
        sleep: how to wait (``time.sleep``; tests may pass a recorder).
    """

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            msg = f"retry attempts must be at least 1, not {self.attempts}"
            raise ConfigError(msg)
        if self.base_delay < 0 or self.max_delay < 0:
            msg = "retry delays must not be negative"
            raise ConfigError(msg)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))

    def run(
        self,
        action: Callable[[], T],
        *,
        what: str,
        on_retry: Callable[[], None] | None = None,
    ) -> T:
        """Run ``action``, retrying it on `RetryableTransportError` with exponential backoff.

        A `PermanentTransportError` goes straight through. After the last attempt the last
        retryable error is raised again, with the number of attempts added to its message.

        Args:
            action: the work; it raises the package's transport errors.
            what: words for the log (``"upload of `X` to host:port"``).
            on_retry: called before each retry (e.g. to drop a broken connection).
        """
        for attempt in range(1, self.attempts + 1):
            try:
                return action()
            except RetryableTransportError as exc:
                if attempt == self.attempts:
                    msg = (
                        f"{exc} (gave up after {self.attempts} attempt"
                        f"{'s' if self.attempts > 1 else ''}; a transient failure: run again "
                        "later, and if it persists check the network and the server)"
                    )
                    raise RetryableTransportError(msg) from exc
                wait = self.delay(attempt)
                log.warning(
                    "%s failed (attempt %d of %d), retrying in %.1f s: %s",
                    what,
                    attempt,
                    self.attempts,
                    wait,
                    exc,
                )
                if on_retry is not None:
                    on_retry()
                self.sleep(wait)
        msg = "unreachable"
        raise AssertionError(msg)  # pragma: no cover


@runtime_checkable
class Transport(Protocol):
    """The interface of `SftpTransport` and `LocalFolderTransport`.

    Inbound files are read from the transport's inbound folder, outbound files written to
    its outbound folder. Names starting with a dot are never listed: they are files in
    transit (ours are ``.{name}.part``).
    """

    @property
    def where(self) -> str:
        """Where this transport points, for messages (``sftp://user@host:port``)."""
        ...

    def poll(self, pattern: str = "*") -> list[RemoteFile]:
        """List the inbound files whose name matches ``pattern``, sorted by name.

        ``pattern`` is a glob (``CD*HKGCL*``) or, prefixed with ``re:``, a regular
        expression that must match the whole name.
        """
        ...

    def fetch(self, remote_name: str, local_dir: Path, *, release: bool = True) -> Path:
        """Download one inbound file to ``local_dir`` atomically and return its path.

        The bytes go to a temporary name in ``local_dir`` first and are renamed to the final
        name once complete (and the size checked). With ``release``, the transport's
        after-fetch action (archive or delete on the remote) follows; see `release`.
        """
        ...

    def release(self, remote_name: str) -> None:
        """Apply the after-fetch action to an inbound file: keep, archive or delete it."""
        ...

    def put(
        self, local_path: Path, remote_name: str | None = None, *, sidecar: bool | None = None
    ) -> None:
        """Upload ``local_path`` to the outbound folder atomically.

        The bytes go to ``.{name}.part``, the remote size is checked against the local size,
        and only then is the file renamed to ``remote_name`` (default: the local name),
        replacing a stale file of that name. With ``sidecar`` (default: the transport's
        setting) a ``{name}.sha256`` file follows, written the same way.
        """
        ...

    def close(self) -> None:
        """Release the connection, if any. The transport reconnects when used again."""
        ...


MAX_NAME_LENGTH = 200
"""The longest remote name fetched (characters). File systems stop at 255 bytes, and a fetched
name travels as ``.{name}.part`` and is kept beside ``{name}.reason.txt`` / ``{name}.sha256``:
a longer name is refused as a problem of its entry (TD.57 and CIBER names are ~20 characters)."""


def name_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a name matches ``pattern``: a glob, or ``re:`` and a regular expression.

    Either must match the *whole* name (``re.fullmatch``; a glob's ``*`` spans everything).
    The net is cast wide on purpose: a regular expression is applied with ``re.DOTALL`` and
    Unicode classes, so a name with a trailing newline or Unicode digits that the pattern
    *would* take is caught and then refused by :func:`name_problem` (never fetched) rather
    than silently left on the server. For a plain printable-ASCII name the flags change
    nothing.

    Raises:
        ConfigError: the regular expression does not compile.
    """
    if pattern.startswith("re:"):
        try:
            regex = re.compile(pattern[3:], re.DOTALL)
        except re.error as exc:
            msg = f"bad file name pattern `{pattern}`: {exc}; fix the `pattern` setting"
            raise ConfigError(msg) from None
        return lambda name: regex.fullmatch(name) is not None
    glob = re.compile(fnmatch.translate(pattern))
    return lambda name: glob.fullmatch(name) is not None


def match_names(names: list[str], pattern: str) -> list[str]:
    """The names (sorted) that match a glob or a ``re:`` regular expression; dot-names never."""
    matches = name_matcher(pattern)
    return sorted(n for n in names if not n.startswith(".") and matches(n))


def shown_name(name: str) -> str:
    """``name`` as it can be stored and printed: bytes that are not UTF-8 escaped."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
    return name


_DELIVER = "ask the partner to deliver the file as a plain regular file under its standard name"


def name_problem(name: str) -> str | None:
    """Why a remote name is never fetched (the short reason, ``; ``, what to do), else None.

    Refused: a name that is not UTF-8 (the server gave bytes we cannot name), that holds a
    control or other non-printable character (a trailing newline), a folder separator, a
    character outside ASCII (file names are matched and checked ASCII-only), or that is
    longer than :data:`MAX_NAME_LENGTH` characters.
    """
    if shown_name(name) != name:
        return f"name is not valid UTF-8 (the server sends bytes that name no text); {_DELIVER}"
    bad = next((c for c in name if not c.isprintable() or c in "/\\"), None)
    if bad is not None:
        what = "a folder separator" if bad in "/\\" else "a control or non-printable character"
        code = f"U+{ord(bad):04X} {unicodedata.name(bad, '')}".rstrip()
        return f"name holds {what} ({code}); {_DELIVER}"
    if not name.isascii():
        return f"name is not ASCII; {_DELIVER}"
    if len(name) > MAX_NAME_LENGTH:
        return f"name is too long ({len(name)} characters, at most {MAX_NAME_LENGTH}); {_DELIVER}"
    return None


def entry_error(name: str, where: str, problem: str) -> RemoteEntryError:
    """The error of one remote entry that cannot be fetched (never retried, others go on)."""
    msg = (
        f"remote entry `{printable_name(name)}` at {where} is refused, left on the server "
        f"and not fetched: {problem}"
    )
    return RemoteEntryError(msg, entry=shown_name(name))


def part_name(name: str) -> str:
    """The temporary name a file travels under: ``.{name}.part``."""
    return f".{name}.part"


def sidecar_name(name: str) -> str:
    """The checksum sidecar of ``name``: ``{name}.sha256``."""
    return f"{name}.sha256"


def sidecar_text(name: str, sha256: str) -> bytes:
    r"""The sidecar's content, in ``sha256sum`` format: ``<hex>  <name>\n``."""
    return f"{sha256}  {name}\n".encode("ascii")


def check_name(name: str, where: str) -> str:
    """Refuse a file name that is empty, has a folder part or starts with a dot."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or name in {".", ".."}:
        msg = (
            f"bad remote file name `{name}` for {where}: names must be plain file names "
            "(no folder, not starting with a dot)"
        )
        raise PermanentTransportError(msg)
    return name
