"""Retail rating of our outbound roamers, per sub-number ("one card, several numbers").

TAP-in / CIBER-in events (:data:`clearing.codecs.events.EVENT_SCHEMA`) are rated against the
retail reference tables (:mod:`clearing.rating.retail_tables`) in five vectorised steps
(DuckDB joins and window sums; the day-pass chain in numpy, one step per pass, never per event):

1. **Attribution.** Each event goes to one sub-number of its card (IMSI) valid on the event's
   day, by the first rule that matches, recorded in ``attribution_rule``:

   ``msisdn``          the event's MSISDN is that sub-number's. A card's *primary* MSISDN does
                       not decide here by default: a VPMN writes the primary MSISDN on nearly
                       every record (it is the one in its VLR), so it says nothing about which
                       number was used; pass ``primary_msisdn_decides=True`` to let it.
   ``selection_code``  the dialled digits start with the sub-number's selection code (the
                       longest code wins), e.g. a virtual number for calls dialled ``+86``.
   ``apn``             a data session on the sub-number's APN.
   ``primary``         fallback: the card's primary number.
   ``none``            the IMSI is not one of our cards on that day (or the event has no time):
                       the row is not rated (null units and amounts) and is left out of the
                       summary.

2. **Bill cycle.** A card's cycles start on its ``bill_cycle_day``; the event's day is taken on
   the billing clock ``cycle_of`` (a fixed UTC offset such as ``"+0800"``, or ``"local"``: the
   event's local time at the visited network). A cycle is rated with the plan version in force
   on its first day (or on the day the sub-number starts, when later).

3. **Units.** Voice in seconds rounded up to the plan's ``voice_increment_s``, SMS 1 each, data
   in bytes (incoming + outgoing) rounded up to ``data_increment_kb`` KB. Other events
   (supplementary services, CIBER records without a direction) are kept with 0 units.

4. **Day pass.** For a plan with a day pass, every event of a covered service with units opens
   or uses a 24 h window: the first such event of a sub-number opens one (and carries its
   price), each later event before ``start + 24 h`` is covered, the first at or after it opens
   the next. Covered events use no allowance. A pass is charged in the cycle of the event that
   opened it.

5. **Allowance and tiers.** The other events consume the cycle's allowance of their service,
   then the plan's graduated tiers (``plans_tiers``; a tier's bounds count units beyond the
   allowance over the cycle), in event-time order: ``start_utc``, and for events of the same
   second a hash of their sender, file sequence number, event index and file — never the
   input order. Cumulative sums per sub-number, cycle and service give
   each event its ``[before, after)`` slice of usage, which is cut at the allowance and tier
   bounds: an event crossing one is split. The amount of a line is
   ``Σ units × price / unit`` (unit: 60 s, 1 message, 1 MB = 1048576 bytes), rounded half up
   once, in the plan's currency at its scale.

A sub-number's allowances and tiers run per plan and cycle: changing a sub-number's plan starts
a new allowance (no proration).

The stage (:func:`write_retail`) bills the lake's processing dates one after another: a day's
events come after what the days before billed (carried as the cycle's totals to date and the
day passes open), so a bill line is final once written and a cycle's bill is the sum of its
lines; :func:`rate_retail` takes that carried state as ``opening`` and ``passes``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR
from typing import TYPE_CHECKING, NamedTuple

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing import config, lake
from clearing._io import write_row_groups_atomic
from clearing._memory import release_memory, spill_past
from clearing.errors import ConfigError, ValueRangeError
from clearing.rating import retail_sql as steps
from clearing.rating._spool import ROW_GROUP, row_groups
from clearing.rating.retail_plans import register_tables
from clearing.rating.retail_sql import DAY_PASS_SECONDS
from clearing.rating.retail_tables import RetailTables, load_retail_tables, prepare_tables

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from decimal import Decimal
    from pathlib import Path

    from clearing.rating.retail_tables import TableLike

__all__ = [
    "BILL_LINE_SCHEMA",
    "CROSSING_COLUMNS",
    "DAY_PASS_SECONDS",
    "LOOKBACK_DAYS",
    "PASSES_SCHEMA",
    "ROW_BYTES",
    "RULES",
    "SUMMARY_SCHEMA",
    "CardRating",
    "Crossing",
    "RetailResult",
    "low_balance_crossings",
    "rate_retail",
    "rerate_card",
    "slices_for",
    "spent_after",
    "untimed",
    "write_retail",
]

#: Attribution rules, in precedence order, and ``none`` for events that could not be attributed.
RULES = ("msisdn", "selection_code", "apn", "primary", "none")

#: Event columns rating reads (``local_start`` only with ``cycle_of="local"``; ``file`` optional).
_EVENT_COLUMNS = (
    "imsi",
    "msisdn",
    "dialled_digits",
    "apn_ni",
    "event_kind",
    "tele_service_code",
    "start_utc",
    "duration",
    "data_volume_incoming",
    "data_volume_outgoing",
    "sender",
    "file_sequence_number",
    "event_index",
)

_TS = pa.timestamp("s", tz="UTC")

#: One row per event (the lake's ``retail`` dataset, :mod:`clearing.lake`).
BILL_LINE_SCHEMA = lake.RETAIL_BILL_LINE_SCHEMA

#: One row per sub-number, plan and bill cycle (the lake's ``retail_summary``).
SUMMARY_SCHEMA = lake.RETAIL_SUMMARY_SCHEMA


class Untimed(NamedTuple):
    """Events of our cards that could not be billed for want of a UTC start."""

    sender: str
    service: str
    events: int


class Crossing(NamedTuple):
    """A prepaid line that took its card's balance from above a warning level to it or below."""

    imsi: str
    sub_number: str
    level: Decimal  # in currency units
    balance_after: int  # at ``scale``
    currency: str
    scale: int
    start_utc: datetime | None
    line: tuple[str, int]  # file, event index


