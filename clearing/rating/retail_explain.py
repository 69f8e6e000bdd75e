"""Why one retail bill line costs what it costs (``clearing retail explain``).

A bill line is named by its **line id** ``<processing date>/<file>/<event_index>`` (the
partner's file and the event's place in it identify an event within a processing date):
``clearing find --json`` prints it as ``line_id`` for every ``retail`` line.

The explanation is read from the stored line and recomputed two ways:

* **usage before / after**: the account's (sub-number, plan, bill cycle) units of the service
  billed before this line: the carried totals of the processing dates before (the latest
  summary row, as the stage carried them) plus the units of the same day's earlier lines of
  the account, in rating order (a sub-number's lines are stored in rating order); ``after``
  is ``before`` plus the line's units (a line covered by a day pass uses no allowance);
* the **allowance and tier parts**, worked from ``before``/``after`` and the plan version in
  force on the account's anchor day (the ``plans`` and ``plans_tiers`` rows of today's
  reference data), with ``Σ units × price / unit`` rounded half up once. The sub-numbers'
  plans are those :func:`clearing.rating.retail_plans.assign_plans` resolves (own plan, else
  the group's or the global default: the plan *level*), and the allowance is prorated by the
  account's active days in the cycle, as rating does;
* a **re-rating** of the card's events of that day with the same carried state
  (:func:`clearing.rating.retail.rerate_card`).

When the stored line differs from either, ``matches`` is false and ``mismatches`` lists the
fields: reference data may have changed since the line was billed.

Money is never a float: amounts are integers in minor units, shown as decimal strings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, Inexact, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing import config, lake
from clearing.errors import ConfigError
from clearing.rating.retail import BILL_LINE_SCHEMA, rerate_card
from clearing.rating.retail_plans import assign_plans
from clearing.rating.retail_sql import ALLOWANCE_COLUMN, DAY_PASS_SECONDS, UNITS
from clearing.rating.validity import valid_on

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MISMATCH", "explain_line", "line_id", "parse_line_id"]

#: What the explanation says when the stored line is not what re-rating gives today.
MISMATCH = "the line does not match a re-rating with today's reference data"

#: Fields of a bill line compared with the re-rating.
_COMPARED = (
    "sub_number",
    "attribution_rule",
    "plan_id",
    "plan_version",
    "plan_level",
    "cycle_start",
    "units",
    "allowance_units",
    "overage_units",
    "tier_units",
    "day_pass_units",
    "day_pass_start",
    "day_pass_charged",
    "usage_amount",
    "day_pass_amount",
    "amount",
)


def line_id(processing_date: date, file: str | None, event_index: int | None) -> str:
    """The id of a bill line: ``<processing date>/<file>/<event_index>``."""
    return (
        f"{processing_date.isoformat()}/{file or '-'}/{'-' if event_index is None else event_index}"
    )


def parse_line_id(text: str) -> tuple[date, str, int]:
    """``(processing date, file, event index)`` of a line id.

    Raises:
        ConfigError: not ``YYYY-MM-DD/<file>/<event index>``.
    """
    head, _, rest = text.partition("/")
    file, _, index = rest.rpartition("/")
    try:
        day = date.fromisoformat(head)
        number = int(index)
    except ValueError:
        day, number = None, -1
    if day is None or not file or number < 0:
        msg = (
            f"--line {text!r} is not a bill line id: give <processing date>/<file>/<event "
            "index>, e.g. 2026-11-22/CDFRAF9HKGCL00002/0 (`clearing find --json` prints it as "
            "line_id)"
        )
        raise ConfigError(msg)
    return day, file, number


def _money(minor: int | None, scale: int) -> str | None:
    return None if minor is None else str(Decimal(minor).scaleb(-scale))


def _exact(value: Fraction, scale: int) -> str:
    """Minor units (a fraction) as a decimal string of the currency.

    Exact when the fraction has a finite decimal form (e.g. ``289.306640625`` cents), else
    ``≈`` and 6 places of minor units.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.traps[Inexact] = True
        try:
            minor = Decimal(value.numerator) / Decimal(value.denominator)
        except Inexact:
            ctx.traps[Inexact] = False
            minor = Decimal(value.numerator) / Decimal(value.denominator)
            return f"≈{minor.quantize(Decimal(1).scaleb(-6)).scaleb(-scale)}"
    return str(minor.scaleb(-scale))


