"""What every command shares: the options, the error handler, the exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

import clearing.errors
from clearing.cli import app, main
from clearing.cli._common import DebugOpt, handles_errors
from clearing.errors import (
    ClearingError,
    ConfigError,
    DecodeError,
    EncodeError,
    ExitCode,
    FaultError,
    LedgerError,
    MissingInputError,
    PermanentTransportError,
    RemoteEntryError,
    RetryableTransportError,
    StoreError,
    TransportError,
    ValueRangeError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

RUN = CliRunner()

EXIT_CODES: dict[type[ClearingError], ExitCode] = {
    ClearingError: ExitCode.DATA,
    DecodeError: ExitCode.DATA,
    EncodeError: ExitCode.DATA,
    MissingInputError: ExitCode.DATA,
    ConfigError: ExitCode.CONFIG,
    FaultError: ExitCode.CONFIG,
    ValueRangeError: ExitCode.DATA,
    LedgerError: ExitCode.DATA,
    StoreError: ExitCode.CONFIG,
    TransportError: ExitCode.TRANSPORT,
    RetryableTransportError: ExitCode.TRANSPORT,
    PermanentTransportError: ExitCode.TRANSPORT,
    RemoteEntryError: ExitCode.DATA,
}


def _commands() -> Iterator[tuple[str, Any]]:
    """Every command (and group callback) of `clearing`, with its path."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        yield " ".join(path), command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), ["clearing"])


def _option(command: Any, flag: str) -> Any:
    return next((p for p in command.params if flag in getattr(p, "opts", [])), None)


def test_exit_codes_are_the_documented_numbers() -> None:
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0),
        ("DATA", 1),
        ("CONFIG", 2),
        ("TRANSPORT", 3),
        ("INTERNAL", 4),
    ]


def test_every_error_class_has_its_exit_code() -> None:
    public = {
        getattr(clearing.errors, name)
        for name in clearing.errors.__all__
        if isinstance(getattr(clearing.errors, name), type)
        and issubclass(getattr(clearing.errors, name), ClearingError)
    }
    assert public == set(EXIT_CODES)
    for cls, code in EXIT_CODES.items():
        assert cls.exit_code is code


def test_every_work_folder_option_is_the_same() -> None:
    seen = []
    for path, command in _commands():
        option = _option(command, "--workdir")
        if option is None:
            continue
        seen.append(path)
        assert option.opts == ["--workdir", "-w"], path
        assert option.envvar == "CLEARING_WORKDIR", path
        assert option.help == "work folder (clearing.toml, inbox/, state, lake/, out/)", path
    assert len(seen) == 37, seen  # all but inspect and samples generate (samples deliver has it)
    assert {"clearing backup", "clearing restore", "clearing archive", "clearing stats"} <= set(
        seen
    )
    assert "clearing find" in seen
    assert {"clearing retail", "clearing retail explain", "clearing retail statement"} <= set(seen)
    assert "clearing transport status" in seen
    assert "clearing rates import" in seen
    assert "clearing rate explain" in seen
    assert "clearing rates versions" in seen
    assert {"clearing iot list", "clearing iot accept", "clearing iot dispute"} <= set(seen)


@pytest.mark.parametrize(
    ("flag", "help_text"),
    [
        ("--date", "processing date YYYY-MM-DD"),
        ("--period", "settlement month YYYY-MM"),
        ("--json", "JSON on stdout (for machines), not text"),
        ("--debug", "raise errors with a traceback"),
    ],
)
def test_shared_options_have_one_help(flag: str, help_text: str) -> None:
    helps = {
        path: option.help
        for path, command in _commands()
        if (option := _option(command, flag)) is not None
    }
    assert helps
    assert set(helps.values()) == {help_text}, helps


def test_every_command_takes_debug() -> None:
    for path, command in _commands():
        if not getattr(command, "commands", None) and command.callback is not None:
            assert _option(command, "--debug") is not None, path


@pytest.mark.parametrize(
    "args",
    [
        ["seq", "status"],
        ["transport", "status"],
        ["settle", "daily", "--date", "2026-11-22"],
        ["nightly", "--date", "2026-11-22"],
        ["rate", "--date", "2026-11-22"],
        ["rates", "import"],
    ],
)
def test_the_work_folder_comes_from_w_or_the_environment(args: list[str], tmp_path: Path) -> None:
    """A work folder without clearing.toml: the same answer however it was given."""
    folder = tmp_path / "empty"
    folder.mkdir()
    by_flag = RUN.invoke(app, [*args, "-w", str(folder)])
    by_env = RUN.invoke(app, args, env={"CLEARING_WORKDIR": str(folder)})
    assert by_flag.exit_code != ExitCode.INTERNAL
    assert "Missing option" not in by_flag.output
    assert (by_env.exit_code, by_env.stdout, by_env.stderr) == (
        by_flag.exit_code,
        by_flag.stdout,
        by_flag.stderr,
    )
    without = RUN.invoke(app, args, env={"CLEARING_WORKDIR": None})
    assert without.exit_code == ExitCode.CONFIG
    assert "--workdir" in without.output


def _failing(error: ClearingError) -> typer.Typer:
    failing = typer.Typer()

    @failing.command()
    @handles_errors
    def fail(debug: DebugOpt = False) -> None:
        print("started")
        raise error

    @failing.command()
    def other() -> None:  # a second command, so that typer keeps `fail` a sub-command
        pass

    return failing


@pytest.mark.parametrize("cls", list(EXIT_CODES), ids=lambda c: c.__name__)
def test_an_error_is_one_line_and_its_exit_code(cls: type[ClearingError]) -> None:
    error = cls("the message", entry="x") if cls is RemoteEntryError else cls("the message")
    r = RUN.invoke(_failing(error), ["fail"])
    assert r.exit_code == EXIT_CODES[cls]
    assert r.stderr == "error: the message\n"
    assert r.stdout == "started\n"


def test_debug_re_raises() -> None:
    with pytest.raises(TransportError, match="the message"):
        RUN.invoke(
            _failing(TransportError("the message")), ["fail", "--debug"], catch_exceptions=False
        )


def test_a_crash_exits_4_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("clearing.inspect.summarize", crash)
    path = tmp_path / "CDFRAF9HKGCL00001"
    path.write_bytes(b"\x61\x00")
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", str(path)])
    assert exit_.value.code == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError: a bug" in err
    assert err.splitlines()[-1] == (
        "error: internal error (exit 4): please report it with the traceback above"
    )
