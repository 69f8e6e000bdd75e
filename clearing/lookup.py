"""What `clearing find` shows: one subscriber's events across processing dates, from the lake.

Three kinds of event, each read from its own dataset (:mod:`clearing.lake`):

* ``received`` — a partner's TAP-in / CIBER-in event of the IMSI (``events_in``), whatever its
  fate: ``status`` is what validate decided (``accepted``, ``duplicate``, ``returned``…);
* ``retail`` — the card's rated retail bill line (``retail`` bill lines): ``status`` ``rated``,
  or ``none`` when no sub-number took the event (attribution rule ``none``); its ``line_id``
  is what ``clearing retail explain --line`` takes;
* ``visitor`` — a foreign visitor's CDR on our network (``rated_visitors``: ``rated``;
  ``unrated_visitors``: ``unrated`` / ``held``, with the reason).

A look-up by MSISDN takes the cards the number belongs to in the retail reference data
(``sub_numbers`` rows whose validity overlaps the dates looked at) and the events whose own
MSISDN is that number (a visitor's CDRs, a received event's MSISDN, a bill line's number).

Only the date partitions of the dates asked for are read (:func:`clearing.lake.files`), and the
subscriber is a filter of the DuckDB scan (pushed down to the Parquet row groups): the cost
follows the range, not the size of the lake. Without ``--from`` / ``--to`` the dates are the
last :data:`DEFAULT_DATES` processing dates present in the lake.

Money is never a float: an amount is a :class:`~decimal.Decimal` (the integer at its scale).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from clearing import lake
from clearing.errors import ConfigError
from clearing.rating.retail_explain import line_id
from clearing.rating.retail_tables import RETAIL_TABLES, load_retail_tables

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = [
    "DEFAULT_DATES",
    "KINDS",
    "Found",
    "Lookup",
    "check_imsi",
    "check_msisdn",
    "event_times",
    "find",
    "lake_dates",
]

#: The processing dates looked at when no range is given: the last ones present in the lake.
DEFAULT_DATES = 31

#: The kinds of event, in the order they sort at the same start.
KINDS = ("received", "retail", "visitor")

#: The datasets a look-up reads (their dates are the lake's processing dates).
_DATASETS = (lake.EVENTS_IN, lake.RETAIL, lake.RATED_VISITORS, lake.UNRATED_VISITORS)

_IMSI = re.compile(r"[0-9]{5,15}")
_MSISDN = re.compile(r"\+?[0-9]{3,15}")
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")


@dataclass(frozen=True, slots=True)
class Found:
    """One event of the subscriber.

    Attributes:
        kind: ``received`` | ``retail`` | ``visitor``.
        processing_date: the date partition it was read from.
        start: when it started (UTC), None when unknown.
        local_start: the same instant at the event's own UTC offset (None: offset unknown).
        partner: the sender (received, retail) or the visitor's home partner.
        file: the partner's file (received, retail) or the CDR file (visitor).
        status: the event's fate (see the module).
        imsi: the card.
        msisdn: the event's MSISDN (a bill line: the sub-number it was billed to).
        service: the TD.57 event kind (received), the retail or visitor service.
        units: the rated units (retail: after the plan's increments; visitor: charged units).
        amount: the charge, exact (retail: the bill line; received: the partner's charge;
            visitor: our charge), None when there is none.
        currency: the currency of ``amount``.
        extra: what else identifies or explains it (event index, record id, rule, reason).
    """

    kind: str
    processing_date: date
    start: datetime | None
    local_start: datetime | None
    partner: str | None
    file: str | None
    status: str
    imsi: str | None
    msisdn: str | None
    service: str | None
    units: int | None
    amount: Decimal | None
    currency: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[Any, ...]:
        """Start (unknown last), then kind, date, file and position in it."""
        start = self.start or datetime.max.replace(tzinfo=UTC)
        position = self.extra.get("event_index", self.extra.get("line"))
        return (
            self.start is None,
            start,
            KINDS.index(self.kind),
            self.processing_date,
            self.file or "",
            position if position is not None else -1,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO 8601 times with their offset, the amount as a decimal string."""
        return {
            "kind": self.kind,
            "start": self.start.isoformat() if self.start else None,
            "local_start": self.local_start.isoformat() if self.local_start else None,
            "processing_date": self.processing_date.isoformat(),
            "partner": self.partner,
            "file": self.file,
            "status": self.status,
            "imsi": self.imsi,
            "msisdn": self.msisdn,
            "service": self.service,
            "units": self.units,
            "amount": None if self.amount is None else str(self.amount),
            "currency": self.currency,
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer of :func:`find`.

    Attributes:
        imsis: the cards looked for (the IMSI given, or the MSISDN's cards).
        msisdn: the MSISDN given, if any.
        dates: the processing dates read.
        events: what was found, by start then kind.
    """

    imsis: tuple[str, ...]
    msisdn: str | None
    dates: tuple[date, ...]
    events: tuple[Found, ...]

    def counts(self) -> dict[str, int]:
        """Events per kind (every kind, 0 included)."""
        seen = Counter(e.kind for e in self.events)
        return {k: seen.get(k, 0) for k in KINDS}

    def retail_amounts(self) -> dict[str, Decimal]:
        """The retail amount per currency (exact sums of the bill lines)."""
        out: dict[str, Decimal] = {}
        for e in self.events:
            if e.kind == "retail" and e.amount is not None:
                key = e.currency or "?"
                out[key] = out.get(key, Decimal(0)) + e.amount
        return out


def lake_dates(root: Path) -> list[date]:
    """The processing dates with a partition of any dataset a look-up reads, in order."""
    return sorted({d for ds in _DATASETS for d in lake.dates(root, ds)})


def _pick_dates(root: Path, first: date | None, last: date | None) -> list[date]:
    if first is not None and last is not None and first > last:
        msg = f"--from {first} is after --to {last}: give a range that runs forward"
        raise ConfigError(msg)
    present = [
        d for d in lake_dates(root) if (first is None or d >= first) and (last is None or d <= last)
    ]
    return present if first is not None else present[-DEFAULT_DATES:]


def _cards(rates_dir: Path, msisdn: str, first: date, last: date) -> list[str]:
    """The cards (IMSIs) ``msisdn`` belongs to between ``first`` and ``last`` (sub_numbers)."""
    if not any(
        (rates_dir / t).is_dir() or (rates_dir / "sources" / f"{t}.csv").is_file()
        for t in RETAIL_TABLES
    ):
        return []  # no retail reference data: no cards of ours
    numbers = load_retail_tables(rates_dir).sub_numbers.to_pylist()
    return sorted(
        {
            r["imsi"]
            for r in numbers
            if r["msisdn"] == msisdn
            and (r["valid_from"] is None or r["valid_from"] <= last)
            and (r["valid_to"] is None or r["valid_to"] > first)
        }
    )


def _offset(text: str | None) -> timezone | None:
    m = _OFFSET.fullmatch(text or "")
    if m is None:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-delta if m.group(1) == "-" else delta)


def event_times(
    utc: datetime | None, local: datetime | None, offset: str | None
) -> tuple[datetime | None, datetime | None]:
    """An event's start in UTC and at its own UTC offset, from what a lake row holds.

    ``utc`` (naive = UTC) wins; else ``local`` at ``offset`` (``+hhmm`` or ``+hh:mm``). The
    second is None without an offset.
    """
    tz = _offset(offset)
    if utc is not None:
        utc = utc.replace(tzinfo=UTC) if utc.tzinfo is None else utc.astimezone(UTC)
    elif local is not None and tz is not None:
        utc = local.replace(tzinfo=tz).astimezone(UTC)
    at_offset = utc.astimezone(tz) if utc is not None and tz is not None else None
    return utc, at_offset


def _money(amount: int | None, scale: int | None) -> Decimal | None:
    if amount is None:
        return None
    return Decimal(amount).scaleb(-(scale or 0))


def _query(
    select: str, imsis: Sequence[str], msisdn_columns: Sequence[str], msisdn: str | None
) -> tuple[str, list[Any]]:
    """The SQL over the view ``found`` and its parameters: the card(s), or the MSISDN's columns.

    One SELECT per term, joined by UNION (the rows are distinct: each has its file and place
    in it), so that each term is a filter of the Parquet scan (an OR of columns would not be).
    """
    terms: list[tuple[str, list[Any]]] = []
    if imsis:
        terms.append((f"imsi IN ({', '.join('?' * len(imsis))})", list(imsis)))
    if msisdn is not None:
        terms += [(f"{c} = ?", [msisdn]) for c in msisdn_columns]
    if not terms:
        terms.append(("false", []))
    sql = " UNION ".join(
        f"SELECT processing_date, {select} FROM found WHERE {where}" for where, _ in terms
    )
    return sql, [p for _, params in terms for p in params]


def _rows(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    ds: lake.Dataset,
    days: Sequence[date],
    select: str,
    msisdn_columns: Sequence[str],
    imsis: Sequence[str],
    msisdn: str | None,
) -> list[dict[str, Any]]:
    """The rows of ``ds`` for ``days`` of the subscriber, as dicts of the ``select`` columns."""
    files = lake.files(root, ds, days)
    if not files:
        return []
    sql, params = _query(select, imsis, msisdn_columns, msisdn)
    try:
        lake.view(con, root, ds, days, "found")
        rel = con.execute(sql, params)
    except duckdb.Error as exc:
        msg = (
            f"cannot read the lake's `{ds.name}` of {days[0]} … {days[-1]} ({len(files)} "
            f"files under `{root / ds.directory}`): {exc}; re-run the night of the date whose "
            "file is broken, or restore the work folder from a backup (`clearing restore`)"
        )
        raise ConfigError(msg) from exc
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


def _received(row: dict[str, Any]) -> Found:
    start, local = event_times(row["start_utc"], row["local_start"], row["utc_offset"])
    return Found(
        kind="received",
        processing_date=row["processing_date"],
        start=start,
        local_start=local,
        partner=row["sender"],
        file=row["file"],
        status=row["status"] or "?",
        imsi=row["imsi"],
        msisdn=row["msisdn"],
        service=row["event_kind"],
        units=None,
        amount=_money(row["charge"], row["charge_scale"]),
        currency=row["currency"],
        extra={
            "event_index": row["event_index"],
            "source_format": row["source_format"],
            "duration": row["duration"],
            "data_volume_incoming": row["data_volume_incoming"],
            "data_volume_outgoing": row["data_volume_outgoing"],
        },
    )


def _retail(row: dict[str, Any]) -> Found:
    start, _ = event_times(row["start_utc"], None, None)
    rule = row["attribution_rule"]
    return Found(
        kind="retail",
        processing_date=row["processing_date"],
        start=start,
        local_start=None,
        partner=row["sender"],
        file=row["file"],
        status="none" if rule == "none" else "rated",
        imsi=row["imsi"],
        msisdn=row["sub_number"],
        service=row["service"],
        units=row["units"],
        amount=_money(row["amount"], row["scale"]),
        currency=row["currency"],
        extra={
            "event_index": row["event_index"],
            "line_id": line_id(row["processing_date"], row["file"], row["event_index"]),
            "sub_number": row["sub_number"],
            "attribution_rule": rule,
            "event_msisdn": row["event_msisdn"],
            "plan_id": row["plan_id"],
            "unit": row["unit"],
        },
    )


def _visitor(row: dict[str, Any]) -> Found:
    start, local = event_times(None, row["start_time"], row["utc_offset"])
    return Found(
        kind="visitor",
        processing_date=row["processing_date"],
        start=start,
        local_start=local,
        partner=row["partner"],
        file=row["file"],
        status=row["status"] or "?",
        imsi=row["imsi"],
        msisdn=row["msisdn"],
        service=row["service"],
        units=row["charged_units"],
        amount=_money(row["charge"], row["charge_scale"]),
        currency=row["currency"],
        extra={"record_id": row["record_id"], "line": row["line"], "reason": row["reason"]},
    )


_RECEIVED = (
    "sender, file, event_index, event_kind, source_format, status, imsi, msisdn, start_utc, "
    "local_start, utc_offset, duration, data_volume_incoming, data_volume_outgoing, charge, "
    "charge_scale, currency"
)
_RETAIL = (
    "sender, file, event_index, attribution_rule, imsi, sub_number, event_msisdn, plan_id, "
    "start_utc, service, unit, units, amount, scale, currency"
)
_VISITOR = (
    "record_id, partner, file, line, status, reason, imsi, msisdn, start_time, utc_offset, "
    "service, charged_units, charge, charge_scale, currency"
)


def check_imsi(text: str) -> str:
    """``text`` if it is an IMSI (5 to 15 digits).

    Raises:
        ConfigError: it is not.
    """
    if not _IMSI.fullmatch(text):
        msg = f"--imsi {text!r} is not an IMSI: give its 5 to 15 digits (e.g. 454990001007919)"
        raise ConfigError(msg)
    return text


def check_msisdn(text: str) -> str:
    """The digits of an MSISDN (a leading ``+`` dropped).

    Raises:
        ConfigError: it is not 3 to 15 digits.
    """
    if not _MSISDN.fullmatch(text):
        msg = f"--msisdn {text!r} is not an MSISDN: give its E.164 digits (e.g. 85288892149)"
        raise ConfigError(msg)
    return text.removeprefix("+")


def find(
    workdir: Path,
    *,
    imsi: str | None = None,
    msisdn: str | None = None,
    first: date | None = None,
    last: date | None = None,
) -> Lookup:
    """Every event of a subscriber in the lake of ``workdir``, processing dates ``first``–``last``.

    Args:
        workdir: the work folder (its ``lake/`` and ``rates/``).
        imsi: the card; or
        msisdn: a number: its cards (retail reference data) and the events carrying it.
        first: the first processing date (inclusive); None: see ``last``.
        last: the last processing date (inclusive); None: the last in the lake. With neither,
            the last :data:`DEFAULT_DATES` processing dates present.

    Raises:
        ConfigError: neither or both of ``imsi`` and ``msisdn``, a bad one, a range that runs
            backwards, no lake in ``workdir``, or broken retail reference data.
    """
    if (imsi is None) == (msisdn is None):
        msg = "give one of --imsi or --msisdn (not both, not neither)"
        raise ConfigError(msg)
    imsi = None if imsi is None else check_imsi(imsi)
    msisdn = None if msisdn is None else check_msisdn(msisdn)
    root = workdir / "lake"
    if not root.is_dir():
        msg = f"no lake in `{workdir}` yet: run `clearing nightly --workdir {workdir}` first"
        raise ConfigError(msg)
    days = _pick_dates(root, first, last)
    imsis = [imsi] if imsi is not None else []
    if msisdn is not None and days:
        imsis = _cards(workdir / "rates", msisdn, days[0], days[-1])
    found: list[Found] = []
    if days:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            for ds, select, numbers, make in (
                (lake.EVENTS_IN, _RECEIVED, ("msisdn",), _received),
                (lake.RETAIL, _RETAIL, ("sub_number", "event_msisdn"), _retail),
                (lake.RATED_VISITORS, _VISITOR, ("msisdn",), _visitor),
                (lake.UNRATED_VISITORS, _VISITOR, ("msisdn",), _visitor),
            ):
                rows = _rows(con, root, ds, days, select, numbers, imsis, msisdn)
                found += [make(r) for r in rows]
        finally:
            con.close()
    return Lookup(
        imsis=tuple(imsis),
        msisdn=msisdn,
        dates=tuple(days),
        events=tuple(sorted(found, key=Found.sort_key)),
    )
