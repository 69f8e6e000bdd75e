"""`SftpTransport`: a partner's SFTP server, through paramiko.

Security: the server's host key must already be in a known_hosts file (no trust on first
use), authentication is by key file only (a password only when one is configured), the key
file must be private to this user (mode 600), and the password is kept as a secret that no
message or log line contains.

Symbolic links on the partner's server are never followed: where a link leads on somebody
else's server (chroot, mounts) cannot be told from here, so a link is listed as an entry
that cannot be fetched (``problem``), like a folder, a FIFO or a bad name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import posixpath
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR, SFTPError
from pydantic import SecretStr

from clearing.errors import (
    ConfigError,
    PermanentTransportError,
    RetryableTransportError,
    TransportError,
)
from clearing.transport._base import (
    RemoteFile,
    RetryPolicy,
    check_name,
    entry_error,
    file_sha256,
    log,
    name_matcher,
    name_problem,
    part_name,
    sidecar_name,
    sidecar_text,
)

if TYPE_CHECKING:
    from types import TracebackType

    from clearing.transport._base import AfterFetch

__all__ = ["KEY_MODE_MASK", "Progress", "SftpTransport", "check_key_file"]

KEY_MODE_MASK = 0o066
"""Permission bits that must be clear on the private key: read or write by group or others."""

_ASK = "ask the partner to deliver the file itself, as a plain regular file, or remove the entry"

T = TypeVar("T")

Progress = Callable[[str, int, int], None]
"""``progress(remote_name, bytes_done, bytes_total)``, called while a file travels."""


class _UnknownHostKeyError(paramiko.SSHException):  # type: ignore[misc]
    """The server presented a host key that the known_hosts file does not list."""

    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        self.hostname = hostname
        self.key_type = key.get_name()
        self.fingerprint = key.fingerprint  # "SHA256:…", as ssh-keygen -lf prints it
        super().__init__(f"server {hostname!r} not found in known_hosts")


class _ShortTransferError(Exception):
    """Fewer bytes arrived than were sent: worth another try."""


class _RejectUnknownHost(paramiko.RejectPolicy):  # type: ignore[misc]
    """`RejectPolicy` that keeps the presented key, so the message can show its fingerprint."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise _UnknownHostKeyError(hostname, key)


