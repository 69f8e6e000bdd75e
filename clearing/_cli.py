"""What every command module of the CLI shares: reporting a package error, reading options."""

from __future__ import annotations

import re
from datetime import date
from typing import NoReturn

import typer

from clearing.errors import ClearingError, ConfigError

__all__ = ["fail", "parse_date", "parse_period"]

_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def fail(exc: ClearingError, debug: bool) -> NoReturn:
    """One line on stderr and the error's exit code (with ``--debug``: the traceback)."""
    if debug:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def parse_date(text: str, option: str = "--date") -> date:
    """``YYYY-MM-DD`` → a date; :class:`ConfigError` (exit 2) naming ``option`` otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"{option} `{text}` is not YYYY-MM-DD"
        raise ConfigError(msg) from None


def parse_period(text: str) -> str:
    """A settlement month ``YYYY-MM``; :class:`ConfigError` (exit 2) otherwise."""
    if not _PERIOD.fullmatch(text):
        msg = f"--period `{text}` must be a month YYYY-MM"
        raise ConfigError(msg)
    return text
