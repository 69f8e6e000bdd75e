"""Which plan rates a sub-number, and what a bill cycle's plan costs by itself (fees).

**Assignment priority.** A sub-number's own ``plan_id`` (level ``user``) wins; a sub-number
without one takes the default plan of its card's group (``subscribers.group_id`` →
``plan_defaults`` row of that group: level ``group``), else the global default (the
``plan_defaults`` row with an empty ``group_id``: level ``global``). Groups and defaults change
over time, so :func:`assign_plans` cuts a sub-number's row at every change and gives each piece
its plan and level; a day on which no level gives a plan is refused (:class:`ConfigError`
naming the number and the day).

**Proration.** A bill cycle runs from the card's ``bill_cycle_day`` for one month
(``cycle_days`` days). A sub-number's *active days* on a plan in a cycle are the days of the
cycle on which it has that plan. When they are fewer than the cycle's days (the number starts,
ends or changes plan inside the cycle):

- the recurring ``fee`` is ``round half up (fee × active_days / cycle_days)`` at the plan's
  scale;
- each allowance is ``floor (allowance × unit × active_days / cycle_days)`` in the service's
  native unit (seconds, messages, bytes): a prorated allowance never gives more than its share.

A cycle's plan is the ``plans`` row in force on its *anchor day*: the first day of the cycle on
which the sub-number has the plan (see :mod:`clearing.rating.retail`); ``plan_version`` is that
row's ``valid_from``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

import duckdb

from clearing.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from clearing.rating.retail_tables import RetailTables

__all__ = ["LEVELS", "assign_plans", "cycle_plans", "register_tables"]

#: Plan assignment levels, the winning one first.
LEVELS = ("user", "group", "global")

_END = "DATE '9999-12-31'"


def register_tables(con: duckdb.DuckDBPyConnection, tables: RetailTables) -> None:
    """Register the reference tables and the resolved sub-numbers in ``con``.

    Names: ``subs``, ``nums_raw`` (as given), ``plans``, ``plans_tiers``, ``plan_defaults``,
    ``topups`` and ``nums_in`` (resolved, see :func:`assign_plans`).
    """
    con.register("subs", tables.subscribers)
    con.register("nums_raw", tables.sub_numbers)
    con.register("plans", tables.plans)
    con.register("plans_tiers", tables.plans_tiers)
    con.register("plan_defaults", tables.plan_defaults)
    con.register("topups", tables.topups)
    con.register("nums_in", _assign(con))


def assign_plans(tables: RetailTables) -> pa.Table:
    """The sub-numbers with every row's plan resolved and its level (``plan_level``).

    Rows with their own ``plan_id`` are kept as they are (level ``user``); the others are cut
    where the card's group or a default changes, each piece with the plan of the highest level
    that has one. Columns: those of ``sub_numbers`` plus ``plan_level``.

    Raises:
        ConfigError: a sub-number without a plan of its own has no group or global default on
            some day of its validity.
    """
    con = duckdb.connect()
    try:
        con.register("subs", tables.subscribers)
        con.register("nums_raw", tables.sub_numbers)
        con.register("plan_defaults", tables.plan_defaults)
        return _assign(con)
    finally:
        con.close()


def _assign(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """:func:`assign_plans` over the registered ``subs``, ``nums_raw`` and ``plan_defaults``."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _implicit AS
        SELECT row_number() OVER () AS rid, * FROM nums_raw WHERE plan_id IS NULL;
        -- every day a piece may start: the row's bounds, its card's versions, the defaults
        CREATE OR REPLACE TEMP TABLE _cuts AS
        WITH b AS (
            SELECT rid, valid_from AS d FROM _implicit
            UNION SELECT rid, coalesce(valid_to, {_END}) FROM _implicit
            UNION SELECT n.rid, unnest([s.valid_from, coalesce(s.valid_to, {_END})])
                FROM _implicit n JOIN subs s USING (imsi)
            UNION SELECT n.rid, unnest([d.valid_from, coalesce(d.valid_to, {_END})])
                FROM _implicit n JOIN subs s USING (imsi)
                JOIN plan_defaults d ON d.group_id = s.group_id
            UNION SELECT n.rid, unnest([d.valid_from, coalesce(d.valid_to, {_END})])
                FROM _implicit n CROSS JOIN (SELECT * FROM plan_defaults WHERE group_id IS NULL) d
        )
        SELECT b.rid, b.d AS lo, lead(b.d) OVER (PARTITION BY b.rid ORDER BY b.d) AS hi
        FROM b JOIN _implicit n USING (rid)
        WHERE b.d >= n.valid_from AND b.d <= coalesce(n.valid_to, {_END});
        CREATE OR REPLACE TEMP TABLE _pieces AS
        SELECT c.rid, c.lo, c.hi, s.group_id,
            coalesce(g.plan_id, w.plan_id) AS plan_id,
            CASE WHEN g.plan_id IS NOT NULL THEN 'group'
                 WHEN w.plan_id IS NOT NULL THEN 'global' END AS plan_level
        FROM _cuts c
        JOIN _implicit n USING (rid)
        LEFT JOIN subs s ON s.imsi = n.imsi AND s.valid_from <= c.lo
            AND (s.valid_to IS NULL OR s.valid_to > c.lo)
        LEFT JOIN plan_defaults g ON g.group_id = s.group_id AND g.valid_from <= c.lo
            AND (g.valid_to IS NULL OR g.valid_to > c.lo)
        LEFT JOIN plan_defaults w ON w.group_id IS NULL AND w.valid_from <= c.lo
            AND (w.valid_to IS NULL OR w.valid_to > c.lo)
        WHERE c.hi IS NOT NULL AND c.hi > c.lo;
        """
    )
    missing = con.execute(
        """
        SELECT n.msisdn, n.imsi, p.lo, p.group_id, n.source_line FROM _pieces p
        JOIN _implicit n USING (rid) WHERE p.plan_id IS NULL ORDER BY p.lo, n.msisdn LIMIT 1
        """
    ).fetchall()
    if missing:
        msisdn, imsi, day, group, line = missing[0]
        at = f", line {line}" if line is not None else ""
        grp = f"of its group `{group}` " if group else ""
        msg = (
            f"rates table `sub_numbers`{at}: number {msisdn} (card {imsi}) has no `plan_id`, "
            f"and no default plan {grp}or global default (`plan_defaults`) is valid on {day}; "
            "give the number a plan or add a default"
        )
        raise ConfigError(msg)
    # join consecutive pieces of one row with the same plan and level (gaps and islands)
    cols = list(con.sql("SELECT * FROM nums_raw LIMIT 0").columns)
    keep = ", ".join(
        f"any_value(n.{c}) AS {c}" for c in cols if c not in ("plan_id", "valid_from", "valid_to")
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _joined AS
        WITH g AS (
            SELECT *, row_number() OVER (PARTITION BY rid ORDER BY lo)
                - row_number() OVER (PARTITION BY rid, plan_id, plan_level ORDER BY lo) AS isle
            FROM _pieces
        )
        SELECT {keep}, g.plan_id, min(g.lo) AS valid_from,
            nullif(max(g.hi), {_END}) AS valid_to, g.plan_level
        FROM g JOIN _implicit n USING (rid)
        GROUP BY g.rid, g.plan_id, g.plan_level, g.isle
        """
    )
    names = ", ".join(cols)
    out = con.sql(
        f"""
        SELECT {names}, 'user' AS plan_level FROM nums_raw WHERE plan_id IS NOT NULL
        UNION ALL SELECT {names}, plan_level FROM _joined
        ORDER BY msisdn, valid_from
        """
    ).to_arrow_table()
    con.execute("DROP TABLE _implicit; DROP TABLE _cuts; DROP TABLE _pieces; DROP TABLE _joined")
    return out


