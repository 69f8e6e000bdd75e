"""The monthly settlement workbook of one accounting period (domain.md §4, monthly).

**Which data belongs to period ``YYYY-MM``**: the lake partitions (processing dates) of the
calendar month for TAP partners, and of the CIBER settlement period that ends on the 15th of
the month (the 16th of the month before to the 15th) for CIBER partners. A record is settled
in the period in which it was processed, whatever its call date: late TAP goes to the period
that processes it.

Sheets, in order:

``Overview``               the issue (version, what it replaces), windows, key figures
``Summary``                per partner: receivable (TAP-out / CIBER-out) and payable (TAP-in /
                           CIBER-in) in SDR, with tax and RAP adjustments both ways, the net
                           position in SDR and in the settlement currency, and its direction;
                           chart of the net position per partner
``By currency``            the net positions summed per settlement currency
``Detail``                 partner × direction × service: events, minutes actual vs charged,
                           MB, SMS, gross, discount, net, tax, average rate vs the IOT
``Exchange rates``         every fx row used: rate, source, date, events and amounts converted
``Retail``                 per sub-number plan: wholesale cost vs retail revenue, margin
``Retail bills``           per plan and currency, the bill cycles starting in the period: cards,
                           sub-numbers, fees, usage, tax, total (the statements' total)
``Daily trend``            receivable, payable and net per processing date; chart
``Re-rate deltas``         replays of the period's dates after they were sent: new − sent per
                           partner, service and currency, on their own (never in the receivable)
``Write-offs``             partners' returns about our TAP-out written off in the period (dated in
                           its TAP window): RAP file, partner, event, amount, reason; total in SDR
``Audit``                  software, config hash, reference data, windows, run, issue, every
                           input file, outbound file and lake file read (SHA-256)

**Money**: SDR figures are events converted one by one (rate valid on the event's local date,
through SDR, rounded half up once to 6 decimals), then summed. The **settlement currency**
figures are converted once per total (reports/README.md, Rounding): a partner's amounts as
rated, summed per direction, currency and fx rows, each sum converted and rounded half up once;
the column "Per-event rounding" shows what summing per-event conversions would have made of
the net position, minus it (never absorbed). SDR amounts have 6 decimals; settlement currencies
their ISO 4217 minor unit. Refunds count negative. **Receivable** = rated visitor records
(charge + tax); **RAP received** = what partners returned of our TAP-out (severe: the event's
charge + tax; fatal: the whole file's totals), negative. **Payable** = every event of the
partners' files as invoiced (charge + CAMEL fee + tax); **RAP sent** = the events we returned
(returned, duplicate, late, quarantined), negative; the net payable is what was accepted.
Events of IOT breaches above the thresholds that are held or disputed (``clearing iot
list``) are left out of the payable; once accepted they count in the period of the date their
file was received on.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearing import config
from clearing.errors import ConfigError
from clearing.money import minor_units
from clearing.rating.validity import valid_on_sql
from clearing.settle import _monthly_sheets as sheets
from clearing.settle._book import Book, money
from clearing.settle._common import AuditFacts, file_sha256, lake_file_rows
from clearing.settle._deltas import delta_rows, deltas_table
from clearing.settle._fx import Fx
from clearing.settle._issue import write_issue
from clearing.settle._lake import SDR_SCALE, Lake, MissingInputError
from clearing.settle._returns import write_off_rows, write_offs_table
from clearing.settle.statement import LOOK_BEFORE_DAYS, plan_rows, tax_of

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["Period", "build_monthly", "figures_ahead", "monthly_folder", "write_monthly"]

_VOICE = ("moc", "moc_local", "moc_home", "moc_international", "moc_destination", "mtc", "volte")
_SMS = ("sms_mo", "sms_mt")
_DATA = ("gprs",)
_MB = 1_048_576


@dataclass(frozen=True)
class Period:
    """An accounting period and its two windows of processing dates."""

    name: str  # YYYY-MM
    tap_from: date
    tap_to: date
    ciber_from: date
    ciber_to: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """``YYYY-MM`` → the period.

        Raises:
            ConfigError: not ``YYYY-MM``.
        """
        m = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if m is None or not 1 <= int(m.group(2)) <= 12:
            msg = f"period `{text}` is not YYYY-MM (e.g. 2026-11)"
            raise ConfigError(msg)
        y, mo = int(m.group(1)), int(m.group(2))
        last = calendar.monthrange(y, mo)[1]
        py, pm = (y - 1, 12) if mo == 1 else (y, mo - 1)
        return cls(text, date(y, mo, 1), date(y, mo, last), date(py, pm, 16), date(y, mo, 15))

    @property
    def first(self) -> date:
        """The earliest processing date of either window."""
        return min(self.tap_from, self.ciber_from)

    @property
    def last(self) -> date:
        """The latest processing date of either window."""
        return max(self.tap_to, self.ciber_to)

    def sql(self, standard: str, day: str) -> str:
        """A SQL predicate: ``day`` is in the window of ``standard`` (tap | ciber)."""
        return (
            f"(CASE WHEN {standard} = 'ciber' THEN {day} BETWEEN DATE '{self.ciber_from}' AND "
            f"DATE '{self.ciber_to}' ELSE {day} BETWEEN DATE '{self.tap_from}' AND "
            f"DATE '{self.tap_to}' END)"
        )


def monthly_folder(workdir: Path) -> Path:
    """Where the monthly workbooks are written."""
    return workdir / "out" / "settlement" / "monthly"


def write_monthly(workdir: Path, period: str, *, run_id: str | None = None) -> Path:
    """Write the next issue of the period's workbook (or return the latest, if unchanged)."""
    return write_monthly_figures(workdir, period, run_id=run_id)[0]


def _read_figures(workdir: Path, period: str) -> _Figures:
    p = Period.parse(period)
    return _Figures.read(workdir, p, config.load(workdir))


