"""What the clearing DAGs share: settings, the processing date, the closing period, the commands.

This module does not import Airflow, so it is tested without it (tests/pipelines). The DAG files
beside it (`clearing_daily.py`, `clearing_monthly.py`) import it; Airflow puts the DAG folder on
`sys.path`, so copy the three files together.

Settings, read when the DAG file is parsed (scheduler / DAG processor and workers alike):

- `CLEARING_TZ`: the time zone of the schedules and of the processing date (default `UTC`).
- `CLEARING_DAILY_TASKS`: the daily DAG's tasks, `nightly` (default: collect → nightly → send)
  or `stages` (one task per stage verb); see pipelines/README.md.
- `CLEARING_START_DATE`: the first processing date, YYYY-MM-DD. Required: the daily DAG catches
  up every night missed since then, so it is never guessed.

Read when a task runs (on the worker):

- the work dir: Airflow Variable `clearing_workdir` (also settable as the environment variable
  `AIRFLOW_VAR_CLEARING_WORKDIR`), else the environment variable `CLEARING_WORKDIR`;
- `CLEARING_BIN`: the command that runs the CLI (default `clearing`; may be a path into another
  virtualenv, or `python -m clearing.cli`).

Dates and periods that come from a run's conf (the "Trigger DAG w/ config" form) are checked
against a strict pattern before they reach a shell: a conf value is never pasted into a command.
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

#: Daily run: 02:00 local time, processing the previous day.
DAILY_CRON = "0 2 * * *"
DAILY_AT = time(2, 0)
#: Monthly close: the 1st of the month at 06:00, closing the previous calendar month.
MONTHLY_CRON = "0 6 1 * *"

DAILY_DAG_ID = "clearing_daily"
MONTHLY_DAG_ID = "clearing_monthly"

#: Exit codes of the CLI (README): 0 ok, 1 data problem, 2 config problem, 3 transport problem.
EXIT_DATA_PROBLEM = 1

#: The one word per outcome (`clearing.errors.SEVERITIES`, copied: this module does not import
#: clearing, which may live in another virtualenv): the run summary's badge, the `level` of a
#: `--json` line, a manifest's `status` and these notes all say the same word.
SEVERITIES: dict[int, str] = {0: "ok", 1: "data", 2: "config", 3: "transport", 4: "crash"}

#: What each exit code does to an Airflow task (the DAGs' notes are made of these lines).
TASK_OUTCOMES: dict[int, str] = {
    0: "the task succeeds",
    1: "the task is *skipped*, not failed: the tasks after it still run (trigger rule "
    "`none_failed`) and the run succeeds; look at its log",
    2: "the task fails (a configuration problem, or the work folder busy: nothing was done); "
    "it is retried, then the run fails and the tasks after it do not run",
    3: "the task fails (a partner not reached: a file not fetched or not sent); it is "
    "retried, then the run fails and the tasks after it do not run",
    4: "the task fails (a crash: report it with the traceback in the log); it is retried, "
    "then the run fails",
}


def outcome_notes() -> str:
    """The exit codes, their severity words and what they do to a task, as Markdown."""
    return "\n".join(
        f"- exit **{code}** `{SEVERITIES[code]}`: {TASK_OUTCOMES[code]}" for code in SEVERITIES
    )


Stage = tuple[str, tuple[str, ...], bool]
"""(task id, the words after CLEARING_BIN — verb and fixed flags, takes `--date D`)."""

#: Layout "stages": one task per stage verb. `send` works on the whole outbox, not on a date;
#: `collect` fills the whole inbox, dated D only for the entries it quarantines or refuses
#: (`failed/D/`, their fates in D's manifest); `validate` claims the inbox into work/D/in.
STAGES: tuple[Stage, ...] = (
    ("collect", ("collect",), True),
    ("validate", ("validate",), True),
    ("receive", ("receive",), True),
    ("rate", ("rate",), True),
    ("retail", ("retail",), True),
    ("outbox", ("outbox",), True),
    ("send", ("send",), False),
    ("settle_daily", ("settle", "daily"), True),
)

#: Layout "nightly" (the default): the transport stages as tasks of their own (retried on their
#: own), everything between them by `clearing nightly`, which also claims the inbox, receives
#: partners' RAPs/ACKs, registers the day's files in the outbox and writes the run manifest
#: with the record reconciliation.
NIGHTLY: tuple[Stage, ...] = (
    ("collect", ("collect",), True),
    ("nightly", ("nightly", "--no-collect", "--no-send"), True),
    ("send", ("send",), False),
)

LAYOUTS: dict[str, tuple[Stage, ...]] = {"nightly": NIGHTLY, "stages": STAGES}

#: The task whose end means the day is processed and settled (the monthly close waits for it).
SETTLED_TASK = {"nightly": "nightly", "stages": "settle_daily"}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class SettingError(ValueError):
    """A setting or a run's conf value that cannot be used."""


