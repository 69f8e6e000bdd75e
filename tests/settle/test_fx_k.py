"""The int64 form of the settlement's currency conversion (``fx_k``) gives ``fx``'s value.

``fx_k`` computes in int64 up to the bound ``fx_klim`` proves safe and calls the HUGEINT
``fx`` beyond it; here both are compared with :func:`clearing.money.convert` on amounts at,
around and far past that bound, both signs, zero and NULL, and rates of every size.
"""

from __future__ import annotations

import random

import duckdb

from clearing.money import convert, duckdb_macros
from clearing.settle._lake import FX_K_MACROS

_SQL = """
WITH k AS (
    SELECT *, fx_kn(s_src, r_dst, m) AS kn, fx_kd(scale, r_src, s_dst) AS kd FROM t
), l AS (
    SELECT *, fx_klim(kn, kd) AS lim FROM k
)
SELECT x, scale, r_src, s_src, r_dst, s_dst, m, lim,
       fx_k(x, kn, kd, lim, scale, r_src, s_src, r_dst, s_dst, m) AS got
FROM l ORDER BY id
"""


def _rows() -> list[tuple[object, ...]]:
    rng = random.Random(16)
    rows: list[tuple[object, ...]] = []
    for i in range(4000):
        scale = rng.choice([0, 2, 3, 5, 6, 9])
        s_src = rng.choice([0, 2, 5, 6])
        s_dst = rng.choice([0, 2, 5, 6])
        m = rng.choice([0, 2, 3, 6])
        r_src = rng.choice([1, rng.randint(1, 10**6), rng.randint(1, 10**12), 2**62 + 7])
        r_dst = rng.choice([1, rng.randint(1, 10**6), rng.randint(1, 10**9)])
        x = rng.choice(
            [0, None, rng.randint(-(10**4), 10**4), rng.randint(-(2**53), 2**53), 2**53 - 1]
        )
        if i % 500 == 0:  # the int64 ends: no abs() of -2**63 may be taken
            x = -(2**63) if i % 1000 == 0 else 2**63 - 1
        rows.append((i, x, scale, r_src, s_src, r_dst, s_dst, m))
    return rows


def test_fx_k_is_fx_in_and_out_of_the_int64_range() -> None:
    con = duckdb.connect()
    for macro in (*duckdb_macros(), *FX_K_MACROS):
        con.execute(macro)
    con.execute(
        "CREATE TABLE t (id INTEGER, x BIGINT, scale INTEGER, r_src BIGINT, s_src INTEGER, "
        "r_dst BIGINT, s_dst INTEGER, m INTEGER)"
    )
    rows = _rows()
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    # amounts at the bound of each row and just past it (either sign)
    bounds = con.execute(_SQL).fetchall()
    edge: list[tuple[object, ...]] = []
    for n, (_, scale, r_src, s_src, r_dst, s_dst, m, lim, _) in enumerate(bounds):
        if lim is not None and lim < 2**53:
            for x in (lim, lim + 1, -lim, -lim - 1):
                edge.append((len(rows) + len(edge), x, scale, r_src, s_src, r_dst, s_dst, m))
        if n > 400:
            break
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", edge)
    fast = slow = 0
    for x, scale, r_src, s_src, r_dst, s_dst, m, lim, got in con.execute(_SQL).fetchall():
        want = None if x is None else convert(x, scale, r_src, s_src, r_dst, s_dst, m)
        assert got == want, (x, scale, r_src, s_src, r_dst, s_dst, m, lim)
        if x is not None and lim is not None and abs(x) <= lim:
            fast += 1
        elif x is not None:
            slow += 1
    assert fast > 1000  # both ways were taken
    assert slow > 500
    assert len(edge) > 100