# figures being read ahead (:func:`figures_ahead`), by resolved work folder and period
_AHEAD: dict[tuple[Path, str], Future[_Figures]] = {}
_AHEAD_LOCK = threading.Lock()


@contextlib.contextmanager
def figures_ahead(workdir: Path, period: str) -> Iterator[None]:
    """Read the period's figures in a background thread while the block runs.

    The monthly close reads them during the rerate (which neither writes what they are made
    of nor needs them): the settle step's :func:`write_monthly_figures` of the same work folder
    and period inside the block takes them instead of reading them again (an error reading
    them is raised there, as it would have been). Leaving the block waits for the reading.
    """
    key = (workdir.resolve(), period)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monthly-figures") as pool:
        with _AHEAD_LOCK:
            _AHEAD[key] = pool.submit(_read_figures, workdir, period)
        try:
            yield
        finally:
            with _AHEAD_LOCK:
                _AHEAD.pop(key, None)


def write_monthly_figures(
    workdir: Path, period: str, *, run_id: str | None = None
) -> tuple[Path, _Figures]:
    """:func:`write_monthly`, and the figures it was made of (read once: the month's lake)."""
    with _AHEAD_LOCK:
        ahead = _AHEAD.pop((workdir.resolve(), period), None)
    figures = ahead.result() if ahead is not None else _read_figures(workdir, period)
    p, settings = figures.period, figures.settings
    stem = f"settlement_monthly_{settings.home.tadig}_{p.name}"

    def make(version: int, replaces: Path | None) -> Book:
        return build_monthly(figures, run_id=run_id, version=version, replaces=replaces)

    return write_issue(monthly_folder(workdir), stem, make), figures


# ---------------------------------------------------------------------------------------------
# figures


@dataclass
class _Figures:
    """Everything read for one period."""

    period: Period
    settings: config.Settings
    facts: AuditFacts
    dates: list[date]
    summary: list[dict[str, Any]] = field(default_factory=list)
    by_currency: list[dict[str, Any]] = field(default_factory=list)
    detail: list[dict[str, Any]] = field(default_factory=list)
    rates: list[dict[str, Any]] = field(default_factory=list)
    retail: list[dict[str, Any]] = field(default_factory=list)
    retail_bills: list[dict[str, Any]] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    missing_retail: list[date] = field(default_factory=list)
    deltas: list[dict[str, Any]] = field(default_factory=list)
    write_offs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, workdir: Path, p: Period, settings: config.Settings) -> _Figures:
        facts = AuditFacts.collect(workdir)
        with Lake(workdir, memory_mb=settings.performance.memory_mb) as lake:
            validated = lake.dates_between("findings", p.first, p.last)
            rated = lake.dates_between("unrated_visitors", p.first, p.last)
            if not validated and not rated:
                msg = (
                    f"no processing date of period {p.name} ({p.first} to {p.last}) was "
                    f"validated or rated in `{workdir}`: run `clearing validate` and `clearing "
                    "rate` for its dates first (or `clearing nightly`)"
                )
                raise MissingInputError(msg)
            for d in validated:
                if d not in rated:
                    lake.require(d)  # raises: validated but never rated
            dates = sorted(set(validated) | set(rated))
            f = cls(p, settings, facts, dates)
            f.missing_retail = [d for d in dates if not lake.partition("retail", d).is_dir()]
            _reference_views(lake)
            files = _event_views(lake, p, dates)
            _check_rates(lake)
            f.summary = _summary(lake, p, settings)
            f.by_currency = _by_currency(f.summary)
            f.detail = _detail(lake)
            f.rates = _rates_used(lake)
            f.retail = _retail(lake)
            f.retail_bills, bill_files = _retail_bills(lake, workdir, p)
            files += bill_files
            f.trend = _trend(lake)
            f.deltas, delta_files = delta_rows(lake, dates)
            files += delta_files
            f.write_offs = write_off_rows(lake, Fx.load(lake), p.tap_from, p.tap_to)
            f.audit = _audit_inputs(lake, p) + lake_file_rows(files, workdir)
            f.runs = _runs(workdir, p)
        return f


def _parquet_view(lake: Lake, name: str, table: str, fallback: str) -> None:
    files = sorted((lake.wd.rates / table).glob("**/*.parquet"))
    if not files:
        lake.con.execute(f"CREATE OR REPLACE VIEW {name} AS {fallback}")
        return
    listing = ", ".join("'" + str(x).replace("'", "''") + "'" for x in files)
    lake.con.execute(
        f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}], "
        "hive_partitioning = false, union_by_name = true)"
    )


def _reference_views(lake: Lake) -> None:
    _parquet_view(
        lake,
        "agr",
        "agreements",
        "SELECT CAST(NULL AS VARCHAR) AS partner, CAST(NULL AS VARCHAR) AS name, "
        "CAST(NULL AS VARCHAR) AS settlement_currency, CAST(NULL AS DATE) AS valid_from, "
        "CAST(NULL AS DATE) AS valid_to WHERE false",
    )
    _parquet_view(
        lake,
        "plans",
        "plans",
        "SELECT CAST(NULL AS VARCHAR) AS plan_id, CAST(NULL AS VARCHAR) AS name, "
        "CAST(NULL AS DATE) AS valid_from WHERE false",
    )


