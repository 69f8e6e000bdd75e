"""Settlement: the daily operations and monthly settlement workbooks, and the run summary.

The public API (called by ``clearing nightly`` / ``clearing monthly`` and ``clearing settle``)::

    from clearing.settle import daily_workbook, monthly_workbook, render_summary

    path = daily_workbook(workdir, date(2026, 11, 22), run_id="20261123T021500-ab12")
    path = monthly_workbook(workdir, "2026-11", run_id="...")
    text = render_summary(summary, fmt="text")  # or "html" for the mail

Workbooks are written under ``<workdir>/out/settlement/`` (``daily/`` and ``monthly/``) from
what the validate and rate stages left in the lake and ``clearing.duckdb``; they never change
those inputs. See ``reports/README.md`` for every sheet and column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearing import config
from clearing.settle._lake import MissingInputError
from clearing.settle._summary import RunSummary, key_figures, render_summary

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from datetime import date
    from pathlib import Path

__all__ = [
    "MissingInputError",
    "RunSummary",
    "daily_workbook",
    "figures_ahead",
    "key_figures",
    "monthly_workbook",
    "monthly_workbook_and_positions",
    "render_summary",
]


def daily_workbook(
    workdir: Path,
    day: date,
    *,
    run_id: str | None = None,
    settings: config.Settings | None = None,
) -> Path:
    """Write the daily operations workbook of processing date ``day``; return its path.

    ``<workdir>/out/settlement/daily/settlement_daily_<HOME>_<day>.xlsx``. Same inputs → same
    content; a re-run whose content is unchanged leaves the file as it is (same bytes).

    Raises:
        MissingInputError: validate or rate has not run for ``day`` (the message says what to
            run).
        ConfigError: no ``clearing.toml``, or the fx table lacks a rate that is needed.
    """
    from clearing.settle._daily import build_daily, daily_path
    from clearing.settle._issue import write_daily

    settings = settings or config.load(workdir)
    book = build_daily(workdir, day, run_id=run_id, settings=settings)
    return write_daily(book, daily_path(workdir, settings.home.tadig, day))


def figures_ahead(workdir: Path, period: str) -> AbstractContextManager[None]:
    """A block during which the monthly workbook's figures of ``period`` are read ahead.

    The monthly close wraps its rerate in it: the settle step's
    :func:`monthly_workbook_and_positions` of the same work folder and period takes the figures
    read meanwhile (one core each).
    """
    from clearing.settle._monthly import figures_ahead as ahead

    return ahead(workdir, period)


def monthly_workbook(workdir: Path, period: str, *, run_id: str | None = None) -> Path:
    """Write the monthly settlement workbook of ``period`` (``YYYY-MM``); return its path.

    ``<workdir>/out/settlement/monthly/settlement_monthly_<HOME>_<period>_v<N>.xlsx``: TAP
    partners over the calendar month, CIBER partners over the CIBER settlement period that
    ends on the 15th of the month (16th of the month before to the 15th). An issued workbook is
    never overwritten: a re-run with the same content returns the latest issue, a re-run with
    other content (late TAP, RAP, corrected rates) writes the next version.

    Raises:
        MissingInputError: no processing date of the period was validated and rated.
        ConfigError: bad period, no ``clearing.toml``, or a missing fx rate.
    """
    from clearing.settle._monthly import write_monthly

    return write_monthly(workdir, period, run_id=run_id)


def monthly_workbook_and_positions(
    workdir: Path, period: str, *, run_id: str | None = None
) -> tuple[Path, list[dict[str, Any]]]:
    """:func:`monthly_workbook` and the period's net positions, from one read of the month.

    The positions are :func:`clearing.settle.positions.net_positions`' rows.
    """
    from clearing.settle._monthly import write_monthly_figures
    from clearing.settle.positions import positions_of

    path, figures = write_monthly_figures(workdir, period, run_id=run_id)
    return path, positions_of(figures.summary)
