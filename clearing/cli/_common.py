"""What every command module of the CLI shares: the options, the error handler, reading a file.

The options are declared once here (same flags, same help everywhere); the work folder is
``--workdir`` / ``-w`` or the ``CLEARING_WORKDIR`` environment variable in every command.
:func:`handles_errors` is the one place where the package's error tree becomes an exit code
(:class:`clearing.errors.ExitCode`) and one line on stderr; ``--debug`` re-raises instead.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from clearing.config import parse_date, parse_period
from clearing.errors import ClearingError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DateOpt",
    "DebugOpt",
    "JsonOpt",
    "OptionalDateOpt",
    "OptionalWorkDirOpt",
    "PeriodOpt",
    "WorkDirOpt",
    "day_or_today",
    "handles_errors",
    "parse_date",
    "parse_period",
    "read_input",
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


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command: a :class:`ClearingError` prints one line and exits with its code.

    The line is ``error: <message>`` on stderr and the exit code the error's ``exit_code``
    (:class:`clearing.errors.ExitCode`: 1 data, 2 config, 3 transport). With ``--debug`` (a
    ``debug`` keyword of the command) the error is re-raised with its traceback. Anything else
    is a bug: :func:`clearing.cli.main` prints its traceback and exits 4.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ClearingError as exc:
            if kwargs.get("debug"):
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return run


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
