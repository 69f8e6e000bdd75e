"""The daily operations workbook of one processing date (domain.md §4, daily).

Sheets, in order:

``Overview``             what the workbook is and its key figures (through defined names)
``Partners``             per partner: files, events and charges in and out; two charts
``File register``        every file in and out on the date: kind, FSN, hash, times, age
                         against the 36 h TAP / 4 h NRTRDE limits, status, records, audit total
                         as in the file and as recomputed
``Sequences``            per partner stream: last FSN, FSNs of the day, gaps (MissingReturn
                         sent?), copies, reused FSNs, silence (Stop Return candidate)
``Validation``           findings by partner, severity and code
``Reconciliation``       per input file ``in = accepted + returned + duplicate + late +
                         quarantined`` in records and in SDR, the difference (must be 0)
``Reconciliation by partner``  the same per partner
``Outbound reconciliation``    per partner: rated visitor records = records in TAP-out /
                         CIBER-out + records CIBER cannot carry, in records, currency and SDR
``CDR reconciliation``   per mediation file: records in the file = rated + unrated +
                         quarantined
``RAP``                  our RAPs of the date and every RAP still waiting for its ACK
``RAP received``         partners' RAPs about our TAP-out and ACKs received on the date
``IOT check``            per partner and service: checked, breaches, charged vs expected
``IOT breaches``         every breach
``Re-rate deltas``       replays of the date after it was sent: new − sent per partner, service
                         and currency, on their own (the receivable is what was sent)
``Returns``              partners' returns about our TAP-out received up to the date, per
                         partner, status and age band: items and amounts
``IOT held``             (only when the date has any) the breaches above the thresholds: held
                         from the payable, accepted (paid) or disputed; the Overview then shows
                         the amount held and the payable after the holds
``Audit``                software, config hash, reference data, input and lake files, run

Figures come from the lake and ``clearing.duckdb``; ``in`` comes from the file register (what
the decoder counted), the parts from the lake rows, so a record lost between the two shows as
a difference. SDR: TAP charges in SDR change scale only; other currencies (CIBER USD / CAD)
are converted at the fx rate valid on the processing date, the parts of one identity by
cumulative rounding so that they add up exactly to the converted whole.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearing import config
from clearing.identity import STATUSES, Identity, Status
from clearing.money import DURATION_LIMIT
from clearing.names import CiberName, next_fsn
from clearing.settle import _daily_sheets as sheets
from clearing.settle._book import Book, money
from clearing.settle._common import (
    KIND_LABEL,
    LIMIT_HOURS,
    AuditFacts,
    file_sha256,
    hours,
    lake_file_rows,
    naive_utc,
)
from clearing.settle._deltas import delta_rows, deltas_table
from clearing.settle._fx import Fx
from clearing.settle._lake import SDR_SCALE, Lake
from clearing.settle._returns import returns_rows, returns_table

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["build_daily", "daily_path"]

#: The statuses a partner file's events take in ``lake/events_in`` (``held`` is the rating's).
_FILE_STATUSES = tuple(s for s in STATUSES if s != Status.HELD)

_SEVERITY_ORDER = {"fatal": 0, "severe": 1, "warning": 2}
_UTC_OFFSET_SQL = (
    "to_minutes((CASE WHEN substr({o}, 1, 1) = '-' THEN -1 ELSE 1 END) * "
    "(CAST(substr({o}, 2, 2) AS INTEGER) * 60 + CAST(substr({o}, 4, 2) AS INTEGER)))"
)

#: An event's duration as an interval, for its end time. A duration beyond the range one event
#: may hold (an ``event.duration.limit`` or ``event.value.limit`` finding: the event is returned)
#: counts 0, its end its start: such a value is no time DuckDB can add to a timestamp.
_DURATION_SQL = (
    f"to_seconds(CASE WHEN abs(coalesce(duration, 0)) <= {DURATION_LIMIT} "
    "THEN coalesce(duration, 0) ELSE 0 END)"
)


def daily_path(workdir: Path, home: str, day: date) -> Path:
    """Where the daily workbook of ``day`` is written."""
    return workdir / "out" / "settlement" / "daily" / f"settlement_daily_{home}_{day}.xlsx"


@dataclass
class _Day:
    """Everything read for one processing date (rows of every sheet)."""

    lake: Lake
    fx: Fx
    settings: config.Settings
    day: date
    names: dict[str, str] = field(default_factory=dict)  # partner → name
    lake_files: list[Path] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)  # audit: files read

    @property
    def workdir(self) -> Path:
        return self.lake.root

    def partner_name(self, code: str | None) -> str:
        if not code:
            return ""
        return self.names.get(code) or self.settings.partner(code).name


def build_daily(
    workdir: Path,
    day: date,
    *,
    run_id: str | None = None,
    settings: config.Settings | None = None,
) -> Book:
    """The daily workbook's model (see the module docstring).

    Raises:
        MissingInputError: validate or rate has not run for ``day``.
        ConfigError: no config, or an fx rate is missing.
    """
    settings = settings or config.load(workdir)
    with Lake(workdir, memory_mb=settings.performance.memory_mb) as lake:
        lake.require(day)
        d = _Day(lake, Fx.load(lake), settings, day)
        d.lake_files += lake.view("ev", "events_in", [day])
        d.lake_files += lake.view("rv", "rated_visitors", [day])
        d.lake_files += lake.view("uv", "unrated_visitors", [day])
        d.lake_files += lake.view("cq", "cdr_quarantine", [day])
        d.lake_files += lake.view("rp", "rated_partner", [day])
        d.lake_files += lake.view("iotf", "iot_findings", [day])
        d.lake_files += lake.files("findings", [day])
        d.names = _partner_names(lake)
        inbound = _inbound_files(d)
        outbound = _outbound_files(d) + _returns_out(d)
        raps = _rap_rows(d)
        rap_in = _rap_in_rows(d)
        recon = _reconciliation(d, inbound)
        by_partner = _by_partner(recon)
        out_recon = _outbound_reconciliation(d)
        cdr = _cdr_reconciliation(d)
        seqs = _sequences(d)
        validation = _validation(d, inbound)
        iot = _iot(d)
        breaches = _breaches(d)
        held = _iot_held(d)
        partners = _partners(d, inbound, recon, out_recon, iot)
        register = _register_rows(inbound, outbound, raps, rap_in)
        deltas, delta_files = delta_rows(lake, [day])
        d.lake_files += delta_files
        returns = returns_rows(lake, d.fx, day)
        audit = _audit_rows(d, register)
    facts = AuditFacts.collect(workdir)
    tables = [
        sheets.partners_table(partners, day),
        sheets.register_table(register, day),
        sheets.sequences_table(seqs, day),
        sheets.validation_table(validation, day),
        sheets.reconciliation_table(recon, day),
        sheets.by_partner_table(by_partner, day),
        sheets.outbound_recon_table(out_recon, day),
        sheets.cdr_table(cdr, day),
        sheets.rap_table(raps, day),
        sheets.rap_in_table(rap_in, day),
        sheets.iot_table(iot, day),
        sheets.breaches_table(breaches, day),
        deltas_table(deltas, f"Processing date {day} · replays of the date after it was sent"),
        returns_table(returns, day),
        *([sheets.held_table(held, day)] if held else []),
        sheets.audit_table(audit, facts, day, run_id),
    ]
    home = settings.home.tadig
    front = sheets.front(
        day, home, settings, run_id, facts, recon, out_recon, cdr, register, seqs, raps, iot
    )
    if held:
        front = sheets.with_held_figures(front, recon, held)
    return Book(
        title=f"Daily clearing operations {home} {day}",
        subject=f"Roaming clearing: daily operations workbook, processing date {day}",
        stamp=datetime(day.year, day.month, day.day),
        creator=facts.software,
        front=front,
        tables=tables,
        footer=f"{home} daily operations {day}",
    )


def _partner_names(lake: Lake) -> dict[str, str]:
    files = sorted((lake.wd.rates / "agreements").glob("**/*.parquet"))
    if not files:
        return {}
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    rows = lake.rows(
        f"SELECT partner, arg_max(name, valid_from) AS name FROM read_parquet([{listing}], "
        "hive_partitioning = false) GROUP BY partner"
    )
    return {r["partner"]: r["name"] or "" for r in rows}


# ---------------------------------------------------------------------------------------------
# inbound files: register rows and the record identity


def _inbound_files(d: _Day) -> list[dict[str, Any]]:
    lake, day = d.lake, d.day
    files = lake.rows(
        """
        SELECT f.*, e.sender AS lake_sender, e.first_end, e.rows AS lake_rows,
               coalesce(e.accepted, 0) AS l_accepted, coalesce(e.returned, 0) AS l_returned,
               coalesce(e.duplicate, 0) AS l_duplicate, coalesce(e.late, 0) AS l_late,
               coalesce(e.quarantined, 0) AS l_quarantined,
               coalesce(e.v_accepted, 0) AS v_accepted, coalesce(e.v_returned, 0) AS v_returned,
               coalesce(e.v_duplicate, 0) AS v_duplicate, coalesce(e.v_late, 0) AS v_late,
               coalesce(e.v_quarantined, 0) AS v_quarantined, e.currency AS lake_currency,
               e.scale AS lake_scale, e.recomputed_charge AS lake_recomputed
        FROM files f
        LEFT JOIN (
            SELECT file, any_value(sender) AS sender, count(*) AS rows,
                   min(timezone('UTC', start_utc) + {duration}) AS first_end,
                   any_value(currency) AS currency, any_value(charge_scale) AS scale,
                   count(*) FILTER (status = 'accepted') AS accepted,
                   count(*) FILTER (status = 'returned') AS returned,
                   count(*) FILTER (status = 'duplicate') AS duplicate,
                   count(*) FILTER (status = 'late') AS late,
                   count(*) FILTER (status = 'quarantined') AS quarantined,
                   sum(coalesce(charge, 0)) FILTER (status = 'accepted') AS v_accepted,
                   sum(coalesce(charge, 0)) FILTER (status = 'returned') AS v_returned,
                   sum(coalesce(charge, 0)) FILTER (status = 'duplicate') AS v_duplicate,
                   sum(coalesce(charge, 0)) FILTER (status = 'late') AS v_late,
                   sum(coalesce(charge, 0)) FILTER (status = 'quarantined') AS v_quarantined,
                   -- TD.57 totalCharge recomputed from the decoded events (refunds apart)
                   sum(coalesce(charge, 0) + coalesce(camel_fee, 0))
                       FILTER (NOT coalesce(refund, false)) AS recomputed_charge
            FROM ev GROUP BY file
        ) e ON e.file = f.file
        WHERE f.processing_date = ?
        """.replace("{duration}", _DURATION_SQL),
        [day],
    )
    received = _received(lake)
    out = []
    for f in files:
        partner = f["sender"] or f["lake_sender"] or _ciber_partner(f["file"])
        kind = KIND_LABEL.get(f["format"], f["format"])
        d.inputs.append({"what": f"input file ({kind})", "name": f["file"], "sha256": f["sha256"]})
        row: dict[str, Any] = {
            "direction": "in",
            "partner": partner,
            "name": d.partner_name(partner),
            "kind": kind,
            "fsn": f["fsn"],
            "file": f["file"],
            "sha256": f["sha256"],
            "received": received.get((f["file"], f["sha256"])),
            "status": _inbound_status(f),
            "records": f["events"],
            "findings": f["findings"],
            "return_file": f["rap_file"],
            "outcome": f["outcome"],
            "currency": f["currency"] or f["lake_currency"],
            "scale": f["charge_scale"] if f["charge_scale"] is not None else f["lake_scale"],
        }
        for s in _FILE_STATUSES:
            row[f"n_{s}"] = int(f[f"l_{s}"])
            row[f"v_{s}"] = int(f[f"v_{s}"])
        # `in` is what the register counted when the file was decoded (a copy brings nothing)
        row["n_in"] = int(f["events"] or 0)
        in_value: int | None = int(f["charge"] or 0)
        if f["outcome"] == "copy":
            in_value = 0
        # the header facts validate recorded (header_kind NULL: unreadable, or a register
        # row written before they were recorded: shown as unavailable)
        if f["header_kind"] == "tap":
            row["audit_file"] = f["audit_charge"]
            rec = f["lake_recomputed"]
            row["audit_recomputed"] = int(rec) if rec is not None else None
            row["available"] = f["file_available"]
            row["scale"] = f["tap_decimal_places"] or row["scale"]
            row["currency"] = f["tap_currency"] or row["currency"]
        elif f["header_kind"] == "ciber":
            row["audit_file"] = f["audit_charge"]
            row["audit_recomputed"] = f["recomputed_charge"]
            row["scale"] = 2
            row["available"] = f["file_created"]
        elif f["header_kind"] == "notification":
            row["available"] = f["file_available"]
        if f["format"] == "ciber":
            # Σ charge of the decoded records (None: not decoded, or an older register row)
            in_value = None if f["header_kind"] != "ciber" else int(f["charge"] or 0)
            row["scale"] = 2
        row.setdefault("audit_file", None)
        row.setdefault("audit_recomputed", None)
        row.setdefault("available", None)
        row["in_value"] = in_value
        _age(d, row, f["first_end"], f["file"])
        out.append(row)
    out.sort(key=lambda r: (r["partner"] or "~", r["kind"], r["fsn"] or "", r["file"]))
    return out


def _received(lake: Lake) -> dict[tuple[str, str | None], datetime | None]:
    """When transport fetched each file: by (name, sha256), and by (name, None)."""
    out: dict[tuple[str, str | None], datetime | None] = {}
    for r in lake.rows(
        "SELECT name, sha256, min(fetched_at) AS fetched_at FROM fetched GROUP BY ALL "
        "ORDER BY name, fetched_at"
    ):
        at = naive_utc(r["fetched_at"])
        out[(r["name"], r["sha256"])] = at
        out.setdefault((r["name"], None), at)
    return out


def _ciber_partner(name: str) -> str | None:
    parsed = CiberName.parse(name)
    return parsed.sender if parsed else None


def _inbound_status(f: dict[str, Any]) -> str:
    if f["outcome"] == "copy":
        return f"copy of {f['copy_of']} (ignored)" if f["copy_of"] else "copy (ignored)"
    if f["outcome"] == "fatal":
        return "fatal: whole file returned"
    if f["format"] == "unreadable":
        return "unreadable"
    rejected = sum(int(f[k] or 0) for k in ("returned", "duplicate", "late", "quarantined"))
    if rejected:
        return f"accepted, {rejected} record(s) returned"
    return "accepted"


def _age(d: _Day, row: dict[str, Any], first_end: datetime | None, file: str) -> None:
    """Age of a TAP / NRTRDE file against its delivery limit (from the earliest call end)."""
    limit = LIMIT_HOURS.get(row["kind"])
    ref = row.get("sent") or row.get("available")
    row["first_end"] = first_end
    row["limit"] = limit
    row["age"] = hours(ref - first_end) if ref is not None and first_end is not None else None
    row["over_limit"] = None
    if limit is not None and ref is not None and first_end is not None:
        cutoff = ref - timedelta(hours=limit)
        if row["direction"] == "in":
            n = d.lake.one(
                "SELECT count(*) FROM ev WHERE file = ? AND "
                f"timezone('UTC', start_utc) + {_DURATION_SQL} < ?",
                [file, cutoff],
            )
        else:
            n = d.lake.one(
                "SELECT count(*) FROM rv WHERE partner = ? AND start_time - "
                + _UTC_OFFSET_SQL.format(o="utc_offset")
                + f" + {_DURATION_SQL} < ?",
                [row["partner"], cutoff],
            )
        row["over_limit"] = int(n or 0)


# ---------------------------------------------------------------------------------------------
# outbound files


def _outbound_files(d: _Day) -> list[dict[str, Any]]:
    lake, day = d.lake, d.day
    files = lake.rows(
        """
        SELECT o.*, x.state, x.sent_at, x.acknowledged_at
        FROM outbound_files o LEFT JOIN outbox x ON x.name = o.file_name
        WHERE o.processing_date = ? ORDER BY o.partner, o.file_name
        """,
        [day],
    )
    rated = {
        r["partner"]: r
        for r in lake.rows(
            f"""
            SELECT partner, count(*) AS n, sum(coalesce(charge, 0)) AS charge,
                   sum(coalesce(charge, 0) + coalesce(tax, 0))
                       FILTER (record_type IN ('moc', 'mtc')) AS voice_gross,
                   min(start_time - {_UTC_OFFSET_SQL.format(o="utc_offset")}
                       + {_DURATION_SQL}) AS first_end
            FROM rv GROUP BY partner
            """
        )
    }
    out = []
    for f in files:
        kind = KIND_LABEL.get(f["kind"], f["kind"])
        r = rated.get(f["partner"], {})
        row: dict[str, Any] = {
            "direction": "out",
            "partner": f["partner"],
            "name": d.partner_name(f["partner"]),
            "kind": kind,
            "fsn": f"{f['sequence_number']:0{5 if f['standard'] == 'tap' else 3}d}",
            "file": f["file_name"],
            "sha256": f["sha256"],
            "sent": naive_utc(f["sent_at"]),
            "status": f["state"] or "generated (not in the outbox yet)",
            "records": f["events"],
            "currency": f["currency"],
            "scale": f["charge_scale"],
            # what the writer recorded (NULL for a file registered before it did)
            "available": f["file_available"],
            "audit_file": f["audit_charge"],
            "audit_recomputed": None,
            "findings": None,
            "return_file": None,
            "total_charge": int(f["total_charge"]),
        }
        if f["standard"] == "ciber":
            row["audit_recomputed"] = int(r.get("voice_gross") or 0)
        elif f["kind"] == "transferBatch":
            row["audit_recomputed"] = int(r.get("charge") or 0)
        _age(d, row, r.get("first_end") if f["kind"] == "transferBatch" else None, f["file_name"])
        out.append(row)
    return out


def _returns_out(d: _Day) -> list[dict[str, Any]]:
    """The ACKs we wrote for partners' RAPs, and our CIBER returns, of the date."""
    lake, day = d.lake, d.day
    out: list[dict[str, Any]] = []
    for r in lake.rows(
        """
        SELECT i.sender, i.rap_fsn, i.ack_file, x.sha256, x.sent_at, x.state
        FROM raps_in i LEFT JOIN outbox x ON x.name = i.ack_file
        WHERE i.processing_date = ? AND i.ack_file IS NOT NULL ORDER BY i.sender, i.rap_fsn
        """,
        [day],
    ):
        out.append(
            {
                "direction": "out",
                "partner": r["sender"],
                "name": d.partner_name(r["sender"]),
                "kind": "ACK",
                "fsn": f"{r['rap_fsn']:05d}",
                "file": r["ack_file"],
                "sha256": r["sha256"],
                "sent": naive_utc(r["sent_at"]),
                "status": r["state"] or "written",
                "records": 0,
                "scale": 0,
            }
        )
    # our CIBER returns: the names the register gives the day's CIBER inputs, with the facts
    # validate recorded when it wrote them (none for a register written before it did)
    returns = lake.rows(
        """
        WITH names AS (
            SELECT DISTINCT trim(unnest(string_split(rap_file, ','))) AS file
            FROM files WHERE processing_date = ? AND format = 'ciber' AND rap_file IS NOT NULL
        )
        SELECT n.file, c.sha256, c.events, c.currency, c.audit_charge, c.recomputed_charge,
               x.sent_at, x.state
        FROM names n
        LEFT JOIN ciber_returns_out c ON c.file = n.file AND c.processing_date = ?
        LEFT JOIN outbox x ON x.name = n.file AND x.kind = 'ciber_return'
        ORDER BY n.file
        """,
        [day, day],
    )
    for r in returns:
        name = r["file"]
        parts = name.split("_")
        out.append(
            {
                "direction": "out",
                "partner": parts[2] if len(parts) > 2 else None,
                "name": d.partner_name(parts[2] if len(parts) > 2 else None),
                "kind": "CIBER return",
                "fsn": parts[4] if len(parts) > 4 else None,
                "file": name,
                "sha256": r["sha256"],
                "sent": naive_utc(r["sent_at"]),
                "status": r["state"] or "written",
                "records": r["events"],
                "currency": r["currency"],
                "scale": 2,
                "audit_file": r["audit_charge"],
                "audit_recomputed": r["recomputed_charge"],
            }
        )
    return out


