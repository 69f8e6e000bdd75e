"""Retail statements: one per card (IMSI) and bill cycle, with a section per sub-number.

``clearing retail statement --workdir W --cycle YYYY-MM`` writes, for every card whose bill
cycle **starts** in month ``YYYY-MM`` (on the card's ``bill_cycle_day``),
``<out>/statement_<imsi>_<YYYY-MM>.xlsx`` (printable on A4) and ``.json`` (the same content);
``<out>`` defaults to ``W/out/statements/YYYY-MM/``. Both are written atomically.

**Which lines.** A cycle's bill lines are the lake's ``retail`` lines whose ``cycle_start`` is in
the month, read from the processing dates of the month's first day − 2 days up to the latest
processing date present (a late event is billed on the date it is processed, after the cycle
has ended). Lines of no sub-number (rule ``none``) are not a card's. Each line shows the event's
local time at its own UTC offset (else UTC), the visited network (the sender's TAP code) and its
country (a TADIG's first three letters, ISO 3166 alpha-3; a CIBER SID/BID has none: ``n/a``),
the service, the other party (called number of an outgoing call or SMS, calling number of an
incoming one) masked to its last 4 digits, the units after the plan's increments, the
allowance used, the overage per tier and the amount; these come from the accepted partner
event (``events_in``, joined on processing date, file, event index and sender).

**Which sections.** One per sub-number, plan and cycle of the card
(:func:`clearing.rating.retail_plans.cycle_plans`: every sub-number of the card, also one
without usage, so a card with fees only still gets a statement), with its role, label, plan
and plan version (the ``valid_from`` of the plans row in force), the recurring fee (prorated
by active days) and the tax rate. A line whose sub-number and plan have no such row gets a
section of its own with no fee and no tax.

**Rules** (money is never a float: integers at the plan's scale, exact Decimals across scales):

* sub-number subtotal = fee + Σ its lines' amounts (an exact integer sum at the plan's scale);
* tax = round half up (subtotal × tax_bp / 10 000) per sub-number (``tax_bp``: the plan's
  tax rate in basis points, 0 = none);
* card total = Σ (subtotal + tax) over its sub-numbers;
* every sub-number of a card bills in one currency, else :class:`~clearing.errors.ConfigError`
  naming the card and the plans.

The monthly settlement workbook's ``Retail bills`` sheet adds up the same cycles by another
route (the retail summary plus the fees): the statements of a cycle add up to its total when
made from the same processing dates (the workbook reads its period's dates only; events billed
after the period are on the statements, not yet in the workbook).
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from clearing import config, lake
from clearing._io import write_atomic
from clearing.errors import ConfigError
from clearing.lookup import event_times
from clearing.money import round_div
from clearing.rating.retail_explain import line_id
from clearing.rating.retail_plans import cycle_plans
from clearing.rating.retail_tables import OPTIONAL_TABLES, RETAIL_TABLES, load_retail_tables
from clearing.settle._book import Book, Col, KeyFigure, KeyFigures, Table, money, write_book
from clearing.settle._common import software_version
from clearing.settle.stats import country, mask

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "LOOK_BEFORE_DAYS",
    "Line",
    "Section",
    "Statement",
    "cycle_month",
    "plan_rows",
    "read_statements",
    "statement_book",
    "statement_json",
    "statement_stem",
    "statements_folder",
    "tax_of",
    "write_statements",
]

#: The processing dates read start this many days before the month's first day.
LOOK_BEFORE_DAYS = 2

_BP = 10_000  # basis points in one


def tax_of(subtotal: int, tax_bp: int) -> int:
    """The tax on ``subtotal`` (minor units) at ``tax_bp`` basis points, rounded half up."""
    return round_div(subtotal * tax_bp, _BP)


def cycle_month(text: str) -> tuple[date, date]:
    """The first and last day of month ``text`` (``YYYY-MM``).

    Raises:
        ConfigError: not ``YYYY-MM``.
    """
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        msg = f"--cycle `{text}` must be a month YYYY-MM (the month the bill cycles start in)"
        raise ConfigError(msg)
    y, mo = int(m.group(1)), int(m.group(2))
    return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])


def statements_folder(workdir: Path, cycle: str) -> Path:
    """``<workdir>/out/statements/<YYYY-MM>``: where the statements go by default."""
    return workdir / "out" / "statements" / cycle


def statement_stem(imsi: str, cycle: str) -> str:
    """``statement_<imsi>_<YYYY-MM>`` (the file name without its suffix)."""
    return f"statement_{imsi}_{cycle}"


# ---------------------------------------------------------------------------------------------
# the model


@dataclass
class Line:
    """One usage line of a statement (a retail bill line and its partner event)."""

    id: str
    processing_date: date
    start: datetime | None  # local time at the event's offset (else UTC)
    start_utc: datetime | None
    network: str | None
    country: str
    service: str
    other_party: str | None  # masked
    units: int
    unit: str | None
    allowance_units: int
    tier_units: list[int]
    day_pass: bool
    amount: int
    attribution_rule: str

    def as_dict(self, scale: int) -> dict[str, Any]:
        """JSON-ready: times ISO 8601 with their offset, the amount a decimal string."""
        return {
            "id": self.id,
            "start": _iso(self.start),
            "start_utc": _iso(self.start_utc),
            "network": self.network,
            "country": self.country,
            "service": self.service,
            "other_party": self.other_party,
            "units": self.units,
            "unit": self.unit,
            "allowance_units": self.allowance_units,
            "tier_units": self.tier_units,
            "day_pass": self.day_pass,
            "amount": _text(self.amount, scale),
            "attribution_rule": self.attribution_rule,
        }


@dataclass
class Section:
    """One sub-number (and plan) of a card in one cycle: its fee, lines, subtotal and tax."""

    msisdn: str
    role: str | None
    label: str | None
    plan_id: str
    plan_name: str | None
    plan_version: date | None
    plan_level: str | None
    cycle_start: date
    cycle_last_day: date
    cycle_days: int | None
    active_days: int | None
    fee: int
    currency: str
    scale: int
    tax_bp: int
    lines: list[Line] = field(default_factory=list)

    @property
    def usage(self) -> int:
        """Σ the lines' amounts (minor units)."""
        return sum(ln.amount for ln in self.lines)

    @property
    def subtotal(self) -> int:
        """Fee + usage (minor units)."""
        return self.fee + self.usage

    @property
    def tax(self) -> int:
        """Tax on the subtotal, rounded half up (minor units)."""
        return tax_of(self.subtotal, self.tax_bp)

    @property
    def total(self) -> int:
        """Subtotal + tax (minor units)."""
        return self.subtotal + self.tax

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts as decimal strings at the plan's scale."""
        s = self.scale
        return {
            "msisdn": self.msisdn,
            "role": self.role,
            "label": self.label,
            "plan": self.plan_id,
            "plan_name": self.plan_name,
            "plan_version": _iso(self.plan_version),
            "plan_level": self.plan_level,
            "cycle_start": self.cycle_start.isoformat(),
            "cycle_last_day": self.cycle_last_day.isoformat(),
            "active_days": self.active_days,
            "cycle_days": self.cycle_days,
            "fee": _text(self.fee, s),
            "lines": [ln.as_dict(s) for ln in self.lines],
            "usage": _text(self.usage, s),
            "subtotal": _text(self.subtotal, s),
            "tax_bp": self.tax_bp,
            "tax": _text(self.tax, s),
            "total": _text(self.total, s),
        }


