"""Write the outbound files of one processing day: TAP-out, Notifications and CIBER-out.

For every partner with an agreement valid on the day (and every partner with rated rows):

* ``tap`` partners: a TransferBatch of their rated rows, or a **Notification** when they have
  none, named ``CD<us><partner><FSN>`` (``TD…`` for test agreements) in ``<workdir>/out/tap``;
* ``ciber`` partners with rated voice rows: CIBER-out batches in ``<workdir>/out/ciber``
  (CIBER carries voice only: their SMS / data rows are counted as ``not_sent``).

Numbers come from :class:`~clearing.outbound.sequences.Sequences`; a re-run of the same day
reuses them, so the same rated rows give byte-identical files. Files are written to a
temporary name and renamed (atomic).

A partner's file of the day once registered in the outbox is *sent*
(:func:`clearing.store.is_sent`): a re-run leaves it alone, after checking that its bytes on
disk still hash to the outbox's SHA-256 (a mismatch is a :class:`~clearing.errors.LedgerError`
naming the file). A replay's changes are the rating stage's re-rate result and delta.

:func:`write_day` is the ``outbound`` stage: it reads the day's rated rows from
``lake/rated_visitors/date=D/partner=P/part-0.parquet`` (written by :mod:`clearing.rating`),
one partner at a time (only the columns the files are written from), and writes each file in
pieces (:func:`clearing.outbound.tap.write_tap_file`,
:func:`clearing.outbound._ciber_out.write_columnar_to`): its memory is one partner's rows and a
chunk of its file, whatever the day's volume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import polars as pl
import pyarrow.parquet as pq

from clearing import config, lake
from clearing._io import atomic_writer, write_atomic
from clearing.codecs import ciber
from clearing.codecs.facts import ciber_facts, tap_header_facts
from clearing.config import WorkDir
from clearing.errors import ClearingError, ConfigError, LedgerError
from clearing.money import round_div
from clearing.names import CiberName
from clearing.outbound._ciber_out import write_columnar_to
from clearing.outbound.sequences import FileRecord, SentFile, Sequences
from clearing.outbound.tap import READS as TAP_READS
from clearing.outbound.tap import TapHeader, tap_file_name, write_tap_file
from clearing.rating import Rates
from clearing.rating.run import RAP_FSN
from clearing.rating.validity import rows_valid_on

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import date
    from pathlib import Path

    from clearing.config import Settings

__all__ = [
    "OutboundFile",
    "rated_by_partner",
    "tap_header",
    "write_day",
    "write_outbound",
    "write_partner_files",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """One file written by :func:`write_outbound`."""

    path: Path
    kind: str  # transferBatch | notification | ciber
    partner: str
    sequence_number: int
    events: int
    total_charge: int
    total_tax: int
    charge_scale: int | None
    currency: str | None
    content_changed: bool
    not_sent: int = 0  # rated rows the format cannot carry (CIBER: SMS, data)


def _write_atomic(path: Path, data: bytes) -> str:
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def _write_pieces_atomic(
    path: Path, write: Callable[[Callable[[bytes], object]], T]
) -> tuple[str, T]:
    """:func:`_write_atomic` of bytes given in pieces: ``write(put)`` calls ``put`` with each.

    Returns the SHA-256 of the bytes written and what ``write`` returned.
    """
    digest = hashlib.sha256()
    with atomic_writer(path) as fh:

        def put(piece: bytes) -> None:
            digest.update(piece)
            fh.write(piece)

        result = write(put)
    return digest.hexdigest(), result


def _exchange_rate(rates: Rates, local: str, tap: str, day: date) -> tuple[int, int]:
    """Local currency units per TAP currency unit on ``day`` (integer, decimals)."""
    l_rate, l_scale, _ = rates.fx_rate(local, day)
    if tap == "SDR":
        return l_rate, l_scale
    t_rate, t_scale, _ = rates.fx_rate(tap, day)
    decimals = 6  # a cross rate through SDR, rounded once
    return round_div(l_rate * 10 ** (decimals + t_scale), t_rate * 10**l_scale), decimals


def _agreements(rates: Rates, day: date, partners: list[str]) -> dict[str, dict[str, Any]]:
    """The agreement of each partner for the file of ``day``.

    The version valid on ``day``; for a partner with traffic but no agreement on ``day`` (it
    ended), its latest version.
    """
    out = {r["partner"]: r for r in rows_valid_on(rates.agreements, day).to_dicts()}
    for p in partners:
        if p not in out:
            rows = rates.agreements.filter(pl.col("partner") == p).sort("valid_from")
            if rows.height == 0:
                msg = f"rated rows for partner {p}, which has no agreement"
                raise ConfigError(msg)
            out[p] = rows.row(-1, named=True)
    return out


def write_outbound(
    workdir: Path,
    day: date,
    rated: pl.DataFrame,
    rates: Rates,
    settings: Settings,
) -> list[OutboundFile]:
    """Write the day's TAP-out / Notification / CIBER-out files; return them (sorted by name).

    Args:
        workdir: the work folder (files go to ``out/tap`` and ``out/ciber``, numbers to
            ``clearing.duckdb``).
        day: the processing date.
        rated: the day's rated visitor rows (rows whose ``status`` is not ``rated`` are
            ignored).
        rates: the reference data (agreements, fx).
        settings: our TADIG (TAP), SID/BID (CIBER) and UTC offset.

    Raises:
        ConfigError: no SID/BID in the config while a CIBER partner has traffic; no fx rate.
    """
    ok = rated.filter(pl.col("status") == "rated")
    parts = {
        str(key[0]): part
        for key, part in ok.partition_by("partner", as_dict=True, maintain_order=True).items()
        if key[0] is not None
    }
    return write_partner_files(workdir, day, parts, rates, settings)


def rated_by_partner(workdir: Path, day: date) -> dict[str, pl.DataFrame]:
    """The rated visitor rows of ``day`` from the lake, per partner (in the order written)."""
    parts: dict[str, pl.DataFrame] = {}
    for path in lake.files(WorkDir(workdir).lake, lake.RATED_VISITORS, [day]):
        partner = path.parent.name.removeprefix("partner=")
        if partner != "None":  # rows of no partner: no file to write
            parts[partner] = pl.read_parquet(path, hive_partitioning=False)
    return parts


#: The columns the outbound files are written from (TAP, CIBER) and the resubmission mark reads.
_COLUMNS: Final = frozenset((*TAP_READS, "currency", RAP_FSN))


class _LakeRows(Mapping[str, pl.DataFrame]):
    """The rated visitor rows of a day per partner, read from the lake when asked, not held.

    :func:`rated_by_partner` as a mapping that reads a partner's file on each access (only
    the columns the files are written from): the outbound stage holds one partner's rows at
    a time, whatever the day's volume.
    """

    def __init__(self, workdir: Path, day: date) -> None:
        self._paths: dict[str, Path] = {}
        for path in lake.files(WorkDir(workdir).lake, lake.RATED_VISITORS, [day]):
            partner = path.parent.name.removeprefix("partner=")
            if partner != "None":  # rows of no partner: no file to write
                self._paths[partner] = path

    def __getitem__(self, partner: str) -> pl.DataFrame:
        path = self._paths[partner]
        names = [c for c in pq.read_schema(path).names if c in _COLUMNS]
        return pl.read_parquet(path, columns=names, hive_partitioning=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def height(self, partner: str) -> int:
        """The partner's row count (from the file's footer: no rows read)."""
        return int(pq.read_metadata(self._paths[partner]).num_rows)

    def column(self, partner: str, name: str) -> pl.Series | None:
        """One column of the partner's rows (None: the file has none)."""
        path = self._paths.get(partner)
        if path is None or name not in pq.read_schema(path).names:
            return None
        return pl.read_parquet(path, columns=[name], hive_partitioning=False).to_series()


