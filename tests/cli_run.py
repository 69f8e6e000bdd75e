"""Run the `clearing` CLI as a user does: a real subprocess from the project root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["ROOT", "Cli", "run_cli", "run_python"]

ROOT = Path(__file__).parents[1]

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m clearing.cli *args`` from the project root; the finished process.

    ``env``: variables set for the process on top of this one's environment.
    """
    return subprocess.run(
        [sys.executable, "-m", "clearing.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c code *args`` from the project root, the package importable; the finished
    process (a program that kills itself with -9 midway, say)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
