"""The nightly run of one processing date, stage by stage, and the backfill of a range of dates.

Stages (each also a CLI verb of its own)::

    collect   partners' files → inbox/                     (transport, fetch ledger)
    claim     inbox/ → work/<D>/in/                         (the day's inputs, moved once)
    validate  decode + TD.57 / CIBER rules + duplicates     → lake/events_in, RAPs, returns
    receive   partners' RAPs (→ ACK) and ACKs (→ outbox)    → state, out/ack
    rate      visitors' CDRs → lake/rated_visitors, IOT check of partner events (rating),
              then TAP-out / CIBER-out from the rated rows (outbound)
    retail    our subscribers' usage per sub-number          → lake/retail
    outbox    register the day's files for sending (same name never with other bytes)
    send      send what is due                              (transport)
    settle    the daily operations workbook                 → out/settlement/daily

Every stage is idempotent: its outputs for the date are replaced whole (lake partitions,
out files written atomically with bytes that depend only on the inputs and the date, DuckDB
rows of the date deleted first). A run killed at any point and started again therefore ends in
the same state as an uninterrupted run. One run at a time per work folder (:mod:`lock`).

The run is a list of :class:`~clearing.pipeline.steps.Step` (:func:`nightly_steps`), each one
or more stages of the packages (``run(ctx) -> StepResult``, :mod:`clearing.stage`), and the
loop of :func:`~clearing.pipeline.steps.run_steps`. ``clearing.toml`` is read once per run.

Exit codes: 0 ok, 1 data problem (a fatal file, a reconciliation difference), 2 config problem
(nothing or part done), 3 transport problem (some partner unreachable; the rest was done).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from clearing import config, lake
from clearing._io import private_files
from clearing.errors import ConfigError, TransportError
from clearing.identity import Identity
from clearing.ingest import (
    claim_inputs,
    day_fates,
    first_reported,
    input_kind,
    refused_since,
)
from clearing.names import printable_name
from clearing.pipeline.archive import refuse_archived
from clearing.pipeline.checks import check_settings
from clearing.pipeline.lock import WorkdirLock
from clearing.pipeline.run import EXIT_DATA, Run
from clearing.pipeline.runlog import QuietLog
from clearing.pipeline.steps import Step, run_steps
from clearing.returns.stage import receive_day
from clearing.stage import StageContext
from clearing.transport.settings import Transports
from clearing.transport.stage import due_files, register_day

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.pipeline.runlog import RunLog
    from clearing.rating.run import RateSummary
    from clearing.stage import StepResult

__all__ = [
    "NIGHTLY_STAGES",
    "RATE_FIGURES",
    "NightlyOptions",
    "claim_inputs",
    "day_outputs",
    "due_files",
    "input_kind",
    "nightly_steps",
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

#: The figures of the ``rate`` step (rating, then outbound) in the manifest's order.
RATE_FIGURES = (
    "cdr_records",
    "rated",
    "unrated",
    "held",
    "quarantined",
    "recycled",
    "resubmitted",
    "default_rated",
    "outbound_files",
    "partner_events_checked",
    "iot_breaches",
    "payables_held",
    "payables_released",
    "iot_held",
)


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


def nightly_steps() -> list[Step]:
    """The steps of a nightly run, in order (their names are :data:`NIGHTLY_STAGES`)."""
    from clearing.ingest import stage as ingest
    from clearing.outbound import stage as outbound
    from clearing.rating import stage as rating
    from clearing.returns import stage as returns
    from clearing.settle import stage as settle
    from clearing.transport import stage as transport

    return [
        Step("collect", (ingest.collect,), continue_on=(TransportError,), switch="collect"),
        Step("claim", (ingest.claim,)),
        Step("validate", (returns.validate,)),
        Step("receive", (returns.receive,)),
        Step("rate", (rating.rate, outbound.outbound), figures=RATE_FIGURES),
        Step("retail", (rating.retail,)),
        Step("outbox", (transport.outbox,)),
        Step("send", (transport.send,), continue_on=(TransportError, ConfigError), switch="send"),
        Step("settle", (settle.daily,), switch="settle"),
    ]


def day_outputs(wd: config.WorkDir, day: date) -> list[Path]:
    """Every file the nightly run of ``day`` writes in the lake (its ``date=D`` partitions)."""
    return lake.day_files(wd.lake, day)


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
    settings = wd.settings()  # a config problem stops us before anything is touched
    check_settings(wd, settings)
    refuse_archived(wd.root, day)
    with private_files(*settings.output.modes), WorkdirLock(workdir, f"{kind} {day.isoformat()}"):
        run = Run(workdir, kind, day.isoformat(), NIGHTLY_STAGES, log or QuietLog())
        ctx = StageContext(
            wd,
            settings,
            day=day,
            collect=opts.collect,
            send=opts.send,
            settle=opts.settle,
            run_id=run.run_id,
            progress=run.log.event,
            sources=Transports(settings.transport),
        )
        results = run_steps(run, nightly_steps(), ctx)
        _summarise(wd, day, run, results)
        run.finish()
    return run


def _summarise(
    wd: config.WorkDir, day: date, run: Run, results: dict[str, list[StepResult]]
) -> None:
    """The run's reconciliation (partner events and visitor CDRs together) and outputs."""
    rec = Identity()
    if "validate" in results:
        rec += Identity.from_dict(results["validate"][0].value)
    if "rate" in results:
        rated: RateSummary = results["rate"][0].value
        # visitors' CDRs: rated = accepted; set aside by the reader or not rateable (no
        # partner) = quarantined; waiting for their partner's reference data = held; already
        # seen in another file or on another day = duplicate
        rec += Identity(
            in_=rated.records_in,
            accepted=rated.rated,
            duplicate=rated.duplicates,
            quarantined=rated.quarantined + rated.unrated,
            held=rated.held,
        )
        # partner events accepted by validate whose payable cannot be converted: held
        rec += Identity(accepted=-rated.payable_held, held=rated.payable_held)
        run.facts["money"] = {
            "receivable": [
                {"partner": p, "currency": c, "scale": s, "amount": a}
                for p, c, s, a in rated.receivable
            ],
            "payable": [
                {"partner": p, "currency": c, "scale": s, "amount": a}
                for p, c, s, a in rated.payable
            ],
            # sum of per-event conversions minus the total converted once (reports/README.md)
            "payable_rounding": [
                {"partner": p, "currency": c, "scale": s, "amount": a}
                for p, c, s, a in rated.payable_rounding
            ],
        }
        if rated.replayed:
            # a replay of a sent day: the receivable is what was sent; the change is a delta
            run.facts["money"]["rerate_deltas"] = rated.deltas
            run.facts["money"]["sent_identity"] = [
                {**t, "difference": t["rerated"] - t["sent"] - t["deltas"]}
                for t in rated.replay_totals
            ]
    run.reconciliation = rec.as_dict()
    if rec.difference != 0:
        run.problem(EXIT_DATA, f"reconciliation difference {rec.difference} (must be 0)")
    _entries(wd, day, run)
    run.outputs += day_outputs(wd, day)


def _entries(wd: config.WorkDir, day: date, run: Run) -> None:
    """Every delivered entry's fate in the manifest; each one newly set aside an anomaly (1).

    A quarantined or refused entry is reported once: seen again on a later date with the
    same reason, or refused on the date it was last seen (a file still on the server), it is
    listed, not reported again.
    """
    fates = day_fates(wd, day)
    run.facts["entries"] = [f.as_dict() for f in fates]
    for f in fates:
        if f.fate not in ("quarantined", "refused"):
            continue
        if f.fate == "refused" and refused_since(wd, day, f.name, f.partner or "") is not None:
            continue
        if first_reported(wd, day, f) is not None:
            continue
        where = f.path or "left on the server"
        run.problem(EXIT_DATA, f"{f.fate} `{printable_name(f.name)}` ({f.reason}): {where}")


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