def _height(rated: Mapping[str, pl.DataFrame], partner: str) -> int:
    if isinstance(rated, _LakeRows):
        return rated.height(partner)
    return rated[partner].height


def write_day(
    workdir: Path,
    day: date,
    *,
    settings: Settings | None = None,
    rates_dir: Path | None = None,
) -> list[OutboundFile]:
    """The outbound stage of ``day``: its files from the rated rows in the lake (sorted by name).

    Args:
        workdir: the work folder.
        day: the processing date (the rating of ``day`` has run).
        settings: the loaded ``clearing.toml`` (read when not given).
        rates_dir: the reference data (default: ``<workdir>/rates``).

    Raises:
        ConfigError: as :func:`write_outbound`; no config, reference data missing.
    """
    settings = settings or config.load(workdir)
    rates = Rates.load(rates_dir or workdir / "rates")
    return write_partner_files(workdir, day, _LakeRows(workdir, day), rates, settings)


def write_partner_files(
    workdir: Path,
    day: date,
    rated: Mapping[str, pl.DataFrame],
    rates: Rates,
    settings: Settings,
) -> list[OutboundFile]:
    """:func:`write_outbound` of rows already split by partner (each partner's rated rows).

    A partner's rows are taken from ``rated`` when its file is written (a mapping that reads
    them on access, as :func:`write_day`'s, then holds one partner's rows at a time).

    Raises:
        ConfigError: as :func:`write_outbound`.
    """
    seq = Sequences(workdir / "clearing.duckdb")
    out: list[OutboundFile] = []
    with seq.session():
        sent: dict[str, list[SentFile]] = {}
        for f in seq.sent(day):
            sent.setdefault(f.partner, []).append(f)
        out += [_kept(f) for files in sent.values() for f in files]
        with_rows = sorted(p for p in rated if p not in sent and _height(rated, p))
        agreements = _agreements(rates, day, with_rows)
        for partner in sorted(agreements):
            if partner in sent:  # sent: never written again (a replay gives a delta)
                continue
            a = agreements[partner]
            rows = rated.get(partner)
            if rows is None:
                rows = pl.DataFrame()  # no traffic: a Notification (TAP), nothing (CIBER)
            if a["standard"] == "tap":
                out.append(_tap_file(workdir, day, partner, a, rows, rates, settings, seq))
            elif rows.height and rows.filter(pl.col("record_type").is_in(("moc", "mtc"))).height:
                out.append(_ciber_file(workdir, day, partner, a, rows, settings, seq))
            del rows  # the next partner's are read without these
    _mark_resubmitted(workdir, day, rated, out)
    return sorted(out, key=lambda f: f.path.name)


