"""The sheets of the monthly workbook: column layouts, titles, notes (figures: :mod:`._monthly`)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearing.settle._book import Chart, Col, KeyFigure, KeyFigures, Table
from clearing.settle._lake import SDR_SCALE

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing import config
    from clearing.settle._common import AuditFacts
    from clearing.settle._monthly import Period

__all__ = [
    "SHOWN",
    "audit_head",
    "audit_table",
    "by_currency_table",
    "detail_table",
    "front",
    "rates_table",
    "retail_bills_table",
    "retail_table",
    "sdr_col",
    "summary_table",
    "trend_table",
]


def sdr_col(key: str, title: str, **kw: Any) -> Col:
    """An SDR money column (6 decimals)."""
    return Col(key, title, "money", scale=SDR_SCALE, **kw)


SHOWN = 2
"""Decimal places a summary sheet shows of an SDR amount (the cell keeps all six)."""


def _sdr_summary(key: str, title: str, **kw: Any) -> Col:
    """An SDR money column of a summary sheet: exact in the cell, shown to the cent."""
    return sdr_col(key, title, shown=SHOWN, **kw)


def summary_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``Summary``: per partner, receivable and payable, net position and direction."""
    return Table(
        "Summary",
        f"Settlement summary {p.name}",
        [
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("standard", "Standard"),
            Col("window", "Processing dates"),
            Col("rec_events", "Receivable events", "int", total=True),
            _sdr_summary(
                "rec_charge", "Receivable charge (SDR)", total=True, name="receivable_sdr"
            ),
            _sdr_summary("rec_tax", "Receivable tax (SDR)", total=True),
            _sdr_summary("rap_received", "RAP received (SDR)", total=True, name="rap_received_sdr"),
            _sdr_summary(
                "net_rec",
                "Net receivable (SDR)",
                total=True,
                formula="{rec_charge} + {rec_tax} + {rap_received}",
                name="net_receivable_sdr",
            ),
            Col("pay_events", "Payable events", "int", total=True),
            _sdr_summary(
                "pay_charge", "Payable charge as invoiced (SDR)", total=True, name="payable_sdr"
            ),
            _sdr_summary("pay_tax", "Payable tax (SDR)", total=True),
            _sdr_summary("rap_sent", "RAP sent (SDR)", total=True, name="rap_sent_sdr"),
            _sdr_summary(
                "net_pay",
                "Net payable (SDR)",
                total=True,
                formula="{pay_charge} + {pay_tax} + {rap_sent}",
                name="net_payable_sdr",
            ),
            _sdr_summary(
                "net_sdr",
                "Net position (SDR)",
                total=True,
                formula="{net_rec} - {net_pay}",
                name="net_position_sdr",
            ),
            Col("sc", "Settlement currency", align="center"),
            Col("rec_sc", "Net receivable (settlement)", "money", scale_key="ss"),
            Col("pay_sc", "Net payable (settlement)", "money", scale_key="ss"),
            Col(
                "net_sc",
                "Net position (settlement)",
                "money",
                scale_key="ss",
                formula="{rec_sc} - {pay_sc}",
            ),
            Col(
                "rounding_sc",
                "Per-event rounding (settlement)",
                "money",
                scale_key="ss",
            ),
            Col("direction", "Direction", align="center"),
        ],
        rows,
        subtitle=(
            f"TAP partners: processing dates {p.tap_from} to {p.tap_to}; CIBER partners: "
            f"settlement period {p.ciber_from} to {p.ciber_to} · net position > 0: the partner "
            "pays us"
        ),
        notes=[
            "Receivable: our TAP-out / CIBER-out (rated visitors), charge and tax. RAP received: "
            "what partners returned of it (severe: the events; fatal: the whole file), negative.",
            "Payable: every record of the partners' files as invoiced (charge + CAMEL fee; tax). "
            "RAP sent: what we returned (returned, duplicate, late), negative. Net payable = "
            "accepted records.",
            "Settlement currency: the records' amounts as rated, summed per direction, "
            "currency and fx rate (the rate valid on the call date, through SDR), each sum "
            "converted and rounded half up once. Per-event rounding: the net position a sum of "
            "per-record conversions would give, minus this one (shown, not absorbed). "
            "Currencies differ per partner: see By currency.",
        ],
        charts=[Chart("Net position per partner (SDR)", "partner", ("net_sdr",), y_title="SDR")],
    )


