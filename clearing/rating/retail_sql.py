"""The steps of retail rating, as DuckDB SQL over registered Arrow tables (and one numpy step).

Internal to :mod:`clearing.rating.retail`, whose docstring states the rules. The caller registers
``events_in`` (the event columns rating reads, plus ``file`` and ``pos``, the row's position),
``subs``, ``nums_in``, ``plans`` and ``plans_tiers``; every step then creates temporary tables:

``nums``   sub-number rows with ``sid`` (row id) and ``chain`` (one per IMSI × MSISDN)
``ev``     events: ``eid`` (event-time order), ``pos``, ``t`` (epoch s), ``bdate`` (billing day),
           ``service``, duration and volume; the event's strings stay in Arrow
``att``    per attributed event (by ``pos``), the rule rank and the winning sub-number ``sid``
``accts``  accounts: a sub-number's plan in one bill cycle, with its anchor day
``pv``     plan versions in use (one per plan and anchor day)
``r``      rated events: account, plan version ``pvid``, counted ``units``, day-pass ``covered``
``dp``     day-pass window of each covered event
``bands``  allowance (band 0) and tiers of each plan version and service, as lists of bounds
``usage``  units per band and rounded amount of each non-covered event with units
``bal``    per line of a prepaid plan: its amount and the card's balance after it

The state carried from the days already billed (processing order, see
:func:`clearing.rating.retail.write_retail`) is registered as ``opening_in`` (summary rows: a
sub-number's cycle-to-date totals) and ``passes_in`` (``imsi, sub_number, pass_start``: day
passes already opened); :func:`load_state` turns them into

``open_units``  per account and service, the units already billed (their allowance and tiers
                are used up first)
``old_passes``  per ``chain``, the start (epoch s) of each pass already opened

and ``spent_in`` (``imsi, spent``: what the card's prepaid lines consumed so far) is read by
:func:`balances` with the registered ``topups`` (the cards' credit).

:func:`lines_sql` selects the bill lines; :func:`summary_sql` aggregates them (registered back
as ``lines``) and :func:`merged_summary_sql` adds the carried totals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from clearing.errors import ConfigError
from clearing.rating.retail_tables import SERVICES
from clearing.rating.validity import valid_on_sql

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "ALLOWANCE_COLUMN",
    "DAY_PASS_SECONDS",
    "ORDER_SQL",
    "UNITS",
    "attribute",
    "balances",
    "bands",
    "day_passes",
    "first_row",
    "lines_sql",
    "load_events",
    "load_numbers",
    "load_state",
    "merged_summary_sql",
    "prorated",
    "rate_rows",
    "service_sql",
    "summary_sql",
    "usage",
]

#: Length of a day pass window.
DAY_PASS_SECONDS = 24 * 3600

#: Native unit of each service, and how many of them one priced unit (minute, message, MB) is.
UNITS = {
    "voice_mo": ("second", 60),
    "voice_mt": ("second", 60),
    "sms_mo": ("message", 1),
    "sms_mt": ("message", 1),
    "data": ("byte", 1 << 20),
}
#: The ``plans`` column holding each service's allowance per cycle (in priced units).
ALLOWANCE_COLUMN = {
    "voice_mo": "allowance_voice_mo_min",
    "voice_mt": "allowance_voice_mt_min",
    "sms_mo": "allowance_sms_mo",
    "data": "allowance_data_mb",
}


def prorated(service: str, pv: str = "") -> str:
    """The SQL of a plan version's allowance of ``service`` in native units, prorated.

    ``floor(allowance × unit size × active_days / cycle_days)`` over the ``pv`` row (alias
    prefix ``pv``, e.g. ``"pv."``): a sub-number on the plan for part of a cycle gets that
    share, never more (see :mod:`clearing.rating.retail_plans`).
    """
    if service not in ALLOWANCE_COLUMN:
        return "0"
    size = UNITS[service][1]
    return (
        f"CAST({pv}{ALLOWANCE_COLUMN[service]} * {size} * {pv}active_days "
        f"// {pv}cycle_days AS BIGINT)"
    )


def service_sql(voice_mo: str = "voice_mo", voice_mt: str = "voice_mt") -> str:
    """The SQL of an ``events_in`` row's retail service.

    ``voice_mo`` and ``voice_mt`` may be given other names (e.g. one ``voice`` for both).
    """
    return f"""CASE
    WHEN event_kind = 'gprsCall' THEN 'data'
    WHEN event_kind = 'messagingEvent' THEN 'sms_mo'
    WHEN event_kind = 'mobileSession' THEN '{voice_mo}'
    WHEN event_kind = 'mobileOriginatedCall'
        THEN CASE WHEN tele_service_code = '22' THEN 'sms_mo' ELSE '{voice_mo}' END
    WHEN event_kind = 'mobileTerminatedCall'
        THEN CASE WHEN tele_service_code = '21' THEN 'sms_mt' ELSE '{voice_mt}' END
    ELSE 'other' END"""


_SERVICE = service_sql()


def first_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...] | None:
    """The first row of a query (the result is read whole, leaving the connection free)."""
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else None


def _billing_day(offset: int | None) -> str:
    """The billing day (a DATE) of an ``events_in`` row, on the billing clock."""
    if offset is None:  # the visited network's clock
        days = "coalesce(epoch_ms(local_start) // 1000, epoch_ms(start_utc) // 1000) // 86400"
    else:
        days = f"(epoch_ms(start_utc) // 1000 + {offset}) // 86400"
    return f"DATE '1970-01-01' + CAST({days} AS INTEGER)"


def load_numbers(con: duckdb.DuckDBPyConnection) -> None:
    """``nums`` from the registered ``nums_in``."""
    con.execute(
        """
        CREATE TEMP TABLE nums AS
        SELECT row_number() OVER (ORDER BY msisdn, valid_from) AS sid,
            dense_rank() OVER (ORDER BY imsi, msisdn) AS chain,
            dense_rank() OVER (ORDER BY imsi) AS card, *
        FROM nums_in
        """
    )


def load_events(con: duckdb.DuckDBPyConnection, offset: int | None) -> None:
    """``ev`` from ``events_in``: numbers only (strings stay in Arrow, found again by ``pos``).

    ``eid`` orders events by start time, then (events of the same second) by a hash of their
    identity (sender, file sequence number, event index, file): an order that does not depend
    on the input's.
    """
    con.execute(
        f"""
        CREATE TEMP TABLE ev AS
        SELECT
            row_number() OVER (ORDER BY t NULLS LAST,
                hash(sender, file_sequence_number, event_index, file)) - 1 AS eid,
            pos, t, bdate, service, duration, volume
        FROM (
            SELECT pos, sender, file_sequence_number, event_index, file,
                epoch_ms(start_utc) // 1000 AS t,
                {_billing_day(offset)} AS bdate,
                {_SERVICE} AS service,
                greatest(coalesce(duration, 0), 0) AS duration,
                greatest(coalesce(data_volume_incoming, 0), 0)
                    + greatest(coalesce(data_volume_outgoing, 0), 0) AS volume
            FROM events_in
        )
        """
    )


def attribute(con: duckdb.DuckDBPyConnection, offset: int | None, *, primary_decides: bool) -> None:
    """``att``: per attributed event (``pos``), the rule rank (1-4) and the sub-number ``sid``.

    Every pair (event, sub-number of its card valid that day) gets a rank; the smallest
    ``rank · 10¹² + (99 − selection code length) · 10⁹ + sid`` wins, so a longer selection
    code beats a shorter one, and ties go to the lower ``sid``.
    """
    decides = "TRUE" if primary_decides else "n.role <> 'primary'"
    con.execute(
        f"""
        CREATE TEMP TABLE att AS
        SELECT pos, key // 1000000000000 AS rank, key % 1000000000 AS sid
        FROM (
            SELECT e.pos, min(
                CASE
                    WHEN e.msisdn = n.msisdn AND {decides} THEN 1
                    WHEN n.selection_code IS NOT NULL
                         AND starts_with(e.dialled_digits, n.selection_code) THEN 2
                    WHEN e.event_kind = 'gprsCall' AND lower(e.apn_ni) = n.apn THEN 3
                    WHEN n.role = 'primary' THEN 4
                END * 1000000000000
                + (99 - coalesce(length(n.selection_code), 0)) * 1000000000
                + n.sid) AS key
            FROM events_in e
            JOIN nums n ON n.imsi = e.imsi AND {valid_on_sql("n", _billing_day(offset))}
            GROUP BY e.pos
        )
        WHERE key IS NOT NULL
        """
    )


def rate_rows(con: duckdb.DuckDBPyConnection) -> None:
    """``accts``, ``pv`` and ``r``: bill cycle, plan version, counted units, day-pass coverage.

    An account is a sub-number's plan in one bill cycle. It is rated with the plan version in
    force on its anchor day: the first day of the cycle on which a version of the sub-number has
    that plan (the cycle's first day, or the sub-number's when later).

    Raises:
        ConfigError: a plan has no version on an anchor day.
    """
    con.execute(
        f"""
        CREATE TEMP TABLE r0 AS
        SELECT e.eid, e.t, e.service, e.duration, e.volume, n.chain, n.card, n.plan_id,
            CASE WHEN day(e.bdate) >= s.bill_cycle_day
                THEN make_date(year(e.bdate), month(e.bdate), s.bill_cycle_day)
                ELSE make_date(year(e.bdate - INTERVAL 1 MONTH),
                               month(e.bdate - INTERVAL 1 MONTH), s.bill_cycle_day)
            END AS cycle_start
        FROM ev e
        JOIN att a USING (pos)
        JOIN nums n ON n.sid = a.sid
        -- a number whose card has no `subscribers` row that day is not attributed
        JOIN subs s ON s.imsi = n.imsi AND {valid_on_sql("s", "e.bdate")}
        """
    )
    # the anchor depends on the reference data only, never on which events there are
    con.execute(
        """
        CREATE TEMP TABLE accts AS
        SELECT row_number() OVER (ORDER BY k.chain, k.plan_id, k.cycle_start) AS acct,
            k.chain, k.plan_id, k.cycle_start, min(greatest(k.cycle_start, n.valid_from)) AS anchor,
            CAST(sum(least(coalesce(n.valid_to, k.cycle_end), k.cycle_end)
                     - greatest(n.valid_from, k.cycle_start)) AS BIGINT) AS active_days,
            CAST(any_value(k.cycle_end - k.cycle_start) AS BIGINT) AS cycle_days,
            arg_min(n.plan_level, n.valid_from) AS plan_level
        FROM (SELECT DISTINCT chain, plan_id, cycle_start,
                CAST(cycle_start + INTERVAL 1 MONTH AS DATE) AS cycle_end FROM r0) k
        JOIN nums n ON n.chain = k.chain AND n.plan_id = k.plan_id
            AND n.valid_from < k.cycle_end
            AND (n.valid_to IS NULL OR n.valid_to > k.cycle_start)
        GROUP BY k.chain, k.plan_id, k.cycle_start
        """
    )
    allowances = ", ".join(f"coalesce(p.{c}, 0) AS {c}" for c in ALLOWANCE_COLUMN.values())
    con.execute(
        f"""
        CREATE TEMP TABLE pv AS
        SELECT row_number() OVER (ORDER BY k.plan_id, k.anchor, k.active_days, k.cycle_days)
                AS pvid, k.plan_id, k.anchor, k.active_days, k.cycle_days,
            p.plan_id IS NOT NULL AS found, p.valid_from AS plan_version, p.currency, p.scale,
            coalesce(p.kind, 'postpaid') AS kind,
            p.voice_increment_s, p.data_increment_kb, p.day_pass_price,
            coalesce(p.day_pass_scope, 'sub_number') AS pass_scope,
            string_split(coalesce(p.day_pass_services, ''), ' ') AS pass_services,
            {allowances}
        FROM (SELECT DISTINCT plan_id, anchor, active_days, cycle_days FROM accts) k
        LEFT JOIN plans p ON p.plan_id = k.plan_id AND {valid_on_sql("p", "k.anchor")}
        """
    )
    row = first_row(con, "SELECT plan_id, anchor FROM pv WHERE NOT found ORDER BY ALL LIMIT 1")
    if row is not None:
        msg = (
            f"rates table `plans`: no version of plan `{row[0]}` is valid on {row[1]}, the "
            "first day of a bill cycle it rates; add one (or extend `valid_to`)"
        )
        raise ConfigError(msg)
    con.execute(
        """
        CREATE TEMP TABLE r AS
        SELECT eid, t, chain, acct, service, pvid, units,
            units > 0 AND pass_price IS NOT NULL AND list_contains(pass_services, service)
                AS covered,
            -- who shares a day pass: the sub-number, or (negative) the whole card
            CASE WHEN pass_scope = 'card' THEN -card ELSE chain END AS pkey
        FROM (
            SELECT r0.*, accts.acct, pv.pvid, pv.pass_services, pv.day_pass_price AS pass_price,
                pv.pass_scope,
                CASE
                    WHEN service IN ('voice_mo', 'voice_mt') THEN
                        (duration + voice_increment_s - 1) // voice_increment_s
                        * voice_increment_s
                    WHEN service IN ('sms_mo', 'sms_mt') THEN 1
                    WHEN service = 'data' THEN
                        (volume + data_increment_kb * 1024 - 1) // (data_increment_kb * 1024)
                        * (data_increment_kb * 1024)
                    ELSE 0
                END AS units
            FROM r0
            JOIN accts USING (chain, plan_id, cycle_start)
            JOIN pv USING (plan_id, anchor, active_days, cycle_days)
        );
        DROP TABLE r0;
        """
    )


def load_state(con: duckdb.DuckDBPyConnection) -> None:
    """``open_units`` and ``old_passes`` from the registered ``opening_in`` and ``passes_in``.

    A carried row counts only where it names a sub-number (IMSI and MSISDN) of the reference
    data, and (``open_units``) an account the day's events use.
    """
    services = [s for s in UNITS if s in SERVICES]
    names = ", ".join(f"'{s}'" for s in services)
    billed = ", ".join(f"{s}_allowance_units + {s}_overage_units" for s in services)
    con.execute(
        f"""
        CREATE TEMP TABLE open_units AS
        SELECT a.acct, o.service, sum(o.units) AS units
        FROM (
            SELECT imsi, sub_number, plan_id, cycle_start,
                unnest([{names}]) AS service, unnest([{billed}]) AS units
            FROM opening_in
        ) o
        JOIN (SELECT DISTINCT chain, imsi, msisdn FROM nums) n
            ON n.imsi = o.imsi AND n.msisdn = o.sub_number
        JOIN accts a ON a.chain = n.chain AND a.plan_id = o.plan_id
            AND a.cycle_start = o.cycle_start
        WHERE o.units <> 0
        GROUP BY a.acct, o.service;
        CREATE TEMP TABLE old_passes AS
        SELECT DISTINCT n.chain, n.card, epoch_ms(p.pass_start) // 1000 AS t
        FROM passes_in p
        JOIN (SELECT DISTINCT chain, card, imsi, msisdn FROM nums) n
            ON n.imsi = p.imsi AND n.msisdn = p.sub_number
        WHERE p.pass_start IS NOT NULL;
        """
    )


def _chained(chain: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Openers and window starts of covered events sorted by (chain, t), no pass before them.

    Windows are chained per sub-number: the first covered event opens one; ``nxt[i]`` is the
    first covered event at or after ``t[i] + 24 h``. Following ``nxt`` from every sub-number's
    first event at once visits exactly the openers: one numpy step per pass, none per event.
    """
    n = len(t)
    opener = np.zeros(n, dtype=bool)
    if not n:
        return opener, t
    # one sortable number per (sub-number, time): chains 2**34 s (544 years) apart
    key = chain * (np.int64(1) << np.int64(34)) + (t - t.min())
    nxt = np.searchsorted(key, key + DAY_PASS_SECONDS, side="left")
    cur = np.flatnonzero(np.r_[True, chain[1:] != chain[:-1]])
    while cur.size:
        opener[cur] = True
        step = nxt[cur]
        inside = step < n
        step, came_from = step[inside], cur[inside]
        cur = step[chain[step] == chain[came_from]]
    return opener, t[np.maximum.accumulate(np.where(opener, np.arange(n), 0))]


