"""The ``Returns`` sheet of the daily workbook and the ``Write-offs`` sheet of the monthly.

Partners return events (severe) or whole files (fatal) of our TAP-out in their RAPs; an
analyst resubmits them or writes them off (``clearing returns``, :mod:`clearing.returns.worked`).

* ``Returns`` (daily): every item received up to the processing date, per partner, status
  (``to_correct`` / ``resubmitted`` / ``written_off``, as recorded when the workbook is
  written) and age band (days from the date the RAP was received to the processing date:
  0–7, 8–30, 31–90, > 90): items, and the returned money (charge + tax; a fatal return: the
  whole file's totals) in the TAP currency and in SDR.
* ``Write-offs`` (monthly): the write-offs dated in the period's TAP window (the ``--date`` of
  ``clearing returns write-off``): RAP file, partner, event, amount, currency, reason, date,
  and the total in SDR.

Money is exact: integers at the file's scale, as Decimals; SDR through the fx rate of the
processing date (daily) or of the write-off's date (monthly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearing.settle._book import Col, Table, money
from clearing.settle._lake import SDR_SCALE
from clearing.store.returns_in import STATUS_SQL

if TYPE_CHECKING:
    from datetime import date

    from clearing.settle._fx import Fx
    from clearing.settle._lake import Lake

__all__ = [
    "RETURNS_SHEET",
    "WRITE_OFFS_SHEET",
    "age_band",
    "returns_rows",
    "returns_table",
    "write_off_rows",
    "write_offs_table",
]

RETURNS_SHEET = "Returns"
WRITE_OFFS_SHEET = "Write-offs"

#: Age bands in days (inclusive bounds; None: no upper bound), in the sheet's order.
BANDS = (("0-7", 0, 7), ("8-30", 8, 30), ("31-90", 31, 90), (">90", 91, None))
_STATUSES = ("to_correct", "resubmitted", "written_off")

#: The latest receipt of each returned item up to a date (``?``), with its money and status.
_ITEMS = f"""
SELECT r.rap_file, r.item, r.kind, r.partner, r.event_index, r.processing_date AS received,
       CASE WHEN r.kind = 'fatal' THEN o.total_charge ELSE r.charge END AS charge,
       CASE WHEN r.kind = 'fatal' THEN o.total_tax ELSE r.tax END AS tax,
       coalesce(o.charge_scale, r.charge_scale) AS scale,
       coalesce(o.currency, r.currency) AS currency,
       {STATUS_SQL} AS status