# one row per event of a processing date, both directions, with its conversions (see the module
# docstring): `ev`, `rv` and `rp` are views of the day's files
_DAY_EVENTS = f"""
CREATE OR REPLACE TEMP TABLE day_events AS
WITH base AS (
    SELECT 'receivable' AS direction, v.partner, coalesce(v.standard, 'tap') AS standard,
           coalesce(v.service, v.record_type) AS service, v.processing_date,
           CAST(v.start_time AS DATE) AS event_date, v.currency, v.charge_scale AS scale,
           'rated' AS status,
           coalesce(v.charge, 0) AS net, 0 AS discount, coalesce(v.tax, 0) AS tax,
           v.duration, v.charged_units, coalesce(v.volume_up, 0) + coalesce(v.volume_down, 0)
               AS bytes,
           CAST(NULL AS BIGINT) AS expected, v.file, v.record_id AS event_key,
           CAST(NULL AS VARCHAR) AS sender, CAST(NULL AS BIGINT) AS event_index
    FROM rv v WHERE {{rec_window}}
    UNION ALL
    SELECT 'payable', e.sender, e.source_format,
           coalesce(p.service, p.kind, e.event_kind), e.processing_date,
           CAST(e.local_start AS DATE), e.currency, e.charge_scale, e.status,
           CASE WHEN coalesce(e.refund, false) THEN -coalesce(e.charge, 0)
                ELSE coalesce(e.charge, 0) + coalesce(e.camel_fee, 0) END,
           CASE WHEN coalesce(e.refund, false) THEN 0 ELSE coalesce(e.discount, 0) END,
           CASE WHEN coalesce(e.refund, false) THEN -coalesce(e.tax, 0)
                ELSE coalesce(e.tax, 0) END,
           e.duration, p.charged_units,
           coalesce(e.data_volume_incoming, 0) + coalesce(e.data_volume_outgoing, 0),
           p.expected, e.file, CAST(e.event_index AS VARCHAR), e.sender, e.event_index
    FROM ev e LEFT JOIN rp p ON p.file = e.file AND p.event_index = e.event_index
        AND p.processing_date = e.processing_date
    -- IOT breaches above the thresholds, held or disputed: not in the payable. A join on the
    -- (few) held events, not a correlated NOT EXISTS: DuckDB held the month's payable rows in
    -- memory to decorrelate that, and ran out of its budget at 30 nights × 1M records
    LEFT JOIN (
        SELECT DISTINCT processing_date, file, event_index FROM iot_breaches
        WHERE status <> 'accepted'
    ) h ON h.processing_date = e.processing_date AND h.file = e.file
        AND h.event_index = e.event_index
    WHERE {{pay_window}}
        AND NOT (coalesce(e.status = 'accepted', false) AND h.file IS NOT NULL)
), dated AS (
    SELECT b.*, coalesce(b.event_date, b.processing_date) AS fx_date, a.settlement_currency
    FROM base b LEFT JOIN agr a ON a.partner = b.partner
        AND {valid_on_sql("a", "coalesce(b.event_date, b.processing_date)")}
), rated AS (
    SELECT d.*, minor(d.settlement_currency) AS settlement_scale,
           s.rate AS r_src, s.rate_scale AS s_src, s.version AS v_src,
           t.rate AS r_dst, t.rate_scale AS s_dst, t.version AS v_dst
    FROM dated d
    LEFT JOIN fx_rates s ON s.currency = coalesce(d.currency, 'SDR')
        AND {valid_on_sql("s", "d.fx_date")}
    LEFT JOIN fx_rates t ON t.currency = d.settlement_currency
        AND {valid_on_sql("t", "d.fx_date")}
), factored AS (
    -- the row's two conversions as int64 factors, once for its five amounts (fx_k)
    SELECT *, fx_kn(s_src, 1, {{sdr}}) AS kn_sdr, fx_kd(scale, r_src, 0) AS kd_sdr,
           fx_kn(s_src, r_dst, settlement_scale) AS kn_sc, fx_kd(scale, r_src, s_dst) AS kd_sc
    FROM rated
), bounded AS (
    SELECT *, fx_klim(kn_sdr, kd_sdr) AS lim_sdr, fx_klim(kn_sc, kd_sc) AS lim_sc FROM factored
)
SELECT * EXCLUDE (kn_sdr, kd_sdr, kn_sc, kd_sc, lim_sdr, lim_sc),
       fx_k(net, kn_sdr, kd_sdr, lim_sdr, scale, r_src, s_src, 1, 0, {{sdr}}) AS net_sdr,
       fx_k(discount, kn_sdr, kd_sdr, lim_sdr, scale, r_src, s_src, 1, 0, {{sdr}})
           AS discount_sdr,
       fx_k(tax, kn_sdr, kd_sdr, lim_sdr, scale, r_src, s_src, 1, 0, {{sdr}}) AS tax_sdr,
       fx_k(expected, kn_sdr, kd_sdr, lim_sdr, scale, r_src, s_src, 1, 0, {{sdr}})
           AS expected_sdr,
       fx_k(net + tax, kn_sc, kd_sc, lim_sc, scale, r_src, s_src, r_dst, s_dst,
            settlement_scale) AS total_sc
FROM bounded
"""

# partners' RAPs about our TAP-out, received in the period: severe events and fatal files
_RAP_IN = f"""
CREATE OR REPLACE TABLE rap_in AS
WITH r AS (
    SELECT i.sender AS partner, x.processing_date, x.kind, x.fsn, x.charge, x.tax, x.rap_file
    FROM returns_in x JOIN raps_in i ON i.file = x.rap_file
        AND i.processing_date = x.processing_date
    WHERE x.kind IN ('fatal', 'severe') AND {{window}}
), o AS (
    SELECT partner, sequence_number, charge_scale, currency, total_charge, total_tax
    FROM outbound_files WHERE standard = 'tap'
), v AS (
    SELECT r.partner, r.processing_date, r.kind, r.rap_file,
           coalesce(o.currency, 'SDR') AS currency,
           coalesce(o.charge_scale, {{sdr}}) AS scale,
           -(CASE WHEN r.kind = 'fatal' THEN coalesce(o.total_charge, 0) + coalesce(o.total_tax, 0)
                  ELSE coalesce(r.charge, 0) + coalesce(r.tax, 0) END) AS amount
    FROM r LEFT JOIN o ON o.partner = r.partner AND o.sequence_number = TRY_CAST(r.fsn AS INTEGER)
), a AS (
    SELECT v.*, g.settlement_currency FROM v LEFT JOIN agr g ON g.partner = v.partner
        AND {valid_on_sql("g", "v.processing_date")}
)
SELECT a.*, minor(a.settlement_currency) AS settlement_scale, s.version AS v_src,
       t.version AS v_dst, s.rate AS r_src, t.rate AS r_dst,
       s.rate_scale AS s_src, t.rate_scale AS s_dst,
       fx(a.amount, a.scale, s.rate, s.rate_scale, 1, 0, {{sdr}}) AS amount_sdr,
       fx(a.amount, a.scale, s.rate, s.rate_scale, t.rate, t.rate_scale,
          minor(a.settlement_currency)) AS amount_sc
FROM a
LEFT JOIN fx_rates s ON s.currency = a.currency AND {valid_on_sql("s", "a.processing_date")}
LEFT JOIN fx_rates t ON t.currency = a.settlement_currency
    AND {valid_on_sql("t", "a.processing_date")}
"""


