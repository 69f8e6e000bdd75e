"""A remote file whose bytes changed under the same name, size and mtime (issue 14).

The fetch ledger trusts (name, size, mtime) only once ``recheck_days`` have passed since the
bytes were fetched; before that, a file still on the server is downloaded and hashed again,
and other bytes are a new delivery.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from clearing.cli import app
from clearing.transport import FetchLedger, LocalFolderTransport, collect
from clearing.transport.settings import load_transport_settings

if TYPE_CHECKING:
    from .conftest import SshServer, TransportFactory

Made = tuple["TransportFactory", Path]
NAME = "CDFRAF9HKGCL01506"
MTIME = 1_790_000_000


class Counting:
    """A transport that counts its downloads (everything else goes to the real one)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.fetches = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def fetch(self, name: str, local_dir: Path, *, release: bool = True) -> Path:
        self.fetches += 1
        return self.inner.fetch(name, local_dir, release=release)  # type: ignore[attr-defined, no-any-return]


def _put(remote: Path, data: bytes) -> None:
    (remote / NAME).write_bytes(data)
    os.utime(remote / NAME, (MTIME, MTIME))  # the same mtime every time


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_changed_bytes_under_the_same_name_size_and_mtime_are_a_new_delivery(
    make_transport: Made, tmp_path: Path
) -> None:
    factory, remote = make_transport
    clock = Clock()
    ledger = FetchLedger(tmp_path / "state", clock=clock)
    assert ledger.recheck_days == 7
    inbox = tmp_path / "inbox"
    t = Counting(factory())
    _put(remote, b"one")
    assert collect("FRAF9", t, "CD*", inbox, ledger) == [inbox / NAME]  # type: ignore[arg-type]
    (inbox / NAME).unlink()  # processed

    # the same bytes, a day later: downloaded and hashed again, nothing new
    clock.now += timedelta(days=1)
    assert collect("FRAF9", t, "CD*", inbox, ledger) == []  # type: ignore[arg-type]
    assert t.fetches == 2

    # other bytes, same name, size and mtime: fetched as a new delivery
    _put(remote, b"ONE")
    assert collect("FRAF9", t, "CD*", inbox, ledger) == [inbox / NAME]  # type: ignore[arg-type]
    assert (inbox / NAME).read_bytes() == b"ONE"
    assert [(r.name, r.size, r.sha256, r.mtime) for r in ledger.entries("FRAF9")] == [
        (NAME, 3, hashlib.sha256(b"one").hexdigest(), MTIME),
        (NAME, 3, hashlib.sha256(b"ONE").hexdigest(), MTIME),
    ]
    (inbox / NAME).unlink()

    # eight days after the last new bytes: trusted by name, size and mtime, not downloaded
    clock.now += timedelta(days=8)
    _put(remote, b"OnE")
    assert collect("FRAF9", t, "CD*", inbox, ledger) == []  # type: ignore[arg-type]
    assert t.fetches == 3


def test_recheck_days_zero_trusts_name_size_and_mtime_at_once(
    make_transport: Made, tmp_path: Path
) -> None:
    factory, remote = make_transport
    ledger = FetchLedger(tmp_path / "state", recheck_days=0)
    inbox = tmp_path / "inbox"
    t = Counting(factory())
    _put(remote, b"one")
    assert collect("FRAF9", t, "CD*", inbox, ledger) == [inbox / NAME]  # type: ignore[arg-type]
    (inbox / NAME).unlink()
    _put(remote, b"ONE")
    assert collect("FRAF9", t, "CD*", inbox, ledger) == []  # type: ignore[arg-type]
    assert t.fetches == 1


def test_recheck_days_comes_from_the_transport_section(tmp_path: Path) -> None:
    (tmp_path / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\n')
    assert load_transport_settings(tmp_path).recheck_days == 7
    (tmp_path / "clearing.toml").write_text(
        '[home]\ntadig = "HKGCL"\n\n[transport]\nrecheck_days = 2\n'
    )
    assert load_transport_settings(tmp_path).recheck_days == 2


def test_collect_partners_passes_recheck_days_on(tmp_path: Path) -> None:
    """Through the CLI: a file changed under the same name, size and mtime is collected."""
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    workdir = tmp_path / "var"
    workdir.mkdir()
    (workdir / "clearing.toml").write_text(
        '[home]\ntadig = "HKGCL"\n\n[partners.FRAF9]\n\n[transport]\nrecheck_days = 3\n\n'
        f'[transport.partners.FRAF9]\nkind = "folder"\nroot = "{exchange}"\n'
    )
    _put(exchange, b"one")
    runner = CliRunner()
    result = runner.invoke(app, ["collect", "--workdir", str(workdir)])
    assert (result.exit_code, result.stdout) == (0, f"fetched {workdir / 'inbox' / NAME}\n")
    (workdir / "inbox" / NAME).unlink()
    _put(exchange, b"ONE")
    result = runner.invoke(app, ["collect", "--workdir", str(workdir)])
    assert (result.exit_code, result.stdout) == (0, f"fetched {workdir / 'inbox' / NAME}\n")
    assert (workdir / "inbox" / NAME).read_bytes() == b"ONE"
    assert isinstance(
        load_transport_settings(workdir).transport_for("FRAF9", workdir), LocalFolderTransport
    )


def test_cli_refuses_a_key_others_can_read_before_touching_anything(
    sshd: SshServer, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / NAME).write_bytes(b"tap")
    workdir = tmp_path / "var"
    (workdir / "keys").mkdir(parents=True)
    key = workdir / "keys" / "id_ed25519"
    key.write_bytes(sshd.key_file.read_bytes())
    key.chmod(0o644)
    (workdir / "clearing.toml").write_text(
        '[home]\ntadig = "HKGCL"\n\n[partners.FRAF9]\n\n[transport.partners.FRAF9]\nkind = "sftp"\n'
        f'host = "{sshd.host}"\nport = {sshd.port}\nusername = "{sshd.username}"\n'
        f'key_file = "keys/id_ed25519"\nknown_hosts = "{sshd.known_hosts}"\n'
        f'remote_in = "{remote}"\n'
    )
    result = CliRunner().invoke(app, ["collect", "--workdir", str(workdir)])
    assert result.exit_code == 2, result.output
    assert f"chmod 600 {key}" in result.stderr
    assert not (workdir / "inbox").exists()
    assert not (workdir / FetchLedger.FILE_NAME).exists()
    key.chmod(0o600)
    result = CliRunner().invoke(app, ["collect", "--workdir", str(workdir)])
    assert (result.exit_code, result.stdout) == (0, f"fetched {workdir / 'inbox' / NAME}\n")
