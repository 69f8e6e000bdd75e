"""The run summary: what a run did, for the terminal, the log and a mail to the team.

:func:`summary_of` turns a finished :class:`~clearing.pipeline.run.Run` into a plain dict;
its ``status`` (the badge) and each anomaly's ``severity`` are the words of
:attr:`clearing.errors.ExitCode.severity` (``ok``, ``data``, ``config``, ``transport``,
``crash``), as in the manifest and the JSON lines; a monthly run's ``positions`` are the net
position per partner and currency (Decimal, exact);
:func:`write_summaries` renders it (jinja2 templates of :mod:`clearing.settle`) as text and
HTML into ``runs/<run-id>/summary.txt`` and ``summary.html``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing._io import write_atomic
from clearing.errors import ClearingError
from clearing.ingest import FATES
from clearing.names import CiberReturnName, RapName

if TYPE_CHECKING:
    from clearing.pipeline.run import Run

__all__ = ["summary_of", "write_summaries"]


def _note(detail: dict[str, Any]) -> str:
    return ", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in detail.items() if not isinstance(v, list | dict)
    )


def summary_of(run: Run) -> dict[str, Any]:
    """The summary of ``run`` (the fields of :class:`clearing.settle.RunSummary`)."""
    from clearing import config

    m = run.manifest(hashes=False)
    try:
        home = config.load(run.workdir).home.tadig
    except ClearingError:
        home = ""
    counts: dict[str, int] = {}
    for stage in m["stages"]:
        for k, v in (stage.get("detail") or {}).items():
            if isinstance(v, int) and not isinstance(v, bool):
                counts[f"{stage['name']}: {k.replace('_', ' ')}"] = v
    money = run.facts.get("money") or {}
    values = [
        {
            "label": f"{side} {r['partner']}",
            "amount": Decimal(r["amount"]).scaleb(-r["scale"]),
            "currency": r["currency"],
        }
        for side in ("receivable", "payable")
        for r in money.get(side, [])
    ]
    returns = [
        {"partner": _partner(p), "file": Path(p).name, "kind": _kind(p)}
        for p in (x["path"] for x in m["outputs"])
        if p.startswith(("out/rap/", "out/ciber_returns/"))
    ]
    workbooks = [
        {"label": k.replace("_", " "), "path": run.facts[k]}
        for k in ("workbook", "monthly_workbook")
        if run.facts.get(k)
    ]
    workbooks.append(
        {"label": "manifest", "path": os.path.relpath(run.dir / "manifest.json", run.workdir)}
    )
    entries = run.facts.get("entries") or []
    set_aside = []
    for e in entries:
        if e["fate"] in ("quarantined", "refused"):
            line = f"{e['fate']} `{e['name']}` ({e['reason']}): {e['path'] or 'left on the server'}"
            # a line that is not among the run's problems was reported on an earlier date
            set_aside.append({"message": line, "new": line in run.problems})
    return {
        "kind": run.kind,
        "run_id": run.run_id,
        "date": run.label,
        "home": home,
        # the badge: the severity word of the exit code, as the manifest's status says
        "status": run.status,
        "started": m["started"],
        "stages": [
            {
                "name": st["name"],
                "status": st["status"],
                "seconds": st["seconds"],
                "note": st.get("error") or _note(st.get("detail") or {}),
            }
            for st in m["stages"]
        ],
        "counts": counts,
        "identity": run.reconciliation,
        "values": values,
        "returns": returns,
        "anomalies": [
            {"severity": level, "message": p}
            for p, level in zip(run.problems, run.levels, strict=False)
        ]
        + [{"severity": "warning", "message": w} for w in run.warnings],
        "positions": [
            {**p, **{k: Decimal(p[k]) for k in ("receivable", "payable", "net")}}
            for p in run.facts.get("net_position") or []
        ],
        "workbooks": workbooks,
        "entries": {
            "counts": {f: n for f in FATES if (n := sum(e["fate"] == f for e in entries))},
            "set_aside": set_aside,
        },
    }


def _partner(path: str) -> str:
    name = Path(path).name
    parsed = CiberReturnName.parse(name) or RapName.parse(name)
    return parsed.recipient if parsed else ""


def _kind(path: str) -> str:
    return "CIBER return" if path.startswith("out/ciber_returns/") else "RAP"


def write_summaries(run: Run, summary: dict[str, Any]) -> tuple[str, str]:
    """Render ``summary`` as text and HTML, write both into the run folder; return them."""
    from clearing.settle import render_summary

    text = render_summary(summary, fmt="text")
    html = render_summary(summary, fmt="html")
    for name, body in (("summary.txt", text), ("summary.html", html)):
        write_atomic(run.dir / name, body)
    return text, html
