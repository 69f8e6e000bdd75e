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

* ``lake/rated_visitors/date=D/partner=P/part-0.parquet`` — rated rows, per partner; once
  the day's file for ``P`` is in the outbox (:func:`clearing.store.is_sent`) these rows are
  never rewritten: a replay writes its rating of ``P``'s records to
  ``lake/rerated_visitors/date=D/partner=P`` (where it differs) and the delta, new − sent per
  partner, service and currency, to ``lake/rerate_deltas/date=D`` (where there is one);
* ``lake/unrated_visitors/date=D/part-0.parquet`` — rows that could not be rated, with reason
  (``status`` ``unrated``, or ``held``: the partner's reference data cannot price them yet, see
  :mod:`clearing.rating.held`);
* ``lake/cdr_findings/date=D/part-0.parquet``, ``lake/cdr_quarantine/date=D/part-0.parquet``
  (rows the reader held, and records already seen: :mod:`clearing.rating.duplicates`);
* ``lake/cdr_seen/date=D/start=S/part-0.parquet`` — the records first seen on D that started on
  day S (the duplicate index, :func:`clearing.keyindex.write`);
* ``lake/rated_partner/date=D/partner=P/part-0.parquet`` — the IOT check of every event;
* ``lake/iot_findings/date=D/part-0.parquet`` — the breaches;
* in ``clearing.duckdb``: the held records (visitor CDRs, payables) and the ones this date
  releases (:class:`clearing.store.held.HeldRecords`).

Held records of earlier dates that price now are *recycled*: their rated rows join the day's
rated rows (``origin = "recycled"``), so they go out in the day's TAP-out, once.

Resubmitted events (``clearing returns resubmit``): the returned events given to ``D`` in the
store (:meth:`clearing.store.returns_in.ReturnsIn.claim_resubmissions`) are taken from the
rated rows of the day they were first sent, re-rated with the current reference data and added
to ``D``'s rated rows with their RAP's FSN in ``rap_file_sequence_number`` (null on every
other row), so the TAP-out of ``D`` carries them. They are not records of ``D``: they are
counted apart (``resubmitted``), not in the record identity.

* ``clearing.duckdb`` table ``iot_breaches``: the breaches above the configured thresholds
  (``over_threshold``), ``held`` from the payable until accepted or disputed
  (``clearing iot accept`` / ``clearing iot dispute``); a re-run keeps the decisions. The
  day's payable leaves out the events ``held`` or ``disputed``.

Memory: a day whose CDRs (or partner events) fit the ``[performance] memory_mb`` budget
(:func:`chunk_rows`) is rated at once. A bigger day is rated in chunks of records (big files
cut in pieces, :mod:`clearing.rating.cdr`), each chunk's rows written to parts under
``<workdir>/tmp/rate-<day>/`` (``pay-<day>/`` for the events), then each lake file made from
its parts by DuckDB's out-of-core sort (:mod:`clearing.rating._spool`): the same files, byte
for byte, and the same figures as the day rated at once, with a chunk's rows (or a file's row
group) in memory rather than the day's.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl
import pyarrow.parquet as pq

from clearing import config, keyindex, lake
from clearing._io import write_table_atomic
from clearing._memory import release_memory
from clearing.environment import rate_chunk_rows
from clearing.rating import held as holding
from clearing.rating import rated_with
from clearing.rating._book import Rates
from clearing.rating._spool import Spool, concat_to, sorted_to
from clearing.rating.cdr import CdrPiece, PieceReader, count_rows, plan_pieces, read_cdrs
from clearing.rating.check import (
    Thresholds,
    convert_groups,
    iot_check,
    over_threshold,
    settlement_groups,
    settlement_totals,
)
from clearing.rating.delta import ROW_KEYS, replay_delta
from clearing.rating.duplicates import index_history, split_duplicates
from clearing.rating.inbound import rate_visitors
from clearing.store import BreachStatus, IotBreach, open_store, sent_partners

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from datetime import date

    from clearing.rating.cdr import CdrRead
    from clearing.store import Store
    from clearing.store.held import HeldRecord

__all__ = [
    "IOT_EVENT_COLUMNS",
    "MIN_CHUNK_ROWS",
    "RAP_FSN",
    "RESERVED_MB",
    "ROW_BYTES",
    "HeldBreaches",
    "RateSummary",
    "cdr_files",
    "chunk_rows",
    "partner_events",
    "rate_day",
    "write_parquet",
]


@dataclass(frozen=True)
class HeldBreaches:
    """The breaches above the thresholds still held, of one partner and service.

    Attributes:
        partner / service: whose and which.
        events: how many events.
        currency / scale: the settlement currency and its minor unit.
        amount: what they would add to the payable (minor units).
        over: what they charge above the IOT (minor units of the settlement currency).
    """

    partner: str
    service: str
    events: int
    currency: str
    scale: int
    amount: int
    over: int

    def message(self) -> str:
        """The anomaly, as the run reports it (partner, service, count and amounts)."""

        def units(v: int) -> str:
            return f"{Decimal(v).scaleb(-self.scale):f} {self.currency}"

        return (
            f"IOT breach above the threshold: {self.partner} {self.service}, {self.events} "
            f"event(s) charged {units(self.over)} above the IOT; {units(self.amount)} held "
            "from the payable until `clearing iot accept` or `clearing iot dispute` "
            "(see `clearing iot list`)"
        )


@dataclass(frozen=True)
class RateSummary:
    """What :func:`rate_day` did, for the CLI, the run manifest and the nightly summary.

    Attributes:
        day: the processing date.
        cdr_files: the mediation files read.
        records_in: rows read (good + quarantined).
        quarantined: rows held by the reader (bad values), see ``lake/cdr_quarantine``.
        rated / unrated: the day's rows rated / not rated (see ``lake/unrated_visitors``).
        receivable: per (partner, currency, scale): the rated total charge (recycled rows
            included: they go out with the day's rows).
        duplicates: records already seen in another file or on another day (not rated; in
            ``lake/cdr_quarantine`` with their reason).
        partner_events: accepted partner events checked.
        iot_breaches: IOT-check findings.
        unchecked: partner events the IOT does not price.
        payable: per (partner, settlement currency, scale): the settlement amount, the
            partner's invoiced amounts converted once per total (reports/README.md, Rounding;
            held payables left out; released ones in).
        payable_rounding: per (partner, settlement currency, scale), where not 0: the sum of
            the per-event converted amounts minus ``payable`` (what rounding each event and
            summing would have added; shown, never absorbed).
        paths: the lake and out paths written.
        resubmitted: returned events re-rated and added to the day's rated rows.
        resubmit_problems: returned events that could not be resubmitted (they stay to correct).
        sent: partners whose file of the day was already sent: their rated rows were kept
            as sent, ``receivable`` is theirs, the replay's rating is in the re-rate result.
        deltas: the replay's delta lines (``lake/rerate_deltas``), as dicts.
        replay_totals: per sent partner, currency and scale: ``sent`` (the rows behind the
            sent file), ``deltas`` and ``rerated`` (the replay's rating); ``rerated = sent +
            deltas`` always.
        held: the day's records held (their partner's reference data cannot price them).
        held_groups: the held records per partner and service.
        default_rated: the day's records billed at a ``default_rate`` of ``clearing.toml``.
        default_groups: those, per partner and service.
        recycled: held records of earlier dates released into the day's rated rows.
        recycle_missing: records released on this date before that no longer rate.
        payable_held: partner events whose payable is held (no FX rate, unknown currency).
        payable_held_groups: those, per partner and service.
        payable_released: held payables of earlier dates converted and released tonight.
        iot_held: the IOT breaches above the thresholds still held, per partner and service
            (their events are left out of ``payable``).
        chunks: how many chunks the day's CDRs were rated in (1: at once; see
            :func:`chunk_rows`).
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
    resubmitted: int = 0
    resubmit_problems: list[str] = field(default_factory=list)
    sent: tuple[str, ...] = ()
    deltas: list[dict[str, Any]] = field(default_factory=list)
    replay_totals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def replayed(self) -> bool:
        """True when some partner's file of the day was already sent (a replay)."""
        return bool(self.sent)

    held: int = 0
    held_groups: list[holding.HeldGroup] = field(default_factory=list)
    default_rated: int = 0
    default_groups: list[holding.HeldGroup] = field(default_factory=list)
    recycled: int = 0
    recycle_missing: int = 0
    payable_held: int = 0
    payable_held_groups: list[holding.HeldGroup] = field(default_factory=list)
    payable_released: int = 0
    duplicates: int = 0
    iot_held: list[HeldBreaches] = field(default_factory=list)
    payable_rounding: list[tuple[str, str, int, int]] = field(default_factory=list)
    chunks: int = 1

    @property
    def identity_ok(self) -> bool:
        """Records in = rated + unrated + held + quarantined + duplicates."""
        return self.records_in == (
            self.rated + self.unrated + self.held + self.quarantined + self.duplicates
        )

    def problems(self) -> list[str]:
        """The anomalies of the day (each a data problem: exit 1), one line each."""
        out = [f"rate: {g.message(holding.CDR)}" for g in self.held_groups]
        out += [f"rate: {g.message(holding.PAYABLE)}" for g in self.payable_held_groups]
        if self.recycle_missing:
            out.append(
                f"rate: {self.recycle_missing} record(s) released on {self.day} before no "
                "longer rate with today's reference data: they are not in the rated rows; "
                "restore the reference data and run the date again"
            )
        out += [f"rate: {h.message()}" for h in self.iot_held]
        out += self.resubmit_problems
        if not self.identity_ok:
            out.append("rate: records in ≠ rated + unrated + held + quarantined + duplicates")
        return out

    def warnings(self) -> list[str]:
        """Records billed at a default rate (done, but to look at), one line each."""
        return [
            f"rate: {g.count} record(s) of {g.partner} {g.service} billed at the default rate "
            f"of clearing.toml: {g.reason}"
            for g in self.default_groups
        ]


