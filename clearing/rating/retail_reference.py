"""A per-event Python implementation of retail rating: the oracle and the benchmark baseline.

It applies the rules of :mod:`clearing.rating.retail` one event at a time, with dictionaries
for the running state (allowance and tiers per account and service, the open day pass per
sub-number). It is slow and meant to be obviously right: tests compare the vectorised rating
with it, and ``tests/bench/test_bench_retail.py`` measures both.

Events of the same second are taken in (sender, file sequence number, event index) order here,
whereas :func:`~clearing.rating.retail.rate_retail` breaks such ties by a hash: compare the two
on events without same-second ties within a sub-number.

With ``processed_by`` the events are taken in processing order (by that column, then event
time), as :func:`~clearing.rating.retail.write_retail` bills a lake's days one after another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from clearing.rating.retail_sql import ALLOWANCE_COLUMN, DAY_PASS_SECONDS, UNITS
from clearing.rating.validity import valid_on

if TYPE_CHECKING:
    import pyarrow as pa

    from clearing.rating.retail_tables import RetailTables

__all__ = ["rate_rows"]

_EPOCH = date(1970, 1, 1)


def _service(kind: str | None, tele: str | None) -> str:
    if kind == "gprsCall":
        return "data"
    if kind == "messagingEvent":
        return "sms_mo"
    if kind == "mobileSession":
        return "voice_mo"
    if kind == "mobileOriginatedCall":
        return "sms_mo" if tele == "22" else "voice_mo"
    if kind == "mobileTerminatedCall":
        return "sms_mt" if tele == "21" else "voice_mt"
    return "other"


def _valid(row: dict[str, Any], day: date) -> bool:
    return valid_on(row["valid_from"], row["valid_to"], day)


def _cycle_start(day: date, bcd: int) -> date:
    if day.day >= bcd:
        return day.replace(day=bcd)
    prev = day.replace(day=1) - timedelta(days=1)
    return prev.replace(day=bcd)


def _epoch(ts: datetime | None) -> int | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp())


@dataclass(frozen=True, slots=True)
class _Ref:
    """The reference tables as lists of rows, by card / plan."""

    subs: dict[str, list[dict[str, Any]]]
    nums: dict[str, list[dict[str, Any]]]
    plans: dict[str, list[dict[str, Any]]]
    tiers: dict[tuple[str, str], list[dict[str, Any]]]
    defaults: list[dict[str, Any]]

    def plan_on(self, num: dict[str, Any], day: date) -> tuple[str, str] | None:
        """The plan and its level of a sub-number row on ``day``: own > group > global."""
        if num["plan_id"] is not None:
            return num["plan_id"], "user"
        card = [s for s in self.subs.get(num["imsi"], []) if _valid(s, day)]
        group = card[0]["group_id"] if card else None
        for d in self.defaults:
            if group is not None and d["group_id"] == group and _valid(d, day):
                return d["plan_id"], "group"
        for d in self.defaults:
            if d["group_id"] is None and _valid(d, day):
                return d["plan_id"], "global"
        return None

    def plan_days(self, imsi: str, msisdn: str, plan_id: str, first: date, end: date) -> list[date]:
        """The days of ``[first, end)`` on which the sub-number has ``plan_id``."""
        out = []
        day = first
        while day < end:
            plans = {
                assigned[0]
                for n in self.nums.get(imsi, [])
                if n["msisdn"] == msisdn
                and _valid(n, day)
                and (assigned := self.plan_on(n, day)) is not None
            }
            if plan_id in plans:
                out.append(day)
            day += timedelta(days=1)
        return out


@dataclass(slots=True)
class _State:
    used: dict[tuple[Any, ...], int] = field(default_factory=dict)  # (account, service) → units
    # sub-number → the start of every pass it opened
    pass_starts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)  # card → what its prepaid lines took


def rate_rows(
    events: pa.Table,
    tables: RetailTables,
    *,
    cycle_of: str,
    primary_msisdn_decides: bool = False,
    processed_by: str | None = None,
) -> list[dict[str, Any]]:
    """Rate ``events`` one by one; one dict per event (event-time order).

    ``processed_by``: a column of ``events`` (e.g. the processing date) that orders the events
    before their time: processing order.

    Keys: ``sender, file_sequence_number, event_index, sub_number, attribution_rule, plan_id,
    plan_version, plan_level, cycle_start, service, units, allowance_units, overage_units,
    tier_units, day_pass_units, day_pass_charged, usage_amount, day_pass_amount, amount``.
    """
    local = cycle_of == "local"
    offset = 0
    if not local:
        m = re.fullmatch(r"([+-])(\d\d)(\d\d)", cycle_of)
        assert m is not None
        offset = (-1 if m[1] == "-" else 1) * (int(m[2]) * 3600 + int(m[3]) * 60)
    subs: dict[str, list[dict[str, Any]]] = {}
    for row in tables.subscribers.to_pylist():
        subs.setdefault(row["imsi"], []).append(row)
    nums: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(tables.sub_numbers.to_pylist(), key=lambda r: (r["msisdn"], r["valid_from"])):
        nums.setdefault(row["imsi"], []).append(row)
    plans: dict[str, list[dict[str, Any]]] = {}
    for row in tables.plans.to_pylist():
        plans.setdefault(row["plan_id"], []).append(row)
    tiers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in tables.plans_tiers.to_pylist():
        tiers.setdefault((row["plan_id"], row["service"]), []).append(row)
    defaults = tables.plan_defaults.to_pylist()
    credit: dict[str, list[tuple[int, int]]] = {}  # card → (time, amount) of each credit
    for row in tables.topups.to_pylist():
        hh, mm, *ss = (int(x) for x in row["time"].split(":"))
        when = (row["day"] - _EPOCH).days * 86400 + hh * 3600 + mm * 60 + (ss[0] if ss else 0)
        credit.setdefault(row["imsi"], []).append((when - offset, row["amount"]))

    rows = events.to_pylist()
    for row in rows:
        row["_t"] = _epoch(row["start_utc"])
    rows.sort(
        key=lambda r: (
            processed_by is not None and r[processed_by],
            r["_t"] is None,
            r["_t"] or 0,
            r["sender"] or "",
            r["file_sequence_number"] or "",
            r["event_index"] or 0,
        )
    )
    state = _State()
    out: list[dict[str, Any]] = []
    ref = _Ref(subs, nums, plans, tiers, defaults)
    for ev in rows:
        line = _rate_one(ev, ref, state, local, offset, primary_msisdn_decides)
        line["balance_after"] = line["over_balance_amount"] = None
        line["over_balance"] = None if line["amount"] is None else False
        if line["plan_id"] is not None and _kind(ref, line) == "prepaid":
            # the card's credit up to the event, minus everything its prepaid lines took
            spent = state.spent.get(ev["imsi"], 0) + line["amount"]
            state.spent[ev["imsi"]] = spent
            got = sum(a for when, a in credit.get(ev["imsi"], []) if when <= ev["_t"])
            before = got - (spent - line["amount"])
            covered = min(max(before, 0), line["amount"])
            line["balance_after"] = got - spent
            line["over_balance_amount"] = line["amount"] - covered
            line["over_balance"] = line["amount"] > covered
        out.append(line)
    return out


def _kind(ref: _Ref, line: dict[str, Any]) -> str:
    plan = next(p for p in ref.plans[line["plan_id"]] if p["valid_from"] == line["plan_version"])
    return str(plan["kind"] or "postpaid")


def _attribute(
    ev: dict[str, Any], cands: list[dict[str, Any]], service: str, primary_decides: bool
) -> tuple[str, dict[str, Any]] | None:
    msisdn, dialled, apn = ev["msisdn"], ev["dialled_digits"], ev["apn_ni"]
    for n in cands:
        mine = msisdn is not None and n["msisdn"] == msisdn
        if mine and (n["role"] != "primary" or primary_decides):
            return "msisdn", n
    coded = [
        n
        for n in cands
        if n["selection_code"] and dialled is not None and dialled.startswith(n["selection_code"])
    ]
    if coded:
        return "selection_code", max(coded, key=lambda n: len(n["selection_code"]))
    for n in cands:
        if service == "data" and apn is not None and n["apn"] == apn.lower():
            return "apn", n
    for n in cands:
        if n["role"] == "primary":
            return "primary", n
    return None


def _rate_one(
    ev: dict[str, Any],
    ref: _Ref,
    state: _State,
    local: bool,
    offset: int,
    primary_decides: bool,
) -> dict[str, Any]:
    service = _service(ev["event_kind"], ev["tele_service_code"])
    line: dict[str, Any] = {
        "sender": ev["sender"],
        "file_sequence_number": ev["file_sequence_number"],
        "event_index": ev["event_index"],
        "sub_number": None,
        "attribution_rule": "none",
        "plan_id": None,
        "plan_version": None,
        "plan_level": None,
        "cycle_start": None,
        "service": service,
        "units": None,
        "allowance_units": None,
        "overage_units": None,
        "tier_units": None,
        "day_pass_units": None,
        "day_pass_charged": None,
        "usage_amount": None,
        "day_pass_amount": None,
        "amount": None,
    }
    t = ev["_t"]
    if t is None:
        return line
    clock = _epoch(ev.get("local_start")) if local else t + offset
    day = _EPOCH + timedelta(days=(t if clock is None else clock) // 86400)
    card = [s for s in ref.subs.get(ev["imsi"], []) if _valid(s, day)]
    cands = [n for n in ref.nums.get(ev["imsi"], []) if _valid(n, day)]
    found = _attribute(ev, cands, service, primary_decides) if card else None
    if found is None:
        return line
    rule, num = found
    assigned = ref.plan_on(num, day)
    assert assigned is not None, "a sub-number without a plan on its day"
    plan_id, level = assigned
    cycle = _cycle_start(day, card[0]["bill_cycle_day"])
    # the days of the cycle on which the sub-number has this plan: the first is the anchor,
    # their count prorates the allowances
    next_cycle = (cycle + timedelta(days=32)).replace(day=cycle.day)
    days = ref.plan_days(ev["imsi"], num["msisdn"], plan_id, cycle, next_cycle)
    anchor = days[0]
    plan = next(p for p in ref.plans[plan_id] if _valid(p, anchor))
    if service in ("voice_mo", "voice_mt"):
        inc = plan["voice_increment_s"]
        units = -(-max(ev["duration"] or 0, 0) // inc) * inc
    elif service in ("sms_mo", "sms_mt"):
        units = 1
    elif service == "data":
        inc = plan["data_increment_kb"] * 1024
        vol = max(ev["data_volume_incoming"] or 0, 0) + max(ev["data_volume_outgoing"] or 0, 0)
        units = -(-vol // inc) * inc
    else:
        units = 0
    line |= {
        "sub_number": num["msisdn"],
        "attribution_rule": rule,
        "plan_id": plan_id,
        "plan_version": plan["valid_from"],
        "plan_level": level,
        "cycle_start": cycle,
        "units": units,
        "allowance_units": 0,
        "overage_units": 0,
        "tier_units": [],
        "day_pass_units": 0,
        "day_pass_charged": False,
        "usage_amount": 0,
        "day_pass_amount": 0,
        "amount": 0,
    }
    covered = (
        units > 0
        and plan["day_pass_price"] is not None
        and service in (plan["day_pass_services"] or "").split()
    )
    card_wide = plan.get("day_pass_scope") == "card"
    chain = (ev["imsi"], "(card)" if card_wide else num["msisdn"])
    if covered:
        # covered by a pass already open at t (whenever it was opened), else it opens one
        starts = state.pass_starts.setdefault(chain, [])
        line["day_pass_units"] = units
        if not any(p <= t < p + DAY_PASS_SECONDS for p in starts):
            starts.append(t)
            line["day_pass_charged"] = True
            line["day_pass_amount"] = line["amount"] = plan["day_pass_price"]
        return line
    if units == 0 or service == "other":
        return line
    size = UNITS[service][1]
    full = (plan[ALLOWANCE_COLUMN[service]] if service in ALLOWANCE_COLUMN else 0) * size
    allow = full * len(days) // (next_cycle - cycle).days  # prorated, rounded down
    valid_tiers = sorted(
        (x for x in ref.tiers.get((plan_id, service), []) if _valid(x, anchor)),
        key=lambda x: x["from_units"],
    )
    key = (ev["imsi"], num["msisdn"], plan_id, cycle, service)
    before = state.used.get(key, 0)
    after = before + units
    state.used[key] = after
    in_allowance = max(0, min(after, allow) - before)
    numerator = 0
    per_tier = []
    for i, tier in enumerate(valid_tiers):
        lo = allow + tier["from_units"] * size
        hi = allow + valid_tiers[i + 1]["from_units"] * size if i + 1 < len(valid_tiers) else None
        u = max(0, min(after, after if hi is None else hi) - max(before, lo))
        per_tier.append(u)
        numerator += u * tier["price"]
    amount = (2 * numerator + size) // (2 * size)
    line |= {
        "allowance_units": in_allowance,
        "overage_units": sum(per_tier),
        "tier_units": per_tier,
        "usage_amount": amount,
        "amount": amount,
    }
    return line
