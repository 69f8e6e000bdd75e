"""Re-rating a month: the period's rated rows against today's reference data, as a delta report.

Both directions of a period ``YYYY-MM`` (processing dates of that month) are re-rated:

* **receivable**: ``lake/rated_visitors`` and ``lake/unrated_visitors`` rows (their mediation
  columns) through :func:`clearing.rating.inbound.rate_visitors`;
* **payable**: ``lake/rated_partner`` rows through the outbound IOT
  (:func:`clearing.rating.check.expected_charges`): the value the partner should have charged.

A row *changed* when its charge (expected value), tax, status or tariff row version differs.
The report has one line per (direction, partner, service, currency, scale) with changed rows:
events, changed, old total, new total, delta; it is empty when the tariffs are the same (the
rule is :func:`clearing.rating.delta.delta_report`'s, shared with the replay of a sent day).
It is written to ``out/rerate/rerate_YYYY-MM.csv`` and ``lake/rerate/period=YYYY-MM/``
(``delta`` and the changed ``rows``). The lake's rated rows are not modified: a replay of a
day (``clearing rate --date``) leaves the rows of what was sent as they are and writes a
re-rate result and a delta beside them (:mod:`clearing.rating.run`).
"""

from __future__ import annotations

import calendar
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

from clearing import lake
from clearing.config import WorkDir, parse_period
from clearing.rating import rated_with
from clearing.rating._book import Rates
from clearing.rating.cdr import cdr_schema
from clearing.rating.check import expected_charges
from clearing.rating.delta import DELTA_COLUMNS, delta_report_of_parts
from clearing.rating.inbound import rate_visitors
from clearing.rating.run import write_parquet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from clearing.rating.rated_with import Reference

__all__ = ["DELTA_COLUMNS", "Rerate", "rerate"]

_HIVE = ("date", "partner")
_AT_ONCE = 2  # days' directions re-rated at the same time


@dataclass(frozen=True)
class Rerate:
    """The result of :func:`rerate`.

    Attributes:
        period: ``YYYY-MM``.
        receivable_rows / payable_rows: rows re-rated.
        delta: the report (:data:`DELTA_COLUMNS`), sorted.
        changed_rows: the changed rows, old and new values side by side.
        paths: files written.
        same_rows: rows of files rated with today's reference data, not rated again (they
            are counted in ``receivable_rows`` / ``payable_rows`` and in the report's events).
    """

    period: str
    receivable_rows: int
    payable_rows: int
    delta: pl.DataFrame
    changed_rows: pl.DataFrame
    paths: list[Path]
    same_rows: int = 0


def _read(files: list[Path], columns: Sequence[str]) -> pl.DataFrame | None:
    """The rows of ``files`` (their ``columns`` that a file has; the hive keys from its path)."""
    if not files:
        return None
    frames = []
    for f in files:
        have = pl.read_parquet_schema(f)
        df = pl.read_parquet(f, columns=[c for c in columns if c in have], hive_partitioning=False)
        for part in f.parent.parts[-2:]:
            name, sep, value = part.partition("=")
            if sep and name in _HIVE and name not in df.columns:
                lit = pl.lit(value)
                df = df.with_columns(
                    (lit.str.to_date("%Y-%m-%d") if name == "date" else lit).alias(name)
                )
        frames.append(df)
    return pl.concat(frames, how="diagonal_relaxed")


