"""A generated sample world, copied fresh for each test; the CLI as a subprocess."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clearing.samples.workdir import World, generate_world

from ..cli_run import Cli as Cli
from ..cli_run import run_cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
EVENTS = 1200


@pytest.fixture(scope="session")
def world_source(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One generated world per session (never run on: tests take copies)."""
    return generate_world(tmp_path_factory.mktemp("world") / "w", day=DAY, events=EVENTS, seed=5)


@pytest.fixture
def world(world_source: World, tmp_path: Path) -> Path:
    """A fresh copy of the sample world, ready for `clearing nightly`."""
    target = tmp_path / "w"
    shutil.copytree(world_source.root, target)
    return target


@pytest.fixture
def clearing() -> Cli:
    """``clearing(*args)`` runs ``python -m clearing.cli *args`` and returns the result."""

    return run_cli


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file a run produces or moves (not runs/, not the DuckDB files)."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] in {"out", "lake", "exchange", "work", "inbox"}:
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


STATE_QUERIES = {
    "outbox": "SELECT name, partner, kind, sha256, size, state FROM outbox ORDER BY name",
    "files": "SELECT * FROM files ORDER BY ALL",
    "findings": "SELECT * FROM findings ORDER BY ALL",
    "rap_out": "SELECT * FROM rap_out ORDER BY ALL",
    "outbound_files": "SELECT * EXCLUDE (path) FROM outbound_files ORDER BY ALL",
    "outbound_sequences": "SELECT * FROM outbound_sequences ORDER BY ALL",
}


def state(root: Path) -> dict[str, list[tuple[object, ...]]]:
    """The DuckDB state that matters, without wall-clock columns."""
    out: dict[str, list[tuple[object, ...]]] = {}
    con = duckdb.connect(str(root / "clearing.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for name, query in STATE_QUERIES.items():
            if name not in tables:
                out[name] = []
                continue
            out[name] = con.execute(query).fetchall()
    finally:
        con.close()
    return out


def first_value(obj: Any, key: str) -> Any:
    """The first value of ``key`` in a decoded ASN.1 value (dicts, lists, CHOICE tuples)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        return None
    for v in items:
        found = first_value(v, key)
        if found is not None:
            return found
    return None
