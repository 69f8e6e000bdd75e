"""The ``outbound`` stage: TAP-out, Notifications and CIBER-out from the day's rated rows."""

from __future__ import annotations

from clearing.outbound.resend import resend_fatal
from clearing.outbound.run import write_day
from clearing.stage import StageContext, StepResult, stage

__all__ = ["outbound"]


@stage("outbound")
def outbound(ctx: StageContext) -> StepResult:
    """Write the day's partner files from ``lake/rated_visitors`` (``value``: the files).

    Then the fatally returned files resubmitted for the day, under their own name and FSN
    (:func:`~clearing.outbound.resend.resend_fatal`); one that cannot be is a problem.
    """
    files = write_day(ctx.workdir.root, ctx.date, settings=ctx.settings)
    resent, problems = resend_fatal(ctx.workdir.root, ctx.date, ctx.settings)
    files += resent
    return StepResult(
        "outbound",
        {"outbound_files": len(files)},
        status="warning" if problems else "ok",
        outputs=[f.path for f in files],
        problems=problems,
        value=files,
    )