def layout() -> str:
    """The daily DAG's task layout: `CLEARING_DAILY_TASKS`, `nightly` (default) or `stages`."""
    name = (os.environ.get("CLEARING_DAILY_TASKS") or "nightly").strip()
    if name not in LAYOUTS:
        msg = f"CLEARING_DAILY_TASKS={name!r}: expected one of {sorted(LAYOUTS)}"
        raise SettingError(msg)
    return name


def timezone() -> ZoneInfo:
    """The schedules' time zone (`CLEARING_TZ`, default UTC)."""
    return ZoneInfo(os.environ.get("CLEARING_TZ") or "UTC")


def check_date(value: str) -> str:
    """`value` if it is a real YYYY-MM-DD date, else `SettingError`."""
    text = str(value).strip()
    if not _DATE.fullmatch(text):
        msg = f"date {value!r}: expected YYYY-MM-DD"
        raise SettingError(msg)
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        msg = f"date {value!r}: {exc}"
        raise SettingError(msg) from None
    return text


def check_period(value: str) -> str:
    """`value` if it is a YYYY-MM month, else `SettingError`."""
    text = str(value).strip()
    if not _PERIOD.fullmatch(text):
        msg = f"period {value!r}: expected YYYY-MM"
        raise SettingError(msg)
    return text


def start_date() -> datetime:
    """The first processing date (`CLEARING_START_DATE`) as the DAGs' `start_date`.

    The daily run for date D is triggered on D + 1 at 02:00, so the DAGs start at 00:00 on the
    day after the first processing date: the first daily run processes exactly that date (one
    starting on the date itself would first process the day before it).
    """
    raw = os.environ.get("CLEARING_START_DATE", "")
    if not raw:
        msg = (
            "set CLEARING_START_DATE=YYYY-MM-DD (the first date to process) in the environment "
            "of the Airflow scheduler, DAG processor and workers: the daily DAG catches up every "
            "night since then"
        )
        raise SettingError(msg)
    first = date.fromisoformat(check_date(raw))
    return datetime.combine(first + timedelta(days=1), time(0, 0), timezone())


def _local(moment: Any, tz: ZoneInfo) -> datetime | None:
    if not isinstance(moment, datetime):  # None or jinja2.Undefined
        return None
    return moment.astimezone(tz)


def processing_date_for(*, override: Any, interval_start: Any, run_after: Any, tz: ZoneInfo) -> str:
    """The date a daily run processes, YYYY-MM-DD.

    1. `override` (the run's conf `date`), checked;
    2. else the data interval's start, *in the schedule's time zone*: the run at D + 1 02:00
       has the interval [D 02:00, D + 1 02:00) and processes D. Not `{{ ds }}` nor
       `{{ data_interval_start | ds }}`: both take a *UTC* date (of the trigger time, and of
       the interval start), which is D + 1 or D - 1 depending on the zone (02:00 in Hong Kong
       is 18:00 UTC the day before).
    3. else (a run without a logical date) the day before the run's `run_after`.
    """
    if override:
        return check_date(override)
    start = _local(interval_start, tz)
    if start is not None:
        return start.date().isoformat()
    after = _local(run_after, tz)
    if after is not None:
        return (after.date() - timedelta(days=1)).isoformat()
    msg = "no date: the run has no data interval, no run_after and no conf date"
    raise SettingError(msg)


