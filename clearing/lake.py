"""The Parquet lake under ``<workdir>/lake/``.

Every dataset, where its files are, how they are written and read.

Each :class:`Dataset` has a name, the Arrow schema of its files as Parquet stores them (what
reading a file back gives), its partitioning and its file name inside a partition::

    lake/<folder>/date=<D>/<file>                  partitioned by processing date
    lake/<folder>/date=<D>/partner=<P>/<file>      by date and partner
    lake/<folder>/date=<D>/start=<S>/<file>        by date and the day its events started
                                                   (the duplicate key indexes: a lookup reads
                                                   only the start days it can match)

:func:`write` is the one atomic write (temporary name, then rename: a reader never sees half a
file) and replaces the file; :func:`clear` removes a date's partition before a stage writes it
again, so a re-run leaves no rows of the earlier run. :func:`view` is the one typed read: a
DuckDB view over a dataset's files for some dates, with the date as ``processing_date``; a
dataset without files for those dates reads as an empty view of the right columns and types.

The writer options (compression) are recorded per dataset, so the bytes of a file depend only on
its rows.
"""

from __future__ import annotations

import itertools
import re
import shutil
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

import pyarrow as pa

from clearing._io import write_row_groups_atomic, write_table_atomic
from clearing.codecs.events import CIBER_KEY, EVENT_SCHEMA, HARD_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import duckdb

__all__ = [
    "CDR_FINDINGS",
    "CDR_QUARANTINE",
    "CDR_SEEN",
    "DATASETS",
    "EVENTS_IN",
    "FINDINGS",
    "IOT_FINDINGS",
    "KEYS_CIBER",
    "KEYS_CIBER_SCHEMA",
    "KEYS_IN",
    "KEYS_IN_SCHEMA",
    "NO_START",
    "RATED_PARTNER",
    "RATED_VISITORS",
    "RERATED_VISITORS",
    "RERATE_DELTAS",
    "RETAIL",
    "RETAIL_BALANCE",
    "RETAIL_BALANCE_SCHEMA",
    "RETAIL_BILL_LINE_SCHEMA",
    "RETAIL_SERVICES",
    "RETAIL_SUMMARY",
    "RETAIL_SUMMARY_SCHEMA",
    "UNRATED_VISITORS",
    "Dataset",
    "Partitioning",
    "clear",
    "dataset",
    "dates",
    "day_files",
    "files",
    "month_files",
    "partition",
    "path",
    "period_partition",
    "read",
    "sql_type",
    "start_folder",
    "view",
    "write",
    "write_pieces",
]

_DATE_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})")


class Partitioning(StrEnum):
    """How a dataset's files are laid out under its folder."""

    DATE = "date"  # date=<D>/<file>
    DATE_PARTNER = "date+partner"  # date=<D>/partner=<P>/<file>
    DATE_START = "date+start"  # date=<D>/start=<day the events started>/<file>


@dataclass(frozen=True, slots=True)
class Dataset:
    """One dataset of the lake.

    Attributes:
        name: the dataset's name (and its folder under ``lake/`` unless ``folder`` says).
        schema: the Arrow schema of its files as read back from Parquet.
        partitioning: by date, or by date and partner.
        file: the file name in a partition; ``{source}`` stands for the input file's name
            (one Parquet file per input file).
        compression: the Parquet compression its writer uses.
        folder: the folder under ``lake/`` when it differs from ``name`` (two datasets may
            share a partition: ``retail``'s bill lines and summary).
    """

    name: str
    schema: pa.Schema
    partitioning: Partitioning
    file: str = "part-0.parquet"
    compression: str = "zstd"
    folder: str = ""

    @property
    def directory(self) -> str:
        """The folder under ``lake/``."""
        return self.folder or self.name

    @property
    def glob(self) -> str:
        """The files of one date partition, as a glob relative to it."""
        name = self.file.replace("{source}", "*")
        if self.partitioning == Partitioning.DATE_PARTNER:
            return f"partner=*/{name}"
        if self.partitioning == Partitioning.DATE_START:
            return f"start=*/{name}"
        return name

    @property
    def history_glob(self) -> str:
        """The files of every date, as a glob relative to the lake."""
        return f"{self.directory}/date=*/{self.glob}"