# the month's events, summed per everything the sheets group, filter or convert by (the
# per-event conversions are summed here, once per event): a few thousand rows, not the month's
# records. `n` counts the events, `expected_n` those with an expected charge, `abs_sdr` sums
# |net| + |tax| in SDR (the exchange-rates sheet)
_EVENTS_OF_DAY = """
SELECT direction, partner, standard, service, processing_date, status, currency, scale,
       settlement_currency, settlement_scale, fx_date, r_src, s_src, v_src, r_dst, s_dst, v_dst,
       count(*) AS n, sum(net) AS net, sum(discount) AS discount, sum(tax) AS tax,
       sum(coalesce(duration, 0)) AS duration, sum(coalesce(charged_units, 0)) AS charged_units,
       sum(bytes) AS bytes, sum(net_sdr) AS net_sdr, sum(discount_sdr) AS discount_sdr,
       sum(tax_sdr) AS tax_sdr, sum(expected_sdr) AS expected_sdr,
       count(expected_sdr) AS expected_n, sum(abs(net_sdr) + abs(tax_sdr)) AS abs_sdr,
       sum(total_sc) AS total_sc
FROM day_events GROUP BY ALL
"""

# the retail lines of the day (`rl`) against the wholesale cost of their events, summed per
# plan, sub-number, currency and scale (`home`: the plans' currency, for records of no plan)
_RETAIL_OF_DAY = f"""
WITH w AS (
    SELECT sender AS partner, file, event_index, net + tax AS cost, net_sdr + tax_sdr
           AS cost_sdr, currency, scale, fx_date, r_src, s_src, processing_date
    FROM day_events WHERE direction = 'payable' AND status = 'accepted'
), b AS (
    SELECT l.* REPLACE (coalesce(l.currency, home.currency) AS currency,
                        coalesce(l.scale, home.scale) AS scale),
           w.cost_sdr, w.cost, w.scale AS w_scale, w.fx_date, w.r_src, w.s_src,
           t.rate AS r_dst, t.rate_scale AS s_dst
    FROM rl l CROSS JOIN home JOIN w ON w.file = l.file AND w.event_index = l.event_index
        AND w.partner = l.sender AND w.processing_date = l.processing_date
    LEFT JOIN fx_rates t ON t.currency = coalesce(l.currency, home.currency)
        AND {valid_on_sql("t", "w.fx_date")}
), factored AS (
    SELECT *, fx_kn(s_src, r_dst, coalesce(scale, 2)) AS kn,
           fx_kd(w_scale, r_src, s_dst) AS kd
    FROM b
), bounded AS (
    SELECT *, fx_klim(kn, kd) AS lim FROM factored
)
SELECT b.plan_id, b.sub_number, b.currency, b.scale, count(*) AS events,
       sum(coalesce(b.amount, 0)) AS revenue, sum(b.cost_sdr) AS cost_sdr,
       sum(fx_k(b.cost, b.kn, b.kd, b.lim, b.w_scale, b.r_src, b.s_src, b.r_dst,
                b.s_dst, coalesce(b.scale, 2))) AS cost_plan
FROM bounded b GROUP BY ALL
"""


def _event_views(lake: Lake, p: Period, dates: list[date]) -> list[Path]:
    """Make tables ``events``, ``retail_parts`` (a processing date at a time) and ``rap_in``.

    A day's events are joined (the partners' events with their rated rows, the IOT holds) and
    converted in a table of their own, then summed into the period's tables: the memory of
    one day's events, never the month's. Returns the lake files read.
    """
    files: list[Path] = []
    # the plans' currency, for the retail lines of records of no plan (the month's lines)
    files += lake.view("rl", "retail", dates)
    lake.con.execute(
        "CREATE OR REPLACE TEMP TABLE home AS "
        "SELECT coalesce(min(currency), 'SDR') AS currency, coalesce(min(scale), 6) AS scale "
        "FROM rl WHERE currency IS NOT NULL"
    )
    day_events = _DAY_EVENTS.format(
        rec_window=p.sql("coalesce(v.standard, 'tap')", "v.processing_date"),
        pay_window=p.sql("e.source_format", "e.processing_date"),
        sdr=SDR_SCALE,
    )
    for k, day in enumerate(dates or [p.first]):
        for name, dataset in (
            ("ev", "events_in"),
            ("rv", "rated_visitors"),
            ("rp", "rated_partner"),
            ("rl", "retail"),
        ):
            found = lake.view(name, dataset, [day] if dates else [])
            if name != "rl":
                files += found
        lake.con.execute(day_events)
        for table, query in (("events", _EVENTS_OF_DAY), ("retail_parts", _RETAIL_OF_DAY)):
            if k == 0:
                lake.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {query}")
            else:
                lake.con.execute(f"INSERT INTO {table} BY NAME {query}")
    lake.con.execute("DROP TABLE day_events")
    lake.con.execute(_RAP_IN.format(window=p.sql("'tap'", "x.processing_date"), sdr=SDR_SCALE))
    return files


