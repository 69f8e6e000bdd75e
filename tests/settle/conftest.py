"""The settle tests' world: two real nightly runs (see ``world.py``), and its workbooks."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from clearing.settle import monthly_workbook

from .world import DAY2, build_world

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-day work folder (read only: copy it with ``world_copy`` to change it)."""
    return build_world(tmp_path_factory.mktemp("settle") / "work")


@pytest.fixture
def world_copy(world: Path, tmp_path: Path) -> Path:
    """A private copy of the world, to change behind the pipeline's back."""
    target = tmp_path / "work"
    shutil.copytree(world, target)
    return target


@pytest.fixture(scope="session")
def daily_path(world: Path) -> Path:
    """The daily workbook of the second day, as the nightly's settle stage wrote it."""
    path = world / "out" / "settlement" / "daily" / f"settlement_daily_HKGCL_{DAY2}.xlsx"
    assert path.exists()
    return path


@pytest.fixture(scope="session")
def monthly_path(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2026-11 workbook of a copy of the world (the session world stays untouched)."""
    target = tmp_path_factory.mktemp("monthly") / "work"
    shutil.copytree(world, target)
    return monthly_workbook(target, "2026-11", run_id="monthly-test")