class SftpTransport:
    """A partner's SFTP server.

    Connects lazily, keeps one connection for many operations, and reconnects after a
    failure. Transient failures (timeouts, resets, a dropped connection, a server that is
    not answering) are retried with exponential backoff and end in a
    `RetryableTransportError`; permanent ones (authentication, permissions, unknown or
    changed host key, a remote folder that does not exist) raise a
    `PermanentTransportError` at once.

    Args:
        host: server name or address.
        port: server port.
        username: the login the partner gave us.
        key_file: our private key (OpenSSH format, not encrypted).
        known_hosts: a known_hosts file that lists the server's host key.
        password: only if the partner insists on one; kept secret.
        remote_in: the partner's folder we fetch from (relative to the login folder, or
            absolute).
        remote_out: the folder we upload to.
        remote_archive: where fetched files go when ``after_fetch="archive"``.
        after_fetch: ``keep``, ``archive`` or ``delete`` inbound files once fetched.
        sidecar: write ``{name}.sha256`` beside every uploaded file by default.
        timeout: seconds for connecting, authenticating and each network read or write.
        retry: retries of transient failures.
        progress: called with the bytes done while a file is uploaded or downloaded.

    Attributes:
        connect_attempts: how many connections were tried so far (for logs and tests).
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        username: str = "",
        key_file: Path | None = None,
        known_hosts: Path | None = None,
        password: SecretStr | str | None = None,
        *,
        remote_in: str = ".",
        remote_out: str = ".",
        remote_archive: str | None = None,
        after_fetch: AfterFetch = "keep",
        sidecar: bool = False,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        progress: Progress | None = None,
    ) -> None:
        where = f"sftp://{username}@{host}:{port}"
        if not username:
            msg = f"no `username` for {where}: set the login the partner gave us"
            raise ConfigError(msg)
        if known_hosts is None:
            msg = (
                f"no `known_hosts` for {where}: host keys are always verified; give a "
                "known_hosts file that lists the server's key"
            )
            raise ConfigError(msg)
        if key_file is None and password is None:
            msg = f"no `key_file` for {where}: give the private key to log in with"
            raise ConfigError(msg)
        if after_fetch == "archive" and not remote_archive:
            msg = f'`after_fetch = "archive"` needs `remote_archive` ({where})'
            raise ConfigError(msg)
        if key_file is not None:
            check_key_file(Path(key_file), where)
        self.host = host
        self.port = port
        self.username = username
        self.key_file = Path(key_file) if key_file is not None else None
        self.known_hosts = Path(known_hosts)
        self._password = SecretStr(password) if isinstance(password, str) else password
        self.remote_in = remote_in
        self.remote_out = remote_out
        self.remote_archive = remote_archive
        self.after_fetch: AfterFetch = after_fetch
        self.sidecar = sidecar
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.progress = progress
        self.connect_attempts = 0
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._posix_rename = True

    def __repr__(self) -> str:
        return f"SftpTransport({self.where!r})"

    def __enter__(self) -> SftpTransport:
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
        """``sftp://user@host:port``."""
        return f"sftp://{self.username}@{self.host}:{self.port}"

    def close(self) -> None:
        """Close the SFTP session and the SSH connection, if open."""
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.close()
        if client is not None:
            client.close()

    # -- inbound ---------------------------------------------------------------------------

    def poll(self, pattern: str = "*") -> list[RemoteFile]:
        """List inbound files matching ``pattern`` (glob, or ``re:`` regex), sorted by name.

        One entry never fails the listing: a name that is not UTF-8, ASCII or printable, too
        long, a symbolic link, a folder or another non-regular entry is listed with its
        ``problem`` and never fetched. The archive folder, when inside the inbound folder, is
        not listed.
        """
        matches = name_matcher(pattern)
        archive = self._archive_child()

        def listing(sftp: paramiko.SFTPClient) -> list[RemoteFile]:
            out = []
            for name, attrs in _list_folder(sftp, self.remote_in):
                if name.startswith(".") or not matches(name):
                    continue
                if name == archive and stat.S_ISDIR(attrs.st_mode or 0):
                    continue
                problem = name_problem(name) or _kind_problem(attrs.st_mode)
                if problem is not None:
                    out.append(RemoteFile.refused(name, problem))
                    continue
                out.append(RemoteFile(name, int(attrs.st_size or 0), int(attrs.st_mtime or 0)))
            return sorted(out, key=lambda r: r.name)

        return self._op(listing, "listing", self.remote_in)

    def _archive_child(self) -> str | None:
        """The archive folder's name when it lies directly in the inbound folder, else None."""
        if self.remote_archive is None:
            return None
        archive = posixpath.normpath(self.remote_archive)
        if (posixpath.dirname(archive) or ".") != posixpath.normpath(self.remote_in):
            return None
        return posixpath.basename(archive)

    def fetch(self, remote_name: str, local_dir: Path, *, release: bool = True) -> Path:
        """Download an inbound file to ``local_dir`` (temporary name, then ``os.replace``).

        Raises:
            RemoteEntryError: this entry cannot be fetched (a bad name, a link, not a regular
                file, the server refuses to read it); the partner's other files can.
        """
        problem = name_problem(remote_name)
        if problem is not None:
            raise entry_error(remote_name, self.where, problem)
        check_name(remote_name, self.where)
        src = posixpath.join(self.remote_in, remote_name)
        local_dir = Path(local_dir)
        final = local_dir / remote_name
        tmp = local_dir / part_name(remote_name)

        def refuse(exc: OSError) -> None:
            """An answer of the server about this entry (not a broken connection)."""
            answered = type(exc) is OSError and exc.errno is None  # another status code
            if answered or isinstance(exc, FileNotFoundError | PermissionError):
                reason = exc.strerror or str(exc) or "refused"
                what = f"cannot be read on the server ({reason}); {_ASK}"
                raise entry_error(remote_name, self.where, what) from None

        def download(sftp: paramiko.SFTPClient) -> Path:
            try:
                attrs = sftp.lstat(src)
            except OSError as exc:
                refuse(exc)
                raise
            problem = _kind_problem(attrs.st_mode)
            if problem is not None:
                raise entry_error(remote_name, self.where, problem)
            want = int(attrs.st_size or 0)
            try:
                remote = sftp.open(src, "rb")
            except OSError as exc:
                refuse(exc)
                raise
            fh = _open_local(tmp, f"fetch of `{src}` from {self.where}")
            try:
                with remote, fh:
                    remote.prefetch(want)
                    self._copy(remote, fh, remote_name, want)
                got = tmp.stat().st_size
                if got != want:
                    msg = f"short download ({got} of {want} bytes)"
                    raise _ShortTransferError(msg)
                tmp.replace(final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return final

        path = self._op(download, "download", src)
        if release:
            self.release(remote_name)
        return path

    def _copy(self, remote: Any, local: Any, name: str, total: int) -> None:
        """Copy an open remote file to an open local one, reporting progress."""
        callback = self._callback(name)
        done = 0
        while chunk := remote.read(32768):
            local.write(chunk)
            done += len(chunk)
            if callback is not None:
                callback(done, total)

    def release(self, remote_name: str) -> None:
        """Keep, archive (move into ``remote_archive``) or delete a fetched inbound file."""
        check_name(remote_name, self.where)
        src = posixpath.join(self.remote_in, remote_name)
        if self.after_fetch == "keep":
            return
        if self.after_fetch == "delete":

            def delete(sftp: paramiko.SFTPClient) -> None:
                with contextlib.suppress(FileNotFoundError):  # a previous run deleted it
                    sftp.remove(src)

            self._op(delete, "delete", src)
            return
        assert self.remote_archive is not None
        dst = posixpath.join(self.remote_archive, remote_name)

        def archive(sftp: paramiko.SFTPClient) -> None:
            try:
                sftp.stat(src)
            except FileNotFoundError:
                return  # archived already by a previous run
            self._rename(sftp, src, dst)

        self._op(archive, "archiving", dst)

    # -- outbound --------------------------------------------------------------------------

    def put(
        self, local_path: Path, remote_name: str | None = None, *, sidecar: bool | None = None
    ) -> None:
        """Upload to ``.{name}.part``, check the remote size, rename to ``name`` (atomic)."""
        local_path = Path(local_path)
        name = check_name(remote_name or local_path.name, self.where)
        try:
            digest, size = file_sha256(local_path)
        except OSError as exc:
            msg = f"cannot read `{local_path}` to send it to {self.where}: {exc.strerror}"
            raise PermanentTransportError(msg) from None
        self._op(lambda s: self._upload(s, name, local_path, size), "upload", self._out(name))
        if self.sidecar if sidecar is None else sidecar:
            side = sidecar_name(name)
            text = sidecar_text(name, digest)
            self._op(lambda s: self._upload(s, side, text, len(text)), "upload", self._out(side))

    def _out(self, name: str) -> str:
        return posixpath.join(self.remote_out, name)

    def _upload(
        self, sftp: paramiko.SFTPClient, name: str, source: Path | bytes, size: int
    ) -> None:
        tmp = self._out(part_name(name))
        callback = self._callback(name)
        if isinstance(source, bytes):
            sftp.putfo(io.BytesIO(source), tmp, file_size=size, callback=callback, confirm=False)
        else:
            sftp.put(str(source), tmp, callback=callback, confirm=False)
        got = int(sftp.stat(tmp).st_size or 0)
        if got != size:
            msg = f"the server has {got} of {size} bytes after the upload"
            raise _ShortTransferError(msg)
        self._rename(sftp, tmp, self._out(name))

    def _rename(self, sftp: paramiko.SFTPClient, src: str, dst: str) -> None:
        """Rename, replacing ``dst``: atomic with OpenSSH's posix-rename extension."""
        if self._posix_rename:
            try:
                sftp.posix_rename(src, dst)
                return
            except OSError as exc:
                if exc.errno is not None or "unsupported" not in str(exc).lower():
                    raise
                self._posix_rename = False
                log.warning("%s has no posix-rename; replacing files is not atomic", self.where)
        with contextlib.suppress(FileNotFoundError):
            sftp.remove(dst)
        sftp.rename(src, dst)

    # -- connection and errors -------------------------------------------------------------

    def _callback(self, name: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    def _op(self, action: Callable[[paramiko.SFTPClient], T], verb: str, path: str) -> T:
        """Run one operation with a connection, translating and retrying failures."""

        def attempt() -> T:
            try:
                return action(self._session())
            except RetryableTransportError:
                self.close()
                raise
            except (OSError, EOFError, paramiko.SSHException, _ShortTransferError) as exc:
                error = self._translate(exc, verb, path)
                if isinstance(error, RetryableTransportError):
                    self.close()
                raise error from exc

        return self.retry.run(
            attempt, what=f"{verb} of `{path}` at {self.where}", on_retry=self.close
        )

    def _session(self) -> paramiko.SFTPClient:
        client, sftp = self._client, self._sftp
        if client is not None and sftp is not None:
            transport = client.get_transport()
            if transport is not None and transport.is_active():
                return sftp
        self.close()
        self.connect_attempts += 1
        pkey = self._load_key()
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(str(self.known_hosts))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            client.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            msg = (
                f"cannot read known_hosts file `{self.known_hosts}` for {self.where} "
                f"({reason}): create it with the server's host key, after checking the "
                f"fingerprint with the partner (`ssh-keyscan -p {self.port} {self.host}`)"
            )
            raise PermanentTransportError(msg) from None
        try:
            client.set_missing_host_key_policy(_RejectUnknownHost())
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                pkey=pkey,
                password=self._password.get_secret_value() if self._password else None,
                look_for_keys=False,
                allow_agent=False,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
            )
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self.timeout)
        except BaseException:
            client.close()
            raise
        self._client, self._sftp = client, sftp
        return sftp

    def _load_key(self) -> paramiko.PKey | None:
        if self.key_file is None:
            return None
        try:
            return paramiko.PKey.from_path(self.key_file)
        except FileNotFoundError:
            msg = f"key file `{self.key_file}` for {self.where} does not exist: fix `key_file`"
        except PermissionError:
            msg = (
                f"key file `{self.key_file}` for {self.where} is not readable by this user: "
                "fix its owner or permissions"
            )
        except paramiko.PasswordRequiredException:
            msg = (
                f"key file `{self.key_file}` for {self.where} is encrypted: batch transfers "
                "need a key without a passphrase"
            )
        except (paramiko.SSHException, ValueError, OSError) as exc:
            msg = (
                f"key file `{self.key_file}` for {self.where} is not a usable private key "
                f"({exc}): give an OpenSSH private key (ssh-keygen -t ed25519)"
            )
        raise PermanentTransportError(msg)

    def _translate(
        self,
        exc: OSError | EOFError | paramiko.SSHException | _ShortTransferError,
        verb: str,
        path: str,
    ) -> TransportError:
        """Map a paramiko / socket / SFTP error to a permanent or retryable package error."""
        at = f"{self.host}:{self.port}"
        head = f"{verb} of `{path}` at {self.where} failed"
        known = f"`{self.known_hosts}`"
        if isinstance(exc, _UnknownHostKeyError):
            msg = (
                f"{head}: the server's host key ({exc.key_type} {exc.fingerprint}) is not in "
                f"known_hosts file {known}; refusing to connect. Verify the fingerprint with "
                f"the partner, then add it: `ssh-keyscan -p {self.port} "
                f"{self.host} >> {self.known_hosts}`"
            )
            return PermanentTransportError(msg)
        if isinstance(exc, paramiko.BadHostKeyException):
            msg = (
                f"{head}: the server's host key ({exc.key.get_name()} {exc.key.fingerprint}) "
                f"does NOT match the one in {known} ({exc.expected_key.fingerprint}); "
                "refusing to connect. The server changed its key or someone is in between: "
                "confirm the new fingerprint with the partner before replacing the line "
                f"(`ssh-keygen -R '[{self.host}]:{self.port}' -f {self.known_hosts}`)"
            )
            return PermanentTransportError(msg)
        if isinstance(exc, paramiko.AuthenticationException):
            key = f"key `{self.key_file}`" if self.key_file else "the password"
            msg = (
                f"{head}: authentication of user `{self.username}` with {key} was refused "
                f"({type(exc).__name__}): ask the partner to authorise our public key for "
                "that user, or fix `username` / `key_file`"
            )
            return PermanentTransportError(msg)
        if isinstance(exc, _ShortTransferError):
            msg = f"{head}: {exc}; the file was not renamed to its final name"
            return RetryableTransportError(msg)
        if isinstance(exc, TimeoutError):
            msg = f"{head}: no answer from {at} within {self.timeout:g} s"
            return RetryableTransportError(msg)
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            msg = f"{head}: cannot connect to {at} ({exc.strerror}); check the server is up"
            return RetryableTransportError(msg)
        if isinstance(exc, socket.gaierror):
            msg = f"{head}: cannot resolve host `{self.host}` ({exc.strerror}); check `host`"
            return RetryableTransportError(msg)
        if isinstance(exc, EOFError | ConnectionError | paramiko.SSHException):
            reason = str(exc) or type(exc).__name__
            msg = f"{head}: connection to {at} lost ({reason})"
            return RetryableTransportError(msg)
        return self._translate_os(exc, head, path)

    def _translate_os(self, exc: OSError, head: str, path: str) -> TransportError:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.errno in {errno.ENOENT, errno.ENOTDIR}:
            msg = (
                f"{head}: no such file or folder on the server ({reason}); check "
                "`remote_in` / `remote_out` / `remote_archive` with the partner"
            )
            return PermanentTransportError(msg)
        if exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
            msg = (
                f"{head}: permission denied ({reason}); ask the partner to let user "
                f"`{self.username}` read and write `{posixpath.dirname(path) or path}`"
            )
            return PermanentTransportError(msg)
        msg = f"{head}: {reason}"
        return RetryableTransportError(msg)