#: The columns of the bill lines :func:`low_balance_crossings` reads.
CROSSING_COLUMNS = [
    "imsi",
    "sub_number",
    "balance_after",
    "amount",
    "currency",
    "scale",
    "start_utc",
    "file",
    "event_index",
]


def low_balance_crossings(lines: pa.Table | Path, levels: Sequence[Decimal]) -> list[Crossing]:
    """The lines of ``lines`` whose card's balance crossed one of ``levels`` (currency units).

    A crossing of level ``L`` (at the line's scale): balance before the line ``> L`` and after
    ``<= L``. By card, then time, then level (highest first). ``lines``: the bill lines, or
    the path of a day's file (only :data:`CROSSING_COLUMNS` are read).

    The test runs in DuckDB over the prepaid lines (128-bit sums: a balance before the line
    never wraps); only the crossings come back to Python. For a whole-number balance ``b``,
    ``b > L`` and ``b <= L`` are ``b > floor(L)`` and ``b <= floor(L)``.
    """
    if not levels:
        return []
    con = duckdb.connect()
    try:
        if isinstance(lines, pa.Table):
            if lines.num_rows == 0:
                return []
            con.register("lines", lines.select(CROSSING_COLUMNS))
        else:
            cols, files = ", ".join(CROSSING_COLUMNS), _listing([lines])
            con.execute(f"CREATE VIEW lines AS SELECT {cols} FROM read_parquet([{files}])")
        scales = [int(r[0]) for r in con.sql(_PREPAID_SCALES).fetchall()]
        bounds = [
            (s, i, int(level.scaleb(s).to_integral_value(rounding=ROUND_FLOOR)))
            for s in scales
            for i, level in enumerate(levels)
        ]
        if not bounds:
            return []
        con.register(
            "bounds",
            pa.table(
                {
                    "scale": pa.array([b[0] for b in bounds], pa.int64()),
                    "level": pa.array([b[1] for b in bounds], pa.int64()),
                    # a level beyond 64 bits at some scale: compared as 128 bits
                    "bound": pa.array([str(b[2]) for b in bounds], pa.string()),
                }
            ),
        )
        rows = con.execute(_CROSSINGS_SQL).fetchall()
    finally:
        con.close()
    out = [
        Crossing(imsi, sub, levels[k], int(after), currency, int(scale), start, (file, index))
        for imsi, sub, k, after, currency, scale, start, file, index in rows
    ]
    return sorted(out, key=lambda c: (c.imsi, c.start_utc or datetime.min, -c.level))


_PREPAID_SCALES = "SELECT DISTINCT scale FROM lines WHERE balance_after IS NOT NULL ORDER BY 1"

_CROSSINGS_SQL = """
    SELECT l.imsi, l.sub_number, b.level, l.balance_after, l.currency, l.scale, l.start_utc,
        l.file, l.event_index
    FROM lines l JOIN bounds b ON l.scale = b.scale
    WHERE l.balance_after IS NOT NULL
        AND CAST(l.balance_after AS HUGEINT) + coalesce(l.amount, 0) > CAST(b.bound AS HUGEINT)
        AND CAST(l.balance_after AS HUGEINT) <= CAST(b.bound AS HUGEINT)
    ORDER BY l.file, l.event_index, b.level
"""


class RetailResult(NamedTuple):
    """What :func:`rate_retail` returns: bill lines (one per event) and the cycle summary."""

    bill_lines: pa.Table
    summary: pa.Table


def _offset_seconds(cycle_of: str) -> int | None:
    """Seconds east of UTC of ``"+hhmm"``; None for ``"local"``."""
    if cycle_of == "local":
        return None
    m = re.fullmatch(r"([+-])([01][0-9])([0-5][0-9])", cycle_of)
    if m is None:
        msg = f"cycle_of must be a UTC offset such as `+0800` or `local`, not `{cycle_of}`"
        raise ConfigError(msg)
    sign = -1 if m[1] == "-" else 1
    return sign * (int(m[2]) * 3600 + int(m[3]) * 60)


def _events_arrow(events: TableLike, *, local: bool) -> pa.Table:
    table = events if isinstance(events, pa.Table) else pa.table(events)
    wanted = [*_EVENT_COLUMNS, *(("local_start",) if local else ())]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        msg = f"events table lacks column(s) {', '.join(missing)} (see EVENT_SCHEMA)"
        raise ValueError(msg)
    out = table.select(wanted)
    file = table.column("file") if "file" in table.column_names else pa.nulls(len(table))
    out = out.append_column("file", file.cast(pa.string()))
    return out.append_column("pos", pa.array(np.arange(len(out), dtype=np.int64)))


def _opening(opening: TableLike | None) -> pa.Table:
    """The carried summary rows as :data:`SUMMARY_SCHEMA` (none: an empty table)."""
    if opening is None:
        return SUMMARY_SCHEMA.empty_table()
    table = opening if isinstance(opening, pa.Table) else pa.table(opening)
    for field in SUMMARY_SCHEMA:  # a summary written before the column existed
        if field.name not in table.column_names:
            fill = pa.nulls(len(table), field.type)
            if not field.nullable:
                fill = pa.array([0] * len(table), field.type)
            table = table.append_column(field.name, fill)
    return table.select(SUMMARY_SCHEMA.names).cast(SUMMARY_SCHEMA)