FROM returns_in r LEFT JOIN return_actions a ON a.rap_file = r.rap_file AND a.item = r.item
LEFT JOIN outbound_files o ON o.file_name = r.tap_file
WHERE r.item IS NOT NULL AND r.processing_date <= ?
QUALIFY row_number() OVER (PARTITION BY r.rap_file, r.item ORDER BY r.processing_date DESC) = 1
"""


def age_band(days: int) -> str:
    """The age band of an item ``days`` old."""
    for name, low, high in BANDS:
        if days >= low and (high is None or days <= high):
            return name
    return BANDS[0][0]  # received after the date: not listed (see returns_rows)


def returns_rows(lake: Lake, fx: Fx, day: date) -> list[dict[str, Any]]:
    """Items received up to ``day``, per partner, status, age band and currency."""
    groups: dict[tuple[str, int, int, str], dict[str, Any]] = {}
    bands = [b[0] for b in BANDS]
    for r in lake.rows(_ITEMS, [day]):
        band = age_band((day - r["received"]).days)
        currency = r["currency"] or ""
        key = (r["partner"] or "", _STATUSES.index(r["status"]), bands.index(band), currency)
        g = groups.setdefault(
            key,
            {
                "partner": r["partner"],
                "status": r["status"],
                "age": band,
                "currency": r["currency"],
                "scale": r["scale"] if r["scale"] is not None else SDR_SCALE,
                "items": 0,
                "units": 0,
            },
        )
        g["items"] += 1
        if r["kind"] in ("severe", "fatal"):
            g["units"] += int(r["charge"] or 0) + int(r["tax"] or 0)
    out = []
    for _key, g in sorted(groups.items()):
        units, scale = g.pop("units"), g["scale"]
        g["amount"] = money(units, scale)
        g["amount_sdr"] = fx.sdr(units, scale, g["currency"], day) if g["currency"] else None
        out.append(g)
    return out


def returns_table(rows: list[dict[str, Any]], day: date) -> Table:
    """The daily ``Returns`` sheet."""
    return Table(
        RETURNS_SHEET,
        "Returns: partners' RAPs about our TAP-out, by status and age",
        [
            Col("partner", "Partner"),
            Col("status", "Status"),
            Col("age", "Age (days)", align="center"),
            Col("items", "Items", "int", total=True),
            Col("amount", "Amount", "money", scale_key="scale"),
            Col("currency", "Currency", align="center"),
            Col("amount_sdr", "Amount (SDR)", "money", scale=SDR_SCALE, total=True),
        ],
        rows,
        subtitle=f"Processing date {day} · every item received up to the date",
        notes=(
            "One line per partner, status and age band (days from the date the RAP was "
            f"received to {day}: 0-7, 8-30, 31-90, >90). Status as recorded when the workbook "
            "was written: to_correct, resubmitted (sent again), written_off (a loss).",
            "Amount: charge + tax returned (a fatal return: the whole file's totals); "
            "MissingReturn and StopReturn items carry no money. See `clearing returns list`.",
        ),
    )


def write_off_rows(lake: Lake, fx: Fx, first: date, last: date) -> list[dict[str, Any]]:
    """The write-offs dated ``first`` to ``last``, by date, RAP file and item."""
    rows = lake.rows(
        f"""
        WITH r AS ({_ITEMS})
        SELECT coalesce(a.for_date, CAST(a.requested_at AS DATE)) AS date, a.rap_file, a.item,
               r.partner, r.kind, r.event_index, a.amount, a.charge_scale AS scale,
               a.currency, a.reason
        FROM return_actions a JOIN r ON r.rap_file = a.rap_file AND r.item = a.item
        WHERE a.action = 'write_off'
          AND coalesce(a.for_date, CAST(a.requested_at AS DATE)) BETWEEN ? AND ?
        ORDER BY 1, 2, 3
        """,
        [last, first, last],
    )
    out = []
    for r in rows:
        scale = r["scale"] if r["scale"] is not None else SDR_SCALE
        units = int(r["amount"] or 0)
        out.append(
            {
                "date": r["date"],
                "rap_file": r["rap_file"],
                "partner": r["partner"],
                "kind": r["kind"],
                "event": r["event_index"],
                "amount": money(units, scale),
                "scale": scale,
                "currency": r["currency"],
                "amount_sdr": fx.sdr(units, scale, r["currency"], r["date"])
                if r["currency"]
                else None,
                "reason": r["reason"],
            }
        )
    return out


def write_offs_table(rows: list[dict[str, Any]], subtitle: str) -> Table:
    """The monthly ``Write-offs`` sheet."""
    return Table(
        WRITE_OFFS_SHEET,
        "Write-offs: partners' returns about our TAP-out given up as a loss",
        [
            Col("date", "Date", "date"),
            Col("rap_file", "RAP file"),
            Col("partner", "Partner"),
            Col("kind", "Kind"),
            Col("event", "Event", "int"),
            Col("amount", "Amount", "money", scale_key="scale"),
            Col("currency", "Currency", align="center"),
            Col("amount_sdr", "Amount (SDR)", "money", scale=SDR_SCALE, total=True),
            Col("reason", "Reason", wrap=True),
        ],
        rows,
        subtitle=subtitle,
        notes=(
            "Each line: a returned event (severe; Event: its place in our TAP-out) or file "
            "(fatal) written off with `clearing returns write-off`, dated by its --date. "
            "Amount: charge + tax returned, as recorded.",
            "No line: nothing was written off in the period.",
        ),
    )
