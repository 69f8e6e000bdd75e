"""pipelines/clearing_common.py (no Airflow needed): which date a run processes, which month a
close closes, the settings, and commands that are safe to hand to a shell."""

from __future__ import annotations

import importlib
import shlex
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from tests.pipelines.conftest import parse_cli

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

UTC = ZoneInfo("UTC")
HKT = ZoneInfo("Asia/Hong_Kong")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def cc(pipelines_on_path: Path) -> ModuleType:
    return importlib.import_module("clearing_common")


@pytest.mark.parametrize(
    ("tz", "interval_start_utc", "expected"),
    [
        # run at 2024-07-01 02:00 local; interval [06-30 02:00, 07-01 02:00) local
        (UTC, datetime(2024, 6, 30, 2, 0, tzinfo=UTC), "2024-06-30"),
        (HKT, datetime(2024, 6, 29, 18, 0, tzinfo=UTC), "2024-06-30"),  # UTC date: 06-29
        (NEW_YORK, datetime(2024, 6, 30, 6, 0, tzinfo=UTC), "2024-06-30"),
    ],
)
def test_processing_date_is_the_interval_start_in_the_schedule_zone(
    cc: ModuleType, tz: ZoneInfo, interval_start_utc: datetime, expected: str
) -> None:
    got = cc.processing_date_for(
        override=None, interval_start=interval_start_utc, run_after=None, tz=tz
    )
    assert got == expected


def test_processing_date_conf_override_and_no_interval(cc: ModuleType) -> None:
    after = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Hong Kong
    assert (
        cc.processing_date_for(override="2024-02-10", interval_start=None, run_after=after, tz=HKT)
        == "2024-02-10"
    )
    # a run without a data interval processes the day before it was triggered (local date)
    assert (
        cc.processing_date_for(override=None, interval_start=None, run_after=after, tz=HKT)
        == "2024-02-29"
    )
    with pytest.raises(cc.SettingError):
        cc.processing_date_for(override=None, interval_start=None, run_after=None, tz=HKT)


@pytest.mark.parametrize(
    "bad", ["2024-02-30", "2024-2-1", "2024-02-01; rm -rf /", "$(id)", "2024-02-01 ", "yesterday"]
)
def test_a_conf_date_is_checked_before_it_reaches_a_shell(cc: ModuleType, bad: str) -> None:
    if bad.strip() != bad and cc._DATE.fullmatch(bad.strip()):
        assert cc.check_date(bad) == bad.strip()
        return
    with pytest.raises(cc.SettingError):
        cc.processing_date_for(override=bad, interval_start=None, run_after=None, tz=UTC)


def test_closing_period(cc: ModuleType) -> None:
    # the run of 2024-03-01 06:00 Hong Kong: interval starts 2024-02-01 06:00 HKT
    start = datetime(2024, 1, 31, 22, 0, tzinfo=UTC)
    assert (
        cc.closing_period_for(override=None, interval_start=start, run_after=None, tz=HKT)
        == "2024-02"
    )
    after = datetime(2024, 1, 15, tzinfo=UTC)
    assert (
        cc.closing_period_for(override=None, interval_start=None, run_after=after, tz=UTC)
        == "2023-12"
    )
    assert (
        cc.closing_period_for(override="2023-11", interval_start=start, run_after=None, tz=UTC)
        == "2023-11"
    )
    for bad in ("2023-13", "2023-1", "2023-11 && reboot"):
        with pytest.raises(cc.SettingError):
            cc.closing_period_for(override=bad, interval_start=None, run_after=None, tz=UTC)


def test_last_day_and_the_daily_run_of_it(cc: ModuleType) -> None:
    assert cc.last_day("2024-02") == date(2024, 2, 29)
    assert cc.last_day("2023-12") == date(2023, 12, 31)
    assert cc.daily_logical_date(date(2024, 2, 29), HKT) == datetime(2024, 3, 1, 2, 0, tzinfo=HKT)


