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
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, NamedTuple

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing import config, lake
from clearing.errors import ConfigError, ValueRangeError
from clearing.rating import retail_sql as steps
from clearing.rating.retail_sql import DAY_PASS_SECONDS
from clearing.rating.retail_tables import RetailTables, load_retail_tables, prepare_tables

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.rating.retail_tables import TableLike

__all__ = [
    "BILL_LINE_SCHEMA",
    "DAY_PASS_SECONDS",
    "LOOKBACK_DAYS",
    "ROW_BYTES",
    "RULES",
    "SUMMARY_SCHEMA",
    "RetailResult",
    "rate_retail",
    "slices_for",
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

    Returns:
        ``RetailResult(bill_lines, summary)``: :data:`BILL_LINE_SCHEMA` (one row per event,
        by sub-number (IMSI, MSISDN) then event time, unattributed events last) and
        :data:`SUMMARY_SCHEMA` (one row per sub-number, plan and bill cycle, by IMSI,
        sub-number, cycle). Same inputs in any row order → equal tables.

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
) -> RetailResult:
    offset = _offset_seconds(cycle_of)
    ref = prepare_tables(subscribers, sub_numbers, plans, plans_tiers)
    ev = _events_arrow(events, local=offset is None)
    con = duckdb.connect()
    try:
        con.register("events_in", ev)
        con.register("subs", ref.subscribers)
        con.register("nums_in", ref.sub_numbers)
        con.register("plans", ref.plans)
        con.register("plans_tiers", ref.plans_tiers)
        steps.load_numbers(con)
        steps.load_events(con, offset)
        steps.attribute(con, offset, primary_decides=primary_msisdn_decides)
        steps.rate_rows(con)
        steps.day_passes(con)
        steps.bands(con)
        steps.usage(con)
        rated = con.sql(steps.lines_sql()).to_arrow_table()
        order = con.sql(steps.ORDER_SQL).to_arrow_table().column("eid").to_numpy()
        con.register("lines", rated)
        summary = _to_schema(con.sql(steps.summary_sql()).to_arrow_table(), SUMMARY_SCHEMA)
        numbers = con.sql("SELECT imsi, msisdn, role, plan_id FROM nums ORDER BY sid")
        versions = con.sql("SELECT currency, scale FROM pv ORDER BY pvid")
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

#: How far before the earliest event of a day the lake is read, so that the bill cycles of the
#: day's events are rated whole (a cycle is at most 31 days; 2 days for time zones).
LOOKBACK_DAYS = 33


def _event_files(root: Path, first: date, last: date) -> list[Path]:
    """The ``events_in`` files of the processing dates ``first`` to ``last`` (inclusive).

    Only those dates' folders are looked at: the cost does not grow with the lake's history.
    """
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    return lake.files(root, lake.EVENTS_IN, days)


def _read_events(
    con: duckdb.DuckDBPyConnection, paths: list[Path], *, cards_of: str | None = None
) -> pa.Table | None:
    """The accepted events of ``events_in`` files (the columns rating reads), or None if no file.

    ``cards_of``: a registered table; only events of its IMSIs are read.
    """
    files = sorted(str(f) for f in paths)
    if not files:
        return None
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    cols = ", ".join([*_EVENT_COLUMNS, "local_start", "file"])
    cards = f" AND imsi IN (SELECT imsi FROM {cards_of})" if cards_of else ""
    rel = con.sql(
        f"SELECT {cols} FROM read_parquet([{listing}], union_by_name = true, "
        f"hive_partitioning = false) WHERE status = 'accepted'{cards}"
    )
    return rel.to_arrow_table()