#: The day passes carried into a rating (see :func:`rate_retail`'s ``passes``).
PASSES_SCHEMA = pa.schema(
    [
        pa.field("imsi", pa.string()),
        pa.field("sub_number", pa.string()),
        pa.field("pass_start", _TS),
        # the plan that opened it (bill line ``plan_id`` / ``plan_version``): says whether the
        # pass was card-wide (``day_pass_scope``); null: unknown, it counts either way
        pa.field("plan_id", pa.string()),
        pa.field("plan_version", pa.date32()),
    ]
)


def _passes(passes: TableLike | None) -> pa.Table:
    """The carried day passes as :data:`PASSES_SCHEMA` (none: an empty table)."""
    if passes is None:
        return PASSES_SCHEMA.empty_table()
    table = passes if isinstance(passes, pa.Table) else pa.table(passes)
    for field in PASSES_SCHEMA:
        if field.name not in table.column_names:  # plan_id, plan_version are optional
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(PASSES_SCHEMA.names).cast(PASSES_SCHEMA)


#: What each card's prepaid lines consumed so far (see :func:`rate_retail`'s ``spent``; the
#: lake's ``retail_balance``).
SPENT_SCHEMA = pa.schema([pa.field("imsi", pa.string()), pa.field("spent", pa.int64())])


def _spent(spent: TableLike | None) -> pa.Table:
    """The carried prepaid consumption as :data:`SPENT_SCHEMA` (none: an empty table)."""
    if spent is None:
        return SPENT_SCHEMA.empty_table()
    table = spent if isinstance(spent, pa.Table) else pa.table(spent)
    return table.select(SPENT_SCHEMA.names).cast(SPENT_SCHEMA)


