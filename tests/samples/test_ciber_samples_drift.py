"""The committed CIBER samples are exactly what the generator writes today."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from clearing.samples.ciber import generate_ciber

COMMITTED = Path(__file__).parents[2] / "data_samples" / "ciber"


def test_committed_ciber_samples_do_not_drift(tmp_path: Path) -> None:
    written = generate_ciber(tmp_path / "ciber", seed=7, day=date(2026, 11, 22))
    assert sorted(p.name for p in written) == sorted(p.name for p in COMMITTED.iterdir())
    for path in written:
        assert path.read_bytes() == (COMMITTED / path.name).read_bytes(), path.name
