"""Duplicate call events, within a file and across files, through the lake's key indexes.

* **Hard key** (:data:`HARD_KEY`, domain.md §1.6): event kind, IMSI, UTC start, duration, data
  volumes, other party (called / calling number) or APN, recording entity, charging id and
  partial-record type. An event whose hard key was already accepted (in an earlier file inside
  the window, or earlier in the same file) is a duplicate: returned as severe, never paid twice.
* **Soft key**: same IMSI and event kind, start within ± N seconds (config), hard key
  different. Flagged as a warning for the analyst, not returned.

History is the key index ``lake/keys_in`` (:mod:`clearing.keyindex`): one row per accepted
event (TAP or CIBER) with its key's 128-bit hash, the key itself and where it is, per processing
date and UTC start day. A file's lookup reads only the processing dates of the window (from
``window_days`` before the day up to the day before it, plus — in a nightly run — the day's own
partition, which holds the files accepted earlier in the same run) and only the start days of
the file's events (and the neighbouring day where a soft match may cross midnight). The cost is
the volume of a few start days, whatever the lake holds. A match on the hash is confirmed on
every key column, so a hash collision never makes a false duplicate.

CIBER-in (:func:`find_ciber_duplicates`): a record whose :data:`CIBER_KEY` (the normalised
fields of the CIBER duplicate check, ciber.md §7.2 4/11) was accepted in another file — earlier
the same day, or on another processing date within the window, before or after the day — is a
duplicate (returned with Return Reason Code 11). Its index is ``lake/keys_ciber``, by local start
day. Duplicates inside one file are the file-only rule ``ciber.record.duplicate``
(:mod:`clearing.validate.ciber`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing import keyindex
from clearing import lake as lakes
from clearing.codecs.events import CIBER_KEY, HARD_KEY

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence
    from pathlib import Path

    import duckdb

__all__ = [
    "CIBER_KEY",
    "DUPLICATE_COLUMNS",
    "HARD_KEY",
    "Duplicate",
    "duplicate_rows",
    "find_ciber_duplicates",
    "find_duplicates",
    "hash_keys",
    "index_accepted",
    "index_history",
]


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Event ``event_index`` repeats ``of_file`` event ``of_index`` (hard) or is close (soft).

    ``of_date``: the processing date of ``of_file`` when known (CIBER), None otherwise.
    """

    event_index: int
    of_file: str
    of_index: int
    hard: bool
    of_date: dt.date | None = None


def _same_key(key: Sequence[str], a: str, b: str) -> str:
    """SQL: every column of ``key`` equal in ``a`` and ``b`` (nulls equal)."""
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in key)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def index_accepted(
    con: duckdb.DuckDBPyConnection,
    lake: Path,
    day: dt.date,
    accepted: pa.Table,
    *,
    partner: str,
    source: str,
    hashed: pa.Table | None = None,
) -> None:
    """Add one file's accepted events to the key indexes of ``day`` (CIBER rows to both).

    ``accepted``: the lake rows (``EVENTS_IN`` columns) with status ``accepted``.
    ``hashed``: :func:`hash_keys` of the file's events already computed for the lookup (by
    ``event_index``, covering every accepted one): the hard keys are not hashed again.
    """
    if accepted.num_rows == 0:
        # nothing to index, but the file is done: later nights need not read it again
        keyindex.mark_indexed(lake, lakes.KEYS_IN, day, source=source)
        return
    part = pa.array([partner] * accepted.num_rows, pa.string())
    indexes: list[tuple[lakes.Dataset, tuple[str, ...], str]] = [
        (lakes.KEYS_IN, HARD_KEY, "start_utc")
    ]
    if "ciber" in set(accepted.column("source_format").to_pylist()):
        indexes.append((lakes.KEYS_CIBER, CIBER_KEY, "local_start"))
    for ds, key, start in indexes:
        rows = accepted.select([*key, "file", "event_index"]).append_column("partner", part)
        keyed = _reused(rows, hashed) if ds is lakes.KEYS_IN else None
        if keyed is None:
            keyed = keyindex.add_key_hash(con, rows, key, start)
        keyindex.write(lake, ds, day, keyed, source=source)


