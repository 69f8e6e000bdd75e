"""The nightly run of one processing date, stage by stage, and the backfill of a range of dates.

Stages (each also a CLI verb of its own)::

    collect   partners' files → inbox/                     (transport, fetch ledger)
    claim     inbox/ → work/<D>/in/                         (the day's inputs, moved once)
    validate  decode + TD.57 / CIBER rules + duplicates     → lake/events_in, RAPs, returns
    receive   partners' RAPs (→ ACK) and ACKs (→ outbox)    → state, out/ack
    rate      visitors' CDRs → TAP-out / CIBER-out; IOT check of partner events
    retail    our subscribers' usage per sub-number          → lake/retail
    outbox    register the day's files for sending (same name never with other bytes)
    send      send what is due                              (transport)
    settle    the daily operations workbook                 → out/settlement/daily

Every stage is idempotent: its outputs for the date are replaced whole (lake partitions,
out files written atomically with bytes that depend only on the inputs and the date, DuckDB
rows of the date deleted first). A run killed at any point and started again therefore ends in
the same state as an uninterrupted run. One run at a time per work folder (:mod:`lock`).

Exit codes: 0 ok, 1 data problem (a fatal file, a reconciliation difference), 2 config problem
(nothing or part done), 3 transport problem (some partner unreachable; the rest was done).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing import config, lake
from clearing.errors import ClearingError, ConfigError, TransportError
from clearing.pipeline.lock import WorkdirLock
from clearing.pipeline.run import EXIT_DATA, Run, StageFailed
from clearing.pipeline.runlog import QuietLog

if TYPE_CHECKING:
    from clearing.pipeline.runlog import RunLog
    from clearing.rating.run import RateSummary

__all__ = [
    "NIGHTLY_STAGES",
    "NightlyOptions",
    "claim_inputs",
    "day_outputs",
    "due_files",
    "input_kind",
    "receive_day",
    "register_day",
    "run_backfill",
    "run_nightly",
]

NIGHTLY_STAGES = [
    "collect",
    "claim",
    "validate",
    "receive",
    "rate",
    "retail",
    "outbox",
    "send",
    "settle",
]

_RAP_NAME = re.compile(r"^R[CT][A-Z0-9]{5}[A-Z0-9]{5}[0-9]{5}$")
_ACK_NAME = re.compile(r"^A[CT][A-Z0-9]{5}[A-Z0-9]{5}[0-9]{5}$")


@dataclass(frozen=True)
class Validated:
    """What later stages need of the validate stage (not its event tables: memory)."""

    raps: list[Path]
    returns: list[Path]
    reconciliation: dict[str, int]


class NightlyOptions:
    """Switches of a nightly run.

    Args:
        collect: fetch partners' files first (off for a backfill: the past is in ``work/``).
        send: send what is due at the end.
        settle: write the daily workbook.
    """

    def __init__(self, *, collect: bool = True, send: bool = True, settle: bool = True) -> None:
        self.collect = collect
        self.send = send
        self.settle = settle


def input_kind(path: Path) -> str | None:
    """``tap`` | ``ciber`` | ``rap`` | ``ack`` for a file a partner sent us, else ``None``."""
    from clearing.codecs.ciber import looks_like_ciber
    from clearing.validate.tap import parse_tap_name

    if not path.is_file() or path.name.startswith("."):
        return None
    if parse_tap_name(path.name):
        return "tap"
    if _RAP_NAME.match(path.name):
        return "rap"
    if _ACK_NAME.match(path.name):
        return "ack"
    with path.open("rb") as fh:
        head = fh.read(64)
    return "ciber" if looks_like_ciber(head) else None


def claim_inputs(wd: config.WorkDir, day: date) -> list[Path]:
    """The partner files of ``day``: ``work/<D>/in/``, claimed from ``inbox/`` on first use.

    The first run of a date moves every partner file waiting in ``inbox/`` (TAP, CIBER, RAP,
    ACK; not the mediation CDRs of ``inbox/cdr``) to ``work/<D>/in.partial/`` and then renames
    that folder to ``work/<D>/in/``: a killed claim is finished by the next run, and once a
    date has its inputs, later runs of that date read exactly those (re-runs are repeatable,
    and a file is never processed on two dates).
    """
    day_dir = wd.work(day)
    final = day_dir / "in"
    if not final.exists():
        partial = day_dir / "in.partial"
        partial.mkdir(parents=True, exist_ok=True)
        if wd.inbox.is_dir():
            for p in sorted(wd.inbox.iterdir()):
                if input_kind(p) is not None:
                    p.replace(partial / p.name)
        partial.replace(final)
    return sorted(p for p in final.iterdir() if input_kind(p) is not None)


def day_outputs(wd: config.WorkDir, day: date) -> list[Path]:
    """Every file the nightly run of ``day`` writes in the lake (its ``date=D`` partitions)."""
    return lake.day_files(wd.lake, day)


def _collect(wd: config.WorkDir, run: Run) -> dict[str, Any]:
    from clearing.transport import FetchLedger, collect
    from clearing.transport.settings import load_transport_settings

    settings = load_transport_settings(wd.root)
    if not settings.partners:
        run.mark("collect", "skipped")
        return {"partners": 0}
    ledger = FetchLedger(wd.root)
    fetched = 0
    failed: list[str] = []
    for code in sorted(settings.partners):
        cfg = settings.partner(code)
        try:
            with settings.transport_for(code, wd.root) as transport:
                fetched += len(collect(code, transport, cfg.pattern, wd.inbox, ledger))
        except TransportError as exc:
            failed.append(code)
            run.problem(3, f"collect: {code}: {exc}")
    if failed:
        run.mark("collect", "warning")
    return {"partners": len(settings.partners), "fetched": fetched, "unreachable": failed}


def receive_day(wd: config.WorkDir, day: date) -> tuple[dict[str, int], list[str]]:
    """Partners' RAPs and ACKs among the inputs of ``day`` (the ``receive`` stage).

    A RAP about our TAP-out: its ACK is written to ``out/ack/`` and its returns recorded
    (``returns_in``). An ACK of one of our RAPs: recorded, and the RAP's outbox entry becomes
    ``acknowledged``. Returns the counts and the problems (a file that is neither).
    """
    from clearing.returns import incoming
    from clearing.store import open_store
    from clearing.transport.outbox import Outbox, OutboxState

    files = [p for p in claim_inputs(wd, day) if input_kind(p) in ("rap", "ack")]
    settings = wd.settings()
    counts = {"raps": 0, "acks": 0}
    problems: list[str] = []
    outbox = Outbox(wd.db)
    with open_store(wd.db) as state:
        for path in files:
            try:
                got = incoming.receive(
                    path.read_bytes(), file=path.name, out_dir=wd.out / "ack", day=day, state=state
                )
            except ClearingError as exc:
                problems.append(f"receive: {path.name}: {exc}")
                continue
            if got.kind == "rap":
                counts["raps"] += 1
                continue
            counts["acks"] += 1
            prefix = "RT" if got.test else "RC"
            name = f"{prefix}{settings.home.tadig}{got.sender}{got.rap_fsn:05d}"
            entry = {e.name: e for e in outbox.entries()}.get(name)
            if entry is not None and entry.state == OutboxState.SENT:
                outbox.mark(name, OutboxState.ACKNOWLEDGED)
    return counts, problems


def _receive(wd: config.WorkDir, day: date, run: Run) -> dict[str, Any]:
    counts, problems = receive_day(wd, day)
    for message in problems:
        run.problem(EXIT_DATA, message)
    return dict(counts)


def due_files(wd: config.WorkDir, day: date) -> list[tuple[Path, str, str]]:
    """The files of ``day`` for partners, from the state: ``(path, partner, kind)``.

    RAPs (``rap_out``), CIBER returns (``files.rap_file`` of CIBER inputs), ACKs of partners'
    RAPs (``raps_in.ack_file``), TAP-out / Notifications / CIBER-out (``outbound_files``).
    """
    from clearing.store import open_store

    found: list[tuple[Path, str, str]] = []
    with open_store(wd.db) as store:
        for name, partner in store.register.raps_of(day):
            found.append((wd.out / "rap" / name, partner, "rap"))
        for name in store.register.ciber_returns_of(day):
            found.append((wd.out / "ciber_returns" / name, name.split("_")[2], "ciber_return"))
        for name, partner in store.returns_in.acks_written(day):
            found.append((wd.out / "ack" / name, partner, "ack"))
        for partner, kind, path in store.outbound.files_of(day):
            found.append((Path(path), partner, kind))
    return sorted(found, key=lambda t: t[0].name)


def register_day(wd: config.WorkDir, day: date) -> list[Path]:
    """Put the files of ``day`` in the outbox (the ``outbox`` stage); return their paths.

    Raises:
        LedgerError: a name already registered with other bytes (never sent twice with
            different bytes: the analyst decides).
    """
    from clearing.transport.outbox import Outbox

    outbox = Outbox(wd.db)
    files = due_files(wd, day)
    for path, partner, kind in files:
        outbox.register(path, partner, kind)
    return [p for p, _, _ in files]


def _register(wd: config.WorkDir, day: date, run: Run) -> dict[str, Any]:
    paths = register_day(wd, day)
    run.outputs += paths
    return {"registered": len(paths)}


def _send(wd: config.WorkDir, run: Run) -> dict[str, Any]:
    from clearing.transport.outbox import Outbox
    from clearing.transport.settings import load_transport_settings

    settings = load_transport_settings(wd.root)
    report = Outbox(wd.db).send_due(lambda partner: settings.transport_for(partner, wd.root))
    for name, error in report.failed:
        run.problem(3, f"send: {name}: {error}")
    if report.failed:
        run.mark("send", "warning")
    return {"sent": len(report.sent), "not_sent": len(report.failed)}


def run_nightly(
    workdir: Path,
    day: date,
    *,
    log: RunLog | None = None,
    options: NightlyOptions | None = None,
    kind: str = "nightly",
) -> Run:
    """Run every stage of processing date ``day`` in ``workdir``; return the finished run.

    Raises:
        BusyError: another run holds the work folder.
        ConfigError: no or bad ``clearing.toml`` (checked before anything is done).
    """
    opts = options or NightlyOptions()
    wd = config.WorkDir(workdir)
    wd.settings()  # a config problem stops us before anything is touched
    with WorkdirLock(workdir, f"{kind} {day.isoformat()}"):
        run = Run(workdir, kind, day.isoformat(), NIGHTLY_STAGES, log or QuietLog())
        with contextlib.suppress(StageFailed):
            _stages(wd, day, run, opts)
        _summarise(wd, day, run)
        run.finish()
    return run


def _stages(wd: config.WorkDir, day: date, run: Run, opts: NightlyOptions) -> None:
    from clearing.rating.retail import write_retail
    from clearing.rating.run import rate_day
    from clearing.returns import validate_and_return

    inputs: list[Path] = []

    if opts.collect:
        run.stage("collect", lambda: _collect(wd, run), continue_on=(TransportError,))
    else:
        run.mark("collect", "skipped")

    def claim() -> dict[str, Any]:
        inputs[:] = claim_inputs(wd, day)
        run.inputs += inputs
        kinds = [input_kind(p) for p in inputs]
        return {k: kinds.count(k) for k in ("tap", "ciber", "rap", "ack")}

    run.stage("claim", claim)
    partner_files = [p for p in inputs if input_kind(p) in ("tap", "ciber")]

    def validate() -> dict[str, Any]:
        result = validate_and_return(wd, day, partner_files)
        run.facts_obj["validate"] = Validated(
            list(result.raps),
            [wd.out / "ciber_returns" / n for c in result.ciber for n in c.returns],
            result.reconciliation(),
        )
        for f in result.files:
            if f.fatal:
                run.problem(EXIT_DATA, f"validate: {f.file} rejected (fatal), returned in a RAP")
        for c in result.ciber:
            if c.fatal:
                run.problem(EXIT_DATA, f"validate: {c.file}: batch rejected, see the CIBER return")
        fatal = [f.file for f in result.files if f.fatal] + [
            c.file for c in result.ciber if c.fatal
        ]
        rec = result.reconciliation()
        return {
            "files": len(result.files) + len(result.ciber),
            "events": rec["in"],
            "accepted": rec["accepted"],
            "returned": rec["returned"],
            "duplicate": rec["duplicate"],
            "late": rec["late"],
            "fatal_files": len(fatal),
            "raps": len(result.raps),
        }

    run.stage("validate", validate)
    run.stage("receive", lambda: _receive(wd, day, run))

    def rate() -> dict[str, Any]:
        summary = rate_day(wd.root, day)
        run.facts_obj["rate"] = summary
        if not summary.identity_ok:
            run.problem(EXIT_DATA, "rate: records in ≠ rated + unrated + quarantined")
        return {
            "cdr_records": summary.records_in,
            "rated": summary.rated,
            "unrated": summary.unrated,
            "quarantined": summary.quarantined,
            "outbound_files": len(summary.outbound),
            "partner_events_checked": summary.partner_events,
            "iot_breaches": summary.iot_breaches,
        }

    run.stage("rate", rate)

    def retail() -> dict[str, Any]:
        lines, _summary = write_retail(wd.root, day)
        import pyarrow.parquet as pq

        return {"bill_lines": pq.ParquetFile(lines).metadata.num_rows}

    run.stage("retail", retail)
    run.stage("outbox", lambda: _register(wd, day, run))
    if opts.send:
        run.stage("send", lambda: _send(wd, run), continue_on=(TransportError, ConfigError))
    else:
        run.mark("send", "skipped")

    def settle() -> dict[str, Any]:
        from clearing.settle import daily_workbook

        # no run id inside: a re-run of the date must give the same bytes (the manifest
        # names the workbook and its hash instead)
        path = daily_workbook(wd.root, day)
        run.outputs.append(path)
        run.facts["workbook"] = os.path.relpath(path, wd.root)
        return {"workbook": path.name}

    if opts.settle:
        run.stage("settle", settle)
    else:
        run.mark("settle", "skipped")


def _summarise(wd: config.WorkDir, day: date, run: Run) -> None:
    """The run's reconciliation (partner events and visitor CDRs together) and outputs."""
    validated: Validated | None = run.facts_obj.get("validate")
    rated: RateSummary | None = run.facts_obj.get("rate")
    rec = dict.fromkeys(("in", "accepted", "returned", "duplicate", "late", "quarantined"), 0)
    if validated is not None:
        for k, v in validated.reconciliation.items():
            if k in rec:
                rec[k] += v
        run.outputs += validated.raps + validated.returns
    if rated is not None:
        # visitors' CDRs: rated = accepted; held by the reader or not rateable = quarantined
        rec["in"] += rated.records_in
        rec["accepted"] += rated.rated
        rec["quarantined"] += rated.quarantined + rated.unrated
        run.outputs += [f.path for f in rated.outbound]
        run.facts["money"] = {
            "receivable": [
                {"partner": p, "currency": c, "scale": s, "amount": a}
                for p, c, s, a in rated.receivable
            ],
            "payable": [
                {"partner": p, "currency": c, "scale": s, "amount": a}
                for p, c, s, a in rated.payable
            ],
        }
    rec["difference"] = rec["in"] - sum(
        rec[k] for k in ("accepted", "returned", "duplicate", "late", "quarantined")
    )
    run.reconciliation = rec
    if rec["difference"] != 0:
        run.problem(EXIT_DATA, f"reconciliation difference {rec['difference']} (must be 0)")
    run.outputs += day_outputs(wd, day)


def backfill_days(start: date, end: date) -> list[date]:
    """Every date from ``start`` to ``end`` inclusive (``ConfigError`` if reversed)."""
    if end < start:
        msg = f"--to {end} is before --from {start}"
        raise ConfigError(msg)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def run_backfill(
    workdir: Path,
    start: date,
    end: date,
    *,
    log: RunLog | None = None,
    send: bool = True,
) -> list[Run]:
    """Run the nightly stages (no collect) for each date of ``start``..``end`` in order."""
    runs: list[Run] = []
    for day in backfill_days(start, end):
        runs.append(
            run_nightly(
                workdir,
                day,
                log=log,
                options=NightlyOptions(collect=False, send=send),
                kind="backfill",
            )
        )
    return runs