#: The column of the rated rows that holds a resubmitted event's RapFileSequenceNumber.
RAP_FSN: Final = "rap_file_sequence_number"


def _resubmitted(workdir: Path, day: date, rates: Rates) -> tuple[pl.DataFrame | None, list[str]]:
    """The returned events resubmitted on ``day``, re-rated (with ``RAP_FSN``), and problems.

    A fatally returned file is the outbound stage's (sent again whole under its FSN).
    """
    from clearing.rating.inbound import RATED_VISITOR_COLUMNS
    from clearing.store import open_store

    wd = config.WorkDir(workdir)
    if not wd.db.exists():
        return None, []
    with open_store(wd.db) as state:
        claimed = [i for i in state.returns_in.claim_resubmissions(day) if i.kind == "severe"]
        problems: list[str] = []
        frames: list[pl.DataFrame] = []
        groups: dict[tuple[date, str], list[tuple[int, int, str, int]]] = {}
        for i in claimed:
            if i.tap_date is None or i.event_index is None or i.partner is None:
                problems.append(
                    f"resubmit: {i.rap_file} item {i.item}: the returned event is not one of "
                    "our TAP-out events; write it off or correct it by hand"
                )
                state.returns_in.release(i.rap_file, i.item)
                continue
            key = (i.tap_date, i.partner)
            groups.setdefault(key, []).append((i.event_index, i.rap_fsn or 0, i.rap_file, i.item))
        for (sent_on, partner), picks in sorted(groups.items()):
            path = lake.path(wd.lake, lake.RATED_VISITORS, sent_on, partner=partner)
            rows = pl.read_parquet(path, hive_partitioning=False) if path.is_file() else None
            if rows is not None:  # in the order of the TAP-out (outbound.tap sorts so)
                rows = rows.sort("start_time", "record_id", "file", "line")
            for index, rap_fsn, rap_file, item in picks:
                if rows is None or index >= rows.height:
                    problems.append(
                        f"resubmit: {rap_file} item {item}: no rated row {index} of {partner} "
                        f"on {sent_on} in the lake"
                    )
                    state.returns_in.release(rap_file, item)
                    continue
                record = rows.slice(index, 1)
                original = [
                    c for c in record.columns if c not in RATED_VISITOR_COLUMNS and c != RAP_FSN
                ]
                again = rate_visitors(record.select(original), rates)
                if again["status"][0] != "rated":
                    problems.append(
                        f"resubmit: {rap_file} item {item} (partner {partner}): "
                        f"not rated with today's reference data: {again['reason'][0]}"
                    )
                    state.returns_in.release(rap_file, item)
                    continue
                frames.append(again.with_columns(pl.lit(rap_fsn, pl.Int32).alias(RAP_FSN)))
    if not frames:
        return None, problems
    return pl.concat(frames, how="vertical_relaxed"), problems


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
        self._pending: list[Future[object]] = []
        self._sorting = threading.Lock()

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

    def submit(self, write: Callable[[], object]) -> None:
        """Run ``write`` (a writer of lake files) in the pool, with the other writes."""
        self._pending.append(self._pool.submit(write))

    def submit_sort(self, write: Callable[[], object]) -> None:
        """Run ``write``, an out-of-core sort of parts into a lake file, one sort at a time.

        A sort holds DuckDB's share of the budget and a row group of the file: two at once
        would hold both twice (a 10M-record night: 3.3 GB against 2.6 GB); the small writes still
        run beside it.
        """

        def alone() -> object:
            with self._sorting:
                return write()

        self._pending.append(self._pool.submit(alone))

    def sort_now(self, write: Callable[[], object], path: Path) -> Path:
        """Run ``write``, an out-of-core sort into the file ``path``, now; return ``path``.

        After the sort running (:meth:`submit_sort`), if any: never beside it.
        """
        with self._sorting:
            write()
        return path

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
    *,
    keep: Iterable[str] = (),
) -> list[Path]:
    lake.clear(root, ds, day, keep=keep)
    # `partner` kept in the file (04172); a null partner's folder is `partner=None`
    return sorted(writes.write(root, ds, day, part, str(partner)) for partner, part in parts)


def _single(df: pl.DataFrame, root: Path, ds: lake.Dataset, day: date, writes: _Writes) -> Path:
    lake.clear(root, ds, day)
    return writes.write(root, ds, day, df)


def _seen_index(seen: pl.DataFrame, root: Path, day: date, writes: _Writes) -> list[Path]:
    """Write the day's seen index (one file per start day); return its files, as written."""
    lake.clear(root, lake.CDR_SEEN, day)
    table = seen.rechunk().to_arrow()
    writes.submit(lambda: keyindex.write(root, lake.CDR_SEEN, day, table))
    starts = keyindex.start_days(table.column("start_day"))
    order = sorted(starts, key=lambda s: (s is not None, s or day))
    return [lake.path(root, lake.CDR_SEEN, day, start=s) for s in order]


_MONEY_KEYS: Final = ["partner", "currency", "charge_scale"]


def _receivable(
    parts: Sequence[tuple[str | None, pl.DataFrame]],
) -> list[tuple[str, str, int, int]]:
    """Per (partner, currency, scale): the total charge of ``parts`` (by partner, then keys)."""
    keys = _MONEY_KEYS
    # per partner (slices: no copy of the rows); one partner's groups by currency, scale
    # Int128: an int64 sum wraps silently (issue 13, item 9)
    sums = [part.group_by(keys).agg(pl.col("charge").cast(pl.Int128).sum()) for _p, part in parts]
    return [
        (r[0], r[1], int(r[2]), int(r[3]))
        for sums_of in sums
        for r in sums_of.sort(keys).select(*keys, "charge").rows()
    ]