def day_passes(con: duckdb.DuckDBPyConnection) -> None:
    """``dp``: per covered event, the start of its day-pass window and whether it opened it.

    An event inside the window of a pass already opened (``old_passes``: on the days billed
    before, whatever the event's time) is covered by it, the latest such pass; the others are
    chained as if no pass were open (:func:`_chained`): a late event outside every open window
    opens a pass of its own.
    """
    tab = con.sql("SELECT eid, pkey, t FROM r WHERE covered ORDER BY pkey, t, eid")
    arrow = tab.to_arrow_table()
    eid = arrow.column("eid").to_numpy()
    chain = arrow.column("pkey").to_numpy().astype(np.int64)
    t = arrow.column("t").to_numpy().astype(np.int64)
    # a pass carried from an earlier day counts for its sub-number's key, or its card's
    old = con.sql(
        """
        SELECT DISTINCT k.pkey AS chain, o.t FROM old_passes o
        JOIN (SELECT DISTINCT pkey FROM r WHERE covered) k
            ON k.pkey = o.chain OR k.pkey = -o.card
        ORDER BY 1, 2
        """
    ).to_arrow_table()
    old_chain = old.column("chain").to_numpy().astype(np.int64)
    old_t = old.column("t").to_numpy().astype(np.int64)
    inside = np.zeros(len(t), dtype=bool)
    old_start = t
    if len(t) and len(old_t):
        base = min(int(t.min()), int(old_t.min()))
        shift = np.int64(1) << np.int64(34)
        old_key = old_chain * shift + (old_t - base)
        at = np.searchsorted(old_key, chain * shift + (t - base), side="right") - 1
        found = at >= 0
        at = np.maximum(at, 0)
        inside = found & (old_chain[at] == chain) & (t - old_t[at] < DAY_PASS_SECONDS)
        old_start = np.where(inside, old_t[at], t)
    opener = np.zeros(len(t), dtype=bool)
    start = old_start.copy()
    rest = ~inside
    opener[rest], start[rest] = _chained(chain[rest], t[rest])
    dp = pa.table(
        {
            "eid": pa.array(eid, pa.int64()),
            "pass_start": pa.array(start, pa.int64()),
            "opener": pa.array(opener),
        }
    )
    con.register("dp_arrow", dp)
    con.execute("CREATE TEMP TABLE dp AS SELECT * FROM dp_arrow")
    con.unregister("dp_arrow")


