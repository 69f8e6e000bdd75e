"""The run summary: what a run did, for the terminal, the log and a mail to the team.

:func:`summary_of` turns a finished :class:`~clearing.pipeline.run.Run` into a plain dict;
:func:`write_summaries` renders it (jinja2 templates of :mod:`clearing.settle`) as text and
HTML into ``runs/<run-id>/summary.txt`` and ``summary.html``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearing.pipeline.run import Run

__all__ = ["summary_of", "write_summaries"]


def _amount(amount: int, scale: int) -> str:
    return f"{Decimal(amount).scaleb(-scale):,.{scale}f}"


def summary_of(run: Run) -> dict[str, Any]:
    """The summary of ``run`` as a plain dict (JSON-able, stable keys)."""
    m = run.manifest(hashes=False)
    money = run.facts.get("money") or {}
    workbooks = [run.facts[k] for k in ("workbook", "monthly_workbook") if run.facts.get(k)]
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "label": run.label,
        "status": run.status,
        "exit_code": run.exit_code,
        "seconds": m["seconds"],
        "stages": m["stages"],
        "reconciliation": run.reconciliation,
        "problems": list(run.problems),
        "receivable": [
            {**r, "text": _amount(r["amount"], r["scale"])} for r in money.get("receivable", [])
        ],
        "payable": [
            {**r, "text": _amount(r["amount"], r["scale"])} for r in money.get("payable", [])
        ],
        "workbooks": workbooks,
        "manifest": os.path.relpath(run.dir / "manifest.json", run.workdir),
    }


def write_summaries(run: Run, summary: dict[str, Any]) -> tuple[str, str]:
    """Render ``summary`` as text and HTML, write both into the run folder; return them."""
    from clearing.settle import render_summary

    text = render_summary(summary, fmt="text")
    html = render_summary(summary, fmt="html")
    for name, body in (("summary.txt", text), ("summary.html", html)):
        path = run.dir / name
        tmp = path.with_name(name + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    return text, html
