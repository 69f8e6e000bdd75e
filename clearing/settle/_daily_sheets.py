"""The sheets of the daily workbook: column layouts, titles, notes (figures: :mod:`._daily`)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearing.settle._book import Chart, Col, KeyFigure, KeyFigures, Table
from clearing.settle._lake import SDR_SCALE

if TYPE_CHECKING:
    from datetime import date

    from clearing import config
    from clearing.settle._common import AuditFacts

__all__ = [
    "SHOWN",
    "audit_table",
    "breaches_table",
    "by_partner_table",
    "cdr_table",
    "front",
    "held_table",
    "iot_table",
    "outbound_recon_table",
    "partners_table",
    "rap_in_table",
    "rap_table",
    "reconciliation_table",
    "register_table",
    "sdr_col",
    "sequences_table",
    "validation_table",
    "with_held_figures",
]


def sdr_col(key: str, title: str, **kw: Any) -> Col:
    """An SDR money column (6 decimals)."""
    return Col(key, title, "money", scale=SDR_SCALE, **kw)


SHOWN = 2
"""Decimal places a summary sheet shows of an SDR amount (the cell keeps all six)."""


def _sdr_summary(key: str, title: str, **kw: Any) -> Col:
    """An SDR money column of a summary sheet: exact in the cell, shown to the cent."""
    return sdr_col(key, title, shown=SHOWN, **kw)


def _sub(day: date, what: str) -> str:
    return f"Processing date {day} · {what}"


def partners_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "Partners",
        "Events and charges per partner",
        [
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("standard", "Standard"),
            Col("files_in", "Files in", "int", total=True),
            Col("events_in", "Events in", "int", total=True),
            Col("accepted", "Accepted", "int", total=True),
            _sdr_summary(
                "accepted_sdr", "Accepted charge in (SDR)", total=True, name="accepted_in_sdr"
            ),
            Col("files_out", "Files out", "int", total=True),
            Col("events_out", "Events out", "int", total=True),
            _sdr_summary("out_sdr", "Charge out (SDR)", total=True, name="charge_out_sdr"),
            Col("returned", "Returned (RAP / CIBER returns)", "int", total=True),
            _sdr_summary("returned_sdr", "Returned charge (SDR)", total=True),
            Col("breaches", "IOT breaches", "int", total=True),
        ],
        rows,
        subtitle=_sub(day, "in = partners' TAP-in / CIBER-in, out = our TAP-out / CIBER-out"),
        charts=[
            Chart("Events per partner", "partner", ("events_in", "events_out"), y_title="events"),
            Chart(
                "Charges per partner (SDR)",
                "partner",
                ("accepted_sdr", "out_sdr"),
                y_title="SDR",
            ),
        ],
    )


def register_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "File register",
        "File register",
        [
            Col("direction", "Dir."),
            Col("partner", "Partner"),
            Col("kind", "Kind"),
            Col("fsn", "FSN / RAP FSN"),
            Col("file", "File"),
            Col("sha_short", "SHA-256 (start)"),
            Col("available", "Available (UTC)", "datetime"),
            Col("moved", "Received / sent (UTC)", "datetime"),
            Col("first_end", "Earliest call end (UTC)", "datetime"),
            Col("age", "Age (h)", "hours"),
            Col("limit", "Limit (h)", "int"),
            Col("over_limit", "Events over limit", "int", total=True, flag_nonzero=True),
            Col("status", "Status"),
            Col("records", "Records", "int", total=True),
            Col("currency", "Currency", align="center"),
            Col("audit_file_v", "Audit total (file)", "decimal", scale_key="scale"),
            Col("audit_recomputed_v", "Recomputed", "decimal", scale_key="scale"),
            Col("audit_difference", "Difference", "money", scale_key="scale", flag_nonzero=True),
            Col("findings", "Findings", "int", total=True),
            Col("return_file", "RAP / return file"),
        ],
        rows,
        subtitle=_sub(
            day,
            "age = available (in) or sent (out) minus the earliest call end; limits: TAP 36 h, "
            "NRTRDE 4 h; audit totals in the file's currency",
        ),
        notes=[
            "Audit total: TAP totalCharge (charge + CAMEL, refunds apart) as in the file; "
            "recomputed from the file's events (in) or from the rated lake rows (out). CIBER: "
            "trailer total charges and taxes vs the records' total. RAP: "
            "totalSevereReturnValue vs the returned events in the lake.",
            "Received: when transport collected the file (fetch ledger); blank when it came "
            "another way.",
        ],
    )


def sequences_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "Sequences",
        "Sequence monitor",
        [
            Col("direction", "Dir."),
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("stream", "Stream"),
            Col("test", "Data"),
            Col("last_before", "Last FSN before"),
            Col("expected", "Expected next"),
            Col("today", "FSNs today"),
            Col("files", "Files today", "int", total=True),
            Col("gaps", "Gaps", "int", total=True, flag_nonzero=True, name="sequence_gaps"),
            Col("gap_ranges", "Missing FSNs"),
            Col("missing_returns", "MissingReturn sent", "int", total=True),
            Col("copies", "Copies ignored", "int", total=True, name="copies_ignored"),
            Col("reused", "Reused FSN (fatal 201)", "int", total=True, flag_nonzero=True),
            Col("last_date", "Last file", "date"),
            Col("silent_days", "Days since last file", "int"),
            Col("silent_limit", "Silent limit (days)", "int"),
            Col("stop_returns", "Stop Return sent", "int", total=True),
            Col("status", "Status"),
        ],
        rows,
        subtitle=_sub(day, "TD.57 file sequence numbers per sender → recipient, live and test"),
    )


def validation_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "Validation",
        "Validation summary",
        [
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("severity", "Severity"),
            Col("code", "Error code", "int"),
            Col("rule", "Rule"),
            Col("context", "Context"),
            Col("findings", "Findings", "int", total=True, name="findings_total"),
            Col("events", "Events", "int", total=True),
            Col("files", "Files", "int", total=True),
        ],
        rows,
        subtitle=_sub(day, "findings by partner, severity and error code, most frequent first"),
    )


_RECON_COUNTS = [
    Col("in", "In", "int", total=True),
    Col("accepted", "Accepted", "int", total=True),
    Col("returned", "Returned", "int", total=True),
    Col("duplicate", "Duplicate", "int", total=True),
    Col("late", "Late", "int", total=True),
    Col("quarantined", "Quarantined", "int", total=True),
]
_RECON_SDR = [
    sdr_col("in_sdr", "In (SDR)", total=True),
    sdr_col("accepted_sdr", "Accepted (SDR)", total=True),
    sdr_col("returned_sdr", "Returned (SDR)", total=True),
    sdr_col("duplicate_sdr", "Duplicate (SDR)", total=True),
    sdr_col("late_sdr", "Late (SDR)", total=True),
    sdr_col("quarantined_sdr", "Quarantined (SDR)", total=True),
]
_DIFF = "{in} - {accepted} - {returned} - {duplicate} - {late} - {quarantined}"
_DIFF_SDR = (
    "{in_sdr} - {accepted_sdr} - {returned_sdr} - {duplicate_sdr} - {late_sdr} - {quarantined_sdr}"
)


def reconciliation_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "Reconciliation",
        "Record reconciliation per input file",
        [
            Col("partner", "Partner"),
            Col("file", "File"),
            Col("kind", "Kind"),
            Col("status", "Status"),
            *[
                Col(c.key, c.title, c.kind, total=True, name=f"records_{c.key}")
                for c in _RECON_COUNTS
            ],
            Col(
                "difference",
                "Difference",
                "int",
                total=True,
                formula=_DIFF,
                flag_nonzero=True,
                name="records_difference",
            ),
            Col("currency", "File currency", align="center"),
            *[sdr_col(c.key, c.title, total=True, name=f"charge_{c.key}") for c in _RECON_SDR],
            sdr_col(
                "difference_sdr",
                "Difference (SDR)",
                total=True,
                formula=_DIFF_SDR,
                flag_nonzero=True,
                name="charge_difference_sdr",
            ),
            Col("note", "Note"),
        ],
        rows,
        subtitle=_sub(
            day,
            "in (file register) = accepted + returned + duplicate + late + quarantined "
            "(lake); the differences must be 0",
        ),
        notes=[
            "In: events counted when the file was decoded (a copy brings nothing in). The "
            "parts: the lake rows of the file by status. Charges: chargeType 00.",
            "SDR: TAP charges are SDR (scale only); other currencies at the fx rate valid on "
            "the processing date, parts by cumulative rounding so that they add up exactly.",
        ],
    )


def by_partner_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "Reconciliation by partner",
        "Record reconciliation per partner",
        [
            Col("partner", "Partner"),
            Col("files", "Files", "int", total=True),
            *_RECON_COUNTS,
            Col("difference", "Difference", "int", total=True, formula=_DIFF, flag_nonzero=True),
            *[replace(c, shown=SHOWN) for c in _RECON_SDR],
            sdr_col(
                "difference_sdr",
                "Difference (SDR)",
                total=True,
                formula=_DIFF_SDR,
                flag_nonzero=True,
            ),
            Col("unchecked", "Files without charge check", "int", total=True),
        ],
        rows,
        subtitle=_sub(day, "the per-file reconciliation summed per partner"),
    )


def outbound_recon_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "Outbound reconciliation",
        "Rated visitor records vs TAP-out / CIBER-out",
        [
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("standard", "Standard"),
            Col("files", "Files out", "int", total=True),
            Col("rated", "Rated records", "int", total=True, name="out_rated"),
            Col("in_files", "Records in files", "int", total=True),
            Col("unsent", "Records not carried (CIBER: SMS, data)", "int", total=True),
            Col(
                "difference",
                "Record difference",
                "int",
                total=True,
                formula="{rated} - {in_files} - {unsent}",
                flag_nonzero=True,
                name="out_records_difference",
            ),
            Col("currency", "Currency", align="center"),
            Col("v_rated", "Rated charge", "money", scale_key="scale"),
            Col("v_files", "Charge in files", "money", scale_key="scale"),
            Col("v_unsent", "Charge not carried", "money", scale_key="scale"),
            Col("v_difference", "Charge difference", "money", scale_key="scale", flag_nonzero=True),
            sdr_col("rated_sdr", "Rated (SDR)", total=True),
            sdr_col("files_sdr", "In files (SDR)", total=True),
            sdr_col("unsent_sdr", "Not carried (SDR)", total=True),
            sdr_col(
                "difference_sdr",
                "Difference (SDR)",
                total=True,
                formula="{rated_sdr} - {files_sdr} - {unsent_sdr}",
                flag_nonzero=True,
                name="out_charge_difference_sdr",
            ),
        ],
        rows,
        subtitle=_sub(
            day,
            "rated (lake) = in the day's outbound files (register) + what the file format "
            "cannot carry; the differences must be 0",
        ),
    )


def cdr_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "CDR reconciliation",
        "Mediation CDR files: records in = rated + unrated + quarantined",
        [
            Col("file", "Mediation file"),
            Col("in", "Records in file", "int", total=True),
            Col("rated", "Rated", "int", total=True),
            Col("unrated", "Unrated", "int", total=True),
            Col("quarantined", "Quarantined", "int", total=True),
            Col(
                "difference",
                "Difference",
                "int",
                total=True,
                formula="{in} - {rated} - {unrated} - {quarantined}",
                flag_nonzero=True,
                name="cdr_difference",
            ),
            Col("note", "Note"),
        ],
        rows,
        subtitle=_sub(day, "records counted from the file's bytes vs the lake; must be 0"),
    )


def rap_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "RAP",
        "RAP files sent, and ACKs outstanding",
        [
            Col("date", "Sent on", "date"),
            Col("partner", "Partner"),
            Col("file", "RAP file"),
            Col("fsn", "RAP FSN"),
            Col("test", "Data"),
            Col("fatal", "Fatal", "int", total=True),
            Col("severe", "Severe", "int", total=True),
            Col("missing", "Missing", "int", total=True),
            Col("stop", "Stop", "int", total=True),
            Col("currency", "Currency", align="center"),
            Col("severe_value", "Severe return value", "money", scale_key="scale"),
            Col("severe_tax", "Severe return tax", "money", scale_key="scale"),
            sdr_col("severe_value_sdr", "Severe return value (SDR)", total=True),
            Col("ack", "ACK"),
            Col("age_days", "Age (days)", "int"),
            Col("ack_outstanding", "ACK outstanding", "int", total=True, name="acks_outstanding"),
        ],
        rows,
        subtitle=_sub(day, "RAPs of the date and earlier RAPs the partner has not acknowledged"),
    )


def rap_in_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "RAP received",
        "RAPs and ACKs received from partners",
        [
            Col("partner", "Partner"),
            Col("kind", "Kind"),
            Col("file", "File"),
            Col("fsn", "RAP FSN"),
            Col("fatal", "Fatal returns", "int", total=True),
            Col("severe", "Severe returns", "int", total=True),
            Col("currency", "Currency", align="center"),
            Col("value", "Value returned", "money", scale_key="scale"),
            sdr_col("value_sdr", "Value returned (SDR)", total=True),
            Col("status", "Status"),
        ],
        rows,
        subtitle=_sub(day, "returns of our TAP-out to correct and resubmit"),
    )


def iot_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "IOT check",
        "IOT check of partners' charges (payables)",
        [
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("service", "Service"),
            Col("events", "Events", "int", total=True),
            Col("checked", "Checked", "int", total=True),
            Col("unchecked", "Not priced", "int", total=True),
            Col("breaches", "Breaches", "int", total=True, flag_nonzero=True, name="iot_breaches"),
            sdr_col("charged_sdr", "Charged (SDR)", total=True),
            sdr_col("expected_sdr", "Expected at IOT (SDR)", total=True),
            sdr_col(
                "difference_sdr",
                "Difference (SDR)",
                total=True,
                formula="{charged_sdr} - {expected_sdr}",
            ),
            sdr_col("breach_value_sdr", "Breach value |diff| (SDR)", total=True),
        ],
        rows,
        subtitle=_sub(day, "accepted TAP-in / CIBER-in re-rated with the partner's IOT"),
    )


def breaches_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "IOT breaches",
        "Events charged outside the IOT tolerance",
        [
            Col("partner", "Partner"),
            Col("file", "File"),
            Col("event_index", "Event", "int"),
            Col("event_kind", "Kind"),
            Col("service", "Service"),
            Col("local_start", "Local start", "datetime"),
            Col("currency", "Currency", align="center"),
            Col("charged", "Charged", "money", scale_key="scale"),
            Col("expected", "Expected", "money", scale_key="scale"),
            Col("difference", "Difference", "money", scale_key="scale"),
            Col("tolerance", "Tolerance"),
            Col("iot_key", "IOT row"),
            Col("breaches", "Count", "int", total=True),
        ],
        rows,
        subtitle=_sub(day, "one row per breach, amounts in the file's currency"),
    )


def held_table(rows: list[dict[str, Any]], day: date) -> Table:
    return Table(
        "IOT held",
        "IOT breaches above the thresholds: held from the payable until decided",
        [
            Col("partner", "Partner"),
            Col("name", "Name"),
            Col("file", "File"),
            Col("event_index", "Event", "int"),
            Col("service", "Service"),
            Col("currency", "Currency", align="center"),
            Col("charged", "Charged", "money", scale_key="scale"),
            Col("expected", "Expected", "money", scale_key="scale"),
            Col("difference", "Difference", "money", scale_key="scale"),
            Col("settlement_currency", "Settlement currency", align="center"),
            Col("payable_sc", "Payable (settlement currency)", "money", scale_key="sc_scale"),
            Col("status", "Status"),
            Col("reason", "Reason"),
            Col("held", "Held", "int", total=True, name="iot_held"),
            sdr_col("held_sdr", "Held charge (SDR)", total=True, name="iot_held_sdr"),
        ],
        rows,
        subtitle=_sub(
            day,
            "held: not in the payable until `clearing iot accept` (paid on this date) or "
            "`clearing iot dispute` (stays out)",
        ),
    )


def with_held_figures(
    front: KeyFigures, recon: list[dict[str, Any]], held: list[dict[str, Any]]
) -> KeyFigures:
    """The Overview with the IOT holds: events and charge held, the payable after them."""
    accepted = sum((r["accepted_sdr"] for r in recon if r.get("accepted_sdr") is not None), 0)
    held_sdr = sum((r["held_sdr"] for r in held), Decimal(0))
    extra = [
        KeyFigure(
            "IOT breaches held from the payable (held or disputed)",
            "iot_held",
            sum(r["held"] for r in held),
        ),
        KeyFigure(
            "Charge held from the payable, SDR",
            "iot_held_sdr",
            held_sdr,
            "money",
            SDR_SCALE,
            shown=SHOWN,
        ),
        KeyFigure(
            "Payable after IOT holds, SDR",
            value=accepted - held_sdr,
            kind="money",
            scale=SDR_SCALE,
            note="Accepted charge in − charge held (IOT held)",
            shown=SHOWN,
        ),
    ]
    return replace(front, figures=[*front.figures, *extra])


def audit_table(
    rows: list[dict[str, Any]], facts: AuditFacts, day: date, run_id: str | None
) -> Table:
    head: list[dict[str, Any]] = [
        {"what": "software", "name": facts.software, "sha256": None},
        {"what": "config", "name": "clearing.toml", "sha256": facts.config_hash},
        *[
            {"what": "reference data", "name": f"rates/{table}", "sha256": sha}
            for table, sha in facts.rates
        ],
        {"what": "processing date", "name": day.isoformat(), "sha256": None},
        {"what": "run id", "name": run_id or "", "sha256": None, "_key": "run_id"},
    ]
    return Table(
        "Audit",
        "Audit trail",
        [
            # one A4 page wide at 85 %: long names and paths wrap, a SHA-256 on one line
            Col("what", "What", width=24, wrap=True),
            Col("name", "Name / value", width=40, wrap=True),
            Col("sha256", "SHA-256", width=65),
        ],
        head + rows,
        subtitle=_sub(day, "what this workbook was made from"),
        totals=False,
    )


def front(
    day: date,
    home: str,
    settings: config.Settings,
    run_id: str | None,
    facts: AuditFacts,
    recon: list[dict[str, Any]],
    out_recon: list[dict[str, Any]],
    cdr: list[dict[str, Any]],
    register: list[dict[str, Any]],
    seqs: list[dict[str, Any]],
    raps: list[dict[str, Any]],
    iot: list[dict[str, Any]],
) -> KeyFigures:
    def total(rows: list[dict[str, Any]], key: str) -> Any:
        return sum((r[key] for r in rows if r.get(key) is not None), 0)

    files_in = sum(1 for r in register if r["direction"] == "in")
    files_out = sum(1 for r in register if r["direction"] == "out")
    silent = sum(1 for s in seqs if "silent" in s["status"])
    over = sum(1 for r in register if r.get("over_limit"))
    figures = [
        KeyFigure("Files received", value=files_in, note="File register, direction in"),
        KeyFigure("Files sent or written", value=files_out, note="File register, direction out"),
        KeyFigure("Records in (partners' files)", "records_in", total(recon, "in")),
        KeyFigure("Records accepted", "records_accepted", total(recon, "accepted")),
        KeyFigure(
            "Records returned (RAP / CIBER returns)", "records_returned", total(recon, "returned")
        ),
        KeyFigure("Records duplicate", "records_duplicate", total(recon, "duplicate")),
        KeyFigure("Records late", "records_late", total(recon, "late")),
        KeyFigure(
            "Record identity difference (must be 0)",
            "records_difference",
            total(recon, "difference"),
        ),
        KeyFigure(
            "Charge identity difference, SDR (must be 0)",
            "charge_difference_sdr",
            total(recon, "difference_sdr"),
            "money",
            SDR_SCALE,
        ),
        KeyFigure(
            "Accepted charge in, SDR (payable)",
            "charge_accepted_sdr",
            total(recon, "accepted_sdr"),
            "money",
            SDR_SCALE,
            shown=SHOWN,
        ),
        KeyFigure("Visitor records rated", "out_rated", total(out_recon, "rated")),
        KeyFigure(
            "Outbound record difference (must be 0)",
            "out_records_difference",
            total(out_recon, "difference"),
        ),
        KeyFigure(
            "Outbound charge difference, SDR (must be 0)",
            "out_charge_difference_sdr",
            total(out_recon, "difference_sdr"),
            "money",
            SDR_SCALE,
        ),
        KeyFigure(
            "Mediation CDR difference (must be 0)", "cdr_difference", total(cdr, "difference")
        ),
        KeyFigure("Sequence gaps", "sequence_gaps", total(seqs, "gaps")),
        KeyFigure("Copies ignored", "copies_ignored", total(seqs, "copies")),
        KeyFigure("Partners silent beyond their limit", value=silent, note="Sequences, status"),
        KeyFigure(
            "Files with events over the delivery limit",
            value=over,
            note="File register, events over limit",
        ),
        KeyFigure(
            "ACKs outstanding (our RAPs)", "acks_outstanding", total(raps, "ack_outstanding")
        ),
        KeyFigure("IOT breaches", "iot_breaches", total(iot, "breaches")),
    ]
    return KeyFigures(
        "Overview",
        f"Daily clearing operations — {home}"
        + (f" ({settings.home.name})" if settings.home.name else ""),
        [
            ("Processing date", day),
            ("Home network", home),
            ("Run id", run_id or "(not given)"),
            ("Software", facts.software),
            ("Config SHA-256", facts.config_hash),
        ],
        figures,
        notes=[
            "Every figure is a totals cell of the sheet named beside it (defined names); the "
            "differences must be 0 and are shaded when they are not.",
            "Amounts: shown to 2 decimals on this sheet, Partners and Reconciliation by "
            "partner (the differences in full); every cell holds the exact amount (SDR: 6 "
            "decimals, as the detail sheets show it); amounts in a file's own currency carry "
            "its decimals.",
        ],
    )