def closing_period_for(*, override: Any, interval_start: Any, run_after: Any, tz: ZoneInfo) -> str:
    """The month a monthly run closes, YYYY-MM.

    Conf `period`, else the data interval's start month (the run on the 1st closes the month
    before), else the month before `run_after`.
    """
    if override:
        return check_period(override)
    start = _local(interval_start, tz)
    if start is not None:
        return f"{start.year:04d}-{start.month:02d}"
    after = _local(run_after, tz)
    if after is not None:
        previous = after.date().replace(day=1) - timedelta(days=1)
        return f"{previous.year:04d}-{previous.month:02d}"
    msg = "no period: the run has no data interval, no run_after and no conf period"
    raise SettingError(msg)


def last_day(period: str) -> date:
    """The last calendar day of a YYYY-MM period."""
    year, month = (int(part) for part in check_period(period).split("-"))
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def daily_logical_date(day: date, tz: ZoneInfo) -> datetime:
    """The logical date of the scheduled daily run that processes `day`.

    It runs the next day at 02:00; with a cron trigger timetable the logical date is the
    trigger time.
    """
    return datetime.combine(day + timedelta(days=1), DAILY_AT, tz)


def clearing_bin() -> list[str]:
    """The words of the command that runs the CLI (`CLEARING_BIN`, default `clearing`)."""
    words = shlex.split(os.environ.get("CLEARING_BIN") or "clearing")
    if not words:
        msg = "CLEARING_BIN is blank"
        raise SettingError(msg)
    return words


def workdir(variable: str | None) -> str:
    """The work dir: the Airflow Variable's value if set, else `CLEARING_WORKDIR`."""
    value = (variable or "").strip() or os.environ.get("CLEARING_WORKDIR", "").strip()
    if not value:
        msg = (
            "no work dir: set the Airflow Variable clearing_workdir "
            "(or AIRFLOW_VAR_CLEARING_WORKDIR) or the environment variable CLEARING_WORKDIR"
        )
        raise SettingError(msg)
    return value


def command(words: tuple[str, ...], workdir_path: str, *tail: str) -> str:
    """One shell-safe command line: CLEARING_BIN, the verb's words, --workdir W, the tail."""
    argv = [*clearing_bin(), *words, "--workdir", workdir_path, *tail]
    return shlex.join(argv)


# --- Jinja macros (user_defined_macros of the DAGs): evaluated when a task renders, on the worker.


def _variable_workdir() -> str | None:
    from airflow.sdk import Variable  # imported on the worker only

    value = Variable.get("clearing_workdir", default=None)
    return None if value is None else str(value)


def _get(context: jinja2.runtime.Context, key: str) -> Any:
    value = context.get(key)
    return None if isinstance(value, jinja2.Undefined) else value


def _run_after(context: jinja2.runtime.Context) -> Any:
    dag_run = _get(context, "dag_run")
    return getattr(dag_run, "run_after", None) or _get(context, "logical_date")


@jinja2.pass_context
def _processing_date(context: jinja2.runtime.Context) -> str:
    params = _get(context, "params") or {}
    return processing_date_for(
        override=params.get("date"),
        interval_start=_get(context, "data_interval_start"),
        run_after=_run_after(context),
        tz=timezone(),
    )


@jinja2.pass_context
def _closing_period(context: jinja2.runtime.Context) -> str:
    params = _get(context, "params") or {}
    return closing_period_for(
        override=params.get("period"),
        interval_start=_get(context, "data_interval_start"),
        run_after=_run_after(context),
        tz=timezone(),
    )


@jinja2.pass_context
def _stage_command(context: jinja2.runtime.Context, task_id: str) -> str:
    day = _processing_date(context)  # also for the undated stages: a bad conf date stops the run
    for stage_id, words, dated in (*NIGHTLY, *STAGES):
        if stage_id == task_id:
            tail = ("--date", day) if dated else ()
            return command(words, workdir(_variable_workdir()), *tail)
    msg = f"no stage {task_id!r}"
    raise SettingError(msg)


@jinja2.pass_context
def _monthly_command(context: jinja2.runtime.Context) -> str:
    return command(("monthly",), workdir(_variable_workdir()), "--period", _closing_period(context))


MACROS: dict[str, Any] = {
    "clearing_processing_date": _processing_date,
    "clearing_closing_period": _closing_period,
    "clearing_stage_command": _stage_command,
    "clearing_monthly_command": _monthly_command,
}