def bands(con: duckdb.DuckDBPyConnection) -> None:
    """``bands``: per plan version and service, the allowance (band 0) then the tiers (1…).

    ``lo``, ``hi`` and ``price`` are lists in band order; bounds ``[lo, hi)`` are cumulative
    native units in the cycle (``hi`` null: no end). ``tiered`` is false when the tiers do not
    start where the allowance ends (no tier from 0).
    """
    allow = " UNION ALL ".join(
        f"SELECT pvid, plan_id, anchor, '{s}' AS service, {size} AS size, "
        f"{prorated(s)} AS allow FROM pv"
        for s, (_, size) in UNITS.items()
    )
    con.execute(
        f"""
        CREATE TEMP TABLE bands AS
        WITH allow AS ({allow}),
        tiers AS (
            SELECT a.pvid, a.service, a.size, a.allow, t.from_units, t.price,
                lead(t.from_units) OVER w AS to_units, row_number() OVER w AS band
            FROM allow a
            JOIN plans_tiers t ON t.plan_id = a.plan_id AND t.service = a.service
                AND {valid_on_sql("t", "a.anchor")}
            WINDOW w AS (PARTITION BY a.pvid, a.service ORDER BY t.from_units)
        ),
        flat AS (
            SELECT pvid, service, 0 AS band, 0 AS lo, allow AS hi, 0 AS price, size, allow
            FROM allow
            UNION ALL
            SELECT pvid, service, band, allow + from_units * size AS lo,
                allow + to_units * size AS hi, price, size, allow
            FROM tiers
        )
        SELECT pvid, service, any_value(size) AS size,
            list(lo ORDER BY band) AS lo, list(hi ORDER BY band) AS hi,
            list(price ORDER BY band) AS price,
            bool_or(band = 1 AND lo = allow) AS tiered
        FROM flat GROUP BY pvid, service
        """
    )


