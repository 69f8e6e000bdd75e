"""The Airflow 3 DAGs of pipelines/: structure, schedule, and real `dag.test()` runs against a
metadata DB in a temporary AIRFLOW_HOME.

Runs where Airflow 3 is installed (see pipelines/README.md: a separate virtualenv); elsewhere the
module is skipped. The runs use a recording stand-in for `clearing` (CLEARING_BIN) so that they
exercise scheduling, templating and exit-code handling; the command lines they record are then
parsed with the real typer app.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import subprocess
import sys
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from tests.pipelines.conftest import PIPELINES, Calls, parse_cli

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from types import ModuleType

if importlib.util.find_spec("airflow") is None:
    pytest.skip(
        "Airflow 3 is not installed here (pipelines/README.md: its own virtualenv)",
        allow_module_level=True,
    )

# Airflow and its dependencies warn about each other (deprecations between releases of Airflow,
# its providers, SQLAlchemy, starlette), which the project's `filterwarnings = error` would turn
# into task failures: shown, not raised. A warning raised from the DAG files themselves (e.g. a
# deprecated Airflow API we use) still fails the test.
pytestmark = [
    pytest.mark.filterwarnings("default"),
    pytest.mark.filterwarnings(r"error:::clearing_(daily|monthly|common)$"),
]

TZ_NAME = "Asia/Hong_Kong"  # 02:00 there is 18:00 UTC the day before: the date logic shows
TZ = ZoneInfo(TZ_NAME)
TASKS = {
    "nightly": ["collect", "nightly", "send"],
    "stages": [
        "collect",
        "validate",
        "receive",
        "rate",
        "retail",
        "outbox",
        "send",
        "settle_daily",
    ],
}
SETTLED = {"nightly": "nightly", "stages": "settle_daily"}
#: each layout's runs get their own year, so runs of one never meet the other's in the DB
YEAR = {"nightly": 2025, "stages": 2024}


class Dags:
    def __init__(
        self, layout: str, daily: ModuleType, monthly: ModuleType, common: ModuleType
    ) -> None:
        self.layout = layout
        self.daily = daily.dag
        self.monthly = monthly.dag
        self.common = common

    def at(self, month: int, day: int, hour: int) -> datetime:
        """A moment in this layout's year, Hong Kong time."""
        return datetime(YEAR[self.layout], month, day, hour, 0, tzinfo=TZ)


def _airflow(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def airflow_home(
    tmp_path_factory: pytest.TempPathFactory, pipelines_on_path: Path
) -> Iterator[Path]:
    """A fresh AIRFLOW_HOME (sqlite metadata DB, migrated) whose DAG folder is pipelines/."""
    home = tmp_path_factory.mktemp("airflow-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_HOME", str(home))
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(PIPELINES))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("CLEARING_START_DATE", "2024-01-01")
        mp.setenv("CLEARING_TZ", TZ_NAME)
        _airflow("db", "migrate")
        yield home
        for name in ("clearing_daily", "clearing_monthly"):
            sys.modules.pop(name, None)


@pytest.fixture(scope="module", params=["nightly", "stages"])
def layout(request: pytest.FixtureRequest, airflow_home: Path) -> Iterator[str]:
    """CLEARING_DAILY_TASKS for the tests that use it (grouped by pytest, one layout after the
    other). The metadata DB is emptied between layouts: Airflow 3.0/3.1 `dag.test()` keeps the
    first serialized version of a DAG id it sees."""
    if list(airflow_home.glob("layout-*")):
        _airflow("db", "reset", "--yes")
        from airflow import settings

        if settings.Session is not None:
            settings.Session.remove()
    marker = airflow_home / f"layout-{request.param}"
    marker.touch()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARING_DAILY_TASKS", request.param)
        yield request.param


@pytest.fixture
def dags(layout: str) -> Dags:
    """The DAG files imported afresh, as a worker parses them for each task (`dag.test()`
    merges a run's conf into the DAG object's params, which must not leak into the next
    test)."""
    modules = []
    for name in ("clearing_daily", "clearing_monthly"):
        module = sys.modules.get(name)
        modules.append(importlib.reload(module) if module else importlib.import_module(name))
    daily, monthly = modules
    return Dags(layout, daily, monthly, importlib.import_module("clearing_common"))


