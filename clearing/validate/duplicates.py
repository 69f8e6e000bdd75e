"""Duplicate call events, within a file and across files, with DuckDB over the Parquet lake.

* **Hard key** (domain.md §1.6): event kind, IMSI, UTC start, duration, data volumes, other party
  (called / calling number) or APN, recording entity, charging id and partial-record type.
  An event whose hard key was already accepted (in an earlier file inside the window, or earlier
  in the same file) is a duplicate: returned as severe, never paid twice.
* **Soft key**: same IMSI and event kind, start within ± N seconds (config), hard key
  different. Flagged as a warning for the analyst, not returned.

History = the accepted events of the lake (``lake/events_in/date=…/partner=…/*.parquet``) of
earlier processing dates, plus the files accepted earlier in the same run.

CIBER-in (:func:`find_ciber_duplicates`): a record whose :data:`CIBER_KEY` (the normalised
fields of the CIBER duplicate check, ciber.md §7.2 4/11) was accepted in another file — earlier
the same day, or on another processing date within the window, before or after the day — is a
duplicate (returned with Return Reason Code 11). Duplicates inside one file are the file-only
rule ``ciber.record.duplicate`` (:mod:`clearing.validate.ciber`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from clearing import lake as lakes
from clearing.lake import EVENTS_IN

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    import duckdb

__all__ = [
    "CIBER_KEY",
    "HARD_KEY",
    "Duplicate",
    "find_ciber_duplicates",
    "find_duplicates",
    "history_glob",
]

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


#: The normalised event columns of a CIBER record that make it the same record again: its
#: parties, subscriber, start, direction, numbers, duration and money (ciber.md §7.2 4/11;
#: the per-type fields of :data:`clearing.validate.ciber.DUPLICATE_KEYS`, as normalised).
CIBER_KEY = (
    "sender",
    "recipient",
    "serving_network",
    "event_kind",
    "imsi",
    "msisdn",
    "local_start",
    "duration",
    "called_number",
    "calling_number",
    "charge",
    "tax",
)


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


def _ciber_history(
    lake: Path, day: dt.date, window_days: int, senders: list[str]
) -> list[pl.LazyFrame]:
    """The accepted CIBER events of the senders' partitions of the other dates in the window."""
    lo, hi = day - timedelta(days=window_days), day + timedelta(days=window_days)
    frames: list[pl.LazyFrame] = []
    for d in lakes.dates(lake, EVENTS_IN):
        if d == day or not lo <= d <= hi:
            continue
        folder = lakes.partition(lake, EVENTS_IN, d)
        for sender in senders:
            for f in sorted((folder / f"partner={sender}").glob("*.parquet")):
                frames.append(
                    pl.scan_parquet(f, hive_partitioning=False)
                    .filter((pl.col("source_format") == "ciber") & (pl.col("status") == "accepted"))
                    .select("file", "event_index", *CIBER_KEY)
                    .with_columns(pl.lit(d).alias("of_date"))
                )
    return frames


def find_ciber_duplicates(
    events: pa.Table,
    candidates: list[int],
    *,
    lake: Path,
    day: dt.date,
    window_days: int,
    earlier: list[pa.Table],
) -> list[Duplicate]:
    """The records of one CIBER file already accepted in another file, within the window.

    Args:
        events: the file's normalised events (``EVENT_SCHEMA``).
        candidates: the event indexes that would be accepted (the others are not looked up).
        lake: the lake; accepted CIBER events of the processing dates within ``window_days``
            of ``day`` (``day`` itself left out: a replay never finds its own records) are
            history.
        day: the processing date.
        window_days: the duplicate window.
        earlier: event tables (``file``, ``event_index`` and :data:`CIBER_KEY`) accepted
            earlier the same day, in other files.

    Returns:
        One :class:`Duplicate` per candidate found, by event index: the first occurrence
        (earliest date, then file and position; the day's own files last).
    """
    if not candidates or events.num_rows == 0:
        return []
    cur = pl.from_arrow(events.select(["event_index", *CIBER_KEY]))
    assert isinstance(cur, pl.DataFrame)
    cur = cur.filter(pl.col("event_index").is_in(candidates))
    schema = cur.select(CIBER_KEY).schema
    senders = sorted({s for s in cur["sender"].to_list() if s})
    frames = [
        f.with_columns(pl.col(c).cast(t) for c, t in schema.items())
        for f in _ciber_history(lake, day, window_days, senders)
    ]
    if earlier:
        today = pl.from_arrow(pa.concat_tables(earlier))
        assert isinstance(today, pl.DataFrame)
        frames.append(
            today.lazy()
            .select("file", "event_index", *CIBER_KEY)
            .with_columns(pl.col(c).cast(t) for c, t in schema.items())
            .with_columns(pl.lit(None, pl.Date).alias("of_date"))
        )
    if not frames:
        return []
    # only the history rows sharing a key with the file's candidates are kept (streamed)
    wanted = cur.select(CIBER_KEY).unique().lazy()
    hist = (
        pl.concat(frames, how="vertical_relaxed")
        .join(wanted, on=list(CIBER_KEY), how="semi", nulls_equal=True)
        .collect(engine="streaming")
    )
    firsts = hist.sort("of_date", "file", "event_index", nulls_last=True).unique(
        subset=list(CIBER_KEY), keep="first", maintain_order=True
    )
    hits = (
        cur.join(firsts, on=list(CIBER_KEY), how="inner", nulls_equal=True, suffix="_of")
        .sort("event_index")
        .select("event_index", "file", "event_index_of", "of_date")
    )
    return [
        Duplicate(int(i), str(f), int(o), True, of_date if of_date is not None else day)
        for i, f, o, of_date in hits.iter_rows()
    ]