def usage(con: duckdb.DuckDBPyConnection) -> None:
    """``usage``: per non-covered event with units, units per band and the rounded amount.

    A running sum per account and service, from the units already billed (``open_units``),
    gives each event its slice ``[after − units, after)`` of the cycle's usage; the slice is cut
    at every band's bounds.

    Raises:
        ConfigError: a service used in a cycle has no tier starting where its allowance ends.
    """
    con.execute(
        """
        CREATE TEMP TABLE cum AS
        SELECT r.eid, r.pvid, r.service, r.units,
            coalesce(o.units, 0) + sum(r.units) OVER (PARTITION BY r.acct, r.service
                ORDER BY r.eid ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS after
        FROM r
        LEFT JOIN open_units o USING (acct, service)
        WHERE NOT r.covered AND r.units > 0 AND r.service <> 'other'
        """
    )
    gap = first_row(
        con,
        """
        SELECT DISTINCT pv.plan_id, pv.anchor, c.service
        FROM (SELECT DISTINCT pvid, service FROM cum) c
        JOIN pv USING (pvid)
        LEFT JOIN bands b USING (pvid, service)
        WHERE NOT coalesce(b.tiered, FALSE)
        ORDER BY ALL LIMIT 1
        """,
    )
    if gap is not None:
        msg = (
            f"rates table `plans_tiers`: plan `{gap[0]}` has no tier from 0 for service "
            f"`{gap[2]}` valid on {gap[1]}, and a bill cycle uses it; add the tiers"
        )
        raise ConfigError(msg)
    con.execute(
        """
        CREATE TEMP TABLE usage AS
        SELECT eid, u[1] AS allowance_units, CAST(list_sum(u[2:]) AS BIGINT) AS overage_units,
            u[2:] AS tier_units,
            -- Σ units × price / size, rounded half up once (every term is >= 0)
            CAST((2 * list_sum(list_transform(u, lambda x, i: x * price[i])) + size)
                 // (2 * size) AS BIGINT) AS amount
        FROM (
            SELECT c.eid, b.size, b.price,
                list_transform(b.lo, lambda lo, i: greatest(0,
                    least(c.after, coalesce(b.hi[i], c.after))
                    - greatest(c.after - c.units, lo))) AS u
            FROM cum c JOIN bands b USING (pvid, service)
        );
        DROP TABLE cum;
        """
    )