def _as_stored(schema: pa.Schema) -> pa.Schema:
    """``schema`` as Parquet stores it: second timestamps become milliseconds."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_timestamp(t) and t.unit == "s":
            f = f.with_type(pa.timestamp("ms", tz=t.tz))
        fields.append(f)
    return pa.schema(fields)


_LSTR = pa.large_string()  # what polars writes for text

_PATH_TYPE = pa.list_(
    pa.struct(
        [
            pa.field("item_id", pa.int32()),
            pa.field("occurrence", pa.int32()),
            pa.field("level", pa.int32()),
        ]
    )
)

#: Findings of the validate stage (TAP and CIBER), one row per finding.
FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("file_sha256", pa.string()),
        pa.field("source_format", pa.string(), nullable=False),  # "tap" | "ciber"
        pa.field("sender", pa.string()),
        pa.field("recipient", pa.string()),
        pa.field("file_sequence_number", pa.string()),
        pa.field("event_index", pa.int64()),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("code", pa.int32(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("context", pa.string(), nullable=False),
        pa.field("group", pa.string()),
        pa.field("message", pa.string(), nullable=False),
        pa.field("path", _PATH_TYPE),
        pa.field("item_offset", pa.int64()),
        pa.field("byte_offset", pa.int64()),
    ]
)

#: Partners' events as validate keeps them: the decoded events, their file and status.
EVENTS_IN_SCHEMA = pa.schema(
    [*EVENT_SCHEMA, pa.field("file", pa.string()), pa.field("status", pa.string())]
)

_RATED_VISITORS = pa.schema(
    [
        pa.field("record_id", _LSTR),
        pa.field("record_type", _LSTR),
        pa.field("imsi", _LSTR),
        pa.field("msisdn", _LSTR),
        pa.field("imei", _LSTR),
        pa.field("called_number", _LSTR),
        pa.field("calling_number", _LSTR),
        pa.field("start_time", pa.timestamp("us")),
        pa.field("utc_offset", _LSTR),
        pa.field("duration", pa.int64()),
        pa.field("volume_up", pa.int64()),
        pa.field("volume_down", pa.int64()),
        pa.field("apn", _LSTR),
        pa.field("rec_entity_type", _LSTR),
        pa.field("rec_entity_id", _LSTR),
        pa.field("location_area", pa.int64()),
        pa.field("cell_id", pa.int64()),
        pa.field("charging_id", pa.int64()),
        pa.field("cause_for_term", pa.int64()),
        pa.field("file", _LSTR),
        pa.field("line", pa.int64()),
        pa.field("partner", _LSTR),
        pa.field("standard", _LSTR),
        pa.field("service", _LSTR),
        pa.field("destination_prefix", _LSTR),
        pa.field("time_band", _LSTR),
        pa.field("iot_key", _LSTR),
        pa.field("iot_version", _LSTR),
        pa.field("chargeable_units", pa.int64()),
        pa.field("charged_units", pa.int64()),
        pa.field("price", pa.int64()),
        pa.field("price_scale", pa.int64()),
        pa.field("unit", pa.int64()),
        pa.field("rounding", _LSTR),
        pa.field("tax_rate", pa.int64()),
        pa.field("charge", pa.int64()),
        pa.field("charge_scale", pa.int64()),
        pa.field("currency", _LSTR),
        pa.field("tax", pa.int64()),
        pa.field("status", _LSTR),
        pa.field("reason", _LSTR),
        # where a row of the day comes from: "cdr" (the day's CDRs) | "recycled" (a record held
        # on an earlier date, released on this one) | "resubmitted" (a returned event);
        # origin_date: the date it was first rated
        pa.field("origin", _LSTR),
        pa.field("origin_date", pa.date32()),
        pa.field("rap_file_sequence_number", pa.int32()),  # resubmitted after a severe return
    ]
)

# the same columns: rows that could not be rated (status "unrated") or are held ("held")
_UNRATED_VISITORS = _RATED_VISITORS
_RERATED_VISITORS = _RATED_VISITORS  # the same columns: a replay's rating of a sent day

#: The delta of a replay of a sent day, per partner, service, currency (new − sent).
_RERATE_DELTAS = pa.schema(
    [
        pa.field("direction", _LSTR),
        pa.field("partner", _LSTR),
        pa.field("service", _LSTR),
        pa.field("currency", _LSTR),
        pa.field("charge_scale", pa.int64()),
        pa.field("events", pa.uint32()),
        pa.field("changed", pa.uint32()),
        pa.field("old_total", pa.int64()),
        pa.field("new_total", pa.int64()),
        pa.field("delta", pa.int64()),
        pa.field("debit", pa.int64()),
        pa.field("credit", pa.int64()),
    ]
)

_CDR_FINDINGS = pa.schema(
    [
        pa.field("file", _LSTR),
        pa.field("line", pa.int64()),
        pa.field("record_id", _LSTR),
        pa.field("field", _LSTR),
        pa.field("value", _LSTR),
        pa.field("severity", _LSTR),
        pa.field("problem", _LSTR),
        pa.field("action", _LSTR),
    ]
)

_CDR_QUARANTINE = pa.schema(
    [
        pa.field("record_id", _LSTR),
        pa.field("record_type", _LSTR),
        pa.field("imsi", _LSTR),
        pa.field("msisdn", _LSTR),
        pa.field("imei", _LSTR),
        pa.field("called_number", _LSTR),
        pa.field("calling_number", _LSTR),
        pa.field("start_time", _LSTR),
        pa.field("utc_offset", _LSTR),
        pa.field("duration", _LSTR),
        pa.field("volume_up", _LSTR),
        pa.field("volume_down", _LSTR),
        pa.field("apn", _LSTR),
        pa.field("rec_entity_type", _LSTR),
        pa.field("rec_entity_id", _LSTR),
        pa.field("location_area", _LSTR),
        pa.field("cell_id", _LSTR),
        pa.field("charging_id", _LSTR),
        pa.field("cause_for_term", _LSTR),
        pa.field("file", _LSTR),
        pa.field("line", pa.int64()),
        pa.field("reason", _LSTR),
    ]
)

#: The seen index of visitors' CDRs (:mod:`clearing.rating.duplicates`): per processing date
#: and start day, the records first seen that day (not the duplicates), the 128-bit hash of their
#: hard key, their key columns, file and line.
_CDR_SEEN = pa.schema(
    [
        pa.field("k1", pa.uint64()),
        pa.field("k2", pa.uint64()),
        pa.field("record_id", _LSTR),
        pa.field("record_type", _LSTR),
        pa.field("imsi", _LSTR),
        pa.field("start_time", pa.timestamp("us")),
        pa.field("utc_offset", _LSTR),
        pa.field("duration", pa.int64()),
        pa.field("volume_up", pa.int64()),
        pa.field("volume_down", pa.int64()),
        pa.field("called_number", _LSTR),
        pa.field("calling_number", _LSTR),
        pa.field("apn", _LSTR),
        pa.field("file", _LSTR),
        pa.field("line", pa.int64()),
    ]
)


def _key_index_schema(key: tuple[str, ...]) -> pa.Schema:
    """A duplicate key index of partners' events: the key's 128-bit hash, the key, where from."""
    return pa.schema(
        [
            pa.field("k1", pa.uint64()),  # the key's MD5, upper 64 bits
            pa.field("k2", pa.uint64()),  # lower 64 bits
            *(EVENTS_IN_SCHEMA.field(c) for c in key),
            pa.field("partner", pa.string()),
            EVENTS_IN_SCHEMA.field("file"),
            EVENTS_IN_SCHEMA.field("event_index"),
        ]
    )


#: The duplicate key index of the accepted partner events (TAP and CIBER), by the hard key:
#: per processing date and UTC start day (:mod:`clearing.keyindex`).
KEYS_IN_SCHEMA = _key_index_schema(HARD_KEY)
#: The same for the accepted CIBER records, by the CIBER key and local start day.
KEYS_CIBER_SCHEMA = _key_index_schema(CIBER_KEY)

_RATED_PARTNER = pa.schema(
    [
        pa.field("file", _LSTR),
        pa.field("source_format", _LSTR),
        pa.field("partner", _LSTR),
        pa.field("file_sequence_number", _LSTR),
        pa.field("event_index", pa.int64()),
        pa.field("event_kind", _LSTR),
        pa.field("imsi", _LSTR),
        pa.field("msisdn", _LSTR),
        pa.field("called_number", _LSTR),
        pa.field("local_start", pa.timestamp("ms")),
        pa.field("kind", _LSTR),
        pa.field("number", _LSTR),
        pa.field("usage", pa.int64()),
        pa.field("currency", _LSTR),
        pa.field("charge_scale", pa.int64()),
        pa.field("charge", pa.int64()),
        pa.field("discount", pa.int64()),
        pa.field("camel_fee", pa.int64()),
        pa.field("tax", pa.int64()),
        pa.field("service", _LSTR),
        pa.field("iot_key", _LSTR),
        pa.field("iot_version", _LSTR),
        pa.field("charged_units", pa.int64()),
        pa.field("expected_charge", pa.int64()),
        pa.field("expected_camel", pa.int64()),
        pa.field("iot_tolerance", pa.int64()),
        pa.field("iot_tolerance_scale", pa.int64()),
        pa.field("settlement_currency", _LSTR),
        pa.field("reason", _LSTR),
        pa.field("status", _LSTR),
        pa.field("expected", pa.int64()),
        pa.field("charged", pa.int64()),
        pa.field("difference", pa.int64()),
        pa.field("breach", pa.bool_()),
        pa.field("payable", pa.int64()),
        pa.field("settlement_scale", pa.int64()),
        pa.field("settlement_amount", pa.int64()),
        pa.field("fx_versions", _LSTR),
        # why what we owe could not be converted (no FX rate, unknown currency): held
        pa.field("hold_reason", _LSTR),
    ]
)

_IOT_FINDINGS = pa.schema(
    [
        pa.field("partner", _LSTR),
        pa.field("file", _LSTR),
        pa.field("event_index", pa.int64()),
        pa.field("event_kind", _LSTR),
        pa.field("service", _LSTR),
        pa.field("local_start", pa.timestamp("ms")),
        pa.field("expected", pa.int64()),
        pa.field("charged", pa.int64()),
        pa.field("difference", pa.int64()),
        pa.field("charge_scale", pa.int64()),
        pa.field("currency", _LSTR),
        pa.field("tolerance", _LSTR),
        pa.field("iot_key", _LSTR),
        pa.field("iot_version", _LSTR),
    ]
)

#: The services of retail rating, in the order of the summary's columns.
RETAIL_SERVICES = ("voice_mo", "voice_mt", "sms_mo", "sms_mt", "data")

_RETAIL_TS = pa.timestamp("s", tz="UTC")

#: One row per event.
RETAIL_BILL_LINE_SCHEMA = pa.schema(
    [
        pa.field("imsi", pa.string()),
        pa.field("sub_number", pa.string()),  # msisdn of the sub-number; null: rule `none`
        pa.field("role", pa.string()),
        pa.field("attribution_rule", pa.string(), nullable=False),
        pa.field("plan_id", pa.string()),
        pa.field("plan_version", pa.date32()),  # `valid_from` of the plans row that rated it
        pa.field("plan_level", pa.string()),  # user | group | global: who assigned the plan
        pa.field("cycle_start", pa.date32()),
        # the event
        pa.field("file", pa.string()),
        pa.field("sender", pa.string()),
        pa.field("file_sequence_number", pa.string()),
        pa.field("event_index", pa.int64()),
        pa.field("event_kind", pa.string()),
        pa.field("start_utc", _RETAIL_TS),
        pa.field("event_msisdn", pa.string()),
        pa.field("dialled_digits", pa.string()),
        pa.field("apn_ni", pa.string()),
        # usage
        pa.field("service", pa.string(), nullable=False),  # one of RETAIL_SERVICES, or `other`
        pa.field("unit", pa.string()),  # second | message | byte
        pa.field("units", pa.int64()),  # after the plan's increments
        pa.field("allowance_units", pa.int64()),
        pa.field("overage_units", pa.int64()),
        pa.field("tier_units", pa.list_(pa.int64())),  # overage per tier, first tier first
        pa.field("day_pass_units", pa.int64()),
        pa.field("day_pass_start", _RETAIL_TS),  # start of the covering pass window
        pa.field("day_pass_charged", pa.bool_()),  # this event opened the pass
        # money: integers at `scale` in `currency`
        pa.field("usage_amount", pa.int64()),
        pa.field("day_pass_amount", pa.int64()),
        pa.field("amount", pa.int64()),
        pa.field("currency", pa.string()),
        pa.field("scale", pa.int8()),
        # prepaid plans only (null otherwise): the card's balance after the line, the part of
        # the amount beyond the balance before it
        pa.field("balance_after", pa.int64()),
        pa.field("over_balance_amount", pa.int64()),
        pa.field("over_balance", pa.bool_()),
    ]
)

#: One row per sub-number, plan and bill cycle.
RETAIL_SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("imsi", pa.string(), nullable=False),
        pa.field("sub_number", pa.string(), nullable=False),
        pa.field("role", pa.string()),
        pa.field("plan_id", pa.string(), nullable=False),
        pa.field("plan_version", pa.date32()),
        pa.field("plan_level", pa.string()),
        pa.field("cycle_start", pa.date32(), nullable=False),
        pa.field("cycle_last_day", pa.date32(), nullable=False),
        pa.field("events", pa.int64(), nullable=False),
        *(
            pa.field(f"{s}_{what}", pa.int64(), nullable=False)
            for s in RETAIL_SERVICES
            for what in ("units", "allowance_units", "allowance_left", "overage_units", "amount")
        ),
        pa.field("day_passes", pa.int64(), nullable=False),
        pa.field("over_balance_events", pa.int64(), nullable=False),
        pa.field("over_balance_amount", pa.int64(), nullable=False),
        pa.field("day_pass_amount", pa.int64(), nullable=False),
        pa.field("usage_amount", pa.int64(), nullable=False),
        pa.field("amount", pa.int64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("scale", pa.int8(), nullable=False),
    ]
)

#: One row per prepaid card: what its prepaid lines consumed, all processing dates so far.
RETAIL_BALANCE_SCHEMA = pa.schema(
    [
        pa.field("imsi", pa.string(), nullable=False),
        pa.field("spent", pa.int64(), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("scale", pa.int8()),
    ]
)

_RETAIL = _as_stored(RETAIL_BILL_LINE_SCHEMA)  # as read back: second timestamps in ms
_RETAIL_SUMMARY = _as_stored(RETAIL_SUMMARY_SCHEMA)
EVENTS_IN = Dataset(
    "events_in",
    _as_stored(EVENTS_IN_SCHEMA),
    Partitioning.DATE_PARTNER,
    file="{source}.parquet",
    compression="snappy",
)
FINDINGS = Dataset(
    "findings", FINDINGS_SCHEMA, Partitioning.DATE, file="findings.parquet", compression="snappy"
)
RATED_VISITORS = Dataset("rated_visitors", _RATED_VISITORS, Partitioning.DATE_PARTNER)
UNRATED_VISITORS = Dataset("unrated_visitors", _UNRATED_VISITORS, Partitioning.DATE)
#: A replay's rating of the records behind a sent file (written only where it differs).
RERATED_VISITORS = Dataset("rerated_visitors", _RERATED_VISITORS, Partitioning.DATE_PARTNER)
#: A replay of a sent day: the delta (new − sent) per partner, service and currency.
RERATE_DELTAS = Dataset("rerate_deltas", _RERATE_DELTAS, Partitioning.DATE)
CDR_FINDINGS = Dataset("cdr_findings", _CDR_FINDINGS, Partitioning.DATE)
CDR_QUARANTINE = Dataset("cdr_quarantine", _CDR_QUARANTINE, Partitioning.DATE)
CDR_SEEN = Dataset("cdr_seen", _CDR_SEEN, Partitioning.DATE_START)
KEYS_IN = Dataset(
    "keys_in", _as_stored(KEYS_IN_SCHEMA), Partitioning.DATE_START, file="{source}.parquet"
)
KEYS_CIBER = Dataset(
    "keys_ciber", _as_stored(KEYS_CIBER_SCHEMA), Partitioning.DATE_START, file="{source}.parquet"
)
RATED_PARTNER = Dataset("rated_partner", _RATED_PARTNER, Partitioning.DATE_PARTNER)
IOT_FINDINGS = Dataset("iot_findings", _IOT_FINDINGS, Partitioning.DATE)
RETAIL = Dataset("retail", _RETAIL, Partitioning.DATE, file="bill_lines.parquet")
RETAIL_SUMMARY = Dataset(
    "retail_summary", _RETAIL_SUMMARY, Partitioning.DATE, file="summary.parquet", folder="retail"
)
#: Per prepaid card, what its lines consumed up to the processing date (carried forward).
RETAIL_BALANCE = Dataset(
    "retail_balance",
    _as_stored(RETAIL_BALANCE_SCHEMA),
    Partitioning.DATE,
    file="balances.parquet",
    folder="retail",
)

#: Every dataset the nightly writes, in the order its outputs are listed.
DATASETS: tuple[Dataset, ...] = (
    EVENTS_IN,
    FINDINGS,
    RATED_VISITORS,
    UNRATED_VISITORS,
    CDR_FINDINGS,
    CDR_QUARANTINE,
    CDR_SEEN,
    KEYS_IN,
    KEYS_CIBER,
    RATED_PARTNER,
    IOT_FINDINGS,
    RETAIL,
    RETAIL_SUMMARY,
    RETAIL_BALANCE,
    RERATED_VISITORS,
    RERATE_DELTAS,
)
_BY_NAME = {d.name: d for d in DATASETS}


def dataset(name: str) -> Dataset:
    """The registered dataset called ``name``.

    Raises:
        KeyError: no such dataset.
    """
    return _BY_NAME[name]


# --- paths ------------------------------------------------------------------------------------


def partition(root: Path, ds: Dataset | str, day: date) -> Path:
    """The folder ``<root>/<dataset>/date=<day>`` (``root`` is the lake: ``WorkDir.lake``).

    A plain folder name is accepted for inputs dropped in the lake (``cdr``).
    """
    folder = ds if isinstance(ds, str) else ds.directory
    return root / folder / f"date={day.isoformat()}"


#: The ``start=`` folder of events without a start time.
NO_START = "none"


def start_folder(start: date | None) -> str:
    """The ``start=<S>`` folder name of events that started on ``start`` (None: unknown)."""
    return f"start={start.isoformat() if start is not None else NO_START}"


def path(
    root: Path,
    ds: Dataset,
    day: date,
    *,
    partner: str | None = None,
    source: str | None = None,
    start: date | str | None = "",
) -> Path:
    """Where the file of ``ds`` for ``day`` (and ``partner``, ``start`` day, ``source`` file) is.

    ``start``: the day the events of a :attr:`Partitioning.DATE_START` file started (None:
    events without a start time); not given for the other datasets.

    Raises:
        ValueError: ``partner``, ``start`` or ``source`` missing where the dataset needs it, or
            given where it does not.
    """
    by_partner = ds.partitioning == Partitioning.DATE_PARTNER
    if by_partner != (partner is not None):
        msg = f"lake dataset `{ds.name}` is partitioned by {ds.partitioning}: partner={partner!r}"
        raise ValueError(msg)
    by_start = ds.partitioning == Partitioning.DATE_START
    if by_start != (start != ""):
        msg = f"lake dataset `{ds.name}` is partitioned by {ds.partitioning}: start={start!r}"
        raise ValueError(msg)
    per_source = "{source}" in ds.file
    if per_source != (source is not None):
        msg = f"lake dataset `{ds.name}` has files named `{ds.file}`: source={source!r}"
        raise ValueError(msg)
    folder = partition(root, ds, day)
    if partner is not None:
        folder = folder / f"partner={partner}"
    if by_start:
        folder = folder / start_folder(start if not isinstance(start, str) else None)
    return folder / ds.file.replace("{source}", source or "")


def period_partition(root: Path, name: str, period: str) -> Path:
    """The folder ``<root>/<name>/period=<YYYY-MM>`` of what is kept per settlement month.

    The monthly re-rating (``rerate``) keeps its delta report and changed rows there.
    """
    return root / name / f"period={period}"


def month_files(root: Path, ds: Dataset, period: str) -> list[Path]:
    """The files of ``ds`` for every processing date of the month ``period`` (``YYYY-MM``)."""
    return files(root, ds, [d for d in dates(root, ds) if d.strftime("%Y-%m") == period])


def dates(root: Path, ds: Dataset | str) -> list[date]:
    """Processing dates for which ``ds`` has a partition, in order."""
    folder = root / (ds if isinstance(ds, str) else ds.directory)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = _DATE_DIR.fullmatch(p.name)
        if m and p.is_dir():
            out.append(date.fromisoformat(m.group(1)))
    return sorted(out)


def files(
    root: Path, ds: Dataset, days: Iterable[date], *, starts: Iterable[date | None] | None = None
) -> list[Path]:
    """The Parquet files of ``ds`` for ``days``, sorted by date then path.

    ``starts``: of a :attr:`Partitioning.DATE_START` dataset, only the files of these start
    days (None in it: the events without a start time); the other folders are not listed.
    """
    found: list[Path] = []
    if starts is None:
        globs = [ds.glob]
    else:
        name = ds.file.replace("{source}", "*")
        globs = [f"{start_folder(s)}/{name}" for s in sorted(set(starts), key=_start_order)]
    for d in sorted(set(days)):
        folder = partition(root, ds, d)
        if folder.is_dir():
            found += sorted(f for g in globs for f in folder.glob(g))
    return found


def _start_order(s: date | None) -> date:
    return s if s is not None else date.min


def day_files(root: Path, day: date) -> list[Path]:
    """Every file in the ``date=<day>`` partitions of the registered datasets."""
    found: list[Path] = []
    for folder in dict.fromkeys(d.directory for d in DATASETS):
        part = partition(root, folder, day)
        if part.is_dir():
            found += sorted(p for p in part.rglob("*") if p.is_file())
    return found


# --- writing ----------------------------------------------------------------------------------


def clear(root: Path, ds: Dataset, day: date, *, keep: Iterable[str] = ()) -> None:
    """Remove the ``date=<day>`` partition of ``ds`` (a stage then writes it whole again).

    Args:
        root: the lake.
        ds: the dataset.
        day: the processing date.
        keep: partners whose ``partner=<P>`` folders stay as they are (a dataset partitioned
            by partner: the rows behind a sent file are never rewritten).
    """
    folder = partition(root, ds, day)
    kept = {f"partner={p}" for p in keep}
    if not kept:
        if folder.exists():
            shutil.rmtree(folder)
        return
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name in kept:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def write(
    root: Path,
    ds: Dataset,
    day: date,
    table: pa.Table,
    *,
    partner: str | None = None,
    source: str | None = None,
) -> Path:
    """Write ``table`` as the file of ``ds`` for ``day`` (atomic; replaces it); return its path."""
    target = path(root, ds, day, partner=partner, source=source)
    write_table_atomic(table, target, compression=ds.compression)
    return target


def write_pieces(
    root: Path,
    ds: Dataset,
    day: date,
    pieces: Iterable[pa.Table],
    *,
    partner: str | None = None,
    source: str | None = None,
) -> Path:
    """:func:`write` the concatenation of ``pieces`` without holding it: a row group each.

    The pieces have the same schema (of ``ds``'s file) and at most 1 Mi rows each; at least one.
    """
    target = path(root, ds, day, partner=partner, source=source)
    it = iter(pieces)
    first = next(it)
    write_row_groups_atomic(
        itertools.chain([first], it), first.schema, target, compression=ds.compression
    )
    return target


# --- reading ----------------------------------------------------------------------------------


def sql_type(t: pa.DataType) -> str:
    """The DuckDB type a Parquet column of Arrow type ``t`` reads as."""
    simple = {
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.uint32(): "UINTEGER",
        pa.uint64(): "UBIGINT",
        pa.bool_(): "BOOLEAN",
        pa.float64(): "DOUBLE",
        pa.date32(): "DATE",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{sql_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{f.name}" {sql_type(f.type)}' for f in t)
        return f"STRUCT({inner})"
    msg = f"no DuckDB type for Arrow type {t}"
    raise ValueError(msg)


def _listing(paths: list[Path]) -> str:
    return ", ".join("'" + str(f).replace("'", "''") + "'" for f in paths)


def view(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    ds: Dataset,
    days: Iterable[date],
    name: str,
    *,
    starts: Iterable[date | None] | None = None,
) -> list[Path]:
    """Create the view ``name`` over ``ds`` for ``days``, plus a ``processing_date`` column.

    ``starts``: only these start days of a :attr:`Partitioning.DATE_START` dataset (see
    :func:`files`). Without files the view is empty, with the dataset's columns and types.
    Returns the files read.
    """
    found = files(root, ds, days, starts=starts)
    if not found:
        cols = "".join(f'CAST(NULL AS {sql_type(f.type)}) AS "{f.name}", ' for f in ds.schema)
        con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT {cols}"
            "CAST(NULL AS DATE) AS processing_date WHERE false"
        )
        return []
    one = {m.group(1) if m else None for m in (_DATE_DIR.search(f.as_posix()) for f in found)}
    # one date: a constant, not a pattern matched on every row's file name
    processing_date = (
        f"DATE '{next(iter(one))}'"
        if len(one) == 1 and None not in one
        else "CAST(regexp_extract(filename, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE)"
    )
    con.execute(
        f"CREATE OR REPLACE VIEW {name} AS SELECT * EXCLUDE (filename), "
        f"{processing_date} AS processing_date "
        f"FROM read_parquet([{_listing(found)}], union_by_name = true, filename = true)"
    )
    return found


def read(root: Path, ds: Dataset, days: Iterable[date]) -> pa.Table:
    """The rows of ``ds`` for ``days`` as one table of the dataset's schema (empty: no file)."""
    import pyarrow.parquet as pq

    found = files(root, ds, days)
    if not found:
        return ds.schema.empty_table()
    tables = [pq.read_table(f, partitioning=None) for f in found]
    return pa.concat_tables(tables, promote_options="permissive")
