"""The Markdown command reference (``docs/cli.md``), generated from the command line itself.

:func:`reference` walks every command of :data:`clearing.cli.app` (groups first, then their
commands, in the order of ``clearing --help``) and writes its usage, its help (Markdown
already: the help texts are written for ``rich_markup_mode="markdown"``), a table of its
arguments and options, and its examples. Nothing depends on the terminal or the environment,
so the file is the same wherever it is generated; a test checks that the checked-in file is
current. Regenerate it with::

    python -m clearing.cli._reference > docs/cli.md
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

import typer
import typer.main

if TYPE_CHECKING:
    from collections.abc import Iterator

    from typer import _click

__all__ = ["REGENERATE", "commands", "reference"]

REGENERATE = "python -m clearing.cli._reference > docs/cli.md"
"""The command that writes ``docs/cli.md``."""

_PROG = "clearing"


def commands() -> Iterator[tuple[str, _click.Command, _click.Context]]:
    """Every command and group of ``clearing``: its path, the command, a context for it."""
    from clearing.cli import app

    def walk(
        command: _click.Command, name: str, parent: _click.Context | None
    ) -> Iterator[tuple[str, _click.Command, _click.Context]]:
        ctx = typer.Context(command, info_name=name, parent=parent)
        yield ctx.command_path, command, ctx
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, sub_name, ctx)

    yield from walk(typer.main.get_command(app), _PROG, None)


def _cell(text: str) -> str:
    """Text for a Markdown table cell (one line, ``|`` escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def _value(param: Any, ctx: _click.Context) -> str:
    """The placeholder of an option's value (``PATH``, ``TEXT``, ``INTEGER``), or none."""
    if getattr(param, "is_flag", False):
        return ""
    shown = str(param.display_type(ctx)).strip("<>")
    if shown.startswith("list[") and shown.endswith("]"):
        shown = shown[5:-1]
    return {"str": "TEXT", "int": "INTEGER", "path": "PATH"}.get(shown, shown.upper())


def _param_row(param: Any, ctx: _click.Context) -> str:
    value = _value(param, ctx)
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`"
    else:
        name = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        name += f" {value}" if value else ""
    notes = []
    if param.required:
        notes.append("required")
    if getattr(param, "multiple", False):
        notes.append("repeatable")
    if param.envvar:
        notes.append(f"env `{param.envvar}`")
    if param.default is not None and not (getattr(param, "is_flag", False) and not param.default):
        notes.append(f"default: `{param.default}`")
    return f"| {name} | {_cell(param.help or '')} | {', '.join(notes)} |"


def _section(path: str, command: _click.Command, ctx: _click.Context) -> list[str]:
    level = "#" * min(path.count(" ") + 1, 4)
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    lines = [f"#{level} `{path}`", "", "```", usage, "```", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        lines += ["| Argument / option | Description | |", "|---|---|---|"]
        lines += [_param_row(p, ctx) for p in params]
        lines += [f"| `--help` | {_cell('Show this message and exit.')} | |", ""]
    subs = getattr(command, "commands", {})
    if subs:
        lines += ["| Command | What it does |", "|---|---|"]
        lines += [
            f"| [`{name}`](#{_anchor(f'{path} {name}')}) | "
            f"{_cell(sub.get_short_help_str(limit=200))} |"
            for name, sub in subs.items()
        ]
        lines += [""]
    if command.epilog:
        lines += [inspect.cleandoc(command.epilog), ""]
    return lines


def _anchor(path: str) -> str:
    """GitHub's anchor of a ``## `clearing x y` `` heading."""
    return path.replace(" ", "-")


def reference() -> str:
    """The Markdown reference of every command of ``clearing`` (the text of ``docs/cli.md``)."""
    lines = [
        "# `clearing` command reference",
        "",
        "<!-- Generated from the command line; do not edit. Regenerate it with",
        f"     {REGENERATE}",
        "     (tests/cli/test_reference.py checks that it is current). -->",
        "",
        "Every command that works in a work folder takes it as `--workdir W`, `-w W` or the",
        "`CLEARING_WORKDIR` environment variable. Exit codes: 0 ok, 1 data, 2 config,",
        "3 transport, 4 crash. `clearing COMMAND --help` prints the same text as here.",
        "",
    ]
    for path, command, ctx in commands():
        lines += _section(path, command, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(reference().encode("utf-8"))