def _day_lines(root: Path, day: date) -> pa.Table | None:
    files = lake.files(root, lake.RETAIL, [day])
    if not files:
        return None
    return pa.concat_tables(pq.read_table(f).cast(BILL_LINE_SCHEMA) for f in files)


def _where(table: pa.Table, **equal: Any) -> pa.Table:
    mask = None
    for name, value in equal.items():
        col = table.column(name)
        hit = pc.is_null(col) if value is None else pc.equal(col, value)
        hit = pc.fill_null(hit, False)
        mask = hit if mask is None else pc.and_(mask, hit)
    return table if mask is None else table.filter(mask)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _next_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(year=year, month=month)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [dict(r) for r in table.to_pylist()]


def _number_row(numbers: list[dict[str, Any]], line: dict[str, Any]) -> dict[str, Any] | None:
    """The ``sub_numbers`` row of the line's sub-number and plan (the latest valid in its cycle)."""
    rows = [
        n
        for n in numbers
        if n["imsi"] == line["imsi"]
        and n["msisdn"] == line["sub_number"]
        and n["plan_id"] == line["plan_id"]
    ]
    return max(rows, key=lambda n: n["valid_from"] or date.min) if rows else None


def _attribution(line: dict[str, Any], number: dict[str, Any] | None) -> dict[str, Any]:
    rule = line["attribution_rule"]
    out: dict[str, Any] = {"rule": rule}
    if rule == "msisdn":
        out["matched"] = {"event_msisdn": line["event_msisdn"], "sub_number": line["sub_number"]}
        out["why"] = f"the event's MSISDN {line['event_msisdn']} is the sub-number's"
    elif rule == "selection_code":
        code = number["selection_code"] if number else None
        out["matched"] = {"dialled_digits": line["dialled_digits"], "selection_code": code}
        out["why"] = (
            f"the dialled digits {line['dialled_digits']} start with the sub-number's selection "
            f"code {code} (the longest matching code wins)"
        )
    elif rule == "apn":
        apn = number["apn"] if number else None
        out["matched"] = {"apn_ni": line["apn_ni"], "apn": apn}
        out["why"] = f"a data session on the sub-number's APN {apn} (event APN {line['apn_ni']})"
    elif rule == "primary":
        out["matched"] = {
            "event_msisdn": line["event_msisdn"],
            "dialled_digits": line["dialled_digits"],
            "apn_ni": line["apn_ni"],
        }
        out["why"] = (
            "no sub-number matched by MSISDN, selection code or APN: the card's primary number"
        )
    else:
        out["matched"] = {}
        out["why"] = "the IMSI is not one of our cards that day, or the event has no time"
    return out