def _check_rates(lake: Lake) -> None:
    """Every event found its rates (else a clear error naming what to add)."""
    rows = lake.rows(
        """
        SELECT DISTINCT coalesce(currency, 'SDR') AS currency, settlement_currency, partner,
               fx_date, r_src IS NULL AS no_src, r_dst IS NULL AS no_dst
        FROM events WHERE r_src IS NULL OR r_dst IS NULL
        UNION ALL
        SELECT DISTINCT currency, settlement_currency, partner, processing_date,
               r_src IS NULL, r_dst IS NULL
        FROM rap_in WHERE r_src IS NULL OR r_dst IS NULL
        ORDER BY partner, fx_date LIMIT 5
        """
    )
    if not rows:
        return
    r = rows[0]
    if r["settlement_currency"] is None:
        msg = (
            f"partner {r['partner']} has no agreement (settlement currency) valid on "
            f"{r['fx_date']}: add one to `rates/sources/agreements.csv` and run "
            "`clearing rates import`"
        )
    else:
        cur = r["currency"] if r["no_src"] else r["settlement_currency"]
        msg = (
            f"rates table `fx` has no rate for {cur} valid on {r['fx_date']} (partner "
            f"{r['partner']}): add a row to `rates/sources/fx.csv` and run "
            "`clearing rates import`"
        )
    raise ConfigError(msg)


def _sdr(v: Any) -> Decimal:
    return money(int(v or 0), SDR_SCALE) or Decimal(0)


def _summary(lake: Lake, p: Period, settings: config.Settings) -> list[dict[str, Any]]:
    # settlement currency: each total converted once (per partner, direction, currency and
    # fx rows), never a sum of rounded events; the sum of the per-event conversions is kept
    # beside it to show the difference (reports/README.md, Rounding)
    rows = lake.rows(
        """
        WITH g AS (
            SELECT partner, direction,
                   fx(sum(net + tax), scale, r_src, s_src, r_dst, s_dst, settlement_scale)
                       AS once,
                   sum(total_sc) AS each
            FROM events WHERE direction = 'receivable' OR status = 'accepted'
            GROUP BY partner, direction, currency, scale, r_src, s_src, r_dst, s_dst,
                     settlement_scale
        ), gs AS (
            SELECT partner,
                   sum(once) FILTER (direction = 'receivable') AS rec_sc,
                   sum(each) FILTER (direction = 'receivable') AS rec_sc_each,
                   sum(once) FILTER (direction = 'payable') AS pay_sc,
                   sum(each) FILTER (direction = 'payable') AS pay_sc_each
            FROM g GROUP BY partner
        ), e AS (
            SELECT partner, any_value(standard) AS standard,
                   any_value(settlement_currency) AS sc, any_value(settlement_scale) AS ss,
                   coalesce(sum(net_sdr) FILTER (direction = 'receivable'), 0) AS rec_charge,
                   coalesce(sum(tax_sdr) FILTER (direction = 'receivable'), 0) AS rec_tax,
                   coalesce(sum(net_sdr) FILTER (direction = 'payable'), 0) AS pay_charge,
                   coalesce(sum(tax_sdr) FILTER (direction = 'payable'), 0) AS pay_tax,
                   coalesce(sum(net_sdr + tax_sdr) FILTER (
                       direction = 'payable' AND status <> 'accepted'), 0) AS rap_sent,
                   coalesce(sum(n) FILTER (direction = 'receivable'), 0) AS rec_events,
                   coalesce(sum(n) FILTER (direction = 'payable'), 0) AS pay_events
            FROM events GROUP BY partner
        ), rg AS (
            SELECT partner, settlement_currency, settlement_scale,
                   sum(amount_sdr) AS rap_received,
                   fx(sum(amount), scale, r_src, s_src, r_dst, s_dst, settlement_scale) AS once,
                   sum(amount_sc) AS each
            FROM rap_in
            GROUP BY partner, settlement_currency, currency, scale, r_src, s_src, r_dst, s_dst,
                     settlement_scale
        ), r AS (
            SELECT partner, any_value(settlement_currency) AS sc,
                   any_value(settlement_scale) AS ss, sum(rap_received) AS rap_received,
                   sum(once) AS rap_received_sc, sum(each) AS rap_received_sc_each
            FROM rg GROUP BY partner
        )
        SELECT coalesce(e.partner, r.partner) AS partner, e.standard,
               coalesce(e.sc, r.sc) AS sc, coalesce(e.ss, r.ss) AS ss,
               coalesce(e.rec_charge, 0) AS rec_charge, coalesce(e.rec_tax, 0) AS rec_tax,
               coalesce(r.rap_received, 0) AS rap_received,
               coalesce(gs.rec_sc, 0) + coalesce(r.rap_received_sc, 0) AS rec_sc,
               coalesce(gs.rec_sc_each, 0) + coalesce(r.rap_received_sc_each, 0) AS rec_sc_each,
               coalesce(e.pay_charge, 0) AS pay_charge, coalesce(e.pay_tax, 0) AS pay_tax,
               coalesce(e.rap_sent, 0) AS rap_sent, coalesce(gs.pay_sc, 0) AS pay_sc,
               coalesce(gs.pay_sc_each, 0) AS pay_sc_each,
               coalesce(e.rec_events, 0) AS rec_events, coalesce(e.pay_events, 0) AS pay_events
        FROM e FULL JOIN r ON r.partner = e.partner
        LEFT JOIN gs ON gs.partner = coalesce(e.partner, r.partner)
        """
    )
    names = {
        r["partner"]: r
        for r in lake.rows(
            "SELECT partner, arg_max(name, valid_from) AS name, arg_max(standard, valid_from) "
            "AS standard, arg_max(settlement_currency, valid_from) AS sc FROM agr GROUP BY ALL"
        )
    }
    by_partner = {r["partner"]: r for r in rows}
    codes = sorted(set(by_partner) | set(settings.partners) | set(names))
    out = []
    for code in codes:
        r = by_partner.get(code, {})
        agr = names.get(code, {})
        standard = (
            r.get("standard")
            or agr.get("standard")
            or (settings.partners[code].standard if code in settings.partners else "tap")
        )
        sc = r.get("sc") or agr.get("sc") or "SDR"
        ss_raw = r.get("ss")
        ss = int(ss_raw) if ss_raw is not None else minor_units(sc)
        window = (p.ciber_from, p.ciber_to) if standard == "ciber" else (p.tap_from, p.tap_to)
        rec_charge, rec_tax = _sdr(r.get("rec_charge")), _sdr(r.get("rec_tax"))
        rap_received = _sdr(r.get("rap_received"))
        pay_charge, pay_tax = _sdr(r.get("pay_charge")), _sdr(r.get("pay_tax"))
        rap_sent = -_sdr(r.get("rap_sent"))
        net_rec = rec_charge + rec_tax + rap_received
        net_pay = pay_charge + pay_tax + rap_sent
        rec_sc = money(int(r.get("rec_sc") or 0), ss) or Decimal(0)
        pay_sc = money(int(r.get("pay_sc") or 0), ss) or Decimal(0)
        net_sc = rec_sc - pay_sc
        each = int(r.get("rec_sc_each") or 0) - int(r.get("pay_sc_each") or 0)
        # what rounding each record and summing would have made of the net position, minus it
        rounding = (money(each, ss) or Decimal(0)) - net_sc
        out.append(
            {
                "partner": code,
                "name": agr.get("name") or settings.partner(code).name,
                "standard": str(standard).upper(),
                "window": f"{window[0]} to {window[1]}",
                "rec_events": int(r.get("rec_events") or 0),
                "rec_charge": rec_charge,
                "rec_tax": rec_tax,
                "rap_received": rap_received,
                "net_rec": net_rec,
                "pay_events": int(r.get("pay_events") or 0),
                "pay_charge": pay_charge,
                "pay_tax": pay_tax,
                "rap_sent": rap_sent,
                "net_pay": net_pay,
                "net_sdr": net_rec - net_pay,
                "sc": sc,
                "ss": ss,
                "rec_sc": rec_sc,
                "pay_sc": pay_sc,
                "net_sc": net_sc,
                "rounding_sc": rounding,
                "direction": "we receive" if net_sc > 0 else "we pay" if net_sc < 0 else "nil",
            }
        )
    return out


