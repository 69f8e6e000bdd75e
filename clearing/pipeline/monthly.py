"""The monthly close of a settlement period: rerate, settle, workbook, summary.

Stages::

    rerate   every rated row of the month again with today's reference data → delta report
             (no change: nothing to correct; changes: the report lists them for the analyst)
    settle   the monthly settlement workbook (TAP partners: the calendar month; CIBER
             partners: their settlement period, the 16th of the month before to the 15th);
             a re-run of a closed month writes a new version, never over an issued one;
             the net position per partner and currency into the manifest (``net_position``,
             exact decimal strings) and the run summary

Same lock, manifest and exit codes as the nightly run: a list of steps and the same loop
(:func:`~clearing.pipeline.steps.run_steps`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearing import config
from clearing._io import private_files
from clearing.pipeline.checks import check_settings
from clearing.pipeline.lock import WorkdirLock
from clearing.pipeline.run import Run
from clearing.pipeline.runlog import QuietLog
from clearing.pipeline.steps import Step, run_steps
from clearing.stage import StageContext

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.pipeline.runlog import RunLog

__all__ = ["MONTHLY_STAGES", "monthly_steps", "run_monthly"]

MONTHLY_STAGES = ["rerate", "settle"]


def monthly_steps() -> list[Step]:
    """The steps of a monthly close, in order (their names are :data:`MONTHLY_STAGES`)."""
    from clearing.rating import stage as rating
    from clearing.settle import stage as settle

    return [Step("rerate", (rating.rerate,)), Step("settle", (settle.monthly,))]


def run_monthly(workdir: Path, period: str, *, log: RunLog | None = None) -> Run:
    """Close ``period`` (``YYYY-MM``) in ``workdir``; return the finished run.

    Raises:
        BusyError: another run holds the work folder.
        ConfigError: no or bad ``clearing.toml``.
    """
    from clearing.settle import figures_ahead

    wd = config.WorkDir(workdir)
    settings = wd.settings()
    check_settings(wd, settings)
    with private_files(*settings.output.modes), WorkdirLock(workdir, f"monthly {period}"):
        run = Run(workdir, "monthly", period, MONTHLY_STAGES, log or QuietLog())
        ctx = StageContext(wd, settings, period=period, run_id=run.run_id, progress=run.log.event)
        # the settlement's figures are read while the rerate runs (one core each)
        with figures_ahead(workdir, period):
            run_steps(run, monthly_steps(), ctx)
        run.finish()
    return run
