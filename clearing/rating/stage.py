"""The rating stages of a run: ``rate``, ``retail`` and ``rerate``.

``rate`` rates visitors' CDRs and runs the IOT check, ``retail`` our subscribers' usage per
sub-number, ``rerate`` a month again (the delta report).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from clearing.stage import StageContext, StepResult, stage

if TYPE_CHECKING:
    from clearing.rating.retail import Crossing

__all__ = [
    "LISTED_CROSSINGS",
    "attribution_shares",
    "low_balance_problems",
    "rate",
    "rerate",
    "retail",
]


@stage("rate")
def rate(ctx: StageContext) -> StepResult:
    """Rate the day's visitors' CDRs and IOT-check its partner events (``value``: the summary).

    Records held for missing reference data (an IOT row, an FX rate) are anomalies (exit 1)
    naming partner, service and count; records billed at a ``default_rate`` are warnings. The
    TAP-out / CIBER-out of the rated rows is the next stage's (:mod:`clearing.outbound`).
    """
    from clearing.rating.run import rate_day

    summary = rate_day(ctx.workdir.root, ctx.date, settings=ctx.settings)
    warnings = summary.warnings()
    for line in warnings:
        ctx.progress("warning", line)
    facts = {}
    held = [
        {"kind": kind, "partner": g.partner, "service": g.service, "count": g.count,
         "reason": g.reason}
        for kind, groups in (
            ("cdr", summary.held_groups),
            ("payable", summary.payable_held_groups),
            ("default_rate", summary.default_groups),
        )
        for g in groups
    ]  # fmt: skip
    if held:
        facts["held"] = held
    return StepResult(
        "rate",
        {
            "cdr_records": summary.records_in,
            "rated": summary.rated,
            "unrated": summary.unrated,
            "held": summary.held,
            "quarantined": summary.quarantined,
            "recycled": summary.recycled,
            "resubmitted": summary.resubmitted,
            "default_rated": summary.default_rated,
            "partner_events_checked": summary.partner_events,
            "iot_breaches": summary.iot_breaches,
            "payables_held": summary.payable_held,
            "payables_released": summary.payable_released,
            "iot_held": sum(h.events for h in summary.iot_held),
        },
        status="warning" if warnings else "ok",
        problems=summary.problems(),
        facts=facts,
        value=summary,
    )


@stage("retail")
def retail(ctx: StageContext) -> StepResult:
    """Rate our subscribers' accepted usage abroad per sub-number."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from clearing.rating.retail import low_balance_crossings, untimed, write_retail

    lines, _summary = write_retail(
        ctx.workdir.root,
        ctx.date,
        cycle_of=ctx.settings.home.timezone_offset,
        memory_mb=ctx.settings.performance.memory_mb,
    )
    detail: dict[str, Any] = {"bill_lines": pq.ParquetFile(lines).metadata.num_rows}
    rules = pq.read_table(lines, columns=["attribution_rule"]).column("attribution_rule")
    by_rule = {
        str(c["values"]): int(c["counts"])
        for c in pc.value_counts(rules).to_pylist()
        if c["values"] != "none"
    }
    if by_rule:
        detail["attributed"] = attribution_shares(by_rule)
        detail["attribution"] = dict(sorted(by_rule.items()))
    problems = []
    missing = untimed(lines, ctx.workdir.rates)
    for sender in sorted({m.sender for m in missing}):
        mine = [m for m in missing if m.sender == sender]
        services = ", ".join(f"{m.events} {m.service}" for m in mine)
        problems.append(
            f"retail: {sum(m.events for m in mine)} event(s) of our subscribers from {sender} "
            f"({services}) have no UTC start and are not billed: set `utc_offset` (or "
            f"`time_zones`) under [partners.{sender}] in clearing.toml, then run the day again"
        )
    if missing:  # the key is only there when something is unbilled
        detail["no_utc_start"] = sum(m.events for m in missing)
    crossings = low_balance_crossings(lines, ctx.settings.retail.low_balance)
    if crossings:
        detail["low_balance"] = dict(Counter(str(c.level) for c in crossings))
    warnings = low_balance_problems(crossings)
    return StepResult(
        "retail",
        detail,
        status="warning" if warnings else "ok",
        problems=problems,
        warnings=warnings,
    )


#: At most this many low-balance crossings are listed one by one in a run's anomalies.
LISTED_CROSSINGS = 20


def low_balance_problems(crossings: list[Crossing]) -> list[str]:
    """One warning per line that crossed levels (the first :data:`LISTED_CROSSINGS`), then a count.

    The run lists them among its anomalies at severity ``warning``: a low balance is the
    subscriber's business, not a fault of the night, so the exit code does not change.
    """
    from decimal import Decimal

    lines: dict[tuple[str, tuple[str, int]], list[Crossing]] = {}
    for c in crossings:
        lines.setdefault((c.imsi, c.line), []).append(c)
    out = []
    for got in list(lines.values())[:LISTED_CROSSINGS]:
        c = got[0]
        when = c.start_utc.strftime("%Y-%m-%d %H:%M:%SZ") if c.start_utc else "?"
        left = Decimal(c.balance_after).scaleb(-c.scale)
        levels = [str(x.level) for x in got]
        named = levels[0] if len(levels) == 1 else ", ".join(levels[:-1]) + f" and {levels[-1]}"
        out.append(
            f"retail: prepaid card {c.imsi} (number {c.sub_number}) is at {c.currency} "
            f"{left} after its event of {when} (file {c.line[0]}, event {c.line[1]}): at or "
            f"below the {c.currency} {named} warning level{'s' if len(levels) > 1 else ''}; "
            "tell the subscriber to top up (a top-up goes into the rates table `topups`)"
        )
    more = len(lines) - LISTED_CROSSINGS
    if more > 0:
        out.append(
            f"retail: {more} more prepaid line(s) at a low-balance level; list them with "
            "`clearing find --imsi` or from the bill lines' `balance_after`"
        )
    return out


def attribution_shares(by_rule: dict[str, int]) -> str:
    """The bill lines of each attribution rule as whole percents of the attributed lines.

    In the rules' order: ``msisdn 31 %, selection code 9 %, apn 14 %, primary 46 %``.
    """
    from clearing.rating.retail import RULES

    total = sum(by_rule.values())
    return ", ".join(
        f"{rule.replace('_', ' ')} {(200 * by_rule.get(rule, 0) + total) // (2 * total)} %"
        for rule in RULES
        if rule != "none"
    )


@stage("rerate")
def rerate(ctx: StageContext) -> StepResult:
    """Rate every row of the month again with today's reference data (the delta report)."""
    from clearing.rating.rerate import rerate as rerate_period

    root = ctx.workdir.root
    result = rerate_period(root, ctx.month)
    changed = result.changed_rows.height
    problems = []
    if changed:
        problems.append(
            f"rerate: {changed} row(s) price differently with today's reference data; "
            f"see {os.path.relpath(result.paths[0], root)} before settling"
        )
    return StepResult(
        "rerate",
        {
            "receivable_rows": result.receivable_rows,
            "payable_rows": result.payable_rows,
            "changed_rows": changed,
        },
        outputs=list(result.paths),
        problems=problems,
    )