def _to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns as exactly ``schema`` (integer epoch seconds → UTC timestamps)."""
    cols = []
    for field in schema:
        col = table.column(field.name)
        if field.type == _TS and pa.types.is_integer(col.type):
            col = pc.cast(col, pa.int64()).cast(pa.timestamp("s"))
        cols.append(col.cast(field.type, safe=field.type != _TS))
    return pa.Table.from_arrays(cols, schema=schema)


#: Bill-line columns copied from the event (bill-line name: event column).
_FROM_EVENT = {
    "file": "file",
    "sender": "sender",
    "file_sequence_number": "file_sequence_number",
    "event_index": "event_index",
    "event_kind": "event_kind",
    "start_utc": "start_utc",
    "event_msisdn": "msisdn",
    "dialled_digits": "dialled_digits",
    "apn_ni": "apn_ni",
}


# ---------------------------------------------------------------------------------------------
# public API


def rate_retail(
    events: TableLike,
    subscribers: TableLike,
    sub_numbers: TableLike,
    plans: TableLike,
    plans_tiers: TableLike,
    *,
    cycle_of: str,
    primary_msisdn_decides: bool = False,
    opening: TableLike | None = None,
    passes: TableLike | None = None,
    plan_defaults: TableLike | None = None,
    topups: TableLike | None = None,
    spent: TableLike | None = None,
) -> RetailResult:
    """Rate events at retail, per sub-number; see the module docstring for the rules.

    Args:
        events: call events with the :data:`~clearing.codecs.events.EVENT_SCHEMA` columns
            (only ``imsi, msisdn, dialled_digits, apn_ni, event_kind, tele_service_code,
            start_utc, duration, data_volume_incoming, data_volume_outgoing, sender,
            file_sequence_number, event_index`` are read, plus ``local_start`` with
            ``cycle_of="local"`` and ``file`` when present). Any order: rating follows event
            time. ``pa.Table``, DuckDB relation or polars frame.
        subscribers: rates table ``subscribers`` (``specs/rates/subscribers.csv`` columns).
        sub_numbers: rates table ``sub_numbers``.
        plans: rates table ``plans``.
        plans_tiers: rates table ``plans_tiers``.
        cycle_of: the billing clock that gives an event its day (bill cycle, validity of the
            reference rows): a UTC offset ``"+hhmm"`` (our home clock, e.g. ``"+0800"``) or
            ``"local"`` (the visited network's local time, ``local_start``).
        primary_msisdn_decides: let an event carrying the card's primary MSISDN go to the
            primary number by rule ``msisdn``, before selection code and APN.
        opening: what was billed before these events (:data:`SUMMARY_SCHEMA` rows, at most
            one per sub-number, plan and cycle): the events of an account come after its
            carried usage (allowance and tiers used first), and the summary rows add the
            carried totals. None: nothing billed before.
        passes: day passes opened before these events (``imsi``, ``sub_number``,
            ``pass_start``, a UTC timestamp; optional ``plan_id`` and ``plan_version`` of the
            line that opened it): a covered event inside one of their windows is covered by
            it (the latest). A pass whose plan version has ``day_pass_scope`` ``card`` covers
            the card-wide events of the card, any other only its sub-number's (unknown plan:
            both). None: no pass open.
        plan_defaults: rates table ``plan_defaults`` (the plans of sub-numbers without one
            of their own, see :mod:`clearing.rating.retail_plans`). None: no defaults.
        topups: rates table ``topups`` (prepaid credit). None: no credit.
        spent: what each card's prepaid lines consumed before these events (``imsi``,
            ``spent`` at the plan's scale). None: nothing.

    Returns:
        ``RetailResult(bill_lines, summary)``: :data:`BILL_LINE_SCHEMA` (one row per event,
        by sub-number (IMSI, MSISDN) then event time, unattributed events last) and
        :data:`SUMMARY_SCHEMA` (one row per sub-number, plan and bill cycle the events touch,
        by IMSI, sub-number, cycle; with ``opening``, the totals to date). Same inputs in any
        row order → equal tables.

    Raises:
        ConfigError: bad reference data (see :func:`~clearing.rating.retail_tables.
            prepare_tables`), a plan without a version or tiers for a cycle it rates, or a
            bad ``cycle_of``.
        ValueError: ``events`` lacks a column rating reads.
        ValueRangeError: a cycle's units or an amount is beyond 64 bits (checked arithmetic:
            never a wrapped or a crashed sum).
    """
    try:
        return _rate_retail(
            events,
            subscribers,
            sub_numbers,
            plans,
            plans_tiers,
            cycle_of=cycle_of,
            primary_msisdn_decides=primary_msisdn_decides,
            opening=opening,
            passes=passes,
            plan_defaults=plan_defaults,
            topups=topups,
            spent=spent,
        )
    except (duckdb.OutOfRangeException, duckdb.ConversionException) as e:
        first = str(e).splitlines()[0]
        msg = (
            f"retail rating: a sum of units or an amount does not fit in 64 bits ({first}); "
            "every value of an accepted event is within its range, so many huge events add up "
            "here: look for the subscriber with the largest usage in the day's events "
            "(`clearing explain`), and return or correct the partner's records"
        )
        raise ValueRangeError(msg) from e


def _rate_retail(
    events: TableLike,
    subscribers: TableLike,
    sub_numbers: TableLike,
    plans: TableLike,
    plans_tiers: TableLike,
    *,
    cycle_of: str,
    primary_msisdn_decides: bool,
    opening: TableLike | None,
    passes: TableLike | None,
    plan_defaults: TableLike | None,
    topups: TableLike | None,
    spent: TableLike | None,
) -> RetailResult:
    offset = _offset_seconds(cycle_of)
    ref = prepare_tables(subscribers, sub_numbers, plans, plans_tiers, plan_defaults, topups)
    ev = _events_arrow(events, local=offset is None)
    con = duckdb.connect()
    try:
        con.register("events_in", ev)
        register_tables(con, ref)
        con.register("opening_in", _opening(opening))
        con.register("passes_in", _passes(passes))
        con.register("spent_in", _spent(spent))
        steps.load_numbers(con)
        steps.load_events(con, offset)
        steps.attribute(con, offset, primary_decides=primary_msisdn_decides)
        steps.rate_rows(con)
        steps.load_state(con)
        steps.day_passes(con)
        steps.bands(con)
        steps.usage(con)
        steps.balances(con, offset)
        rated = con.sql(steps.lines_sql()).to_arrow_table()
        order = con.sql(steps.ORDER_SQL).to_arrow_table().column("eid").to_numpy()
        con.register("lines", rated)
        today = _to_schema(con.sql(steps.summary_sql()).to_arrow_table(), SUMMARY_SCHEMA)
        con.register("today", today)
        merged = con.sql(steps.merged_summary_sql(SUMMARY_SCHEMA.names)).to_arrow_table()
        summary = _to_schema(merged, SUMMARY_SCHEMA)
        numbers = con.sql("SELECT imsi, msisdn, role, plan_id, plan_level FROM nums ORDER BY sid")
        versions = con.sql("SELECT plan_version, currency, scale FROM pv ORDER BY pvid")
        lookups = (numbers.to_arrow_table(), versions.to_arrow_table())
    finally:
        con.close()
    # bill-line order: row i of the result is the line of event order[i]
    row_of_eid = np.empty(len(order), dtype=np.int64)
    row_of_eid[rated.column("eid").to_numpy()] = np.arange(len(order))
    # (one chunk per column after the take, whatever the chunks of the query's result)
    rated = rated.take(row_of_eid[order]).combine_chunks()
    return RetailResult(_bill_lines(rated, ev, *lookups), summary)


def _bill_lines(rated: pa.Table, ev: pa.Table, numbers: pa.Table, versions: pa.Table) -> pa.Table:
    """The bill lines: rating columns, strings looked up by row id, the event's own columns."""
    sid = pc.subtract(rated.column("sid"), 1)  # `sid` and `pvid` count from 1
    pvid = pc.subtract(rated.column("pvid"), 1)
    rank = pc.subtract(rated.column("rank").fill_null(len(RULES)), 1)
    wanted = ["imsi", *_FROM_EVENT.values()]
    taken = ev.select(wanted).take(rated.column("pos")).combine_chunks()
    cols = {
        "sub_number": numbers.column("msisdn").take(sid),
        "role": numbers.column("role").take(sid),
        "plan_id": numbers.column("plan_id").take(sid),
        "plan_level": numbers.column("plan_level").take(sid),
        "plan_version": versions.column("plan_version").take(pvid),
        "attribution_rule": pa.array(RULES).take(rank),
        "currency": versions.column("currency").take(pvid),
        "scale": versions.column("scale").take(pvid),
        "imsi": taken.column("imsi"),
        **{name: taken.column(column) for name, column in _FROM_EVENT.items()},
    }
    for name, col in cols.items():
        rated = rated.append_column(name, col)
    return _to_schema(rated, BILL_LINE_SCHEMA)


# ---------------------------------------------------------------------------------------------
# the stage: lake in, lake out

#: How far before the earliest event of a day the summaries of the days already billed are
#: read, so that every bill cycle of the day's events carries its totals to date (a cycle is
#: at most 31 days; 2 days for time zones).
LOOKBACK_DAYS = 33


