"""The settle stages of a run: the daily operations workbook, the monthly settlement workbook."""

from __future__ import annotations

import os

from clearing.stage import StageContext, StepResult, stage

__all__ = ["daily", "monthly"]


@stage("settle")
def daily(ctx: StageContext) -> StepResult:
    """The daily operations workbook of the processing date (manifest: ``workbook``)."""
    from clearing.settle import daily_workbook

    root = ctx.workdir.root
    # no run id inside: a re-run of the date must give the same bytes (the manifest names the
    # workbook and its hash instead)
    path = daily_workbook(root, ctx.date, settings=ctx.settings)
    return StepResult(
        "settle",
        {"workbook": path.name},
        outputs=[path],
        facts={"workbook": os.path.relpath(path, root)},
    )


@stage("settle")
def monthly(ctx: StageContext) -> StepResult:
    """The monthly settlement workbook of the period and its net position per partner.

    Manifest: ``monthly_workbook``, and ``net_position`` (amounts as decimal strings at the
    settlement currency's scale, never floats: what we receive, what we pay, the net —
    positive: we receive). One read of the month's lake for both.
    """
    from clearing.settle import monthly_workbook_and_positions

    root = ctx.workdir.root
    path, rows = monthly_workbook_and_positions(root, ctx.month, run_id=ctx.run_id)
    positions = [
        {
            "partner": r["partner"],
            "currency": r["currency"],
            "receivable": str(r["receivable"]),
            "payable": str(r["payable"]),
            "net": str(r["net"]),
        }
        for r in rows
    ]
    return StepResult(
        "settle",
        {"workbook": path.name},
        outputs=[path],
        facts={"monthly_workbook": os.path.relpath(path, root), "net_position": positions},
    )
