"""How a run talks while it works: JSON lines for machines, a rich progress bar for people.

``RunLog`` is the interface the pipeline calls; :class:`JsonLog` writes one JSON object per
line (``--json``: Airflow, cron logs, log shippers), :class:`ConsoleLog` shows a progress bar
over the stages on the terminal (stderr) and one line per finished stage, :class:`QuietLog`
says nothing (library use, tests). Both talking ones go through the package's one log handler
(:mod:`clearing.log`) unless given a stream of their own. A problem's level is the severity
word of its exit code (:attr:`clearing.errors.ExitCode.severity`).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

from clearing import log
from clearing.errors import ExitCode

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["ConsoleLog", "JsonLog", "QuietLog", "RunLog"]


class RunLog(Protocol):
    """What a run reports: stages starting and ending, and notable events."""

    def begin(self, run_id: str, stages: list[str]) -> None:
        """Run ``run_id`` starts; it will run ``stages`` in this order."""

    def stage_start(self, stage: str) -> None:
        """Stage ``stage`` starts."""

    def stage_end(self, stage: str, status: str, seconds: float, detail: dict[str, Any]) -> None:
        """Stage ``stage`` ended with ``status`` after ``seconds``; ``detail``: its counts."""

    def event(self, level: str, message: str, **fields: Any) -> None:
        """A notable event at ``level`` (``info`` or a severity word) with its ``fields``."""

    def end(self, exit_code: int) -> None:
        """The run ends with ``exit_code``."""


class QuietLog:
    """Says nothing."""

    def begin(self, run_id: str, stages: list[str]) -> None:
        """Say nothing."""

    def stage_start(self, stage: str) -> None:
        """Say nothing."""

    def stage_end(self, stage: str, status: str, seconds: float, detail: dict[str, Any]) -> None:
        """Say nothing."""

    def event(self, level: str, message: str, **fields: Any) -> None:
        """Say nothing."""

    def end(self, exit_code: int) -> None:
        """Say nothing."""


class JsonLog:
    """One JSON object per line: ``{"ts", "level", "run_id", "event", ...}``.

    Without a ``stream`` the lines go through the package's one log handler
    (:func:`clearing.log.configure`, JSON on stdout: the CLI's ``--json``); with one, they are
    written to it directly (library use, tests). ``level`` is ``info`` for progress and the
    severity word (:attr:`clearing.errors.ExitCode.severity`) for a problem and for the end
    of the run.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self.run_id = ""
        if stream is None and not (log.configured() and log.json_mode()):
            log.configure(json_lines=True)

    def _write(self, level: str, event: str, **fields: Any) -> None:
        if self.stream is None:
            # the run id is bound to every line of the log while the run goes on (the
            # transport's "fetched" / "sent" lines too)
            message = str(fields.pop("message", ""))
            log.emit(level, message, event=event, name="run", **fields)
            return
        record = {
            "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": level,
            "run_id": self.run_id,
            "event": event,
            **fields,
        }
        self.stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()

    def begin(self, run_id: str, stages: list[str]) -> None:
        """Write ``run_start`` (the run id is on every later line)."""
        self.run_id = run_id
        if self.stream is None:
            log.bind(run_id=run_id)
        self._write("info", "run_start", stages=stages)

    def stage_start(self, stage: str) -> None:
        """Write ``stage_start``."""
        self._write("info", "stage_start", stage=stage)

    def stage_end(self, stage: str, status: str, seconds: float, detail: dict[str, Any]) -> None:
        """Write ``stage_end`` with the stage's status, seconds and detail.

        A failed stage's line is at the run's severity so far (its problem line says more).
        """
        self._write("info", "stage_end", stage=stage, status=status, seconds=seconds, **detail)

    def event(self, level: str, message: str, **fields: Any) -> None:
        """Write a ``message`` line at ``level`` (``info`` or a severity word)."""
        self._write(_word(level), "message", message=message, **fields)

    def end(self, exit_code: int) -> None:
        """Write ``run_end``, at the severity of the exit code (``ok`` when it is 0)."""
        self._write(ExitCode(exit_code).severity, "run_end", exit_code=exit_code)
        if self.stream is None:
            log.unbind("run_id")


def _word(level: str) -> str:
    """A level word of the one vocabulary (``warning`` of a stage's note is ``data``)."""
    return {"warning": "data", "error": "crash"}.get(level, level)


class ConsoleLog:
    """A progress bar over the stages (stderr, only on a terminal) and a line per stage.

    Without a ``stream`` the lines go through the package's one log handler (text on stderr,
    :func:`clearing.log.configure`; ``clearing -q`` keeps only the problems); with one, they
    are printed to it (``clearing demo`` prints to stdout).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console

        self.stream = stream
        if stream is None and not log.configured():
            log.configure()
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def _say(self, level: str, text: str, *, indent: bool = True) -> None:
        if self.stream is None:
            log.emit(level, text, name="run", indent=indent)
            return
        line = text if level in ("debug", "info", "ok") else f"{level}: {text}"
        self.console.print(f"  {line}" if indent else line)

    def begin(self, run_id: str, stages: list[str]) -> None:
        """Print the run id; on a terminal, start the progress bar over ``stages``."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._say("info", f"run {run_id}", indent=False)
        if self.console.is_terminal and (self.stream is not None or log.verbosity() >= 0):
            self._progress = Progress(
                TextColumn("{task.description:<12}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} stages"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=len(stages))

    def stage_start(self, stage: str) -> None:
        """Show ``stage`` on the progress bar."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=stage)

    def stage_end(self, stage: str, status: str, seconds: float, detail: dict[str, Any]) -> None:
        """Advance the bar and print the stage's line: mark, name, seconds, counts."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
        text = ", ".join(f"{k} {v}" for k, v in detail.items() if not isinstance(v, list | dict))
        mark = {"ok": "ok", "skipped": "--", "failed": "!!", "warning": "~~"}.get(status, status)
        self._say("info", f"{mark} {stage:<10} {seconds:7.2f} s  {text}")

    def event(self, level: str, message: str, **fields: Any) -> None:
        """Print ``<severity>: message`` (a problem) or the message (progress)."""
        self._say(_word(level), message)

    def end(self, exit_code: int) -> None:
        """Stop the progress bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