def balances(con: duckdb.DuckDBPyConnection, offset: int | None) -> None:
    """``bal``: the prepaid lines, each with its amount and the card's balance after it.

    A card's balance at a line is its credit up to the event's time (``topups``: day and time on
    the billing clock; UTC with the ``local`` clock) minus what its prepaid lines consumed:
    those carried (``spent_in``) and the day's up to this line, in event order.

    Raises:
        ConfigError: a card's credit is in another currency than its prepaid plan.
    """
    shift = 0 if offset is None else offset
    con.execute(
        f"""
        CREATE TEMP TABLE credit AS
        SELECT imsi, t, any_value(currency) AS currency, count(DISTINCT currency) AS currencies,
            sum(sum(amount)) OVER (PARTITION BY imsi ORDER BY t) AS credit
        FROM (
            SELECT imsi, amount, currency,
                (day - DATE '1970-01-01') * 86400
                + CAST(split_part(time, ':', 1) AS BIGINT) * 3600
                + CAST(split_part(time, ':', 2) AS BIGINT) * 60
                + coalesce(TRY_CAST(nullif(split_part(time, ':', 3), '') AS BIGINT), 0)
                - {shift} AS t
            FROM topups
        )
        GROUP BY imsi, t;
        CREATE TEMP TABLE bal AS
        WITH p AS (
            SELECT r.eid, r.t, n.imsi, pv.currency,
                coalesce(u.amount, 0)
                    + CASE WHEN d.opener THEN pv.day_pass_price ELSE 0 END AS amount
            FROM r
            JOIN pv USING (pvid)
            JOIN (SELECT DISTINCT chain, imsi FROM nums) n USING (chain)
            LEFT JOIN usage u USING (eid)
            LEFT JOIN dp d USING (eid)
            WHERE pv.kind = 'prepaid'
        ), s AS (
            SELECT p.*, CAST(coalesce(o.spent, 0) + sum(p.amount) OVER (PARTITION BY p.imsi
                ORDER BY p.eid ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT)
                AS spent_after
            FROM p LEFT JOIN spent_in o USING (imsi)
        )
        SELECT s.eid, s.imsi, s.currency, s.amount,
            CAST(coalesce(c.credit, 0) - s.spent_after AS BIGINT) AS balance_after
        FROM s ASOF LEFT JOIN credit c ON c.imsi = s.imsi AND c.t <= s.t
        """
    )
    wrong = first_row(
        con,
        """
        SELECT c.imsi, string_agg(DISTINCT c.currency, ', '), any_value(b.currency)
        FROM credit c JOIN (SELECT DISTINCT imsi, currency FROM bal) b USING (imsi)
        WHERE c.currency <> b.currency OR c.currencies > 1
        GROUP BY c.imsi ORDER BY 1 LIMIT 1
        """,
    )
    if wrong is not None:
        msg = (
            f"rates table `topups`: card {wrong[0]} is credited in {wrong[1]}, and its prepaid "
            f"plan bills in {wrong[2]}; credit a card in its plan's currency"
        )
        raise ConfigError(msg)


