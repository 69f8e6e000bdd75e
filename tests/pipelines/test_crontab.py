"""pipelines/crontab: every line parses as cron reads it, and each job, run by /bin/sh as cron
would (with a recording stand-in on PATH), calls an existing verb with the right date."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.pipelines.conftest import PIPELINES, Calls, parse_cli

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

CRONTAB = PIPELINES / "crontab"
FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def _crontab() -> tuple[dict[str, str], list[tuple[list[str], str]]]:
    """(environment lines, jobs as (five time fields, command)) of pipelines/crontab."""
    env: dict[str, str] = {}
    jobs: list[tuple[list[str], str]] = []
    for raw in CRONTAB.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = ENV_LINE.match(line)
        if match and " " not in match.group(1):
            env[match.group(1)] = match.group(2)
            continue
        parts = line.split(None, 5)
        assert len(parts) == 6, f"not 5 time fields and a command: {line!r}"
        jobs.append((parts[:5], parts[5]))
    return env, jobs


def _as_cron_runs_it(command: str) -> str:
    """cron turns `\\%` into `%`; an unescaped `%` would end the command (the rest is stdin)."""
    assert not re.search(r"(?<!\\)%", command), f"unescaped % in {command!r}"
    return command.replace("\\%", "%")


def test_every_line_parses() -> None:
    env, jobs = _crontab()
    assert env["MAILTO"], "MAILTO: cron mails the failure lines there"
    assert env["SHELL"] == "/bin/sh"
    assert {"CLEARING_WORKDIR", "CLEARING_LOGDIR", "PATH"} <= env.keys()
    assert len(jobs) == 2
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for fields, command in jobs:
        for field, (low, high) in zip(fields, ranges, strict=True):
            assert FIELD.match(field), f"bad cron field {field!r}"
            for number in re.findall(r"\d+", field.split("/")[0]):
                assert low <= int(number) <= high, f"{field!r} out of {low}-{high}"
        _as_cron_runs_it(command)
        assert "flock" not in command, "the CLI locks the work folder itself"
        assert " --json " in command
    schedules = {" ".join(fields): command.split()[1] for fields, command in jobs}
    assert schedules == {"0 2 * * *": "nightly", "0 6 1 * *": "monthly"}


def _run_jobs(
    tmp_path: Path, stub_dir: Path, extra: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    env, jobs = _crontab()
    env = {
        **env,
        "PATH": f"{stub_dir}:/usr/bin:/bin",
        "CLEARING_WORKDIR": str(tmp_path / "work folder"),
        "CLEARING_LOGDIR": str(tmp_path / "log"),
        **(extra or {}),
    }
    (tmp_path / "log").mkdir(exist_ok=True)
    env["STUB_LOG"] = os.environ["STUB_LOG"]
    return [
        subprocess.run(
            ["/bin/sh", "-c", _as_cron_runs_it(command)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        for _fields, command in jobs
    ]


def test_jobs_call_the_verbs_with_yesterday_and_last_month(
    tmp_path: Path, stub_clearing: tuple[Path, Calls], expect_verbs: Callable[..., None]
) -> None:
    exe, calls = stub_clearing
    before = date.today()
    results = _run_jobs(tmp_path, exe.parent)
    after = date.today()
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stdout == "", "a job prints nothing on success (cron would mail it)"
    nightly, monthly = calls()
    workdir = str(tmp_path / "work folder")
    yesterdays = {(day - timedelta(days=1)).isoformat() for day in (before, after)}
    assert nightly[:3] == ["nightly", "--workdir", workdir]
    assert nightly[3] == "--date"
    assert nightly[4] in yesterdays
    assert nightly[5:] == ["--json"]
    last_months = {
        (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m") for day in (before, after)
    }
    assert monthly[:3] == ["monthly", "--workdir", workdir]
    assert monthly[3] == "--period"
    assert monthly[4] in last_months
    assert monthly[5:] == ["--json"]
    expect_verbs("nightly", "monthly")
    for argv in (nightly, monthly):
        assert parse_cli(argv) == [argv[0]]


@pytest.mark.parametrize("code", [1, 2, 3])
def test_a_failing_job_prints_one_line_for_cron_to_mail(
    tmp_path: Path, stub_clearing: tuple[Path, Calls], code: int
) -> None:
    exe, _calls = stub_clearing
    nightly, monthly = _run_jobs(
        tmp_path, exe.parent, {"STUB_EXIT_NIGHTLY": str(code), "STUB_EXIT_MONTHLY": str(code)}
    )
    for verb, result in (("nightly", nightly), ("monthly", monthly)):
        assert result.returncode == 0
        line = f"clearing {verb} exited {code} -- see {tmp_path / 'log'}/{verb}.jsonl\n"
        assert result.stdout == line
