"""The steps of retail rating, as DuckDB SQL over registered Arrow tables (and one numpy step).

Internal to :mod:`clearing.rating.retail`, whose docstring states the rules. Every step creates
temporary tables in the connection it is given:

``nums``   sub-number rows with ``sid`` (row id) and ``chain`` (one per IMSI × MSISDN)
``ev``     events with ``eid`` (event-time order), ``t`` (epoch s), ``bdate`` (billing day)
``att``    the winning sub-number row and rule rank of each attributed event
``r``      rated events: cycle, plan version ``pvid``, counted ``units``, day-pass ``covered``
``pv``     plan versions in use (one per plan and anchor day)
``dp``     day-pass window of each covered event
``bands``  allowance (band 0) and tiers of each plan version and service, in native units
``usage``  units per band and rounded amount of each non-covered event
``lines``  the bill lines; :func:`summary_sql` aggregates them
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from clearing.errors import ConfigError
from clearing.rating.retail_tables import SERVICES

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "ALLOWANCE_COLUMN",
    "DAY_PASS_SECONDS",
    "UNITS",
    "attribute",
    "bands",
    "day_passes",
    "first_row",
    "lines",
    "load_events",
    "load_numbers",
    "rate_rows",
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

_SERVICE = """CASE
    WHEN event_kind = 'gprsCall' THEN 'data'
    WHEN event_kind = 'messagingEvent' THEN 'sms_mo'
    WHEN event_kind = 'mobileSession' THEN 'voice_mo'
    WHEN event_kind = 'mobileOriginatedCall'
        THEN CASE WHEN tele_service_code = '22' THEN 'sms_mo' ELSE 'voice_mo' END
    WHEN event_kind = 'mobileTerminatedCall'
        THEN CASE WHEN tele_service_code = '21' THEN 'sms_mt' ELSE 'voice_mt' END
    ELSE 'other' END"""


def first_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...] | None:
    """The first row of a query (the result is read whole, leaving the connection free)."""
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else None


def _valid(alias: str, day: str) -> str:
    """``day`` within the validity of the row ``alias`` (``valid_to`` exclusive, null = open)."""
    return f"{day} >= {alias}.valid_from AND ({alias}.valid_to IS NULL OR {day} < {alias}.valid_to)"


def load_numbers(con: duckdb.DuckDBPyConnection) -> None:
    """``nums`` from the registered ``nums_in``."""
    con.execute(
        """
        CREATE TEMP TABLE nums AS
        SELECT row_number() OVER (ORDER BY msisdn, valid_from) AS sid,
            dense_rank() OVER (ORDER BY imsi, msisdn) AS chain, *
        FROM nums_in
        """
    )


def load_events(con: duckdb.DuckDBPyConnection, offset: int | None) -> None:
    """``ev`` from the registered ``events_in`` (with ``file``, maybe null, and ``pos``).

    Only what rating needs is copied; the event's other columns stay in Arrow and are taken
    back by ``pos`` (the row's position in ``events_in``).

    ``eid`` orders events by start time, then (events of the same second) by a hash of the
    event's identity and content: an order that does not depend on the input's.
    """
    if offset is None:  # the visited network's clock
        day = "coalesce(epoch_ms(local_start) // 1000, t) // 86400"
    else:
        day = f"(t + {offset}) // 86400"
    con.execute(
        f"""
        CREATE TEMP TABLE ev AS
        WITH src AS (SELECT *, epoch_ms(start_utc) // 1000 AS t FROM events_in)
        SELECT
            row_number() OVER (ORDER BY t NULLS LAST,
                hash(sender, file_sequence_number, event_index, file, imsi, event_kind, msisdn,
                     dialled_digits, apn_ni, tele_service_code, duration, data_volume_incoming,
                     data_volume_outgoing)) - 1 AS eid,
            pos, t,
            DATE '1970-01-01' + CAST({day} AS INTEGER) AS bdate,
            imsi, msisdn, dialled_digits, lower(apn_ni) AS apn,
            {_SERVICE} AS service,
            greatest(coalesce(duration, 0), 0) AS duration,
            greatest(coalesce(data_volume_incoming, 0), 0)
                + greatest(coalesce(data_volume_outgoing, 0), 0) AS volume
        FROM src
        """
    )


def attribute(con: duckdb.DuckDBPyConnection, *, primary_decides: bool) -> None:
    """``att``: per attributed event, the rule rank (1-4) and the sub-number row ``sid``.

    Every pair (event, sub-number of its card valid that day) gets a rank; the smallest
    ``rank · 10¹² + (99 − selection code length) · 10⁹ + sid`` wins, so a longer selection
    code beats a shorter one, and ties go to the lower ``sid``.
    """
    decides = "TRUE" if primary_decides else "n.role <> 'primary'"
    con.execute(
        f"""
        CREATE TEMP TABLE att AS
        SELECT eid, key // 1000000000000 AS rank, key % 1000000000 AS sid
        FROM (
            SELECT e.eid, min(
                CASE
                    WHEN e.msisdn = n.msisdn AND {decides} THEN 1
                    WHEN n.selection_code IS NOT NULL
                         AND starts_with(e.dialled_digits, n.selection_code) THEN 2
                    WHEN e.service = 'data' AND e.apn = n.apn THEN 3
                    WHEN n.role = 'primary' THEN 4
                END * 1000000000000
                + (99 - coalesce(length(n.selection_code), 0)) * 1000000000
                + n.sid) AS key
            FROM ev e
            JOIN nums n ON n.imsi = e.imsi AND {_valid("n", "e.bdate")}
            GROUP BY e.eid
        )
        WHERE key IS NOT NULL
        """
    )


def rate_rows(con: duckdb.DuckDBPyConnection) -> None:
    """``pv`` and ``r``: bill cycle, plan version, counted units and day-pass coverage.

    An account is a sub-number's plan in one bill cycle; it is rated with the plan version in
    force on its anchor day: the cycle's first day, or the sub-number's first day when later.

    Raises:
        ConfigError: a plan has no version on an anchor day.
    """
    con.execute(
        f"""
        CREATE TEMP TABLE r0 AS
        SELECT e.eid, e.t, e.service, e.duration, e.volume, n.chain, n.plan_id,
            CASE WHEN day(e.bdate) >= s.bill_cycle_day
                THEN make_date(year(e.bdate), month(e.bdate), s.bill_cycle_day)
                ELSE make_date(year(e.bdate - INTERVAL 1 MONTH),
                               month(e.bdate - INTERVAL 1 MONTH), s.bill_cycle_day)
            END AS cycle_start
        FROM ev e
        JOIN att a USING (eid)
        JOIN nums n ON n.sid = a.sid
        -- a number whose card has no `subscribers` row that day is not attributed
        JOIN subs s ON s.imsi = e.imsi AND {_valid("s", "e.bdate")}
        """
    )
    # the anchor depends on the reference data only: the earliest day in the cycle on which
    # a version of the number has this plan
    con.execute(
        """
        CREATE TEMP TABLE accts AS
        SELECT k.chain, k.plan_id, k.cycle_start,
            min(greatest(k.cycle_start, n.valid_from)) AS anchor
        FROM (SELECT DISTINCT chain, plan_id, cycle_start FROM r0) k
        JOIN nums n ON n.chain = k.chain AND n.plan_id = k.plan_id
            AND n.valid_from < CAST(k.cycle_start + INTERVAL 1 MONTH AS DATE)
            AND (n.valid_to IS NULL OR n.valid_to > k.cycle_start)
        GROUP BY ALL
        """
    )
    allowances = ", ".join(f"coalesce(p.{c}, 0) AS {c}" for c in ALLOWANCE_COLUMN.values())
    con.execute(
        f"""
        CREATE TEMP TABLE pv AS
        SELECT row_number() OVER (ORDER BY k.plan_id, k.anchor) AS pvid, k.plan_id, k.anchor,
            p.plan_id IS NOT NULL AS found, p.currency, p.scale,
            p.voice_increment_s, p.data_increment_kb, p.day_pass_price,
            string_split(coalesce(p.day_pass_services, ''), ' ') AS pass_services,
            {allowances}
        FROM (SELECT DISTINCT plan_id, anchor FROM accts) k
        LEFT JOIN plans p ON p.plan_id = k.plan_id AND {_valid("p", "k.anchor")}
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
        SELECT eid, t, chain, plan_id, cycle_start, service, pvid, units,
            units > 0 AND pass_price IS NOT NULL AND list_contains(pass_services, service)
                AS covered
        FROM (
            SELECT r0.*, pv.pvid, pv.pass_services, pv.day_pass_price AS pass_price,
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
            JOIN pv USING (plan_id, anchor)
        );
        DROP TABLE r0;
        """
    )


def day_passes(con: duckdb.DuckDBPyConnection) -> None:
    """``dp``: per covered event, the start of its day-pass window and whether it opened it.

    Windows are chained per sub-number: the first covered event opens one; ``nxt[i]`` is the
    first covered event at or after ``t[i] + 24 h``. Following ``nxt`` from every sub-number's
    first event at once visits exactly the openers: one numpy step per pass, none per event.
    """
    tab = con.sql("SELECT eid, chain, t FROM r WHERE covered ORDER BY chain, t, eid")
    arrow = tab.to_arrow_table()
    eid = arrow.column("eid").to_numpy()
    chain = arrow.column("chain").to_numpy().astype(np.int64)
    t = arrow.column("t").to_numpy().astype(np.int64)
    n = len(t)
    opener = np.zeros(n, dtype=bool)
    start = t
    if n:
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
        start = t[np.maximum.accumulate(np.where(opener, np.arange(n), 0))]
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

    Bounds ``[lo, hi)`` are cumulative native units in the cycle (``hi`` null: no end).
    """
    allow = " UNION ALL ".join(
        f"SELECT pvid, plan_id, anchor, '{s}' AS service, {size} AS size, "
        f"{ALLOWANCE_COLUMN.get(s, '0')} * {size} AS allow FROM pv"
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
                AND {_valid("t", "a.anchor")}
            WINDOW w AS (PARTITION BY a.pvid, a.service ORDER BY t.from_units)
        )
        SELECT pvid, service, 0 AS band, 0 AS lo, allow AS hi, 0 AS price, size, allow
        FROM allow
        UNION ALL
        SELECT pvid, service, band, allow + from_units * size AS lo,
            allow + to_units * size AS hi, price, size, allow
        FROM tiers
        """
    )


def usage(con: duckdb.DuckDBPyConnection) -> None:
    """``usage``: per non-covered event with units, units per band and the rounded amount.

    Raises:
        ConfigError: a service used in a cycle has no tier starting where its allowance ends.
    """
    con.execute(
        """
        CREATE TEMP TABLE cum AS
        SELECT eid, pvid, service, units,
            sum(units) OVER (PARTITION BY chain, plan_id, cycle_start, service ORDER BY eid
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS after
        FROM r
        WHERE NOT covered AND units > 0 AND service <> 'other'
        """
    )
    gap = first_row(
        con,
        """
        SELECT DISTINCT pv.plan_id, pv.anchor, c.service
        FROM (SELECT DISTINCT pvid, service FROM cum) c
        JOIN pv USING (pvid)
        ANTI JOIN (SELECT pvid, service FROM bands WHERE band = 1 AND lo = allow) b
            USING (pvid, service)
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
        SELECT eid,
            CAST(sum(u) FILTER (WHERE band = 0) AS BIGINT) AS allowance_units,
            CAST(coalesce(sum(u) FILTER (WHERE band > 0), 0) AS BIGINT) AS overage_units,
            coalesce(list(u ORDER BY band) FILTER (WHERE band > 0), []) AS tier_units,
            -- Σ units × price / size, rounded half up once (every term is >= 0)
            CAST((2 * sum(u * price) + any_value(size)) // (2 * any_value(size)) AS BIGINT)
                AS amount
        FROM (
            SELECT c.eid, b.band, b.price, b.size,
                greatest(0, least(c.after, coalesce(b.hi, c.after))
                            - greatest(c.after - c.units, b.lo)) AS u
            FROM cum c JOIN bands b USING (pvid, service)
        )
        GROUP BY eid;
        DROP TABLE cum;
        """
    )


def lines(con: duckdb.DuckDBPyConnection) -> None:
    """``lines``: the rating columns of the bill lines, ``ord`` = sub-number then event time.

    Unattributed events come last, with rule ``none`` and null units and amounts.
    """
    unit = " ".join(f"WHEN '{s}' THEN '{u}'" for s, (u, _) in UNITS.items())
    pass_amount = "CASE WHEN d.opener THEN pv.day_pass_price ELSE 0 END"
    rated = {
        "imsi": "n.imsi",
        "sub_number": "n.msisdn",
        "role": "n.role",
        "units": "r.units",
        "allowance_units": "CASE WHEN r.covered THEN 0 ELSE coalesce(u.allowance_units, 0) END",
        "overage_units": "coalesce(u.overage_units, 0)",
        "tier_units": "coalesce(u.tier_units, [])",
        "day_pass_units": "CASE WHEN r.covered THEN r.units ELSE 0 END",
        "day_pass_charged": "coalesce(d.opener, FALSE)",
        "usage_amount": "coalesce(u.amount, 0)",
        "day_pass_amount": pass_amount,
        "amount": f"coalesce(u.amount, 0) + {pass_amount}",
    }
    only_rated = ",\n            ".join(
        f"CASE WHEN r.eid IS NULL THEN NULL ELSE {expr} END AS {name}"
        for name, expr in rated.items()
    )
    con.execute(
        """
        CREATE TEMP TABLE ord AS
        SELECT e.eid, row_number() OVER (ORDER BY r.chain NULLS LAST, e.eid) AS ord
        FROM ev e LEFT JOIN r USING (eid)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE lines AS
        SELECT
            o.ord, e.pos, r.pvid,
            CASE WHEN r.eid IS NULL THEN 'none' WHEN a.rank = 1 THEN 'msisdn'
                WHEN a.rank = 2 THEN 'selection_code' WHEN a.rank = 3 THEN 'apn'
                ELSE 'primary' END AS attribution_rule,
            r.plan_id, r.cycle_start, e.service, CASE e.service {unit} END AS unit,
            d.pass_start AS day_pass_start, pv.currency, pv.scale,
            {only_rated}
        FROM ev e
        JOIN ord o USING (eid)
        LEFT JOIN att a USING (eid)
        LEFT JOIN nums n ON n.sid = a.sid
        LEFT JOIN r USING (eid)
        LEFT JOIN usage u USING (eid)
        LEFT JOIN dp d USING (eid)
        LEFT JOIN pv ON pv.pvid = r.pvid
        """
    )


_SUMMARY = """
SELECT
    l.imsi, l.sub_number, any_value(l.role) AS role, l.plan_id, l.cycle_start,
    CAST(l.cycle_start + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE) AS cycle_last_day,
    count(*) AS events,
    {per_service},
    count(*) FILTER (WHERE l.day_pass_charged) AS day_passes,
    CAST(sum(l.day_pass_amount) AS BIGINT) AS day_pass_amount,
    CAST(sum(l.usage_amount) AS BIGINT) AS usage_amount,
    CAST(sum(l.amount) AS BIGINT) AS amount,
    any_value(l.currency) AS currency, any_value(l.scale) AS scale
FROM lines l
JOIN pv USING (pvid)
WHERE l.attribution_rule <> 'none'
GROUP BY l.imsi, l.sub_number, l.plan_id, l.cycle_start
ORDER BY l.imsi, l.sub_number, l.cycle_start, l.plan_id
"""


def summary_sql() -> str:
    """The query of the summary: one row per sub-number, plan and bill cycle."""
    parts = []
    for s in SERVICES:
        f = f"FILTER (WHERE l.service = '{s}')"
        allowance = (
            f"any_value(pv.{ALLOWANCE_COLUMN[s]}) * {UNITS[s][1]}" if s in ALLOWANCE_COLUMN else "0"
        )
        used = f"coalesce(sum(l.allowance_units) {f}, 0)"
        parts += [
            f"CAST(coalesce(sum(l.units) {f}, 0) AS BIGINT) AS {s}_units",
            f"CAST({used} AS BIGINT) AS {s}_allowance_units",
            f"CAST({allowance} - {used} AS BIGINT) AS {s}_allowance_left",
            f"CAST(coalesce(sum(l.overage_units) {f}, 0) AS BIGINT) AS {s}_overage_units",
            f"CAST(coalesce(sum(l.usage_amount) {f}, 0) AS BIGINT) AS {s}_amount",
        ]
    return _SUMMARY.format(per_service=",\n    ".join(parts))
