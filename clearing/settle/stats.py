"""Roaming statistics of a month: the figures (DuckDB over the lake) and their workbook.

``clearing stats --workdir W --period YYYY-MM`` reads the lake partitions of the processing
dates of the calendar month (``lake/<dataset>/date=D``, D in the month; nothing else) and
shows, in both directions — **outbound**: our subscribers abroad, the partners' TAP / CIBER
events that validate accepted (``events_in``, status ``accepted``); **inbound**: visitors on our
network, the mediation CDRs rated or not (``rated_visitors`` and ``unrated_visitors``, each
record once: on the date it was first rated, ``origin`` ``cdr``):

=====================  ============================================================================
Sheet                  What it shows
=====================  ============================================================================
``Overview``           the period, its processing dates, the key counts
``Call duration``      voice calls by duration: 0–60 s, 61–120 s, > 120 s
``Duration detail``    the same in finer buckets (0–30, 31–60, 61–120, 121–300, 301–600, 601–1800,
                       > 1800 s)
``SMS``                messages sent (MO) and received (MT), per direction
``Data by country``    our roamers' data by visited country (a TADIG's first three letters are
                       the ISO 3166 alpha-3 country; a CIBER SID/BID has none: ``n/a``)
``Data by partner``    data per partner: our roamers on its network, its roamers on ours
``Top roamers``        the 20 subscribers abroad with the largest retail amount (then events),
                       IMSI and MSISDN masked to their last 4 digits
``Sub-number usage``   retail bill lines per sub-number role and attribution rule
``Daily trend``        events and amounts per processing date and direction
=====================  ============================================================================

Voice is a mobile-originated or -terminated call that is not an SMS (teleservice 22 / 21) and a
VoLTE session (``mobileSession``); SMS MO is an MO call with teleservice 22 and a
``messagingEvent``, SMS MT an MT call with teleservice 21; data a ``gprsCall`` (bytes in plus
out). Visitors' CDRs: ``moc`` / ``mtc``, ``sms_mo`` / ``sms_mt``, ``gprs`` (``volume_up`` plus
``volume_down``). Durations are seconds (a missing one counts 0), volumes bytes (MB shown too:
bytes / 1 048 576 to three decimals, half up). Money stays integers at its scale: amounts are
exact Decimals per currency, never converted.

Each table has a chart beside it (openpyxl bar and line charts over the sheet's own cells),
every sheet prints on A4 (:mod:`clearing.settle._book`).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from clearing import config, lake
from clearing._memory import spill_past
from clearing.errors import ConfigError
from clearing.rating.retail_sql import service_sql
from clearing.settle._book import Book, Chart, Col, KeyFigure, KeyFigures, Table, write_book
from clearing.settle._common import software_version

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = [
    "COARSE",
    "FINE",
    "TOP",
    "Stats",
    "country",
    "mask",
    "read_stats",
    "stats_book",
    "stats_json",
    "stats_path",
    "write_stats",
]

#: The coarse call-duration buckets: (label, first second, last second; None: no end).
COARSE: tuple[tuple[str, int, int | None], ...] = (
    ("0-60 s", 0, 60),
    ("61-120 s", 61, 120),
    ("> 120 s", 121, None),
)
#: The finer buckets.
FINE: tuple[tuple[str, int, int | None], ...] = (
    ("0-30 s", 0, 30),
    ("31-60 s", 31, 60),
    ("61-120 s", 61, 120),
    ("121-300 s", 121, 300),
    ("301-600 s", 301, 600),
    ("601-1800 s", 601, 1800),
    ("> 1800 s", 1801, None),
)
#: How many roamers the top list shows.
TOP = 20
_MB = 1 << 20
_TADIG = re.compile(r"[A-Z]{3}[A-Z0-9]{2}")

# the service of a partner's event (as retail rating classifies it)
_OUT_SERVICE = service_sql("voice", "voice")
_IN_SERVICE = """CASE
    WHEN record_type IN ('moc', 'mtc') THEN 'voice'
    WHEN record_type IN ('sms_mo', 'sms_mt') THEN record_type
    WHEN record_type = 'gprs' THEN 'data'
    ELSE 'other' END"""


@dataclass
class Stats:
    """The statistics of one month: its tables as rows (dicts), in sheet order."""

    period: str
    home: str
    dates: list[date]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    currencies: dict[str, int] = field(default_factory=dict)  # amount column → its scale
    retail_currency: str | None = None
    partner_names: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No processing date of the month has data in the lake."""
        return not self.dates


