"""``--json``: every line on stdout is one JSON object, whatever happens.

A success, and every failure class: a data problem, a bad ``clearing.toml``, a bad ``--date``,
a transport failure, a busy work folder, a crash. The ``level`` of a line is ``debug``,
``info`` or a severity word (:attr:`clearing.errors.ExitCode.severity`); an error line carries
the exit code's word. The transport's "fetched" / "sent" lines are among them. Without
``--json``: text on stderr, ``-q`` only the problems, ``-v`` the debug lines too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest

from clearing.log import LEVELS
from clearing.samples.workdir import generate_world

from ..worlds import unreachable
from .conftest import ROOT, Cli
from .test_locks import HOLDER, held

if TYPE_CHECKING:
    from pathlib import Path

DAY1, DAY2 = "2026-11-22", "2026-11-23"


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every line of ``stdout`` as JSON (an assertion error names the first that is not)."""
    out = []
    assert stdout.endswith("\n"), stdout[-200:]
    for n, line in enumerate(stdout.splitlines(), 1):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"line {n} of stdout is not JSON: {line[:200]!r}")
        assert isinstance(doc, dict), line
        out.append(doc)
    return out


def _levels(lines: list[dict[str, Any]]) -> set[str]:
    return {x["level"] for x in lines if "level" in x}


def _error(r: subprocess.CompletedProcess[str], code: int, word: str) -> dict[str, Any]:
    assert r.returncode == code, (r.stdout, r.stderr)
    lines = _json_lines(r.stdout)
    error = lines[-1]
    assert (error["event"], error["level"], error["exit_code"]) == ("error", word, code)
    assert error["message"]
    assert _levels(lines) <= set(LEVELS)
    return error


def test_a_night_a_month_and_a_transport_failure_are_json_lines(
    tmp_path: Path, clearing: Cli
) -> None:
    world = generate_world(tmp_path / "w", day=date(2026, 11, 22), events=300, seed=5).root

    # a data problem (the sample's rejected CIBER batch): exit 1, every line JSON
    r = clearing("nightly", "--workdir", str(world), "--date", DAY1, "--json")
    assert r.returncode == 1, r.stderr
    assert r.stderr == ""
    lines = _json_lines(r.stdout)
    assert _levels(lines) <= set(LEVELS)
    run_id = lines[0]["run_id"]
    assert all(x["run_id"] == run_id for x in lines)  # the transport's lines too
    fetched = [x for x in lines if x.get("logger") == "clearing.transport"]
    assert any(" fetched `" in x["message"] for x in fetched), fetched
    assert {x["level"] for x in fetched} == {"info"}
    sent = [x for x in lines if "outbox: sent `" in x.get("message", "")]
    assert sent
    assert [x["event"] for x in lines][-2:] == ["run_end", "manifest"]
    assert lines[-2]["level"] == lines[-1]["status"] == "data"

    # a success: the monthly close, exit 0
    r = clearing("monthly", "--workdir", str(world), "--period", "2026-11", "--json")
    assert r.returncode == 0, r.stderr
    lines = _json_lines(r.stdout)
    assert lines[-2]["level"] == lines[-1]["status"] == "ok"
    assert _levels(lines) <= {"info", "ok"}

    # a transport failure: a partner cannot be reached, exit 3
    unreachable(world, "GBRG9")
    r = clearing("nightly", "--workdir", str(world), "--date", DAY2, "--json", "--no-send")
    assert r.returncode == 3, r.stderr
    lines = _json_lines(r.stdout)
    assert lines[-2]["level"] == lines[-1]["status"] == "transport"
    problems = [x for x in lines if x["event"] == "message" and x["level"] == "transport"]
    assert any("GBRG9" in x["message"] for x in problems), problems

    # the work folder busy: exit 2, one JSON line
    with held(world):
        r = clearing("nightly", "--workdir", str(world), "--date", DAY2, "--json")
    error = _error(r, 2, "config")
    assert HOLDER in error["message"]
    assert r.stderr == ""


