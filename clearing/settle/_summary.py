"""Placeholder (filled below)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RunSummary", "render_summary"]


@dataclass
class RunSummary:
    """Placeholder."""

    run_id: str = ""


def render_summary(summary: Any, fmt: str = "text") -> str:
    """Placeholder."""
    return ""