@dataclass
class Statement:
    """The statement of one card and cycle."""

    imsi: str
    cycle: str  # YYYY-MM
    cycle_start: date
    cycle_last_day: date
    currency: str
    sections: list[Section]

    def _sum(self, what: str) -> Decimal:
        return sum(
            (money(getattr(s, what), s.scale) or Decimal(0) for s in self.sections), Decimal(0)
        )

    @property
    def scale(self) -> int:
        """The largest scale of its sections' plans."""
        return max((s.scale for s in self.sections), default=2)

    @property
    def fees(self) -> Decimal:
        """Σ the sections' fees."""
        return self._sum("fee")

    @property
    def usage(self) -> Decimal:
        """Σ the sections' usage."""
        return self._sum("usage")

    @property
    def tax(self) -> Decimal:
        """Σ the sections' tax."""
        return self._sum("tax")

    @property
    def total(self) -> Decimal:
        """Σ (subtotal + tax) over the sections (exact)."""
        return self._sum("total")

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of the statement (amounts as decimal strings)."""
        q = Decimal(1).scaleb(-self.scale)
        return {
            "imsi": self.imsi,
            "cycle": self.cycle,
            "cycle_start": self.cycle_start.isoformat(),
            "cycle_last_day": self.cycle_last_day.isoformat(),
            "currency": self.currency,
            "fees": str(self.fees.quantize(q)),
            "usage": str(self.usage.quantize(q)),
            "tax": str(self.tax.quantize(q)),
            "total": str(self.total.quantize(q)),
            "sub_numbers": [s.as_dict() for s in self.sections],
        }


def _text(minor: int, scale: int) -> str:
    return str(Decimal(minor).scaleb(-scale))


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ---------------------------------------------------------------------------------------------
# reading

_LINES = """
SELECT l.processing_date, l.imsi, l.sub_number, l.role, l.plan_id, l.cycle_start, l.file,
       l.sender, l.event_index, l.start_utc, l.service, l.unit, l.units, l.allowance_units,
       l.tier_units, l.day_pass_units, l.amount, l.currency, l.scale, l.attribution_rule,
       e.local_start, e.utc_offset,
       CASE WHEN l.service IN ('voice_mt', 'sms_mt') THEN e.calling_number
            WHEN l.service IN ('voice_mo', 'sms_mo') THEN coalesce(e.called_number,
                                                                   e.dialled_digits)
       END AS other_party
