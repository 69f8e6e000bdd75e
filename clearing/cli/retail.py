"""``clearing retail explain`` (why one bill line costs what it costs) and ``retail statement``.

Mounted under the ``retail`` group (:data:`clearing.cli.stages.retail_app`, whose own callback
is the retail stage of a day); the work is :mod:`clearing.rating.retail_explain` and
:mod:`clearing.settle.statement`.
"""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clearing.cli._common import (
    DebugOpt,
    JsonOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    not_found,
    reads_workdir,
)

__all__ = ["explain", "explain_app", "statement", "statement_app"]

explain_app = typer.Typer()
statement_app = typer.Typer()

if TYPE_CHECKING:
    from collections.abc import Iterator

_LINE_HELP = (
    "the bill line DATE/FILE/INDEX: processing date, partner file, event index (the line_id "
    "of `clearing find --json`)"
)


#: How the text names a plan level.
_LEVELS = {
    "user": "level user: the number's own plan",
    "group": "level group: the default plan of the card's group",
    "global": "level global: the global default plan",
}

#: Short names of the native units in the text.
_UNIT = {"second": "s", "message": "messages", "byte": "bytes"}


def _say(out: dict[str, Any]) -> Iterator[str]:
    """The explanation as text lines."""
    cur = out.get("currency") or ""
    yield (
        f"line {out['line_id']}: {out['service']} of {out['start']} from {out['sender']} "
        f"(file {out['file']}, event {out['event_index']}), card {out['imsi']}"
    )
    att = out["attribution"]
    matched = ", ".join(f"{k} {v}" for k, v in att["matched"].items())
    yield f"attribution: {att['rule']} ({matched or '-'}): {att['why']}"
    if out.get("amount") is None:
        yield "not rated: no sub-number took the event"
        return
    plan = out["plan"]
    level = _LEVELS.get(plan.get("level") or "", "level unknown")
    yield (
        f"sub-number {out['sub_number']} ({out['role']}), plan {plan['plan_id']} version "
        f"{plan['version']} ({level}; the plans row in force on the anchor day "
        f"{plan['anchor']}), bill cycle from {out['cycle_start']} (clock {out['billing_clock']})"
    )
    u = out["units"]
    yield (
        f"units: {u['raw']} {u['unit']}(s) raw → {u['units']} (rounded up to the plan's "
        f"increment of {u['increment']})"
    )
    pass_ = out["day_pass"]
    if pass_ is not None:
        if pass_["opened_here"]:
            yield (
                f"day pass: this line opened a pass ({pass_['pass_start']} → "
                f"{pass_['pass_end']}) at {pass_['price']} {cur}; it uses no allowance"
            )
        else:
            by = pass_.get("opened_by_number")
            card = pass_.get("scope") == "card"
            yield (
                f"day pass: covered by the {'card-wide ' if card else ''}pass opened at "
                f"{pass_['pass_start']} (until {pass_['pass_end']}) by line "
                f"{pass_['opened_by'] or '?'}"
                + (f" (number {by})" if card and by else "")
                + f" ({pass_['price'] or '?'} {cur}); it uses no allowance"
            )
    us = out["usage"]
    yield (
        f"cycle usage of {out['service']}: before {us['before']} (carried from earlier "
        f"processing dates {us['carried']} + earlier lines of the day "
        f"{us['earlier_today_units']}), after {us['after']}"
        + (" (a line covered by a day pass adds none)" if pass_ is not None else "")
    )
    al = out["allowance"]
    if al is not None:
        size = f"{al['size']}"
        active, days = al.get("active_days"), al.get("cycle_days")
        if active is not None and days is not None and active != days:
            unit = _UNIT.get(u["unit"], u["unit"])
            size = (
                f"{al['full']} {unit} × {active}/{days} days = {al['size']} {unit} "
                "(prorated, rounded down)"
            )
        yield (
            f"allowance {size}: left before {al['left_before']}, left after "
            f"{al['left_after']}; this line uses {al['used']}"
        )
    per = out.get("per") or {}
    for t in out["tiers"]:
        to = "∞" if t["to"] is None else t["to"]
        yield (
            f"tier {t['tier']} [{t['from']}, {to}): {t['units']} × {t['price']} {cur} per "
            f"{per.get('size')} {per.get('unit')}(s) = {t['part']} {cur}"
        )
    am = out["amount"]
    if am.get("exact") is not None:
        yield (
            f"usage amount: Σ units × price / unit = {am['exact']} → {am['rounded']} {cur} "
            "(rounded half up, once)"
        )
    yield f"line amount: usage {am['usage']} + day pass {am['day_pass']} = {am['line']} {cur}"
    if out["matches"]:
        yield "re-rated with today's reference data: the same"
    else:
        yield f"WARNING: {out['warning']}: {', '.join(out['mismatches'])}"


