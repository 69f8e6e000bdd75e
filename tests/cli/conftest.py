"""Run the `clearing` CLI as a user does: a real subprocess from the project root."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def clearing() -> Cli:
    """``clearing(*args)`` runs ``python -m clearing.cli *args`` and returns the result."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clearing.cli", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )

    return run
