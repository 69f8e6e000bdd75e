"""The monthly close of a settlement period: rerate, settle, workbook, summary.

Stages::

    rerate   every rated row of the month again with today's reference data → delta report
             (no change: nothing to correct; changes: the report lists them for the analyst)
    settle   the monthly settlement workbook (TAP partners: the calendar month; CIBER
             partners: their settlement period, the 16th of the month before to the 15th);
             a re-run of a closed month writes a new version, never over an issued one

Same lock, manifest and exit codes as the nightly run.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from clearing import config
from clearing.pipeline.lock import WorkdirLock
from clearing.pipeline.run import EXIT_DATA, Run, StageFailed
from clearing.pipeline.runlog import QuietLog

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.pipeline.runlog import RunLog

__all__ = ["MONTHLY_STAGES", "run_monthly"]

MONTHLY_STAGES = ["rerate", "settle"]


def run_monthly(workdir: Path, period: str, *, log: RunLog | None = None) -> Run:
    """Close ``period`` (``YYYY-MM``) in ``workdir``; return the finished run.

    Raises:
        BusyError: another run holds the work folder.
        ConfigError: no or bad ``clearing.toml``.
    """
    wd = config.WorkDir(workdir)
    wd.settings()
    with WorkdirLock(workdir, f"monthly {period}"):
        run = Run(workdir, "monthly", period, MONTHLY_STAGES, log or QuietLog())
        with contextlib.suppress(StageFailed):
            _stages(wd, period, run)
        run.finish()
    return run


def _stages(wd: config.WorkDir, period: str, run: Run) -> None:
    from clearing.rating.rerate import rerate

    def do_rerate() -> dict[str, Any]:
        result = rerate(wd.root, period)
        run.outputs += result.paths
        changed = result.changed_rows.height
        if changed:
            run.problem(
                EXIT_DATA,
                f"rerate: {changed} row(s) price differently with today's reference data; "
                f"see {os.path.relpath(result.paths[0], wd.root)} before settling",
            )
        return {
            "receivable_rows": result.receivable_rows,
            "payable_rows": result.payable_rows,
            "changed_rows": changed,
        }

    run.stage("rerate", do_rerate)

    def settle() -> dict[str, Any]:
        from clearing.settle import monthly_workbook

        path = monthly_workbook(wd.root, period, run_id=run.run_id)
        run.outputs.append(path)
        run.facts["monthly_workbook"] = os.path.relpath(path, wd.root)
        return {"workbook": path.name}

    run.stage("settle", settle)