@pytest.fixture
def world(
    dags: Dags,
    stub_clearing: tuple[Path, Calls],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Calls:
    """CLEARING_BIN = the recording stand-in, CLEARING_WORKDIR = a temporary folder."""
    exe, calls = stub_clearing
    monkeypatch.setenv("CLEARING_BIN", str(exe))
    monkeypatch.setenv("CLEARING_WORKDIR", str(tmp_path / "work"))
    monkeypatch.delenv("AIRFLOW_VAR_CLEARING_WORKDIR", raising=False)
    return calls


def _states(run: Any) -> dict[str, str]:
    return {
        ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()
    }


def _state(run: Any) -> str:
    return str(getattr(run.state, "value", run.state))


def _no_retries(dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for task in dag.tasks:
        monkeypatch.setattr(task, "retries", 0)


def _core_timetable(dag: Any) -> Any:
    if hasattr(dag.timetable, "next_dagrun_info"):
        return dag.timetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


def _daily_lines(layout: str, workdir: str, day: str) -> list[list[str]]:
    """The command lines (after CLEARING_BIN) of one night, in order."""
    if layout == "nightly":
        return [
            ["collect", "--workdir", workdir, "--date", day],
            ["nightly", "--no-collect", "--no-send", "--workdir", workdir, "--date", day],
            ["send", "--workdir", workdir],
        ]
    return [
        ["collect", "--workdir", workdir, "--date", day],
        ["validate", "--workdir", workdir, "--date", day],
        ["receive", "--workdir", workdir, "--date", day],
        ["rate", "--workdir", workdir, "--date", day],
        ["retail", "--workdir", workdir, "--date", day],
        ["outbox", "--workdir", workdir, "--date", day],
        ["send", "--workdir", workdir],
        ["settle", "daily", "--workdir", workdir, "--date", day],
    ]


# --- structure -----------------------------------------------------------------------------


def test_daily_structure(dags: Dags) -> None:
    dag = dags.daily
    tasks = TASKS[dags.layout]
    assert dag.dag_id == "clearing_daily"
    assert [t.task_id for t in dag.topological_sort()] == tasks
    for before, after in itertools.pairwise(tasks):
        assert dag.get_task(before).downstream_task_ids == {after}
    assert dag.catchup is True
    assert dag.max_active_runs == 1
    timetable = _core_timetable(dag)
    assert timetable.summary == "0 2 * * *"
    assert str(timetable._timezone) == TZ_NAME
    assert timetable._interval == timedelta(days=1)
    assert dag.start_date == datetime(2024, 1, 2, tzinfo=TZ)
    for task in dag.tasks:
        assert task.retries == 2
        assert task.retry_delay == timedelta(minutes=10)
        assert task.execution_timeout == timedelta(hours=6)
        assert task.trigger_rule == "none_failed"
        assert list(task.skip_on_exit_code) == [1]
        assert task.bash_command == f"{{{{ clearing_stage_command('{task.task_id}') }}}}"


def test_monthly_structure(dags: Dags) -> None:
    dag = dags.monthly
    assert dag.dag_id == "clearing_monthly"
    assert [t.task_id for t in dag.topological_sort()] == ["wait_for_daily", "monthly"]
    assert dag.catchup is True
    assert dag.max_active_runs == 1
    assert _core_timetable(dag).summary == "0 6 1 * *"
    sensor = dag.get_task("wait_for_daily")
    assert sensor.external_dag_id == "clearing_daily"
    assert sensor.external_task_id == SETTLED[dags.layout]
    assert set(sensor.allowed_states) == {"success", "skipped"}
    assert sensor.mode == "reschedule"
    monthly = dag.get_task("monthly")
    assert monthly.retries == 2
    assert list(monthly.skip_on_exit_code) == [1]


@pytest.mark.parametrize("layout", ["nightly"], indirect=True)
def test_the_first_runs_process_the_start_date_then_each_day(dags: Dags) -> None:
    from airflow.timetables.base import TimeRestriction

    timetable = _core_timetable(dags.daily)
    restriction = TimeRestriction(earliest=dags.daily.start_date, latest=None, catchup=True)
    dates: list[date] = []
    last = None
    for _ in range(3):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        assert info.run_after == datetime.combine(
            date(2024, 1, 2) + timedelta(days=len(dates)), dags.common.DAILY_AT, TZ
        )
        dates.append(
            dags.common.processing_date_for(
                override=None, interval_start=info.data_interval.start, run_after=None, tz=TZ
            )
        )
        last = info.data_interval
    assert dates == ["2024-01-01", "2024-01-02", "2024-01-03"]

    monthly = _core_timetable(dags.monthly)
    restriction = TimeRestriction(earliest=dags.monthly.start_date, latest=None, catchup=True)
    info = monthly.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info.run_after == datetime(2024, 2, 1, 6, 0, tzinfo=TZ)
    period = dags.common.closing_period_for(
        override=None, interval_start=info.data_interval.start, run_after=None, tz=TZ
    )
    assert period == "2024-01"


# --- runs ----------------------------------------------------------------------------------


def test_a_night_processes_the_previous_day_and_a_data_problem_does_not_fail_it(
    dags: Dags, world: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # e.g. a partner file fatally rejected (returned in a RAP)
    failing = "nightly" if dags.layout == "nightly" else "validate"
    monkeypatch.setenv(f"STUB_EXIT_{failing.upper()}", "1")
    run = dags.daily.test(logical_date=dags.at(7, 1, 2))
    day = f"{YEAR[dags.layout]}-06-30"
    assert world() == _daily_lines(dags.layout, str(tmp_path / "work"), day)
    assert _state(run) == "success"
    states = _states(run)
    assert states.pop(failing) == "skipped"
    assert set(states.values()) == {"success"}


@pytest.mark.parametrize(("stage", "code"), [("collect", 2), ("send", 3), ("rate", 2)])
def test_a_config_or_transport_problem_fails_the_night(
    dags: Dags, world: Calls, monkeypatch: pytest.MonkeyPatch, stage: str, code: int
) -> None:
    day = {"collect": 3, "send": 4, "rate": 5}[stage]
    if stage == "rate" and dags.layout == "nightly":
        stage = "nightly"  # the processing stages are inside it
    _no_retries(dags.daily, monkeypatch)
    monkeypatch.setenv(f"STUB_EXIT_{stage.upper()}", str(code))
    run = dags.daily.test(logical_date=dags.at(7, day, 2))
    assert _state(run) == "failed"
    states = _states(run)
    tasks = TASKS[dags.layout]
    assert states[stage] == "failed"
    after = tasks[tasks.index(stage) + 1 :]
    assert {states[t] for t in after} <= {"upstream_failed"}
    ran = tasks[: tasks.index(stage) + 1]
    assert [line[0] for line in world()] == [task.split("_")[0] for task in ran]


@pytest.mark.parametrize("layout", ["nightly"], indirect=True)
def test_a_conf_date_and_the_workdir_variable(
    dags: Dags, world: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLEARING_WORKDIR", "/srv/clearing from variable")
    run = dags.daily.test(logical_date=dags.at(7, 20, 2), run_conf={"date": "2024-02-29"})
    assert _state(run) == "success"
    assert world() == _daily_lines("nightly", "/srv/clearing from variable", "2024-02-29")


@pytest.mark.parametrize("layout", ["nightly"], indirect=True)
def test_a_run_without_logical_date_processes_the_day_before_it_was_triggered(
    dags: Dags, world: Calls
) -> None:
    run = dags.daily.test(logical_date=None, run_after=dags.at(8, 20, 1))
    assert _state(run) == "success"
    assert world()[1][-1] == "2025-08-19"  # local date: 2025-08-19 17:00 UTC is the 20th


@pytest.mark.parametrize("layout", ["nightly"], indirect=True)
def test_a_conf_date_never_reaches_the_shell_unchecked(
    dags: Dags, world: Calls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_retries(dags.daily, monkeypatch)
    marker = tmp_path / "pwned"
    run = dags.daily.test(
        logical_date=dags.at(7, 21, 2), run_conf={"date": f"2024-07-01; touch {marker}"}
    )
    assert _state(run) == "failed"
    assert world() == []  # not even collect, which takes no date
    assert not marker.exists()


def test_the_monthly_close_waits_for_the_last_night_of_the_month(
    dags: Dags, world: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_retries(dags.monthly, monkeypatch)
    workdir = str(tmp_path / "work")
    year = YEAR[dags.layout]
    # the night of 04-30 (runs 05-01 02:00), then the close on 05-01 06:00
    assert _state(dags.daily.test(logical_date=dags.at(5, 1, 2))) == "success"
    run = dags.monthly.test(logical_date=dags.at(5, 1, 6))
    assert _state(run) == "success"
    assert world()[-1] == ["monthly", "--workdir", workdir, "--period", f"{year}-04"]

    # the last night of May failed: the close of May does not run
    _no_retries(dags.daily, monkeypatch)
    failing = SETTLED[dags.layout]
    monkeypatch.setenv(f"STUB_EXIT_{failing.split('_')[0].upper()}", "2")
    assert _state(dags.daily.test(logical_date=dags.at(6, 1, 2))) == "failed"
    calls_before = len(world())
    run = dags.monthly.test(logical_date=dags.at(6, 1, 6))
    assert _state(run) == "failed"
    assert _states(run) == {"wait_for_daily": "failed", "monthly": "upstream_failed"}
    assert len(world()) == calls_before

    # re-closing April by conf waits for April's last night, which succeeded above
    run = dags.monthly.test(logical_date=dags.at(6, 15, 9), run_conf={"period": f"{year}-04"})
    assert _state(run) == "success"
    assert world()[-1] == ["monthly", "--workdir", workdir, "--period", f"{year}-04"]


def test_every_rendered_command_parses_with_the_real_cli(
    dags: Dags, world: Calls, expect_verbs: Callable[..., None]
) -> None:
    """The lines the DAGs hand to bash, as rendered in real runs, against `clearing.cli.app`.
    Until every verb the DAGs call is in the tree this is an expected (strict) failure."""
    night = dags.daily.test(logical_date=dags.at(9, 1, 2))
    close = dags.monthly.test(logical_date=dags.at(9, 1, 6))
    assert (_state(night), _state(close)) == ("success", "success")
    lines = world()
    assert len(lines) == len(TASKS[dags.layout]) + 1
    expect_verbs(*{line[0] for line in lines})
    for argv in lines:
        words = [w for w in argv if not w.startswith("-")][: 2 if argv[0] == "settle" else 1]
        assert parse_cli(argv) == words
