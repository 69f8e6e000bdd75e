"""Every verb that reads or writes a work folder takes its lock: busy beside a running night.

The night is stood in for by a real second process holding ``.clearing.lock`` (as the
nightly does, under its own name); the verbs are run in this process (every verb, found by
walking the typer app) and as a user runs them (a subprocess, a representative set).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer.main
from typer.testing import CliRunner

from clearing.cli import app
from clearing.errors import ExitCode
from clearing.pipeline.lock import LOCK_NAME, BusyError, WorkdirLock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.cli.conftest import Cli

RUN = CliRunner()
ROOT = Path(__file__).parents[2]
HOLDER = "nightly 2026-11-22"

# a value for every required option of a verb (the lock is taken before any is used)
VALUES = {
    "--date": "2026-11-22",
    "--period": "2026-11",
    "--partner": "DEUD9",
    "--service": "moc",
    "--start": "2026-11-21T10:00:00",
    "--reason": "test",
    "--from": "2026-11-21",
    "--to": "2026-11-22",
    "--before": "2026-08-01",
    "--line": "2026-11-22/CDFRAF9HKGCL00002/0",
    "--cycle": "2026-11",
}
# verbs that only read the work folder: they share the lock with other readers
READERS = {
    "clearing seq status",
    "clearing transport status",
    "clearing returns list",
    "clearing iot list",
    "clearing rate explain",
    "clearing rate what-if",
    "clearing rates versions",
    "clearing rates list-versions",
    "clearing backup",
    "clearing find",
    "clearing stats",
    "clearing retail explain",
    "clearing retail statement",
}


@contextmanager
def held(workdir: Path, *, mode: str = "exclusive", what: str = HOLDER) -> Iterator[int]:
    """Another process holds the work folder's lock until the block ends; yield its pid."""
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from clearing.pipeline.lock import WorkdirLock
        with WorkdirLock(Path({str(workdir)!r}), {what!r}, mode={mode!r}):
            print("held", flush=True)
            sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield proc.pid
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


def _verbs() -> Iterator[tuple[str, list[str]]]:
    """Every command (or group callback) of `clearing` with --workdir, and the args to run it."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, list[str]]]:
        params = getattr(command, "params", [])
        if any("--workdir" in getattr(p, "opts", []) for p in params):
            args: list[str] = []
            for p in params:
                if not p.required or "--workdir" in p.opts:
                    continue
                if p.param_type_name == "argument":
                    args.append("x")
                else:
                    args += [p.opts[0], VALUES[p.opts[0]]]
            if path[-1] in ("rate", "retail", "validate"):  # --date: a default / checked inside
                args += ["--date", VALUES["--date"]]
            yield " ".join(path), [*path[1:], *args]
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), ["clearing"])


VERBS = dict(_verbs())


def test_every_work_folder_verb_is_found() -> None:
    assert len(VERBS) == 37, sorted(VERBS)  # the count of tests/cli/test_common.py
    assert set(VERBS) >= READERS


def test_every_work_folder_verb_is_busy_beside_a_night(tmp_path: Path) -> None:
    """A new verb that forgets the lock fails here (it would be something else than busy)."""
    folder = tmp_path / "w"
    folder.mkdir()
    results = {}
    with held(folder) as pid:
        for path, args in VERBS.items():
            r = RUN.invoke(app, [*args, "--workdir", str(folder)])
            results[path] = (r.exit_code, r.stderr)
    for path, (code, err) in results.items():
        assert code == ExitCode.CONFIG, (path, code, err)
        assert err.startswith(f"error: `{folder}` is busy: {HOLDER} (pid {pid}, since "), path
        assert "did nothing" in err, path
    # only the lock file: nothing else was made
    assert [p.name for p in folder.iterdir()] == [LOCK_NAME]


def test_readers_share_the_lock_writers_do_not(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    with held(folder, mode="shared", what="clearing seq status"):
        for path, args in VERBS.items():
            r = RUN.invoke(app, [*args, "--workdir", str(folder)])
            if path in READERS:
                assert "busy" not in r.stderr, (path, r.stderr)
            else:
                assert r.exit_code == ExitCode.CONFIG, (path, r.stderr)
                assert "is busy: another run (reading it) holds" in r.stderr, path


def test_validate_of_one_file_reads_of_a_date_writes(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    tap = tmp_path / "CDFRAF9HKGCL00001"
    tap.write_bytes(b"\x61\x00")
    with held(folder, mode="shared"):
        one = RUN.invoke(app, ["validate", str(tap), "-w", str(folder)])
        day = RUN.invoke(app, ["validate", "-w", str(folder), "--date", "2026-11-22"])
    assert "busy" not in one.stderr
    assert day.exit_code == ExitCode.CONFIG
    assert "busy" in day.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["rate", "--date", "2026-11-22"],
        ["settle", "daily", "--date", "2026-11-22"],
        ["validate", "--date", "2026-11-22"],
        ["send"],
        ["rate", "recycle"],
        ["returns", "resubmit", "--all"],
        ["iot", "accept", "--all-of-date", "2026-11-22"],
        ["nightly", "--date", "2026-11-22"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_verb_beside_a_running_night_exits_2_busy(
    args: list[str], tmp_path: Path, clearing: Cli
) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    with held(folder) as pid:
        r = clearing(*args, "--workdir", str(folder))
        lock = (folder / LOCK_NAME).read_text()
    assert r.returncode == ExitCode.CONFIG, r.stderr
    assert "Traceback" not in r.stderr
    assert f"is busy: {HOLDER} (pid {pid}" in r.stderr
    assert lock.startswith(f"{HOLDER} (pid {pid}, since ")  # the night's lock is untouched


def test_the_lock_of_a_killed_night_is_free(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    with held(folder) as pid:
        os.kill(pid, signal.SIGKILL)
    with WorkdirLock(folder, "next night"):
        pass


def test_the_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with WorkdirLock(tmp_path, "clearing nightly"), WorkdirLock(tmp_path, "nightly 2026-11-22"):
        assert (tmp_path / LOCK_NAME).read_text().startswith("nightly 2026-11-22 (pid ")
        with WorkdirLock(tmp_path, "a reader", mode="shared"):
            pass
    with (
        held(tmp_path, mode="shared"),
        WorkdirLock(tmp_path, "another reader", mode="shared"),
        pytest.raises(BusyError, match="another run"),
    ):
        WorkdirLock(tmp_path, "a writer").__enter__()
