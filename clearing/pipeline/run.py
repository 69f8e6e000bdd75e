"""A run of the pipeline: its id, its stages with their times, and its manifest.

Every nightly, monthly or backfill run gets a folder ``<workdir>/runs/<run-id>/`` with
``manifest.json``: what went in and what came out (paths relative to the work folder, SHA-256,
sizes), each stage's status, seconds and figures, the record ``reconciliation`` and the exit
code, and the run's ``status``: the severity word of the exit code
(:attr:`clearing.errors.ExitCode.severity`: ``ok``, ``data``, ``config``, ``transport``,
``crash``), the same word as the run summary's badge, the ``level`` of the ``run_end`` JSON line
and the Airflow notes; a stage that stopped the run is named in ``failed_stage``. The manifest
is rewritten after every stage, so a run that was killed leaves a manifest saying
``"status": "running"`` and where it stopped; the next run of the same date starts over
and ends in the same state (every stage is idempotent).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clearing import __version__
from clearing._io import write_atomic
from clearing._memory import release_memory
from clearing.config import config_sha256
from clearing.errors import ClearingError, ExitCode, FaultError, fault_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from clearing.pipeline.runlog import RunLog

__all__ = ["EXIT_CONFIG", "EXIT_DATA", "EXIT_OK", "EXIT_TRANSPORT", "Run", "StageFailed", "sha256"]

# the names the pipeline's modules use for the members of :class:`clearing.errors.ExitCode`
EXIT_OK: int = ExitCode.OK
EXIT_DATA: int = ExitCode.DATA
EXIT_CONFIG: int = ExitCode.CONFIG
EXIT_TRANSPORT: int = ExitCode.TRANSPORT


def _severity(exit_code: int) -> str:
    """The severity word of an exit code: ok, data, config, transport, crash."""
    return ExitCode(exit_code).severity


class StageFailed(Exception):
    """A stage failed in a way that stops the run (config problem or a bug)."""

    def __init__(self, stage: str, exit_code: int) -> None:
        super().__init__(stage)
        self.stage = stage
        self.exit_code = exit_code


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass
class StageRecord:
    """One stage of a run, as the manifest lists it."""

    name: str
    status: str = "pending"  # pending | running | ok | warning | skipped | failed
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Run:
    """Book-keeping of one run: stages, problems, exit code, inputs, outputs, manifest.

    Args:
        workdir: the work folder (``runs/`` is created in it).
        kind: ``nightly`` | ``monthly`` | ``backfill``.
        label: what is run (the date or period), part of the run id.
        stages: the stage names in order.
        log: where progress goes.
    """

    def __init__(
        self, workdir: Path, kind: str, label: str, stages: list[str], log: RunLog
    ) -> None:
        self.workdir = workdir
        self.kind = kind
        self.label = label
        self.log = log
        self.started = datetime.now(UTC)
        stamp = self.started.strftime("%Y%m%dT%H%M%SZ")
        base = f"{kind}-{label}-{stamp}"
        run_id, n = base, 1
        while (workdir / "runs" / run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        self.run_id = run_id
        self.dir = workdir / "runs" / run_id
        self.dir.mkdir(parents=True)
        self.stages = {name: StageRecord(name) for name in stages}
        self.problems: list[str] = []
        self.levels: list[str] = []  # the severity word of each problem
        self.warnings: list[str] = []  # anomalies that leave the exit code alone
        self.exit_code = EXIT_OK
        self.status = "running"
        self.inputs: list[Path] = []
        self.outputs: list[Path] = []
        self.reconciliation: dict[str, int] | None = None
        self.facts: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        log.begin(run_id, stages)
        self.write_manifest()

    # -- outcome ---------------------------------------------------------------------------

    def problem(self, exit_code: int, message: str) -> None:
        """Note a problem; the run's exit code is the most serious one seen (4 > 2 > 3 > 1).

        The run's log says it at the problem's severity (``data``, ``transport``, ...).
        """
        self.problems.append(message)
        self.levels.append(_severity(exit_code))
        rank = {EXIT_OK: 0, EXIT_DATA: 1, EXIT_TRANSPORT: 2, EXIT_CONFIG: 3, ExitCode.INTERNAL: 4}
        if rank.get(exit_code, 1) > rank.get(self.exit_code, 1):
            self.exit_code = exit_code
        self.log.event(_severity(exit_code), message)

    def warning(self, message: str) -> None:
        """Note a warning: one of the run's anomalies, the exit code unchanged.

        Its severity word is ``warning`` (e.g. a prepaid card's balance at a warning level).
        """
        self.warnings.append(message)
        self.log.event("warning", message)

    def stage(
        self,
        name: str,
        action: Callable[[], dict[str, Any] | None],
        *,
        continue_on: tuple[type[ClearingError], ...] = (),
    ) -> bool:
        """Run one stage; return whether it succeeded.

        ``action`` returns the stage's figures (for the manifest). An error of a type in
        ``continue_on`` is noted and the run goes on (e.g. a partner's SFTP server is down:
        the other partners' files are still processed); any other error stops the run with
        :class:`StageFailed` after the manifest says what happened.
        """
        rec = self.stages[name]
        rec.status = "running"
        self.log.stage_start(name)
        t0 = time.perf_counter()
        try:
            try:
                detail = action() or {}
            except Exception as exc:
                # disk full, read-only, permission denied: a config problem with the fix
                fault = fault_of(exc)
                if fault is None or fault is exc:
                    raise
                raise fault from exc
        except ClearingError as exc:
            rec.seconds = round(time.perf_counter() - t0, 3)
            rec.status = "failed"
            rec.error = str(exc)
            code = exc.exit_code if exc.exit_code in (EXIT_CONFIG, EXIT_TRANSPORT) else EXIT_DATA
            self.problem(code, f"{name}: {exc}")
            self.log.stage_end(name, rec.status, rec.seconds, {})
            if isinstance(exc, continue_on) and not isinstance(exc, FaultError):
                self.write_manifest()
                return False
            self.status = _severity(self.exit_code)
            self.facts["failed_stage"] = name
            self._write_manifest_anyway()
            raise StageFailed(name, code) from exc
        except Exception as exc:
            rec.seconds = round(time.perf_counter() - t0, 3)
            rec.status = "failed"
            rec.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            # a bug: the command exits 4 (clearing.cli.main), and the manifest says so
            self.problems.append(f"{name}: internal error: {rec.error}")
            self.levels.append(_severity(ExitCode.INTERNAL))
            self.exit_code = ExitCode.INTERNAL
            self.status = _severity(self.exit_code)
            self.facts["failed_stage"] = name
            self.log.stage_end(name, rec.status, rec.seconds, {})
            self._write_manifest_anyway()
            self._summarize_anyway()
            raise
        release_memory()
        rec.seconds = round(time.perf_counter() - t0, 3)
        rec.detail = detail
        if rec.status == "running":
            rec.status = "ok"
        self.log.stage_end(name, rec.status, rec.seconds, detail)
        try:
            self.write_manifest()
        except Exception as exc:
            fault = fault_of(exc)
            if fault is None:
                raise
            # the stage's work is done, but the disk refuses the manifest: the run stops here
            rec.status, rec.error = "failed", str(fault)
            self.problem(EXIT_CONFIG, f"{name}: {fault}")
            self.status = _severity(self.exit_code)
            self.facts["failed_stage"] = name
            self._write_manifest_anyway()
            raise StageFailed(name, EXIT_CONFIG) from exc
        return True

    def mark(self, name: str, status: str) -> None:
        """Set a stage's status from inside it (``skipped``, ``warning``)."""
        self.stages[name].status = status

    def finish(self) -> int:
        """Close the run (status: the severity word of its exit code); return the exit code."""
        stopped = "failed_stage" in self.facts
        self.status = _severity(self.exit_code)
        if stopped:
            self._write_manifest_anyway()
        else:
            self.write_manifest()
        self.log.end(self.exit_code)
        return self.exit_code

    # -- manifest --------------------------------------------------------------------------

    def _files(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for p in paths:
            if not p.is_file():
                continue
            rel = os.path.relpath(p, self.workdir)
            out[rel] = {"path": rel, "bytes": p.stat().st_size, "sha256": sha256(p)}
        return [out[k] for k in sorted(out)]

    def manifest(self, *, hashes: bool = True) -> dict[str, Any]:
        """The manifest as a dict (what ``manifest.json`` holds)."""
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "label": self.label,
            "status": self.status,
            "exit_code": self.exit_code,
            "started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(time.perf_counter() - self._t0, 3),
            "software": {
                "clearing": __version__,
                "python": platform.python_version(),
                "host": platform.node(),
            },
            "config_sha256": config_sha256(self.workdir),
            "stages": [
                {
                    "name": s.name,
                    "status": s.status,
                    "seconds": s.seconds,
                    **({"error": s.error} if s.error else {}),
                    **({"detail": s.detail} if s.detail else {}),
                }
                for s in self.stages.values()
            ],
            "problems": self.problems,
            **({"warnings": self.warnings} if self.warnings else {}),
            "reconciliation": self.reconciliation,
            **self.facts,
            "inputs": self._files(self.inputs) if hashes else [],
            "outputs": self._files(self.outputs) if hashes else [],
        }

    def _write_manifest_anyway(self) -> None:
        """Write the manifest of a failed stage; a disk that refuses it too is noted only."""
        try:
            self.write_manifest()
        except Exception as exc:
            if fault_of(exc) is None:
                raise
            # the disk refuses the manifest too: it keeps saying where the run was; the
            # error (exit 2) says why
            self.log.event("config", f"manifest not written: {fault_of(exc)}")

    def _summarize_anyway(self) -> None:
        """Write the run summary of a crashed run (badge ``crash``), if it can be written.

        The command exits 4 with the traceback; the summary tells the team the same word.
        """
        with contextlib.suppress(Exception):
            from clearing.pipeline.summary import summary_of, write_summaries

            write_summaries(self, summary_of(self))

    def write_manifest(self) -> Path:
        """Write ``runs/<run-id>/manifest.json`` atomically; return its path.

        While the run is going on, inputs and outputs are listed at the end only (hashing a
        day's lake after every stage would cost time for nothing).
        """
        done = self.status != "running"
        text = json.dumps(self.manifest(hashes=done), indent=2, ensure_ascii=False, default=str)
        path = self.dir / "manifest.json"
        write_atomic(path, text + "\n")
        return path
