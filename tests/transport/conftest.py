"""A real OpenSSH ``sshd`` on 127.0.0.1 for the transport tests, and transport factories.

The server runs as the current user with a throw-away configuration, host key and user key
in a temporary folder; it serves SFTP with ``internal-sftp``. Remote paths are absolute paths
on this machine, so a test can look at the "remote" side directly.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from clearing.errors import TransportError
from clearing.transport import LocalFolderTransport, RetryPolicy, SftpTransport, Transport

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@dataclass(frozen=True)
class SshServer:
    """How to reach the test sshd, and the files that go with it."""

    host: str
    port: int
    username: str
    key_file: Path
    known_hosts: Path
    other_key_file: Path  # a valid key that the server does not accept
    other_host_pub: str  # a host public key that is not the server's
    log: Path
    process: subprocess.Popen[bytes]

    def session_processes(self) -> list[psutil.Process]:
        """The per-connection sshd processes (children of the listener)."""
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children

    def transport(self, remote: Path, **kwargs: Any) -> SftpTransport:
        """An `SftpTransport` to this server with ``remote`` as inbound and outbound folder."""
        args: dict[str, Any] = {
            "remote_in": str(remote),
            "remote_out": str(remote),
            "retry": FAST_RETRY,
            "timeout": 10.0,
        }
        args.update(kwargs)
        return SftpTransport(
            self.host,
            self.port,
            self.username,
            args.pop("key_file", self.key_file),
            args.pop("known_hosts", self.known_hosts),
            **args,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _sshd_binary() -> str:
    for candidate in (*SSHD_CANDIDATES, shutil.which("sshd")):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    pytest.fail(
        "no OpenSSH sshd found (looked in /usr/sbin, /usr/local/sbin and PATH): install "
        "openssh-server (apt-get install openssh-server); the SFTP tests need a real server"
    )


def _privsep_dir() -> None:
    """sshd started by root needs its privilege-separation folder (/run/sshd)."""
    if os.geteuid() != 0:
        return  # sshd run by a normal user does not chroot, so it does not need it
    try:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        pytest.fail(f"cannot create /run/sshd for sshd ({exc}): create it (mkdir -p /run/sshd)")


def _write_config(sshd: str, base: Path, port: int) -> Path:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {base / 'host_key'}",
        f"PidFile {base / 'sshd.pid'}",
        f"AuthorizedKeysFile {base / 'authorized_keys'}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "StrictModes no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "MaxStartups 50",
    ]
    config = base / "sshd_config"
    # OpenSSH >= 9.8 blocks a source address after auth failures or killed sessions, which
    # is what these tests do on purpose; older versions do not know the option.
    config.write_text("\n".join([*lines, "PerSourcePenalties no"]) + "\n")
    check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        config.write_text("\n".join(lines) + "\n")
        check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            pytest.fail(f"the test sshd_config is rejected by {sshd}: {check.stderr.strip()}")
    return config


def _start(sshd: str, config: Path, port: int, log: Path) -> subprocess.Popen[bytes] | None:
    """Start sshd and wait until it greets on ``port``; None if the port was taken."""
    with log.open("wb") as err:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=err)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if "Address already in use" in text:
                return None
            pytest.fail(f"sshd exited with {proc.returncode}: {text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    pytest.fail(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text(errors='replace')}")


def _check_login(server: SshServer) -> None:
    """Fail early, with sshd's own words, if the test user cannot log in at all."""
    probe = server.transport(server.log.parent, retry=RetryPolicy(attempts=1))
    try:
        probe.poll()
    except TransportError as exc:
        server.process.kill()
        server.process.wait()
        pytest.fail(
            f"the test sshd refuses the test login ({exc}); sshd says:\n"
            f"{server.log.read_text(errors='replace')}\n(if it says the account is locked, "
            f"give user `{server.username}` a non-locked password field, e.g. `usermod -p '*'`)"
        )
    finally:
        probe.close()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A running sshd on 127.0.0.1:<free port> that accepts our test key."""
    sshd = _sshd_binary()
    _privsep_dir()
    base = tmp_path_factory.mktemp("sshd")
    _keygen(base / "host_key")
    _keygen(base / "other_host_key")
    _keygen(base / "user_key")
    _keygen(base / "other_user_key")
    (base / "authorized_keys").write_text((base / "user_key.pub").read_text())
    log = base / "sshd.log"
    proc = None
    for _ in range(5):  # the free port can be taken between the probe and sshd's bind
        port = _free_port()
        proc = _start(sshd, _write_config(sshd, base, port), port, log)
        if proc is not None:
            break
    if proc is None:
        pytest.fail("sshd could not bind a free port on 127.0.0.1 in 5 tries")
    host_pub = " ".join((base / "host_key.pub").read_text().split()[:2])
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    other = " ".join((base / "other_host_key.pub").read_text().split()[:2])
    server = SshServer(
        host="127.0.0.1",
        port=port,
        username=getpass.getuser(),
        key_file=base / "user_key",
        known_hosts=known_hosts,
        other_key_file=base / "other_user_key",
        other_host_pub=other,
        log=log,
        process=proc,
    )
    _check_login(server)
    try:
        yield server
    finally:
        for child in server.session_processes():
            child.kill()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


TransportFactory = Callable[..., Transport]


@pytest.fixture(params=["folder", "sftp"])
def make_transport(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TransportFactory, Path]]:
    """``(factory, remote)``: ``factory(**kwargs)`` makes a transport of either kind whose
    inbound and outbound folder is ``remote`` (a folder of this machine)."""
    remote = tmp_path / "remote"
    remote.mkdir()
    made: list[Transport] = []

    def factory(**kwargs: Any) -> Transport:
        transport: Transport
        if request.param == "folder":
            args: dict[str, Any] = {
                "remote_in": str(remote),
                "remote_out": str(remote),
                "retry": FAST_RETRY,
            }
            args.update(kwargs)
            transport = LocalFolderTransport(tmp_path, **args)
        else:
            server: SshServer = request.getfixturevalue("sshd")
            transport = server.transport(remote, **kwargs)
        made.append(transport)
        return transport

    yield factory, remote
    for transport in made:
        transport.close()
