"""The ``Re-rate deltas`` sheet of the daily and monthly workbooks.

What settles is what was sent and received: the receivable on every other sheet is the rated
rows behind the files we sent (``lake/rated_visitors``, never rewritten once sent). A replay of
a sent day with other reference data writes a delta instead (``lake/rerate_deltas/date=D``,
:mod:`clearing.rating.run`): new − sent per partner, service and currency. This sheet shows
those deltas on their own — they are never folded into the receivable — with, per line,
``re-rated = sent + delta``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearing.settle._book import Col, Table, money

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date
    from pathlib import Path

    from clearing.settle._lake import Lake

__all__ = ["SHEET", "delta_rows", "deltas_table"]

SHEET = "Re-rate deltas"
_MONEY = ("sent", "rerated", "delta", "debit", "credit")


def delta_rows(lake: Lake, days: Iterable[date]) -> tuple[list[dict[str, Any]], list[Path]]:
    """The delta lines of ``days`` (by date, partner, service, currency) and the files read."""
    files = lake.view("rd", "rerate_deltas", days)
    rows = lake.rows(
        """
        SELECT processing_date AS date, partner, service, currency, charge_scale AS scale,
               CAST(events AS BIGINT) AS events, CAST(changed AS BIGINT) AS changed,
               old_total AS sent, new_total AS rerated, delta, debit, credit
        FROM rd ORDER BY processing_date, partner, service, currency, charge_scale
        """
    )
    return rows, files


def _as_money(row: dict[str, Any]) -> dict[str, Any]:
    """A delta line with its amounts as exact Decimals at the line's scale."""
    check = row["sent"] + row["delta"] - row["rerated"]
    out = dict(row)
    for key, value in (*((k, row[k]) for k in _MONEY), ("check", check)):
        out[key] = money(value, row["scale"])
    return out


def deltas_table(rows: list[dict[str, Any]], subtitle: str) -> Table:
    """The sheet: one line per delta, money in each line's currency and scale."""
    return Table(
        SHEET,
        "Re-rate deltas: replays of sent days (new − sent), not in the receivable",
        [
            Col("date", "Processing date", "date"),
            Col("partner", "Partner"),
            Col("service", "Service"),
            Col("currency", "Currency", align="center"),
            Col("events", "Events", "int", total=True),
            Col("changed", "Changed events", "int", total=True),
            Col("sent", "Sent", "money", scale_key="scale"),
            Col("rerated", "Re-rated", "money", scale_key="scale"),
            Col("delta", "Delta (re-rated − sent)", "money", scale_key="scale"),
            Col("debit", "Debit (partner owes more)", "money", scale_key="scale"),
            Col("credit", "Credit (we owe back)", "money", scale_key="scale"),
            Col(
                "check",
                "Sent + delta − re-rated",
                "money",
                scale_key="scale",
                formula="{sent} + {delta} - {rerated}",
                flag_nonzero=True,
            ),
        ],
        [_as_money(r) for r in rows],
        subtitle=subtitle,
        notes=(
            "The receivable on the other sheets is what was sent (the rated rows behind the "
            "files in the outbox, never rewritten). A replay of a sent day after a change of "
            "reference data re-rates into lake/rerated_visitors and writes its delta here; "
            "a delta is settled only by an explicit decision, never folded in.",
            "No line: no sent day was replayed with other reference data.",
        ),
    )
