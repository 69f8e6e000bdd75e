"""What every command module of the CLI shares: the options, the error handler, reading a file.

The options are declared once here (same flags, same help everywhere); the work folder is
``--workdir`` / ``-w`` or the ``CLEARING_WORKDIR`` environment variable in every command.
:func:`handles_errors` is the one place where the package's error tree becomes an exit code
(:class:`clearing.errors.ExitCode`) and one line on stderr (with ``--json``: one JSON line on
stdout, ``level`` the exit code's severity word); ``--debug`` re-raises instead. A command
with ``--json`` switches the package's log (:mod:`clearing.log`) to JSON lines on stdout before
it starts, so that every line on stdout is JSON.
It is also the one place where a command takes the work folder's lock
(:class:`clearing.pipeline.lock.WorkdirLock`): exclusive, or shared for a command marked
:func:`reads_workdir`; a busy folder is exit code 2 naming the holder. A file-system fault
(disk full, read-only, permission denied) is exit code 2 with the path and the fix.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from clearing import log
from clearing._io import DIR_MODE, FILE_MODE, private_files
from clearing.errors import ClearingError, ConfigError, ExitCode, fault_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = [
    "PARTNER_HELP",
    "RATES_HELP",
    "REASON_HELP",
    "DateOpt",
    "DebugOpt",
    "JsonOpt",
    "OptionalDateOpt",
    "OptionalWorkDirOpt",
    "PartnerOpt",
    "PartnersOpt",
    "PeriodOpt",
    "RatesOpt",
    "ReasonOpt",
    "WorkDirOpt",
    "day_or_today",
    "examples",
    "handles_errors",
    "lock_mode",
    "not_found",
    "parse_date",
    "parse_period",
    "read_input",
    "reads_workdir",
    "reads_workdir_unless",
]

P = ParamSpec("P")
R = TypeVar("R")

WORKDIR_ENV = "CLEARING_WORKDIR"
_WORKDIR_HELP = "work folder (clearing.toml, inbox/, state, lake/, out/)"
_DATE_HELP = "processing date YYYY-MM-DD"

WorkDirOpt = Annotated[
    Path, typer.Option("--workdir", "-w", envvar=WORKDIR_ENV, help=_WORKDIR_HELP)
]
"""The work folder of a command that needs one."""
OptionalWorkDirOpt = Annotated[
    Path | None, typer.Option("--workdir", "-w", envvar=WORKDIR_ENV, help=_WORKDIR_HELP)
]
"""The work folder of a command that can also run without one (the command says what then)."""
DateOpt = Annotated[str, typer.Option("--date", help=_DATE_HELP)]
"""The processing date (parse it with :func:`parse_date`: a bad one is a config error)."""
OptionalDateOpt = Annotated[str | None, typer.Option("--date", help=_DATE_HELP)]
"""The processing date of a command that has a default for it (the command says which)."""
PeriodOpt = Annotated[str, typer.Option("--period", help="settlement month YYYY-MM")]
"""The settlement month (check it with :func:`parse_period`)."""
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout (for machines), not text")]
"""Machine-readable output."""
DebugOpt = Annotated[bool, typer.Option("--debug", help="raise errors with a traceback")]
"""Re-raise a package error (with its traceback) instead of one line and an exit code."""
RATES_HELP = "reference-data folder (default: WORKDIR/rates)"
RatesOpt = Annotated[Path | None, typer.Option("--rates", help=RATES_HELP)]
"""The reference data (IOTs, agreements, FX…), when not the work folder's ``rates/``."""
PARTNER_HELP = "partner: TADIG code (TAP) or SID/BID (CIBER)"
PartnerOpt = Annotated[str | None, typer.Option("--partner", help=PARTNER_HELP)]
"""One partner (a filter or a selection: the command says which)."""
PartnersOpt = Annotated[
    list[str] | None, typer.Option("--partner", help=f"{PARTNER_HELP}; repeatable")
]
"""Some partners (the option repeated); all when left out."""
REASON_HELP = "why (kept with the decision)"
ReasonOpt = Annotated[str | None, typer.Option("--reason", help=REASON_HELP)]
"""Why a decision was taken (kept with it)."""


def examples(*lines: str) -> str:
    """The **Examples** block of a command's help (its epilog): real command lines.

    The help texts are Markdown (``rich_markup_mode="markdown"``): the lines are a fenced
    code block, shown as written, after the options (and in ``docs/cli.md``).
    """
    return "\n".join(["Examples:", "", "```sh", *lines, "```"])


_LOCK_MODE = "__clearing_lock_mode__"


def reads_workdir(command: Callable[P, R]) -> Callable[P, R]:
    """Mark a command that only reads its work folder: it takes the lock shared.

    Put it below :func:`handles_errors`.
    """
    setattr(command, _LOCK_MODE, True)
    return command