def lines_sql() -> str:
    """The bill lines' rating columns, in no particular order (see :data:`ORDER_SQL`).

    Only numbers: the strings (sub-number, role, plan, currency) are looked up in Arrow by
    ``sid`` and ``pvid``. Unattributed events have null ``rank``, units and amounts.
    """
    unit = " ".join(f"WHEN '{s}' THEN '{u}'" for s, (u, _) in UNITS.items())
    pass_amount = "CASE WHEN d.opener THEN pv.day_pass_price ELSE 0 END"
    rated = {
        "rank": "a.rank",
        "sid": "a.sid",
        "allowance_units": "CASE WHEN r.covered THEN 0 ELSE coalesce(u.allowance_units, 0) END",
        "overage_units": "coalesce(u.overage_units, 0)",
        "tier_units": "coalesce(u.tier_units, [])",
        "day_pass_units": "CASE WHEN r.covered THEN r.units ELSE 0 END",
        "day_pass_charged": "coalesce(d.opener, FALSE)",
        "usage_amount": "coalesce(u.amount, 0)",
        "day_pass_amount": pass_amount,
        "amount": f"coalesce(u.amount, 0) + {pass_amount}",
        "balance_after": "b.balance_after",
        # the part of the line's amount beyond the balance left before it
        "over_balance_amount": (
            "b.amount - least(greatest(b.balance_after + b.amount, 0), b.amount)"
        ),
        "over_balance": (
            "coalesce(b.amount - least(greatest(b.balance_after + b.amount, 0), b.amount) > 0,"
            " FALSE)"
        ),
    }
    only_rated = ",\n    ".join(
        f"CASE WHEN r.eid IS NULL THEN NULL ELSE {expr} END AS {name}"
        for name, expr in rated.items()
    )
    return f"""
SELECT
    e.eid, e.pos, r.acct, r.pvid, accts.cycle_start, e.service, CASE e.service {unit} END AS unit,
    r.units, d.pass_start AS day_pass_start,
    {only_rated}
FROM ev e
LEFT JOIN r USING (eid)
LEFT JOIN att a ON a.pos = e.pos AND r.eid IS NOT NULL
LEFT JOIN accts USING (acct)
LEFT JOIN usage u USING (eid)
LEFT JOIN dp d USING (eid)
LEFT JOIN pv ON pv.pvid = r.pvid
LEFT JOIN bal b USING (eid)
"""