# ---------------------------------------------------------------------------------------------
# RAP


def _rap_rows(d: _Day) -> list[dict[str, Any]]:
    """Our RAPs of the date, and every earlier RAP still waiting for the partner's ACK."""
    lake, day = d.lake, d.day
    rows = lake.rows(
        """
        WITH acks AS (
            SELECT sender, rap_fsn, test, min(processing_date) AS ack_date,
                   min(file) AS ack_file
            FROM acks_in WHERE processing_date <= ? GROUP BY ALL
        ), scale AS (
            SELECT rap_file, processing_date, any_value(charge_scale) AS scale,
                   any_value(currency) AS currency
            FROM files WHERE rap_file IS NOT NULL GROUP BY ALL
        ), recomputed AS (
            SELECT f.rap_file, f.processing_date,
                   sum(CASE WHEN coalesce(e.refund, false) THEN 0
                       ELSE coalesce(e.charge, 0) + coalesce(e.camel_fee, 0) END) AS value
            FROM files f JOIN ev e ON e.file = f.file
            WHERE f.outcome = 'processed' AND e.status <> 'accepted'
              AND e.status <> 'quarantined' AND f.processing_date = ?
            GROUP BY ALL
        )
        SELECT r.*, a.ack_date, a.ack_file, s.scale, s.currency, c.value AS recomputed,
               x.sent_at, x.state AS outbox_state
        FROM rap_out r
        LEFT JOIN outbox x ON x.name = r.file
        LEFT JOIN acks a ON a.sender = r.partner AND a.rap_fsn = r.rap_fsn AND a.test = r.test
        LEFT JOIN scale s ON s.rap_file = r.file AND s.processing_date = r.processing_date
        LEFT JOIN recomputed c ON c.rap_file = r.file AND c.processing_date = r.processing_date
        WHERE r.processing_date = ? OR (r.processing_date < ? AND a.ack_date IS NULL)
        ORDER BY r.processing_date, r.partner, r.rap_fsn
        """,
        [day, day, day, day],
    )
    out = []
    for r in rows:
        scale = r["scale"] if r["scale"] is not None else SDR_SCALE
        currency = r["currency"] or "SDR"
        # totalSevereReturnValue as the RAP writer recorded it (today's RAPs only)
        in_file = r["audit_severe_value"] if r["processing_date"] == day else None
        value = int(r["severe_value"] or 0)
        row = {
            "direction": "out",
            "date": r["processing_date"],
            "partner": r["partner"],
            "name": d.partner_name(r["partner"]),
            "kind": "RAP",
            "fsn": f"{r['rap_fsn']:05d}",
            "file": r["file"],
            "sha256": r["sha256"],
            "test": "test" if r["test"] else "live",
            "fatal": r["fatal"],
            "severe": r["severe"],
            "missing": r["missing"],
            "stop": r["stop"],
            "records": int(r["fatal"] or 0)
            + int(r["severe"] or 0)
            + int(r["missing"] or 0)
            + int(r["stop"] or 0),
            "severe_value": money(value, scale),
            "severe_value_sdr": d.fx.sdr(value, scale, currency, day),
            "severe_tax": money(int(r["severe_tax"] or 0), scale),
            "scale": scale,
            "currency": currency,
            "audit_file": in_file,
            "audit_recomputed": int(r["recomputed"] or 0) if r["processing_date"] == day else None,
            "ack": f"{r['ack_file']} ({r['ack_date']})" if r["ack_file"] else "outstanding",
            "ack_outstanding": 0 if r["ack_file"] else 1,
            "age_days": (day - r["processing_date"]).days,
            "status": f"{r['outbox_state'] or 'written'}, "
            + ("ACK received" if r["ack_file"] else "waiting for ACK"),
            "sent": naive_utc(r["sent_at"]),
        }
        out.append(row)
    return out


