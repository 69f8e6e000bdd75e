"""An absurd exchange rate is refused by `clearing rates import` and never crashes a night."""

from __future__ import annotations

import shutil
from datetime import date
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from clearing.cli import app
from clearing.errors import ExitCode
from clearing.samples.workdir import generate_world

if TYPE_CHECKING:
    from pathlib import Path

RUN = CliRunner()
HEADER = "currency,valid_from,valid_to,rate,rate_scale,source\n"
GOOD = 'EUR,2025-01-01,,117234,5,"IMF"\n'  # 1.17234 EUR per SDR


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(
        tmp_path_factory.mktemp("w") / "w", day=date(2026, 11, 22), events=50, seed=3
    ).root


@pytest.fixture
def world(source: Path, tmp_path: Path) -> Path:
    shutil.copytree(source, tmp_path / "w")
    return tmp_path / "w"


def _fx(world: Path, extra: str) -> None:
    fx = world / "rates" / "sources" / "fx.csv"
    fx.write_text(fx.read_text() + extra)


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ('XAA,2025-01-01,,1000000000000,0,"typo"\n', "outside 0.0001"),  # 10**12 per SDR
        ('XAB,2025-01-01,,1,9,"typo"\n', "outside 0.0001"),  # 1e-9 per SDR
        ('EUR,2026-01-01,,117234,0,"scale lost"\n', "more than 1000 times"),  # 117234 vs 1.17
    ],
)
def test_rates_import_refuses_an_absurd_rate(world: Path, row: str, why: str) -> None:
    before = sorted(p.name for p in (world / "rates").rglob("*"))
    _fx(world, row)
    r = RUN.invoke(app, ["rates", "import", "--workdir", str(world)])
    assert r.exit_code == ExitCode.CONFIG, r.output
    assert "rates table `fx`" in r.stderr
    assert why in r.stderr
    assert sorted(p.name for p in (world / "rates").rglob("*")) == before  # nothing written


@pytest.mark.parametrize("rate", ["0", "-5"])
def test_a_zero_or_negative_rate_is_refused(world: Path, rate: str) -> None:
    _fx(world, f'XAC,2025-01-01,,{rate},5,"typo"\n')
    r = RUN.invoke(app, ["rates", "import", "--workdir", str(world)])
    assert r.exit_code == ExitCode.CONFIG, r.output
    assert "rates table `fx`" in r.stderr


def test_a_bad_rate_already_imported_stops_the_night_before_anything(world: Path) -> None:
    """Imported before the check existed (written here by hand): exit 2, nothing touched."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted((world / "rates" / "fx").rglob("*.parquet"))
    table = pq.read_table(files[0])
    i = table.column_names.index("rate")
    times = pc.multiply(table.column("rate"), pa.scalar(10**9, table.schema.field(i).type))
    pq.write_table(table.set_column(i, "rate", times), files[0])
    inbox = sorted(p.name for p in (world / "exchange").rglob("*"))
    r = RUN.invoke(app, ["nightly", "--workdir", str(world), "--date", "2026-11-22"])
    assert r.exit_code == ExitCode.CONFIG, r.output
    assert "holds absurd rate(s)" in r.stderr
    assert "clearing rates import" in r.stderr
    assert not (world / "runs").exists()
    assert not (world / "lake").exists()
    assert sorted(p.name for p in (world / "exchange").rglob("*")) == inbox