#: The bill-line order: ``eid`` by sub-number then event time, unattributed last (sorting this
#: narrow table and permuting the lines in Arrow is much cheaper than sorting the lines).
ORDER_SQL = "SELECT e.eid FROM ev e LEFT JOIN r USING (eid) ORDER BY r.chain NULLS LAST, e.eid"


_SUMMARY = """
WITH per_acct AS (
    SELECT acct, count(*) AS events,
        {per_service},
        count(*) FILTER (WHERE day_pass_charged) AS day_passes,
        count(*) FILTER (WHERE over_balance) AS over_balance_events,
        CAST(coalesce(sum(over_balance_amount), 0) AS BIGINT) AS over_balance_amount,
        CAST(sum(day_pass_amount) AS BIGINT) AS day_pass_amount,
        CAST(sum(usage_amount) AS BIGINT) AS usage_amount,
        CAST(sum(amount) AS BIGINT) AS amount
    FROM lines WHERE acct IS NOT NULL GROUP BY acct
),
numbers AS (
    SELECT chain, any_value(imsi) AS imsi, any_value(msisdn) AS msisdn,
        arg_max(role, valid_from) AS role
    FROM nums GROUP BY chain
)
SELECT n.imsi, n.msisdn AS sub_number, n.role, a.plan_id, pv.plan_version, a.plan_level,
    a.cycle_start,
    CAST(a.cycle_start + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE) AS cycle_last_day,
    l.events,
    {allowance_left},
    l.* EXCLUDE (acct, events),
    pv.currency, pv.scale
FROM per_acct l
JOIN accts a USING (acct)
JOIN numbers n USING (chain)
JOIN pv USING (plan_id, anchor, active_days, cycle_days)
ORDER BY n.imsi, n.msisdn, a.cycle_start, a.plan_id
"""


