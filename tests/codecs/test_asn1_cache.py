"""The compiled ASN.1 specification cached between runs: used, keyed, safe to lose, never failing.

Each test points ``CLEARING_CACHE_DIR`` at its own folder and empties the in-process caches of
:mod:`clearing.codecs.asn1`, so that "a run" here is what a new process would do.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asn1tools
import pytest

from clearing import config
from clearing.codecs import asn1

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parents[2]
NOTIFICATION = ROOT / "data_samples" / "tap" / "CDSGPS9HKGCL00966"  # TAP 3.12, 123 bytes


def _new_run() -> None:
    asn1._built.cache_clear()
    asn1._grammar.cache_clear()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CLEARING_CACHE_DIR", str(folder))
    _new_run()
    yield folder
    _new_run()


@pytest.fixture
def no_compiling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """asn1tools' parser made to record each call: a run from the cache makes none."""
    calls: list[str] = []
    parse = asn1tools.parse_string

    def recording(text: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(text[:40])
        return parse(text, *args, **kwargs)

    monkeypatch.setattr(asn1tools, "parse_string", recording)
    return calls


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pickle")) if folder.is_dir() else []


def test_the_second_run_reads_the_specification_from_the_cache(
    cache: Path, no_compiling: list[str]
) -> None:
    data = NOTIFICATION.read_bytes()
    first = asn1.decode(data)
    assert len(no_compiling) == 1  # compiled once
    [stored] = _files(cache)
    assert stored.name.startswith("asn1-tap-12-")
    assert stored.stat().st_mode & 0o777 == 0o600  # a private file, as mkstemp makes it

    _new_run()
    second = asn1.decode(data)
    assert len(no_compiling) == 1  # not parsed again: read from the file
    assert second == first
    assert second.value[0] == "notification"
    # the grammar is built from the cached parse too: tags are still checked
    asn1.check_tags(data, second.info)
    # and the specification encodes what it decodes
    assert asn1.encode("notification", second.value) == data


def test_one_file_per_release_and_kind_family(cache: Path) -> None:
    asn1.spec("tap", 12)
    asn1.spec("notification", 12)  # the same modules as a TAP file of that release
    asn1.spec("tap", 11)
    names = [p.name.rsplit("-", 1)[0] for p in _files(cache)]
    assert sorted(names) == ["asn1-tap-11", "asn1-tap-12"]


def test_a_changed_module_is_a_new_key(
    cache: Path, no_compiling: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asn1.spec("tap", 12)
    [before] = _files(cache)
    specs = tmp_path / "specs"  # a site's own specification tree (CLEARING_SPECS_DIR)
    shutil.copytree(asn1.specs_dir(), specs / "asn1")
    module = specs / "asn1" / "TAP-0312.asn"
    module.write_text(module.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")
    monkeypatch.setenv("CLEARING_SPECS_DIR", str(specs))
    _new_run()
    asn1.spec("tap", 12)
    assert len(no_compiling) == 2  # the edited module is compiled, not taken from the cache
    assert before in _files(cache)
    assert len(_files(cache)) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"",  # an empty file (a crash while writing it)
        b"not a pickle at all",
        pickle.dumps({"something": "else"}),  # a pickle of the wrong shape
        pickle.dumps(({}, "no decoder")),
    ],
    ids=["empty", "garbage", "wrong-shape", "no-specification"],
)
def test_a_corrupt_cache_file_means_compiling_as_without_it(
    cache: Path, no_compiling: list[str], content: bytes
) -> None:
    data = NOTIFICATION.read_bytes()
    expected = asn1.decode(data)
    [stored] = _files(cache)
    stored.write_bytes(content)
    _new_run()
    assert asn1.decode(data) == expected
    assert len(no_compiling) == 2  # compiled again
    # and the file is good again for the next run
    _new_run()
    assert asn1.decode(data) == expected
    assert len(no_compiling) == 2


def test_a_truncated_cache_file_means_compiling(cache: Path, no_compiling: list[str]) -> None:
    data = NOTIFICATION.read_bytes()
    expected = asn1.decode(data)
    [stored] = _files(cache)
    stored.write_bytes(stored.read_bytes()[: stored.stat().st_size // 2])
    _new_run()
    assert asn1.decode(data) == expected
    assert len(no_compiling) == 2


def test_a_cache_file_others_may_write_is_not_read(cache: Path, no_compiling: list[str]) -> None:
    """Unpickling runs code: a file group- or world-writable is compiled over, not read."""
    data = NOTIFICATION.read_bytes()
    expected = asn1.decode(data)
    [stored] = _files(cache)
    for mode in (0o666, 0o620):
        stored.chmod(mode)
        _new_run()
        assert asn1.decode(data) == expected
    assert len(no_compiling) == 3  # compiled each time: the file was not trusted
    [stored] = _files(cache)
    assert stored.stat().st_mode & 0o777 == 0o600  # replaced by a private one


def test_an_unwritable_cache_folder_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_compiling: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("CLEARING_CACHE_DIR", str(blocker / "cache"))  # cannot be made
    _new_run()
    try:
        data = NOTIFICATION.read_bytes()
        assert asn1.decode(data).value[0] == "notification"
        assert asn1.decode(data).value[0] == "notification"
        assert len(no_compiling) == 1  # in the process it is still compiled once
    finally:
        _new_run()
    assert blocker.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_cache_folder_never_fails(cache: Path, no_compiling: list[str]) -> None:
    cache.mkdir()
    cache.chmod(0o500)
    try:
        assert asn1.decode(NOTIFICATION.read_bytes()).value[0] == "notification"
        assert _files(cache) == []
        assert len(no_compiling) == 1
    finally:
        cache.chmod(0o700)


def test_deleting_the_cache_is_safe(cache: Path, no_compiling: list[str]) -> None:
    data = NOTIFICATION.read_bytes()
    expected = asn1.decode(data)
    shutil.rmtree(cache)
    _new_run()
    assert asn1.decode(data) == expected
    assert len(no_compiling) == 2
    assert len(_files(cache)) == 1  # made again


def test_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CLEARING_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.cache_dir() == tmp_path / "home" / ".cache" / "clearing"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored (XDG spec)
    assert config.cache_dir() == tmp_path / "home" / ".cache" / "clearing"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "clearing"
    monkeypatch.setenv("CLEARING_CACHE_DIR", "")  # empty: the default
    assert config.cache_dir() == tmp_path / "xdg" / "clearing"
    monkeypatch.setenv("CLEARING_CACHE_DIR", str(tmp_path / "mine"))
    assert config.cache_dir() == tmp_path / "mine"


def test_the_user_cache_folder_is_used_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("CLEARING_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    _new_run()
    try:
        asn1.spec("tap", 12)
    finally:
        _new_run()
    assert [p.name[:12] for p in _files(tmp_path / ".cache" / "clearing")] == ["asn1-tap-12-"]