FROM rl l LEFT JOIN (SELECT * FROM ev WHERE status = 'accepted') e
    ON e.processing_date = l.processing_date AND e.file = l.file
    AND e.event_index = l.event_index AND e.sender = l.sender
WHERE l.cycle_start BETWEEN ? AND ? AND l.imsi IS NOT NULL AND l.sub_number IS NOT NULL
    AND l.attribution_rule <> 'none' {card}
ORDER BY l.imsi, l.sub_number, l.plan_id, l.cycle_start, l.start_utc NULLS LAST,
         l.processing_date, l.file, l.event_index
"""


def _line_rows(workdir: Path, first: date, last: date, imsi: str | None) -> list[dict[str, Any]]:
    """The bill lines of the cycles starting ``first``–``last`` with their events' details."""
    root = config.WorkDir(workdir).lake
    present = lake.dates(root, lake.RETAIL)
    days = [d for d in present if d >= first - timedelta(days=LOOK_BEFORE_DAYS)]
    if not days:
        return []
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        lake.view(con, root, lake.RETAIL, days, "rl")
        lake.view(con, root, lake.EVENTS_IN, days, "ev")
        params: list[Any] = [first, last]
        card = ""
        if imsi is not None:
            card, params = "AND l.imsi = ?", [*params, imsi]
        rel = con.execute(_LINES.format(card=card), params)
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


def _line(r: dict[str, Any]) -> Line:
    utc, at_offset = event_times(r["start_utc"], r["local_start"], r["utc_offset"])
    start = at_offset or utc
    return Line(
        id=line_id(r["processing_date"], r["file"], r["event_index"]),
        processing_date=r["processing_date"],
        start=start,
        start_utc=utc,
        network=r["sender"],
        country=country(r["sender"]),
        service=str(r["service"]),
        other_party=mask(r["other_party"]),
        units=int(r["units"] or 0),
        unit=r["unit"],
        allowance_units=int(r["allowance_units"] or 0),
        tier_units=[int(x or 0) for x in (r["tier_units"] or [])],
        day_pass=bool(r["day_pass_units"]),
        amount=int(r["amount"] or 0),
        attribution_rule=str(r["attribution_rule"]),
    )