def by_currency_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``By currency``: the net positions summed per settlement currency."""
    return Table(
        "By currency",
        "Net positions per settlement currency",
        [
            Col("sc", "Settlement currency"),
            Col("partners", "Partners", "int", total=True),
            Col("rec_sc", "Net receivable", "money", scale_key="ss"),
            Col("pay_sc", "Net payable", "money", scale_key="ss"),
            Col("net_sc", "Net position", "money", scale_key="ss", formula="{rec_sc} - {pay_sc}"),
            Col("rounding_sc", "Per-event rounding", "money", scale_key="ss"),
            Col("direction", "Direction"),
        ],
        rows,
        subtitle=f"Period {p.name} · the Summary's settlement-currency columns summed",
    )


def detail_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``Detail``: partner × direction × service."""
    return Table(
        "Detail",
        f"Detail per partner, direction and service {p.name}",
        [
            Col("partner", "Partner"),
            Col("direction", "Direction"),
            Col("service", "Service"),
            Col("unit", "Rate unit"),
            Col("events", "Events", "int", total=True),
            Col("minutes", "Minutes actual", "decimal", 2, total=True),
            Col("charged_minutes", "Minutes charged", "decimal", 2, total=True),
            Col("mb", "MB", "decimal", 2, total=True),
            Col("sms", "SMS", "int", total=True),
            sdr_col("gross", "Gross (SDR)", total=True),
            sdr_col("discount", "Discount (SDR)", total=True),
            sdr_col("net", "Net (SDR)", total=True, name="detail_net_sdr"),
            sdr_col("tax", "Tax (SDR)", total=True, name="detail_tax_sdr"),
            Col("avg", "Average gross rate (SDR per unit)", "decimal", SDR_SCALE),
            Col("iot", "IOT rate (SDR per unit)", "decimal", SDR_SCALE),
            Col("vs_iot", "Average vs IOT", "percent"),
        ],
        rows,
        subtitle=(
            f"Period {p.name} · receivable: rated visitor records; payable: accepted records; "
            "minutes charged after the IOT's increments; MB = 1 048 576 bytes"
        ),
        notes=[
            "Average gross rate = gross (before discounts) / units (charged minutes, MB, SMS or "
            "events); IOT rate = what the IOT gives for the same records (payable: the IOT "
            "check's re-rating; receivable: rated with our IOT, so equal).",
        ],
    )


