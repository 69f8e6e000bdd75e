"""One severity word per exit class: summary badge == JSON level == manifest status.

For each outcome of a run (ok 0, data 1, config 2, transport 3, crash 4) the run summary's
badge (text header and HTML badge), the ``level`` of the JSON line that closes the run (or of
the error line of a crash) and the manifest's ``status`` are the same word, the one
:attr:`clearing.errors.ExitCode.severity` gives. A transport failure is not a data fault's
badge. The monthly summary carries the net position per partner and currency.
"""

from __future__ import annotations

import errno
import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from clearing.cli import main
from clearing.errors import ExitCode

from ..worlds import unreachable
from .conftest import DAY, Cli

if TYPE_CHECKING:
    from pathlib import Path

WORDS = {0: "ok", 1: "data", 2: "config", 3: "transport", 4: "crash"}


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _run_dir(world: Path, run_id: str) -> Path:
    run = world / "runs" / run_id
    assert run.is_dir(), sorted((world / "runs").iterdir())
    return run


def _badges(run: Path) -> tuple[str, str]:
    """The word of the text summary's header and of the HTML summary's badge."""
    text = (run / "summary.txt").read_text(encoding="utf-8")
    header = text.splitlines()[0]
    word = header.rsplit("— ", 1)[1].strip()
    html = (run / "summary.html").read_text(encoding="utf-8")
    badge = re.search(r"border-radius: 3px; font-size: 13px;\">([^<]+)</span>", html)
    assert badge, html[:800]
    return word.lower(), badge.group(1).lower()


def _colour(run: Path) -> str:
    html = (run / "summary.html").read_text(encoding="utf-8")
    found = re.search(r"<span title=\"[^\"]*\" style=\"background: (#[0-9a-f]{6})", html)
    assert found
    return found.group(1)


def _agree(world: Path, line: dict[str, Any], code: int) -> str:
    """The line's level == the manifest's status == the badges; the HTML badge's colour."""
    level = line["level"]
    run = _run_dir(world, line["run_id"])
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    word = WORDS[code]
    assert ExitCode(code).severity == word
    assert manifest["exit_code"] == code
    assert (manifest["status"], level, *_badges(run)) == (word, word, word, word)
    return _colour(run)


def test_data_then_ok_and_the_monthly_net_position(world: Path, clearing: Cli) -> None:
    colours = {}
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json")
    assert r.returncode == 1, r.stderr
    lines = _lines(r.stdout)
    (end,) = [x for x in lines if x.get("event") == "run_end"]
    colours["data"] = _agree(world, end, 1)
    # each problem line is at its class too: the rejected CIBER batch is a data problem
    problems = [x for x in lines if x.get("event") == "message" and "batch rejected" in str(x)]
    assert problems
    assert {x["level"] for x in problems} == {"data"}
    text = (_run_dir(world, end["run_id"]) / "summary.txt").read_text(encoding="utf-8")
    assert "[data] validate: CIBER_16425" in text

    r = clearing("monthly", "--workdir", str(world), "--period", "2026-11", "--json")
    assert r.returncode == 0, r.stderr
    lines = _lines(r.stdout)
    (end,) = [x for x in lines if x.get("event") == "run_end"]
    colours["ok"] = _agree(world, end, 0)
    assert colours["ok"] != colours["data"]

    # the net position: in the manifest as exact decimal strings, in the summary's table
    manifest = lines[-1]
    assert manifest["event"] == "manifest"
    positions = manifest["net_position"]
    assert positions, manifest.keys()
    for p in positions:
        assert set(p) == {"partner", "currency", "receivable", "payable", "net"}
        receivable, payable, net = (Decimal(p[k]) for k in ("receivable", "payable", "net"))
        assert all(isinstance(p[k], str) for k in ("receivable", "payable", "net"))
        assert net == receivable - payable  # exact: no float anywhere on the way
    # a partner we both receive from and pay to: its line in the text summary
    both = next(p for p in positions if Decimal(p["receivable"]) and Decimal(p["payable"]))
    text = (_run_dir(world, end["run_id"]) / "summary.txt").read_text(encoding="utf-8")
    assert "Net position" in text
    row = next(line for line in text.splitlines() if line.strip().startswith(both["partner"]))
    words = row.split()
    assert words[1] == both["currency"]
    assert [w.replace(",", "") for w in words[2:5]] == [
        both["receivable"],
        both["payable"],
        both["net"],
    ]
    assert row.endswith("we receive" if Decimal(both["net"]) > 0 else "we pay")
    html = (_run_dir(world, end["run_id"]) / "summary.html").read_text(encoding="utf-8")
    assert "Net position" in html
    assert f"{Decimal(both['net']):,f}" in html


def test_a_transport_failure_is_not_a_data_badge(world: Path, clearing: Cli) -> None:
    unreachable(world, "GBRG9")
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json")
    assert r.returncode == 3, r.stderr
    lines = _lines(r.stdout)
    (end,) = [x for x in lines if x.get("event") == "run_end"]
    colour = _agree(world, end, 3)
    assert colour not in ("#ef6c00",)  # not the orange of a data fault
    # the collect problem of GBRG9 is a transport line; the CIBER batch still a data line
    gb = [x for x in lines if x.get("event") == "message" and "collect: GBRG9" in str(x)]
    assert gb
    assert {x["level"] for x in gb} == {"transport"}
    summary = (_run_dir(world, end["run_id"]) / "summary.txt").read_text(encoding="utf-8")
    assert "[transport] collect: GBRG9" in summary
    assert "[data] validate: CIBER_16425" in summary


def test_a_config_stop_is_config_everywhere(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import clearing.ingest.stage

    def denied(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(world / "work"))

    monkeypatch.setattr(clearing.ingest.stage, "claim_inputs", denied)
    with pytest.raises(SystemExit) as exit_:
        main(["nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json"])
    assert exit_.value.code == ExitCode.CONFIG
    lines = _lines(capsys.readouterr().out)
    (end,) = [x for x in lines if x.get("event") == "run_end"]
    _agree(world, end, 2)
    manifest = json.loads(
        (_run_dir(world, end["run_id"]) / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["failed_stage"] == "claim"


def test_a_crash_is_crash_everywhere(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import clearing.ingest.stage

    def bug(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(clearing.ingest.stage, "claim_inputs", bug)
    with pytest.raises(SystemExit) as exit_:
        main(["nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json"])
    assert exit_.value.code == ExitCode.INTERNAL
    lines = _lines(capsys.readouterr().out)
    error = lines[-1]
    assert error["event"] == "error"
    assert "ZeroDivisionError: a bug" in error["traceback"]
    _agree(world, error, 4)
    manifest = json.loads(
        (_run_dir(world, error["run_id"]) / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["failed_stage"] == "claim"
    assert any("internal error" in p for p in manifest["problems"])
