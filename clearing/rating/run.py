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
* ``lake/unrated_visitors/date=D/part-0.parquet`` — rows that could not be rated, with reason;
* ``lake/cdr_findings/date=D/part-0.parquet``, ``lake/cdr_quarantine/date=D/part-0.parquet``;
* ``lake/rated_partner/date=D/partner=P/part-0.parquet`` — the IOT check of every event;
* ``lake/iot_findings/date=D/part-0.parquet`` — the breaches.

Resubmitted events (``clearing returns resubmit``): the returned events given to ``D`` in the
store (:meth:`clearing.store.returns_in.ReturnsIn.claim_resubmissions`) are taken from the
rated rows of the day they were first sent, re-rated with the current reference data and added
to ``D``'s rated rows with their RAP's FSN in ``rap_file_sequence_number`` (null on every
other row), so the TAP-out of ``D`` carries them. They are not records of ``D``: they are
counted apart (``resubmitted``), not in the record identity.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from clearing import config, lake
from clearing._io import write_table_atomic
from clearing.rating._book import Rates
from clearing.rating.cdr import read_cdrs
from clearing.rating.check import iot_check
from clearing.rating.delta import replay_delta
from clearing.rating.inbound import rate_visitors
from clearing.store import sent_partners

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date
    from pathlib import Path