def rates_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``Exchange rates``: every fx row used."""
    return Table(
        "Exchange rates",
        "Exchange rates used",
        [
            Col("currency", "Currency"),
            Col("rate", "Units per SDR", "decimal", 9),
            Col("valid_from", "Rate date (valid from)", "date"),
            Col("valid_to", "Valid to", "date"),
            Col("source", "Source"),
            Col("version", "Row version"),
            Col("use", "Used for"),
            Col("events", "Records converted", "int", total=True),
            sdr_col("sdr", "Amount converted (SDR, absolute)", total=True),
        ],
        rows,
        subtitle=f"Period {p.name} · rates table `fx` (units of the currency per 1 SDR)",
    )


def retail_table(rows: list[dict[str, Any]], p: Period, missing: list[date]) -> Table:
    """``Retail``: wholesale cost vs retail revenue per sub-number plan.

    Args:
        rows: the plan rows.
        p: the period.
        missing: processing dates without retail rating (named in a note).
    """
    # one plan currency (the usual case): its amounts have totals; several: per row only
    plan_scales = {(r["currency"], r["scale"]) for r in rows}
    one = len(plan_scales) == 1
    pscale = next(iter(plan_scales))[1] if one else 0

    def plan_money(key: str, title: str, **kw: Any) -> Col:
        if one:
            return Col(key, title, "money", pscale, total=True, **kw)
        return Col(key, title, "money", scale_key="scale", **kw)

    return Table(
        "Retail",
        "Retail reconciliation per sub-number plan",
        [
            Col("plan_id", "Plan"),
            Col("plan_name", "Plan name"),
            Col("currency", "Currency", align="center"),
            Col("sub_numbers", "Sub-numbers", "int", total=True),
            Col("events", "Events", "int", total=True),
            sdr_col("cost_sdr", "Wholesale cost (SDR)", total=True),
            plan_money("cost", "Wholesale cost"),
            plan_money("revenue", "Retail revenue"),
            plan_money("margin", "Margin", formula="{revenue} - {cost}"),
            Col("margin_pct", "Margin %", "percent"),
        ],
        rows,
        subtitle=(
            f"Period {p.name} · accepted TAP-in / CIBER-in records rated at retail per "
            "sub-number (wholesale = charge + CAMEL fee + tax, converted to the plan's currency)"
        ),
        notes=[
            "Retail revenue: each record's bill-line amount as rated on its processing date "
            "(allowances and day passes included); the cycle's final bill is the retail "
            "summary, which may shift amounts between records of a cycle.",
            *(
                [f"No retail rating for processing dates: {', '.join(map(str, missing))}."]
                if missing
                else []
            ),
        ],
    )


def retail_bills_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``Retail bills``: the bill cycles starting in the period, per plan and currency."""
    currencies = {r["currency"] for r in rows}
    one = len(currencies) <= 1
    scale = max((r["scale"] for r in rows), default=2)

    def amount(key: str, title: str, **kw: Any) -> Col:
        if one:
            return Col(key, title, "money", scale, total=True, **kw)
        kw.pop("name", None)
        return Col(key, title, "money", scale_key="scale", **kw)

    return Table(
        "Retail bills",
        f"Retail bills of the cycles starting in {p.name}",
        [
            Col("plan_id", "Plan"),
            Col("plan_name", "Plan name"),
            Col("currency", "Currency", align="center"),
            Col("cards", "Cards", "int"),
            Col("sub_numbers", "Sub-numbers", "int", total=True),
            amount("fee", "Fees"),
            amount("usage", "Usage"),
            amount("subtotal", "Subtotal", formula="{fee} + {usage}"),
            amount("tax", "Tax"),
            amount("total", "Total", formula="{subtotal} + {tax}", name="retail_bills_total"),
        ],
        rows,
        subtitle=(
            f"Period {p.name} · per plan: the sub-numbers' bill cycles that start in the month "
            "(billed through the period's last processing date)"
        ),
        notes=[
            "Usage: the retail summary (each sub-number's cycle totals as last billed); fees: "
            "the recurring fee of the plan in force, prorated by active days; tax per "
            "sub-number: (fee + usage) × the plan's rate, rounded half up. The cycle's "
            "statements (`clearing retail statement`) add up to the total when made from the "
            "same processing dates (they also count events billed after the period).",
            "Cards: the cards with a sub-number on the plan (a card on several plans counts "
            "under each).",
        ],
    )


def trend_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``Daily trend``: receivable, payable and net per processing date."""
    return Table(
        "Daily trend",
        "Daily trend",
        [
            Col("label", "Processing date"),
            Col("rec_events", "Receivable events", "int", total=True),
            Col("pay_events", "Payable events", "int", total=True),
            _sdr_summary("rec", "Net receivable (SDR)", total=True),
            _sdr_summary("pay", "Net payable (SDR)", total=True),
            _sdr_summary("net", "Net (SDR)", total=True, formula="{rec} - {pay}"),
        ],
        rows,
        subtitle=f"Period {p.name} · per processing date (both windows)",
        charts=[
            Chart("Daily trend (SDR)", "label", ("rec", "pay", "net"), kind="line", y_title="SDR")
        ],
    )


def audit_head(
    p: Period,
    facts: AuditFacts,
    *,
    through: date | None,
    issue: str,
    replaces: Path | None,
    run_id: str | None,
    runs: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The ``Audit`` sheet's first rows: software, config, reference data, windows, the issue."""
    return [
        {"what": "software", "name": facts.software, "sha256": None},
        {"what": "config", "name": "clearing.toml", "sha256": facts.config_hash},
        *[
            {"what": "reference data", "name": f"rates/{t}", "sha256": sha}
            for t, sha in facts.rates
        ],
        {"what": "period", "name": p.name, "sha256": None},
        {"what": "TAP window", "name": f"{p.tap_from} to {p.tap_to}", "sha256": None},
        {"what": "CIBER window", "name": f"{p.ciber_from} to {p.ciber_to}", "sha256": None},
        {"what": "data through", "name": str(through), "sha256": None},
        {"what": "issue", "name": issue, "sha256": None, "_key": "issue"},
        {
            "what": "replaces",
            "name": replaces.name if replaces else "",
            "sha256": None,
            "_key": "replaces",
        },
        {"what": "run id", "name": run_id or "", "sha256": None, "_key": "run_id"},
        *runs,
    ]