def _plan_version(
    numbers: list[dict[str, Any]], tables: Any, line: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
    """The account's days, the ``plans`` row in force on its anchor day and the service's tiers.

    ``numbers``: the resolved sub-numbers (:func:`assign_plans`). The days: ``anchor`` (the
    first day of the cycle on which the sub-number has the plan), ``active_days`` (how many
    days of the cycle it has it), ``cycle_days`` and ``level`` (the level on the anchor day).
    """
    cycle: date = line["cycle_start"]
    end = _next_month(cycle)
    rows = [
        n
        for n in numbers
        if n["imsi"] == line["imsi"]
        and n["msisdn"] == line["sub_number"]
        and n["plan_id"] == line["plan_id"]
        and n["valid_from"] < end
        and (n["valid_to"] is None or n["valid_to"] > cycle)
    ]
    days: dict[str, Any] = {
        "anchor": None,
        "active_days": None,
        "cycle_days": (end - cycle).days,
        "level": None,
    }
    if not rows:
        return days, None, []
    first = min(rows, key=lambda n: n["valid_from"])
    anchor = max(cycle, first["valid_from"])
    days |= {
        "anchor": anchor,
        "active_days": sum(
            (min(n["valid_to"] or end, end) - max(n["valid_from"], cycle)).days for n in rows
        ),
        "level": first.get("plan_level"),
    }
    plans = [
        p
        for p in _rows(tables.plans)
        if p["plan_id"] == line["plan_id"] and valid_on(p["valid_from"], p["valid_to"], anchor)
    ]
    tiers = sorted(
        (
            t
            for t in _rows(tables.plans_tiers)
            if t["plan_id"] == line["plan_id"]
            and t["service"] == line["service"]
            and valid_on(t["valid_from"], t["valid_to"], anchor)
        ),
        key=lambda t: t["from_units"],
    )
    return days, (plans[0] if plans else None), tiers


def _carried_units(opening: pa.Table, line: dict[str, Any]) -> int:
    service = line["service"]
    if f"{service}_allowance_units" not in opening.column_names:
        return 0
    rows = _where(
        opening,
        imsi=line["imsi"],
        sub_number=line["sub_number"],
        plan_id=line["plan_id"],
        cycle_start=line["cycle_start"],
    )
    total = 0
    for r in rows.to_pylist():
        total += int(r[f"{service}_allowance_units"] or 0) + int(r[f"{service}_overage_units"] or 0)
    return total


def _earlier_units(day_lines: pa.Table, line: dict[str, Any]) -> list[dict[str, Any]]:
    """The same day's lines of the account and service before ``line``, in rating order."""
    same = _where(
        day_lines,
        imsi=line["imsi"],
        sub_number=line["sub_number"],
        plan_id=line["plan_id"],
        cycle_start=line["cycle_start"],
        service=line["service"],
    ).to_pylist()
    out = []
    for r in same:
        if r["file"] == line["file"] and r["event_index"] == line["event_index"]:
            break
        if (r["units"] or 0) > 0 and not (r["day_pass_units"] or 0):
            out.append(r)
    return out


def _units(line: dict[str, Any], event: dict[str, Any] | None, plan: dict[str, Any] | None) -> Any:
    service = line["service"]
    raw: int | None = None
    increment: int | None = None
    if event is not None:
        if service in ("voice_mo", "voice_mt"):
            raw = max(int(event["duration"] or 0), 0)
        elif service == "data":
            raw = max(int(event["data_volume_incoming"] or 0), 0)
            raw += max(int(event["data_volume_outgoing"] or 0), 0)
        elif service in ("sms_mo", "sms_mt"):
            raw = 1
    if plan is not None:
        if service in ("voice_mo", "voice_mt"):
            increment = int(plan["voice_increment_s"])
        elif service == "data":
            increment = int(plan["data_increment_kb"]) * 1024
        elif service in ("sms_mo", "sms_mt"):
            increment = 1
    return {"raw": raw, "increment": increment, "unit": line["unit"], "units": line["units"]}


def _allowance(service: str, plan: dict[str, Any], days: dict[str, Any]) -> tuple[int, int]:
    """The full allowance of ``service`` in native units and its prorated share.

    ``floor(full × active_days / cycle_days)``, as rating counts it
    (:mod:`clearing.rating.retail_plans`).
    """
    size = UNITS[service][1]
    column = ALLOWANCE_COLUMN.get(service)
    full = int(plan[column] or 0) * size if column else 0
    active = days["active_days"]
    if active is None:
        return full, full
    return full, full * int(active) // int(days["cycle_days"])


def _parts(
    before: int, after: int, service: str, allow: int, tiers: list[dict[str, Any]]
) -> tuple[int, list[dict[str, Any]], Fraction, int]:
    """The allowance part, each tier's part, the exact amount and its rounding (minor units).

    ``allow``: the account's allowance of ``service`` in native units (prorated).
    """
    size = UNITS[service][1]

    def cut(lo: int, hi: int | None) -> int:
        top = after if hi is None else min(after, hi)
        return max(0, top - max(before, lo))

    allowance = cut(0, allow)
    parts = []
    exact = Fraction(0)
    total = 0
    for k, t in enumerate(tiers):
        lo = allow + int(t["from_units"]) * size
        nxt = tiers[k + 1]["from_units"] if k + 1 < len(tiers) else None
        hi = None if nxt is None else allow + int(nxt) * size
        units = cut(lo, hi)
        part = Fraction(units * int(t["price"]), size)
        exact += part
        total += units * int(t["price"])
        parts.append(
            {
                "tier": k + 1,
                "from": lo,
                "to": hi,
                "units": units,
                "price": int(t["price"]),
                "part": part,
            }
        )
    rounded = (2 * total + size) // (2 * size)
    return allowance, parts, exact, rounded


def _covering_pass(
    root: Path, day: date, line: dict[str, Any], scope: str, card_wide: set[tuple[Any, Any]]
) -> dict[str, Any]:
    """The day pass covering ``line`` and the line that opened it.

    ``scope``: the line's plan's ``day_pass_scope``; with ``card``, the opener may be another
    sub-number of the card, whose plan version (``plan_id``, ``plan_version``) is one of
    ``card_wide``.
    """
    start = _utc(line["day_pass_start"])
    opened = bool(line["day_pass_charged"])
    out: dict[str, Any] = {
        "covered": True,
        "pass_start": start.isoformat() if start else None,
        "pass_end": (start + timedelta(seconds=DAY_PASS_SECONDS)).isoformat() if start else None,
        "opened_here": opened,
        "price": _money(line["day_pass_amount"], line["scale"]) if opened else None,
        "opened_by": None,
        "scope": scope,
        "opened_by_number": line["sub_number"] if opened else None,
    }
    if opened or start is None:
        return out
    first = min(start.date() - timedelta(days=1), day)
    for d in lake.dates(root, lake.RETAIL):
        if not first <= d <= day:
            continue
        lines = _day_lines(root, d)
        if lines is None:
            continue
        found = [
            r
            for r in _where(lines, imsi=line["imsi"], day_pass_charged=True).to_pylist()
            if _utc(r["day_pass_start"]) == start
            and (
                r["sub_number"] == line["sub_number"]
                if scope != "card"
                else (r["plan_id"], r["plan_version"]) in card_wide
            )
        ]
        if found:
            # the sub-number's own line first (it may have opened the card's pass itself)
            r = min(found, key=lambda x: x["sub_number"] != line["sub_number"])
            out["opened_by"] = line_id(d, r["file"], r["event_index"])
            out["opened_by_number"] = r["sub_number"]
            out["price"] = _money(r["day_pass_amount"], r["scale"])
            return out
    return out


def _plain(value: Any) -> Any:
    """JSON-ready: dates and times as ISO 8601, fractions left out."""
    if isinstance(value, datetime):
        return _utc(value).isoformat()  # type: ignore[union-attr]
    if isinstance(value, date):
        return value.isoformat()
    return value


def explain_line(workdir: Path, line: str) -> dict[str, Any] | None:
    """The explanation of bill line ``line`` of the work folder's lake (None: no such line).

    Args:
        workdir: the work folder (its ``lake/``, ``rates/`` and ``clearing.toml``).
        line: a line id (:func:`line_id`).

    Returns:
        A JSON-ready dict: ``line_id``, ``processing_date``, the event (``file``, ``sender``,
        ``event_index``, ``start``, ``service``), ``attribution`` (rule, values matched, why),
        ``sub_number``, ``role``, ``plan`` (``plan_id``, ``version`` = its ``valid_from``,
        ``anchor``, ``level``: user | group | global), ``cycle_start``, ``units`` (raw,
        increment, units), ``usage`` (``carried``, ``earlier_today``, ``before``, ``after``),
        ``allowance`` (``size``: the account's prorated allowance, ``full`` × ``active_days``
        / ``cycle_days`` rounded down; ``before`` / ``after`` left, the part used), ``tiers``
        (each tier's bounds, units, price, part),
        ``amount`` (exact, rounded, the usage, day-pass and line amounts as decimal strings),
        ``day_pass`` (covering pass, its ``scope``, the line and sub-number that opened it:
        ``opened_by``, ``opened_by_number``; or None), ``matches`` and ``mismatches``; None when the
        processing date has no such line.

    Raises:
        ConfigError: a bad line id, no lake, no config or bad retail tables.
    """
    day, file, index = parse_line_id(line)
    root = config.WorkDir(workdir).lake
    if not root.is_dir():
        msg = f"no lake in `{workdir}` yet: run `clearing nightly --workdir {workdir}` first"
        raise ConfigError(msg)
    day_lines = _day_lines(root, day)
    if day_lines is None:
        return None
    found = _where(day_lines, file=file, event_index=index).to_pylist()
    if not found:
        return None
    stored = found[0]
    ident = line_id(day, file, index)
    out: dict[str, Any] = {
        "line_id": ident,
        "processing_date": day.isoformat(),
        "imsi": stored["imsi"],
        "file": stored["file"],
        "sender": stored["sender"],
        "event_index": stored["event_index"],
        "start": _plain(stored["start_utc"]),
        "service": stored["service"],
        "currency": stored["currency"],
    }
    if stored["attribution_rule"] == "none" or stored["imsi"] is None:
        out["attribution"] = _attribution(stored, None)
        out["amount"] = None
        out["matches"], out["mismatches"] = True, []
        return out
    card = rerate_card(workdir, day, stored["imsi"])
    events = _where(card.events, file=file, event_index=index).to_pylist()
    event = events[0] if events else None
    again = _where(card.result.bill_lines, file=file, event_index=index).to_pylist()
    numbers = _rows(assign_plans(card.tables))
    number = _number_row(numbers, stored)
    days, plan, tiers = _plan_version(numbers, card.tables, stored)
    scale = int(stored["scale"] or 0)
    out |= {
        "attribution": _attribution(stored, number),
        "sub_number": stored["sub_number"],
        "role": stored["role"],
        "plan": {
            "plan_id": stored["plan_id"],
            "version": None if plan is None else _plain(plan["valid_from"]),
            "valid_to": None if plan is None else _plain(plan["valid_to"]),
            "anchor": _plain(days["anchor"]),
            "level": stored["plan_level"],
        },
        "cycle_start": _plain(stored["cycle_start"]),
        "billing_clock": card.cycle_of,
        "units": _units(stored, event, plan),
    }
    mismatches: list[str] = []
    covered = bool(stored["day_pass_units"])
    scope = "sub_number"
    if plan is not None and plan.get("day_pass_scope") == "card":
        scope = "card"
    card_wide = {
        (p["plan_id"], p["valid_from"])
        for p in _rows(card.tables.plans)
        if p.get("day_pass_scope") == "card"
    }
    out["day_pass"] = _covering_pass(root, day, stored, scope, card_wide) if covered else None
    carried = _carried_units(card.opening, stored)
    earlier = _earlier_units(day_lines, stored)
    before = carried + sum(int(r["units"]) for r in earlier)
    units = int(stored["units"] or 0)
    after = before if covered else before + units
    out["usage"] = {
        "carried": carried,
        "earlier_today": [line_id(day, r["file"], r["event_index"]) for r in earlier],
        "earlier_today_units": before - carried,
        "before": before,
        "after": after,
    }
    if plan is not None and stored["service"] in UNITS and not covered and units > 0:
        out |= _priced(stored, (before, after), plan, tiers, days)
        mismatches += out.pop("_mismatches")
    else:
        out["allowance"] = None
        out["tiers"] = []
        out["amount"] = {"exact": None, "rounded": _money(stored["usage_amount"], scale)}
    out["amount"] |= {
        "usage": _money(stored["usage_amount"], scale),
        "day_pass": _money(stored["day_pass_amount"], scale),
        "line": _money(stored["amount"], scale),
    }
    out["stored"] = {
        "allowance_units": stored["allowance_units"],
        "overage_units": stored["overage_units"],
        "tier_units": stored["tier_units"],
        "day_pass_units": stored["day_pass_units"],
    }
    if not again:
        mismatches.append("the event (not in the day's accepted events any more)")
    else:
        rerated = again[0]
        mismatches += [f"{k} (re-rated)" for k in _COMPARED if rerated[k] != stored[k]]
    out["matches"] = not mismatches
    out["mismatches"] = mismatches
    if mismatches:
        out["warning"] = MISMATCH
    return out


def _priced(
    stored: dict[str, Any],
    usage: tuple[int, int],
    plan: dict[str, Any],
    tiers: list[dict[str, Any]],
    days: dict[str, Any],
) -> dict[str, Any]:
    """``allowance``, ``tiers``, ``per`` and ``amount`` of a priced line.

    Worked from its cycle usage ``(before, after)``; ``_mismatches``: where that disagrees with
    the stored line.
    """
    before, after = usage
    scale = int(stored["scale"] or 0)
    full, allow = _allowance(stored["service"], plan, days)
    allowance, parts, exact, rounded = _parts(before, after, stored["service"], allow, tiers)
    mismatches = []
    overage = sum(p["units"] for p in parts)
    if allowance != stored["allowance_units"]:
        mismatches.append("allowance_units (worked from before/after)")
    if overage != stored["overage_units"] or [p["units"] for p in parts] != list(
        stored["tier_units"] or []
    ):
        mismatches.append("tier_units (worked from before/after)")
    if rounded != stored["usage_amount"]:
        mismatches.append("usage_amount (worked from before/after)")
    return {
        "allowance": {
            "size": allow,
            "left_before": max(0, allow - before),
            "left_after": max(0, allow - after),
            "used": allowance,
            # the plan's allowance for a whole cycle, and the account's share of the cycle
            "full": full,
            "active_days": days["active_days"],
            "cycle_days": days["cycle_days"],
        },
        "tiers": [
            p | {"part": _exact(p["part"], scale), "price": _money(p["price"], scale)}
            for p in parts
        ],
        "per": {"unit": UNITS[stored["service"]][0], "size": UNITS[stored["service"]][1]},
        "amount": {
            "exact": _exact(exact, scale),
            "rounded": _money(rounded, scale),
            "rounding": "half up, once",
        },
        "_mismatches": mismatches,
    }