def hash_keys(con: duckdb.DuckDBPyConnection, events: pa.Table) -> pa.Table:
    """``event_index`` and the hard key of ``events``, with ``k1``, ``k2`` and ``start_day``."""
    return keyindex.add_key_hash(
        con, events.select(["event_index", *HARD_KEY]), HARD_KEY, "start_utc"
    )


def _reused(rows: pa.Table, hashed: pa.Table | None) -> pa.Table | None:
    """``rows`` keyed by the hashes in ``hashed`` (None: not given, or some row not in it)."""
    if hashed is None:
        return None
    at = pc.index_in(rows.column("event_index"), value_set=hashed.column("event_index"))
    if at.null_count:
        return None
    found = hashed.select(["k1", "k2", "start_day"]).take(at)
    return (
        rows.add_column(0, "k2", found.column("k2"))
        .add_column(0, "k1", found.column("k1"))
        .append_column("start_day", found.column("start_day"))
    )


def index_history(
    con: duckdb.DuckDBPyConnection, lake: Path, day: dt.date, window_days: int
) -> list[dt.date]:
    """Index the window's accepted events that have no key index file; return their dates.

    A work folder from a release before the indexes (or one whose index was deleted, or a
    night stopped between a file's lake rows and its keys) has accepted events in
    ``events_in`` only: without this, the next nights would not see them and would bill a
    re-sent event twice. Each lake file of the window's dates whose name has no index file of
    that date is read (its ``status`` first: a file with nothing accepted costs only that) and
    its accepted events indexed, as the nightly writes them. Only folder listings otherwise.
    """
    lo, hi = day - timedelta(days=window_days), day + timedelta(days=window_days)
    done: list[dt.date] = []
    for d in lakes.dates(lake, lakes.EVENTS_IN):
        if not lo <= d <= hi or d == day:
            continue
        indexed = {f.stem for f in lakes.files(lake, lakes.KEYS_IN, [d])}
        for f in lakes.files(lake, lakes.EVENTS_IN, [d]):
            if f.stem in indexed:
                continue
            status = pq.read_table(f, columns=["status"], partitioning=None).column("status")
            if not pc.any(pc.equal(status, "accepted")).as_py():
                continue
            table = pq.read_table(f, partitioning=None)
            accepted = table.filter(pc.equal(table.column("status"), "accepted"))
            partner = f.parent.name.removeprefix("partner=")
            index_accepted(con, lake, d, accepted, partner=partner, source=f.stem)
            if d not in done:
                done.append(d)
    return done


def _soft_starts(con: duckdb.DuckDBPyConnection, cur: str, seconds: int) -> set[dt.date | None]:
    """The UTC start days of ``cur``'s events, widened by ± ``seconds`` (None: no start)."""
    shifts = sorted({0, -int(seconds), int(seconds)})
    days = " UNION ".join(
        f"SELECT CAST(timezone('UTC', start_utc + INTERVAL ({s}) SECOND) AS DATE) AS d FROM {cur}"
        for s in shifts
    )
    return {r[0] for r in con.sql(f"SELECT DISTINCT d FROM ({days})").fetchall()}


def find_duplicates(
    con: duckdb.DuckDBPyConnection, events: pa.Table, **options: Any
) -> list[Duplicate]:
    """:func:`duplicate_rows` (the same arguments) as one :class:`Duplicate` each."""
    found = duplicate_rows(con, events, **options)
    return [
        Duplicate(int(i), str(f), int(o), bool(h))
        for i, f, o, h in zip(
            *(found.column(c).to_pylist() for c in DUPLICATE_COLUMNS), strict=True
        )
    ]


