"""Freed memory given back between big steps (:mod:`clearing._memory`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import psutil

from clearing._memory import _malloc_trim, release_duckdb, release_memory

if TYPE_CHECKING:
    import pytest


def test_a_connection_gives_back_what_its_finished_query_kept_and_keeps_its_limit() -> None:
    """After a big aggregate, DuckDB keeps its blocks for reuse (here ~150 MB of a 6M-row
    group-by); :func:`release_duckdb` makes it give them back, and the spill limit the stage
    set stays in force for the next file."""
    proc = psutil.Process()
    with duckdb.connect() as con:
        con.execute("SET memory_limit = '512MB'")
        before = proc.memory_info().rss
        con.execute(
            "SELECT count(*) FROM (SELECT i % 3000000 AS k, count(*) FROM range(6000000) t(i) "
            "GROUP BY k)"
        ).fetchall()
        kept = proc.memory_info().rss - before
        assert kept > 80 << 20  # the premise: the finished query's blocks are still held
        release_duckdb(con, 512)
        assert proc.memory_info().rss - before < kept // 2
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert limit in ("488.2 MiB", "512.0 MiB")  # 512 MB as DuckDB prints it


def test_giving_memory_back_starts_no_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`release_memory` runs between every file and stage of a night: it must not fork
    the process (``ctypes.util.find_library`` runs ``ldconfig`` in a child, and a fork of a
    2 GB process counts its memory twice, for a moment, in the night's measured peak)."""
    import os
    import subprocess

    def forbidden(*_args: object, **_kwargs: object) -> None:
        msg = "release_memory started a child process"
        raise AssertionError(msg)

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(os, "fork", forbidden)
    monkeypatch.setattr(os, "posix_spawn", forbidden)
    _malloc_trim.cache_clear()
    release_memory()
    release_memory()
    assert _malloc_trim() is not None  # glibc here: the heap is trimmed