def _days(first: date, last: date) -> list[date]:
    """``first`` to ``last`` inclusive (none when ``last`` is before ``first``)."""
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def _listing(paths: list[Path]) -> str:
    """A DuckDB list literal of file paths."""
    return ", ".join("'" + str(f).replace("'", "''") + "'" for f in paths)


def _events_sql(paths: list[Path]) -> str:
    """The accepted events of ``events_in`` files (the columns rating reads), in file order."""
    cols = ", ".join([*_EVENT_COLUMNS, "local_start", "file"])
    return (
        f"SELECT {cols} FROM read_parquet([{_listing(sorted(paths))}], union_by_name = true, "
        "hive_partitioning = false) WHERE status = 'accepted'"
    )


def _day_view(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> bool:
    """Make ``today_all`` the view of the accepted events of ``paths``; False: no file.

    A view over the files, not a table: the day-wide facts (earliest start, the day's cards)
    and each slice of cards are read from the files, the whole day is never held.
    """
    if not paths:
        return False
    con.execute(f"CREATE OR REPLACE VIEW today_all AS {_events_sql(paths)}")
    return True


def _carried(
    con: duckdb.DuckDBPyConnection, root: Path, day: date, earliest: date
) -> tuple[pa.Table, pa.Table]:
    """What the days before ``day`` billed to the cards of ``today_all``: summaries, passes.

    Summaries: of each sub-number, plan and cycle, the row of the latest processing date from
    ``earliest − LOOKBACK_DAYS`` to the day before (a day's summary holds the totals to date of
    what it touched). Passes: the day passes opened on the processing dates from the day before
    ``earliest`` (a pass covers 24 h), read from those days' bill lines.
    """
    cards = "imsi IN (SELECT imsi FROM today_all)"
    days = _days(earliest - timedelta(days=LOOKBACK_DAYS), day - timedelta(days=1))
    files = lake.files(root, lake.RETAIL_SUMMARY, days)
    opening = SUMMARY_SCHEMA.empty_table()
    if files:
        opening = con.sql(
            f"""
            SELECT * EXCLUDE (filename) FROM read_parquet([{_listing(files)}], filename = true,
                union_by_name = true, hive_partitioning = false)
            WHERE {cards}
            QUALIFY row_number() OVER (PARTITION BY imsi, sub_number, plan_id, cycle_start
                ORDER BY filename DESC) = 1
            """
        ).to_arrow_table()  # `date=YYYY-MM-DD` folders: by file name is by date
        opening = _opening(opening)
    days = _days(earliest - timedelta(days=1), day - timedelta(days=1))
    files = lake.files(root, lake.RETAIL, days)
    passes = PASSES_SCHEMA.empty_table()
    if files:
        # (the columns there are: lines written before `plan_version` existed lack it)
        found = con.sql(
            f"""
            SELECT DISTINCT COLUMNS(lambda c: c IN
                ('imsi', 'sub_number', 'day_pass_start', 'plan_id', 'plan_version'))
            FROM read_parquet([{_listing(files)}], union_by_name = true,
                hive_partitioning = false)
            WHERE day_pass_charged AND {cards}
            """
        ).to_arrow_table()
        at = found.column_names.index("day_pass_start")
        passes = _passes(
            found.rename_columns(
                [*found.column_names[:at], "pass_start", *found.column_names[at + 1 :]]
            )
        )
    return opening, passes


#: Bytes of peak memory one event of a slice adds to the retail stage (its columns, the
#: rating's working tables, the bill line): about 560 measured over 12 nights of 100 000
#: events a day, about 1 200 on days of 1M-3M events (a slice of 428 000 events peaked at
#: 725 MB, 210 MB of it the process's own).
ROW_BYTES = 1200


def slices_for(rows: int, memory_mb: int) -> int:
    """How many slices of cards ``rows`` events are rated in, for a budget of ``memory_mb``.

    Half the budget is for the rating (the rest: the process, the day's other tables).
    """
    per_slice = max(1, (memory_mb << 20) // 2 // ROW_BYTES)
    return max(1, -(-rows // per_slice))


def write_retail(
    workdir: Path, day: date, *, cycle_of: str | None = None, memory_mb: int | None = None
) -> tuple[Path, Path]:
    """Rate the accepted TAP-in/CIBER-in events of processing ``day`` and write them.

    Reads ``<workdir>/lake/events_in/date=<day>/partner=*/*.parquet`` (status ``accepted``) and
    the retail tables of ``<workdir>/rates`` (imported Parquet, else CSV sources).

    Events are billed in **processing order**: the day's events, in event-time order, come
    after everything the earlier processing dates billed. What those billed is carried, not
    rated again: each sub-number's cycle-to-date totals (the latest summary row of its plan
    and cycle, from ``LOOKBACK_DAYS`` before the day's earliest event) and the day passes
    already open (from the bill lines of the days since the day before the earliest event).
    So a bill line, once written, is final; a late event uses what is left of its cycle's
    allowance (its tier is where the cycle's usage stands) and a cycle's bill is the sum of
    its lines. The night's cost is that of the day's events, not of the cycle's. Only earlier
    partitions are read: a re-run of a day gives the same bytes. An earlier processing date of
    the look-back with accepted events but no bill lines (its retail stage never ran) is
    billed first, in date order, so that nothing is billed out of processing order.

    The day's cards are rated in slices (:func:`slices_for`: the day's rows against the
    ``[performance] memory_mb`` budget): a card's events are all in one slice. Slices change
    only the order of the lines of events without a sub-number (by start, then slice), never
    a figure. Then the day is never held whole: each slice's events are read from the lake's
    files, its lines spooled to ``<workdir>/tmp/retail-<day>/`` (removed after), and the
    day's file written from them by DuckDB's out-of-core sort, a row group at a time.

    Writes ``<workdir>/lake/retail/date=<day>/bill_lines.parquet`` (the day's events) and
    ``summary.parquet`` (the totals to date of the sub-numbers and cycles those events touch).

    Args:
        workdir: the work folder.
        day: the processing day (the lake partition).
        cycle_of: billing clock (see :func:`rate_retail`); default: ``home.timezone_offset``
            of ``<workdir>/clearing.toml``.
        memory_mb: the memory budget (default: ``[performance] memory_mb`` of the work
            folder's ``clearing.toml``, 2048 without one).

    Returns:
        The paths of ``bill_lines.parquet`` and ``summary.parquet``.

    Raises:
        ConfigError: no config (when ``cycle_of`` is not given), missing or bad retail tables.
    """
    wd = config.WorkDir(workdir)
    settings = None
    if cycle_of is None or (memory_mb is None and wd.config.is_file()):
        settings = wd.settings()  # no config and no cycle_of: ConfigError
    if cycle_of is None:
        assert settings is not None
        cycle_of = settings.home.timezone_offset
    if memory_mb is None:
        memory_mb = (settings.performance if settings else config.Performance()).memory_mb
    tables = load_retail_tables(wd.rates)
    return _write_day(wd.lake, day, tables, clock=cycle_of, memory_mb=memory_mb)


def _unbilled(root: Path, day: date, earliest: date) -> list[date]:
    """Earlier processing dates whose events were never billed (their retail never ran).

    Those from ``earliest − LOOKBACK_DAYS`` to the day before ``day`` with accepted events in
    the lake but no bill lines.
    """
    lo = earliest - timedelta(days=LOOKBACK_DAYS)
    billed = set(lake.dates(root, lake.RETAIL))
    return [
        d
        for d in lake.dates(root, lake.EVENTS_IN)
        if lo <= d < day and d not in billed and lake.files(root, lake.EVENTS_IN, [d])
    ]


def _write_day(
    root: Path, day: date, tables: RetailTables, *, clock: str, memory_mb: int
) -> tuple[Path, Path]:
    """:func:`write_retail` of one day, after the earlier days it carries from."""
    with _spool_folder(root.parent / "tmp" / f"retail-{day.isoformat()}") as folder:
        lines: pa.Table | None = None
        parts: list[Path] = []
        con = duckdb.connect()
        try:
            found = _day_view(con, lake.files(root, lake.EVENTS_IN, [day]))
            first = steps.first_row(con, "SELECT count(*) FROM today_all") if found else None
            rows = int(first[0]) if first is not None else 0
            if rows == 0:
                lines, summary = BILL_LINE_SCHEMA.empty_table(), SUMMARY_SCHEMA.empty_table()
                spent = _spent_before(root, day)
            else:
                earliest = _earliest(con, day)
                for missed in _unbilled(root, day, earliest):
                    # processing order: an earlier day is billed before this one carries from it
                    _write_day(root, missed, tables, clock=clock, memory_mb=memory_mb)
                spent = _spent_before(root, day)
                n = slices_for(rows, memory_mb)
                if n > 1:
                    spill_past(con, folder / "duckdb", memory_mb // 2)
                opening, passes = _carried(con, root, day, earliest)
                carried = (opening, passes, spent)
                if n > 1:
                    parts, summary = _spool_slices(
                        con, tables, carried, clock=clock, n=n, folder=folder
                    )
                else:
                    todays = con.sql("SELECT * FROM today_all").to_arrow_table()
                    lines, summary = _rate_carried(todays, tables, clock, carried)
                    del todays
        finally:
            con.close()
        if lines is not None:  # one slice, or no events: the day in one piece
            out = (
                lake.write(root, lake.RETAIL, day, lines),
                lake.write(root, lake.RETAIL_SUMMARY, day, summary),
            )
            lake.write(root, lake.RETAIL_BALANCE, day, spent_after(spent, lines))
            return out
        release_memory()
        out = (
            _write_sorted_lines(root, day, parts, folder / "duckdb", memory_mb),
            lake.write(root, lake.RETAIL_SUMMARY, day, summary),
        )
        lake.write(root, lake.RETAIL_BALANCE, day, _spent_after_parts(spent, parts))
        return out


@contextlib.contextmanager
def _spool_folder(folder: Path) -> Iterator[Path]:
    """``folder`` (the work folder's ``tmp/retail-<day>/``), emptied on entry, removed on exit.

    Made only when used: by the parts of a day rated in slices and DuckDB's spill files.
    """
    shutil.rmtree(folder, ignore_errors=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _spool_slices(
    con: duckdb.DuckDBPyConnection,
    tables: RetailTables,
    carried: tuple[pa.Table, pa.Table, pa.Table],
    *,
    clock: str,
    n: int,
    folder: Path,
) -> tuple[list[Path], pa.Table]:
    """Rate ``today_all`` of ``con`` in ``n`` slices of cards: the lines' parts, the summary.

    Each slice's events are read from the files (in the files' order), rated, and its lines
    written to a Parquet part under ``folder`` with their slice and row (``_slice``,
    ``_row``: the tie-breakers of :data:`_LINE_ORDER`); the summary rows (one per
    sub-number, plan and cycle) are few: they are kept, in :func:`rate_retail`'s order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    summaries: list[pa.Table] = []
    for k in range(n):
        mine = con.sql(f"SELECT * FROM today_all WHERE hash(imsi) % {n} = {k}").to_arrow_table()
        if mine.num_rows == 0:
            continue
        result = _rate_carried(mine, tables, clock, carried)
        del mine
        lines = result.bill_lines
        lines = lines.append_column("_slice", pa.array(np.full(len(lines), k, np.int32)))
        lines = lines.append_column("_row", pa.array(np.arange(len(lines), dtype=np.int64)))
        parts.append(folder / f"lines-{k:05d}.parquet")
        # read once, by DuckDB: no dictionary pages, no statistics
        pq.write_table(
            lines, parts[-1], compression="lz4", use_dictionary=False, write_statistics=False
        )
        summaries.append(result.summary)
        del result, lines
        release_memory()
    if not summaries:
        return parts, SUMMARY_SCHEMA.empty_table()
    keys = ("imsi", "sub_number", "cycle_start", "plan_id")
    summary = pa.concat_tables(summaries).sort_by([(c, "ascending") for c in keys])
    return parts, summary.combine_chunks()


#: The order of a day's bill lines rated in slices (the spooled parts' columns ``_slice`` and
#: ``_row``: a line's slice and its row there), :func:`rate_retail`'s: by sub-number (IMSI,
#: MSISDN) — a card is in one slice, so its slice's order keeps each sub-number's event-time
#: order — then the lines without a sub-number, by start (none last), then slice and row.
_LINE_ORDER = """
    attribution_rule = 'none' ASC NULLS LAST,
    CASE WHEN attribution_rule = 'none' THEN NULL ELSE imsi END ASC NULLS LAST,
    CASE WHEN attribution_rule = 'none' THEN NULL ELSE sub_number END ASC NULLS LAST,
    CASE WHEN attribution_rule = 'none' THEN start_utc END ASC NULLS LAST,
    _slice ASC, _row ASC
"""

_BATCH = 1 << 16  # rows per batch of the sorted lines

#: Bytes of a bill line in Arrow (its 33 columns): about 310 measured on a 1M-event day.
_LINE_BYTES = 320

#: The least memory DuckDB sorts the bill lines in (below, it fails to pin its blocks).
_SORT_MIN_MB = 128


def _group_rows(memory_mb: int) -> int:
    """Rows of a row group of a sliced day's bill lines: what an eighth of the budget holds.

    In whole batches, at most the lake's length (:data:`clearing._io.ROW_GROUP`).
    """
    fits = (memory_mb << 20) // 8 // _LINE_BYTES
    return max(_BATCH, min(ROW_GROUP, fits // _BATCH * _BATCH))


def _write_sorted_lines(
    root: Path, day: date, parts: list[Path], tmp: Path, memory_mb: int
) -> Path:
    """Write the lines of the spooled ``parts`` in :data:`_LINE_ORDER` as the day's file.

    DuckDB sorts out of core on one thread within an eighth of ``memory_mb`` (at least
    :data:`_SORT_MIN_MB`; spilling under ``tmp``; it holds about twice that), and its batches
    are written a row group at a time (:func:`_group_rows`) as :func:`lake.write` writes
    (schema, compression, atomic rename): the day's lines are never held whole, and what is
    held does not grow with the day.
    """
    if not parts:
        return lake.write(root, lake.RETAIL, day, BILL_LINE_SCHEMA.empty_table())
    target = lake.path(root, lake.RETAIL, day)
    con = duckdb.connect()
    try:
        spill_past(con, tmp, max(_SORT_MIN_MB, memory_mb // 8))
        con.execute("SET threads = 1")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = false")  # a total order
        reader = con.sql(
            f"SELECT * EXCLUDE (_slice, _row) FROM read_parquet([{_listing(parts)}], "
            f"hive_partitioning = false) ORDER BY {_LINE_ORDER}"
        ).to_arrow_reader(_BATCH)
        batches = (
            _to_schema(pa.Table.from_batches([b]), BILL_LINE_SCHEMA).to_batches()[0]
            for b in reader
            if b.num_rows
        )
        # combined: the file's bytes do not depend on how DuckDB cut its batches
        groups = row_groups(batches, BILL_LINE_SCHEMA, _group_rows(memory_mb))
        write_row_groups_atomic(
            groups, BILL_LINE_SCHEMA, target, compression=lake.RETAIL.compression
        )
    finally:
        con.close()
    return target


def _spent_before(root: Path, day: date) -> pa.Table:
    """The prepaid consumption carried into ``day``: the latest earlier balances file."""
    for d in sorted((d for d in lake.dates(root, lake.RETAIL_BALANCE) if d < day), reverse=True):
        found = lake.files(root, lake.RETAIL_BALANCE, [d])
        if found:
            return pq.read_table(found[0]).cast(lake.RETAIL_BALANCE_SCHEMA)
    return lake.RETAIL_BALANCE_SCHEMA.empty_table()


#: The balances after a day: ``before`` (registered) plus the prepaid ``lines`` by card.
_SPENT_AFTER_SQL = """
    SELECT imsi, CAST(coalesce(b.spent, 0) + coalesce(d.spent, 0) AS BIGINT) AS spent,
        coalesce(d.currency, b.currency) AS currency, coalesce(d.scale, b.scale) AS scale
    FROM before b
    FULL JOIN (
        SELECT imsi, sum(amount) AS spent, any_value(currency) AS currency,
            any_value(scale) AS scale
        FROM lines WHERE balance_after IS NOT NULL GROUP BY imsi
    ) d USING (imsi)
    ORDER BY imsi
"""

_SPENT_COLUMNS = ["imsi", "amount", "balance_after", "currency", "scale"]


def spent_after(before: pa.Table, lines: pa.Table) -> pa.Table:
    """The prepaid consumption after a day: ``before`` plus the day's prepaid lines, by card.

    A prepaid line is one with a ``balance_after``; every card of ``before`` is kept.
    """
    con = duckdb.connect()
    try:
        con.register("before", before)
        con.register("lines", lines.select(_SPENT_COLUMNS))
        return con.sql(_SPENT_AFTER_SQL).to_arrow_table().cast(lake.RETAIL_BALANCE_SCHEMA)
    finally:
        con.close()


def _spent_after_parts(before: pa.Table, parts: list[Path]) -> pa.Table:
    """:func:`spent_after` of the lines spooled as the Parquet ``parts`` (read by DuckDB)."""
    if not parts:
        return spent_after(before, BILL_LINE_SCHEMA.empty_table())
    con = duckdb.connect()
    try:
        con.register("before", before)
        con.execute(
            f"CREATE VIEW lines AS SELECT {', '.join(_SPENT_COLUMNS)} "
            f"FROM read_parquet([{_listing(parts)}], hive_partitioning = false)"
        )
        return con.sql(_SPENT_AFTER_SQL).to_arrow_table().cast(lake.RETAIL_BALANCE_SCHEMA)
    finally:
        con.close()


def _rate_carried(
    events: pa.Table, tables: RetailTables, clock: str, carried: tuple[pa.Table, pa.Table, pa.Table]
) -> RetailResult:
    """:func:`rate_retail` of ``events`` after the ``carried`` (opening, passes, spent) state."""
    opening, passes, spent = carried
    return rate_retail(
        events,
        tables.subscribers,
        tables.sub_numbers,
        tables.plans,
        tables.plans_tiers,
        cycle_of=clock,
        opening=opening,
        passes=passes,
        plan_defaults=tables.plan_defaults,
        topups=tables.topups,
        spent=spent,
    )


def _earliest(con: duckdb.DuckDBPyConnection, day: date) -> date:
    """The UTC day of the earliest event of ``today_all`` (``day`` if later)."""
    first = steps.first_row(con, "SELECT min(epoch_ms(start_utc)) // 86400000 FROM today_all")
    if first is None or first[0] is None:
        return day
    return min(day, date(1970, 1, 1) + timedelta(days=int(first[0])))


class CardRating(NamedTuple):
    """What :func:`rerate_card` returns: a card's events of a day, carried state, re-rating."""

    events: pa.Table
    opening: pa.Table
    passes: pa.Table
    result: RetailResult
    tables: RetailTables
    cycle_of: str


def rerate_card(workdir: Path, day: date, imsi: str) -> CardRating:
    """Rate again one card's accepted events of processing ``day``, as the stage did.

    The same carried state as :func:`write_retail` (the summaries and day passes of the
    processing dates before ``day``, the look-back from the earliest event of the whole day)
    and today's reference data of the work folder; nothing is written.

    Args:
        workdir: the work folder.
        day: the processing day.
        imsi: the card.

    Returns:
        ``CardRating(events, opening, passes, result, tables, cycle_of)``: the card's events
        (the columns rating reads), the carried summary rows and passes of the card, the
        re-rating, the reference tables and the billing clock used.

    Raises:
        ConfigError: no config, missing or bad retail tables, no events of ``day``.
    """
    wd = config.WorkDir(workdir)
    clock = wd.settings().home.timezone_offset
    tables = load_retail_tables(wd.rates)
    root = wd.lake
    con = duckdb.connect()
    try:
        if not _day_view(con, lake.files(root, lake.EVENTS_IN, [day])):
            msg = (
                f"no events of processing date {day} in the lake "
                f"(`{root / lake.EVENTS_IN.directory}`): archived or removed? restore the work "
                "folder from a backup (`clearing restore`) to re-rate them"
            )
            raise ConfigError(msg)
        earliest = _earliest(con, day)
        mine = con.sql("SELECT * FROM today_all WHERE imsi = $1", params=[imsi]).to_arrow_table()
        con.register("today_all", mine)
        opening, passes = _carried(con, root, day, earliest)
    finally:
        con.close()
    spent = _spent_before(root, day)
    result = _rate_carried(mine, tables, clock, (opening, passes, spent))
    return CardRating(mine, _opening(opening), _passes(passes), result, tables, clock)


def untimed(lines_path: Path, rates: Path) -> list[Untimed]:
    """Bill lines of our cards left unbilled because the event has no UTC start.

    A CIBER event has a local time only; validation gives it a UTC start from the partner's
    ``utc_offset`` or ``time_zones`` (:mod:`clearing.validate.ciber_clock`). Without either,
    rating cannot place it in a bill cycle (attribution ``none``): these are the lines of IMSIs
    in ``subscribers`` (any validity) so left out, per sender and service.

    Args:
        lines_path: a day's ``bill_lines.parquet`` (as :func:`write_retail` returns it).
        rates: the rates folder (its ``subscribers`` table says which cards are ours).

    Returns:
        ``Untimed(sender, service, events)`` rows, by sender and service; empty when none.
    """
    if not lines_path.is_file():
        return []
    subs = load_retail_tables(rates).subscribers
    con = duckdb.connect()
    try:
        con.register("subs", subs)
        rows = con.execute(
            """
            SELECT coalesce(sender, '?'), coalesce(service, 'other'), count(*)
            FROM read_parquet(?)
            WHERE attribution_rule = 'none' AND start_utc IS NULL
                AND imsi IN (SELECT CAST(imsi AS VARCHAR) FROM subs)
            GROUP BY ALL ORDER BY ALL
            """,
            [str(lines_path)],
        ).fetchall()
    finally:
        con.close()
    return [Untimed(str(a), str(b), int(c)) for a, b, c in rows]
