"""Run the `clearing` CLI as a user does: a real subprocess from the project root."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..cli_run import Cli as Cli
from ..cli_run import run_cli

ROOT = Path(__file__).parents[2]


@pytest.fixture
def clearing() -> Cli:
    """``clearing(*args)`` runs ``python -m clearing.cli *args`` and returns the result."""

    return run_cli