def _rap_in_rows(d: _Day) -> list[dict[str, Any]]:
    """Partners' RAPs about our TAP-out, and their ACKs of our RAPs, received on the date."""
    lake, day = d.lake, d.day
    raps = lake.rows(
        """
        WITH ret AS (
            SELECT r.rap_file, count(*) FILTER (kind = 'fatal') AS fatal,
                   count(*) FILTER (kind = 'severe') AS severe,
                   sum(coalesce(r.charge, 0)) AS charge, sum(coalesce(r.tax, 0)) AS tax
            FROM returns_in r WHERE r.processing_date = ? GROUP BY ALL
        ), scale AS (
            SELECT partner, any_value(charge_scale) AS scale, any_value(currency) AS currency
            FROM outbound_files WHERE standard = 'tap' GROUP BY ALL
        )
        SELECT i.*, coalesce(t.fatal, 0) AS fatal, coalesce(t.severe, 0) AS severe,
               coalesce(t.charge, 0) AS charge, coalesce(t.tax, 0) AS tax, s.scale, s.currency
        FROM raps_in i LEFT JOIN ret t ON t.rap_file = i.file
        LEFT JOIN scale s ON s.partner = i.sender
        WHERE i.processing_date = ? ORDER BY i.sender, i.rap_fsn
        """,
        [day, day],
    )
    received = _received(lake)
    out = []
    for r in raps:
        scale = r["scale"] if r["scale"] is not None else SDR_SCALE
        currency = r["currency"] or "SDR"
        charge = int(r["charge"])
        out.append(
            {
                "direction": "in",
                "partner": r["sender"],
                "name": d.partner_name(r["sender"]),
                "kind": "RAP",
                "fsn": f"{r['rap_fsn']:05d}",
                "file": r["file"],
                "sha256": r["sha256"],
                "fatal": int(r["fatal"]),
                "severe": int(r["severe"]),
                "records": int(r["fatal"]) + int(r["severe"]),
                "value": money(charge, scale),
                "value_sdr": d.fx.sdr(charge, scale, currency, day),
                "tax_sdr": d.fx.sdr(int(r["tax"]), scale, currency, day),
                "ack": r["ack_file"],
                "status": f"answered with ACK {r['ack_file']}" if r["ack_file"] else "received",
                "received": received.get((r["file"], r["sha256"])),
                "scale": scale,
                "currency": currency,
            }
        )
    for a in lake.rows(
        "SELECT * FROM acks_in WHERE processing_date = ? ORDER BY sender, rap_fsn", [day]
    ):
        out.append(
            {
                "direction": "in",
                "partner": a["sender"],
                "name": d.partner_name(a["sender"]),
                "kind": "ACK",
                "fsn": f"{a['rap_fsn']:05d}",
                "file": a["file"],
                "sha256": None,
                "fatal": None,
                "severe": None,
                "records": 0,
                "value": None,
                "value_sdr": None,
                "tax_sdr": None,
                "ack": None,
                "status": f"closes our RAP {a['rap_fsn']:05d}",
                "received": received.get((a["file"], None)),
                "scale": SDR_SCALE,
                "currency": None,
            }
        )
    return out