def _split(
    files: list[Path],
    fresh: frozenset[Path],
    narrow: Sequence[str],
    full: Sequence[str],
    plain: pl.Expr,
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """``(rows that re-rate to themselves, rows to rate again)`` of ``files``.

    A file rated with today's reference data (in ``fresh``) whose rows are all ``plain`` (as
    the rating alone made them) is read for its old values only (``narrow``); any other file
    is read whole (``full``) and rated again.
    """
    same: list[pl.DataFrame] = []
    stale = [f for f in files if f not in fresh]
    for f in files:
        if f in fresh:
            rows = _read([f], narrow)
            if rows is not None and bool(rows.select(plain.fill_null(False).all()).item()):
                same.append(rows)
            else:
                stale.append(f)
    kept = pl.concat(same, how="diagonal_relaxed") if same else None
    return kept, _read(sorted(stale), full)


def _fresh(root: Path, day: date, files: list[Path], now: Reference | None) -> frozenset[Path]:
    """The ``files`` rated with what ``now`` is (none when ``now`` is None: a full re-rating)."""
    if now is None:
        return frozenset()
    recorded = rated_with.reference_of(root, day, files)
    return frozenset(f for f in files if rated_with.current(f, root, recorded, now))


def _month_days(period: str) -> list[date]:
    """The days of the month ``period`` (``YYYY-MM``), first to last."""
    first = date.fromisoformat(f"{period}-01")
    n = calendar.monthrange(first.year, first.month)[1]
    return [first + timedelta(days=k) for k in range(n)]


# what a re-rating reads of the rated rows (the rest of their columns is not looked at)
_OLD_VISITOR = (
    *("date", "file", "line", "partner", "service", "currency", "charge_scale", "status"),
    *("charge", "tax", "iot_version"),
)
#: what rating a partner's event needs (not read of a file that re-rates to itself)
_USAGE = ("called_number", "local_start", "usage", "camel_fee")
_OLD_PARTNER = (
    *("date", "file", "event_index", "partner", "kind", "called_number", "local_start"),
    *("usage", "charge_scale", "currency", "camel_fee", "service", "status", "expected"),
    "iot_version",
)


def _ahead(
    jobs: Sequence[tuple[str, Callable[..., tuple[pl.DataFrame, int] | None], date]],
    workdir: Path,
    rates: Rates,
    now: Reference | None,
) -> Iterator[tuple[str, Future[tuple[pl.DataFrame, int] | None]]]:
    """The ``jobs`` (direction, re-rating, day) started :data:`_AT_ONCE` at a time, in order."""
    with ThreadPoolExecutor(max_workers=_AT_ONCE) as pool:
        running: deque[tuple[str, Future[tuple[pl.DataFrame, int] | None]]] = deque()
        for direction, work, day in jobs:
            running.append((direction, pool.submit(work, workdir, day, rates, now)))
            if len(running) == _AT_ONCE:
                yield running.popleft()
        yield from running


#: stored statuses the rating alone gives (a held or default-rated row is re-rated: the night
#: changed what rating gave it)
_PLAIN_VISITOR = ("rated", "unrated")
_PLAIN_PARTNER = ("checked", "unchecked")


def _receivable(
    workdir: Path, day: date, rates: Rates, now: Reference | None
) -> tuple[pl.DataFrame, int] | None:
    root = WorkDir(workdir).lake
    names = [c.name for c in cdr_schema()]
    files = lake.files(root, lake.RATED_VISITORS, [day]) + lake.files(
        root, lake.UNRATED_VISITORS, [day]
    )
    plain = pl.col("status").is_in(_PLAIN_VISITOR) & pl.col("iot_version").ne_missing(
        pl.lit("clearing.toml")
    )
    keep, todo = _split(
        files,
        _fresh(root, day, files, now),
        [*_OLD_VISITOR, "record_id"],
        [*names, *_OLD_VISITOR],
        plain,
    )
    parts = []
    if keep is not None:  # rated with today's reference: itself again
        parts.append(_visitor_rows(keep, keep))
    if todo is not None:
        parts.append(_visitor_rows(todo, rate_visitors(todo.select(*names, "file", "line"), rates)))
    if not parts:
        return None
    return pl.concat(parts, how="vertical_relaxed"), 0 if keep is None else keep.height


def _visitor_rows(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": old["date"],
            "file": old["file"],
            "line": old["line"],
            "record_id": old["record_id"],
            "partner": new["partner"].fill_null(old["partner"]),
            "service": new["service"].fill_null(old["service"]),
            "currency": new["currency"].fill_null(old["currency"]),
            "charge_scale": new["charge_scale"].fill_null(old["charge_scale"]),
            "old_status": old["status"],
            "new_status": new["status"],
            "old_charge": old["charge"],
            "new_charge": new["charge"],
            "old_tax": old["tax"],
            "new_tax": new["tax"],
            "old_version": old["iot_version"],
            "new_version": new["iot_version"],
        }
    ).select(pl.lit("receivable").alias("direction"), pl.all())


