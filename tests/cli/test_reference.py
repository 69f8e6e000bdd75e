"""``docs/cli.md``: the command reference, generated from the CLI, checked in, kept current."""

from __future__ import annotations

import subprocess
import sys

from clearing.cli._reference import REGENERATE, commands, reference

from ..cli_run import ROOT

DOC = ROOT / "docs" / "cli.md"


def test_the_checked_in_reference_is_current() -> None:
    current = reference()
    assert DOC.read_text(encoding="utf-8") == current, (
        f"docs/cli.md is not the command line's reference any more: regenerate it with "
        f"`{REGENERATE}` and commit it"
    )


def test_the_documented_command_writes_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clearing.cli._reference"],
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.stdout.decode("utf-8") == reference()
    assert REGENERATE == "python -m clearing.cli._reference > docs/cli.md"


def test_every_command_and_option_is_in_it() -> None:
    text = reference()
    sections = text.split("\n#")
    for path, command, _ctx in commands():
        (section,) = [s for s in sections if s.lstrip("#").startswith(f" `{path}`\n")]
        assert f"```\n{path} [OPTIONS]" in section, path
        for param in command.params:
            if param.param_type_name == "argument":
                assert f"| `{param.name.upper()}` |" in section, (path, param.name)
            else:
                assert f"| `{param.opts[0]}`" in section, (path, param.opts)
        if command.epilog:
            assert "Examples:\n\n```sh\n" in section, path


def test_it_says_where_the_work_folder_comes_from_and_what_is_required() -> None:
    text = reference()
    nightly = text.split("### `clearing nightly`")[1].split("\n### ")[0]
    assert (
        "| `--workdir`, `-w` PATH | work folder (clearing.toml, inbox/, state, lake/, out/) "
        "| required, env `CLEARING_WORKDIR` |"
    ) in nightly
    assert "| `--date` TEXT | processing date YYYY-MM-DD | required |" in nightly
    generate = text.split("#### `clearing samples generate`")[1].split("\n#")[0]
    assert "| `--events` INTEGER |" in generate
    assert "default: `2000`" in generate
    collect = text.split("### `clearing collect`")[1].split("\n### ")[0]
    assert "| `--partner` TEXT | partner: TADIG code (TAP) or SID/BID (CIBER); repeatable |" in (
        collect
    )
    assert "repeatable" in collect