# ---------------------------------------------------------------------------------------------
# reconciliation


def _reconciliation(d: _Day, inbound: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for f in inbound:
        if f["kind"] == "Notification":
            continue
        row: dict[str, Any] = {
            "partner": f["partner"],
            "file": f["file"],
            "kind": f["kind"],
            "status": f["status"],
            "in": f["n_in"],
            "currency": f["currency"],
        }
        for s in _FILE_STATUSES:
            row[s] = f[f"n_{s}"]
        row["difference"] = Identity.from_dict(row).difference
        if f["in_value"] is None:
            for s in ("in", *_FILE_STATUSES, "difference"):
                row[f"{s}_sdr"] = None
            row["note"] = "input file not found: charge identity not checked"
        else:
            scale = int(f["scale"] or 0)
            currency = f["currency"] or "SDR"
            parts = d.fx.sdr_parts([f[f"v_{s}"] for s in _FILE_STATUSES], scale, currency, d.day)
            for s, v in zip(_FILE_STATUSES, parts, strict=True):
                row[f"{s}_sdr"] = v
            row["in_sdr"] = d.fx.sdr(f["in_value"], scale, currency, d.day)
            row["difference_sdr"] = row["in_sdr"] - sum(parts, Decimal(0))
            row["note"] = ""
        out.append(row)
    return out


def _by_partner(recon: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("in", *_FILE_STATUSES, "difference")
    agg: dict[str, dict[str, Any]] = {}
    for r in recon:
        p = r["partner"] or "unknown"
        a = agg.setdefault(p, {"partner": p, "files": 0, "unchecked": 0})
        a["files"] += 1
        for k in keys:
            a[k] = a.get(k, 0) + r[k]
            v = r[f"{k}_sdr"]
            if v is None:
                a["unchecked"] += 1 if k == "in" else 0
                continue
            a[f"{k}_sdr"] = a.get(f"{k}_sdr", Decimal(0)) + v
    for a in agg.values():
        for k in keys:
            a.setdefault(f"{k}_sdr", Decimal(0))
    return [agg[p] for p in sorted(agg)]


def _outbound_reconciliation(d: _Day) -> list[dict[str, Any]]:
    """Rated visitor records = records in the day's TAP-out / CIBER-out + not sendable."""
    rows = d.lake.rows(
        """
        WITH rated AS (
            SELECT partner, any_value(standard) AS standard, any_value(currency) AS currency,
                   any_value(charge_scale) AS scale, count(*) AS n,
                   sum(coalesce(charge, 0)) AS charge,
                   count(*) FILTER (standard = 'ciber' AND record_type NOT IN ('moc', 'mtc'))
                       AS n_unsent,
                   coalesce(sum(coalesce(charge, 0)) FILTER (
                       standard = 'ciber' AND record_type NOT IN ('moc', 'mtc')), 0)
                       AS charge_unsent
            FROM rv GROUP BY partner
        ), sent AS (
            SELECT partner, any_value(standard) AS standard, any_value(currency) AS currency,
                   any_value(charge_scale) AS scale, count(*) AS files,
                   sum(events) AS n, sum(total_charge) AS charge
            FROM outbound_files WHERE processing_date = ? GROUP BY partner
        )
        SELECT coalesce(r.partner, s.partner) AS partner,
               coalesce(s.standard, r.standard) AS standard,
               coalesce(r.currency, s.currency) AS currency,
               coalesce(r.scale, s.scale) AS scale,
               coalesce(s.files, 0) AS files,
               coalesce(r.n, 0) AS rated, coalesce(s.n, 0) AS in_files,
               coalesce(r.n_unsent, 0) AS unsent,
               coalesce(r.charge, 0) AS v_rated, coalesce(s.charge, 0) AS v_files,
               coalesce(r.charge_unsent, 0) AS v_unsent
        FROM rated r FULL JOIN sent s ON s.partner = r.partner
        ORDER BY 1
        """,
        [d.day],
    )
    out = []
    for r in rows:
        scale = int(r["scale"] if r["scale"] is not None else 0)
        currency = r["currency"] or "SDR"
        rated, in_files, unsent = int(r["rated"]), int(r["in_files"]), int(r["unsent"])
        v_rated, v_files, v_unsent = int(r["v_rated"]), int(r["v_files"]), int(r["v_unsent"])
        files_sdr, unsent_sdr = d.fx.sdr_parts([v_files, v_unsent], scale, currency, d.day)
        rated_sdr = d.fx.sdr(v_rated, scale, currency, d.day)
        out.append(
            {
                "partner": r["partner"],
                "name": d.partner_name(r["partner"]),
                "standard": (r["standard"] or "").upper(),
                "files": int(r["files"]),
                "rated": rated,
                "in_files": in_files,
                "unsent": unsent,
                "difference": rated - in_files - unsent,
                "currency": currency,
                "scale": scale,
                "v_rated": money(v_rated, scale),
                "v_files": money(v_files, scale),
                "v_unsent": money(v_unsent, scale),
                "v_difference": money(v_rated - v_files - v_unsent, scale),
                "rated_sdr": rated_sdr,
                "files_sdr": files_sdr,
                "unsent_sdr": unsent_sdr,
                "difference_sdr": rated_sdr - files_sdr - unsent_sdr,
            }
        )
    return out


def _count_rows(path: Path) -> int | None:
    """Records in a mediation file, counted from its bytes (CSV: non-empty rows - header)."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        n = _plain_rows(path)
        if n is None:  # quotes or lone carriage returns: the CSV reader decides
            with path.open(newline="", encoding="utf-8", errors="replace") as f:
                n = sum(1 for row in csv.reader(f) if any(c.strip() for c in row))
        return max(n - 1, 0)
    except (OSError, ValueError, csv.Error):
        return None


#: Bytes that are blank in a CSV row but the line break: the delimiter and ASCII whitespace
#: (as ``str.strip``).
_BLANK = b", \t\r\x0b\x0c\x1c\x1d\x1e\x1f"

_BLOCK = 1 << 24  # bytes read at a time


def _plain_rows(path: Path) -> int | None:
    """The non-blank rows of a CSV file without quotes, by blocks of lines (None: not plain).

    A row is blank when all its cells are whitespace: its line has only delimiters and
    whitespace. Without a quote a row is a line, so this is what the CSV reader counts, at
    a fraction of its cost (a 3M-record file: 9 s). A quote, or a carriage return not
    before a line feed (the reader's line break too), makes the caller ask the reader.
    """
    n = 0
    rest = b""
    with path.open("rb") as f:
        while True:
            block = f.read(_BLOCK)
            data = rest + block
            cut = data.rfind(b"\n") + 1 if block else len(data)  # whole lines (all at the end)
            lines, rest = data[:cut], data[cut:]
            if b'"' in lines or lines.count(b"\r") != lines.count(b"\r\n"):
                return None
            if lines.isascii():
                # the blank bytes gone, a non-blank row is a run of bytes between line feeds
                pieces = lines.translate(None, _BLANK).split(b"\n")
                n += len(pieces) - pieces.count(b"")
            else:
                text = lines.decode("utf-8", "replace")
                n += sum(1 for row in text.split("\n") if row.replace(",", "").strip())
            if not block:
                return n


def _cdr_reconciliation(d: _Day) -> list[dict[str, Any]]:
    from clearing.rating.run import cdr_files

    counts = {
        r["file"]: r
        for r in d.lake.rows(
            """
            SELECT file, sum(rated) AS rated, sum(unrated) AS unrated,
                   sum(quarantined) AS quarantined FROM (
                SELECT file, count(*) AS rated, 0 AS unrated, 0 AS quarantined
                FROM rv GROUP BY file
                UNION ALL SELECT file, 0, count(*), 0 FROM uv GROUP BY file
                UNION ALL SELECT file, 0, 0, count(*) FROM cq GROUP BY file
            ) GROUP BY file
            """
        )
    }
    out = []
    seen = set()
    for path in cdr_files(d.workdir, d.day):
        seen.add(path.name)
        n = _count_rows(path)
        d.inputs.append(
            {"what": "mediation CDR file", "name": path.name, "sha256": file_sha256(path)}
        )
        c = counts.get(path.name, {})
        rated, unrated, quarantined = (
            int(c.get(k) or 0) for k in ("rated", "unrated", "quarantined")
        )
        out.append(
            {
                "file": path.name,
                "in": n,
                "rated": rated,
                "unrated": unrated,
                "quarantined": quarantined,
                "difference": None if n is None else n - rated - unrated - quarantined,
                "note": "" if n is not None else "file unreadable: records not counted",
            }
        )
    for name in sorted(set(counts) - seen):
        c = counts[name]
        rated, unrated, quarantined = (
            int(c.get(k) or 0) for k in ("rated", "unrated", "quarantined")
        )
        out.append(
            {
                "file": name,
                "in": None,
                "rated": rated,
                "unrated": unrated,
                "quarantined": quarantined,
                "difference": None,
                "note": "source file no longer in the inbox: records not counted",
            }
        )
    return out


# ---------------------------------------------------------------------------------------------
# sequences, validation, IOT


def _sequences(d: _Day) -> list[dict[str, Any]]:
    lake, day, settings = d.lake, d.day, d.settings
    rows = lake.rows(
        r"""
        WITH f AS (
            SELECT *, CASE WHEN regexp_full_match(fsn, '[0-9]{5}') THEN CAST(fsn AS INTEGER)
                      END AS n
            FROM files WHERE format IN ('tap', 'notification') AND processing_date <= ?
        ), streams AS (
            SELECT DISTINCT sender, recipient, test FROM f WHERE sender IS NOT NULL
        )
        SELECT s.sender, s.recipient, s.test,
            (SELECT max(n) FROM f WHERE f.sender = s.sender AND f.test = s.test
                AND f.processing_date < ? AND f.outcome <> 'copy') AS last_before,
            (SELECT min(n) FROM f WHERE f.sender = s.sender AND f.test = s.test
                AND f.processing_date = ? AND f.outcome <> 'copy') AS first_today,
            (SELECT max(n) FROM f WHERE f.sender = s.sender AND f.test = s.test
                AND f.processing_date = ? AND f.outcome <> 'copy') AS last_today,
            (SELECT count(*) FROM f WHERE f.sender = s.sender AND f.test = s.test
                AND f.processing_date = ?) AS files_today,
            (SELECT count(*) FROM f WHERE f.sender = s.sender AND f.test = s.test
                AND f.processing_date = ? AND f.outcome = 'copy') AS copies,
            (SELECT max(processing_date) FROM f WHERE f.sender = s.sender
                AND f.test = s.test) AS last_date,
            (SELECT count(*) FROM findings g WHERE g.sender = s.sender
                AND g.rule = 'fsn.gap' AND g.processing_date = ?) AS gaps,
            (SELECT string_agg(lpad(CAST(g.gap_start AS VARCHAR), 5, '0') || '-'
                    || lpad(CAST(g.gap_end AS VARCHAR), 5, '0'), ', '
                ORDER BY g.gap_start, g.gap_end) FROM findings g WHERE g.sender = s.sender
                AND g.rule = 'fsn.gap' AND g.processing_date = ?) AS gap_ranges,
            (SELECT count(*) FROM findings g WHERE g.sender = s.sender
                AND g.rule = 'fsn.reused' AND g.processing_date = ?) AS reused,
            (SELECT coalesce(sum(missing), 0) FROM rap_out r WHERE r.partner = s.sender
                AND r.test = s.test AND r.processing_date = ?) AS missing_returns,
            (SELECT coalesce(sum(stop), 0) FROM rap_out r WHERE r.partner = s.sender
                AND r.test = s.test AND r.processing_date = ?) AS stop_returns
        FROM streams s ORDER BY s.sender, s.test
        """,
        [day] * 11,
    )
    known = {r["sender"] for r in rows}
    out = []
    for r in rows:
        silent_days = (day - r["last_date"]).days if r["last_date"] else None
        limit = settings.silent_days(r["sender"])
        expected = None if r["last_before"] is None else next_fsn(int(r["last_before"]))
        status = []
        if r["gaps"]:
            status.append("gap")
        if r["reused"]:
            status.append("FSN reused")
        if r["copies"]:
            status.append("copy received")
        if silent_days is not None and silent_days > limit:
            status.append("silent")
        out.append(
            {
                "direction": "in",
                "partner": r["sender"],
                "name": d.partner_name(r["sender"]),
                "stream": f"{r['sender']} → {r['recipient']}",
                "test": "test" if r["test"] else "live",
                "last_before": _fsn(r["last_before"]),
                "expected": _fsn(expected),
                "today": _range(r["first_today"], r["last_today"]),
                "files": int(r["files_today"]),
                "gaps": int(r["gaps"]),
                "gap_ranges": r["gap_ranges"] or "",
                "missing_returns": int(r["missing_returns"]),
                "copies": int(r["copies"]),
                "reused": int(r["reused"]),
                "last_date": r["last_date"],
                "silent_days": silent_days,
                "silent_limit": limit,
                "stop_returns": int(r["stop_returns"]),
                "status": ", ".join(status) or "ok",
            }
        )
    # configured TAP partners that never sent anything
    for code in sorted(settings.partners):
        p = settings.partners[code]
        if p.standard != "tap" or code in known:
            continue
        out.append(
            {
                "direction": "in",
                "partner": code,
                "name": d.partner_name(code),
                "stream": f"{code} → {settings.home.tadig}",
                "test": "live",
                "last_before": None,
                "expected": None,
                "today": "",
                "files": 0,
                "gaps": 0,
                "gap_ranges": "",
                "missing_returns": 0,
                "copies": 0,
                "reused": 0,
                "last_date": None,
                "silent_days": None,
                "silent_limit": settings.silent_days(code),
                "stop_returns": 0,
                "status": "no file ever received",
            }
        )
    for r in lake.rows(
        """
        SELECT partner, standard, file_type, first_number, last_number, previous_number,
               (SELECT count(*) FROM outbound_files o WHERE o.partner = s.partner
                   AND o.standard = s.standard AND o.file_type = s.file_type
                   AND o.processing_date = s.processing_date) AS files
        FROM outbound_sequences s WHERE processing_date = ? ORDER BY partner, standard
        """,
        [day],
    ):
        width = 5 if r["standard"] == "tap" else 3
        out.append(
            {
                "direction": "out",
                "partner": r["partner"],
                "name": d.partner_name(r["partner"]),
                "stream": f"{settings.home.tadig} → {r['partner']} ({r['standard'].upper()})",
                "test": r["file_type"],
                "last_before": _fsn(r["previous_number"], width),
                "expected": _fsn(
                    None if r["previous_number"] is None else next_fsn(int(r["previous_number"])),
                    width,
                ),
                "today": _range(r["first_number"], r["last_number"], width),
                "files": int(r["files"]),
                "gaps": 0,
                "gap_ranges": "",
                "missing_returns": 0,
                "copies": 0,
                "reused": 0,
                "last_date": day,
                "silent_days": 0,
                "silent_limit": None,
                "stop_returns": 0,
                "status": "sent" if r["files"] else "no file",
            }
        )
    return out


def _fsn(n: int | None, width: int = 5) -> str | None:
    return None if n is None else f"{int(n):0{width}d}"


def _range(a: int | None, b: int | None, width: int = 5) -> str:
    if a is None:
        return ""
    return f"{int(a):0{width}d}" if a == b else f"{int(a):0{width}d}-{int(b or a):0{width}d}"


def _validation(d: _Day, inbound: list[dict[str, Any]]) -> list[dict[str, Any]]:
    partner_of = {f["file"]: f["partner"] for f in inbound}
    rows = d.lake.rows(
        """
        SELECT file, sender, severity, code, rule, context, count(*) AS findings,
               count(DISTINCT event_index) AS events
        FROM findings WHERE processing_date = ? GROUP BY ALL
        """,
        [d.day],
    )
    agg: dict[tuple[str, str, int, str, str], dict[str, Any]] = {}
    for r in rows:
        partner = r["sender"] or partner_of.get(r["file"]) or "unknown"
        key = (partner, r["severity"], int(r["code"]), r["rule"], r["context"])
        a = agg.setdefault(
            key,
            {
                "partner": partner,
                "name": d.partner_name(partner),
                "severity": r["severity"],
                "code": int(r["code"]),
                "rule": r["rule"],
                "context": r["context"],
                "findings": 0,
                "events": 0,
                "files": 0,
            },
        )
        a["findings"] += int(r["findings"])
        a["events"] += int(r["events"])
        a["files"] += 1
    return sorted(
        agg.values(),
        key=lambda a: (
            a["partner"],
            _SEVERITY_ORDER.get(a["severity"], 9),
            -a["findings"],
            a["code"],
            a["rule"],
            a["context"] or "",  # a total order: DuckDB's groups come in any order
        ),
    )


def _iot(d: _Day) -> list[dict[str, Any]]:
    rows = d.lake.rows(
        """
        SELECT partner, coalesce(service, '(not priced)') AS service, currency,
               charge_scale AS scale, count(*) AS events,
               count(*) FILTER (status = 'checked') AS checked,
               count(*) FILTER (status <> 'checked') AS unchecked,
               count(*) FILTER (breach) AS breaches,
               coalesce(sum(charged) FILTER (status = 'checked'), 0) AS charged,
               coalesce(sum(expected) FILTER (status = 'checked'), 0) AS expected,
               coalesce(sum(abs(difference)) FILTER (breach), 0) AS breach_value
        FROM rp GROUP BY ALL ORDER BY partner, service, currency, scale
        """
    )
    out = []
    for r in rows:
        scale, cur = int(r["scale"] or 0), r["currency"] or "SDR"
        charged = d.fx.sdr(int(r["charged"]), scale, cur, d.day)
        expected = d.fx.sdr(int(r["expected"]), scale, cur, d.day)
        out.append(
            {
                "partner": r["partner"],
                "name": d.partner_name(r["partner"]),
                "service": r["service"],
                "events": int(r["events"]),
                "checked": int(r["checked"]),
                "unchecked": int(r["unchecked"]),
                "breaches": int(r["breaches"]),
                "charged_sdr": charged,
                "expected_sdr": expected,
                "difference_sdr": charged - expected,
                "breach_value_sdr": d.fx.sdr(int(r["breach_value"]), scale, cur, d.day),
            }
        )
    return out


def _breaches(d: _Day) -> list[dict[str, Any]]:
    rows = d.lake.rows(
        """
        SELECT partner, file, event_index, event_kind, service, local_start, expected,
               charged, difference, charge_scale, currency, tolerance, iot_key
        FROM iotf ORDER BY partner, file, event_index
        """
    )
    return [
        {
            **r,
            "scale": int(r["charge_scale"] or 0),
            "expected": money(r["expected"], r["charge_scale"]),
            "charged": money(r["charged"], r["charge_scale"]),
            "difference": money(r["difference"], r["charge_scale"]),
            "breaches": 1,
        }
        for r in rows
    ]


def _iot_held(d: _Day) -> list[dict[str, Any]]:
    """The date's breaches above the thresholds (store) with their charge (lake), in SDR."""
    rows = d.lake.rows(
        """
        SELECT h.partner, h.file, h.event_index, h.service, h.status, h.reason, h.decided_at,
               h.currency, h.charge_scale, h.charged, h.expected, h.difference,
               h.settlement_currency, h.settlement_scale, h.settlement_amount, p.charge
        FROM iot_breaches h
        LEFT JOIN rp p ON p.file = h.file AND p.event_index = h.event_index
        WHERE h.processing_date = ? ORDER BY h.partner, h.file, h.event_index
        """,
        [d.day],
    )
    out = []
    for r in rows:
        scale, cur = int(r["charge_scale"] or 0), r["currency"] or "SDR"
        charge_sdr = d.fx.sdr(int(r["charge"] or 0), scale, cur, d.day)
        withheld = r["status"] != "accepted"
        out.append(
            {
                **r,
                "name": d.partner_name(r["partner"]),
                "scale": scale,
                "charged": money(r["charged"], scale),
                "expected": money(r["expected"], scale),
                "difference": money(r["difference"], scale),
                "payable_sc": money(r["settlement_amount"], r["settlement_scale"]),
                "sc_scale": int(r["settlement_scale"] or 0),
                "held": 1 if withheld else 0,
                "held_sdr": charge_sdr if withheld else Decimal(0),
            }
        )
    return out


def _partners(
    d: _Day,
    inbound: list[dict[str, Any]],
    recon: list[dict[str, Any]],
    out_recon: list[dict[str, Any]],
    iot: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    codes = set(d.settings.partners) | {f["partner"] for f in inbound if f["partner"]}
    codes |= {r["partner"] for r in out_recon}
    rows = []
    for code in sorted(codes):
        mine_in = [f for f in inbound if f["partner"] == code]
        mine_rec = [r for r in recon if r["partner"] == code]
        o = next((r for r in out_recon if r["partner"] == code), None)
        rows.append(
            {
                "partner": code,
                "name": d.partner_name(code),
                "standard": d.settings.partner(code).standard.upper()
                if code in d.settings.partners
                else (o["standard"] if o else ""),
                "files_in": len(mine_in),
                "events_in": sum(r["in"] for r in mine_rec),
                "accepted": sum(r["accepted"] for r in mine_rec),
                "accepted_sdr": sum(
                    (r["accepted_sdr"] or Decimal(0) for r in mine_rec), Decimal(0)
                ),
                "files_out": o["files"] if o else 0,
                "events_out": o["in_files"] if o else 0,
                "out_sdr": o["files_sdr"] if o else Decimal(0),
                # as the Reconciliation counts them: RAP (severe and fatal) and CIBER returns
                "returned": sum(r["returned"] for r in mine_rec),
                "returned_sdr": sum(
                    (r["returned_sdr"] or Decimal(0) for r in mine_rec), Decimal(0)
                ),
                "breaches": sum(r["breaches"] for r in iot if r["partner"] == code),
            }
        )
    return rows


def _register_rows(
    inbound: list[dict[str, Any]],
    outbound: list[dict[str, Any]],
    raps: list[dict[str, Any]],
    rap_in: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in inbound:
        rows.append(f)
    for f in rap_in:
        rows.append({**f, "audit_file": None, "audit_recomputed": None, "available": None})
    for f in outbound:
        rows.append(f)
    for r in raps:
        if r["age_days"] == 0:
            rows.append({**r, "limit": None, "age": None, "over_limit": None})
    for r in rows:
        af, ar = r.get("audit_file"), r.get("audit_recomputed")
        scale = r.get("scale")
        r["audit_file_v"] = money(af, scale)
        r["audit_recomputed_v"] = money(ar, scale)
        r["audit_difference"] = (
            money(int(af) - int(ar), scale) if af is not None and ar is not None else None
        )
        r["scale"] = int(scale or 0)
        r["sha_short"] = (r.get("sha256") or "")[:12] or None
        r["moved"] = r.get("received") or r.get("sent")
    return rows


def _audit_rows(d: _Day, register: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = sorted(d.inputs, key=lambda r: (r["what"], r["name"]))
    for r in register:
        if r["direction"] == "out" and r.get("sha256"):
            rows.append(
                {"what": f"output file ({r['kind']})", "name": r["file"], "sha256": r["sha256"]}
            )
    rows += lake_file_rows(d.lake_files, d.workdir)
    return rows
