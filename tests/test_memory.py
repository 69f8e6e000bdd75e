"""Freed memory given back between big steps (:mod:`clearing._memory`)."""

from __future__ import annotations

import duckdb
import psutil

from clearing._memory import release_duckdb


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
