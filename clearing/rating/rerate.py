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
from clearing.rating._book import Rates
from clearing.rating.cdr import cdr_schema
from clearing.rating.check import expected_charges
from clearing.rating.delta import DELTA_COLUMNS, delta_report_of_parts
from clearing.rating.inbound import rate_visitors
from clearing.rating.run import write_parquet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

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
    """

    period: str
    receivable_rows: int
    payable_rows: int
    delta: pl.DataFrame
    changed_rows: pl.DataFrame
    paths: list[Path]


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
_OLD_PARTNER = (
    *("date", "file", "event_index", "partner", "kind", "called_number", "local_start"),
    *("usage", "charge_scale", "currency", "camel_fee", "service", "status", "expected"),
    "iot_version",
)


def _ahead(
    jobs: Sequence[tuple[str, Callable[[Path, date, Rates], pl.DataFrame | None], date]],
    workdir: Path,
    rates: Rates,
) -> Iterator[tuple[str, Future[pl.DataFrame | None]]]:
    """The ``jobs`` (direction, re-rating, day) started :data:`_AT_ONCE` at a time, in order."""
    with ThreadPoolExecutor(max_workers=_AT_ONCE) as pool:
        running: deque[tuple[str, Future[pl.DataFrame | None]]] = deque()
        for direction, work, day in jobs:
            running.append((direction, pool.submit(work, workdir, day, rates)))
            if len(running) == _AT_ONCE:
                yield running.popleft()
        yield from running


def _receivable(workdir: Path, day: date, rates: Rates) -> pl.DataFrame | None:
    root = WorkDir(workdir).lake
    names = [c.name for c in cdr_schema()]
    old = _read(
        lake.files(root, lake.RATED_VISITORS, [day])
        + lake.files(root, lake.UNRATED_VISITORS, [day]),
        [*names, *_OLD_VISITOR],
    )
    if old is None:
        return None
    records = old.select(*names, "file", "line")
    new = rate_visitors(records, rates)
    return pl.DataFrame(
        {
            "direction": "receivable",
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
    )


def _payable(workdir: Path, day: date, rates: Rates) -> pl.DataFrame | None:
    old = _read(lake.files(WorkDir(workdir).lake, lake.RATED_PARTNER, [day]), _OLD_PARTNER)
    if old is None:
        return None
    old = old.filter(pl.col("kind").is_not_null()).with_row_index("row_id")
    usage = old.select(
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
    both = old.join(new, on="row_id", how="left", maintain_order="left")
    camel = pl.when(pl.col("camel_fee").is_not_null()).then(pl.col("new_expected_camel"))
    new_expected = pl.col("new_expected_charge") + camel.otherwise(0)
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
        pl.when(new_expected.is_not_null())
        .then(pl.lit("checked"))
        .otherwise(pl.lit("unchecked"))
        .alias("new_status"),
        pl.col("expected").alias("old_charge"),
        new_expected.alias("new_charge"),
        pl.lit(None, pl.Int64).alias("old_tax"),
        pl.lit(None, pl.Int64).alias("new_tax"),
        pl.col("iot_version").alias("old_version"),
        pl.col("new_iot_version").alias("new_version"),
    )


def rerate(workdir: Path, period: str, *, rates_dir: Path | None = None) -> Rerate:
    """Re-rate the period's rows with the current reference data; write the delta report.

    Raises:
        ConfigError: a period not written ``YYYY-MM``; reference data missing.
    """
    parse_period(period)
    rates = Rates.load(rates_dir or workdir / "rates")
    counts = {"receivable": 0, "payable": 0}

    def days() -> Iterator[pl.DataFrame]:
        # a processing date and direction at a time, in order: the memory of a few days' rows,
        # not the month's; two at once (polars leaves a core idle on one day's rows)
        jobs = [
            (direction, work, day)
            for day in _month_days(period)
            for direction, work in (("receivable", _receivable), ("payable", _payable))
        ]
        for direction, done in _ahead(jobs, workdir, rates):
            rows = done.result()
            if rows is not None:
                counts[direction] += rows.height
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
    return Rerate(period, n_recv, n_pay, delta, changed, paths)