def _month(month: str) -> date:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        msg = f"a bill cycle month is YYYY-MM (e.g. 2026-11), not `{month}`"
        raise ConfigError(msg)
    return date(int(month[:4]), int(month[5:]), 1)


def cycle_plans(tables: RetailTables, month: str) -> pa.Table:
    """Per sub-number and plan, the bill cycles starting in ``month`` (``YYYY-MM``).

    A card's cycle starts on its ``bill_cycle_day`` (the ``subscribers`` row in force that
    day). One row per (``imsi``, ``sub_number``, ``plan_id``, ``cycle_start``) for every
    sub-number that has a plan on some day of the cycle, usage or not, with columns ``imsi,
    sub_number, role, label, plan_id, plan_name, plan_version, plan_level, cycle_start,
    cycle_last_day, cycle_days, active_days, fee, currency, scale, tax_bp`` (``fee`` prorated,
    see the module docstring; ``plan_level`` the level on the anchor day).

    Raises:
        ConfigError: a bad month, a sub-number without a plan on some day, or a plan without a
            version on a cycle's anchor day.
    """
    first = _month(month)
    con = duckdb.connect()
    try:
        register_tables(con, tables)
        rows = con.sql(
            f"""
            WITH cards AS (
                SELECT imsi, make_date(year(DATE '{first}'), month(DATE '{first}'),
                                       bill_cycle_day) AS cycle_start
                FROM subs
                WHERE valid_from <= make_date(year(DATE '{first}'), month(DATE '{first}'),
                                              bill_cycle_day)
                  AND (valid_to IS NULL OR valid_to > make_date(year(DATE '{first}'),
                                              month(DATE '{first}'), bill_cycle_day))
            ), c AS (
                SELECT imsi, cycle_start,
                    CAST(cycle_start + INTERVAL 1 MONTH AS DATE) AS cycle_end
                FROM cards
            ), seg AS (
                SELECT c.imsi, n.msisdn, n.plan_id, c.cycle_start, c.cycle_end,
                    n.role, n.label, n.plan_level,
                    greatest(n.valid_from, c.cycle_start) AS lo,
                    least(coalesce(n.valid_to, {_END}), c.cycle_end) AS hi
                FROM c JOIN nums_in n ON n.imsi = c.imsi
                    AND n.valid_from < c.cycle_end
                    AND (n.valid_to IS NULL OR n.valid_to > c.cycle_start)
            ), acct AS (
                SELECT imsi, msisdn, plan_id, cycle_start, any_value(cycle_end) AS cycle_end,
                    min(lo) AS anchor, sum(hi - lo) AS active_days,
                    arg_min(role, lo) AS role, arg_min(label, lo) AS label,
                    arg_min(plan_level, lo) AS plan_level
                FROM seg GROUP BY imsi, msisdn, plan_id, cycle_start
            )
            SELECT a.imsi, a.msisdn AS sub_number, a.role, a.label, a.plan_id,
                p.name AS plan_name, p.valid_from AS plan_version, a.plan_level,
                a.cycle_start, CAST(a.cycle_end - 1 AS DATE) AS cycle_last_day,
                CAST(a.cycle_end - a.cycle_start AS BIGINT) AS cycle_days,
                CAST(a.active_days AS BIGINT) AS active_days,
                CAST((2 * coalesce(p.fee, 0) * a.active_days + (a.cycle_end - a.cycle_start))
                     // (2 * (a.cycle_end - a.cycle_start)) AS BIGINT) AS fee,
                p.currency, CAST(p.scale AS TINYINT) AS scale,
                CAST(coalesce(p.tax_bp, 0) AS BIGINT) AS tax_bp,
                p.plan_id IS NOT NULL AS found, a.anchor
            FROM acct a
            LEFT JOIN plans p ON p.plan_id = a.plan_id AND p.valid_from <= a.anchor
                AND (p.valid_to IS NULL OR p.valid_to > a.anchor)
            ORDER BY a.imsi, a.msisdn, a.cycle_start, a.plan_id
            """
        ).to_arrow_table()
    finally:
        con.close()
    found = rows.column("found").to_pylist()
    if not all(found):
        i = found.index(False)
        msg = (
            f"rates table `plans`: no version of plan `{rows.column('plan_id')[i]}` is valid on "
            f"{rows.column('anchor')[i]}, the first day of a bill cycle it rates; add one "
            "(or extend `valid_to`)"
        )
        raise ConfigError(msg)
    return rows.drop_columns(["found", "anchor"])