#: The columns of :func:`duplicate_rows`: the event, the file and event it repeats or is close
#: to, and whether it is a hard duplicate (else a soft suspect).
DUPLICATE_COLUMNS = ("event_index", "of_file", "of_index", "hard")


def duplicate_rows(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table,
    *,
    file: str,
    lake: Path,
    day: dt.date,
    window_days: int,
    soft_seconds: int,
    same_run: bool = True,
    keyed: pa.Table | None = None,
) -> pa.Table:
    """Hard and soft duplicates of ``events`` (one file) against the key index and themselves.

    One row each (:data:`DUPLICATE_COLUMNS`, by event index): a dense day has a million soft
    suspects, and a :class:`Duplicate` each costs seconds (:func:`find_duplicates` makes them).

    Args:
        con: a DuckDB connection (any; only used to run the queries).
        events: the file's event table with ``event_index`` (only candidates for acceptance).
        file: its name (history rows carry theirs).
        lake: the lake folder (its ``keys_in`` index is the history).
        day: the processing date of ``events``.
        window_days: how many processing dates back the history goes.
        soft_seconds: the soft key's time tolerance.
        same_run: the day's own index partition holds the files accepted earlier in this run
            (the nightly); False: it is not read (a single file checked against a work folder).
        keyed: :func:`hash_keys` of ``events`` when the caller has it (else computed here).
    """
    if events.num_rows == 0:
        return pa.table(
            {
                "event_index": pa.array([], pa.int64()),
                "of_file": pa.array([], pa.string()),
                "of_index": pa.array([], pa.int64()),
                "hard": pa.array([], pa.bool_()),
            }
        )
    if keyed is None:
        keyed = hash_keys(con, events)
    con.register("_cur", keyed)
    try:
        starts = _soft_starts(con, "_cur", soft_seconds)
        dates = keyindex.window_dates(lake, lakes.KEYS_IN, day, window_days, include_day=same_run)
        lakes.view(con, lake, lakes.KEYS_IN, dates, "_hist", starts=starts)
        return _matches(con, file, soft_seconds)
    finally:
        con.unregister("_cur")
        con.execute("DROP VIEW IF EXISTS _hist")


#: The key hashes of ``_cur`` seen more than once in it and the history: only their events
#: can be hard duplicates (or same-hash pairs of different keys), a few of a file's.
_MANY_SQL = """
    SELECT k1, k2 FROM (
        SELECT k1, k2 FROM _cur
        UNION ALL
        SELECT k1, k2 FROM _hist WHERE k2 IN (SELECT k2 FROM _cur)
    ) GROUP BY k1, k2 HAVING count(*) > 1
"""


def _matches(con: duckdb.DuckDBPyConnection, file: str, soft_seconds: int) -> pa.Table:
    """The hard and soft duplicates of ``_cur`` (one file) in ``_hist`` and in itself.

    Hard: the same key (confirmed column by column: a hash never decides alone). Soft: not
    the same key, but the same card and kind, starts at most ``soft_seconds`` apart. Each
    finds the first occurrence: history first (by date, file, position), then the file's own
    earlier events.

    Two passes keep the join small at a million events a file. The key hashes seen more than
    once (:data:`_MANY_SQL`, a handful) select the rows whose whole keys are compared: the
    hard duplicates, and the pairs of equal hashes but different keys (a collision), which
    are soft suspects when close. Every other pair of different hashes has different keys:
    the soft search joins only numbers (card and kind as one number, time slot, hashes).
    """
    n = int(soft_seconds)
    many = con.sql(_MANY_SQL).to_arrow_table()
    con.register("_many", many)
    try:
        return _soft_and_hard(con, file, n, keyed=many.num_rows > 0)
    finally:
        con.unregister("_many")