def _next_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(year=year, month=month)


def plan_rows(workdir: Path, cycle: str, imsi: str | None = None) -> list[dict[str, Any]]:
    """The ``cycle_plans`` rows (fees, versions, tax rates) of the cycles starting in ``cycle``.

    One per card, sub-number, plan and cycle start (``imsi``: of that card only); none when
    the work folder has no retail reference data.
    """
    rates = config.WorkDir(workdir).rates
    if not any(
        (rates / t).is_dir() or (rates / "sources" / f"{t}.csv").is_file()
        for t in RETAIL_TABLES
        if t not in OPTIONAL_TABLES
    ):
        return []  # no retail reference data: no cards of ours
    rows = cycle_plans(load_retail_tables(rates), cycle).to_pylist()
    return [r for r in rows if imsi is None or r["imsi"] == imsi]


_Key = tuple[str, str, str, date]  # imsi, sub-number, plan, cycle start


def read_statements(workdir: Path, cycle: str, *, imsi: str | None = None) -> list[Statement]:
    """The statements of the cards whose bill cycle starts in ``cycle`` (``YYYY-MM``).

    Args:
        workdir: the work folder (its ``lake/`` and ``rates/``).
        cycle: the month the cycles start in.
        imsi: only this card.

    Returns:
        One statement per card, by IMSI (empty: no card has a cycle starting in the month).

    Raises:
        ConfigError: not ``YYYY-MM``, bad retail reference data, or a card whose sub-numbers
            bill in more than one currency.
    """
    first, last = cycle_month(cycle)
    sections: dict[_Key, tuple[str, Section]] = {}
    for p in plan_rows(workdir, cycle, imsi):
        key = (p["imsi"], p["sub_number"], p["plan_id"], p["cycle_start"])
        sections[key] = (
            p["imsi"],
            Section(
                msisdn=p["sub_number"],
                role=p["role"],
                label=p["label"],
                plan_id=p["plan_id"],
                plan_name=p["plan_name"],
                plan_version=p["plan_version"],
                plan_level=p["plan_level"],
                cycle_start=p["cycle_start"],
                cycle_last_day=p["cycle_last_day"],
                cycle_days=p["cycle_days"],
                active_days=p["active_days"],
                fee=int(p["fee"] or 0),
                currency=p["currency"],
                scale=int(p["scale"]),
                tax_bp=int(p["tax_bp"] or 0),
            ),
        )
    for r in _line_rows(workdir, first, last, imsi):
        key = (r["imsi"], r["sub_number"], r["plan_id"], r["cycle_start"])
        if key not in sections:
            start: date = r["cycle_start"]
            sections[key] = (
                r["imsi"],
                Section(
                    msisdn=r["sub_number"],
                    role=r["role"],
                    label=None,
                    plan_id=r["plan_id"],
                    plan_name=None,
                    plan_version=r.get("plan_version"),
                    plan_level=r.get("plan_level"),
                    cycle_start=start,
                    cycle_last_day=_next_month(start) - timedelta(days=1),
                    cycle_days=None,
                    active_days=None,
                    fee=0,
                    currency=r["currency"],
                    scale=int(r["scale"] or 0),
                    tax_bp=0,
                ),
            )
        sections[key][1].lines.append(_line(r))
    cards: dict[str, list[Section]] = {}
    for key in sorted(sections, key=lambda k: (k[0], _ROLES.get(sections[k][1].role or "", 9), k)):
        card, section = sections[key]
        cards.setdefault(card, []).append(section)
    return [_statement(card, cycle, parts) for card, parts in sorted(cards.items())]


_ROLES = {"primary": 0, "local": 1, "virtual": 2, "data": 3}


def _statement(imsi: str, cycle: str, sections: list[Section]) -> Statement:
    currencies = {s.currency for s in sections}
    if len(currencies) != 1:
        plans = ", ".join(sorted({f"{s.plan_id} ({s.currency})" for s in sections}))
        msg = (
            f"card {imsi}: its sub-numbers bill in more than one currency in cycle {cycle} "
            f"(plans {plans}); a statement needs one: give the card's plans one currency in "
            "rates/plans"
        )
        raise ConfigError(msg)
    return Statement(
        imsi=imsi,
        cycle=cycle,
        cycle_start=min(s.cycle_start for s in sections),
        cycle_last_day=max(s.cycle_last_day for s in sections),
        currency=currencies.pop(),
        sections=sections,
    )