def audit_table(rows: list[dict[str, Any]], p: Period) -> Table:
    """``Audit``: what the workbook was made from (``rows``: :func:`audit_head` + inputs)."""
    return Table(
        "Audit",
        "Audit trail",
        [
            # one A4 page wide at 85 %: long names and paths wrap, a SHA-256 on one line
            Col("what", "What", width=24, wrap=True),
            Col("name", "Name / value", width=40, wrap=True),
            Col("sha256", "SHA-256", width=65),
        ],
        rows,
        subtitle=f"Period {p.name} · what this workbook was made from",
        totals=False,
    )


def front(
    p: Period,
    home: config.Home,
    facts: AuditFacts,
    summary: list[dict[str, Any]],
    *,
    through: date | None,
    issue: str,
    replaces: Path | None,
    run_id: str | None,
) -> KeyFigures:
    """The ``Overview`` sheet: the issue, the windows, the period's status and key figures."""
    provisional = through is None or through < p.last
    status = (
        f"provisional: data through {through}, the period runs to {p.last}"
        if provisional
        else f"complete: data through {through}"
    )
    return KeyFigures(
        "Overview",
        f"Monthly settlement {p.name} — {home.tadig}" + (f" ({home.name})" if home.name else ""),
        [
            ("Period", p.name),
            ("TAP partners", f"processing dates {p.tap_from} to {p.tap_to}"),
            ("CIBER partners", f"settlement period {p.ciber_from} to {p.ciber_to}"),
            ("Status", status),
            ("Issue", issue),
            ("Replaces", f"{replaces.name} (same period, other figures)" if replaces else "-"),
            ("Run id", run_id or "(not given)"),
            ("Software", facts.software),
            ("Config SHA-256", facts.config_hash),
        ],
        [
            KeyFigure(
                "Receivable charge (SDR)",
                "receivable_sdr",
                _tot(summary, "rec_charge"),
                "money",
                SDR_SCALE,
                shown=SHOWN,
            ),
            KeyFigure(
                "RAP received (SDR)",
                "rap_received_sdr",
                _tot(summary, "rap_received"),
                "money",
                SDR_SCALE,
                shown=SHOWN,
            ),
            KeyFigure(
                "Net receivable (SDR)",
                "net_receivable_sdr",
                _tot(summary, "net_rec"),
                "money",
                SDR_SCALE,
                shown=SHOWN,
            ),
            KeyFigure(
                "Payable charge as invoiced (SDR)",
                "payable_sdr",
                _tot(summary, "pay_charge"),
                "money",
                SDR_SCALE,
                shown=SHOWN,
            ),
            KeyFigure(
                "RAP sent (SDR)",
                "rap_sent_sdr",
                _tot(summary, "rap_sent"),
                "money",
                SDR_SCALE,
                shown=SHOWN,
            ),
            KeyFigure(
                "Net payable (SDR)",
                "net_payable_sdr",
                _tot(summary, "net_pay"),
                "money",
                SDR_SCALE,
                shown=SHOWN,
            ),
            KeyFigure(
                "Net position (SDR)",
                "net_position_sdr",
                _tot(summary, "net_sdr"),
                "money",
                SDR_SCALE,
                note="> 0: partners owe us overall",
                shown=SHOWN,
            ),
            KeyFigure(
                "Partners who pay us",
                value=sum(1 for r in summary if r["direction"] == "we receive"),
                note="Summary, Direction",
            ),
            KeyFigure(
                "Partners we pay",
                value=sum(1 for r in summary if r["direction"] == "we pay"),
                note="Summary, Direction",
            ),
        ],
        notes=[
            "Amounts: shown to 2 decimals here, on Summary and Daily trend; every cell holds "
            "the exact amount (SDR: 6 decimals, as Detail shows it).",
            "A workbook once issued is never overwritten: a re-run with other figures writes the "
            "next issue (v2, v3...), which names the one it replaces; a re-run with the same "
            "figures returns the latest issue unchanged.",
        ],
    )


def _tot(rows: list[dict[str, Any]], key: str) -> Decimal:
    return sum((r[key] for r in rows), Decimal(0))