def _soft_and_hard(con: duckdb.DuckDBPyConnection, file: str, n: int, *, keyed: bool) -> pa.Table:
    cols = ", ".join(HARD_KEY)
    # the soft key joins on (card and kind, time slot): slots of n seconds (at least 1), each
    # of the file's events looked up in its own slot and the two beside it, so that rows up
    # to n seconds apart always meet and the pairs compared are the neighbours in time, not
    # every pair of a card's events (a card with thousands of events a day made that
    # quadratic)
    width = max(n, 1) * 1_000_000
    order = "(h.mine, h.processing_date, h.file, h.event_index)"
    close = f"""h.start_utc BETWEEN c.start_utc - INTERVAL ({n}) SECOND
                                 AND c.start_utc + INTERVAL ({n}) SECOND"""
    earlier = "(NOT h.mine OR h.event_index < c.event_index)"
    hard = f"""
        hk AS (
            SELECT h.k1, h.k2, {cols}, file, event_index, processing_date, false AS mine
            FROM _hist h SEMI JOIN _many m ON h.k1 = m.k1 AND h.k2 = m.k2
            UNION ALL
            SELECT c.k1, c.k2, {cols}, {_quote(file)} AS file, event_index,
                   CAST(NULL AS DATE) AS processing_date, true AS mine
            FROM _cur c SEMI JOIN _many m ON c.k1 = m.k1 AND c.k2 = m.k2
        ), hard AS (
            -- the first occurrence of the key: history first, then the file's own order
            SELECT c.event_index, arg_min(h.file, {order}) AS of_file,
                   arg_min(h.event_index, {order}) AS of_index, true AS hard
            FROM hk c JOIN hk h ON c.k1 = h.k1 AND c.k2 = h.k2 AND {_same_key(HARD_KEY, "c", "h")}
            WHERE c.mine AND {earlier}
            GROUP BY c.event_index
        ), collide AS (
            -- equal hashes, different keys: close ones are soft suspects like any other
            SELECT c.event_index, h.file, h.event_index AS h_index, h.processing_date, h.mine
            FROM hk c JOIN hk h ON c.k1 = h.k1 AND c.k2 = h.k2
             AND c.imsi = h.imsi AND c.event_kind = h.event_kind AND {close}
            WHERE c.mine AND {earlier} AND NOT ({_same_key(HARD_KEY, "c", "h")})
        ),"""
    if not keyed:  # no hash twice: no hard duplicate, no collision
        hard = """
        hard AS (
            SELECT CAST(NULL AS BIGINT) AS event_index, CAST(NULL AS VARCHAR) AS of_file,
                   CAST(NULL AS BIGINT) AS of_index, true AS hard
            WHERE false
        ), collide AS (
            SELECT CAST(NULL AS BIGINT) AS event_index, CAST(NULL AS VARCHAR) AS file,
                   CAST(NULL AS BIGINT) AS h_index, CAST(NULL AS DATE) AS processing_date,
                   CAST(NULL AS BOOLEAN) AS mine
            WHERE false
        ),"""
    sql = f"""
        WITH {hard} cards AS (
            -- a card's events of one kind: the equal part of the soft key, as one number
            SELECT imsi, event_kind, row_number() OVER () AS card
            FROM (SELECT DISTINCT imsi, event_kind FROM _cur WHERE start_utc IS NOT NULL)
        ), slim AS (
            SELECT k.card, h.k1, h.k2, h.start_utc, h.file, h.event_index, h.processing_date,
                   false AS mine, epoch_us(h.start_utc) // {width} AS slot
            FROM _hist h JOIN cards k ON h.imsi = k.imsi AND h.event_kind = k.event_kind
            WHERE h.start_utc IS NOT NULL
            UNION ALL
            SELECT k.card, c.k1, c.k2, c.start_utc, {_quote(file)} AS file, c.event_index,
                   CAST(NULL AS DATE) AS processing_date, true AS mine,
                   epoch_us(c.start_utc) // {width} AS slot
            FROM _cur c JOIN cards k ON c.imsi = k.imsi AND c.event_kind = k.event_kind
            WHERE c.start_utc IS NOT NULL
        ), probe AS (
            SELECT k.card, c.event_index, c.k1, c.k2, c.start_utc,
                   epoch_us(c.start_utc) // {width} + s.shift AS slot
            FROM _cur c JOIN cards k ON c.imsi = k.imsi AND c.event_kind = k.event_kind,
                 (VALUES (-1), (0), (1)) AS s(shift)
            WHERE c.start_utc IS NOT NULL
        ), pairs AS (
            -- different hashes: different keys
            SELECT c.event_index, h.file, h.event_index AS h_index, h.processing_date, h.mine
            FROM probe c JOIN slim h ON c.card = h.card AND c.slot = h.slot AND {close}
            WHERE {earlier} AND (c.k1 <> h.k1 OR c.k2 <> h.k2)
            UNION ALL
            SELECT * FROM collide
        ), soft AS (
            SELECT p.event_index,
                   arg_min(p.file, (p.mine, p.processing_date, p.file, p.h_index)) AS of_file,
                   arg_min(p.h_index, (p.mine, p.processing_date, p.file, p.h_index)) AS of_index,
                   false AS hard
            FROM pairs p
            WHERE p.event_index NOT IN (SELECT event_index FROM hard)
            GROUP BY p.event_index
        )
        SELECT * FROM hard UNION ALL SELECT * FROM soft ORDER BY event_index
    """
    found = con.sql(sql).to_arrow_table()
    return pa.table(
        {
            "event_index": found.column("event_index").cast(pa.int64()),
            "of_file": found.column("of_file").cast(pa.string()),
            "of_index": found.column("of_index").cast(pa.int64()),
            "hard": found.column("hard").cast(pa.bool_()),
        }
    )


