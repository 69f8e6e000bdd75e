"""Helpers for the pipelines/ tests: the DAG folder on sys.path, and a parse-only check of a
command line against the real typer app (`clearing.cli.app`)."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer.main

from clearing.cli import app

ROOT = Path(__file__).parents[2]
PIPELINES = ROOT / "pipelines"


@pytest.fixture(scope="session")
def pipelines_on_path() -> Iterator[Path]:
    """pipelines/ on sys.path, as Airflow puts its DAG folder (the DAGs import clearing_common)."""
    sys.path.insert(0, str(PIPELINES))
    try:
        yield PIPELINES
    finally:
        sys.path.remove(str(PIPELINES))


def parse_cli(argv: list[str]) -> list[str]:
    """Parse `clearing ARGV` with the real app without running anything; return the command path
    (e.g. ``["settle", "daily"]``). A bad verb, option or value raises typer's UsageError."""
    command = typer.main.get_command(app)
    ctx = command.make_context("clearing", list(argv))
    path: list[str] = []
    while True:
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            if not getattr(command, "invoke_without_command", True) and path != []:
                ctx.fail("missing command")
            return path
        name, sub, args = command.resolve_command(ctx, rest)  # type: ignore[attr-defined]
        assert sub is not None
        assert name is not None
        path.append(name)
        command = sub
        ctx = sub.make_context(name, args, parent=ctx)


def top_level_verbs() -> set[str]:
    """The top-level verbs of `clearing` in this tree."""
    command = typer.main.get_command(app)
    return set(command.commands)  # type: ignore[attr-defined]


@pytest.fixture
def expect_verbs(request: pytest.FixtureRequest) -> Callable[..., None]:
    """`expect_verbs("nightly", ...)`: until those verbs are in the tree the test is an expected,
    strict failure (it still runs); once they are, it is a plain test."""

    def check(*verbs: str) -> None:
        missing = sorted(set(verbs) - top_level_verbs())
        if missing:
            request.applymarker(
                pytest.mark.xfail(
                    reason=f"verbs not in the CLI yet: {', '.join(missing)}", strict=True
                )
            )

    return check


STUB = """#!{python}
import json, os, sys
with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("STUB_EXIT_" + sys.argv[1].upper(), "0")))
"""


Calls = Callable[[], list[list[str]]]


@pytest.fixture
def stub_clearing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Calls]:
    """A stand-in `clearing` executable that records its arguments (one JSON list per call) and
    exits with `$STUB_EXIT_<VERB>` (default 0). Returns its path and a reader of the calls. Used
    only for the structural runs of the DAG and the crontab; the recorded command lines are
    then parsed with the real app."""
    folder = tmp_path / "stub-bin"
    folder.mkdir()
    exe = folder / "clearing"
    exe.write_text(STUB.format(python=sys.executable), encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "stub-calls.jsonl"
    monkeypatch.setenv("STUB_LOG", str(log))

    def calls() -> list[list[str]]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]

    return exe, calls
