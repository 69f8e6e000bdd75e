"""The stage contract: a stage's input (:class:`StageContext`) and result (:class:`StepResult`).

Every stage package has a ``stage.py`` with its stages (``clearing/ingest/stage.py``,
``clearing/validate/stage.py``, ``clearing/returns/stage.py``, ``clearing/rating/stage.py``,
``clearing/outbound/stage.py``, ``clearing/transport/stage.py``, ``clearing/settle/stage.py``).
A stage is an object with a ``name`` and ``run(ctx) -> StepResult`` (the :class:`Stage`
protocol); :func:`stage` makes one of a function. The runs of :mod:`clearing.pipeline` are a
list of steps and a loop: the loop holds the lock, writes the manifest after each step, sends
progress events and works out the exit code; a stage only does its work and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from clearing.errors import ClearingError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from contextlib import AbstractContextManager
    from datetime import date
    from pathlib import Path

    from clearing.config import Settings, WorkDir

__all__ = [
    "EXIT_DATA",
    "Remote",
    "Source",
    "Sources",
    "Stage",
    "StageContext",
    "StageFunction",
    "StepResult",
    "stage",
]

#: The exit-code class of a data problem (a fatal file, a reconciliation difference).
EXIT_DATA = ClearingError.exit_code


def _quiet(level: str, message: str) -> None:
    """The default progress callback: nothing."""


class Remote(Protocol):
    """One file in a partner's outbound folder, as a :class:`Source` lists it."""

    @property
    def name(self) -> str:
        """The file name (no folder)."""
        ...

    @property
    def size(self) -> int:
        """Its size in bytes."""
        ...

    @property
    def mtime(self) -> int:
        """Its modification time, seconds since the epoch (as the server reports it)."""
        ...

    @property
    def problem(self) -> str | None:
        """Why the entry cannot be fetched at all (never retried), else None."""
        ...


class Source(Protocol):
    """A connection to one partner's files (the SFTP and folder transports are sources)."""

    @property
    def where(self) -> str:
        """Where the files are, for messages."""
        ...

    def poll(self, pattern: str) -> Iterable[Remote]:
        """The files matching ``pattern``."""
        ...

    def fetch(self, name: str, local_dir: Path, *, release: bool = True) -> Path:
        """Download ``name`` into ``local_dir``; return the local path."""
        ...

    def release(self, name: str) -> None:
        """The after-fetch action on the server (archive / delete / nothing)."""
        ...


class _Pattern(Protocol):
    @property
    def pattern(self) -> str: ...


class Sources(Protocol):
    """The partners' connections of a work folder (``transport.settings.Transports``)."""

    @property
    def partners(self) -> Mapping[str, object]:
        """The partners that have a connection, by code."""
        ...

    def partner(self, partner: str) -> _Pattern:
        """The settings of ``partner`` (its file-name ``pattern``)."""
        ...

    def transport_for(self, partner: str, base_dir: Path = ...) -> AbstractContextManager[Source]:
        """A new connection to ``partner``; relative paths resolved against ``base_dir``."""
        ...


@dataclass(frozen=True)
class StageContext:
    """What every stage of one run is given.

    Attributes:
        workdir: the work folder.
        settings: ``clearing.toml``, loaded once per run.
        day: the processing date (nightly and backfill runs).
        period: the settlement month ``YYYY-MM`` (monthly runs).
        collect: fetch partners' files (off for a backfill).
        send: send what is due.
        settle: write the settlement workbook.
        run_id: the run's id (the monthly workbook names the run behind it).
        progress: ``progress(level, message)``: a line for the run's log.
        sources: the partners' connections, for the ``collect`` stage (the pipeline builds
            them from ``[transport]``; ingest sits below transport and opens none itself).
    """

    workdir: WorkDir
    settings: Settings
    day: date | None = None
    period: str | None = None
    collect: bool = True
    send: bool = True
    settle: bool = True
    run_id: str | None = None
    progress: Callable[[str, str], None] = _quiet
    sources: Sources | None = None

    @property
    def date(self) -> date:
        """The processing date; ``ConfigError`` for a run without one."""
        if self.day is None:
            msg = "this stage needs a processing date (--date)"
            raise ConfigError(msg)
        return self.day

    @property
    def month(self) -> str:
        """The settlement period ``YYYY-MM``; ``ConfigError`` for a run without one."""
        if self.period is None:
            msg = "this stage needs a settlement period (--period)"
            raise ConfigError(msg)
        return self.period


@dataclass
class StepResult:
    """What a stage did, as the run's manifest records it.

    Attributes:
        name: the stage's name.
        detail: the stage's figures, in the order the manifest lists them (``detail``).
        status: ``ok`` | ``warning`` (done, with problems of a partner) | ``skipped``.
        inputs: the files the stage took in (listed in the manifest with their hashes).
        outputs: the files the stage wrote.
        problems: what went wrong without stopping the stage, one line each.
        warnings: what the run lists among its anomalies without changing its exit code.
        exit_code: the exit-code class of ``problems`` (1 data, 2 config, 3 transport).
        facts: entries for the top of the manifest (e.g. ``workbook``).
        value: the stage's own result, for the run's summary (not in the manifest).
    """

    name: str
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exit_code: int = EXIT_DATA
    facts: dict[str, Any] = field(default_factory=dict)
    value: Any = None


@runtime_checkable
class Stage(Protocol):
    """A stage: a name and ``run(ctx) -> StepResult``."""

    @property
    def name(self) -> str:
        """The stage's name (the step's, when the step has one stage)."""
        ...

    def run(self, ctx: StageContext) -> StepResult:
        """Do the stage's work for ``ctx``; raise a :class:`ClearingError` to stop the run."""
        ...


@dataclass(frozen=True)
class StageFunction:
    """A :class:`Stage` made of a function (see :func:`stage`)."""

    name: str
    function: Callable[[StageContext], StepResult]

    def run(self, ctx: StageContext) -> StepResult:
        """Run the function."""
        return self.function(ctx)


def stage(name: str) -> Callable[[Callable[[StageContext], StepResult]], StageFunction]:
    """Decorator: the function ``f(ctx) -> StepResult`` as the stage ``name``."""

    def make(function: Callable[[StageContext], StepResult]) -> StageFunction:
        return StageFunction(name, function)

    return make
