"""``python -m clearing ...``: the `clearing` command when the console script is not on PATH."""

from __future__ import annotations

from clearing.cli import main

__all__: list[str] = []

main()