def _mark_resubmitted(
    workdir: Path, day: date, rated: Mapping[str, pl.DataFrame], files: list[OutboundFile]
) -> None:
    """The returned events in a TAP-out just written are ``resubmitted`` (by that file)."""
    from clearing.store import open_store

    carrying = [
        f for f in files if f.kind == "transferBatch" and _carries_rap_fsn(rated, f.partner)
    ]
    if not carrying:
        return
    with open_store(workdir / "clearing.duckdb") as state, state.transaction():
        for f in carrying:
            state.returns_in.mark_resubmitted(day, f.partner, f.path.name)


def _carries_rap_fsn(rated: Mapping[str, pl.DataFrame], partner: str) -> bool:
    """Whether some of the partner's rows are resubmitted events (they carry a RAP's FSN)."""
    if isinstance(rated, _LakeRows):
        col = rated.column(partner, RAP_FSN)
    else:
        rows = rated.get(partner)
        col = rows[RAP_FSN] if rows is not None and RAP_FSN in rows.columns else None
    return col is not None and col.null_count() < col.len()


def _kept(f: SentFile) -> OutboundFile:
    """A sent file left as it is, after checking its bytes still hash to the outbox's value.

    Raises:
        LedgerError: the file is gone or its bytes changed since it was registered.
    """
    try:
        data = f.local_path.read_bytes()
    except OSError as exc:
        msg = (
            f"`{f.name}` (sent to {f.partner} for {f.processing_date}) cannot be read at "
            f"`{f.local_path}` ({exc.strerror}): a sent file is never written again; put "
            "its sent bytes back (the partner's copy, a backup) and run again"
        )
        raise LedgerError(msg) from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != f.sha256:
        msg = (
            f"`{f.local_path}` no longer hashes to the outbox's sha256 of `{f.name}` (sent to "
            f"{f.partner} for {f.processing_date}: {f.sha256[:12]}…, now {sha[:12]}…): a sent "
            "file is never written again; put its sent bytes back and run again"
        )
        raise LedgerError(msg)
    return OutboundFile(
        f.path,
        f.kind,
        f.partner,
        f.sequence_number,
        f.events,
        f.total_charge,
        f.total_tax,
        f.charge_scale,
        f.currency,
        False,
    )


