"""The contract every transport keeps, checked on both: a folder and a real sshd."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from clearing.errors import ConfigError, PermanentTransportError
from clearing.transport import FetchLedger, RemoteFile, Transport, collect

from .conftest import TransportFactory

Made = tuple[TransportFactory, Path]


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_is_a_transport(make_transport: Made) -> None:
    factory, _ = make_transport
    assert isinstance(factory(), Transport)


def test_put_then_fetch_round_trip(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    data = os.urandom(300_000) + b"\x00\xff" * 10
    src = _file(tmp_path / "out" / "CDHKGCLFRAF900001", data)
    t = factory()
    t.put(src)
    assert (remote / "CDHKGCLFRAF900001").read_bytes() == data
    assert _listing(remote) == ["CDHKGCLFRAF900001"]  # no temporary name left behind
    got = t.fetch("CDHKGCLFRAF900001", tmp_path / "back")
    assert got == tmp_path / "back" / "CDHKGCLFRAF900001"
    assert got.read_bytes() == data
    assert _listing(tmp_path / "back") == ["CDHKGCLFRAF900001"]


def test_put_under_another_name_replaces_a_stale_file(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    _file(remote / "RCHKGCLDEUD900007", b"stale, half-written by someone else")
    src = _file(tmp_path / "local.bin", b"the real RAP")
    factory().put(src, "RCHKGCLDEUD900007")
    assert (remote / "RCHKGCLDEUD900007").read_bytes() == b"the real RAP"
    assert _listing(remote) == ["RCHKGCLDEUD900007"]


def test_sidecar_holds_the_sha256(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    data = b"TAP bytes" * 1000
    src = _file(tmp_path / "CDHKGCLGBRG900353", data)
    factory().put(src, sidecar=True)
    digest = hashlib.sha256(data).hexdigest()
    assert (remote / "CDHKGCLGBRG900353.sha256").read_text() == f"{digest}  CDHKGCLGBRG900353\n"
    assert (remote / "CDHKGCLGBRG900353").read_bytes() == data


def test_sidecar_default_comes_from_the_transport(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    src = _file(tmp_path / "A1", b"a")
    t = factory(sidecar=True)
    t.put(src)
    t.put(src, "B1", sidecar=False)
    assert _listing(remote) == ["A1", "A1.sha256", "B1"]


def test_poll_glob_regex_and_hidden_files(make_transport: Made) -> None:
    factory, remote = make_transport
    for name in ["CDFRAF9HKGCL01506", "CDDEUD9HKGCL00738", "RCFRAF9HKGCL00001", ".CDX.part"]:
        _file(remote / name, name.encode())
    (remote / "CDsubfolder").mkdir()
    t = factory()
    found = t.poll("CD*")
    # a folder that matches is listed, as an entry that cannot be fetched (issue 14)
    assert [(f.name, f.problem is None) for f in found] == [
        ("CDDEUD9HKGCL00738", True),
        ("CDFRAF9HKGCL01506", True),
        ("CDsubfolder", False),
    ]
    assert (found[2].problem or "").startswith("is a folder, not a regular file")
    assert found[0] == RemoteFile(
        "CDDEUD9HKGCL00738", 17, int((remote / "CDDEUD9HKGCL00738").stat().st_mtime)
    )
    assert [f.name for f in t.poll(r"re:(CD|RC)FRAF9HKGCL\d{5}")] == [
        "CDFRAF9HKGCL01506",
        "RCFRAF9HKGCL00001",
    ]
    assert [f.name for f in t.poll()] == [
        "CDDEUD9HKGCL00738",
        "CDFRAF9HKGCL01506",
        "CDsubfolder",
        "RCFRAF9HKGCL00001",
    ]


def test_bad_regex_is_a_config_error(make_transport: Made) -> None:
    factory, _ = make_transport
    with pytest.raises(ConfigError, match="bad file name pattern"):
        factory().poll("re:(")


def test_missing_remote_folder_is_permanent(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    t = factory(remote_in=str(remote / "nope"), remote_out=str(remote / "nope"))
    with pytest.raises(PermanentTransportError, match="nope") as poll_error:
        t.poll()
    src = _file(tmp_path / "X1", b"x")
    with pytest.raises(PermanentTransportError, match="nope"):
        t.put(src)
    assert "check" in str(poll_error.value)


def test_fetch_of_missing_file_is_permanent(make_transport: Made, tmp_path: Path) -> None:
    factory, _ = make_transport
    with pytest.raises(PermanentTransportError, match="GONE1"):
        factory().fetch("GONE1", tmp_path / "in")
    assert not (tmp_path / "in" / "GONE1").exists()
    assert not (tmp_path / "in" / ".GONE1.part").exists()


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a/b", ".hidden"])
def test_names_with_folders_are_refused(make_transport: Made, tmp_path: Path, name: str) -> None:
    factory, _ = make_transport
    src = _file(tmp_path / "ok", b"x")
    with pytest.raises(PermanentTransportError, match="bad remote file name"):
        factory().put(src, name) if name else factory().fetch(name, tmp_path)


def test_after_fetch_archive(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    (remote / "done").mkdir()
    _file(remote / "CDFRAF9HKGCL01506", b"tap")
    t = factory(after_fetch="archive", remote_archive=str(remote / "done"))
    t.fetch("CDFRAF9HKGCL01506", tmp_path / "in")
    assert _listing(remote) == ["done"]
    assert (remote / "done" / "CDFRAF9HKGCL01506").read_bytes() == b"tap"
    t.release("CDFRAF9HKGCL01506")  # a second release (after a crash) is harmless


def test_after_fetch_delete(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    _file(remote / "CDFRAF9HKGCL01506", b"tap")
    t = factory(after_fetch="delete")
    assert t.fetch("CDFRAF9HKGCL01506", tmp_path / "in").read_bytes() == b"tap"
    assert _listing(remote) == []
    t.release("CDFRAF9HKGCL01506")


def test_fetch_without_release_keeps_the_remote_file(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    _file(remote / "CDFRAF9HKGCL01506", b"tap")
    factory(after_fetch="delete").fetch("CDFRAF9HKGCL01506", tmp_path / "in", release=False)
    assert _listing(remote) == ["CDFRAF9HKGCL01506"]


def test_archive_needs_a_folder(make_transport: Made) -> None:
    factory, _ = make_transport
    with pytest.raises(ConfigError, match="remote_archive"):
        factory(after_fetch="archive")


def test_collect_fetches_each_file_once(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    inbox, ledger = tmp_path / "inbox", FetchLedger(tmp_path / "state")
    _file(remote / "CDFRAF9HKGCL01506", b"one")
    _file(remote / "CDDEUD9HKGCL00738", b"two")
    _file(remote / "README", b"not a TAP file")
    t = factory()

    first = collect("FRAF9", t, "CD*", inbox, ledger)
    assert first == [inbox / "CDDEUD9HKGCL00738", inbox / "CDFRAF9HKGCL01506"]
    assert (inbox / "CDFRAF9HKGCL01506").read_bytes() == b"one"

    (inbox / "CDFRAF9HKGCL01506").unlink()  # ingest took it away
    assert collect("FRAF9", t, "CD*", inbox, ledger) == []  # nothing twice
    assert not (inbox / "CDFRAF9HKGCL01506").exists()

    _file(remote / "CDFRAF9HKGCL01507", b"three")
    assert collect("FRAF9", t, "CD*", inbox, ledger) == [inbox / "CDFRAF9HKGCL01507"]

    rows = ledger.entries("FRAF9")
    assert [(r.name, r.size, r.sha256) for r in rows] == [
        ("CDDEUD9HKGCL00738", 3, hashlib.sha256(b"two").hexdigest()),
        ("CDFRAF9HKGCL01506", 3, hashlib.sha256(b"one").hexdigest()),
        ("CDFRAF9HKGCL01507", 5, hashlib.sha256(b"three").hexdigest()),
    ]
    assert _listing(inbox) == [".partial", "CDDEUD9HKGCL00738", "CDFRAF9HKGCL01507"]
    assert _listing(inbox / ".partial") == []


def test_collect_refetches_only_changed_bytes(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    inbox, ledger = tmp_path / "inbox", FetchLedger(tmp_path / "state")
    f = _file(remote / "CDFRAF9HKGCL01506", b"one")
    t = factory()
    assert len(collect("FRAF9", t, "*", inbox, ledger)) == 1
    (inbox / "CDFRAF9HKGCL01506").unlink()

    os.utime(f, (1_000_000_000, 1_000_000_000))  # touched: same bytes, new mtime
    assert collect("FRAF9", t, "*", inbox, ledger) == []

    f.write_bytes(b"ONE")  # same name and size, other bytes: a corrected file
    os.utime(f, (1_000_000_100, 1_000_000_100))
    assert collect("FRAF9", t, "*", inbox, ledger) == [inbox / "CDFRAF9HKGCL01506"]
    assert (inbox / "CDFRAF9HKGCL01506").read_bytes() == b"ONE"

    # another partner's file of the same name is not the same file
    assert collect("DEUD9", t, "*", tmp_path / "inbox2", ledger) == [
        tmp_path / "inbox2" / "CDFRAF9HKGCL01506"
    ]


def test_collect_with_archive_moves_after_recording(make_transport: Made, tmp_path: Path) -> None:
    factory, remote = make_transport
    (remote / "done").mkdir()
    _file(remote / "CDFRAF9HKGCL01506", b"one")
    t = factory(after_fetch="archive", remote_archive=str(remote / "done"))
    ledger = FetchLedger(tmp_path / "state")
    assert collect("FRAF9", t, "CD*", tmp_path / "inbox", ledger) == [
        tmp_path / "inbox" / "CDFRAF9HKGCL01506"
    ]
    assert _listing(remote / "done") == ["CDFRAF9HKGCL01506"]
    assert collect("FRAF9", t, "CD*", tmp_path / "inbox", ledger) == []