def test_start_date_is_required_and_is_the_day_after_the_first_date(
    cc: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEARING_START_DATE", raising=False)
    with pytest.raises(cc.SettingError, match="CLEARING_START_DATE"):
        cc.start_date()
    monkeypatch.setenv("CLEARING_START_DATE", "2024-05-31")
    monkeypatch.setenv("CLEARING_TZ", "Asia/Hong_Kong")
    assert cc.start_date() == datetime(2024, 6, 1, 0, 0, tzinfo=HKT)


def test_workdir_variable_then_environment(cc: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARING_WORKDIR", "/srv/from-env")
    assert cc.workdir("/srv/from-variable") == "/srv/from-variable"
    assert cc.workdir(None) == "/srv/from-env"
    monkeypatch.delenv("CLEARING_WORKDIR")
    with pytest.raises(cc.SettingError, match="clearing_workdir"):
        cc.workdir("")


def test_commands_are_shell_safe_and_use_clearing_bin(
    cc: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEARING_BIN", raising=False)
    line = cc.command(("settle", "daily"), "/srv/my work", "--date", "2024-06-30")
    assert shlex.split(line) == [
        "clearing",
        "settle",
        "daily",
        "--workdir",
        "/srv/my work",
        "--date",
        "2024-06-30",
    ]
    monkeypatch.setenv("CLEARING_BIN", "'/opt/clearing venv/bin/python' -m clearing.cli")
    line = cc.command(("send",), "/srv/w")
    assert shlex.split(line) == [
        "/opt/clearing venv/bin/python",
        "-m",
        "clearing.cli",
        "send",
        "--workdir",
        "/srv/w",
    ]


def test_every_command_of_both_layouts_parses_with_the_real_cli(
    cc: ModuleType, expect_verbs: Callable[..., None]
) -> None:
    """What the DAGs would run, built as they build it, parsed by `clearing.cli.app` (test_dags
    does the same with the lines rendered in real Airflow runs)."""
    lines = [
        shlex.split(cc.command(words, "/srv/w", *(("--date", "2024-06-30") if dated else ())))
        for layout in cc.LAYOUTS.values()
        for _task_id, words, dated in layout
    ]
    lines.append(shlex.split(cc.command(("monthly",), "/srv/w", "--period", "2024-06")))
    expect_verbs(*{argv[1] for argv in lines})
    for argv in lines:
        assert argv[0] == "clearing"
        verbs = [w for w in argv[1:] if not w.startswith("-")][: 2 if argv[1] == "settle" else 1]
        assert parse_cli(argv[1:]) == verbs


def test_layout_setting(cc: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARING_DAILY_TASKS", raising=False)
    assert cc.layout() == "nightly"
    monkeypatch.setenv("CLEARING_DAILY_TASKS", "stages")
    assert cc.layout() == "stages"
    monkeypatch.setenv("CLEARING_DAILY_TASKS", "everything")
    with pytest.raises(cc.SettingError, match="CLEARING_DAILY_TASKS"):
        cc.layout()
    for layout in cc.LAYOUTS:
        assert cc.SETTLED_TASK[layout] in {task_id for task_id, *_ in cc.LAYOUTS[layout]}


def test_the_notes_use_the_severity_words_of_the_cli(cc: ModuleType) -> None:
    # the DAGs' notes say the words the run summary, the JSON lines and the manifest say
    from clearing.errors import SEVERITIES, ExitCode

    assert {int(code): word for code, word in SEVERITIES.items()} == cc.SEVERITIES
    assert cc.EXIT_DATA_PROBLEM == ExitCode.DATA
    notes = cc.outcome_notes().splitlines()
    assert [line.split("`")[1] for line in notes] == ["ok", "data", "config", "transport", "crash"]
    assert "*skipped*" in notes[1]
    assert all("fails" in line for line in notes[2:])