# ---------------------------------------------------------------------------------------------
# the workbook


def _when(line: Line) -> str:
    if line.start is None:
        return "(no time)"
    return line.start.strftime("%Y-%m-%d %H:%M %z")


def _tiers(units: list[int]) -> str:
    return " · ".join(f"{k}: {u:,}" for k, u in enumerate(units, start=1) if u) or "-"


def _days(s: Section) -> str:
    if s.active_days is None or s.cycle_days is None:
        return ""
    return f"{s.active_days} of {s.cycle_days} days"


def _sheet_name(s: Section, taken: set[str]) -> str:
    name = s.msisdn[:31]
    if name in taken:
        name = f"{s.msisdn} {s.plan_id}"[:31]
    n = 2
    while name in taken:
        name = f"{s.msisdn[:26]} ({n})"
        n += 1
    taken.add(name)
    return name


def _section_table(s: Section, st: Statement, sheet: str) -> Table:
    fee: dict[str, Any] = {
        "when": "Recurring fee",
        "service": "fee",
        "detail": _days(s) or "prorated",
        "amount": money(s.fee, s.scale),
    }
    rows: list[dict[str, Any]] = [fee]
    for ln in s.lines:
        rows.append(
            {
                "when": _when(ln),
                "network": ln.network,
                "country": ln.country,
                "service": ln.service,
                "detail": ln.other_party or "",
                "units": ln.units,
                "unit": ln.unit,
                "allowance": ln.allowance_units,
                "tiers": "day pass" if ln.day_pass else _tiers(ln.tier_units),
                "amount": money(ln.amount, s.scale),
            }
        )
    plan = f"{s.plan_id}" + (f" ({s.plan_name})" if s.plan_name else "")
    version = f", version {s.plan_version}" if s.plan_version else ""
    level = f", {s.plan_level} plan" if s.plan_level else ""
    who = " · ".join(x for x in (s.role, s.label) if x)
    rate = Decimal(s.tax_bp).scaleb(-2)
    return Table(
        sheet,
        f"{s.msisdn}" + (f" — {who}" if who else ""),
        [
            Col("when", "Local time", width=22),
            Col("network", "Network", width=9),
            Col("country", "Country", width=8),
            Col("service", "Service", width=10),
            Col("detail", "Other party", width=14),
            Col("units", "Units", "int", width=12),
            Col("unit", "Unit", width=8),
            Col("allowance", "Allowance used", "int", width=11),
            Col("tiers", "Overage per tier", width=14),
            Col("amount", f"Amount {st.currency}", "money", scale=s.scale, total=True, width=12),
        ],
        rows,
        subtitle=f"Plan {plan}{version}{level} · cycle {s.cycle_start} to {s.cycle_last_day}",
        first_total_label="Subtotal",
        notes=[
            f"Tax {rate}% on the subtotal: {money(s.tax, s.scale)} {st.currency}; "
            f"total of the number {money(s.total, s.scale)} {st.currency}.",
            "Other party masked to its last 4 digits; units after the plan's increments "
            "(second, message, byte); local time at the visited network.",
        ],
    )


