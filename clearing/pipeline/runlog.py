"""How a run talks while it works: JSON lines for machines, a rich progress bar for people.

``RunLog`` is the interface the pipeline calls; :class:`JsonLog` writes one JSON object per
line to a stream (``--json``: Airflow, cron logs, log shippers), :class:`ConsoleLog` shows a
progress bar over the stages on the terminal (stderr) and one line per finished stage,
:class:`QuietLog` says nothing (library use, tests).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol

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
        """A notable event at ``level`` (info, warning, error) with its ``fields``."""

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
    """One JSON object per line: ``{"ts", "level", "run_id", "event", ...}``."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.run_id = ""

    def _write(self, level: str, event: str, **fields: Any) -> None:
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
        self._write("info", "run_start", stages=stages)

    def stage_start(self, stage: str) -> None:
        """Write ``stage_start``."""
        self._write("info", "stage_start", stage=stage)

    def stage_end(self, stage: str, status: str, seconds: float, detail: dict[str, Any]) -> None:
        """Write ``stage_end`` with the stage's status, seconds and detail (error if failed)."""
        level = "error" if status == "failed" else "info"
        self._write(level, "stage_end", stage=stage, status=status, seconds=seconds, **detail)

    def event(self, level: str, message: str, **fields: Any) -> None:
        """Write a ``message`` line at ``level``."""
        self._write(level, "message", message=message, **fields)

    def end(self, exit_code: int) -> None:
        """Write ``run_end`` (error unless the exit code is 0)."""
        self._write("info" if exit_code == 0 else "error", "run_end", exit_code=exit_code)


class ConsoleLog:
    """A progress bar over the stages (stderr, only on a terminal) and a line per stage."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def begin(self, run_id: str, stages: list[str]) -> None:
        """Print the run id; on a terminal, start the progress bar over ``stages``."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console.print(f"run {run_id}")
        if self.console.is_terminal:
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
        self.console.print(f"  {mark} {stage:<10} {seconds:7.2f} s  {text}")

    def event(self, level: str, message: str, **fields: Any) -> None:
        """Print ``level: message``."""
        self.console.print(f"  {level}: {message}")

    def end(self, exit_code: int) -> None:
        """Stop the progress bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