@explain_app.command(
    "explain",
    epilog=examples(
        "clearing retail explain -w /srv/clearing \\",
        "    --line 2026-11-22/CDFRAF9HKGCL00002/17",
        "clearing retail explain -w /srv/clearing \\",
        "    --line 2026-11-22/CDFRAF9HKGCL00002/17 --json",
    ),
)
@handles_errors
@reads_workdir
def explain(
    workdir: WorkDirOpt,
    line: Annotated[str, typer.Option("--line", help=_LINE_HELP)],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show why one retail bill line costs what it costs.

    The attribution rule and the values it matched, the sub-number, plan and plan version, the
    bill cycle, the units (raw and rounded to the plan's increment), the cycle's usage of the
    service before and after the line (allowance left), each tier's part and price, the amount
    and its rounding (half up, once), and the day pass that covered the line. The line is
    re-rated with the same carried state and today's reference data: a difference is shown as
    a warning.

    `--json` prints one JSON object (amounts as decimal strings). Exit code 1 when there is no
    such line.
    """
    from clearing.rating.retail_explain import explain_line

    out = explain_line(workdir, line)
    if out is None:
        msg = f"no bill line {line} in `{workdir / 'lake'}`"
        raise not_found(msg, as_json=as_json)
    if as_json:
        typer.echo(json.dumps(out))
        return
    for text in _say(out):
        typer.echo(text)


@statement_app.command(
    "statement",
    epilog=examples(
        "clearing retail statement -w /srv/clearing --cycle 2026-11",
        "clearing retail statement -w /srv/clearing --cycle 2026-11 \\",
        "    --imsi 454990001007919",
        "clearing retail statement -w /srv/clearing --cycle 2026-11 \\",
        "    --out /tmp/bills --json",
    ),
)
@handles_errors
@reads_workdir
def statement(
    workdir: WorkDirOpt,
    cycle: Annotated[
        str, typer.Option("--cycle", help="the month YYYY-MM the cards' bill cycles start in")
    ],
    imsi: Annotated[str | None, typer.Option("--imsi", help="only this card (IMSI)")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="folder for the statements (default: WORKDIR/out/statements/YYYY-MM)"
        ),
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write the retail statement of every card whose bill cycle starts in --cycle.

    One statement per card (IMSI) and cycle, as `statement_<IMSI>_<YYYY-MM>.xlsx` (printable
    on A4) and `.json`: a section per sub-number (its number, role, label, plan and plan
    version, the recurring fee prorated, every usage line with its local time, visited network
    and country, service, other party masked to its last 4 digits, units, allowance used,
    overage per tier and amount; the subtotal), the tax per sub-number and the card's total.
    Subtotal = fee + the lines' amounts; tax = subtotal × the plan's rate, rounded half up;
    total = Σ subtotal + tax. The lines are the lake's bill lines of the cycle, late events
    included (processing dates up to the latest present).

    `--json` prints one JSON object per card, one per line (amounts as decimal strings), and
    writes the files too. Exit code 1 when no card (or not --imsi) has a cycle starting in
    the month.
    """
    from clearing.lookup import check_imsi
    from clearing.settle.statement import cycle_month, write_statements

    cycle_month(cycle)
    if imsi is not None:
        imsi = check_imsi(imsi)
    done = write_statements(workdir, cycle, imsi=imsi, out=out)
    if not done:
        who = f"card {imsi}" if imsi is not None else "any card"
        msg = (
            f"no statement for {who} in cycle {cycle}: no bill cycle of it starts in {cycle} "
            f"with fees or bill lines in `{workdir}`"
        )
        raise not_found(msg, as_json=as_json)
    for st, xlsx, doc in done:
        if as_json:
            typer.echo(json.dumps(st.as_dict() | {"xlsx": str(xlsx), "json": str(doc)}))
            continue
        lines = sum(len(s.lines) for s in st.sections)
        typer.echo(
            f"card {st.imsi} cycle {st.cycle_start} to {st.cycle_last_day}: "
            f"{len(st.sections)} number(s), {lines} line(s), total {st.total} {st.currency}; "
            f"`{xlsx}`"
        )
    if not as_json and len(done) > 1:
        typer.echo(f"{len(done)} statements in `{done[0][1].parent}`")
