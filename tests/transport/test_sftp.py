"""SFTP only: host keys, authentication, retries, and connections cut in the middle."""

from __future__ import annotations

import hashlib
import socket
from typing import TYPE_CHECKING

import pytest

from clearing.errors import PermanentTransportError, RetryableTransportError
from clearing.transport import RetryPolicy, SftpTransport

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import SshServer

BIG = 24 * 1024 * 1024  # large enough to be cut in the middle


class Sleeps(list[float]):
    """Records the back-off delays instead of waiting (the retries themselves are real)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    folder.mkdir()
    return folder


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "CDHKGCLUSAU900412"
    path.parent.mkdir()
    # not random: cheap to make, but no two blocks alike, so a misplaced block would show
    path.write_bytes(b"".join(i.to_bytes(8, "big") * 128 for i in range(BIG // 1024)))
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Cutter:
    """A progress callback that kills the server side of the connection once, mid-transfer."""

    def __init__(self, server: SshServer, after: int) -> None:
        self.server = server
        self.after = after
        self.cuts = 0

    def __call__(self, name: str, done: int, total: int) -> None:
        if self.cuts == 0 and done >= self.after:
            self.cuts += 1
            killed = self.server.session_processes()
            assert killed, "no sshd session process to kill"
            for proc in killed:
                proc.kill()


@pytest.fixture
def transports() -> Iterator[list[SftpTransport]]:
    made: list[SftpTransport] = []
    yield made
    for t in made:
        t.close()


def test_upload_cut_in_the_middle_leaves_no_final_file(
    sshd: SshServer, remote: Path, big_file: Path, transports: list[SftpTransport]
) -> None:
    cutter = Cutter(sshd, after=BIG // 4)
    t = sshd.transport(remote, retry=RetryPolicy(attempts=1), progress=cutter)
    transports.append(t)
    with pytest.raises(RetryableTransportError) as err:
        t.put(big_file, sidecar=True)
    assert cutter.cuts == 1
    assert "CDHKGCLUSAU900412" in str(err.value)
    assert f"127.0.0.1:{sshd.port}" in str(err.value)
    assert "CDHKGCLUSAU900412" not in _names(remote)
    assert "CDHKGCLUSAU900412.sha256" not in _names(remote)

    t.put(big_file, sidecar=True)  # the next try completes it
    assert _names(remote) == ["CDHKGCLUSAU900412", "CDHKGCLUSAU900412.sha256"]
    sent = (remote / "CDHKGCLUSAU900412").read_bytes()
    assert sent == big_file.read_bytes()
    digest = hashlib.sha256(sent).hexdigest()
    assert (remote / "CDHKGCLUSAU900412.sha256").read_text().startswith(digest)


def test_upload_cut_in_the_middle_is_retried(
    sshd: SshServer, remote: Path, big_file: Path, transports: list[SftpTransport]
) -> None:
    sleeps = Sleeps()
    cutter = Cutter(sshd, after=BIG // 3)
    policy = RetryPolicy(attempts=3, base_delay=0.01, sleep=sleeps)
    t = sshd.transport(remote, retry=policy, progress=cutter)
    transports.append(t)
    t.put(big_file)
    assert cutter.cuts == 1
    assert t.connect_attempts == 2
    assert sleeps == [0.01]
    assert _names(remote) == ["CDHKGCLUSAU900412"]
    assert (remote / "CDHKGCLUSAU900412").read_bytes() == big_file.read_bytes()


def test_download_cut_in_the_middle_leaves_no_local_file(
    sshd: SshServer, remote: Path, big_file: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    (remote / big_file.name).write_bytes(big_file.read_bytes())
    inbox = tmp_path / "inbox"
    cutter = Cutter(sshd, after=BIG // 4)
    t = sshd.transport(remote, retry=RetryPolicy(attempts=1), progress=cutter)
    transports.append(t)
    with pytest.raises(RetryableTransportError):
        t.fetch(big_file.name, inbox)
    assert cutter.cuts == 1
    assert _names(inbox) == []

    assert t.fetch(big_file.name, inbox).read_bytes() == big_file.read_bytes()
    assert _names(inbox) == [big_file.name]


def test_a_dropped_idle_connection_is_reopened(
    sshd: SshServer, remote: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    src = tmp_path / "A1"
    src.write_bytes(b"a")
    t = sshd.transport(remote, retry=RetryPolicy(attempts=2, base_delay=0.01))
    transports.append(t)
    t.put(src)
    for proc in sshd.session_processes():
        proc.kill()
    t.put(src, "A2")
    assert _names(remote) == ["A1", "A2"]
    assert t.connect_attempts >= 2


def test_unknown_host_key_is_refused(
    sshd: SshServer, remote: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    sleeps = Sleeps()
    t = sshd.transport(remote, known_hosts=empty, retry=RetryPolicy(attempts=3, sleep=sleeps))
    transports.append(t)
    src = tmp_path / "CDHKGCLFRAF900001"
    src.write_bytes(b"tap")
    with pytest.raises(PermanentTransportError) as err:
        t.put(src)
    message = str(err.value)
    assert f"127.0.0.1:{sshd.port}" in message
    assert str(empty) in message
    assert "not in known_hosts" in message
    assert "SHA256:" in message  # the fingerprint to compare with the partner's
    assert f"ssh-keyscan -p {sshd.port}" in message
    assert (t.connect_attempts, sleeps) == (1, [])
    assert _names(remote) == []


def test_known_hosts_for_another_server_only_is_refused(
    sshd: SshServer, remote: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    other = tmp_path / "known_hosts"
    host_pub = sshd.known_hosts.read_text().split(maxsplit=1)[1]
    other.write_text(f"[127.0.0.2]:{sshd.port} {host_pub}")  # right key, other host
    t = sshd.transport(remote, known_hosts=other)
    transports.append(t)
    with pytest.raises(PermanentTransportError, match="not in known_hosts"):
        t.poll()


def test_changed_host_key_is_refused(
    sshd: SshServer, remote: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    changed = tmp_path / "known_hosts"
    changed.write_text(f"[127.0.0.1]:{sshd.port} {sshd.other_host_pub}\n")
    t = sshd.transport(remote, known_hosts=changed)
    transports.append(t)
    src = tmp_path / "A1"
    src.write_bytes(b"a")
    with pytest.raises(PermanentTransportError, match="does NOT match") as err:
        t.put(src)
    assert "ssh-keygen -R" in str(err.value)
    assert t.connect_attempts == 1
    assert _names(remote) == []


def test_missing_known_hosts_file_is_permanent(
    sshd: SshServer, remote: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    t = sshd.transport(remote, known_hosts=tmp_path / "nope" / "known_hosts")
    transports.append(t)
    with pytest.raises(PermanentTransportError, match="known_hosts") as err:
        t.poll()
    assert str(tmp_path / "nope" / "known_hosts") in str(err.value)


def test_wrong_user_key_is_permanent_and_not_retried(
    sshd: SshServer, remote: Path, tmp_path: Path, transports: list[SftpTransport]
) -> None:
    sleeps = Sleeps()
    t = sshd.transport(
        remote,
        key_file=sshd.other_key_file,
        password="hunter2",  # the server takes no passwords
        retry=RetryPolicy(attempts=4, sleep=sleeps),
    )
    transports.append(t)
    src = tmp_path / "A1"
    src.write_bytes(b"a")
    with pytest.raises(PermanentTransportError) as err:
        t.put(src)
    message = str(err.value)
    assert "authentication of user" in message
    assert str(sshd.other_key_file) in message
    assert f"127.0.0.1:{sshd.port}" in message
    assert "hunter2" not in message + repr(t)
    assert t.connect_attempts == 1
    assert sleeps == []
    assert _names(remote) == []


@pytest.mark.parametrize("content", [None, "not a key\n"])
def test_unusable_key_file_is_permanent(
    sshd: SshServer, remote: Path, tmp_path: Path, content: str | None
) -> None:
    key = tmp_path / "id_ed25519"
    if content is not None:
        key.write_text(content)
        key.chmod(0o600)  # private, as a key must be (else refused before this check)
    t = sshd.transport(remote, key_file=key)
    with pytest.raises(PermanentTransportError, match="key file") as err:
        t.poll()
    assert str(key) in str(err.value)


def test_connection_refused_is_retried_with_backoff(remote: Path, sshd: SshServer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    t = SftpTransport(
        "127.0.0.1",
        port,
        sshd.username,
        sshd.key_file,
        sshd.known_hosts,
        retry=RetryPolicy(attempts=3, base_delay=0.5, max_delay=0.75, sleep=sleeps),
    )
    with pytest.raises(RetryableTransportError) as err:
        t.poll()
    assert f"127.0.0.1:{port}" in str(err.value)
    assert "gave up after 3 attempts" in str(err.value)
    assert t.connect_attempts == 3
    assert sleeps == [0.5, 0.75]


def test_silent_server_times_out_and_is_retried(remote: Path, sshd: SshServer) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        t = SftpTransport(
            "127.0.0.1",
            port,
            sshd.username,
            sshd.key_file,
            sshd.known_hosts,
            timeout=0.3,
            retry=RetryPolicy(attempts=2, base_delay=0.01),
        )
        with pytest.raises(RetryableTransportError) as err:
            t.poll()
        t.close()
    assert "gave up after 2 attempts" in str(err.value)
    assert t.connect_attempts == 2
