"""What ``clearing … --help`` says: examples that run, one wording per option, no ragged text."""

from __future__ import annotations

import inspect
import re
import shlex
from typing import TYPE_CHECKING, Any

import pytest
from typer import TyperException
from typer.testing import CliRunner

from clearing.cli import app
from clearing.cli._reference import commands
from clearing.config import parse_date, parse_period
from clearing.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

RUN = CliRunner()
WIDE = {"COLUMNS": "1000", "CLEARING_WORKDIR": None}

ALL = list(commands())
# the verbs: every command that does something (the groups only list theirs), and `rate` and
# `retail`, groups whose own callback is the rate / retail stage of a day
BY_PATH = {p: (c, ctx) for p, c, ctx in ALL}
STAGE_GROUPS = ("clearing rate", "clearing retail")
VERBS = [(p, c) for p, c, _ in ALL if not getattr(c, "commands", None) or p in STAGE_GROUPS]


def _help(path: str, columns: str = "1000") -> str:
    result = RUN.invoke(app, [*path.split()[1:], "--help"], env={**WIDE, "COLUMNS": columns})
    assert result.exit_code == 0, result.output
    return result.output


def _examples(command: Any) -> list[str]:
    """The command lines of a command's Examples block (continuation lines joined)."""
    epilog = command.epilog or ""
    match = re.search(r"Examples:\n\n```sh\n(.*?)\n```", epilog, re.DOTALL)
    if match is None:
        return []
    return match.group(1).replace("\\\n", " ").splitlines()


def test_the_verbs_are_all_there() -> None:
    names = {p for p, _ in VERBS}
    assert len(names) == 39, sorted(names)
    assert {"clearing nightly", "clearing rate", "clearing transport status"} <= names
    assert {"clearing retail", "clearing retail explain", "clearing retail statement"} <= names


@pytest.mark.parametrize(("path", "command"), VERBS, ids=[p for p, _ in VERBS])
def test_every_verb_shows_examples_of_itself(path: str, command: Any) -> None:
    lines = _examples(command)
    assert len(lines) >= 1, f"`{path} --help` has no Examples block"
    assert shlex.split(lines[0])[: len(path.split())] == path.split(), lines[0]
    shown = _help(path)
    assert "Examples:" in shown
    for line in command.epilog.split("```sh\n")[1].split("\n```")[0].splitlines():
        assert line.strip() in shown  # shown as written, one line each


