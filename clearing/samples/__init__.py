"""Synthetic traffic: a realistic little world of partners and their files.

``generate`` writes TAP-in files (several GSM partners) and CIBER-in batches (CDMA partners).
Same seed and date → same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

__all__ = ["generate"]


def generate(out: Path, *, events: int = 2000, seed: int = 1, day: date) -> list[Path]:
    """Write the synthetic inputs for ``day`` into ``out``; return the paths written."""
    from clearing.samples.ciber import generate_ciber
    from clearing.samples.tap import generate_tap

    out.mkdir(parents=True, exist_ok=True)
    written = generate_tap(out, events=events, seed=seed, day=day)
    written += generate_ciber(out, seed=seed, day=day)
    return written
