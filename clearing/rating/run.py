"""The rating of one processing day: visitors' CDRs → rated Parquet, and the IOT check.

The IOT check is run on the day's accepted TAP-in / CIBER-in. (The TAP-out / CIBER-out files
are written from the rated Parquet by :mod:`clearing.outbound`, the next stage.)

Reads (``D`` = the processing date):

* mediation CDRs: ``<workdir>/inbox/cdr/*YYYYMMDD*.csv|parquet`` and
  ``<workdir>/lake/cdr/date=D/**/*.parquet`` (not moved: re-running the day reads them again);
* accepted partner events: ``<workdir>/lake/events_in/date=D/**/*.parquet`` rows whose
  ``status`` is ``accepted``;
* reference data: ``<workdir>/rates`` (imported Parquet).

Writes (each ``date=D`` folder is replaced whole, so a re-run leaves no duplicate rows):

* ``lake/rated_visitors/date=D/partner=P/part-0.parquet`` — rated rows, per partner;
* ``lake/unrated_visitors/date=D/part-0.parquet`` — rows that could not be rated, with reason;
* ``lake/cdr_findings/date=D/part-0.parquet``, ``lake/cdr_quarantine/date=D/part-0.parquet``;
* ``lake/rated_partner/date=D/partner=P/part-0.parquet`` — the IOT check of every event;
* ``lake/iot_findings/date=D/part-0.parquet`` — the breaches.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import polars as pl

from clearing import config, lake
from clearing._io import write_table_atomic
from clearing.rating._book import Rates
from clearing.rating.cdr import read_cdrs
from clearing.rating.check import iot_check, settlement_totals
from clearing.rating.inbound import rate_visitors

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date
    from pathlib import Path

__all__ = [
    "IOT_EVENT_COLUMNS",
    "RateSummary",
    "cdr_files",
    "partner_events",
    "rate_day",
    "write_parquet",
]


@dataclass(frozen=True)
class RateSummary:
    """What :func:`rate_day` did, for the CLI, the run manifest and the nightly summary.

    Attributes:
        day: the processing date.
        cdr_files: the mediation files read.
        records_in: rows read (good + quarantined).
        quarantined: rows held by the reader (bad values), see ``lake/cdr_quarantine``.
        rated / unrated: rows rated / not rated (see ``lake/unrated_visitors``).
        receivable: per (partner, currency, scale): the rated total charge.
        partner_events: accepted partner events checked.
        iot_breaches: IOT-check findings.
        unchecked: partner events the IOT does not price.
        payable: per (partner, settlement currency, scale): the settlement amount, the
            partner's invoiced amounts converted once per total (reports/README.md, Rounding).
        payable_rounding: per (partner, settlement currency, scale), where not 0: the sum of
            the per-event converted amounts minus ``payable`` (what rounding each event and
            summing would have added; shown, never absorbed).
        paths: the lake and out paths written.
    """

    day: date
    cdr_files: list[Path]
    records_in: int
    quarantined: int
    rated: int
    unrated: int
    receivable: list[tuple[str, str, int, int]]
    partner_events: int
    iot_breaches: int
    unchecked: int
    payable: list[tuple[str, str, int, int]]
    paths: list[Path] = field(default_factory=list)
    payable_rounding: list[tuple[str, str, int, int]] = field(default_factory=list)

    @property
    def identity_ok(self) -> bool:
        """Records in = rated + unrated + quarantined."""
        return self.records_in == self.rated + self.unrated + self.quarantined


def cdr_files(workdir: Path, day: date) -> list[Path]:
    """The mediation files of processing date ``day`` (sorted by name, then path)."""
    stamp = day.strftime("%Y%m%d")
    found: list[Path] = []
    inbox = workdir / "inbox" / "cdr"
    if inbox.is_dir():
        found += [
            p
            for p in inbox.rglob("*")
            if p.is_file() and stamp in p.name and p.suffix.lower() in (".csv", ".parquet")
        ]
    dropped = lake.partition(workdir / "lake", "cdr", day)
    if dropped.is_dir():
        found += [p for p in dropped.rglob("*.parquet") if p.is_file()]
    return sorted(found, key=lambda p: (p.name, str(p)))


#: The event columns the IOT check reads (:func:`clearing.rating.check.iot_check`).
IOT_EVENT_COLUMNS: Final = (
    "status",
    "source_format",
    "sender",
    "file",
    "file_sequence_number",
    "event_index",
    "event_kind",
    "tele_service_code",
    "refund",
    "imsi",
    "msisdn",
    "called_number",
    "local_start",
    "duration",
    "data_volume_incoming",
    "data_volume_outgoing",
    "currency",
    "charge_scale",
    "charge",
    "discount",
    "camel_fee",
    "tax",
)


def partner_events(
    workdir: Path, day: date, *, columns: Sequence[str] | None = None
) -> pl.DataFrame | None:
    """The day's accepted TAP-in / CIBER-in events, or None when there are none.

    Args:
        workdir: the work folder (its lake's ``events_in`` dataset is read).
        day: the processing date.
        columns: read only these columns (those a file has; the others are null, as for a
            file that lacks a column); None: every column.
    """
    folder = lake.partition(workdir / "lake", lake.EVENTS_IN, day)
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not files:
        return None
    schemas = [pl.read_parquet_schema(f) for f in files]
    # a file without `status` has no accepted row when another file has the column
    by_status = any("status" in sch for sch in schemas)
    frames = []
    for f, sch in zip(files, schemas, strict=True):
        wanted = [c for c in sch if columns is None or c in columns]
        scan = pl.scan_parquet(f, hive_partitioning=False).select(wanted)
        if by_status:
            keep = pl.col("status") == "accepted" if "status" in sch else pl.lit(False)
            scan = scan.filter(keep)
        frames.append(scan.collect())
    ev = pl.concat(frames, how="diagonal_relaxed")
    return ev if ev.height else None


def write_parquet(df: pl.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` (zstd; atomic rename); same rows → same bytes."""
    write_table_atomic(df.to_arrow(), path)
    return path


class _Writes:
    """Parquet files written by a small thread pool (pyarrow releases the GIL), in order.

    The bytes do not depend on the threads: each file is written whole by one of them.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rate-parquet")
        self._pending: list[Future[Path]] = []

    def write(
        self, root: Path, ds: lake.Dataset, day: date, df: pl.DataFrame, partner: str | None = None
    ) -> Path:
        """Write ``df`` as the file of ``ds`` (for ``partner``) in the lake ``root``."""
        # one chunk per column, as a sorted or filtered frame has: Parquet pages follow the
        # chunks, so the same rows in other chunks would give other bytes
        self._pending.append(
            self._pool.submit(
                lambda: lake.write(root, ds, day, df.rechunk().to_arrow(), partner=partner)
            )
        )
        return lake.path(root, ds, day, partner=partner)

    def wait(self) -> None:
        """Wait for every write so far (raising the first error)."""
        for f in self._pending:
            f.result()
        self._pending = []

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _by_partner(
    df: pl.DataFrame, sort: list[str], keep: pl.Expr | None = None
) -> list[tuple[str | None, pl.DataFrame]]:
    """``df``'s rows (those ``keep`` selects) sorted (nulls last) and cut into its partners'.

    One copy of the rows: the sort is of the keys, the rows are gathered once; the partners'
    frames are slices of it.
    """
    keys = df.lazy().with_row_index("_row")
    if keep is not None:
        keys = keys.filter(keep)
    order = keys.select("_row", *sort).sort(sort, nulls_last=True).collect()["_row"]
    ordered = df[order]
    del order
    runs = ordered.select(pl.col("partner").rle()).unnest("partner")
    parts: list[tuple[str | None, pl.DataFrame]] = []
    at = 0
    for length, partner in runs.iter_rows():
        parts.append((partner, ordered.slice(at, length)))
        at += length
    return parts


def _partitioned(
    parts: list[tuple[str | None, pl.DataFrame]],
    root: Path,
    ds: lake.Dataset,
    day: date,
    writes: _Writes,
) -> list[Path]:
    lake.clear(root, ds, day)
    # `partner` kept in the file (04172); a null partner's folder is `partner=None`
    return sorted(writes.write(root, ds, day, part, str(partner)) for partner, part in parts)


def _single(df: pl.DataFrame, root: Path, ds: lake.Dataset, day: date, writes: _Writes) -> Path:
    lake.clear(root, ds, day)
    return writes.write(root, ds, day, df)


def rate_day(
    workdir: Path,
    day: date,
    *,
    rates_dir: Path | None = None,
) -> RateSummary:
    """Rate the visitors' CDRs of ``day`` and IOT-check its partner events (idempotent).

    See the module docstring for what is read and written.

    Raises:
        ConfigError: reference data missing or inconsistent (exit code 2).
    """
    rates = Rates.load(rates_dir or workdir / "rates")
    root = config.WorkDir(workdir).lake
    files = cdr_files(workdir, day)
    writes = _Writes()
    try:
        read = read_cdrs(files)
        paths = [
            _single(read.findings, root, lake.CDR_FINDINGS, day, writes),
            _single(read.quarantined, root, lake.CDR_QUARANTINE, day, writes),
        ]
        records_in = read.records.height + read.quarantined.height
        quarantined = read.quarantined.height
        rated_all = rate_visitors(read.records, rates)
        del read  # what is left of the day's records is in `rated_all`
        is_rated = pl.col("status") == "rated"
        unrated = rated_all.filter(~is_rated)
        order = ["partner", "start_time", "record_id", "file", "line"]
        # one sort: the partners' files and their TAP-out both take the rows in this order
        by_partner = _by_partner(rated_all, order, is_rated)
        del rated_all
        n_unrated = unrated.height
        n_rated = sum(part.height for _p, part in by_partner)
        # per partner (slices: no copy of the rows); one partner's groups by currency, scale
        keys = ["partner", "currency", "charge_scale"]
        # Int128: an int64 sum wraps silently (issue 13, item 9)
        sums = [
            part.group_by(keys).agg(pl.col("charge").cast(pl.Int128).sum())
            for _p, part in by_partner
        ]
        receivable = [
            (r[0], r[1], int(r[2]), int(r[3]))
            for sums_of in sums
            for r in sums_of.sort(keys).select(*keys, "charge").rows()
        ]
        paths += _partitioned(by_partner, root, lake.RATED_VISITORS, day, writes)
        paths.append(_single(unrated.sort(order[1:]), root, lake.UNRATED_VISITORS, day, writes))
        del unrated
        del by_partner
        writes.wait()  # the visitors' files are written: their rows can go
        checked = breaches = unchecked = 0
        payable: list[tuple[str, str, int, int]] = []
        rounding: list[tuple[str, str, int, int]] = []
        for old in (lake.RATED_PARTNER, lake.IOT_FINDINGS):
            lake.clear(root, old, day)
        events = partner_events(workdir, day, columns=IOT_EVENT_COLUMNS)
        if events is not None:
            result = iot_check(events, rates)
            del events
            checked = result.rated.height
            breaches = result.findings.height
            unchecked = result.rated.filter(pl.col("status") != "checked").height
            # converted once per partner total, never summed from rounded events (item 8)
            totals = settlement_totals(result.rated, rates.fx)
            payable = [(p, c, s, once) for p, c, s, once, _each in totals]
            rounding = [(p, c, s, each - once) for p, c, s, once, each in totals if each != once]
            by_event = _by_partner(result.rated, ["partner", "file", "event_index"])
            paths += _partitioned(by_event, root, lake.RATED_PARTNER, day, writes)
            paths.append(_single(result.findings, root, lake.IOT_FINDINGS, day, writes))
            del result, by_event
        writes.wait()
    finally:
        writes.close()
    return RateSummary(
        day=day,
        cdr_files=files,
        records_in=records_in,
        quarantined=quarantined,
        rated=n_rated,
        unrated=n_unrated,
        receivable=receivable,
        partner_events=checked,
        iot_breaches=breaches,
        unchecked=unchecked,
        payable=payable,
        payable_rounding=rounding,
        paths=paths,
    )
