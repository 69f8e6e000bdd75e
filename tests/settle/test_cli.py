"""`clearing settle daily|monthly` (the typer app the main CLI mounts as `settle`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typer.testing import CliRunner

from clearing.cli.stages import settle_app

if TYPE_CHECKING:
    from pathlib import Path


def test_daily_and_monthly_print_the_workbook(world_copy: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(settle_app, ["daily", "--workdir", str(world_copy), "--date", "2026-11-15"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith("settlement_daily_HKGCL_2026-11-15.xlsx")
    args = ["monthly", "--workdir", str(world_copy), "--period", "2026-11", "--run-id", "m1"]
    r = runner.invoke(settle_app, args)
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith("settlement_monthly_HKGCL_2026-11_v1.xlsx")


def test_errors_say_what_to_do(world_copy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(settle_app, ["daily", "-w", str(world_copy), "--date", "2026-10-01"])
    assert r.exit_code == 1
    assert "run `clearing validate --workdir" in r.output
    r = runner.invoke(settle_app, ["daily", "-w", str(world_copy), "--date", "15/11/2026"])
    assert r.exit_code == 2
    assert "YYYY-MM-DD" in r.output
    r = runner.invoke(settle_app, ["monthly", "-w", str(world_copy), "--period", "2026-13"])
    assert r.exit_code == 2
    r = runner.invoke(settle_app, ["monthly", "-w", str(tmp_path), "--period", "2026-11"])
    assert r.exit_code == 2
    assert "clearing.toml" in r.output
