"""Shared by the benchmarks: run a measuring script in its own process, read its JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).parents[2]


def run_worker(code: str, *args: str) -> dict[str, float]:
    """Run ``code`` with ``args`` in a fresh interpreter (own peak RSS); return its JSON."""
    r = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    out: dict[str, float] = json.loads(r.stdout)
    return out


@pytest.fixture
def worker() -> Callable[..., dict[str, float]]:
    """The :func:`run_worker` function, for benchmarks."""
    return run_worker
