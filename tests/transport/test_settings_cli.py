"""The [transport] settings and the transport verbs of the CLI, against the real sshd."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from clearing.cli import app
from clearing.config import FolderPartner
from clearing.errors import ConfigError
from clearing.transport import LocalFolderTransport, SftpTransport
from clearing.transport.outbox import Outbox, OutboxState
from clearing.transport.settings import load_transport_settings

if TYPE_CHECKING:
    from .conftest import SshServer


def _toml(workdir: Path, text: str) -> Path:
    """A work folder whose clearing.toml is us ([home]) and ``text``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\n\n' + text)
    return workdir


def _sftp_partner(
    code: str, server: SshServer, remote: Path, known_hosts: Path | None = None
) -> str:
    return f"""
[transport.partners.{code}]
kind = "sftp"
host = "{server.host}"
port = {server.port}
username = "{server.username}"
key_file = "{server.key_file}"
known_hosts = "{known_hosts or server.known_hosts}"
remote_in = "{remote}/in"
remote_out = "{remote}/out"
pattern = "CD*"
sidecar = true
timeout = 5
"""


def test_settings_make_both_kinds(tmp_path: Path) -> None:
    workdir = _toml(
        tmp_path / "var",
        """
[validation]
late_days = 20                  # of another stage

[transport]
retry_attempts = 2
retry_base_delay = 0.5

[transport.partners.FRAF9]
kind = "sftp"
host = "sftp.fraf9.example"
username = "hkgcl"
key_file = "keys/id_ed25519"
known_hosts = "/etc/clearing/known_hosts"
after_fetch = "archive"
remote_archive = "done"

[transport.partners.04172]
kind = "folder"
root = "exchange/04172"
remote_out = "out"
sidecar = true
""",
    )
    settings = load_transport_settings(workdir)
    assert settings.retry().attempts == 2
    sftp = settings.transport_for("FRAF9", workdir)
    assert isinstance(sftp, SftpTransport)
    assert (sftp.port, sftp.key_file) == (22, workdir / "keys" / "id_ed25519")
    assert sftp.known_hosts == Path("/etc/clearing/known_hosts")
    assert (sftp.after_fetch, sftp.remote_archive) == ("archive", "done")
    folder = settings.transport_for("04172", workdir)
    assert isinstance(folder, LocalFolderTransport)
    assert folder.outbound == workdir / "exchange" / "04172" / "out"
    assert folder.sidecar
    with pytest.raises(
        ConfigError, match=r"no transport for partner `GBRG9` \(configured: 04172, FRAF9\)"
    ):
        settings.transport_for("GBRG9", workdir)
    cfg = settings.partner("04172")
    assert isinstance(cfg, FolderPartner)
    with pytest.raises(ValidationError):
        cfg.root = Path("/elsewhere")  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[transport.partners.FRAF9]\nkind = "folder"\nroot = "x"\nhost = "h"\n', "host"),
        ('[transport.partners.FRAF9]\nkind = "ftp"\n', "kind"),
        ('[transport.partners.FRAF9]\nkind = "sftp"\nhost = "h"\n', "username"),
        ('[transport.partners."FR AF9"]\nkind = "folder"\nroot = "x"\n', "partners"),
        ("[transport]\nretry_attempts = 0\n", "retry_attempts"),
        ("[transport\n", "not valid TOML"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as err:
        load_transport_settings(_toml(tmp_path, text))
    assert "clearing.toml" in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no clearing\.toml in `"):
        load_transport_settings(tmp_path)


def test_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = _toml(
        tmp_path,
        """
[transport.partners.FRAF9]
kind = "sftp"
host = "h"
username = "u"
key_file = "k"
known_hosts = "kh"
password_env = "CLEARING_TEST_FRAF9_PASSWORD"
""",
    )
    settings = load_transport_settings(workdir)
    monkeypatch.delenv("CLEARING_TEST_FRAF9_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="CLEARING_TEST_FRAF9_PASSWORD"):
        settings.transport_for("FRAF9", workdir)
    monkeypatch.setenv("CLEARING_TEST_FRAF9_PASSWORD", "s3cret")
    transport = settings.transport_for("FRAF9", workdir)
    assert "s3cret" not in repr(transport) + repr(vars(transport))


def test_cli_send_status_resend_collect(sshd: SshServer, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    (remote / "in").mkdir(parents=True)
    (remote / "out").mkdir()
    exchange = tmp_path / "exchange"
    (exchange / "out").mkdir(parents=True)
    (exchange / "in").mkdir()
    workdir = _toml(
        tmp_path / "var",
        # the partners whose channels deliver (collect quarantines a channel that is not one)
        '[partners.FRAF9]\nstandard = "tap"\n\n[partners.DEUD9]\nstandard = "tap"\n\n'
        "[transport]\nretry_attempts = 2\nretry_base_delay = 0.01\n"
        + _sftp_partner("FRAF9", sshd, remote)
        + f'\n[transport.partners.DEUD9]\nkind = "folder"\nroot = "{exchange}"\n'
        'remote_in = "in"\nremote_out = "out"\n',
    )
    out = tmp_path / "var" / "out"
    out.mkdir()
    (out / "CDHKGCLFRAF900001").write_bytes(b"tap for FRAF9")
    (out / "CDHKGCLDEUD900001").write_bytes(b"tap for DEUD9")
    outbox = Outbox(workdir / "clearing.duckdb")
    outbox.register(out / "CDHKGCLFRAF900001", "FRAF9", "tap")
    outbox.register(out / "CDHKGCLDEUD900001", "DEUD9", "tap")
    runner = CliRunner()

    result = runner.invoke(app, ["send", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "sent CDHKGCLFRAF900001\nsent CDHKGCLDEUD900001\n"  # registry order
    assert (remote / "out" / "CDHKGCLFRAF900001").read_bytes() == b"tap for FRAF9"
    digest = hashlib.sha256(b"tap for FRAF9").hexdigest()
    assert (remote / "out" / "CDHKGCLFRAF900001.sha256").read_text().split()[0] == digest
    assert (exchange / "out" / "CDHKGCLDEUD900001").read_bytes() == b"tap for DEUD9"
    assert runner.invoke(app, ["send", "--workdir", str(workdir)]).stdout == "nothing due\n"

    status = runner.invoke(app, ["transport", "status", "--workdir", str(workdir)])
    assert status.exit_code == 0
    assert [line.split("\t")[:5] for line in status.stdout.splitlines()] == [
        ["CDHKGCLFRAF900001", "FRAF9", "tap", "sent", "1"],
        ["CDHKGCLDEUD900001", "DEUD9", "tap", "sent", "1"],
    ]

    (remote / "out" / "CDHKGCLFRAF900001").unlink()  # the partner lost it
    result = runner.invoke(
        app, ["resend", str(out / "CDHKGCLFRAF900001"), "--workdir", str(workdir)]
    )
    assert result.exit_code == 0, result.output
    assert (remote / "out" / "CDHKGCLFRAF900001").read_bytes() == b"tap for FRAF9"
    assert outbox.get("CDHKGCLFRAF900001").attempts == 2

    (out / "CDHKGCLFRAF900001").write_bytes(b"something else")
    result = runner.invoke(app, ["resend", "CDHKGCLFRAF900001", "--workdir", str(workdir)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: `")
    assert "refusing to send" in result.stderr
    assert (remote / "out" / "CDHKGCLFRAF900001").read_bytes() == b"tap for FRAF9"

    (remote / "in" / "CDFRAF9HKGCL01506").write_bytes(b"tap in")
    (remote / "in" / "notes.txt").write_bytes(b"not matched by the pattern")
    (exchange / "in" / "CDDEUD9HKGCL00738").write_bytes(b"tap in 2")
    result = runner.invoke(app, ["collect", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    inbox = workdir / "inbox"
    assert result.stdout == (
        f"fetched {inbox / 'CDDEUD9HKGCL00738'}\nfetched {inbox / 'CDFRAF9HKGCL01506'}\n"
    )
    assert (inbox / "CDFRAF9HKGCL01506").read_bytes() == b"tap in"
    again = runner.invoke(app, ["collect", "--workdir", str(workdir), "--partner", "FRAF9"])
    assert (again.exit_code, again.stdout) == (0, "")


def test_cli_exit_codes(sshd: SshServer, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    (remote / "in").mkdir(parents=True)
    (remote / "out").mkdir()
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    workdir = _toml(
        tmp_path / "var",
        "[transport]\nretry_attempts = 1\n" + _sftp_partner("FRAF9", sshd, remote, empty),
    )
    (workdir / "A1").write_bytes(b"a")
    Outbox(workdir / "clearing.duckdb").register(workdir / "A1", "FRAF9", "tap")
    runner = CliRunner()

    result = runner.invoke(app, ["send", "--workdir", str(workdir)])
    assert result.exit_code == 3
    assert "not in known_hosts" in result.stderr
    assert "1 of 1 due files not sent" in result.stderr
    assert Outbox(workdir / "clearing.duckdb").get("A1").state is OutboxState.FAILED

    result = runner.invoke(app, ["collect", "--workdir", str(workdir)])
    assert result.exit_code == 3
    assert "collect failed for FRAF9" in result.stderr

    result = runner.invoke(app, ["send", "--workdir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no clearing.toml in `" in result.stderr

    with pytest.raises(ConfigError):
        runner.invoke(
            app, ["send", "--workdir", str(tmp_path / "nowhere"), "--debug"], catch_exceptions=False
        )