def _by_currency(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    agg: dict[str, dict[str, Any]] = {}
    for r in summary:
        a = agg.setdefault(
            r["sc"],
            {
                "sc": r["sc"],
                "ss": r["ss"],
                "partners": 0,
                "rec_sc": Decimal(0),
                "pay_sc": Decimal(0),
                "rounding_sc": Decimal(0),
            },
        )
        a["partners"] += 1
        a["rec_sc"] += r["rec_sc"]
        a["pay_sc"] += r["pay_sc"]
        a["rounding_sc"] += r["rounding_sc"]
    out = []
    for c in sorted(agg):
        a = agg[c]
        a["net_sc"] = a["rec_sc"] - a["pay_sc"]
        a["direction"] = "we receive" if a["net_sc"] > 0 else "we pay" if a["net_sc"] < 0 else "nil"
        out.append(a)
    return out


def _service_unit(service: str) -> str:
    if service in _VOICE:
        return "minute"
    if service in _SMS:
        return "SMS"
    if service in _DATA:
        return "MB"
    return "event"


def _q(value: Decimal, places: int) -> Decimal:
    """``value`` rounded half up to ``places`` decimals (display figures only)."""
    from decimal import ROUND_HALF_UP

    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _detail(lake: Lake) -> list[dict[str, Any]]:
    rows = lake.rows(
        """
        SELECT direction, partner, service, sum(n) AS events, sum(duration) AS seconds,
               sum(charged_units) AS charged_units, sum(bytes) AS bytes,
               sum(net_sdr + discount_sdr) AS gross, sum(discount_sdr) AS discount,
               sum(net_sdr) AS net, sum(tax_sdr) AS tax, sum(expected_sdr) AS expected,
               sum(expected_n) AS expected_events
        FROM events WHERE direction = 'receivable' OR status = 'accepted'
        GROUP BY ALL ORDER BY partner, direction, service
        """
    )
    out = []
    for r in rows:
        service = r["service"] or "(unknown)"
        unit = _service_unit(service)
        minutes = _q(Decimal(int(r["seconds"])) / 60, 2) if unit == "minute" else None
        charged = _q(Decimal(int(r["charged_units"])) / 60, 2) if unit == "minute" else None
        mb = _q(Decimal(int(r["bytes"])) / _MB, 2) if unit == "MB" else None
        sms = int(r["events"]) if unit == "SMS" else None
        net = _sdr(r["net"])
        units: Decimal | None = {
            "minute": charged,
            "MB": mb,
            "SMS": Decimal(sms) if sms is not None else None,
            "event": Decimal(int(r["events"])),
        }[unit]
        gross = _sdr(r["gross"])
        avg = _q(gross / units, SDR_SCALE) if units else None
        if r["direction"] == "receivable":
            iot = avg  # rated with our own IOT: the average is the IOT's
        elif r["expected"] is not None and units and int(r["expected_events"]) == int(r["events"]):
            iot = _q(_sdr(r["expected"]) / units, SDR_SCALE)
        else:
            iot = None
        vs = _q((avg - iot) / iot, 4) if avg is not None and iot else None
        out.append(
            {
                "direction": r["direction"],
                "partner": r["partner"],
                "service": service,
                "unit": unit,
                "events": int(r["events"]),
                "minutes": minutes,
                "charged_minutes": charged,
                "mb": mb,
                "sms": sms,
                "gross": gross,
                "discount": _sdr(r["discount"]),
                "net": net,
                "tax": _sdr(r["tax"]),
                "avg": avg,
                "iot": iot,
                "vs_iot": vs,
            }
        )
    return out


def _rates_used(lake: Lake) -> list[dict[str, Any]]:
    rows = lake.rows(
        """
        WITH used AS (
            SELECT v_src AS version, 'to SDR' AS use, sum(n) AS events, sum(abs_sdr) AS sdr
            FROM events WHERE v_src <> '-' GROUP BY ALL
            UNION ALL
            SELECT v_dst, 'SDR to settlement', sum(n), sum(abs_sdr)
            FROM events WHERE v_dst <> '-' GROUP BY ALL
            UNION ALL
            SELECT v_src, 'to SDR', count(*), sum(abs(amount_sdr)) FROM rap_in
            WHERE v_src <> '-' GROUP BY ALL
            UNION ALL
            SELECT v_dst, 'SDR to settlement', count(*), sum(abs(amount_sdr)) FROM rap_in
            WHERE v_dst <> '-' GROUP BY ALL
        )
        SELECT f.currency, f.valid_from, f.valid_to, f.rate, f.rate_scale, f.source, f.version,
               u.use, sum(u.events) AS events, sum(u.sdr) AS sdr
        FROM used u JOIN fx_rates f ON f.version = u.version
        GROUP BY ALL ORDER BY f.currency, f.valid_from, u.use
        """
    )
    return [
        {
            "currency": r["currency"],
            "rate": money(int(r["rate"]), int(r["rate_scale"])),
            "rate_scale": int(r["rate_scale"]),
            "valid_from": r["valid_from"],
            "valid_to": r["valid_to"],
            "source": r["source"],
            "version": r["version"],
            "use": r["use"],
            "events": int(r["events"]),
            "sdr": _sdr(r["sdr"]),
        }
        for r in rows
    ]


def _retail(lake: Lake) -> list[dict[str, Any]]:
    rows = lake.rows(
        """
        SELECT coalesce(r.plan_id, '(not our subscriber)') AS plan,
               any_value(pl.name) AS plan_name, any_value(r.currency) AS currency,
               any_value(r.scale) AS scale, count(DISTINCT r.sub_number) AS sub_numbers,
               sum(r.events) AS events, sum(r.revenue) AS revenue,
               sum(r.cost_sdr) AS cost_sdr, sum(r.cost_plan) AS cost_plan
        FROM retail_parts r LEFT JOIN (SELECT plan_id, arg_max(name, valid_from) AS name
                                       FROM plans GROUP BY ALL) pl ON pl.plan_id = r.plan_id
        GROUP BY 1 ORDER BY any_value(r.plan_id) IS NULL, 1
        """
    )
    out = []
    for r in rows:
        scale = int(r["scale"]) if r["scale"] is not None else 2
        revenue = money(int(r["revenue"] or 0), scale) or Decimal(0)
        cost = money(int(r["cost_plan"] or 0), scale) or Decimal(0)
        margin = revenue - cost
        out.append(
            {
                "plan_id": r["plan"],
                "plan_name": r["plan_name"] or "",
                "currency": r["currency"] or "",
                "scale": scale,
                "sub_numbers": int(r["sub_numbers"]),
                "events": int(r["events"]),
                "cost_sdr": _sdr(r["cost_sdr"]),
                "cost": cost,
                "revenue": revenue,
                "margin": margin,
                "margin_pct": _q(margin / revenue, 4) if revenue else None,
            }
        )
    return out


def _retail_bills(lake: Lake, workdir: Path, p: Period) -> tuple[list[dict[str, Any]], list[Path]]:
    """``Retail bills``: the bill cycles starting in the period, per plan and currency.

    Usage is the retail **summary** (the latest row of each card, sub-number, plan and cycle
    over the processing dates from the period's first day − 2 days to its last day: the
    workbook reads its period only, so an event billed after the period is on the cycle's
    statements but not here until then), fees and tax rates come from the plans in force
    (:func:`clearing.settle.statement.plan_rows`); tax is worked per sub-number (round half up
    of (fee + usage) × rate) and then summed. The statements sum their lines instead: the two
    routes give the same total.

    Returns:
        The rows, and the summary files read (for the audit sheet).
    """
    first = p.tap_from - timedelta(days=LOOK_BEFORE_DAYS)
    days = lake.dates_between("retail", first, p.last)  # the summary shares its folder
    files = lake.view("rsum", "retail_summary", days)
    found = lake.rows(
        """
        SELECT imsi, sub_number, plan_id, cycle_start, arg_max(amount, processing_date) AS usage,
               arg_max(currency, processing_date) AS currency,
               arg_max(scale, processing_date) AS scale
        FROM rsum WHERE cycle_start BETWEEN ? AND ?
        GROUP BY ALL
        """,
        [p.tap_from, p.tap_to],
    )
    bills: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in plan_rows(workdir, p.name):
        key = (r["imsi"], r["sub_number"], r["plan_id"], r["cycle_start"])
        bills[key] = {
            "fee": int(r["fee"] or 0),
            "usage": 0,
            "tax_bp": int(r["tax_bp"] or 0),
            "currency": r["currency"],
            "scale": int(r["scale"]),
            "plan_name": r["plan_name"],
        }
    for r in found:
        key = (r["imsi"], r["sub_number"], r["plan_id"], r["cycle_start"])
        bill = bills.setdefault(
            key,
            {
                "fee": 0,
                "usage": 0,
                "tax_bp": 0,
                "currency": r["currency"],
                "scale": int(r["scale"]),
                "plan_name": None,
            },
        )
        bill["usage"] = int(r["usage"] or 0)
    names = {
        r["plan_id"]: r["name"]
        for r in lake.rows(
            "SELECT plan_id, arg_max(name, valid_from) AS name FROM plans GROUP BY 1"
        )
    }
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for (imsi, number, plan_id, _), b in sorted(bills.items(), key=lambda kv: str(kv[0])):
        row = per.setdefault(
            (plan_id, b["currency"]),
            {
                "plan_id": plan_id,
                "plan_name": b["plan_name"] or names.get(plan_id) or "",
                "currency": b["currency"],
                "scale": b["scale"],
                "_cards": set(),
                "_numbers": set(),
                "fee": Decimal(0),
                "usage": Decimal(0),
                "tax": Decimal(0),
            },
        )
        row["_cards"].add(imsi)
        row["_numbers"].add((imsi, number))
        row["scale"] = max(row["scale"], b["scale"])
        subtotal = b["fee"] + b["usage"]
        row["fee"] += money(b["fee"], b["scale"]) or Decimal(0)
        row["usage"] += money(b["usage"], b["scale"]) or Decimal(0)
        row["tax"] += money(tax_of(subtotal, b["tax_bp"]), b["scale"]) or Decimal(0)
    out = []
    for plan_key in sorted(per):
        row = per[plan_key]
        cards, numbers = row.pop("_cards"), row.pop("_numbers")
        row["cards"], row["sub_numbers"] = len(cards), len(numbers)
        row["subtotal"] = row["fee"] + row["usage"]
        row["total"] = row["subtotal"] + row["tax"]
        out.append(row)
    return out, files


def _trend(lake: Lake) -> list[dict[str, Any]]:
    rows = lake.rows(
        """
        SELECT processing_date AS day,
               coalesce(sum(net_sdr + tax_sdr) FILTER (direction = 'receivable'), 0) AS rec,
               coalesce(sum(net_sdr + tax_sdr) FILTER (
                   direction = 'payable' AND status = 'accepted'), 0) AS pay,
               coalesce(sum(n) FILTER (direction = 'receivable'), 0) AS rec_events,
               coalesce(sum(n) FILTER (direction = 'payable'), 0) AS pay_events
        FROM events GROUP BY ALL ORDER BY 1
        """
    )
    raps = {
        r["day"]: r["amount"]
        for r in lake.rows(
            "SELECT processing_date AS day, sum(amount_sdr) AS amount FROM rap_in GROUP BY ALL"
        )
    }
    out = []
    for r in rows:
        rec = _sdr(r["rec"]) + _sdr(raps.get(r["day"]))
        pay = _sdr(r["pay"])
        out.append(
            {
                "day": r["day"],
                "label": r["day"].isoformat(),
                "rec_events": int(r["rec_events"]),
                "pay_events": int(r["pay_events"]),
                "rec": rec,
                "pay": pay,
                "net": rec - pay,
            }
        )
    return out


def _audit_inputs(lake: Lake, p: Period) -> list[dict[str, Any]]:
    window = p.sql("CASE WHEN format = 'ciber' THEN 'ciber' ELSE 'tap' END", "processing_date")
    rows = [
        {"what": f"input file {r['processing_date']}", "name": r["file"], "sha256": r["sha256"]}
        for r in lake.rows(
            f"SELECT processing_date, file, sha256 FROM files WHERE {window} ORDER BY 1, 2"
        )
    ]
    out_window = p.sql("standard", "processing_date")
    rows += [
        {
            "what": f"output file {r['processing_date']}",
            "name": r["file_name"],
            "sha256": r["sha256"],
        }
        for r in lake.rows(
            f"SELECT processing_date, file_name, sha256 FROM outbound_files WHERE {out_window} "
            "ORDER BY 1, 2"
        )
    ]
    rap_window = p.sql("'tap'", "processing_date")
    rows += [
        {"what": f"RAP received {r['processing_date']}", "name": r["file"], "sha256": r["sha256"]}
        for r in lake.rows(
            f"SELECT processing_date, file, sha256 FROM raps_in WHERE {rap_window} ORDER BY 1, 2"
        )
    ]
    return rows


def _runs(workdir: Path, p: Period) -> list[dict[str, Any]]:
    """Run manifests (``runs/<id>/manifest.json``) of processing dates in the period."""
    out: list[dict[str, Any]] = []
    folder = workdir / "runs"
    if not folder.is_dir():
        return out
    for manifest in sorted(folder.glob("*/manifest.json")):
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        # nightly manifests name their processing date in `label` (monthly ones a period)
        text = str(doc.get("date") or doc.get("processing_date") or doc.get("label") or "")
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            continue
        if p.first <= day <= p.last:
            run = str(doc.get("run_id") or doc.get("id") or manifest.parent.name)
            what = f"{doc.get('kind') or 'run'} run {day}"
            out.append({"what": what, "name": run, "sha256": file_sha256(manifest)})
    return out


# ---------------------------------------------------------------------------------------------
# the workbook


def build_monthly(f: _Figures, *, run_id: str | None, version: int, replaces: Path | None) -> Book:
    """The monthly workbook of issue ``version`` (see the module docstring)."""
    p, facts, home = f.period, f.facts, f.settings.home
    through = max(f.dates) if f.dates else None
    issue = f"v{version}"
    head = sheets.audit_head(
        p, facts, through=through, issue=issue, replaces=replaces, run_id=run_id, runs=f.runs
    )
    front = sheets.front(
        p, home, facts, f.summary, through=through, issue=issue, replaces=replaces, run_id=run_id
    )
    last = p.last
    return Book(
        title=f"Monthly settlement {home.tadig} {p.name} {issue}",
        subject=f"Roaming settlement: monthly settlement workbook, period {p.name}",
        stamp=datetime(last.year, last.month, last.day) + timedelta(days=1),
        creator=facts.software,
        front=front,
        tables=[
            sheets.summary_table(f.summary, p),
            sheets.by_currency_table(f.by_currency, p),
            sheets.detail_table(f.detail, p),
            sheets.rates_table(f.rates, p),
            sheets.retail_table(f.retail, p, f.missing_retail),
            sheets.retail_bills_table(f.retail_bills, p),
            sheets.trend_table(f.trend, p),
            deltas_table(f.deltas, f"Period {p.name} · replays of its dates after they were sent"),
            write_offs_table(
                f.write_offs, f"Period {p.name} · write-offs dated {p.tap_from} to {p.tap_to}"
            ),
            sheets.audit_table(head + f.audit, p),
        ],
        footer=f"{home.tadig} settlement {p.name} {issue}",
    )