def test_a_bad_clearing_toml_is_a_json_line(tmp_path: Path, clearing: Cli) -> None:
    (tmp_path / "clearing.toml").write_text("[home\ntadig = 'HKGCL'\n", encoding="utf-8")
    r = clearing("nightly", "--workdir", str(tmp_path), "--date", DAY1, "--json")
    error = _error(r, 2, "config")
    assert "clearing.toml" in error["message"]
    assert r.stderr == ""


def test_a_bad_date_is_a_json_line(tmp_path: Path, clearing: Cli) -> None:
    for verb in (["nightly", "--date", "2026-11-31"], ["monthly", "--period", "2026-13"]):
        r = clearing(*verb, "--workdir", str(tmp_path), "--json")
        error = _error(r, 2, "config")
        assert verb[2] in error["message"]
        assert r.stderr == ""


def test_a_bad_file_is_a_json_line(tmp_path: Path, clearing: Cli) -> None:
    bad = tmp_path / "CDFRAF9HKGCL00001"
    bad.write_bytes(b"\x61\x05\x00")
    r = clearing("inspect", str(bad), "--json")
    _error(r, 1, "data")
    r = clearing("inspect", str(tmp_path / "missing"), "--json")
    _error(r, 2, "config")


_PROGRAM = textwrap.dedent(
    """
    import logging, sys
    import clearing.cli as c
    from clearing.cli._common import JsonOpt, handles_errors

    @c.app.command("boom")
    @handles_errors
    def boom(as_json: JsonOpt = False) -> None:
        raise ZeroDivisionError("a bug")

    @c.app.command("talk")
    @handles_errors
    def talk(as_json: JsonOpt = False) -> None:
        log = logging.getLogger("clearing.transport")
        log.debug("FRAF9: listing `to_hkgcl`")
        log.info("FRAF9: fetched `CDFRAF9HKGCL00001` (10 bytes) from folder:///x")
        log.warning("FRAF9: connect failed (attempt 1 of 3), retrying in 0.5 s: refused")
        print('{"result": 1}')

    c.main(sys.argv[1:])
    """
)


def _program(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROGRAM, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )


def test_a_crash_under_json_is_a_json_line_with_its_traceback() -> None:
    r = _program("boom", "--json")
    error = _error(r, 4, "crash")
    assert "ZeroDivisionError: a bug" in error["traceback"]
    assert "internal error" in error["message"]
    # without --json: the traceback and the one line on stderr, as before
    r = _program("boom")
    assert r.returncode == 4
    assert r.stdout == ""
    assert "ZeroDivisionError: a bug" in r.stderr
    assert r.stderr.splitlines()[-1].startswith("error: internal error (exit 4)")


def test_transport_lines_verbose_and_quiet() -> None:
    fetched = "FRAF9: fetched `CDFRAF9HKGCL00001` (10 bytes) from folder:///x"
    retry = "transport: FRAF9: connect failed (attempt 1 of 3), retrying in 0.5 s: refused"
    listing = "FRAF9: listing `to_hkgcl`"
    # default: progress and problems on stderr, the result on stdout
    r = _program("talk")
    assert (r.returncode, r.stdout) == (0, '{"result": 1}\n')
    assert r.stderr.splitlines() == [fetched, retry]
    # -q: problems only
    r = _program("-q", "talk")
    assert (r.stdout, r.stderr.splitlines()) == ('{"result": 1}\n', [retry])
    # -v: the debug lines too
    r = _program("-v", "talk")
    assert r.stderr.splitlines() == [listing, fetched, retry]
    # --json: every line on stdout, nothing on stderr
    r = _program("talk", "--json")
    assert r.stderr == ""
    *logged, result = _json_lines(r.stdout)
    assert result == {"result": 1}
    assert [(x["level"], x["message"]) for x in logged] == [
        ("info", fetched),
        ("transport", retry.removeprefix("transport: ")),
    ]
    r = _program("-q", "talk", "--json")
    assert [x.get("level") for x in _json_lines(r.stdout)] == ["transport", None]
