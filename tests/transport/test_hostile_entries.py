"""Hostile entries in a partner's inbound folder, on a real folder and a real sshd (issue 14).

Each hostile entry lies beside good files. The listing never fails as a whole: the good files
are listed and fetched, each hostile entry is listed with its ``problem`` (or its fetch
raises `RemoteEntryError` naming it), and no transient retry happens (the back-off sleeps are
recorded: there must be none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from clearing.errors import ConfigError, RemoteEntryError, RetryableTransportError
from clearing.transport import RemoteFile, RetryPolicy, SftpTransport

if TYPE_CHECKING:
    from .conftest import SshServer, TransportFactory

Made = tuple["TransportFactory", Path]

GOOD = {"CDFRAF9HKGCL01506": b"tap one", "CDFRAF9HKGCL01507": b"tap two"}
SECRET = b"a local file outside the exchange folder"


class Sleeps(list[float]):
    """Records the back-off delays instead of waiting: a retry shows as an entry."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _good(remote: Path) -> None:
    for name, data in GOOD.items():
        (remote / name).write_bytes(data)


def _kind(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["make_transport"])


def _hostile(remote: Path, outside: Path) -> dict[str, str]:
    """Make the hostile entries in ``remote``; their listed names -> the expected problem
    (for the folder transport; SFTP refuses every symbolic link as such)."""
    long_name = "CD" + "X" * 253  # 255 characters: the file system's limit, not ours
    (remote / long_name).write_bytes(b"long")
    os.close(os.open(bytes(remote) + b"/CDFRAF9HKGCL0\xff001", os.O_CREAT | os.O_WRONLY))
    (remote / "CDFRAF9HKGCL\u0661\u0662\u0663\u0664\u0665").write_bytes(b"arabic digits")
    (remote / "CDFRAF9HKGCL01508\n").write_bytes(b"trailing newline")
    (remote / "CDLOOP").symlink_to(remote / "CDLOOP")
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    (remote / "CDOUTSIDE").symlink_to(secret)
    (remote / "CDDIR").mkdir()
    os.mkfifo(remote / "CDFIFO")
    return {
        long_name: "name is too long (255 characters, at most 200)",
        "CDFRAF9HKGCL0\\xff001": "name is not valid UTF-8",
        "CDFRAF9HKGCL\u0661\u0662\u0663\u0664\u0665": "name is not ASCII",
        "CDFRAF9HKGCL01508\n": "name holds a control or non-printable character (U+000A",
        "CDLOOP": "is a symbolic link loop",
        "CDOUTSIDE": "is a symbolic link out of the exchange folder",
        "CDDIR": "is a folder, not a regular file",
        "CDFIFO": "is not a regular file (a FIFO)",
    }


