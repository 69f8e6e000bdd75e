"""The public names of clearing.settle (what the nightly and monthly commands call)."""

from __future__ import annotations

import clearing.settle
from clearing.cli.stages import settle_app


def test_exported_members() -> None:
    assert clearing.settle.__all__ == [
        "MissingInputError",
        "RunSummary",
        "daily_workbook",
        "figures_ahead",
        "key_figures",
        "monthly_workbook",
        "monthly_workbook_and_positions",
        "render_summary",
    ]
    for name in clearing.settle.__all__:
        assert getattr(clearing.settle, name).__doc__
    commands = sorted(c.name or c.callback.__name__ for c in settle_app.registered_commands)  # type: ignore[union-attr]
    assert commands == ["daily", "monthly"]