def reads_workdir_unless(
    writes: Callable[[Mapping[str, Any]], bool],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Like :func:`reads_workdir`, but exclusive for a call where ``writes(kwargs)`` is true.

    (``validate`` without a FILE records the date: it writes.)
    """

    def mark(command: Callable[P, R]) -> Callable[P, R]:
        setattr(command, _LOCK_MODE, writes)
        return command

    return mark


def lock_mode(command: Callable[..., Any], kwargs: Mapping[str, Any]) -> str | None:
    """How a call of ``command`` takes the work folder's lock: ``shared``, ``exclusive``, none.

    None when the call has no work folder (``--workdir`` left out where it is optional).
    """
    if kwargs.get("workdir") is None:
        return None
    marker = getattr(command, _LOCK_MODE, None)
    if marker is None:
        return "exclusive"
    if marker is not True and marker(kwargs):
        return "exclusive"
    return "shared"


def _what(command: Callable[..., Any]) -> str:
    """The command line's verb, as typed: ``clearing rate recycle`` (lock holder, JSON lines)."""
    try:  # typer's own copy of click (not a public module: the function's name as a fallback)
        from typer._click.globals import get_current_context

        context = get_current_context(silent=True)
    except ImportError:  # pragma: no cover - another typer
        context = None
    if context is not None:
        return str(context.command_path)
    return f"clearing {command.__name__.strip('_')}"


def _modes(workdir: Path) -> tuple[int, int]:
    """The ``[output]`` modes of the work folder (the defaults if its config cannot be read)."""
    from clearing.config import load

    try:
        return load(workdir).output.modes
    except ConfigError:
        return FILE_MODE, DIR_MODE


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command: the work folder's lock, and errors as one line and an exit code.

    With a work folder (``workdir`` keyword not None) the command runs holding the lock:
    exclusive, or shared when the command is marked :func:`reads_workdir`; another process
    holding it is a :class:`~clearing.pipeline.lock.BusyError` (exit code 2, nothing done).
    A :class:`ClearingError` prints ``error: <message>`` on stderr and exits with the error's
    ``exit_code`` (:class:`clearing.errors.ExitCode`: 1 data, 2 config, 3 transport); a
    file-system fault (disk full, read-only, permission denied) is a
    :class:`~clearing.errors.FaultError` (2). With ``--debug`` (a ``debug`` keyword of the
    command) the error is re-raised with its traceback. Anything else is a bug:
    :func:`clearing.cli.main` prints its traceback and exits 4.

    With ``--json`` (an ``as_json`` keyword of the command) every log line goes to stdout as
    JSON, and an error is one JSON line there too: ``{"level": "<severity>", "event":
    "error", "message", "exit_code"}`` (:attr:`clearing.errors.ExitCode.severity`).
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json"))
        if as_json != log.json_mode() or not log.configured():
            log.configure(json_lines=as_json)
        log.unbind("run_id")  # a run of an earlier command in this process (tests) is over
        try:
            mode = lock_mode(command, kwargs)
            if mode is None:
                return command(*args, **kwargs)
            from clearing.pipeline.lock import WorkdirLock

            workdir = Path(str(kwargs["workdir"]))
            with (
                private_files(*_modes(workdir)),
                WorkdirLock(workdir, _what(command), mode=mode),  # type: ignore[arg-type]
            ):
                return command(*args, **kwargs)
        except Exception as exc:
            error = exc if isinstance(exc, ClearingError) else fault_of(exc)
            if error is None or kwargs.get("debug"):
                raise
            if as_json:
                code = ExitCode(error.exit_code)
                log.emit(
                    code.severity,
                    str(error),
                    event="error",
                    name="cli",
                    command=_what(command),
                    exit_code=int(code),
                )
            else:
                typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None

    return run


def parse_date(text: str, option: str = "--date") -> date:
    """:func:`clearing.config.parse_date` (imported when called: pydantic is slow to load)."""
    from clearing import config

    return config.parse_date(text, option)


def parse_period(text: str) -> str:
    """:func:`clearing.config.parse_period` (imported when called: pydantic is slow to load)."""
    from clearing import config

    return config.parse_period(text)


def day_or_today(text: str | None) -> date:
    """The ``--date`` given, or today when it was left out."""
    return date.today() if text is None else parse_date(text)


def read_input(file: Path) -> bytes:
    """The bytes of a file named on the command line (:class:`ConfigError` if unreadable)."""
    try:
        return file.read_bytes()
    except OSError as exc:
        msg = f"cannot read `{file}`: {exc.strerror}"
        raise ConfigError(msg) from None


def not_found(message: str, *, as_json: bool) -> typer.Exit:
    """Say that a look-up found nothing (a ``data`` log line with ``--json``); exit code 1."""
    if as_json:
        log.emit("data", message, event="not_found", name="cli", exit_code=1)
    else:
        typer.echo(message)
    return typer.Exit(1)