def mask(number: str | None) -> str | None:
    """A subscriber number masked to its last 4 digits: ``***********1234``."""
    if number is None:
        return None
    keep = number[-4:]
    return "*" * (len(number) - len(keep)) + keep


def stats_path(workdir: Path, home: str, period: str, out: Path | None = None) -> Path:
    """``<out or workdir/out/stats>/stats_<HOME>_<YYYY-MM>.xlsx``."""
    folder = out if out is not None else workdir / "out" / "stats"
    return folder / f"stats_{home}_{period}.xlsx"


def _month(period: str) -> tuple[date, date]:
    m = re.fullmatch(r"(\d{4})-(\d{2})", period)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        msg = f"--period `{period}` must be a month YYYY-MM (e.g. 2026-11)"
        raise ConfigError(msg)
    y, mo = int(m.group(1)), int(m.group(2))
    return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])


# ---------------------------------------------------------------------------------------------
# reading


def read_stats(workdir: Path, period: str, *, settings: config.Settings | None = None) -> Stats:
    """The statistics of ``period`` (``YYYY-MM``) from the lake of ``workdir``.

    Only the partitions of the month's processing dates are read. A month without data gives
    empty tables (zero rows, or the buckets with zero counts).

    Raises:
        ConfigError: not ``YYYY-MM``, no ``clearing.toml``.
    """
    first, last = _month(period)
    settings = settings or config.load(workdir)
    root = config.WorkDir(workdir).lake
    used = (lake.EVENTS_IN, lake.RATED_VISITORS, lake.UNRATED_VISITORS, lake.RETAIL)
    days = sorted({d for ds in used for d in lake.dates(root, ds) if first <= d <= last})
    names = {p: v.name for p, v in settings.partners.items() if v.name}
    stats = Stats(period, settings.home.tadig, days, partner_names=names)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        # past half the budget DuckDB spills under the work folder (not the caller's cwd)
        spill_past(
            con, config.WorkDir(workdir).root / "tmp" / "stats", settings.performance.memory_mb // 2
        )
        lake.view(con, root, lake.EVENTS_IN, days, "ev_all")
        lake.view(con, root, lake.RATED_VISITORS, days, "rv")
        lake.view(con, root, lake.UNRATED_VISITORS, days, "uv")
        lake.view(con, root, lake.RETAIL, days, "rl")
        con.execute(
            "CREATE VIEW out_ev AS SELECT *, "
            f"{_OUT_SERVICE} AS svc, coalesce(duration, 0) AS secs, "
            "coalesce(data_volume_incoming, 0) + coalesce(data_volume_outgoing, 0) AS bytes "
            "FROM ev_all WHERE status = 'accepted'"
        )
        cols = (
            "record_type, imsi, msisdn, duration, volume_up, volume_down, partner, charge, "
            "charge_scale, currency, processing_date"
        )
        con.execute(
            f"CREATE VIEW in_ev AS SELECT *, {_IN_SERVICE} AS svc, "
            "coalesce(duration, 0) AS secs, "
            "coalesce(volume_up, 0) + coalesce(volume_down, 0) AS bytes FROM ("
            f"SELECT {cols} FROM rv WHERE coalesce(origin, 'cdr') = 'cdr' "
            f"UNION ALL SELECT {cols} FROM uv WHERE coalesce(origin, 'cdr') = 'cdr')"
        )
        stats.tables["Call duration"], stats.tables["Duration detail"] = _durations(con)
        stats.tables["SMS"] = _sms(con)
        stats.tables["Data by country"] = _by_country(con)
        stats.tables["Data by partner"] = _by_partner(con, names)
        stats.retail_currency = _retail_currency(con)
        stats.tables["Top roamers"] = _top(con, stats.retail_currency)
        stats.tables["Sub-number usage"] = _roles(con)
        stats.tables["Daily trend"], stats.currencies = _trend(con, days)
    finally:
        con.close()
    return stats


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _bucket(seconds: int, buckets: tuple[tuple[str, int, int | None], ...]) -> str:
    for label, lo, hi in buckets:
        if seconds >= lo and (hi is None or seconds <= hi):
            return label
    return buckets[0][0]  # a negative duration (never valid) counts in the first bucket