__all__ = [
    "IOT_EVENT_COLUMNS",
    "RAP_FSN",
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
        payable: per (partner, settlement currency, scale): the settlement amount.
        paths: the lake and out paths written.
        resubmitted: returned events re-rated and added to the day's rated rows.
        problems: returned events that could not be resubmitted (they stay to correct).
        sent: partners whose file of the day was already sent: their rated rows were kept
            as sent, ``receivable`` is theirs, the replay's rating is in the re-rate result.
        deltas: the replay's delta lines (``lake/rerate_deltas``), as dicts.
        replay_totals: per sent partner, currency and scale: ``sent`` (the rows behind the
            sent file), ``deltas`` and ``rerated`` (the replay's rating); ``rerated = sent +
            deltas`` always.
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
    problems: list[str] = field(default_factory=list)
    sent: tuple[str, ...] = ()
    deltas: list[dict[str, Any]] = field(default_factory=list)
    replay_totals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def replayed(self) -> bool:
        """True when some partner's file of the day was already sent (a replay)."""
        return bool(self.sent)

    @property
    def identity_ok(self) -> bool:
        """Records in = rated + unrated + quarantined."""
        return self.records_in == self.rated + self.unrated + self.quarantined


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
    *,
    keep: Iterable[str] = (),
) -> list[Path]:
    lake.clear(root, ds, day, keep=keep)
    # `partner` kept in the file (04172); a null partner's folder is `partner=None`
    return sorted(writes.write(root, ds, day, part, str(partner)) for partner, part in parts)


def _single(df: pl.DataFrame, root: Path, ds: lake.Dataset, day: date, writes: _Writes) -> Path:
    lake.clear(root, ds, day)
    return writes.write(root, ds, day, df)


_MONEY_KEYS: Final = ["partner", "currency", "charge_scale"]


def _receivable(
    parts: Sequence[tuple[str | None, pl.DataFrame]],
) -> list[tuple[str, str, int, int]]:
    """Per (partner, currency, scale): the total charge of ``parts`` (by partner, then keys)."""
    keys = _MONEY_KEYS
    # per partner (slices: no copy of the rows); one partner's groups by currency, scale
    sums = [part.group_by(keys).agg(pl.col("charge").sum()) for _p, part in parts]
    return [
        (r[0], r[1], int(r[2]), int(r[3]))
        for sums_of in sums
        for r in sums_of.sort(keys).select(*keys, "charge").rows()
    ]


@dataclass(frozen=True)
class _Replay:
    kept: dict[str, pl.DataFrame]  # a sent partner's rows, as sent
    paths: list[Path]
    deltas: list[dict[str, Any]]
    totals: list[dict[str, Any]]


def _empty_rated() -> pl.DataFrame:
    return pl.from_arrow(lake.RATED_VISITORS.schema.empty_table())  # type: ignore[return-value]


def _totals(df: pl.DataFrame, name: str) -> pl.DataFrame:
    return df.group_by(_MONEY_KEYS).agg(pl.col("charge").sum().cast(pl.Int64).alias(name))


def _replay(
    root: Path,
    day: date,
    sent: frozenset[str],
    replayed: dict[str, pl.DataFrame],
    writes: _Writes,
) -> _Replay:
    """Keep the sent partners' rows; write the re-rate result where it differs, and the delta.

    ``lake/rerated_visitors/date=D/partner=P`` holds the replay's rated rows of a sent partner
    whose rating changed; ``lake/rerate_deltas/date=D`` the delta (new − sent) of the sent
    partners (no file: the replay rated everything as it was sent, so the lake is as it was).
    """
    for ds in (lake.RERATED_VISITORS, lake.RERATE_DELTAS):
        lake.clear(root, ds, day)
    kept: dict[str, pl.DataFrame] = {}
    for p in sorted(sent):
        f = lake.path(root, lake.RATED_VISITORS, day, partner=p)
        kept[p] = pl.read_parquet(f, hive_partitioning=False) if f.is_file() else _empty_rated()
    if not sent:
        return _Replay(kept, [], [], [])
    paths: list[Path] = []
    deltas: list[pl.DataFrame] = []
    totals: list[pl.DataFrame] = []
    for p, old in kept.items():
        new = replayed.get(p)
        if new is None:
            new = _empty_rated()
        changed, delta = replay_delta(old, new)
        if changed.height:
            paths.append(writes.write(root, lake.RERATED_VISITORS, day, new, p))
        deltas.append(delta)
        both = _totals(old, "sent").join(
            _totals(new, "rerated"), on=_MONEY_KEYS, how="full", coalesce=True
        )
        totals.append(both)
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
    sent = sent_partners(workdir, day)
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
        rated_all = rated_all.with_columns(pl.lit(None, pl.Int32).alias(RAP_FSN))
        again, problems = _resubmitted(workdir, day, rates)
        n_again = 0 if again is None else again.height
        if again is not None:
            rated_all = pl.concat(
                [rated_all, again.select(rated_all.columns)], how="vertical_relaxed"
            )
        is_rated = pl.col("status") == "rated"
        unrated = rated_all.filter(~is_rated)
        order = ["partner", "start_time", "record_id", "file", "line"]
        # one sort: the partners' files and their TAP-out both take the rows in this order
        by_partner = _by_partner(rated_all, order, is_rated)
        del rated_all
        n_unrated = unrated.height
        n_rated = sum(part.height for _p, part in by_partner) - n_again
        # a sent partner's rows stay as they went out; the replay's go to the re-rate result
        fresh = [(p, part) for p, part in by_partner if p is None or p not in sent]
        replayed = {str(p): part for p, part in by_partner if p is not None and p in sent}
        del by_partner
        replay = _replay(root, day, sent, replayed, writes)
        del replayed
        going_out = sorted(
            [*fresh, *((p, rows) for p, rows in replay.kept.items() if rows.height)],
            key=lambda t: (t[0] is None, t[0] or ""),
        )
        receivable = _receivable(going_out)
        paths += _partitioned(fresh, root, lake.RATED_VISITORS, day, writes, keep=sent)
        paths += replay.paths
        paths.append(_single(unrated.sort(order[1:]), root, lake.UNRATED_VISITORS, day, writes))
        del unrated, fresh, going_out
        writes.wait()  # the visitors' files are written: their rows can go
        checked = breaches = unchecked = 0
        payable: list[tuple[str, str, int, int]] = []
        for old in (lake.RATED_PARTNER, lake.IOT_FINDINGS):
            lake.clear(root, old, day)
        events = partner_events(workdir, day, columns=IOT_EVENT_COLUMNS)
        if events is not None:
            result = iot_check(events, rates)
            del events
            checked = result.rated.height
            breaches = result.findings.height
            unchecked = result.rated.filter(pl.col("status") != "checked").height
            payable = [
                (r[0], r[1], int(r[2]), int(r[3]))
                for r in result.rated.group_by("partner", "settlement_currency", "settlement_scale")
                .agg(pl.col("settlement_amount").sum())
                .sort("partner")
                .rows()
            ]
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
        paths=paths,
        resubmitted=n_again,
        problems=problems,
        sent=tuple(sorted(sent)),
        deltas=replay.deltas,
        replay_totals=replay.totals,
    )
