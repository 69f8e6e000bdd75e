"""The one place where the package's log lines go: stdlib :mod:`logging`, configured once.

Everything the package says while it works goes through the ``clearing`` logger (and its
children: ``clearing.transport`` for "fetched", "sent", retries; ``clearing.run`` for a run's
stages and problems). :func:`configure` gives that logger exactly one handler:

* text (the default): one line per record on **stderr**; problems as ``<severity>: message``;
* ``--json``: one JSON object per record on **stdout**, so that every line a command prints
  there is JSON (its result lines too: :func:`json_line`).

Verbosity (``clearing -q`` / ``-v``): ``-1`` problems only, ``0`` (default) progress and the
transport's "fetched" / "sent" lines as well, ``1`` and more debug lines too.

The ``level`` of a JSON line is ``debug`` or ``info`` for a line that reports progress, and the
severity word of :class:`clearing.errors.ExitCode` (``ok``, ``data``, ``config``, ``transport``,
``crash``) for a line that reports an outcome: a problem, an error, the end of a run. A record
names its severity with ``extra={"severity": ...}``; a warning or error without one is
``transport`` from the ``clearing.transport`` logger and ``data`` from any other.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from clearing.errors import SEVERITIES

__all__ = [
    "LEVELS",
    "LOGGER",
    "JsonFormatter",
    "TextFormatter",
    "bind",
    "configure",
    "configured",
    "emit",
    "json_line",
    "json_mode",
    "level_of",
    "logger",
    "unbind",
    "verbosity",
]

LOGGER = "clearing"
"""The name of the package's logger (the parent of every logger of the package)."""

LEVELS: tuple[str, ...] = ("debug", "info", *SEVERITIES.values())
"""Every ``level`` a JSON line can carry."""

_TO_LOGGING = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "ok": logging.INFO,
    "data": logging.WARNING,
    "transport": logging.ERROR,
    "config": logging.ERROR,
    "crash": logging.CRITICAL,
}
# words callers used before the one vocabulary: a note of a stage is a data remark
_ALIASES = {"warning": "data", "error": "crash"}


class _State:
    json = False
    verbosity = 0
    handler: logging.Handler | None = None
    context: dict[str, Any] = {}  # noqa: RUF012 (one state for the process)


def logger(name: str = "") -> logging.Logger:
    """The package's logger, or its child ``clearing.<name>``."""
    return logging.getLogger(f"{LOGGER}.{name}" if name else LOGGER)


def level_of(record: logging.LogRecord) -> str:
    """The ``level`` word of a record (see the module's docstring)."""
    word = getattr(record, "severity", None)
    if isinstance(word, str) and word:
        return _ALIASES.get(word, word)
    if record.levelno < logging.INFO:
        return "debug"
    if record.levelno < logging.WARNING:
        return "info"
    return "transport" if record.name.startswith(f"{LOGGER}.transport") else "data"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``{"ts", "level", "event", "message", ...fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (``fields`` of the record merged in)."""
        line: dict[str, Any] = {
            "ts": _now(),
            "level": level_of(record),
            "logger": record.name,
            "event": getattr(record, "event", None) or "message",
            **_State.context,
        }
        message = record.getMessage()
        if message:
            line["message"] = message
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A progress line as it is; a problem as ``<severity>: message``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one (or, with a traceback, several) lines of text."""
        word = level_of(record)
        message = record.getMessage()
        text = message if word in ("debug", "info", "ok") else f"{word}: {message}"
        if getattr(record, "indent", False):
            text = f"  {text}"
        if record.exc_info and record.exc_info[0] is not None:
            text = f"{self.formatException(record.exc_info)}\n{text}"
        return text


class _LiveStream(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to ``sys.stdout`` / ``sys.stderr`` as they are when a line is written.

    (Test runners and rich's progress bar replace them after the handler was made.)
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property
    def stream(self) -> IO[str]:
        return getattr(sys, self._name)  # type: ignore[no-any-return]

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure(*, json_lines: bool | None = None, verbosity: int | None = None) -> None:
    """Give the ``clearing`` logger its one handler (again: the previous one is replaced).

    Args:
        json_lines: JSON on stdout (``--json``) instead of text on stderr; ``None`` keeps the
            current choice.
        verbosity: ``-1`` problems only (``--quiet``), ``0`` progress too, ``1`` debug too
            (``--verbose``); ``None`` keeps the current one.
    """
    if json_lines is not None:
        _State.json = json_lines
    if verbosity is not None:
        _State.verbosity = verbosity
    root = logger()
    if _State.handler is not None:
        root.removeHandler(_State.handler)
    handler = _LiveStream("stdout" if _State.json else "stderr")
    handler.setFormatter(JsonFormatter() if _State.json else TextFormatter())
    root.addHandler(handler)
    root.propagate = False
    root.setLevel(
        logging.WARNING
        if _State.verbosity < 0
        else logging.INFO
        if _State.verbosity == 0
        else logging.DEBUG
    )
    _State.handler = handler


def configured() -> bool:
    """Whether :func:`configure` has given the package's logger its handler."""
    return _State.handler is not None


def json_mode() -> bool:
    """Whether lines go out as JSON on stdout (``--json``)."""
    return _State.json


def verbosity() -> int:
    """The verbosity configured (``-1`` quiet, ``0`` default, ``1`` and more verbose)."""
    return _State.verbosity


def emit(
    level: str,
    message: str = "",
    *,
    event: str = "message",
    name: str = "",
    indent: bool = False,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log one line at a ``level`` word (:data:`LEVELS`), with an event name and fields.

    Args:
        level: ``debug``, ``info`` or a severity word (``ok``, ``data``, ``config``,
            ``transport``, ``crash``).
        message: the words of the line (a JSON line's ``message``; the text line).
        event: the JSON line's ``event`` (``run_start``, ``stage_end``, ``error``, ...).
        name: the child logger (``run``, ``transport``, ``cli``); the package's logger if empty.
        indent: the text line is indented (a line of a run, under its run id).
        exc_info: add the traceback of the exception being handled.
        **fields: more keys of the JSON line (not shown in text).
    """
    word = _ALIASES.get(level, level)
    logger(name).log(
        _TO_LOGGING.get(word, logging.INFO),
        "%s",
        message,
        exc_info=exc_info,
        extra={"severity": word, "event": event, "fields": fields, "indent": indent},
    )


def bind(**fields: Any) -> None:
    """Put ``fields`` on every later JSON line (e.g. the ``run_id`` of the run going on)."""
    _State.context.update(fields)


def unbind(*names: str) -> None:
    """Take ``names`` off the JSON lines again."""
    for name in names:
        _State.context.pop(name, None)


def json_line(document: Any) -> str:
    """A result as one line of JSON (no indentation: one object per line on stdout)."""
    return json.dumps(document, ensure_ascii=False, default=str)
