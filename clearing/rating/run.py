"""The ``rate`` stage of one processing day: visitors' CDRs → rated Parquet → outbound files,
and the IOT check of the day's accepted TAP-in / CIBER-in.

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
* ``out/tap/CD…`` / ``out/ciber/CIBER_…`` — TAP-out, Notifications, CIBER-out;
* ``lake/rated_partner/date=D/partner=P/part-0.parquet`` — the IOT check of every event;
* ``lake/iot_findings/date=D/part-0.parquet`` — the breaches.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl
import pyarrow.parquet as pq

from clearing import config
from clearing.rating._book import Rates
from clearing.rating.cdr import read_cdrs
from clearing.rating.check import iot_check
from clearing.rating.inbound import rate_visitors

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from clearing.outbound.run import OutboundFile

__all__ = ["RateSummary", "cdr_files", "partner_events", "rate_day", "write_parquet"]


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
        outbound: the files written.
        partner_events: accepted partner events checked.
        iot_breaches: IOT-check findings.
        unchecked: partner events the IOT does not price.
        payable: per (partner, settlement currency, scale): the settlement amount.
        paths: the lake and out paths written.
    """

    day: date
    cdr_files: list[Path]
    records_in: int
    quarantined: int
    rated: int
    unrated: int
    receivable: list[tuple[str, str, int, int]]
    outbound: list[OutboundFile]
    partner_events: int
    iot_breaches: int
    unchecked: int
    payable: list[tuple[str, str, int, int]]
    paths: list[Path] = field(default_factory=list)

    @property
    def identity_ok(self) -> bool:
        """records in = rated + unrated + quarantined."""
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
    lake = workdir / "lake" / "cdr" / f"date={day.isoformat()}"
    if lake.is_dir():
        found += [p for p in lake.rglob("*.parquet") if p.is_file()]
    return sorted(found, key=lambda p: (p.name, str(p)))


def partner_events(workdir: Path, day: date) -> pl.DataFrame | None:
    """The day's accepted TAP-in / CIBER-in events, or None when there are none."""
    folder = workdir / "lake" / "events_in" / f"date={day.isoformat()}"
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not files:
        return None
    frames = [pl.read_parquet(f, hive_partitioning=False) for f in files]
    ev = pl.concat(frames, how="diagonal_relaxed")
    if "status" in ev.columns:
        ev = ev.filter(pl.col("status") == "accepted")
    return ev if ev.height else None


def write_parquet(df: pl.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` (zstd; atomic rename); same rows → same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(df.to_arrow(), tmp, compression="zstd")
    tmp.replace(path)
    return path


def _partitioned(df: pl.DataFrame, root: Path, day: date, sort: list[str]) -> list[Path]:
    folder = root / f"date={day.isoformat()}"
    if folder.exists():
        shutil.rmtree(folder)
    written: list[Path] = []
    for (partner,), part in df.sort(sort, nulls_last=True).group_by("partner", maintain_order=True):
        path = folder / f"partner={partner}" / "part-0.parquet"
        written.append(write_parquet(part, path))  # `partner` kept in the file (04172)
    return sorted(written)


def _single(df: pl.DataFrame, root: Path, day: date) -> Path:
    folder = root / f"date={day.isoformat()}"
    if folder.exists():
        shutil.rmtree(folder)
    return write_parquet(df, folder / "part-0.parquet")


def rate_day(
    workdir: Path,
    day: date,
    *,
    settings: config.Settings | None = None,
    rates_dir: Path | None = None,
) -> RateSummary:
    """Run the rate stage for processing date ``day`` (idempotent; see the module docstring).

    Raises:
        ConfigError: no config, reference data missing or inconsistent (exit code 2).
    """
    from clearing.outbound.run import write_outbound  # outbound imports rating: import late

    settings = settings or config.load(workdir)
    rates = Rates.load(rates_dir or workdir / "rates")
    lake = workdir / "lake"
    files = cdr_files(workdir, day)
    read = read_cdrs(files)
    paths = [
        _single(read.findings, lake / "cdr_findings", day),
        _single(read.quarantined, lake / "cdr_quarantine", day),
    ]
    rated_all = rate_visitors(read.records, rates)
    rated = rated_all.filter(pl.col("status") == "rated")
    unrated = rated_all.filter(pl.col("status") != "rated")
    order = ["partner", "start_time", "record_id", "file", "line"]
    paths += _partitioned(rated, lake / "rated_visitors", day, order)
    paths.append(_single(unrated.sort(order[1:]), lake / "unrated_visitors", day))
    outbound = write_outbound(workdir, day, rated, rates, settings)
    receivable = [
        (r[0], r[1], int(r[2]), int(r[3]))
        for r in rated.group_by("partner", "currency", "charge_scale")
        .agg(pl.col("charge").sum())
        .sort("partner")
        .select("partner", "currency", "charge_scale", "charge")
        .rows()
    ]
    events = partner_events(workdir, day)
    checked = breaches = unchecked = 0
    payable: list[tuple[str, str, int, int]] = []
    for old in ("rated_partner", "iot_findings"):
        stale = lake / old / f"date={day.isoformat()}"
        if stale.exists():
            shutil.rmtree(stale)
    if events is not None:
        result = iot_check(events, rates)
        checked = result.rated.height
        breaches = result.findings.height
        unchecked = result.rated.filter(pl.col("status") != "checked").height
        paths += _partitioned(
            result.rated, lake / "rated_partner", day, ["partner", "file", "event_index"]
        )
        paths.append(_single(result.findings, lake / "iot_findings", day))
        payable = [
            (r[0], r[1], int(r[2]), int(r[3]))
            for r in result.rated.group_by("partner", "settlement_currency", "settlement_scale")
            .agg(pl.col("settlement_amount").sum())
            .sort("partner")
            .rows()
        ]
    return RateSummary(
        day=day,
        cdr_files=files,
        records_in=read.records.height + read.quarantined.height,
        quarantined=read.quarantined.height,
        rated=rated.height,
        unrated=unrated.height,
        receivable=receivable,
        outbound=outbound,
        partner_events=checked,
        iot_breaches=breaches,
        unchecked=unchecked,
        payable=payable,
        paths=paths,
    )