#: Bytes of peak memory one event of the cycle adds to a night (its columns, the rating's
#: working tables, the bill line): measured over 12 nights of 200 000 records (100 000 events
#: a day), about 560.
ROW_BYTES = 600


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
    the retail tables of ``<workdir>/rates`` (imported Parquet, else CSV sources). To rate
    allowances and tiers over whole bill cycles, the same cards' accepted events of the
    partitions from ``LOOKBACK_DAYS`` before the day's earliest event up to ``day`` are rated
    with them (never later partitions: a re-run of a day gives the same bytes).

    The cycle-to-date usage grows through a bill cycle, so the cards are rated in slices
    (:func:`slices_for`: the day's and the look-back's rows against the ``[performance]
    memory_mb`` budget): a card's events are all in one slice, a slice is rated whole, and the
    memory is that of a slice. Slices change only the order of the lines of events without a
    sub-number (by start, then slice), never a figure.

    Writes ``<workdir>/lake/retail/date=<day>/bill_lines.parquet`` (the day's events only) and
    ``summary.parquet`` (the cycle-to-date totals of the sub-numbers and cycles those events
    touch). A late event is rated in event-time order within its cycle; bill lines written on
    earlier days are not rewritten, so the summary, not the sum of daily bill lines, is the
    cycle's bill.

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
    con = duckdb.connect()
    try:
        todays = _read_events(con, lake.files(wd.lake, lake.EVENTS_IN, [day]))
        if todays is None or todays.num_rows == 0:
            lines, summary = BILL_LINE_SCHEMA.empty_table(), SUMMARY_SCHEMA.empty_table()
        else:
            con.register("today_all", todays)
            first = steps.first_row(
                con, "SELECT min(epoch_ms(start_utc)) // 86400000 FROM today_all"
            )
            earliest = day
            if first is not None and first[0] is not None:
                earliest = min(day, date(1970, 1, 1) + timedelta(days=int(first[0])))
            lo = earliest - timedelta(days=LOOKBACK_DAYS)
            # only the lookback's partitions: lo <= date < day
            older = _event_files(wd.lake, lo, day - timedelta(days=1))
            rows = todays.num_rows + _rows(older)
            n = slices_for(rows, memory_mb)
            parts = [
                _rate_slice(con, todays, older, tables, clock=cycle_of, slice_=(k, n))
                for k in range(n)
            ]
            lines, summary = _joined(parts)
    finally:
        con.close()
    return (
        lake.write(wd.lake, lake.RETAIL, day, lines),
        lake.write(wd.lake, lake.RETAIL_SUMMARY, day, summary),
    )


def _rows(files: list[Path]) -> int:
    """Rows of the Parquet ``files`` by their footers (one unreadable: the read names it)."""
    n = 0
    for f in files:
        with contextlib.suppress(OSError, pa.ArrowInvalid):
            n += pq.ParquetFile(f).metadata.num_rows
    return n


def _rate_slice(
    con: duckdb.DuckDBPyConnection,
    todays: pa.Table,
    older: list[Path],
    tables: RetailTables,
    *,
    clock: str,
    slice_: tuple[int, int],
) -> tuple[pa.Table, pa.Table]:
    """The day's bill lines and summary rows of the cards of slice ``k`` of ``n``."""
    k, n = slice_
    if n == 1:
        mine = todays
    else:
        con.register("today_all", todays)
        mine = con.sql(f"SELECT * FROM today_all WHERE hash(imsi) % {n} = {k}").to_arrow_table()
    if mine.num_rows == 0:
        return BILL_LINE_SCHEMA.empty_table(), SUMMARY_SCHEMA.empty_table()
    con.register("today", mine)
    before = _read_events(con, older, cards_of="today")
    events = mine
    if before is not None:
        events = pa.concat_tables([before, mine], promote_options="permissive")
    del before
    result = rate_retail(
        events,
        tables.subscribers,
        tables.sub_numbers,
        tables.plans,
        tables.plans_tiers,
        cycle_of=clock,
    )
    del events
    lines = result.bill_lines
    if lines.num_rows != mine.num_rows or lines.column("file").null_count:
        # the day's files only (a null file is no file of the day)
        files = pc.unique(mine.column("file"))
        lines = lines.filter(pc.is_in(lines["file"], files))
    con.register("all_summary", result.summary)
    con.register("lines", lines)
    summary = con.sql(
        """
        SELECT s.* FROM all_summary s
        SEMI JOIN (SELECT DISTINCT imsi, sub_number, plan_id, cycle_start FROM lines) k
            USING (imsi, sub_number, plan_id, cycle_start)
        ORDER BY s.imsi, s.sub_number, s.cycle_start, s.plan_id
        """
    ).to_arrow_table()
    for name in ("all_summary", "lines", "today"):
        con.unregister(name)
    return lines, summary.cast(SUMMARY_SCHEMA)


def _joined(parts: list[tuple[pa.Table, pa.Table]]) -> tuple[pa.Table, pa.Table]:
    """The slices' lines and summaries as one day's, in :func:`rate_retail`'s order.

    Lines: by sub-number (IMSI, MSISDN) — a card is in one slice, so a stable sort keeps each
    sub-number's event-time order — then the lines without a sub-number, by start.
    """
    if len(parts) == 1:
        return parts[0]
    lines = pa.concat_tables([p[0] for p in parts]).combine_chunks()
    none = pc.equal(lines.column("attribution_rule"), "none")
    keys = pa.table(
        {
            "none": none,
            "imsi": pc.if_else(none, pa.scalar(None, pa.string()), lines.column("imsi")),
            "sub": pc.if_else(none, pa.scalar(None, pa.string()), lines.column("sub_number")),
            "start": pc.if_else(
                none,
                lines.column("start_utc"),
                pa.scalar(None, lines.schema.field("start_utc").type),
            ),
        }
    )
    order = pc.sort_indices(
        keys, sort_keys=[(c, "ascending", "at_end") for c in ("none", "imsi", "sub", "start")]
    )
    summary = pa.concat_tables([p[1] for p in parts]).sort_by(
        [(c, "ascending") for c in ("imsi", "sub_number", "cycle_start", "plan_id")]
    )
    return lines.take(order).combine_chunks(), summary.combine_chunks()


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