def tap_header(
    settings: Settings,
    rates: Rates,
    partner: str,
    a: Mapping[str, Any],
    day: date,
    *,
    fsn: int,
    test: bool,
    rap_fsn: int | None = None,
    made_on: date | None = None,
) -> TapHeader:
    """The header of our TAP-out to ``partner`` for ``day`` under agreement ``a``.

    The exchange rate is the one valid on ``day``; ``rap_fsn`` / ``made_on``: a file resent
    after a fatal return (:mod:`clearing.outbound.resend`).
    """
    rate, decimals = _exchange_rate(rates, a["local_currency"], a["tap_currency"], day)
    return TapHeader(
        sender=settings.home.tadig,
        recipient=partner,
        fsn=fsn,
        test=test,
        processing_date=day,
        utc_offset=settings.home.timezone_offset,
        local_currency=a["local_currency"],
        tap_currency=a["tap_currency"],
        tap_decimal_places=int(a["tap_decimal_places"]),
        exchange_rate=rate,
        exchange_rate_decimals=decimals,
        rap_fsn=rap_fsn,
        made_on=made_on,
    )


def _tap_file(
    workdir: Path,
    day: date,
    partner: str,
    a: dict[str, Any],
    rows: pl.DataFrame,
    rates: Rates,
    settings: Settings,
    seq: Sequences,
) -> OutboundFile:
    test = a["file_type"] == "test"
    fsn = seq.tap_fsn(partner, a["file_type"], day)
    header = tap_header(settings, rates, partner, a, day, fsn=fsn, test=test)
    name = tap_file_name(header)
    path = workdir / "out" / "tap" / name
    # written in pieces (the call events through a temporary file beside it), never held whole
    sha, (kind, totals, head) = _write_pieces_atomic(
        path, lambda put: write_tap_file(rows, header, put, spool_dir=path.parent)
    )
    events, charge, tax = totals.events, totals.total_charge, totals.total_tax
    facts = tap_header_facts(head)  # what the header we wrote declares, for the register
    changed = seq.register(
        FileRecord(
            name,
            kind,
            partner,
            "tap",
            a["file_type"],
            day,
            fsn,
            events,
            charge,
            tax,
            header.tap_decimal_places,
            a["tap_currency"],
            sha,
            str(path),
            audit_charge=facts.total_charge if facts is not None and facts.kind == "tap" else None,
            file_available=facts.file_available if facts is not None else None,
        )
    )
    return OutboundFile(
        path,
        kind,
        partner,
        fsn,
        events,
        charge,
        tax,
        header.tap_decimal_places,
        a["tap_currency"],
        changed,
    )