def _durations(
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Voice calls and their seconds per duration bucket, both directions (coarse, fine)."""
    tables = []
    found = {
        "out": _rows(
            con, "SELECT secs, count(*), sum(secs) FROM out_ev WHERE svc = 'voice' GROUP BY secs"
        ),
        "in": _rows(
            con, "SELECT secs, count(*), sum(secs) FROM in_ev WHERE svc = 'voice' GROUP BY secs"
        ),
    }
    for buckets in (COARSE, FINE):
        rows: dict[str, dict[str, Any]] = {
            label: {
                "bucket": label,
                "out_calls": 0,
                "out_seconds": 0,
                "in_calls": 0,
                "in_seconds": 0,
            }
            for label, _, _ in buckets
        }
        for way, found_rows in found.items():
            for secs, n, total in found_rows:
                row = rows[_bucket(int(secs), buckets)]
                row[f"{way}_calls"] += int(n)
                row[f"{way}_seconds"] += int(total)
        tables.append(list(rows.values()))
    return tables[0], tables[1]


def _sms(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    out = []
    for label, view in (
        ("Outbound (our roamers abroad)", "out_ev"),
        ("Inbound (visitors)", "in_ev"),
    ):
        mo, mt = _rows(
            con,
            "SELECT count(*) FILTER (WHERE svc = 'sms_mo'), count(*) FILTER (WHERE svc = 'sms_mt') "
            f"FROM {view}",
        )[0]
        out.append({"direction": label, "sent": int(mo), "received": int(mt)})
    return out


def _mb(n: int) -> Decimal:
    return (Decimal(n) / Decimal(_MB)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def country(partner: str | None) -> str:
    """A sender's visited country: its TADIG's first 3 letters (ISO 3166 alpha-3), else ``n/a``."""
    if partner is not None and _TADIG.fullmatch(partner):
        return partner[:3]
    return "n/a"


def _by_country(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Our roamers' data per visited country (from the sender's TADIG)."""
    per: dict[str, dict[str, Any]] = {}
    found = _rows(
        con,
        "SELECT sender, count(*), sum(bytes) FROM out_ev WHERE svc = 'data' "
        "GROUP BY sender ORDER BY sender",
    )
    for sender, n, total in found:
        c = country(sender)
        row = per.setdefault(c, {"country": c, "partners": 0, "sessions": 0, "bytes": 0})
        row["partners"] += 1
        row["sessions"] += int(n)
        row["bytes"] += int(total)
    rows = sorted(per.values(), key=lambda r: (-r["bytes"], r["country"]))
    for r in rows:
        r["mb"] = _mb(r["bytes"])
    return rows


def _by_partner(con: duckdb.DuckDBPyConnection, names: dict[str, str]) -> list[dict[str, Any]]:
    """Data per partner: our roamers on its network (outbound), its roamers on ours (inbound)."""
    per: dict[str, dict[str, Any]] = {}
    for way, sql in (
        ("out", "SELECT sender, count(*), sum(bytes) FROM out_ev WHERE svc = 'data' GROUP BY 1"),
        ("in", "SELECT partner, count(*), sum(bytes) FROM in_ev WHERE svc = 'data' GROUP BY 1"),
    ):
        for partner, n, total in _rows(con, sql):
            key = partner or "unknown"
            row = per.setdefault(
                key,
                {
                    "partner": key,
                    "name": names.get(key, ""),
                    "country": country(partner),
                    "out_sessions": 0,
                    "out_bytes": 0,
                    "in_sessions": 0,
                    "in_bytes": 0,
                },
            )
            row[f"{way}_sessions"] += int(n)
            row[f"{way}_bytes"] += int(total)
    rows = sorted(per.values(), key=lambda r: r["partner"])
    for r in rows:
        r["out_mb"] = _mb(r["out_bytes"])
        r["in_mb"] = _mb(r["in_bytes"])
    return rows


def _retail_currency(con: duckdb.DuckDBPyConnection) -> str | None:
    """The currency of most retail bill lines (the top roamers' amounts are in it)."""
    found = _rows(
        con,
        "SELECT currency FROM rl WHERE currency IS NOT NULL GROUP BY currency "
        "ORDER BY count(*) DESC, currency LIMIT 1",
    )
    return str(found[0][0]) if found else None


def _exact(parts: list[tuple[int, int]]) -> Decimal:
    """The exact sum of amounts given as (integer, scale)."""
    return sum((Decimal(v).scaleb(-s) for v, s in parts), Decimal(0))


def _top(con: duckdb.DuckDBPyConnection, currency: str | None) -> list[dict[str, Any]]:
    """The :data:`TOP` roamers: retail amount, then events, then IMSI; numbers masked."""
    usage = _rows(
        con,
        "SELECT imsi, min(msisdn), count(*), sum(secs) FILTER (WHERE svc = 'voice'), "
        "count(*) FILTER (WHERE svc IN ('sms_mo', 'sms_mt')), "
        "sum(bytes) FILTER (WHERE svc = 'data') "
        "FROM out_ev WHERE imsi IS NOT NULL GROUP BY imsi",
    )
    amounts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    if currency is not None:
        cur = currency.replace("'", "''")
        for imsi, scale, amount in _rows(
            con,
            "SELECT imsi, coalesce(scale, 0), sum(amount) FROM rl "
            f"WHERE currency = '{cur}' AND amount IS NOT NULL GROUP BY imsi, scale",
        ):
            amounts[str(imsi)].append((int(amount), int(scale)))
    rows: list[dict[str, Any]] = [
        {
            "rank": 0,
            "imsi": mask(str(imsi)),
            "msisdn": mask(msisdn),
            "events": int(n),
            "voice_seconds": int(secs or 0),
            "sms": int(sms or 0),
            "data_bytes": int(data or 0),
            "amount": _exact(amounts.get(str(imsi), [])),
            "currency": currency or "",
            "_imsi": str(imsi),
        }
        for imsi, msisdn, n, secs, sms, data in usage
    ]
    rows.sort(key=lambda r: (-r["amount"], -r["events"], r["_imsi"]))
    top = rows[:TOP]
    for rank, r in enumerate(top, start=1):
        r["rank"] = rank
        del r["_imsi"]
    return top


def _roles(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Retail bill lines per sub-number role and attribution rule (and currency)."""
    found = _rows(
        con,
        "SELECT coalesce(role, 'none'), attribution_rule, currency, coalesce(scale, 0), count(*), "
        "coalesce(sum(units) FILTER (WHERE unit = 'second'), 0), "
        "coalesce(sum(units) FILTER (WHERE unit = 'message'), 0), "
        "coalesce(sum(units) FILTER (WHERE unit = 'byte'), 0), coalesce(sum(amount), 0) "
        "FROM rl GROUP BY ALL ORDER BY 1, 2, 3, 4",
    )
    per: dict[tuple[str, str, str], dict[str, Any]] = {}
    for role, rule, cur, scale, n, secs, msgs, data, amount in found:
        key = (str(role), str(rule), str(cur or ""))
        row = per.setdefault(
            key,
            {
                "label": f"{role} / {rule}",
                "role": str(role),
                "rule": str(rule),
                "events": 0,
                "voice_seconds": 0,
                "sms": 0,
                "data_bytes": 0,
                "amount": Decimal(0),
                "currency": str(cur or ""),
            },
        )
        row["events"] += int(n)
        row["voice_seconds"] += int(secs)
        row["sms"] += int(msgs)
        row["data_bytes"] += int(data)
        row["amount"] += Decimal(int(amount)).scaleb(-int(scale))
    return list(per.values())


def _trend(
    con: duckdb.DuckDBPyConnection, days: list[date]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per processing date: events per direction, amounts per direction and currency."""
    rows: dict[date, dict[str, Any]] = {
        d: {"date": d, "out_events": 0, "in_events": 0} for d in days
    }
    amounts: dict[date, dict[str, list[tuple[int, int]]]] = {d: defaultdict(list) for d in days}
    scales: dict[str, int] = {}
    for way, view in (("out", "out_ev"), ("in", "in_ev")):
        for d, n in _rows(con, f"SELECT processing_date, count(*) FROM {view} GROUP BY 1"):
            rows[d][f"{way}_events"] = int(n)
        for d, cur, scale, amount in _rows(
            con,
            "SELECT processing_date, currency, coalesce(charge_scale, 0), sum(charge) "
            f"FROM {view} WHERE charge IS NOT NULL AND currency IS NOT NULL GROUP BY ALL",
        ):
            key = f"{way}_{cur}"
            amounts[d][key].append((int(amount), int(scale)))
            scales[key] = max(scales.get(key, 0), int(scale))
    order = sorted(scales, key=lambda k: (k.split("_", 1)[0] != "out", k))
    out = []
    for d in days:
        row = rows[d]
        for key in order:
            row[key] = _exact(amounts[d].get(key, []))
        out.append(row)
    return out, {k: scales[k] for k in order}


# ---------------------------------------------------------------------------------------------
# the workbook


def _dur_cols() -> list[Col]:
    return [
        Col("bucket", "Duration", width=14),
        Col("out_calls", "Outbound calls (our roamers abroad)", "int", total=True, width=16),
        Col("out_seconds", "Outbound seconds", "int", total=True, width=14),
        Col("in_calls", "Inbound calls (visitors)", "int", total=True, width=14),
        Col("in_seconds", "Inbound seconds", "int", total=True, width=14),
    ]


def _chart(title: str, category: str, series: tuple[str, ...], y: str, kind: str = "bar") -> Chart:
    return Chart(
        title,
        category,
        series,
        kind="line" if kind == "line" else "bar",
        y_title=y,
        beside=True,
        width=10.0,
        height=7.5,
    )


def stats_book(s: Stats) -> Book:
    """The workbook of ``s``: an overview, then one sheet per table, each with its chart."""
    first, last = _month(s.period)
    t = s.tables
    top_scale = _places(r["amount"] for r in t["Top roamers"])
    role_scale = _places(r["amount"] for r in t["Sub-number usage"])
    tables = [
        Table(
            "Call duration",
            f"Voice calls by duration, {s.period}",
            _dur_cols(),
            t["Call duration"],
            subtitle="Calls (MO, MT, VoLTE) by their duration in seconds; outbound: partners' "
            "accepted TAP/CIBER events, inbound: visitors' CDRs.",
            charts=[
                _chart("Calls by duration", "bucket", ("out_calls", "in_calls"), "calls"),
            ],
        ),
        Table(
            "Duration detail",
            f"Voice calls by duration (finer buckets), {s.period}",
            _dur_cols(),
            t["Duration detail"],
            charts=[_chart("Calls by duration", "bucket", ("out_calls", "in_calls"), "calls")],
        ),
        Table(
            "SMS",
            f"SMS sent and received, {s.period}",
            [
                Col("direction", "Direction", width=30),
                Col("sent", "Sent (MO)", "int", total=True, width=12),
                Col("received", "Received (MT)", "int", total=True, width=12),
            ],
            t["SMS"],
            charts=[_chart("SMS", "direction", ("sent", "received"), "messages")],
        ),
        Table(
            "Data by country",
            f"Our roamers' data by visited country, {s.period}",
            [
                Col("country", "Country (ISO 3166 alpha-3)", width=14),
                Col("partners", "Partners", "int", width=10),
                Col("sessions", "Sessions", "int", total=True, width=12),
                Col("bytes", "Bytes", "int", total=True, width=18),
                Col("mb", "MB", "decimal", scale=3, total=True, width=14),
            ],
            t["Data by country"],
            notes=["MB = bytes / 1,048,576, to three decimals (half up); the bytes are exact."],
            charts=[_chart("Data by visited country", "country", ("mb",), "MB")],
        ),
        Table(
            "Data by partner",
            f"Data by partner, {s.period}",
            [
                Col("partner", "Partner", width=10),
                Col("name", "Name", width=22),
                Col("country", "Country", width=9),
                Col("out_sessions", "Outbound sessions", "int", total=True, width=11),
                Col("out_bytes", "Outbound bytes", "int", total=True, width=15),
                Col("out_mb", "Outbound MB", "decimal", scale=3, total=True, width=12),
                Col("in_sessions", "Inbound sessions", "int", total=True, width=11),
                Col("in_bytes", "Inbound bytes", "int", total=True, width=15),
                Col("in_mb", "Inbound MB", "decimal", scale=3, total=True, width=12),
            ],
            t["Data by partner"],
            subtitle="Outbound: our roamers on the partner's network; inbound: the partner's "
            "subscribers on ours.",
            charts=[_chart("Data by partner", "partner", ("out_mb", "in_mb"), "MB")],
        ),
        Table(
            "Top roamers",
            f"Top {TOP} roamers abroad, {s.period}",
            [
                Col("rank", "Rank", "int", width=6),
                Col("imsi", "IMSI", width=18),
                Col("msisdn", "MSISDN", width=14),
                Col("events", "Events", "int", total=True, width=8),
                Col("voice_seconds", "Voice seconds", "int", total=True, width=9),
                Col("sms", "SMS", "int", total=True, width=6),
                Col("data_bytes", "Data bytes", "int", total=True, width=15),
                Col(
                    "amount",
                    f"Retail amount {s.retail_currency or ''}".strip(),
                    "money",
                    scale=top_scale,
                    total=True,
                    width=12,
                ),
            ],
            t["Top roamers"],
            notes=[
                "Ranked by the retail amount of their bill lines in "
                f"{s.retail_currency or '(no retail lines)'}, then by events; IMSI and MSISDN "
                "masked to their last 4 digits."
            ],
            charts=[_chart("Top roamers by retail amount", "rank", ("amount",), "amount")],
        ),
        Table(
            "Sub-number usage",
            f"Usage per sub-number kind, {s.period}",
            [
                Col("label", "Role / attribution rule", width=22),
                Col("events", "Events", "int", total=True, width=9),
                Col("voice_seconds", "Voice seconds", "int", total=True, width=10),
                Col("sms", "SMS", "int", total=True, width=7),
                Col("data_bytes", "Data bytes", "int", total=True, width=15),
                Col("amount", "Amount", "money", scale=role_scale, width=12),
                Col("currency", "Currency", width=9),
            ],
            t["Sub-number usage"],
            subtitle="Retail bill lines per role of the sub-number they were attributed to "
            "(units after the plan's increments).",
            charts=[_chart("Events per sub-number kind", "label", ("events",), "events")],
        ),
        _trend_table(s),
    ]
    front = _front(s, first, last)
    return Book(
        title=f"Roaming statistics {s.home} {s.period}",
        subject=f"Roaming statistics, period {s.period}",
        stamp=datetime(last.year, last.month, last.day),
        creator=software_version(),
        front=front,
        tables=tables,
        footer=f"{s.home} roaming statistics {s.period}",
    )


def _front(s: Stats, first: date, last: date) -> KeyFigures:
    """The Overview sheet: what the workbook is, the month's key counts."""
    t = s.tables
    counts = {
        "out_calls": sum(r["out_calls"] for r in t["Call duration"]),
        "in_calls": sum(r["in_calls"] for r in t["Call duration"]),
    }
    header: list[tuple[str, Any]] = [
        ("Home network", s.home),
        ("Period", s.period),
        ("Processing dates", f"{first} to {last}"),
        ("Dates with data", len(s.dates)),
    ]
    notes = [
        "Outbound: partners' TAP/CIBER events accepted by validate (our subscribers abroad); "
        "inbound: visitors' CDRs on our network, each once (the date it was first rated).",
        "Money is shown per currency, never converted.",
    ]
    if s.empty:
        notes.insert(0, f"No data: no processing date of {s.period} is in the lake.")
    return KeyFigures(
        "Overview",
        f"Roaming statistics {s.home} {s.period}",
        header,
        [
            KeyFigure("Outbound voice calls", value=counts["out_calls"]),
            KeyFigure("Inbound voice calls", value=counts["in_calls"]),
            KeyFigure("Outbound SMS sent", value=t["SMS"][0]["sent"]),
            KeyFigure("Outbound SMS received", value=t["SMS"][0]["received"]),
            KeyFigure("Inbound SMS sent", value=t["SMS"][1]["sent"]),
            KeyFigure("Inbound SMS received", value=t["SMS"][1]["received"]),
            KeyFigure(
                "Outbound data bytes", value=sum(r["out_bytes"] for r in t["Data by partner"])
            ),
            KeyFigure("Inbound data bytes", value=sum(r["in_bytes"] for r in t["Data by partner"])),
        ],
        notes=notes,
    )


def _places(amounts: Iterable[Decimal]) -> int:
    """The decimal places that show every amount exactly (at least 2)."""
    places = 2
    for a in amounts:
        exponent = a.as_tuple().exponent
        if isinstance(exponent, int):
            places = max(places, -exponent)
    return places


def _trend_table(s: Stats) -> Table:
    cols = [
        Col("date", "Processing date", "date", width=12),
        Col("out_events", "Outbound events", "int", total=True, width=11),
        Col("in_events", "Inbound events", "int", total=True, width=11),
    ]
    for key, scale in s.currencies.items():
        way, cur = key.split("_", 1)
        title = f"{'Outbound' if way == 'out' else 'Inbound'} charge {cur}"
        cols.append(Col(key, title, "money", scale=scale, total=True, width=14))
    return Table(
        "Daily trend",
        f"Inbound and outbound by processing date, {s.period}",
        cols,
        s.tables["Daily trend"],
        subtitle="Events and charges per processing date: outbound, the partners' charges "
        "(TAP/CIBER); inbound, our rating of the visitors' CDRs.",
        charts=[
            _chart("Events by day", "date", ("out_events", "in_events"), "events", kind="line")
        ],
    )


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def stats_json(s: Stats) -> dict[str, Any]:
    """The same tables as one JSON-ready object (amounts as decimal strings)."""
    return {
        "period": s.period,
        "home": s.home,
        "dates": [d.isoformat() for d in s.dates],
        "empty": s.empty,
        "retail_currency": s.retail_currency,
        "tables": {
            name: [{k: _plain(v) for k, v in row.items()} for row in rows]
            for name, rows in s.tables.items()
        },
    }


def write_stats(workdir: Path, period: str, *, out: Path | None = None) -> tuple[Path, Stats]:
    """Read the statistics of ``period`` and write their workbook; its path and the figures.

    Raises:
        ConfigError: not ``YYYY-MM``, no ``clearing.toml``.
    """
    _month(period)
    settings = config.load(workdir)
    s = read_stats(workdir, period, settings=settings)
    path = stats_path(workdir, s.home, s.period, out)
    write_book(stats_book(s), path)
    return path, s
