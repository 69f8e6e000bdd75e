"""The ``outbound`` stage: TAP-out, Notifications and CIBER-out from the day's rated rows."""

from __future__ import annotations

from clearing.outbound.run import write_day
from clearing.stage import StageContext, StepResult, stage

__all__ = ["outbound"]


@stage("outbound")
def outbound(ctx: StageContext) -> StepResult:
    """Write the day's partner files from ``lake/rated_visitors`` (``value``: the files)."""
    files = write_day(ctx.workdir.root, ctx.date, settings=ctx.settings)
    return StepResult(
        "outbound", {"outbound_files": len(files)}, outputs=[f.path for f in files], value=files
    )
