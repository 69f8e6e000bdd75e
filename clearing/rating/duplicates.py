"""Visitors' CDRs seen twice: across files and processing days, within the duplicate window.

Our mediation may deliver a record again (a re-export, a file re-sent under a new name). A
record billed once must never be billed again, so before rating every record the reader kept is
looked up in the **seen index** (``lake/cdr_seen/date=D/part-0.parquet``: the records first seen
on processing date ``D``, their key columns, file and line):

* by ``record_id`` (the mediation's unique id), and
* by the **hard key** :data:`CDR_HARD_KEY` (record type, IMSI, local start and UTC offset,
  duration, volumes, called / calling number, APN): the same usage under another id.

History is the index of the processing dates within ``window_days`` of the day (before or after
it), the day itself left out, so a replay of a date never finds its own records; inside the
day, a record repeating one of an earlier file (or earlier line) of the same day is a duplicate
of that one. A duplicate is not rated: it goes to ``cdr_quarantine`` with its reason
(``duplicate of <file> line <L> date <D> (same …)``) and a finding, and counts as
``duplicate`` in the record identity. The day's first-seen records become the day's index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import polars as pl

from clearing import lake

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = [
    "CDR_HARD_KEY",
    "Split",
    "history_days",
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

#: The columns of the seen index (``lake/cdr_seen``), in order.
SEEN_COLUMNS: Final = ("record_id", *CDR_HARD_KEY, "file", "line")

_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_ACTION = "not rated: the record was already taken once; drop it from the export"


@dataclass(frozen=True)
class Split:
    """The day's records parted into first seen and duplicates.

    Attributes:
        records: the records to rate (first seen), in their order.
        duplicates: the duplicates as ``cdr_quarantine`` rows (text, with ``reason``).
        findings: one ``cdr_findings`` row per duplicate.
        seen: the day's seen index (:data:`SEEN_COLUMNS` of ``records``).
    """

    records: pl.DataFrame
    duplicates: pl.DataFrame
    findings: pl.DataFrame
    seen: pl.DataFrame


def history_days(root: Path, day: date, window_days: int) -> list[date]:
    """The processing dates of the seen index within ``window_days`` of ``day``, ``day`` apart."""
    lo, hi = day - timedelta(days=window_days), day + timedelta(days=window_days)
    return [d for d in lake.dates(root, lake.CDR_SEEN) if lo <= d <= hi and d != day]


def _history(root: Path, day: date, window_days: int) -> pl.LazyFrame | None:
    """The seen index of the other dates in the window, with ``of_date`` (lazy); None: none.

    Only read through :func:`_match`, which keeps the rows that share a key with the day's
    records: the window's history is streamed, never held whole (a night's memory follows the
    day's volume).
    """
    frames = [
        pl.scan_parquet(f, hive_partitioning=False)
        .select(SEEN_COLUMNS)
        .with_columns(pl.lit(d).alias("of_date"))
        for d in history_days(root, day, window_days)
        for f in lake.files(root, lake.CDR_SEEN, [d])
    ]
    return pl.concat(frames) if frames else None


def _first_of(hist: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """One history row per key: the earliest date, then file and line."""
    return (
        hist.sort("of_date", "file", "line")
        .unique(subset=keys, keep="first", maintain_order=True)
        .select(
            *keys,
            pl.col("file").alias("of_file"),
            pl.col("line").alias("of_line"),
            "of_date",
        )
    )


def _match(cur: pl.DataFrame, hist: pl.LazyFrame | None, keys: list[str]) -> pl.DataFrame:
    """``_row`` → (of_file, of_line, of_date) of the first history row with the same ``keys``."""
    schema = {"_row": pl.UInt32(), "of_file": pl.String(), "of_line": pl.Int64()}
    if hist is None:
        return pl.DataFrame(schema=schema | {"of_date": pl.Date()})
    wanted = cur.select(keys).unique().lazy()
    found = hist.join(wanted, on=keys, how="semi", nulls_equal=True).collect(engine="streaming")
    firsts = _first_of(found, keys)
    return (
        cur.select("_row", *keys)
        .join(firsts, on=keys, how="inner", nulls_equal=True)
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


def split_duplicates(records: pl.DataFrame, *, root: Path, day: date, window_days: int) -> Split:
    """Part the day's records into first seen and duplicates.

    Args:
        records: the typed records the reader kept (:func:`clearing.rating.cdr.read_cdrs`), in
            file order (``file`` and ``line`` columns).
        root: the lake (its ``cdr_seen`` dataset is the history).
        day: the processing date.
        window_days: how many processing days before and after ``day`` count.

    Returns:
        The split; ``records`` keeps the input's columns and order.
    """
    cur = records.with_row_index("_row")
    hist = _history(root, day, window_days)
    by_id = ["record_id"]
    by_key = list(CDR_HARD_KEY)
    # precedence: another date by id, by key; then earlier in the day by id, by key
    found = [
        _match(cur, hist, by_id).with_columns(pl.lit("same record_id").alias("_why")),
        _match(cur, hist, by_key).with_columns(pl.lit("same usage").alias("_why")),
        _within_day(cur, by_id, day).with_columns(pl.lit("same record_id").alias("_why")),
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
    keep = cur.filter(~is_dup).drop("_row")
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
    return Split(keep, duplicates, findings, keep.select(SEEN_COLUMNS))