def summary_sql() -> str:
    """The query of the summary (over the registered ``lines``): one row per account."""
    parts = []
    left = []
    for s in SERVICES:
        f = f"FILTER (WHERE service = '{s}')"
        parts += [
            f"CAST(coalesce(sum(units) {f}, 0) AS BIGINT) AS {s}_units",
            f"CAST(coalesce(sum(allowance_units) {f}, 0) AS BIGINT) AS {s}_allowance_units",
            f"CAST(coalesce(sum(overage_units) {f}, 0) AS BIGINT) AS {s}_overage_units",
            f"CAST(coalesce(sum(usage_amount) {f}, 0) AS BIGINT) AS {s}_amount",
        ]
        allowance = prorated(s, "pv.")
        left.append(f"{allowance} - l.{s}_allowance_units AS {s}_allowance_left")
    return _SUMMARY.format(
        per_service=",\n        ".join(parts), allowance_left=",\n    ".join(left)
    )


def merged_summary_sql(columns: list[str]) -> str:
    """The summary (``columns`` in order) of the registered ``today`` plus ``opening_in``.

    ``today`` holds the day's summary rows; each adds the carried row of its sub-number, plan
    and cycle, if any: counts, units and amounts add up, the allowance left is the day's minus
    the allowance the carried row used. Strings and bounds are the day's.
    """
    keys = {"imsi", "sub_number", "role", "plan_id", "cycle_start", "cycle_last_day"}
    keys |= {"plan_version", "plan_level"}
    keys |= {"currency", "scale"}
    out = []
    for c in columns:
        if c in keys:
            out.append(f"s.{c}")
        elif c.endswith("_allowance_left"):
            used = c.removesuffix("_left") + "_units"
            out.append(f"s.{c} - coalesce(o.{used}, 0) AS {c}")
        else:
            out.append(f"s.{c} + coalesce(o.{c}, 0) AS {c}")
    cols = ",\n    ".join(out)
    return f"""
SELECT {cols}
FROM today s
LEFT JOIN opening_in o USING (imsi, sub_number, plan_id, cycle_start)
ORDER BY s.imsi, s.sub_number, s.cycle_start, s.plan_id
"""