def _parse(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse one example as the shell and then `clearing` would; fail if it is not valid."""
    words = shlex.split(line)
    while "=" in words[0]:  # VAR=value before the command
        name, value = words.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    for stop in ("|", ">", "&&"):
        if stop in words:
            words = words[: words.index(stop)]
    assert words[0] == "clearing", line
    path = ["clearing"]
    args = words[1:]
    while args and " ".join([*path, args[0]]) in BY_PATH:
        path.append(args.pop(0))
    command, ctx = BY_PATH[" ".join(path)]
    if "--help" in args:
        assert args == ["--help"], line
        return
    parsed = command.make_context(path[-1], list(args), parent=ctx.parent)
    assert not parsed.args or getattr(command, "commands", None), line
    # the date options (backfill's and find's --from/--to are dates; backup's --to, restore's
    # --from folders)
    dates = (
        "--date",
        "--all-of-date",
        "--before",
        *(("--from", "--to") if path[-1] in ("backfill", "find") else ()),
    )
    for flag in dates:
        if flag in args:
            parse_date(args[args.index(flag) + 1], flag)
    if "--period" in args:
        parse_period(args[args.index("--period") + 1])


EXAMPLES = [(path, line) for path, command, _ in ALL for line in _examples(command)]


@pytest.mark.parametrize(("path", "line"), EXAMPLES, ids=[f"{p}: {x}" for p, x in EXAMPLES])
def test_every_example_is_a_command_line_clearing_accepts(
    path: str, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLEARING_WORKDIR", raising=False)
    _parse(line, monkeypatch)


def test_an_example_with_a_wrong_option_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TyperException):
        _parse("clearing nightly -w /srv/clearing --day 2026-11-22", monkeypatch)
    with pytest.raises(TyperException):
        _parse("clearing nightly --date 2026-11-22", monkeypatch)  # no work folder
    _parse("CLEARING_WORKDIR=/srv/clearing clearing nightly --date 2026-11-22", monkeypatch)


def test_every_example_line_fits_an_80_column_terminal() -> None:
    for path, command, _ in ALL:
        epilog = command.epilog or ""
        for line in epilog.split("```sh\n")[-1].split("\n```")[0].splitlines():
            assert len(line) <= 76, f"{path}: {line}"  # 80 less the help's margins


def _paragraphs(text: str) -> list[str]:
    """The prose paragraphs of a help text (code blocks left out), each on one line."""
    prose = re.sub(r"```.*?```", "", inspect.cleandoc(text), flags=re.DOTALL)
    return [" ".join(p.replace("`", "").split()) for p in prose.split("\n\n") if p.strip()]


@pytest.mark.parametrize(("path", "command", "ctx"), ALL, ids=[p for p, _, _ in ALL])
def test_help_paragraphs_reflow_instead_of_breaking_where_the_source_did(
    path: str, command: Any, ctx: Any
) -> None:
    """On a wide terminal every paragraph is one line: no break from the docstring is kept."""
    shown = [" ".join(line.split()) for line in _help(path).splitlines()]
    for paragraph in _paragraphs(command.help or "") + _paragraphs(command.epilog or ""):
        assert paragraph in shown, f"{path}: {paragraph!r} is broken up"


def test_placeholders_in_help_texts_are_shown() -> None:
    """A `<date>` outside backticks would be taken for HTML by the Markdown help and vanish."""
    for path, command, _ in ALL:
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        for text in texts:
            bare = re.sub(r"`[^`]*`", "", text)
            assert not re.search(r"<[A-Za-z][\w-]*>", bare), f"{path}: {text!r}"
    shown = _help("clearing samples generate", "100")
    assert "OUT/samples/<D>/" in shown


def test_validate_help_says_it_validates_ciber_files_too() -> None:
    shown = " ".join(_help("clearing validate").split())
    assert "Validate TAP (TD.57) and CIBER files" in shown
    assert "a TAP, Notification or CIBER file (omit: every input of --date)" in shown


@pytest.mark.parametrize(
    ("flag", "wording"),
    [
        ("--rates", "reference-data folder (default: WORKDIR/rates)"),
        ("--partner", "partner: TADIG code (TAP) or SID/BID (CIBER)"),
        ("--reason", "why (kept with the decision)"),
        ("--no-send", "skip the send stage (what is due stays due)"),
    ],
)
def test_a_shared_option_has_one_wording(flag: str, wording: str) -> None:
    helps = {
        path: getattr(option, "help", None)
        for path, command, _ in ALL
        for option in command.params
        if flag in getattr(option, "opts", [])
    }
    assert len(helps) >= 2, helps
    for path, text in helps.items():
        # a repeatable option says so after the one wording
        assert text in (wording, f"{wording}; repeatable"), path


def test_the_root_help_has_no_shell_completion_noise() -> None:
    shown = _help("clearing")
    assert "--install-completion" not in shown
    assert "--show-completion" not in shown
    assert "CLEARING_WORKDIR" in shown


def test_rates_import_needs_the_work_folder(tmp_path: Path) -> None:
    rates = tmp_path / "rates"
    (rates / "sources").mkdir(parents=True)
    result = RUN.invoke(app, ["rates", "import", "--rates", str(rates)], env=WIDE)
    assert result.exit_code == ExitCode.CONFIG
    assert "Missing option '--workdir'" in result.output
    assert not list(tmp_path.glob("**/_manifest.json"))  # nothing imported
    assert not (tmp_path / ".clearing.lock").exists()