@dataclass(frozen=True)
class _Replay:
    # a sent partner's receivable lines (:func:`_receivable`) of its rows as sent; none: no rows
    kept: dict[str, list[tuple[str, str, int, int]]]
    paths: list[Path]
    deltas: list[dict[str, Any]]
    totals: list[dict[str, Any]]


def _same(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


def _empty_rated() -> pl.DataFrame:
    return pl.from_arrow(lake.RATED_VISITORS.schema.empty_table())  # type: ignore[return-value]


def _totals(df: pl.DataFrame, name: str) -> pl.DataFrame:
    return df.group_by(_MONEY_KEYS).agg(pl.col("charge").sum().cast(pl.Int64).alias(name))


#: The columns of a sent partner's rows that a replay compares and totals (:func:`_replay`).
_COMPARED: Final = [
    *ROW_KEYS,
    "record_id",
    "partner",
    "service",
    "currency",
    "charge_scale",
    "status",
    "charge",
    "tax",
    "iot_version",
]


@dataclass(frozen=True)
class _Side:
    """One side of a sent partner's replay: its rows held, in a Parquet file, or none."""

    frame: pl.DataFrame | None = None
    path: Path | None = None

    @property
    def height(self) -> int:
        if self.frame is not None:
            return self.frame.height
        return 0 if self.path is None else pq.ParquetFile(self.path).metadata.num_rows

    def bucket(self, b: int, n: int) -> pl.DataFrame:
        """The compared columns of the rows whose keys fall in bucket ``b`` of ``n``.

        Both sides of a record (same :data:`ROW_KEYS`) fall in the same bucket.
        """
        if self.frame is not None:
            rows = self.frame.lazy()
        elif self.path is not None:
            rows = pl.scan_parquet(self.path, hive_partitioning=False)
        else:
            rows = _empty_rated().lazy()
        rows = rows.select(_COMPARED)
        if n > 1:
            rows = rows.filter(pl.struct(*ROW_KEYS).hash(seed=0) % n == b)
        return rows.collect(engine="streaming")


def _compared(
    partner: str, old: _Side, new: _Side, rows: int | None
) -> tuple[int, pl.DataFrame, list[tuple[str, str, int, int]], pl.DataFrame]:
    """A sent partner's rows as sent against the replay's, a bucket of about ``rows`` at a time.

    Returns how many rows changed, the delta, the receivable of the rows as sent (none: no
    rows) and the money totals (``sent``, ``rerated``) per :data:`_MONEY_KEYS`.
    """
    n = 1 if rows is None else max(1, -(-max(old.height, new.height) // rows))
    sums: dict[tuple[str, str, int], int] = {}
    money: dict[str, list[pl.DataFrame]] = {"sent": [], "rerated": []}

    def pairs() -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        for b in range(n):
            pair = old.bucket(b, n), new.bucket(b, n)
            for side, frame in zip(money, pair, strict=True):
                money[side].append(_totals(frame, side))
            for p, currency, scale, charge in _receivable([(partner, pair[0])]):
                sums[(p, currency, scale)] = sums.get((p, currency, scale), 0) + charge
            yield pair

    changed, delta = replay_delta(pairs())
    sent, rerated = (
        pl.concat(money[side]).group_by(_MONEY_KEYS).agg(pl.col(side).sum()) for side in money
    )
    both = sent.join(rerated, on=_MONEY_KEYS, how="full", coalesce=True)
    kept = [(*k, v) for k, v in sorted(sums.items())] if old.height else []
    return changed, delta, kept, both


def _replay(
    root: Path,
    day: date,
    sent: frozenset[str],
    replayed: Mapping[str, Callable[[], pl.DataFrame | Path]],
    writes: _Writes,
    rows: int | None,
) -> _Replay:
    """Keep the sent partners' rows; write the re-rate result where it differs, and the delta.

    ``lake/rerated_visitors/date=D/partner=P`` holds the replay's rated rows of a sent partner
    whose rating changed; ``lake/rerate_deltas/date=D`` the delta (new − sent) of the sent
    partners (no file: the replay rated everything as it was sent, so the lake is as it was).
    ``replayed``: per sent partner, its rows as rated by the replay (made when called): a
    frame, or that partner's re-rate result file, written (removed here if nothing changed).
    One partner at a time, and of its records at most about ``rows`` (the columns compared)
    at once, cut by their keys (None: all at once, the day being held already): a replay of a
    big night holds neither every sent partner's rows nor the biggest one's whole.
    """
    for ds in (lake.RERATED_VISITORS, lake.RERATE_DELTAS):
        lake.clear(root, ds, day)
    kept: dict[str, list[tuple[str, str, int, int]]] = {}
    paths: list[Path] = []
    deltas: list[pl.DataFrame] = []
    totals: list[pl.DataFrame] = []
    for p in sorted(sent):
        f = lake.path(root, lake.RATED_VISITORS, day, partner=p)
        old = _Side(path=f if f.is_file() else None)
        make = replayed.get(p)
        made = make() if make is not None else None
        new = _Side(path=made) if isinstance(made, Path) else _Side(frame=made)
        changed, delta, kept[p], both = _compared(p, old, new, rows)
        if changed and new.frame is not None:
            paths.append(writes.write(root, lake.RERATED_VISITORS, day, new.frame, p))
            writes.wait()  # written before the next partner's rows are made
        elif changed and new.path is not None:
            paths.append(new.path)
        elif new.path is not None:
            new.path.unlink()  # the replay rated everything as it was sent
        deltas.append(delta)
        totals.append(both)
        del old, new, made
    if not sent:
        return _Replay(kept, [], [], [])
    delta = pl.concat(deltas)
    if delta.height:  # an unchanged replay leaves the lake as it was
        paths.append(writes.write(root, lake.RERATE_DELTAS, day, delta))
    money = (
        pl.concat(totals)
        .join(
            delta.group_by(_MONEY_KEYS).agg(pl.col("delta").sum().alias("deltas")),
            on=_MONEY_KEYS,
            how="left",
        )
        .select(
            "partner",
            "currency",
            pl.col("charge_scale").alias("scale"),
            pl.col("sent").fill_null(0),
            pl.col("deltas").fill_null(0),
            pl.col("rerated").fill_null(0),
        )
        .sort("partner", "currency", "scale")
    )
    return _Replay(kept, paths, delta.to_dicts(), money.to_dicts())


def _open_held(workdir: Path, needed: bool) -> Store | None:
    """The work folder's store for the held records: when it exists, or when ``needed``."""
    wd = config.WorkDir(workdir)
    if not needed and not wd.db.is_file():
        return None
    return open_store(wd.db)


def _rate_visitors(
    workdir: Path,
    day: date,
    files: list[Path],
    rates: Rates,
    settings: config.Settings | None,
    window: int,
) -> tuple[pl.DataFrame, _Visitors]:
    """The day's CDRs rated (held, default-rated, recycled rows too); the reader's output."""
    read = read_cdrs(files)
    root = config.WorkDir(workdir).lake
    index_history(root, day, window)  # a work folder of a release before the start-day index
    split = split_duplicates(read.records, root=root, day=day, window_days=window)
    visitors = _Visitors(
        findings=pl.concat([read.findings, split.findings.cast(read.findings.schema)]),
        quarantine=pl.concat([read.quarantined, split.duplicates.cast(read.quarantined.schema)]),
        seen=split.seen,
        records=read.records.height,
        quarantined=read.quarantined.height,
        duplicates=split.duplicates.height,
    )
    columns = read.records.columns
    del read
    rated_all = rate_visitors(split.records, rates).with_columns(
        pl.lit("cdr").alias("origin"), pl.lit(day, pl.Date).alias("origin_date")
    )
    rated_all, n_default = holding.apply_default_rate(rated_all, settings)
    defaulted = rated_all.filter(pl.col("iot_version") == "clearing.toml") if n_default else None
    del split
    store = _open_held(workdir, bool(rated_all.select(holding.holdable().any()).item()))
    if store is None:
        return rated_all, visitors
    with store, store.transaction():
        rated_all = holding.hold_visitors(rated_all, day, store.held)
        recycle = holding.recycle_visitors(
            config.WorkDir(workdir).lake, day, store.held, rates, settings, columns
        )
    if defaulted is not None:
        visitors.default_groups = holding.held_groups(defaulted)
        visitors.default_rated = defaulted.height
    if recycle.rated.height:
        visitors.recycled = recycle.rated.height
        rated_all = pl.concat([rated_all, recycle.rated.select(rated_all.columns)])
    visitors.recycle_missing = recycle.missing
    return rated_all, visitors


@dataclass
class _Visitors:
    findings: pl.DataFrame  # the reader's and the duplicates'
    quarantine: pl.DataFrame  # rows the reader held, and the duplicates
    seen: pl.DataFrame  # the records first seen on the day (lake/cdr_seen)
    records: int  # rows read (good ones; duplicates among them)
    quarantined: int  # rows the reader held
    duplicates: int
    default_rated: int = 0
    default_groups: list[holding.HeldGroup] = field(default_factory=list)
    recycled: int = 0
    recycle_missing: int = 0


@dataclass
class _Payables:
    payable: list[tuple[str, str, int, int]] = field(default_factory=list)
    checked: int = 0
    breaches: int = 0
    unchecked: int = 0
    held: int = 0
    held_groups: list[holding.HeldGroup] = field(default_factory=list)
    released: int = 0
    iot_held: list[IotBreach] = field(default_factory=list)
    rounding: list[tuple[str, str, int, int]] = field(default_factory=list)


def _payables(
    workdir: Path,
    day: date,
    rates: Rates,
    root: Path,
    writes: _Writes,
    settings: config.Settings | None,
) -> tuple[_Payables, list[Path]]:
    """The IOT check of the day's partner events, held payables, released ones.

    Left out of the payable: events whose amount cannot be converted (held, see
    :mod:`clearing.rating.held`) and IOT breaches above the thresholds not accepted.
    """
    for old in (lake.RATED_PARTNER, lake.IOT_FINDINGS):
        lake.clear(root, old, day)
    out = _Payables()
    paths: list[Path] = []
    events = partner_events(workdir, day, columns=IOT_EVENT_COLUMNS)
    rated: pl.DataFrame | None = None
    result = None
    if events is not None:
        result = iot_check(events, rates)
        del events
        rated = over_threshold(result.rated, _thresholds(workdir, settings))
        out.iot_held = _hold_breaches(workdir, day, rated)
    needed = rated is not None and bool(
        rated.select(pl.col("hold_reason").is_not_null().any()).item()
    )
    store = _open_held(workdir, needed)
    released: list[tuple[str, str, int, int]] = []
    if store is not None:
        with store, store.transaction():
            if rated is not None:
                rated = holding.hold_payables(rated, day, store.held)
            recycle = holding.recycle_payables(root, day, store.held, rates)
        released = recycle.payable
        out.released = len(recycle.released)
    sums: dict[tuple[str, str, int], int] = {}
    if rated is not None and result is not None:
        out.checked = rated.height
        out.breaches = result.findings.height
        out.unchecked = rated.filter(pl.col("status") != "checked").height
        held = rated.filter(pl.col("hold_reason").is_not_null())
        out.held = held.height
        out.held_groups = holding.held_groups(held, reason="hold_reason")
        withheld = pl.DataFrame(
            [(b.file, b.event_index) for b in out.iot_held if b.status != BreachStatus.ACCEPTED],
            schema={"file": pl.String, "event_index": pl.Int64},
            orient="row",
        )
        paid = rated.filter(pl.col("hold_reason").is_null()).join(
            withheld, on=["file", "event_index"], how="anti"
        )
        # converted once per partner total, never summed from rounded events (item 8)
        for p, c, sc, once, each in settlement_totals(paid, rates.fx):
            sums[(p, c, sc)] = once
            if each != once:
                out.rounding.append((p, c, sc, each - once))
        del paid
        # the lake rows stay as they were; the breaches above the thresholds are the store's
        rated = rated.drop("over_settlement", "over_threshold")
        by_event = _by_partner(rated, ["partner", "file", "event_index"])
        paths += _partitioned(by_event, root, lake.RATED_PARTNER, day, writes)
        paths.append(_single(result.findings, root, lake.IOT_FINDINGS, day, writes))
        del result, by_event
    for p, c, sc, a in released:
        sums[(p, c, sc)] = sums.get((p, c, sc), 0) + a
    order = [k for k, _v in sorted(sums.items(), key=lambda kv: kv[0][0])]
    out.payable = [(p, c, sc, sums[(p, c, sc)]) for p, c, sc in order]
    return out, paths


def _event_chunks(workdir: Path, day: date, rows: int) -> list[list[tuple[Path, int, int]]]:
    """The day's partner event files in chunks of at most ``rows`` rows (file, first, count).

    One chunk: the day's events fit (:func:`_payables` reads them at once). A file is cut by
    row number where it is bigger (the IOT check prices each event on its own).
    """
    folder = lake.partition(workdir / "lake", lake.EVENTS_IN, day)
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    sizes = [count_rows(f) for f in files]
    if sum(sizes) <= rows:
        return [[(f, 0, n) for f, n in zip(files, sizes, strict=True)]]
    out: list[list[tuple[Path, int, int]]] = []
    held = 0
    for f, n in zip(files, sizes, strict=True):
        for start in range(0, max(n, 1), rows):
            take = min(rows, n - start)
            if not out or (held + take > rows and held):
                out.append([])
                held = 0
            out[-1].append((f, start, take))
            held += take
    return out


def _chunk_events(
    chunks: list[list[tuple[Path, int, int]]], columns: Sequence[str]
) -> Iterator[pl.DataFrame]:
    """The accepted events of each chunk, as :func:`partner_events` reads the whole day.

    Each chunk has the day's columns and types (a file without a column: nulls).
    """
    files = [f for chunk in chunks for f, start, _n in chunk if start == 0]
    schemas = {f: pl.read_parquet_schema(f) for f in files}
    by_status = any("status" in sch for sch in schemas.values())
    day_schema = pl.concat(
        [
            pl.DataFrame(schema={c: t for c, t in sch.items() if c in columns})
            for sch in schemas.values()
        ],
        how="diagonal_relaxed",
    ).schema
    for chunk in chunks:
        frames = []
        for f, start, n in chunk:
            sch = schemas[f]
            scan = pl.scan_parquet(f, hive_partitioning=False).select(
                [c for c in sch if c in columns]
            )
            scan = scan.slice(start, n)
            if by_status:
                keep = pl.col("status") == "accepted" if "status" in sch else pl.lit(False)
                scan = scan.filter(keep)
            frames.append(scan.collect())
        ev = pl.concat(frames, how="diagonal_relaxed")
        yield ev.select(
            pl.col(c).cast(t) if c in ev.columns else pl.lit(None, t).alias(c)
            for c, t in day_schema.items()
        )
        del ev, frames


def _payables_chunked(
    workdir: Path,
    day: date,
    rates: Rates,
    root: Path,
    settings: config.Settings | None,
    chunks: list[list[tuple[Path, int, int]]],
    budget: int,
    writes: _Writes,
) -> tuple[_Payables, list[Path]]:
    """:func:`_payables` for a day whose partner events do not fit the budget: in chunks.

    Each chunk of events is IOT-checked and its rows written to parts; the breaches above the
    thresholds of every chunk are recorded at once; then each chunk's rows are held or paid
    (the payable converted once per total from the chunks' sums) and the lake files are made
    from the parts, sorted as the whole day's.
    """
    for old in (lake.RATED_PARTNER, lake.IOT_FINDINGS):
        lake.clear(root, old, day)
    out = _Payables()
    paths: list[Path] = []
    thresholds = _thresholds(workdir, settings)
    found: list[IotBreach] = []
    with Spool(workdir / "tmp" / f"pay-{day.isoformat()}") as spool:
        seq = 0
        needed = False
        for events in _chunk_events(chunks, IOT_EVENT_COLUMNS):
            if not events.height:
                continue
            result = iot_check(events, rates)
            del events
            rated = over_threshold(result.rated, thresholds)
            found += _breach_rows(day, rated)
            needed = needed or bool(rated.select(pl.col("hold_reason").is_not_null().any()).item())
            rated = rated.with_row_index("_seq", offset=seq)
            seq += rated.height
            out.breaches += result.findings.height
            spool.add("findings", result.findings.with_columns(rated.filter("breach")["_seq"]))
            spool.add("checked", rated)
            del result, rated
            release_memory()
        if seq:
            out.iot_held = _record_breaches(workdir, day, found)
        store = _open_held(workdir, needed)
        withheld = pl.DataFrame(
            [(b.file, b.event_index) for b in out.iot_held if b.status != BreachStatus.ACCEPTED],
            schema={"file": pl.String, "event_index": pl.Int64},
            orient="row",
        )
        partners: dict[str | None, str] = {}
        groups: list[pl.DataFrame] = []
        held_counts: list[pl.DataFrame] = []
        released: list[tuple[str, str, int, int]] = []
        with contextlib.ExitStack() as stack:
            held_records = None
            before = None
            if store is not None:
                stack.enter_context(store)
                stack.enter_context(store.transaction())
                held_records = store.held
                before = held_records.of_origin(holding.PAYABLE, day)
            for part in spool.files("checked"):
                rated = pl.read_parquet(part, hive_partitioning=False)
                if held_records is not None:
                    rated = holding.hold_payables(rated, day, held_records, before)
                out.checked += rated.height
                out.unchecked += rated.filter(pl.col("status") != "checked").height
                held = rated.filter(pl.col("hold_reason").is_not_null())
                out.held += held.height
                if held.height:
                    held_counts.append(holding.group_counts(held, reason="hold_reason"))
                paid = rated.filter(pl.col("hold_reason").is_null()).join(
                    withheld, on=["file", "event_index"], how="anti"
                )
                groups.append(settlement_groups(paid))
                del paid, held
                rated = rated.drop("over_settlement", "over_threshold")
                for (partner,), rows in rated.partition_by(
                    "partner", maintain_order=True, as_dict=True
                ).items():
                    name = partners.setdefault(partner, f"partner-{len(partners)}")
                    spool.add(name, rows)
                del rated
            if held_records is not None:
                recycle = holding.recycle_payables(root, day, held_records, rates)
                released = recycle.payable
                out.released = len(recycle.released)
        out.held_groups = holding.merge_groups(held_counts)
        sums: dict[tuple[str, str, int], int] = {}
        if seq:
            merged = settlement_groups(groups[0], *groups[1:]) if len(groups) > 1 else groups[0]
            for p, c, sc, once, each in convert_groups(merged, rates.fx):
                sums[(p, c, sc)] = once
                if each != once:
                    out.rounding.append((p, c, sc, each - once))
            del groups, merged
            release_memory()  # the checked parts' rows: the sorts are the peak, not the sum
            paths += _pay_files(spool, partners, root, day, budget, writes)
    for p, c, sc, a in released:
        sums[(p, c, sc)] = sums.get((p, c, sc), 0) + a
    keys = [k for k, _v in sorted(sums.items(), key=lambda kv: kv[0][0])]
    out.payable = [(p, c, sc, sums[(p, c, sc)]) for p, c, sc in keys]
    return out, paths


def _pay_files(
    spool: Spool,
    partners: dict[str | None, str],
    root: Path,
    day: date,
    budget: int,
    writes: _Writes,
) -> list[Path]:
    """Write ``rated_partner`` (per partner) and ``iot_findings`` from their parts, sorted.

    One sort at a time (DuckDB within a quarter of the budget); returns when they are written.
    """
    order = ["file", "event_index", "_seq"]  # `_seq`: the whole day's order of equal keys
    jobs = [
        (spool.files(name), lake.path(root, lake.RATED_PARTNER, day, partner=str(partner)))
        for partner, name in partners.items()
    ]
    findings = lake.path(root, lake.IOT_FINDINGS, day)
    for k, (files, target) in enumerate([*jobs, (spool.files("findings"), findings)]):
        writes.submit_sort(
            partial(
                sorted_to,
                files,
                target,
                order,
                nulls_last=True,
                compression=lake.RATED_PARTNER.compression
                if target != findings
                else lake.IOT_FINDINGS.compression,
                tmp=spool.tmp / str(k),
                memory_mb=budget // 2,
                drop=["_seq"],
            )
        )
    writes.wait()  # before the parts go
    return [*sorted(t for _f, t in jobs), findings]


def _window(workdir: Path) -> int:
    """The duplicate window of ``workdir``'s ``clearing.toml`` (the default without one)."""
    if (workdir / config.CONFIG_NAME).is_file():
        return config.load(workdir).validation.duplicate_window_days
    return config.Validation().duplicate_window_days


def _thresholds(workdir: Path, settings: config.Settings | None) -> Callable[[str], Thresholds]:
    """The partners' IOT breach thresholds (the defaults without a ``clearing.toml``)."""
    if settings is None and (workdir / config.CONFIG_NAME).is_file():
        settings = config.load(workdir)
    if settings is not None:
        return settings.iot_breach_thresholds
    defaults = config.Validation()
    absolute, percent = defaults.iot_breach_absolute, defaults.iot_breach_percent
    pair = (
        None if absolute == "off" else absolute,
        None if percent == "off" else percent,
    )
    return lambda _code: pair


def _breach_rows(day: date, rated: pl.DataFrame) -> list[IotBreach]:
    cols = (
        "partner",
        "file",
        "event_index",
        "service",
        "currency",
        "charge_scale",
        "charged",
        "expected",
        "difference",
        "settlement_currency",
        "settlement_scale",
        "settlement_amount",
        "over_settlement",
    )
    over = rated.filter(pl.col("over_threshold")).select(cols)
    return [IotBreach(day, *r) for r in over.rows()]


def _hold_breaches(workdir: Path, day: date, rated: pl.DataFrame) -> list[IotBreach]:
    """Record the day's breaches above the thresholds; return every breach row of the day.

    The store is opened only when there is something to record or a store to clean.
    """
    return _record_breaches(workdir, day, _breach_rows(day, rated))


def _record_breaches(workdir: Path, day: date, found: list[IotBreach]) -> list[IotBreach]:
    """Record ``found``, the day's breaches above the thresholds; every breach row of the day."""
    db = config.WorkDir(workdir).db
    if not found and not db.exists():
        return []
    with open_store(db) as store, store.transaction():
        return store.iot_breaches.record_day(day, found)


def _held_summary(rows: list[IotBreach]) -> list[HeldBreaches]:
    groups: dict[tuple[str, str, str, int], list[IotBreach]] = {}
    for b in rows:
        if b.status == BreachStatus.HELD:
            key = (b.partner, b.service or "", b.settlement_currency or "", b.settlement_scale or 0)
            groups.setdefault(key, []).append(b)
    return [
        HeldBreaches(
            partner,
            service,
            len(items),
            currency,
            scale,
            sum(b.settlement_amount or 0 for b in items),
            sum(b.over_settlement or 0 for b in items),
        )
        for (partner, service, currency, scale), items in sorted(groups.items())
    ]


#: The rated rows' order (nulls last): the partners' files and their TAP-out take them so.
_ORDER: Final = ["partner", "start_time", "record_id", "file", "line"]

#: Bytes of peak memory one visitor CDR adds to the rate stage (the reader's text and typed
#: columns, the duplicate lookup, the rating's working tables, the rated row and its write):
#: measured on a day of 500 000 records (``clearing samples generate --events 1000000``),
#: about 2 900; counted as 3 500: what the allocators keep of one chunk beside the next (at
#: 3 000 a 10M-record night's rate stage peaked at 2.1–2.2 GB on the 2 GB budget).
ROW_BYTES: Final = 3500

#: Megabytes of the budget the rest of the process holds (Python, polars, DuckDB, pyarrow,
#: the reference data): measured about 130.
RESERVED_MB: Final = 256


#: The smallest chunk (records): below it a chunk's fixed costs (a DuckDB lookup, parts,
#: a store transaction) outweigh its rows; a budget under about 400 MB gets it.
MIN_CHUNK_ROWS: Final = 50_000


#: The budget (MB) from which a chunked day's visitor sorts run on beside the partners' events
#: (:func:`rate_day`; the default budget: ~10 s less at 10M records a night, ~0.3 GB more at
#: its peak); below it they finish first.
OVERLAP_MB: Final = 2048


def chunk_rows(memory_mb: int) -> int:
    """How many CDRs the rate stage holds at once for a budget of ``memory_mb`` megabytes.

    A day with more records is rated in chunks of at most this many records (a big file in
    pieces; a CSV file that cannot be cut safely, see :func:`clearing.rating.cdr.plan_pieces`,
    is a chunk alone); the partners' files are then made from the chunks' parts by DuckDB's
    out-of-core sort within half the budget.
    """
    return max(MIN_CHUNK_ROWS, ((memory_mb - RESERVED_MB) << 20) // ROW_BYTES)


def _budget(workdir: Path, settings: config.Settings | None) -> int:
    """``[performance] memory_mb`` of ``settings``, or of the work folder's ``clearing.toml``."""
    if settings is None and (workdir / config.CONFIG_NAME).is_file():
        settings = config.load(workdir)
    return (settings.performance if settings is not None else config.Performance()).memory_mb


def _chunks(files: list[Path], rows: int) -> list[list[CdrPiece]]:
    """``files`` in chunks of at most ``rows`` records, in order (one chunk: the day fits).

    A file bigger than ``rows`` is read in pieces of ``rows`` records where it can be
    (:func:`clearing.rating.cdr.plan_pieces`); a file that cannot be cut is a chunk alone.
    """
    sizes = [count_rows(f) for f in files]
    if sum(sizes) <= rows:
        return [[CdrPiece(f, 0, n) for f, n in zip(files, sizes, strict=True)]] if files else []
    out: list[list[CdrPiece]] = []
    held = 0
    for f, n in zip(files, sizes, strict=True):
        for piece in plan_pieces(f, rows) if n > rows else [CdrPiece(f, 0, n)]:
            if not out or (held + piece.rows > rows and held):
                out.append([])
                held = 0
            out[-1].append(piece)
            held += piece.rows
    return out


@dataclass
class _DayVisitors:
    """The visitors' half of :func:`rate_day`: files written and figures."""

    read: _Visitors
    paths: list[Path]
    records_in: int
    rated: int
    unrated: int
    held: int
    held_groups: list[holding.HeldGroup]
    receivable: list[tuple[str, str, int, int]]
    replay: _Replay
    resubmitted: int
    resubmit_problems: list[str]


def _resubmitted_rows(again: pl.DataFrame) -> pl.DataFrame:
    """The resubmitted rows with their ``origin`` and ``origin_date`` (their first rating's)."""
    first = pl.col("origin_date") if "origin_date" in again.columns else None
    return again.with_columns(
        pl.lit("resubmitted").alias("origin"),
        (pl.lit(None, pl.Date) if first is None else first).alias("origin_date"),
    )


class _Chunked:
    """The running figures and parts of a day rated in chunks (:func:`_visitors_chunked`)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.records = 0
        self.quarantined = 0
        self.duplicates = 0
        self.offset = 0
        self.rated = 0
        self.unrated = 0
        self.held = 0
        self.default_rated = 0
        self.held_counts: list[pl.DataFrame] = []
        self.default_counts: list[pl.DataFrame] = []
        self.partners: dict[str | None, str] = {}  # partner → its rated parts
        self.starts: dict[date | None, str] = {}  # start day → its seen-index parts
        self.money: dict[tuple[str | None, str | None, int | None], int] = {}

    def _add_by(self, rows: pl.DataFrame, column: str, names: dict[Any, str], prefix: str) -> None:
        """Add ``rows`` to the parts of their ``column`` value (named ``prefix-N``)."""
        for (value,), part in rows.partition_by(column, maintain_order=True, as_dict=True).items():
            self.spool.add(names.setdefault(value, f"{prefix}-{len(names)}"), part)

    def add_rated(self, rows: pl.DataFrame) -> None:
        """Add rated rows to their partners' parts and sums."""
        self._add_by(rows, "partner", self.partners, "rated")
        sums = rows.group_by(_MONEY_KEYS).agg(pl.col("charge").cast(pl.Int128).sum())
        for p, c, sc, total in sums.rows():
            key = (p, c, sc)
            self.money[key] = self.money.get(key, 0) + int(total or 0)

    def add_seen(self, seen: pl.DataFrame) -> None:
        """Add a chunk's seen index to its start days' parts."""
        self._add_by(seen, "start_day", self.starts, "seen")

    def receivable(self, partner: str | None) -> list[tuple[str, str, int, int]]:
        """:func:`_receivable` of ``partner``'s rows, from the chunks' sums."""
        keys = sorted(
            (k for k in self.money if k[0] == partner),
            key=lambda k: (k[1] is not None, k[1] or "", k[2] is not None, k[2] or 0),
        )
        return [(p, c, sc, self.money[(p, c, sc)]) for p, c, sc in keys]  # type: ignore[misc]


def _rate_chunk(
    state: _Chunked,
    workdir: Path,
    day: date,
    read: CdrRead,
    rates: Rates,
    settings: config.Settings | None,
    window: int,
    before: list[HeldRecord],
) -> tuple[list[str], bool]:
    """Rate one chunk of the day's records into ``state``; its columns, whether it held."""
    root = config.WorkDir(workdir).lake
    spool = state.spool
    split = split_duplicates(
        read.records,
        root=root,
        day=day,
        window_days=window,
        earlier=spool.files("keys"),
        offset=state.offset,
    )
    columns = read.records.columns
    state.offset += read.records.height
    state.records += read.records.height
    state.quarantined += read.quarantined.height
    state.duplicates += split.duplicates.height
    assert split.keys is not None
    spool.add("keys", split.keys)
    spool.add("findings", read.findings)
    spool.add("dup-findings", split.findings.cast(read.findings.schema))
    spool.add("quarantine", read.quarantined)
    spool.add("duplicates", split.duplicates.cast(read.quarantined.schema))
    state.add_seen(split.seen)
    del read
    rated = rate_visitors(split.records, rates).with_columns(
        pl.lit("cdr").alias("origin"), pl.lit(day, pl.Date).alias("origin_date")
    )
    del split
    rated, n_default = holding.apply_default_rate(rated, settings)
    if n_default:
        defaulted = rated.filter(pl.col("iot_version") == "clearing.toml")
        state.default_rated += defaulted.height
        state.default_counts.append(holding.group_counts(defaulted))
    store = _open_held(workdir, bool(rated.select(holding.holdable().any()).item()))
    if store is not None:
        with store, store.transaction():
            rated = holding.hold_visitors(rated, day, store.held, before)
    rated = rated.with_columns(pl.lit(None, pl.Int32).alias(RAP_FSN))
    is_rated = pl.col("status") == "rated"
    unrated = rated.filter(~is_rated)
    held = unrated.filter(pl.col("status") == holding.HELD)
    if held.height:
        state.held_counts.append(holding.group_counts(held))
    state.held += held.height
    state.unrated += unrated.height - held.height
    spool.add("unrated", unrated)
    good = rated.filter(is_rated)
    state.rated += good.height
    state.add_rated(good)
    return columns, store is not None


def _sort_mb(budget: int) -> int:
    """The memory (MB) of one of the visitors' out-of-core sorts (DuckDB: half of it).

    Beside the partners' events (from :data:`OVERLAP_MB`, their chunks taking half the
    budget) a quarter of the budget; alone, half.
    """
    return budget // 4 if budget >= OVERLAP_MB else budget // 2


def _sorting(
    files: list[Path], target: Path, ds: lake.Dataset, tmp: Path, memory_mb: int
) -> Callable[[], None]:
    """The out-of-core sort of a partner's rated rows (the parts ``files``) into ``target``."""
    return partial(
        sorted_to,
        files,
        target,
        _ORDER[1:],
        nulls_last=True,
        compression=ds.compression,
        tmp=tmp,
        memory_mb=memory_mb,
    )


def _visitors_chunked(
    workdir: Path,
    day: date,
    chunks: list[list[CdrPiece]],
    rates: Rates,
    settings: config.Settings | None,
    window: int,
    sent: frozenset[str],
    budget: int,
    writes: _Writes,
    spools: contextlib.ExitStack,
) -> _DayVisitors:
    """The visitors' half of :func:`rate_day` for a day bigger than the budget: in chunks.

    Each chunk of files is read, split from its duplicates (the earlier chunks' records
    looked up on disk), rated and held as the whole day would be, its rows written to parts
    under ``<workdir>/tmp/rate-<day>/``; then every lake file is made from its parts (the
    rated and unrated rows sorted by DuckDB out of core), with the bytes and figures of a
    day rated at once. At most a chunk's rows, or a row group of a file, are held at once.

    The sorts are left running in ``writes`` (on one core, beside the partners' IOT check
    of the caller): the parts' folder is entered in ``spools``, which the caller closes once
    ``writes`` are done.
    """
    wd = config.WorkDir(workdir)
    root = wd.lake
    sort_mb = _sort_mb(budget)
    spool = spools.enter_context(Spool(workdir / "tmp" / f"rate-{day.isoformat()}"))
    index_history(root, day, window)  # a work folder of a release before the index
    before: list[HeldRecord] = []
    opened = wd.db.is_file()
    if opened:  # read once: a chunk's holds are not "held on an earlier run"
        with open_store(wd.db) as state_db:
            before = state_db.held.of_origin(holding.CDR, day)
    state = _Chunked(spool)
    columns: list[str] = []
    reader = PieceReader()
    for pieces in chunks:  # the chunk's records: held by _rate_chunk only (it drops them)
        columns, held = _rate_chunk(
            state, workdir, day, reader.read(pieces), rates, settings, window, before
        )
        opened = opened or held
        release_memory()
    vis = _Visitors(
        findings=pl.DataFrame(),
        quarantine=pl.DataFrame(),
        seen=pl.DataFrame(),
        records=state.records,
        quarantined=state.quarantined,
        duplicates=state.duplicates,
    )
    if opened:
        with open_store(wd.db) as store, store.transaction():
            recycle = holding.recycle_visitors(root, day, store.held, rates, settings, columns)
        vis.default_groups = holding.merge_groups(state.default_counts)
        vis.default_rated = state.default_rated
        vis.recycle_missing = recycle.missing
        if recycle.rated.height:
            vis.recycled = recycle.rated.height
            first = spool.files(next(iter(state.partners.values())))[0]
            names = list(pl.read_parquet_schema(first))
            state.add_rated(
                recycle.rated.with_columns(pl.lit(None, pl.Int32).alias(RAP_FSN)).select(names)
            )
    # the lake files: one sort at a time (within `sort_mb`, see above), the plain
    # copies beside it
    paths = [_concat(spool, ["findings", "dup-findings"], root, lake.CDR_FINDINGS, day, writes)]
    paths.append(
        _concat(spool, ["quarantine", "duplicates"], root, lake.CDR_QUARANTINE, day, writes)
    )
    paths += _seen_from_parts(spool, state, root, day, writes)
    again, resubmit_problems = _resubmitted(workdir, day, rates)
    n_again = 0 if again is None else again.height
    if again is not None:
        template = pl.Schema(pl.read_parquet_schema(spool.files("unrated")[0]))
        again = _resubmitted_rows(again).select(list(template)).cast(template)
        state.add_rated(again)
    replayed: dict[str, Callable[[], pl.DataFrame | Path]] = {}
    fresh: list[str | None] = []
    lake.clear(root, lake.RATED_VISITORS, day, keep=sent)
    written: list[Path] = []
    for partner, name in state.partners.items():
        if partner is not None and partner in sent:
            # sorted when the replay comes to it, into its re-rate result (out of core)
            target = lake.path(root, lake.RERATED_VISITORS, day, partner=partner)
            tmp = spool.tmp / f"replay-{partner}"
            sort = _sorting(spool.files(name), target, lake.RERATED_VISITORS, tmp, sort_mb)
            replayed[partner] = partial(writes.sort_now, sort, target)
            continue
        fresh.append(partner)
        target = lake.path(root, lake.RATED_VISITORS, day, partner=str(partner))
        tmp = spool.tmp / str(len(written))
        writes.submit_sort(_sorting(spool.files(name), target, lake.RATED_VISITORS, tmp, sort_mb))
        written.append(target)
    replay = _replay(root, day, sent, replayed, writes, chunk_rows(budget))
    del replayed
    out = sorted(
        [*fresh, *(p for p, lines in replay.kept.items() if lines)],
        key=lambda p: (p is None, p or ""),
    )
    receivable = [
        line
        for p in out
        for line in (replay.kept[p] if p is not None and p in sent else state.receivable(p))
    ]
    paths += sorted(written)
    paths += replay.paths
    lake.clear(root, lake.UNRATED_VISITORS, day)
    target = lake.path(root, lake.UNRATED_VISITORS, day)
    writes.submit_sort(
        partial(
            sorted_to,
            spool.files("unrated"),
            target,
            _ORDER[1:],
            nulls_last=False,
            compression=lake.UNRATED_VISITORS.compression,
            tmp=spool.tmp / "unrated",
            memory_mb=sort_mb,
        )
    )
    paths.append(target)
    return _DayVisitors(
        read=vis,
        paths=paths,
        records_in=state.records + state.quarantined,
        rated=state.rated,
        unrated=state.unrated,
        held=state.held,
        held_groups=holding.merge_groups(state.held_counts),
        receivable=receivable,
        replay=replay,
        resubmitted=n_again,
        resubmit_problems=resubmit_problems,
    )


def _seen_from_parts(
    spool: Spool, state: _Chunked, root: Path, day: date, writes: _Writes
) -> list[Path]:
    """The day's ``cdr_seen`` files (one per start day) made from the chunks' parts."""
    lake.clear(root, lake.CDR_SEEN, day)
    names = list(lake.CDR_SEEN.schema.names)
    paths = []
    for start in sorted(state.starts, key=lambda s: (s is not None, s or day)):
        target = lake.path(root, lake.CDR_SEEN, day, start=start)
        writes.submit(
            partial(
                concat_to,
                spool.files(state.starts[start]),
                target,
                compression=lake.CDR_SEEN.compression,
                columns=names,
            )
        )
        paths.append(target)
    return paths


def _concat(
    spool: Spool, names: list[str], root: Path, ds: lake.Dataset, day: date, writes: _Writes
) -> Path:
    """Write the parts of ``names`` (in order) as the file of ``ds`` (in ``writes``); its path."""
    lake.clear(root, ds, day)
    target = lake.path(root, ds, day)
    parts = [f for n in names for f in spool.files(n)]
    writes.submit(partial(concat_to, parts, target, compression=ds.compression))
    return target


def _visitors_whole(
    workdir: Path,
    day: date,
    files: list[Path],
    rates: Rates,
    settings: config.Settings | None,
    window: int,
    sent: frozenset[str],
    writes: _Writes,
) -> _DayVisitors:
    """The visitors' half of :func:`rate_day` for a day that fits the budget: all at once."""
    root = config.WorkDir(workdir).lake
    rated_all, read = _rate_visitors(workdir, day, files, rates, settings, window)
    paths = [
        _single(read.findings, root, lake.CDR_FINDINGS, day, writes),
        _single(read.quarantine, root, lake.CDR_QUARANTINE, day, writes),
    ]
    paths += _seen_index(read.seen, root, day, writes)
    rated_all = rated_all.with_columns(pl.lit(None, pl.Int32).alias(RAP_FSN))
    again, resubmit_problems = _resubmitted(workdir, day, rates)
    n_again = 0 if again is None else again.height
    if again is not None:
        again = _resubmitted_rows(again)
        rated_all = pl.concat([rated_all, again.select(rated_all.columns)], how="vertical_relaxed")
    is_rated = pl.col("status") == "rated"
    unrated = rated_all.filter(~is_rated)
    held = unrated.filter(pl.col("status") == holding.HELD)
    held_groups = holding.held_groups(held)
    # one sort: the partners' files and their TAP-out both take the rows in this order
    by_partner = _by_partner(rated_all, _ORDER, is_rated)
    del rated_all
    n_unrated = unrated.height - held.height
    n_held = held.height
    n_rated = sum(part.height for _p, part in by_partner) - read.recycled - n_again
    # a sent partner's rows stay as they went out; the replay's go to the re-rate result
    fresh = [(p, part) for p, part in by_partner if p is None or p not in sent]
    replayed: dict[str, Callable[[], pl.DataFrame | Path]] = {
        str(p): partial(_same, part) for p, part in by_partner if p is not None and p in sent
    }
    del by_partner
    replay = _replay(root, day, sent, replayed, writes, None)  # held already: at once
    del replayed
    lines = {p: _receivable([(p, part)]) for p, part in fresh}
    lines.update((p, kept) for p, kept in replay.kept.items() if kept)
    receivable = [
        line for p in sorted(lines, key=lambda p: (p is None, p or "")) for line in lines[p]
    ]
    paths += _partitioned(fresh, root, lake.RATED_VISITORS, day, writes, keep=sent)
    paths += replay.paths
    paths.append(_single(unrated.sort(_ORDER[1:]), root, lake.UNRATED_VISITORS, day, writes))
    return _DayVisitors(
        read=read,
        paths=paths,
        records_in=read.records + read.quarantined,
        rated=n_rated,
        unrated=n_unrated,
        held=n_held,
        held_groups=held_groups,
        receivable=receivable,
        replay=replay,
        resubmitted=n_again,
        resubmit_problems=resubmit_problems,
    )


def rate_day(
    workdir: Path,
    day: date,
    *,
    rates_dir: Path | None = None,
    settings: config.Settings | None = None,
    window_days: int | None = None,
    memory_mb: int | None = None,
    rows_per_chunk: int | None = None,
) -> RateSummary:
    """Rate the visitors' CDRs of ``day`` and IOT-check its partner events (idempotent).

    See the module docstring for what is read and written. Records already seen in another
    file of the day or on another processing date within ``window_days`` (default: the
    work folder's ``validation.duplicate_window_days``) are duplicates, not rated.

    Args:
        workdir: the work folder.
        day: the processing date.
        rates_dir: the reference data (default: ``<workdir>/rates``).
        settings: ``clearing.toml``: its partners' ``default_rate`` (None: no default rate)
            and IOT breach thresholds (None: read ``clearing.toml``, or the defaults).
        window_days: the duplicate window (default: ``settings``' or the work folder's).
        memory_mb: the memory budget (default: ``[performance] memory_mb`` of ``settings``
            or of the work folder): a day whose records do not fit it (:func:`chunk_rows`)
            is rated in chunks, with the same files and figures as at once.
        rows_per_chunk: the chunk size in records (default: ``CLEARING_RATE_CHUNK_ROWS``,
            for tests, or :func:`chunk_rows` of the budget).

    Raises:
        ConfigError: reference data missing or inconsistent (exit code 2).
    """
    rates = Rates.load(rates_dir or workdir / "rates")
    root = config.WorkDir(workdir).lake
    sent = sent_partners(workdir, day)
    files = cdr_files(workdir, day)
    if window_days is not None:
        window = window_days
    elif settings is not None:
        window = settings.validation.duplicate_window_days
    else:
        window = _window(workdir)
    budget = _budget(workdir, settings) if memory_mb is None else memory_mb
    forced = rows_per_chunk or rate_chunk_rows()
    rows = forced or chunk_rows(budget)
    chunks = _chunks(files, rows)
    # the spools of a chunked day go once its writes are done (the sorts read them): the
    # stack closes after `writes`
    spools = contextlib.ExitStack()
    writes = _Writes()
    try:
        if len(chunks) <= 1:  # the day fits the budget: rated at once
            vis = _visitors_whole(workdir, day, files, rates, settings, window, sent, writes)
            writes.wait()  # the visitors' files are written: their rows can go
        else:
            # its rows are in parts on disk: the out-of-core sorts of its files run on beside
            # the partners' events (one core each) and hold only DuckDB's share of the budget
            vis = _visitors_chunked(
                workdir, day, chunks, rates, settings, window, sent, budget, writes, spools
            )
        beside = len(chunks) > 1 and budget >= OVERLAP_MB
        if not beside:
            # the visitors' out-of-core sorts finish before the partners' events are read
            writes.wait()
        release_memory()  # before the partners' events: the peak is one half's, not the sum
        # beside the sorts (each within a quarter of the budget) the events' chunks take
        # three eighths (half left the 10M night's rate stage 0.1–0.2 GB over the budget)
        events = _event_chunks(
            workdir, day, chunk_rows(budget * 3 // 8) if beside and not forced else rows
        )
        if len(events) <= 1:  # the day's partner events fit the budget: checked at once
            pay, pay_paths = _payables(workdir, day, rates, root, writes, settings)
        else:
            pay, pay_paths = _payables_chunked(
                workdir, day, rates, root, settings, events, budget, writes
            )
        paths = [*vis.paths, *pay_paths]
        writes.wait()
        # what rated these files: the monthly rerate re-rates only what a change can touch
        rated_with.record(root, day, paths, rated_with.fingerprint(rates))
    finally:
        try:
            writes.close()
        finally:
            spools.close()
    read, replay = vis.read, vis.replay
    return RateSummary(
        day=day,
        cdr_files=files,
        records_in=vis.records_in,
        quarantined=read.quarantined,
        rated=vis.rated,
        unrated=vis.unrated,
        receivable=vis.receivable,
        partner_events=pay.checked,
        iot_breaches=pay.breaches,
        unchecked=pay.unchecked,
        payable=pay.payable,
        payable_rounding=pay.rounding,
        paths=paths,
        resubmitted=vis.resubmitted,
        resubmit_problems=vis.resubmit_problems,
        sent=tuple(sorted(sent)),
        deltas=replay.deltas,
        replay_totals=replay.totals,
        held=vis.held,
        held_groups=vis.held_groups,
        default_rated=read.default_rated,
        default_groups=read.default_groups,
        recycled=read.recycled,
        recycle_missing=read.recycle_missing,
        payable_held=pay.held,
        payable_held_groups=pay.held_groups,
        payable_released=pay.released,
        duplicates=read.duplicates,
        iot_held=_held_summary(pay.iot_held),
        chunks=len(chunks) or 1,
    )