def _payable(
    workdir: Path, day: date, rates: Rates, now: Reference | None
) -> tuple[pl.DataFrame, int] | None:
    root = WorkDir(workdir).lake
    files = lake.files(root, lake.RATED_PARTNER, [day])
    narrow = [c for c in _OLD_PARTNER if c not in _USAGE]
    plain = pl.col("kind").is_null() | pl.col("status").is_in(_PLAIN_PARTNER)
    keep, todo = _split(files, _fresh(root, day, files, now), narrow, _OLD_PARTNER, plain)
    parts = []
    if keep is not None:  # rated with today's reference: itself again
        keep = keep.filter(pl.col("kind").is_not_null())
        parts.append(
            _partner_rows(
                keep.with_columns(
                    pl.col("service").alias("new_service"),
                    pl.col("expected").alias("new_charge"),
                    pl.col("status").alias("new_status"),
                    pl.col("iot_version").alias("new_iot_version"),
                )
            )
        )
    if todo is not None:
        todo = todo.filter(pl.col("kind").is_not_null()).with_row_index("row_id")
        usage = todo.select(
            "row_id",
            "partner",
            "kind",
            pl.when(pl.col("kind") == "moc").then(pl.col("called_number")).alias("number"),
            "local_start",
            "usage",
            pl.col("charge_scale").alias("scale"),
            "currency",
            "camel_fee",
        )
        new = expected_charges(usage, rates)
        new = new.rename({c: f"new_{c}" for c in new.columns if c != "row_id"})
        both = todo.join(new, on="row_id", how="left", maintain_order="left")
        camel = pl.when(pl.col("camel_fee").is_not_null()).then(pl.col("new_expected_camel"))
        new_expected = pl.col("new_expected_charge") + camel.otherwise(0)
        parts.append(
            _partner_rows(
                both.with_columns(
                    new_expected.alias("new_charge"),
                    pl.when(new_expected.is_not_null())
                    .then(pl.lit("checked"))
                    .otherwise(pl.lit("unchecked"))
                    .alias("new_status"),
                )
            )
        )
    if not parts:
        return None
    return pl.concat(parts, how="vertical_relaxed"), 0 if keep is None else keep.height


def _partner_rows(both: pl.DataFrame) -> pl.DataFrame:
    return both.select(
        pl.lit("payable").alias("direction"),
        "date",
        "file",
        pl.col("event_index").alias("line"),
        pl.lit(None, pl.String).alias("record_id"),
        "partner",
        pl.coalesce("new_service", "service").alias("service"),
        "currency",
        "charge_scale",
        pl.col("status").alias("old_status"),
        "new_status",
        pl.col("expected").alias("old_charge"),
        "new_charge",
        pl.lit(None, pl.Int64).alias("old_tax"),
        pl.lit(None, pl.Int64).alias("new_tax"),
        pl.col("iot_version").alias("old_version"),
        pl.col("new_iot_version").alias("new_version"),
    )


def rerate(
    workdir: Path, period: str, *, rates_dir: Path | None = None, full: bool = False
) -> Rerate:
    """Re-rate the period's rows with the current reference data; write the delta report.

    A row whose file the rate stage rated with today's reference data (for its partner and
    direction, :mod:`clearing.rating.rated_with`) is itself again and is not rated a second
    time (``full``: every row is rated again).

    Raises:
        ConfigError: a period not written ``YYYY-MM``; reference data missing.
    """
    parse_period(period)
    rates = Rates.load(rates_dir or workdir / "rates")
    now = None if full else rated_with.fingerprint(rates)
    counts = {"receivable": 0, "payable": 0, "same": 0}

    def days() -> Iterator[pl.DataFrame]:
        # a processing date and direction at a time, in order: the memory of a few days' rows,
        # not the month's; two at once (polars leaves a core idle on one day's rows)
        jobs = [
            (direction, work, day)
            for day in _month_days(period)
            for direction, work in (("receivable", _receivable), ("payable", _payable))
        ]
        for direction, done in _ahead(jobs, workdir, rates, now):
            got = done.result()
            if got is not None:
                rows, same = got
                counts[direction] += rows.height
                counts["same"] += same
                yield rows

    changed, delta = delta_report_of_parts(days())
    n_recv, n_pay = counts["receivable"], counts["payable"]
    out_csv = workdir / "out" / "rerate" / f"rerate_{period}.csv"
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    out_csv.write_text(delta.write_csv(line_terminator="\n"), encoding="utf-8")
    folder = lake.period_partition(WorkDir(workdir).lake, "rerate", period)
    paths = [out_csv, write_parquet(delta, folder / "delta.parquet")]
    if changed.width:
        paths.append(write_parquet(changed, folder / "rows.parquet"))
    return Rerate(period, n_recv, n_pay, delta, changed, paths, counts["same"])
