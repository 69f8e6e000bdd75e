"""Airflow 3 DAG `clearing_daily`: the nightly clearing run, calling the CLI.

Every night at 02:00 (`CLEARING_TZ`) it processes the previous day (the data interval's start
date in that time zone). Tasks (`CLEARING_DAILY_TASKS`): `nightly` (default) collect → nightly
→ send; `stages` collect → validate → receive → rate → retail → outbox → send →
settle_daily. See
pipelines/README.md for the settings, the exit-code policy and how to re-run a day.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param, chain

try:  # Airflow >= 3.1 exports the timetables from the SDK
    from airflow.sdk import CronTriggerTimetable
except ImportError:  # pragma: no cover - Airflow 3.0
    # 3.0's class of that name (with Airflow installed mypy sees two different classes;
    # without it, as `make test` runs, both are Any)
    from airflow.timetables.trigger import (  # type: ignore[assignment, unused-ignore]
        CronTriggerTimetable,
    )

import clearing_common as cc

DOC = """
### Nightly clearing

Each task runs one verb of the `clearing` CLI on the work folder:
`clearing <verb> --workdir W [--date D]`. **D** is the previous day (the data interval's start
date in `CLEARING_TZ`); trigger with conf `{"date": "YYYY-MM-DD"}` to re-run a given day
(idempotent: same inputs, same bytes). Tasks: `collect` (partners' files into the inbox),
then `nightly --no-collect --no-send` (claim, validate, receive RAP/ACK, rate, retail, outbox,
daily settlement, manifest), then `send`; or, with `CLEARING_DAILY_TASKS=stages`, one task per
stage verb.

Exit codes, with the word the run summary's badge, the `--json` lines' `level` and the
manifest's `status` use for them. A `data` problem (e.g. a partner file fatally rejected and
returned in a RAP) does not hold the night up: RAPs and TAP-out still go out, and later nights
run.

"""
DOC += cc.outcome_notes() + "\n"

default_args = {
    "owner": "clearing",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=40),
    "execution_timeout": timedelta(hours=6),
}

with DAG(
    dag_id=cc.DAILY_DAG_ID,
    description="Nightly roaming clearing: collect, validate, rate, retail, send, settle daily",
    doc_md=DOC,
    schedule=CronTriggerTimetable(
        cc.DAILY_CRON, timezone=str(cc.timezone()), interval=timedelta(days=1)
    ),
    start_date=cc.start_date(),
    # Every processing date must be cleared once: nights missed while the scheduler was down are
    # run afterwards, oldest first and one at a time (max_active_runs=1).
    catchup=True,
    max_active_runs=1,
    max_active_tasks=1,
    dagrun_timeout=timedelta(hours=20),
    default_args=default_args,
    params={
        "date": Param(
            None,
            type=["null", "string"],
            description="processing date YYYY-MM-DD (default: the data interval's start date)",
        ),
    },
    user_defined_macros=cc.MACROS,
    render_template_as_native_obj=False,
    tags=["clearing"],
) as dag:
    stages = [
        BashOperator(
            task_id=task_id,
            bash_command=f"{{{{ clearing_stage_command({task_id!r}) }}}}",
            # 1 = data problem: visible as "skipped", does not fail the run (see DOC).
            skip_on_exit_code=cc.EXIT_DATA_PROBLEM,
            # a stage runs when the ones before it succeeded or were skipped, never after a failure
            trigger_rule="none_failed",
            append_env=True,
        )
        for task_id, _words, _dated in cc.LAYOUTS[cc.layout()]
    ]
    chain(*stages)
