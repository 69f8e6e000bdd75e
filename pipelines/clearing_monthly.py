"""Airflow 3 DAG `clearing_monthly`: the monthly close, `clearing monthly --period YYYY-MM`.

On the 1st of each month at 06:00 (`CLEARING_TZ`) it closes the previous calendar month, once
the daily run of that month's last day has finished. The CIBER settlement period (16th–15th) is
handled by the `monthly` verb itself; the DAG only names the calendar month.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, Param
from dateutil.relativedelta import relativedelta

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
### Monthly close

`clearing monthly --workdir W --period YYYY-MM` for the previous month (the monthly verb also
closes the CIBER settlement period, 16th–15th, that ends in it). It first waits for the daily
run that processed the month's last day (task `settle_daily` of `clearing_daily`, success or
skipped). Re-close a month: trigger with conf `{"period": "YYYY-MM"}`; when no daily run of
that month's last day exists in Airflow (it ran from cron, or long ago), mark `wait_for_daily`
as success.

Exit codes, with the word the run summary's badge, the `--json` lines' `level` and the
manifest's `status` use for them (the monthly summary carries the net position per partner
and currency):

"""
DOC += cc.outcome_notes() + "\n"

default_args = {
    "owner": "clearing",
    "retries": 2,
    "retry_delay": timedelta(minutes=15),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=6),
}


def _last_daily_run(logical_date: datetime | None, context: Any) -> datetime:
    """The logical date of the daily run that processed the closed month's last day."""
    params = context.get("params") or {}
    dag_run = context.get("dag_run")
    period = cc.closing_period_for(
        override=params.get("period"),
        interval_start=context.get("data_interval_start"),
        run_after=getattr(dag_run, "run_after", None) or logical_date,
        tz=cc.timezone(),
    )
    return cc.daily_logical_date(cc.last_day(period), cc.timezone())


with DAG(
    dag_id=cc.MONTHLY_DAG_ID,
    description="Monthly close: settlement workbooks of the previous month",
    doc_md=DOC,
    schedule=CronTriggerTimetable(
        cc.MONTHLY_CRON, timezone=str(cc.timezone()), interval=relativedelta(months=1)
    ),
    start_date=cc.start_date(),
    # A month closed while the scheduler was down is closed afterwards, oldest first.
    catchup=True,
    max_active_runs=1,
    max_active_tasks=1,
    default_args=default_args,
    params={
        "period": Param(
            None,
            type=["null", "string"],
            description="month to close, YYYY-MM (default: the previous month)",
        ),
    },
    user_defined_macros=cc.MACROS,
    tags=["clearing"],
) as dag:
    wait_for_daily = ExternalTaskSensor(
        task_id="wait_for_daily",
        external_dag_id=cc.DAILY_DAG_ID,
        external_task_id=cc.SETTLED_TASK[cc.layout()],
        execution_date_fn=_last_daily_run,
        allowed_states=["success", "skipped"],
        failed_states=["failed", "upstream_failed"],
        check_existence=True,
        mode="reschedule",
        poke_interval=timedelta(minutes=10).total_seconds(),
        timeout=timedelta(hours=18).total_seconds(),
        retries=0,
    )
    monthly = BashOperator(
        task_id="monthly",
        bash_command="{{ clearing_monthly_command() }}",
        skip_on_exit_code=cc.EXIT_DATA_PROBLEM,
        append_env=True,
    )
    wait_for_daily >> monthly