def statement_book(st: Statement) -> Book:
    """The statement workbook: an overview, a summary per sub-number, a sheet per sub-number."""
    scale = st.scale
    cur = st.currency
    summary_rows = [
        {
            "msisdn": s.msisdn,
            "role": s.role or "",
            "label": s.label or "",
            "plan": s.plan_id + (f" ({s.plan_name})" if s.plan_name else ""),
            "version": s.plan_version,
            "days": _days(s),
            "fee": money(s.fee, s.scale),
            "usage": money(s.usage, s.scale),
            "subtotal": money(s.subtotal, s.scale),
            "rate": Decimal(s.tax_bp).scaleb(-4),
            "tax": money(s.tax, s.scale),
            "total": money(s.total, s.scale),
            "lines": len(s.lines),
        }
        for s in st.sections
    ]
    taken: set[str] = {"Statement", "Summary"}
    tables = [
        Table(
            "Summary",
            f"Statement {st.cycle} — card {mask(st.imsi)}",
            [
                Col("msisdn", "Number", width=15),
                Col("role", "Role", width=8),
                Col("label", "Label", width=14, wrap=True),
                Col("plan", "Plan", width=14, wrap=True),
                Col("version", "Plan version", "date", width=11),
                Col("lines", "Lines", "int", total=True, width=6),
                Col("fee", f"Fee {cur}", "money", scale=scale, total=True, width=10),
                Col("usage", f"Usage {cur}", "money", scale=scale, total=True, width=10),
                Col(
                    "subtotal",
                    f"Subtotal {cur}",
                    "money",
                    scale=scale,
                    total=True,
                    formula="{fee} + {usage}",
                    width=10,
                ),
                Col("rate", "Tax rate", "percent", width=7),
                Col("tax", f"Tax {cur}", "money", scale=scale, total=True, width=9),
                Col(
                    "total",
                    f"Total {cur}",
                    "money",
                    scale=scale,
                    total=True,
                    formula="{subtotal} + {tax}",
                    name="card_total",
                    width=11,
                ),
            ],
            summary_rows,
            subtitle=f"Bill cycle {st.cycle_start} to {st.cycle_last_day} · amounts in {cur}",
            notes=[
                "Subtotal = fee + usage; tax = subtotal × rate, rounded half up per number; "
                "total = subtotal + tax.",
            ],
        ),
        *(_section_table(s, st, _sheet_name(s, taken)) for s in st.sections),
    ]
    primary = next((s.msisdn for s in st.sections if s.role == "primary"), "")
    front = KeyFigures(
        "Statement",
        f"Statement {st.cycle} — card {mask(st.imsi)}",
        [
            ("Card (IMSI)", st.imsi),
            ("Primary number", primary),
            ("Bill cycle", f"{st.cycle_start} to {st.cycle_last_day}"),
            ("Currency", cur),
            ("Numbers", len(st.sections)),
        ],
        [
            KeyFigure("Fees", value=st.fees, kind="money", scale=scale),
            KeyFigure("Usage", value=st.usage, kind="money", scale=scale),
            KeyFigure("Tax", value=st.tax, kind="money", scale=scale),
            KeyFigure("Total due", "card_total", st.total, "money", scale),
        ],
        notes=["One section per number: see its sheet for every usage line."],
    )
    end = st.cycle_last_day + timedelta(days=1)
    return Book(
        title=f"Statement {st.imsi} {st.cycle}",
        subject=f"Retail statement, card {st.imsi}, cycle {st.cycle}",
        stamp=datetime(end.year, end.month, end.day),
        creator=software_version(),
        front=front,
        tables=tables,
        footer=f"Statement {mask(st.imsi)} {st.cycle}",
    )


def statement_json(st: Statement) -> dict[str, Any]:
    """The statement as one JSON-ready object (see :meth:`Statement.as_dict`)."""
    return st.as_dict()


def write_statements(
    workdir: Path, cycle: str, *, imsi: str | None = None, out: Path | None = None
) -> list[tuple[Statement, Path, Path]]:
    """Write the statements of ``cycle`` (xlsx and JSON, atomically); each with its paths.

    Raises:
        ConfigError: see :func:`read_statements`.
    """
    folder = out if out is not None else statements_folder(workdir, cycle)
    done = []
    for st in read_statements(workdir, cycle, imsi=imsi):
        stem = statement_stem(st.imsi, st.cycle)
        xlsx, doc = folder / f"{stem}.xlsx", folder / f"{stem}.json"
        write_book(statement_book(st), xlsx)
        write_atomic(doc, json.dumps(statement_json(st), indent=1) + "\n")
        done.append((st, xlsx, doc))
    return done
