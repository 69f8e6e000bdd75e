"""One run at a time per work folder: an advisory ``flock`` on ``<workdir>/.clearing.lock``.

The kernel drops the lock when the process ends, however it ends (``SIGKILL`` included), so a
killed run never leaves a stale lock behind: the next run simply takes it.
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from clearing.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["LOCK_NAME", "BusyError", "WorkdirLock"]

LOCK_NAME = ".clearing.lock"


class BusyError(ConfigError):
    """Another run holds the work folder's lock (exit code 2: nothing was done)."""


class WorkdirLock:
    """``with WorkdirLock(workdir, "nightly 2026-11-22"):`` — exclusive, non-blocking.

    Raises:
        BusyError: another process holds the lock; the message says which run and since when.
    """

    def __init__(self, workdir: Path, what: str) -> None:
        self.path = workdir / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another run"
            os.close(fd)
            msg = (
                f"`{self.path.parent}` is busy: {holder} holds {self.path.name}. Wait for it to "
                "finish (the lock goes away by itself when that process ends, even if killed)"
            )
            raise BusyError(msg) from None
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.what} (pid {os.getpid()}, since {stamp})\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