def test_hostile_entries_are_listed_with_their_problem_and_good_files_are_fetched(
    make_transport: Made,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    factory, remote = make_transport
    _good(remote)
    expected = _hostile(remote, tmp_path_factory.mktemp("outside"))
    if _kind(request) == "sftp":  # links on a server are never followed, wherever they lead
        expected["CDLOOP"] = expected["CDOUTSIDE"] = "is a symbolic link; links on the"
        expected["CDFIFO"] = "is not a regular file"
    sleeps = Sleeps()
    t = factory(retry=RetryPolicy(attempts=4, base_delay=0.01, sleep=sleeps))

    listed = t.poll("CD*")

    good = [f for f in listed if f.problem is None]
    assert [f.name for f in good] == sorted(GOOD)
    assert [f.size for f in good] == [len(GOOD[f.name]) for f in good]
    problems = {f.name: f.problem or "" for f in listed if f.problem is not None}
    assert sorted(problems) == sorted(expected)
    for name, start in expected.items():
        assert problems[name].startswith(start), (name, problems[name])
        assert "; " in problems[name]  # then what to do
    inbox = tmp_path / "inbox"
    for f in good:
        assert t.fetch(f.name, inbox).read_bytes() == GOOD[f.name]
    # fetching a refused entry anyway: one RemoteEntryError naming it, nothing written
    for f in listed:
        if f.problem is None:
            continue
        with pytest.raises(RemoteEntryError) as err:
            t.fetch(f.name, inbox)
        assert err.value.entry == f.name
        assert t.where in str(err.value)
        assert "refused, left on the server" in str(err.value)
    assert sorted(p.name for p in inbox.iterdir()) == sorted(GOOD)
    assert SECRET not in b"".join(p.read_bytes() for p in inbox.iterdir())
    assert sleeps == []  # nothing was retried as transient


def test_a_trailing_newline_never_matches_a_regular_expression(make_transport: Made) -> None:
    factory, remote = make_transport
    _good(remote)
    (remote / "CDFRAF9HKGCL01508\n").write_bytes(b"trailing newline")
    t = factory()
    strict = t.poll(r"re:CD[A-Z0-9]{5}HKGCL[0-9]{5}")
    assert [(f.name, f.problem) for f in strict] == [(n, None) for n in sorted(GOOD)]
    # a pattern that would take the name: listed, but refused, never fetched as good
    loose = {f.name: f.problem for f in t.poll(r"re:CD.*")}
    assert (loose["CDFRAF9HKGCL01508\n"] or "").startswith("name holds a control")


def test_folder_follows_a_link_only_inside_the_exchange_folder(
    make_transport: Made, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    factory, remote = make_transport
    (remote / "store").mkdir()
    (remote / "store" / "real").write_bytes(b"linked tap")
    (remote / "CDFRAF9HKGCL01509").symlink_to(remote / "store" / "real")
    t = factory()
    [entry] = t.poll("CD*")
    if _kind(request) == "folder":
        assert entry == RemoteFile(
            "CDFRAF9HKGCL01509", 10, int((remote / "store" / "real").stat().st_mtime)
        )
        assert t.fetch(entry.name, tmp_path / "in").read_bytes() == b"linked tap"
    else:
        assert (entry.problem or "").startswith("is a symbolic link")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: no permission denied")
def test_an_unreadable_file_is_refused_not_retried(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    _good(remote)
    (remote / "CDFRAF9HKGCL01510").write_bytes(b"secret")
    (remote / "CDFRAF9HKGCL01510").chmod(0)
    sleeps = Sleeps()
    t = factory(retry=RetryPolicy(attempts=4, base_delay=0.01, sleep=sleeps))
    refused = [f for f in t.poll("CD*") if f.name == "CDFRAF9HKGCL01510"]
    if refused[0].problem is None:  # SFTP cannot tell from the listing: the read says so
        with pytest.raises(RemoteEntryError, match="cannot be read on the server"):
            t.fetch("CDFRAF9HKGCL01510", tmp_path / "in")
    else:
        assert refused[0].problem.startswith("is not readable by this user")
    for name in GOOD:
        assert t.fetch(name, tmp_path / "in").read_bytes() == GOOD[name]
    assert sleeps == []


def test_an_entry_gone_between_listing_and_fetch_is_refused(
    make_transport: Made, tmp_path: Path
) -> None:
    factory, remote = make_transport
    _good(remote)
    sleeps = Sleeps()
    t = factory(retry=RetryPolicy(attempts=4, base_delay=0.01, sleep=sleeps))
    assert len(t.poll("CD*")) == 2
    (remote / "CDFRAF9HKGCL01506").unlink()
    with pytest.raises(RemoteEntryError) as err:
        t.fetch("CDFRAF9HKGCL01506", tmp_path / "in")
    assert err.value.entry == "CDFRAF9HKGCL01506"
    assert t.fetch("CDFRAF9HKGCL01507", tmp_path / "in").read_bytes() == b"tap two"
    assert sleeps == []


def test_a_broken_connection_is_still_transient(sshd: SshServer, tmp_path: Path) -> None:
    """The entry errors did not swallow the network ones: no server, retried, exit 3."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    t = SftpTransport(
        "127.0.0.1",
        port,
        sshd.username,
        sshd.key_file,
        sshd.known_hosts,
        retry=RetryPolicy(attempts=2, base_delay=0.01, sleep=sleeps),
    )
    with pytest.raises(RetryableTransportError):
        t.fetch("CDFRAF9HKGCL01506", tmp_path / "in")
    assert sleeps == [0.01]


def test_the_archive_folder_inside_the_inbound_folder_is_not_listed(
    make_transport: Made,
) -> None:
    factory, remote = make_transport
    _good(remote)
    (remote / "done").mkdir()
    t = factory(after_fetch="archive", remote_archive=str(remote / "done"))
    assert [(f.name, f.problem) for f in t.poll()] == [(n, None) for n in sorted(GOOD)]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_a_key_others_can_read_or_write_is_refused(
    sshd: SshServer, tmp_path: Path, mode: int
) -> None:
    key = tmp_path / "id_ed25519"
    key.write_bytes(sshd.key_file.read_bytes())
    key.chmod(mode)
    with pytest.raises(ConfigError) as err:
        sshd.transport(tmp_path, key_file=key)
    assert str(key) in str(err.value)
    assert f"chmod 600 {key}" in str(err.value)
    assert f"mode {mode:04o}" in str(err.value)
    key.chmod(0o600)
    with sshd.transport(tmp_path, key_file=key) as t:
        assert t.poll() == [RemoteFile("id_ed25519", key.stat().st_size, t.poll()[0].mtime)]


_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
_AS_NOBODY = """
import json, sys
from pathlib import Path
from clearing.errors import RemoteEntryError
from clearing.transport import LocalFolderTransport, RetryPolicy
sleeps = []
remote, inbox = Path(sys.argv[1]), Path(sys.argv[2])
t = LocalFolderTransport(remote, retry=RetryPolicy(attempts=4, sleep=sleeps.append))
listed = {f.name: f.problem for f in t.poll("CD*")}
fetched = [t.fetch(n, inbox).read_text() for n, p in sorted(listed.items()) if p is None]
try:
    t.fetch("CDFRAF9HKGCL01510", inbox)
    error = None
except RemoteEntryError as exc:
    error = [exc.entry, str(exc)]
print(json.dumps({"listed": listed, "fetched": fetched, "error": error, "sleeps": sleeps}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root to `nobody` to meet a denial")
def test_an_unreadable_file_in_a_folder_is_refused_for_a_normal_user(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Root reads everything, so the folder transport runs as `nobody` (setpriv) here."""
    import json
    import shutil
    import subprocess
    import sys
    import tempfile

    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv to run as another user")
    base = Path(tempfile.mkdtemp(prefix="clearing-unreadable-"))  # outside root's 0700 tmp
    try:
        base.chmod(0o755)
        remote, inbox = base / "remote", base / "inbox"
        remote.mkdir(mode=0o755)
        inbox.mkdir(mode=0o777)
        inbox.chmod(0o777)
        (remote / "CDFRAF9HKGCL01506").write_text("tap one")
        (remote / "CDFRAF9HKGCL01506").chmod(0o644)
        (remote / "CDFRAF9HKGCL01510").write_text("not for you")
        (remote / "CDFRAF9HKGCL01510").chmod(0o600)  # root's, unreadable to others
        run = subprocess.run(
            [*_NOBODY, sys.executable, "-c", _AS_NOBODY, str(remote), str(inbox)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            check=False,
        )
        if run.returncode != 0 and "Permission denied" in run.stderr and "import" in run.stderr:
            pytest.skip(f"`nobody` cannot import the package here: {run.stderr[-300:]}")
        assert run.returncode == 0, run.stderr
        got = json.loads(run.stdout)
    finally:
        shutil.rmtree(base)
    assert got["listed"]["CDFRAF9HKGCL01506"] is None
    assert got["listed"]["CDFRAF9HKGCL01510"].startswith("is not readable by this user")
    assert got["fetched"] == ["tap one"]
    assert got["error"][0] == "CDFRAF9HKGCL01510"
    assert "permission denied" in got["error"][1]
    assert got["sleeps"] == []


def test_a_full_local_disk_is_a_fault_with_the_fix_not_a_retried_transfer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import shutil

    from clearing.errors import ExitCode, FaultError
    from clearing.transport import LocalFolderTransport

    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "CDFRAF9HKGCL01506").write_bytes(b"tap")
    sleeps: list[float] = []
    t = LocalFolderTransport(remote, retry=RetryPolicy(attempts=4, sleep=sleeps.append))
    inbox = tmp_path / "inbox"

    def full(src: object, dst: object, *_: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device", str(inbox / ".partial"))

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(FaultError) as caught:
        t.fetch("CDFRAF9HKGCL01506", inbox)
    assert caught.value.exit_code == ExitCode.CONFIG  # 2: the operator frees space
    assert "inbox" in str(caught.value)
    assert sleeps == []  # not retried as a network hiccup
