"""One writer at a time per work folder: an advisory ``flock`` on ``<workdir>/.clearing.lock``.

A run or a verb that changes the work folder takes the lock exclusive; a verb that only reads
it takes it shared (readers run side by side, never beside a writer). Both are non-blocking:
a busy folder is a :class:`BusyError` (exit code 2, nothing done) naming the holder.

The kernel drops the lock when the process ends, however it ends (``SIGKILL`` included), so a
killed run never leaves a stale lock behind: the next run simply takes it. Within one process
the lock is re-entrant (a verb holding it calls the nightly, which takes it again).
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from clearing.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["LOCK_NAME", "BusyError", "LockMode", "WorkdirLock"]

LOCK_NAME = ".clearing.lock"

LockMode = Literal["shared", "exclusive"]

# the locks this process holds: lock file → [fd, mode, depth]
_HELD: dict[str, list[int | str]] = {}


class BusyError(ConfigError):
    """Another run holds the work folder's lock (exit code 2: nothing was done)."""


class WorkdirLock:
    """``with WorkdirLock(workdir, "nightly 2026-11-22"):`` — non-blocking, exclusive by default.

    Args:
        workdir: the work folder (the lock file is created in it).
        what: who holds it, for the message another process gets ("nightly 2026-11-22").
        mode: ``exclusive`` (changes the folder) or ``shared`` (only reads it).

    Raises:
        BusyError: another process holds the lock (exclusive, or shared while we want to
            write); the message says which run and since when.
    """

    def __init__(self, workdir: Path, what: str, *, mode: LockMode = "exclusive") -> None:
        self.path = workdir / LOCK_NAME
        self.what = what
        self.mode: LockMode = mode
        self._key = ""

    def __enter__(self) -> WorkdirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is not None and (held[1] == "exclusive" or self.mode == "shared"):
            held[2] = int(held[2]) + 1  # this process holds it already (at least as strong)
            if self.mode == "exclusive":
                self._stamp(int(held[0]))  # the inner run says best what is going on
            self._key = key
            return self
        if held is not None:
            # shared → exclusive in one process: convert (refused while other readers hold it)
            self._flock(int(held[0]), fcntl.LOCK_EX, keep_open=True)
            held[1], held[2] = "exclusive", int(held[2]) + 1
            self._stamp(int(held[0]))
            self._key = key
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        self._flock(fd, fcntl.LOCK_EX if self.mode == "exclusive" else fcntl.LOCK_SH)
        if self.mode == "exclusive":
            self._stamp(fd)
        _HELD[key] = [fd, self.mode, 1]
        self._key = key
        return self

    def _flock(self, fd: int, op: int, *, keep_open: bool = False) -> None:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            if not keep_open:
                os.close(fd)
            msg = (
                f"`{self.path.parent}` is busy: {holder or 'another run (reading it)'} holds "
                f"{self.path.name}, so `{self.what}` did nothing. Wait for it to finish and "
                "run again (the lock goes away by itself when that process ends, even if killed)"
            )
            raise BusyError(msg) from None

    def _stamp(self, fd: int) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.what} (pid {os.getpid()}, since {stamp})\n".encode(), 0)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        held = _HELD.get(self._key)
        if held is None:
            return
        held[2] = int(held[2]) - 1
        if int(held[2]) > 0:
            return
        del _HELD[self._key]
        fd = int(held[0])
        if held[1] == "exclusive":
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
