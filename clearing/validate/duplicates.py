"""Duplicate call events, within a file and across files, with DuckDB over the Parquet lake.

* **Hard key** (domain.md §1.6): event kind, IMSI, UTC start, duration, data volumes, other party
  (called / calling number) or APN, recording entity, charging id and partial-record type.
  An event whose hard key was already accepted (in an earlier file inside the window, or earlier
  in the same file) is a duplicate: returned as severe, never paid twice.
* **Soft key**: same IMSI and event kind, start within ± N seconds (config), hard key
  different. Flagged as a warning for the analyst, not returned.

History = the accepted events of the lake (``lake/events_in/date=…/partner=…/*.parquet``) of
earlier processing dates, plus the files accepted earlier in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from clearing.lake import EVENTS_IN

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    import duckdb

__all__ = ["HARD_KEY", "Duplicate", "find_duplicates", "history_glob"]

HARD_KEY = (
    "event_kind",
    "imsi",
    "start_utc",
    "duration",
    "data_volume_incoming",
    "data_volume_outgoing",
    "called_number",
    "calling_number",
    "apn_ni",
    "rec_entity_code",
    "rec_entity_id",
    "charging_id",
    "partial_type",
)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Event ``event_index`` repeats ``of_file`` event ``of_index`` (hard) or is close (soft)."""

    event_index: int
    of_file: str
    of_index: int
    hard: bool


def _key_sql(alias: str) -> str:
    parts = [f"coalesce(CAST({alias}.{c} AS VARCHAR), '~')" for c in HARD_KEY]
    return f"md5(concat_ws('|', {', '.join(parts)}))"


def history_glob(lake: Path) -> str:
    """The glob of the accepted partner events of earlier days in ``lake``."""
    return str(lake / EVENTS_IN.history_glob)


def find_duplicates(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table,
    *,
    file: str,
    lake: Path,
    day: dt.date,
    window_days: int,
    soft_seconds: int,
    earlier: list[pa.Table],
) -> list[Duplicate]:
    """Hard and soft duplicates of ``events`` (one file) against history and themselves.

    Args:
        con: a DuckDB connection (any; only used to run the queries).
        events: the file's event table with ``event_index`` (only candidates for acceptance).
        file: its name (history rows carry theirs).
        lake: the lake folder; accepted events of processing dates before ``day`` are history.
        day: the processing date of ``events``.
        window_days: how far back from the file's earliest start to look.
        soft_seconds: the soft key's time tolerance.
        earlier: event tables (with a ``file`` column) accepted earlier in the same run.
    """
    if events.num_rows == 0:
        return []
    cols = ["event_index", *HARD_KEY]
    cur = events.select(cols)
    con.register("_cur", cur)
    sources = []
    pattern = history_glob(lake)
    has_lake = any(lake.glob(EVENTS_IN.history_glob))
    hist_cols = ", ".join(["file", "event_index", *HARD_KEY])
    if has_lake:
        sources.append(
            f"SELECT {hist_cols} FROM read_parquet('{pattern}', hive_partitioning = true, "
            f"union_by_name = true) WHERE status = 'accepted' AND CAST(date AS DATE) < ?"
        )
    params: list[object] = [day] if has_lake else []
    if earlier:
        run = pa.concat_tables([t.select(["file", "event_index", *HARD_KEY]) for t in earlier])
        con.register("_run", run)
        sources.append(f"SELECT {hist_cols} FROM _run")
    sources.append(f"SELECT '{file.replace(chr(39), '')}' AS file, {', '.join(cols)} FROM _cur")
    union = " UNION ALL ".join(sources)
    sql = f"""
        WITH bounds AS (
            SELECT min(start_utc) - INTERVAL ({int(window_days)}) DAY AS lo,
                   max(start_utc) + INTERVAL ({int(window_days)}) DAY AS hi FROM _cur
        ), h AS (
            SELECT u.*, {_key_sql("u")} AS k,
                   (u.file = '{file.replace(chr(39), "")}') AS mine
            FROM ({union}) u, bounds
            WHERE u.start_utc IS NULL OR u.start_utc BETWEEN bounds.lo AND bounds.hi
        ), firsts AS (
            -- the first occurrence of each key: history first, then the file's own order
            SELECT k, arg_min(file, (mine, event_index)) AS of_file,
                   arg_min(event_index, (mine, event_index)) AS of_index
            FROM h GROUP BY k
        ), hard AS (
            SELECT c.event_index, f.of_file, f.of_index, true AS hard
            FROM h c JOIN firsts f ON c.k = f.k
            WHERE c.mine AND NOT (f.of_file = c.file AND f.of_index = c.event_index)
        ), soft AS (
            SELECT c.event_index, arg_min(o.file, o.event_index) AS of_file,
                   min(o.event_index) AS of_index, false AS hard
            FROM h c JOIN h o
              ON c.imsi = o.imsi AND c.event_kind = o.event_kind
             AND o.start_utc BETWEEN c.start_utc - INTERVAL ({int(soft_seconds)}) SECOND
                                 AND c.start_utc + INTERVAL ({int(soft_seconds)}) SECOND
             AND c.k <> o.k
            WHERE c.mine AND (NOT o.mine OR o.event_index < c.event_index)
              AND c.event_index NOT IN (SELECT event_index FROM hard)
            GROUP BY c.event_index
        )
        SELECT * FROM hard UNION ALL SELECT * FROM soft ORDER BY event_index
    """
    try:
        rows = con.execute(sql, params).fetchall()
    finally:
        con.unregister("_cur")
        if earlier:
            con.unregister("_run")
    return [Duplicate(int(i), str(f), int(o), bool(h)) for i, f, o, h in rows]
