"""The run summary: one plain structure rendered as text (terminal, log) or HTML (mail).

The nightly and monthly commands fill a :class:`RunSummary` (or a plain dict with the same
keys) and call :func:`render_summary`; the templates are ``reports/templates/
run_summary.txt.j2`` and ``run_summary.html.j2`` (``$CLEARING_REPORTS_DIR`` overrides the
folder). Every key is optional: a template shows what it is given.

    text = render_summary(
        {
            "kind": "nightly", "run_id": "20261123T0215-1", "date": "2026-11-22",
            "status": "warning",
            "counts": {"files in": 20, "records in": 951, "accepted": 773},
            "values": [{"label": "payable accepted", "amount": Decimal("831.453862"),
                        "currency": "SDR"}],
            "returns": [{"partner": "FRAF9", "file": "RCHKGCLFRAF900001", "kind": "RAP",
                         "records": 2, "value": Decimal("0.36797"), "currency": "SDR"}],
            "anomalies": [{"severity": "warning", "message": "GBRG9: FSN 00354 missing"}],
            "workbooks": [{"label": "daily workbook", "path": "out/settlement/daily/..."}],
        },
        fmt="text",
    )
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from clearing.config import environment
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import jinja2

__all__ = ["RunSummary", "key_figures", "render_summary", "templates_dir"]


@dataclass
class RunSummary:
    """What one run did, for people.

    Attributes:
        kind: ``nightly``, ``monthly``, ``backfill``...
        run_id: the run's id (``runs/<run_id>/manifest.json``).
        date: the processing date (``YYYY-MM-DD``) or period (``YYYY-MM``).
        home: our TADIG code.
        status: ``ok``, ``warning`` or ``failed``.
        started, finished: ISO timestamps (text), when known.
        stages: ``{"name", "status", "seconds", "note"}`` per stage, in order.
        counts: label → count (files, records in, accepted, returned...).
        identity: the record identity (``in``, ``accepted``, ``returned``, ``duplicate``,
            ``late``, ``quarantined``, ``difference``).
        values: ``{"label", "amount", "currency"}`` (amount: Decimal, int or text).
        returns: ``{"partner", "file", "kind", "records", "value", "currency"}``.
        anomalies: ``{"severity", "message"}`` (or plain text).
        workbooks: ``{"label", "path", "url"}`` (url optional: a link in the mail).
        entries: the delivered entries' fates: ``{"counts": {fate: n}, "set_aside":
            [{"message", "new"}]}`` (each quarantined / refused entry; ``new`` False when it
            was reported on an earlier date).
    """

    kind: str = "nightly"
    run_id: str = ""
    date: str = ""
    home: str = ""
    status: str = "ok"
    started: str | None = None
    finished: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    identity: dict[str, int] | None = None
    values: list[dict[str, Any]] = field(default_factory=list)
    returns: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[Any] = field(default_factory=list)
    workbooks: list[dict[str, Any]] = field(default_factory=list)
    entries: dict[str, Any] = field(default_factory=dict)


def templates_dir() -> Path:
    """The folder of the summary templates (``$CLEARING_REPORTS_DIR`` or ``reports/templates``)."""
    return environment().reports_dir


def _amount(value: Any) -> str:
    """Thousands separators, the decimals as given (never through float)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Decimal):
        return f"{value:,f}"
    if isinstance(value, float):
        msg = "money in a run summary must be Decimal, int or text, not float"
        raise TypeError(msg)
    return str(value)


def _environment(fmt: str) -> jinja2.Environment:
    import jinja2

    folder = templates_dir()
    if not folder.is_dir():
        msg = f"report templates not found in `{folder}` (set CLEARING_REPORTS_DIR)"
        raise ConfigError(msg)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=fmt == "html",
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["amount"] = _amount
    return env


def _as_dict(summary: RunSummary | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(summary, RunSummary):
        return dataclasses.asdict(summary)
    return dict(summary)


def render_summary(
    summary: RunSummary | Mapping[str, Any], fmt: Literal["text", "html"] = "text"
) -> str:
    """Render a run summary as ``text`` (terminal, log) or ``html`` (mail body).

    Raises:
        ConfigError: unknown ``fmt`` or the templates are missing.
    """
    if fmt not in ("text", "html"):
        msg = f"summary format `{fmt}`: use text or html"
        raise ConfigError(msg)
    data = dataclasses.asdict(RunSummary())
    data.update(_as_dict(summary))
    anomalies = []
    for a in data.get("anomalies") or []:
        anomalies.append(a if isinstance(a, dict) else {"severity": "", "message": str(a)})
    data["anomalies"] = anomalies
    name = "run_summary.txt.j2" if fmt == "text" else "run_summary.html.j2"
    return _environment(fmt).get_template(name).render(s=data)


def key_figures(path: Path) -> dict[str, Decimal | int]:
    """The defined names of a workbook written here, with their values (exact).

    Handy to fill :attr:`RunSummary.counts` / ``values`` from the daily workbook, e.g.
    ``key_figures(p)["records_difference"]``.
    """
    from openpyxl import load_workbook

    wb = load_workbook(path, data_only=True, read_only=False)
    out: dict[str, Decimal | int] = {}
    for name, defined in sorted(wb.defined_names.items()):
        for sheet, ref in defined.destinations:
            value = wb[sheet][ref.replace("$", "")].value
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int):
                out[name] = value
            elif isinstance(value, float):
                out[name] = Decimal(repr(value))
    wb.close()
    return out
