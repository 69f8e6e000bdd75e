"""Visitors' CDRs seen twice: across files and processing days, within the duplicate window.

Our mediation may deliver a record again (a re-export, a file re-sent under a new name). A
record billed once must never be billed again, so before rating every record the reader kept is
looked up in the **seen index** (:data:`clearing.lake.CDR_SEEN`)::

    lake/cdr_seen/date=<D>/start=<S>/part-0.parquet

the records first seen on processing date ``D`` that started (local time) on day ``S``: the
128-bit hash of their hard key (``k1``, ``k2``, :mod:`clearing.keyindex`), their key columns,
file and line. A record is a duplicate:

* by the **hard key** :data:`CDR_HARD_KEY` (record type, IMSI, local start and UTC offset,
  duration, volumes, called / calling number, APN): the same usage under another id. The key
  holds the exact start, so only the start-day folders of the day's records are read; rows
  are joined on the hash and confirmed on the whole key (nulls equal), so a hash collision
  never makes a duplicate;
* by ``record_id`` (the mediation's unique id). **The rule**: a re-delivered record keeps its
  start, so a record's id is looked up among the records that started the same day, the day
  before or the day after (only those start-day folders are read); the same id on a record
  that started further apart is another record (ids may come round again), not a duplicate.

History is the index of the processing dates within ``window_days`` of the day (before or after
it), the day itself left out, so a replay of a date never finds its own records: a night reads
the window's dates × the start days of its records, never the whole lake. Inside the day, a
record repeating one of an earlier file (or earlier line) of the same day, by ``record_id``
or by hard key, is a duplicate of that one (the day's records are in memory: no start-day
limit there). A duplicate is not rated: it goes to ``cdr_quarantine`` with its reason
(``duplicate of <file> line <L> date <D> (same …)``) and a finding, and counts as
``duplicate`` in the record identity. The day's first-seen records become the day's index
(:func:`clearing.keyindex.write`: one file per start day).

A work folder of a release before the start-day index has one ``date=D/part-0.parquet`` per
date, without the hash: :func:`index_history` rewrites those of the window in the start-day
layout before the night's lookup (once: the old file is removed after).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import duckdb
import polars as pl

from clearing import keyindex, lake

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = [
    "CDR_HARD_KEY",
    "Split",
    "history_days",
    "index_history",
    "split_duplicates",
]

#: The columns that make two records the same usage (whatever their ``record_id``).
CDR_HARD_KEY: Final = (
    "record_type",
    "imsi",
    "start_time",
    "utc_offset",
    "duration",
    "volume_up",
    "volume_down",
    "called_number",
    "calling_number",
    "apn",
)

#: The columns of the seen index (``lake/cdr_seen``), in order: the hard key's hash first.
SEEN_COLUMNS: Final = ("k1", "k2", "record_id", *CDR_HARD_KEY, "file", "line")
_HASH: Final = ["k1", "k2"]
_START_DAY: Final = "start_day"  # the local day of ``start_time`` (the ``start=`` folder)

_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_ACTION = "not rated: the record was already taken once; drop it from the export"


@dataclass(frozen=True)
class Split:
    """The day's records parted into first seen and duplicates.

    Attributes:
        records: the records to rate (first seen), in their order.
        duplicates: the duplicates as ``cdr_quarantine`` rows (text, with ``reason``).
        findings: one ``cdr_findings`` row per duplicate.
        seen: the day's seen index: :data:`SEEN_COLUMNS` of ``records`` and their
            ``start_day`` last, as :func:`clearing.keyindex.write` takes it.
        keys: with ``earlier`` given (a chunk of the day): :data:`SEEN_COLUMNS` and ``_row``
            of every record of the chunk, duplicates too: what the next chunks look up.
    """

    records: pl.DataFrame
    duplicates: pl.DataFrame
    findings: pl.DataFrame
    seen: pl.DataFrame
    keys: pl.DataFrame | None = None


def history_days(root: Path, day: date, window_days: int) -> list[date]:
    """The processing dates of the seen index within ``window_days`` of ``day``, ``day`` apart."""
    return keyindex.window_dates(root, lake.CDR_SEEN, day, window_days, after=True)


def index_history(root: Path, day: date, window_days: int) -> list[date]:
    """Rewrite the window's seen index of an earlier release in the start-day layout.

    A date of the window (``day`` apart) with a ``date=D/part-0.parquet`` (the former layout:
    the seen records without ``k1``, ``k2``) gets its start-day files (the records hashed as
    the night does), then the old file is removed; a run stopped in between does it again.
    Without this the first nights after an upgrade would find no history and rate a
    re-delivered record twice. Returns the dates rewritten.
    """
    done: list[date] = []
    lo, hi = day - timedelta(days=window_days), day + timedelta(days=window_days)
    for d in lake.dates(root, lake.CDR_SEEN):
        old = lake.partition(root, lake.CDR_SEEN, d) / lake.CDR_SEEN.file
        if not lo <= d <= hi or d == day or not old.is_file():
            continue
        rows = pl.read_parquet(old, hive_partitioning=False).select(SEEN_COLUMNS[2:])
        keyed = rows.hstack(_key_hash(rows)).select(*SEEN_COLUMNS, _START_DAY)
        keyindex.write(root, lake.CDR_SEEN, d, keyed.rechunk().to_arrow())
        old.unlink()
        done.append(d)
    return done


def _key_hash(records: pl.DataFrame) -> pl.DataFrame:
    """``k1``, ``k2`` (the hash of :data:`CDR_HARD_KEY`) and ``start_day`` of each record."""
    table = records.select(CDR_HARD_KEY).to_arrow()
    con = duckdb.connect()
    try:
        keyed = keyindex.add_key_hash(con, table, CDR_HARD_KEY, "start_time")
    finally:
        con.close()
    out = pl.from_arrow(keyed.select([*_HASH, _START_DAY]))
    assert isinstance(out, pl.DataFrame)
    return out


def _history(root: Path, dates: list[date], starts: set[date | None]) -> pl.LazyFrame | None:
    """The seen index of ``dates`` × start days ``starts``, with ``of_date`` (lazy); None: none.

    Only read through :func:`_match`, which keeps the rows that share a key with the day's
    records: the history is streamed, never held whole (a night's memory follows the day's
    volume). No other folder of the index is opened.
    """
    frames = [
        pl.scan_parquet(f, hive_partitioning=False)
        .select(SEEN_COLUMNS)
        .with_columns(pl.lit(d).alias("of_date"))
        for d in dates
        for f in keyindex.files(root, lake.CDR_SEEN, [d], starts)
    ]
    return pl.concat(frames) if frames else None


def _match(
    cur: pl.DataFrame, hist: pl.LazyFrame | None, keys: list[str], *, by: list[str], near: bool
) -> pl.DataFrame:
    """``_row`` → (of_file, of_line, of_date) of the first history row with the same ``keys``.

    ``by``: the columns the history is first joined on (the hash, or the id itself); every
    match is then confirmed on ``keys`` (nulls equal). ``near``: only history rows that started
    within a day of the record (the ``record_id`` rule).
    """
    schema = {"_row": pl.UInt32(), "of_file": pl.String(), "of_line": pl.Int64()}
    if hist is None:
        return pl.DataFrame(schema=schema | {"of_date": pl.Date()})
    wanted = cur.select(by).unique().lazy()
    found = hist.join(wanted, on=by, how="semi", nulls_equal=True).collect(engine="streaming")
    pairs = cur.select("_row", *keys, _START_DAY).join(
        found.select(
            *keys,
            pl.col("start_time").dt.date().alias("_of_start"),
            pl.col("file").alias("of_file"),
            pl.col("line").alias("of_line"),
            "of_date",
        ),
        on=keys,
        how="inner",
        nulls_equal=True,
    )
    if near:
        apart = (pl.col("_of_start") - pl.col(_START_DAY)).abs()
        same = pl.col("_of_start").is_null() & pl.col(_START_DAY).is_null()
        pairs = pairs.filter(same | (apart <= timedelta(days=1)))
    # one history row per record: the earliest date, then file and line
    return (
        pairs.sort("_row", "of_date", "of_file", "of_line")
        .unique(subset=["_row"], keep="first", maintain_order=True)
        .select("_row", "of_file", "of_line", "of_date")
    )


def _within_day(cur: pl.DataFrame, keys: list[str], day: date) -> pl.DataFrame:
    """``_row`` → the first row of the day with the same ``keys`` (rows that are not first)."""
    first = cur.select(
        "_row",
        pl.col("_row").first().over(keys).alias("_first"),
        pl.col("file").first().over(keys).alias("of_file"),
        pl.col("line").first().over(keys).alias("of_line"),
    )
    return first.filter(pl.col("_row") != pl.col("_first")).select(
        "_row", "of_file", "of_line", pl.lit(day).alias("of_date")
    )


def _earlier(cur: pl.DataFrame, parts: list[Path], keys: list[str], by: list[str]) -> pl.DataFrame:
    """``_row`` → (of_file, of_line) of the first row of the day's earlier chunks with ``keys``.

    ``parts``: the earlier chunks' :attr:`Split.keys`, streamed (only the rows sharing ``by``
    with ``cur`` are collected); ``by`` and ``keys`` as in :func:`_match`, no start-day limit
    (as within the day).
    """
    schema = {"_row": pl.UInt32(), "of_file": pl.String(), "of_line": pl.Int64()}
    if not parts:
        return pl.DataFrame(schema=schema)
    wanted = cur.select(by).unique().lazy()
    found = (
        pl.scan_parquet(parts, hive_partitioning=False)
        .select(*dict.fromkeys([*by, *keys]), "file", "line", "_row")
        .join(wanted, on=by, how="semi", nulls_equal=True)
        .collect(engine="streaming")
    )
    pairs = cur.select("_row", *keys).join(
        found.select(
            *keys,
            pl.col("_row").alias("_of_row"),
            pl.col("file").alias("of_file"),
            pl.col("line").alias("of_line"),
        ),
        on=keys,
        how="inner",
        nulls_equal=True,
    )
    return (
        pairs.sort("_row", "_of_row")
        .unique(subset=["_row"], keep="first", maintain_order=True)
        .select("_row", "of_file", "of_line")
    )


def split_duplicates(
    records: pl.DataFrame,
    *,
    root: Path,
    day: date,
    window_days: int,
    earlier: list[Path] | None = None,
    offset: int = 0,
) -> Split:
    """Part the day's records into first seen and duplicates.

    Reads only the seen index of the window's processing dates (:func:`history_days`) and the
    start days of ``records`` (±1 day for the ``record_id`` lookup; see the module docstring).

    A day too big for memory is split in chunks of records, in order: ``records`` is one of
    them, ``offset`` its first record's place in the day and ``earlier`` the :attr:`Split.keys`
    of the chunks before it. A record repeating one of an earlier chunk is a duplicate of the
    first such record of the day, as when the day is split at once: the result is the rows the
    whole day's split gives for ``records``.

    Args:
        records: the typed records the reader kept (:func:`clearing.rating.cdr.read_cdrs`), in
            file order (``file`` and ``line`` columns).
        root: the lake (its ``cdr_seen`` dataset is the history).
        day: the processing date.
        window_days: how many processing days before and after ``day`` count.
        earlier: the keys of the day's earlier chunks (None: ``records`` is the whole day).
        offset: how many records of the day come before ``records``.

    Returns:
        The split; ``records`` keeps the input's columns and order.
    """
    cur = records.with_row_index("_row", offset=offset).hstack(_key_hash(records))
    dates = history_days(root, day, window_days)
    exact = keyindex.start_days(cur[_START_DAY].to_arrow())
    near = keyindex.start_days(cur[_START_DAY].to_arrow(), both_sides=True)
    by_id = ["record_id"]
    by_key = list(CDR_HARD_KEY)
    # precedence: another date by id, by key; then earlier in the day by id, by key (an
    # earlier chunk's row comes before this chunk's)
    before = earlier or []
    found = [
        _match(cur, _history(root, dates, near), by_id, by=by_id, near=True).with_columns(
            pl.lit("same record_id").alias("_why")
        ),
        _match(cur, _history(root, dates, exact), by_key, by=_HASH, near=False).with_columns(
            pl.lit("same usage").alias("_why")
        ),
        _earlier(cur, before, by_id, by_id).with_columns(
            pl.lit(day).alias("of_date"), pl.lit("same record_id").alias("_why")
        ),
        _within_day(cur, by_id, day).with_columns(pl.lit("same record_id").alias("_why")),
        _earlier(cur, before, by_key, _HASH).with_columns(
            pl.lit(day).alias("of_date"), pl.lit("same usage").alias("_why")
        ),
        _within_day(cur, by_key, day).with_columns(pl.lit("same usage").alias("_why")),
    ]
    dup = (
        pl.concat(found, how="vertical_relaxed")
        .with_row_index("_rank")
        .sort("_row", "_rank")
        .unique(subset=["_row"], keep="first", maintain_order=True)
        .drop("_rank")
    )
    is_dup = pl.col("_row").is_in(dup["_row"].implode())
    first_seen = cur.filter(~is_dup)
    keep = first_seen.drop("_row", *_HASH, _START_DAY)
    hit = cur.filter(is_dup).join(dup, on="_row", how="left").sort("_row")
    why = {
        "same record_id": "same record_id",
        "same usage": "same IMSI, start, service, numbers, duration and volume",
    }
    reason = pl.format(
        "duplicate of {} line {} date {} ({})",
        pl.col("of_file"),
        pl.col("of_line"),
        pl.col("of_date").dt.strftime("%Y-%m-%d"),
        pl.col("_why").replace_strict(why, return_dtype=pl.String),
    )
    text = [
        pl.col(c).dt.strftime(_DATETIME_FORMAT)
        if records.schema[c].is_temporal()
        else pl.col(c).cast(pl.String)
        for c in records.columns
        if c not in ("file", "line")
    ]
    duplicates = hit.select(*text, "file", "line", reason.alias("reason"))
    findings = hit.select(
        "file",
        "line",
        "record_id",
        pl.lit("record_id").alias("field"),
        pl.col("record_id").alias("value"),
        pl.lit("error").alias("severity"),
        reason.alias("problem"),
        pl.lit(_ACTION).alias("action"),
    )
    keys = None if earlier is None else cur.select(*SEEN_COLUMNS, "_row")
    return Split(keep, duplicates, findings, first_seen.select(*SEEN_COLUMNS, _START_DAY), keys)