def _kind_problem(mode: int | None) -> str | None:
    """Why an entry of this type (from the server's lstat) is never fetched, else None."""
    if mode is None:
        return f"has no file type in the server's listing; {_ASK}"
    if stat.S_ISLNK(mode):
        return (
            "is a symbolic link; links on the partner's server are never followed (where it "
            f"leads cannot be checked from here); {_ASK}"
        )
    if stat.S_ISDIR(mode):
        return f"is a folder, not a regular file; {_ASK}"
    if not stat.S_ISREG(mode):
        return f"is not a regular file; {_ASK}"
    return None


def _list_folder(sftp: paramiko.SFTPClient, path: str) -> list[tuple[str, paramiko.SFTPAttributes]]:
    """``sftp.listdir_attr(path)`` as ``(name, attributes)``, whatever bytes the names are.

    paramiko decodes names as strict UTF-8, so one name in another encoding would fail the
    whole listing; here undecodable bytes are kept as surrogates (``surrogateescape``) for
    :func:`name_problem` to refuse that one entry.
    """
    kind, msg = sftp._request(CMD_OPENDIR, path)
    if kind != CMD_HANDLE:
        error = "Expected handle"
        raise SFTPError(error)
    handle = msg.get_binary()
    out = []
    while True:
        try:
            kind, msg = sftp._request(CMD_READDIR, handle)
        except EOFError:  # the end of the folder
            break
        if kind != CMD_NAME:
            error = "Expected name response"
            raise SFTPError(error)
        for _ in range(msg.get_int()):
            name = msg.get_string().decode("utf-8", "surrogateescape")
            longname = msg.get_string().decode("utf-8", "replace")
            attrs = paramiko.SFTPAttributes._from_msg(msg, name, longname)
            if name not in {".", ".."}:
                out.append((name, attrs))
    sftp._request(CMD_CLOSE, handle)
    return out


def check_key_file(path: Path, where: str) -> None:
    """Refuse a private key that the group or others may read or write (`ConfigError`).

    A key that does not exist (or cannot be looked at) is left to the connection, which
    says so; this check is only about a key that others can read.

    Args:
        path: the key file.
        where: the transport it is for, for the message.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_IMODE(mode) & KEY_MODE_MASK:
        msg = (
            f"private key `{path}` for {where} can be read or written by others (mode "
            f"{stat.S_IMODE(mode):04o}): a private key must be private to this user; run "
            f"`chmod 600 {path}` (and think about replacing the key if others could read it)"
        )
        raise ConfigError(msg)


def _open_local(path: Path, what: str) -> Any:
    """Open a local temporary file for writing, as a permanent error if impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")
    except OSError as exc:
        msg = f"{what}: cannot write `{path}` ({exc.strerror}); check the local folder"
        raise PermanentTransportError(msg) from None
