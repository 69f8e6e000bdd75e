"""``python -m clearing.cli ...``: the `clearing` command (tests and the DAGs run it this way)."""

from __future__ import annotations

from clearing.cli import main

__all__: list[str] = []

main()
