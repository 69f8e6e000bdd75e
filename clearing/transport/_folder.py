"""`LocalFolderTransport`: a partner's exchange point that is a folder (local or mounted)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from clearing.errors import (
    ConfigError,
    FaultError,
    PermanentTransportError,
    RetryableTransportError,
    fault_of,
)
from clearing.transport._base import (
    RemoteFile,
    RetryPolicy,
    check_name,
    entry_error,
    file_sha256,
    name_matcher,
    name_problem,
    part_name,
    sidecar_name,
    sidecar_text,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from clearing.transport._base import AfterFetch

__all__ = ["LocalFolderTransport"]

_ASK = "ask the partner to deliver the file itself, as a plain regular file, or remove the entry"

T = TypeVar("T")

# Errors that another try cannot fix: the folder is missing, or we may not write there.
_PERMANENT_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS}
)


class LocalFolderTransport:
    """A transport whose remote side is a folder: ``root/remote_in`` and ``root/remote_out``.

    It behaves like `SftpTransport` (same atomic writes, same errors) so that a partner
    reachable through a shared or mounted folder, and every test, uses the same code.

    Entries that cannot be fetched (a bad name, a folder, a FIFO, an unreadable file, a
    symbolic link loop, or a link that leads out of the exchange folder) are listed with
    their ``problem`` and never read. A symbolic link is followed only when its target, fully
    resolved, lies inside ``root`` (or inside the inbound folder itself); a link out of it is
    never followed, at listing and again at fetch time.

    Args:
        root: the partner's exchange folder.
        remote_in: inbound folder, relative to ``root`` (or absolute).
        remote_out: outbound folder, relative to ``root`` (or absolute).
        remote_archive: where fetched files go when ``after_fetch="archive"``.
        after_fetch: ``keep``, ``archive`` or ``delete`` inbound files once fetched.
        sidecar: write ``{name}.sha256`` beside every uploaded file by default.
        retry: retries of transient errors (e.g. a network mount that hiccups).
    """

    def __init__(
        self,
        root: Path,
        *,
        remote_in: str = ".",
        remote_out: str = ".",
        remote_archive: str | None = None,
        after_fetch: AfterFetch = "keep",
        sidecar: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        if after_fetch == "archive" and not remote_archive:
            msg = f'`after_fetch = "archive"` needs `remote_archive` (folder transport `{root}`)'
            raise ConfigError(msg)
        self.root = Path(root)
        self.inbound = self.root / remote_in
        self.outbound = self.root / remote_out
        self.archive = self.root / remote_archive if remote_archive else None
        self.after_fetch: AfterFetch = after_fetch
        self.sidecar = sidecar
        self.retry = retry if retry is not None else RetryPolicy(attempts=2, base_delay=0.5)

    def __repr__(self) -> str:
        return f"LocalFolderTransport({str(self.root)!r})"

    def __enter__(self) -> LocalFolderTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def where(self) -> str:
        """``folder://<root>``."""
        return f"folder://{self.root}"

    def close(self) -> None:
        """Nothing to release."""

    # -- inbound ---------------------------------------------------------------------------

    def poll(self, pattern: str = "*") -> list[RemoteFile]:
        """List inbound files matching ``pattern`` (glob, or ``re:`` regex), sorted by name.

        One entry never fails the listing: an entry that cannot be fetched is listed with
        its ``problem`` (see the class).
        """
        matches = name_matcher(pattern)

        def listing() -> list[RemoteFile]:
            roots = self._roots()
            out = []
            with os.scandir(self.inbound) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not matches(entry.name):
                        continue
                    if self._is_archive(entry):
                        continue
                    out.append(self._inspect(entry.name, roots))
            return sorted(out, key=lambda r: r.name)

        return self._run(listing, f"listing of `{self.inbound}`", self.inbound)

    def fetch(self, remote_name: str, local_dir: Path, *, release: bool = True) -> Path:
        """Copy an inbound file to ``local_dir`` (temporary name, then ``os.replace``).

        Raises:
            RemoteEntryError: this entry cannot be fetched (see the class); others can.
        """
        problem = name_problem(remote_name)
        if problem is not None:
            raise entry_error(remote_name, self.where, problem)
        check_name(remote_name, self.where)
        src = self.inbound / remote_name
        final = Path(local_dir) / remote_name
        tmp = Path(local_dir) / part_name(remote_name)

        def copy() -> Path:
            checked = self._check(remote_name, self._roots())
            if isinstance(checked, str):
                raise entry_error(remote_name, self.where, checked)
            real = checked[0]
            try:
                fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                problem = f"cannot be opened ({exc.strerror}); {_ASK}"
                raise entry_error(remote_name, self.where, problem) from None
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the check
                    raise entry_error(remote_name, self.where, f"is not a regular file; {_ASK}")
                Path(local_dir).mkdir(parents=True, exist_ok=True)
                try:
                    with tmp.open("wb") as out:
                        shutil.copyfileobj(fh, out)
                    want, got = os.fstat(fd).st_size, tmp.stat().st_size
                    if want != got:
                        msg = (
                            f"fetch of `{src}` is short ({got} of {want} bytes), the partner "
                            "may still be writing it; it will be fetched again on the next "
                            "collect"
                        )
                        raise RetryableTransportError(msg)
                    tmp.replace(final)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
            return final

        path = self._run(copy, f"fetch of `{src}` to `{local_dir}`", src)
        if release:
            self.release(remote_name)
        return path

    def _roots(self) -> tuple[Path, ...]:
        """The folders a symbolic link may lead into: ``root`` and the inbound folder."""
        return (Path(os.path.realpath(self.root)), Path(os.path.realpath(self.inbound)))

    def _is_archive(self, entry: os.DirEntry[str]) -> bool:
        """Whether ``entry`` is the archive folder (inside the inbound folder): not listed."""
        if self.archive is None or entry.name != self.archive.name:
            return False
        return os.path.realpath(entry.path) == os.path.realpath(self.archive)

    def _inspect(self, name: str, roots: tuple[Path, ...]) -> RemoteFile:
        problem = name_problem(name)
        if problem is not None:
            return RemoteFile.refused(name, problem)
        checked = self._check(name, roots)
        if isinstance(checked, str):
            return RemoteFile.refused(name, checked)
        st = checked[1]
        return RemoteFile(name, st.st_size, int(st.st_mtime))

    def _check(self, name: str, roots: tuple[Path, ...]) -> tuple[Path, os.stat_result] | str:
        """The real path and status of the inbound entry ``name``, or why it cannot be fetched."""
        path = self.inbound / name
        try:
            st = path.lstat()
            real = path
            if stat.S_ISLNK(st.st_mode):
                real = Path(os.path.realpath(path, strict=True))
                if not any(real.is_relative_to(root) for root in roots):
                    return (
                        f"is a symbolic link out of the exchange folder `{self.root}` (to "
                        f"`{real}`), never followed; {_ASK}"
                    )
                st = real.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"is a symbolic link loop; {_ASK}"
            if exc.errno == errno.ENOENT and path.is_symlink():
                return f"is a symbolic link to nothing; {_ASK}"
            if exc.errno == errno.ENOENT:
                return "has vanished since it was listed; nothing to do"
            return f"cannot be examined ({exc.strerror}); {_ASK}"
        except RuntimeError:  # a loop, as some Python versions report it
            return f"is a symbolic link loop; {_ASK}"
        if stat.S_ISDIR(st.st_mode):
            return f"is a folder, not a regular file; {_ASK}"
        if not stat.S_ISREG(st.st_mode):
            return f"is not a regular file ({_kind(st.st_mode)}); {_ASK}"
        if not os.access(real, os.R_OK):
            return (
                "is not readable by this user (permission denied); ask the partner to let us "
                "read it, or fix its permissions"
            )
        return real, st

    def release(self, remote_name: str) -> None:
        """Keep, archive (move into ``remote_archive``) or delete a fetched inbound file."""
        check_name(remote_name, self.where)
        src = self.inbound / remote_name
        if self.after_fetch == "keep":
            return
        if self.after_fetch == "delete":
            self._run(lambda: src.unlink(missing_ok=True), f"delete of `{src}`", src)
            return
        assert self.archive is not None
        archive = self.archive

        def move() -> None:
            if src.exists():
                src.replace(archive / remote_name)

        self._run(move, f"archiving of `{src}` into `{archive}`", archive)

    # -- outbound --------------------------------------------------------------------------

    def put(
        self, local_path: Path, remote_name: str | None = None, *, sidecar: bool | None = None
    ) -> None:
        """Copy ``local_path`` to ``.{name}.part``, check the size, rename to ``name``."""
        local_path = Path(local_path)
        name = check_name(remote_name or local_path.name, self.where)
        try:
            digest, size = file_sha256(local_path)
        except OSError as exc:
            msg = f"cannot read `{local_path}` to send it to {self.where}: {exc.strerror}"
            raise PermanentTransportError(msg) from None
        self._run(
            lambda: self._write(name, local_path, size),
            f"upload of `{local_path}` to `{self.outbound / name}`",
            self.outbound / name,
        )
        if self.sidecar if sidecar is None else sidecar:
            side = sidecar_name(name)
            text = sidecar_text(name, digest)
            self._run(
                lambda: self._write(side, text, len(text)),
                f"upload of `{side}` to `{self.outbound}`",
                self.outbound / side,
            )

    def _write(self, name: str, source: Path | bytes, size: int) -> None:
        tmp = self.outbound / part_name(name)
        try:
            if isinstance(source, bytes):
                with tmp.open("wb") as fh:
                    fh.write(source)
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                shutil.copyfile(source, tmp)
            got = tmp.stat().st_size
            if got != size:
                msg = (
                    f"upload to `{tmp}` wrote {got} of {size} bytes; the file was not "
                    "renamed to its final name; send it again"
                )
                raise RetryableTransportError(msg)
            tmp.replace(self.outbound / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # -- errors ----------------------------------------------------------------------------

    def _run(self, action: Callable[[], T], what: str, path: Path) -> T:
        def attempt() -> T:
            try:
                return action()
            except OSError as exc:
                raise _translate(exc, what, path) from exc

        return self.retry.run(attempt, what=what)


def _kind(mode: int) -> str:
    """What a non-regular, non-folder entry is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def _translate(
    exc: OSError, what: str, path: Path
) -> PermanentTransportError | RetryableTransportError | FaultError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and (fault := fault_of(exc)) is not None:
        return fault  # a full disk is no network hiccup: exit 2 with the path and the fix
    reason = exc.strerror or str(exc)
    where = f"`{exc.filename}`" if exc.filename else f"`{path}`"
    if exc.errno in _PERMANENT_ERRNOS:
        hint = {
            errno.ENOENT: "check that the folder exists and the transport settings name it",
            errno.ENOTDIR: "check the transport's folder settings",
            errno.EISDIR: "a folder has the name of the file; move it away",
        }.get(exc.errno or 0, "check the folder's permissions for the user running clearing")
        msg = f"{what} failed: {reason} ({where}); {hint}"
        return PermanentTransportError(msg)
    msg = f"{what} failed: {reason} ({where})"
    return RetryableTransportError(msg)