def _ciber_events(rows: pl.DataFrame, sender: str, partner: str) -> pl.DataFrame:
    voice = rows.filter(pl.col("record_type").is_in(("moc", "mtc"))).sort(
        "start_time", "record_id", "file", "line"
    )
    df = voice.select(
        pl.lit(sender).alias("sender"),
        pl.lit(partner).alias("recipient"),
        pl.lit(sender).alias("serving_network"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("event_index"),
        pl.when(pl.col("record_type") == "moc")
        .then(pl.lit("mobileOriginatedCall"))
        .otherwise(pl.lit("mobileTerminatedCall"))
        .alias("event_kind"),
        "imsi",
        "msisdn",
        "called_number",
        "calling_number",
        pl.col("start_time").alias("local_start"),
        "currency",
        "charge",
        pl.col("charge").alias("charge_airtime"),
        pl.lit(0, pl.Int64).alias("charge_toll"),
        pl.col("tax").fill_null(0),
        # layout fields: chargeable (after increments) and elapsed seconds
        pl.col("charged_units").alias("air_chargeable_time"),
        pl.col("duration").alias("air_elapsed_time"),
    )
    return df


def _ciber_written(pieces: list[int | None], day: date) -> tuple[int | None, datetime | None]:
    """(Σ batch trailer totals, made available) of a CIBER file we wrote (None: unreadable).

    ``pieces``: :func:`_ciber_total` of each piece the file was written in.
    """
    if not pieces or None in pieces:
        return None, None
    return sum(t for t in pieces if t is not None), datetime(day.year, day.month, day.day)


def _ciber_total(data: bytes) -> int | None:
    """Σ batch trailer totals of CIBER bytes we wrote (whole batches; None: unreadable)."""
    try:
        decoded = ciber.decode(data)
    except ClearingError:
        return None
    return ciber_facts(decoded).total


def _ciber_file(
    workdir: Path,
    day: date,
    partner: str,
    a: dict[str, Any],
    rows: pl.DataFrame,
    settings: Settings,
    seq: Sequences,
) -> OutboundFile:
    sender = settings.home.sid_bid
    if sender is None:
        msg = (
            f"partner {partner} is a CIBER partner with traffic, but clearing.toml has no "
            "`home.sid_bid`: add our SID/BID"
        )
        raise ConfigError(msg)
    events = _ciber_events(rows, sender, partner)
    # the day's stored starting point on a re-run, else the partner's latest number
    _first, _last, previous = seq.allocation(partner, "ciber", a["file_type"], day)
    sequences: dict[tuple[str, str], int] = {}
    if previous is not None:
        sequences[(sender, partner)] = previous
    start = ciber.next_sequence(previous)
    name = str(CiberName(sender, partner, day, start))
    path = workdir / "out" / "ciber" / name
    written: list[int | None] = []  # the trailer totals read back from each piece written

    def write(put: Callable[[bytes], object]) -> None:
        def piece(data: bytes) -> None:
            put(data)
            written.append(_ciber_total(data))

        # one batch at a time (never the whole file in memory)
        if not write_columnar_to(
            events, creation_date=day, sequences=sequences, write=piece, spool_dir=path.parent
        ):  # something the columnar writer leaves to the codec
            piece(ciber.write(events.to_arrow(), creation_date=day, sequences=sequences))

    sha, _ = _write_pieces_atomic(path, write)
    last = sequences.get((sender, partner), start)
    seq.store(partner, "ciber", a["file_type"], day, first=start, last=last, previous=previous)
    charge = int(events["charge"].cast(pl.Int128).sum() or 0)  # never an int64 wrap
    tax = int(events["tax"].cast(pl.Int128).sum() or 0)
    audit_charge, available = _ciber_written(written, day)
    changed = seq.register(
        FileRecord(
            name,
            "ciber",
            partner,
            "ciber",
            a["file_type"],
            day,
            start,
            events.height,
            charge,
            tax,
            2,
            a["tap_currency"],
            sha,
            str(path),
            audit_charge=audit_charge,
            file_available=available,
        )
    )
    return OutboundFile(
        path,
        "ciber",
        partner,
        start,
        events.height,
        charge,
        tax,
        2,
        a["tap_currency"],
        changed,
        not_sent=rows.height - events.height,
    )