def find_ciber_duplicates(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table,
    candidates: list[int],
    *,
    lake: Path,
    day: dt.date,
    window_days: int,
) -> list[Duplicate]:
    """The records of one CIBER file already accepted in another file, within the window.

    Args:
        con: a DuckDB connection.
        events: the file's normalised events (``EVENT_SCHEMA``).
        candidates: the event indexes that would be accepted (the others are not looked up).
        lake: the lake; its ``keys_ciber`` index of the processing dates within
            ``window_days`` of ``day`` (before or after; ``day`` itself: the files accepted
            earlier in this run — a replay never finds its own records) is the history.
        day: the processing date.
        window_days: the duplicate window.

    Returns:
        One :class:`Duplicate` per candidate found, by event index: the first occurrence
        (earliest date, then file and position; the day's own files last).
    """
    if not candidates or events.num_rows == 0:
        return []
    cur = events.select(["event_index", *CIBER_KEY]).take(pa.array(candidates, pa.int64()))
    keyed = keyindex.add_key_hash(con, cur, CIBER_KEY, "local_start")
    dates = keyindex.window_dates(
        lake, lakes.KEYS_CIBER, day, window_days, after=True, include_day=True
    )
    starts = keyindex.start_days(keyed.column("start_day"))
    con.register("_cur", keyed)
    try:
        found = lakes.view(con, lake, lakes.KEYS_CIBER, dates, "_hist", starts=starts)
        if not found:
            return []
        today = f"DATE '{day.isoformat()}'"
        order = f"(h.processing_date = {today}, h.processing_date, h.file, h.event_index)"
        rows = con.execute(
            f"""
            SELECT c.event_index, arg_min(h.file, {order}), arg_min(h.event_index, {order}),
                   arg_min(h.processing_date, {order})
            FROM _cur c JOIN _hist h
              ON c.k1 = h.k1 AND c.k2 = h.k2 AND {_same_key(CIBER_KEY, "c", "h")}
            GROUP BY c.event_index ORDER BY c.event_index
            """
        ).fetchall()
    finally:
        con.unregister("_cur")
        con.execute("DROP VIEW IF EXISTS _hist")
    return [Duplicate(int(i), str(f), int(o), True, d) for i, f, o, d in rows]
