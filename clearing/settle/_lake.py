"""Read-only access to what the earlier stages wrote: the Parquet lake and ``clearing.duckdb``.

:class:`Lake` is a read-only session over :mod:`clearing.store` and :mod:`clearing.lake`: it
opens an in-memory DuckDB connection, attaches the work folder's state file
read-only (``files``, ``findings``, ``rap_out``, ``acks_in``, ``raps_in``, ``returns_in``,
``outbound_files``, ``outbound_sequences``, ``outbox``) and the fetch ledger, and makes a view of
each; a table a stage never created reads as empty. Lake datasets are read per processing
date (``lake/<dataset>/date=D/...``) with the date as column ``processing_date``.

The money macros of :func:`clearing.money.duckdb_macros` keep money exact (HUGEINT
arithmetic, one rounding, half away from zero): ``fx(amount, scale, r_src, s_src, r_dst, s_dst,
m)`` converts, ``minor(c)`` is a currency's minor unit. :data:`FX_K_MACROS` add a faster form of
the same conversion for many amounts under one pair of rates (``fx_k``).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from clearing import lake
from clearing.config import Performance, WorkDir
from clearing.errors import MissingInputError
from clearing.money import duckdb_macros
from clearing.store import LEDGER, STATE, attach_read_only

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date
    from pathlib import Path

__all__ = ["SDR_SCALE", "Lake", "MissingInputError"]

SDR_SCALE = 6  # SDR amounts are shown with 6 decimals (the largest tapDecimalPlaces)

_INT64_MAX = (1 << 63) - 1

#: ``fx`` in int64 where that is provably exact, the HUGEINT ``fx`` elsewhere (the same value).
#: ``fx(x, scale, r_src, s_src, r_dst, s_dst, m)`` is ``sign(x) × half_up(|x| × kn, kd)`` with
#: ``kn = r_dst × 10**(s_src + m)`` and ``kd = r_src × 10**(scale + s_dst)``, i.e.
#: ``(2 × |x| × kn + kd) // (2 × kd)``. ``fx_kn`` / ``fx_kd`` are those factors as BIGINT (NULL
#: when they do not fit, or are not positive), ``fx_klim`` the largest ``|x|`` for which
#: ``2 × |x| × kn + kd`` (and ``2 × kd``) fit in int64: up to it ``fx_k`` computes in int64, above
#: it (or with a NULL factor) it calls ``fx`` (the bound is tested without ``abs``, which has no
#: int64 value for −2**63). The factors are worked out once per row and
#: shared by the amounts converted at the same rates (the monthly events' five conversions).
FX_K_MACROS = (
    "CREATE OR REPLACE MACRO fx_kn(s_src, r_dst, m) AS "
    "TRY(CASE WHEN r_dst > 0 THEN r_dst * CAST(power(10, s_src + m) AS BIGINT) END)",
    "CREATE OR REPLACE MACRO fx_kd(scale, r_src, s_dst) AS "
    "TRY(CASE WHEN r_src > 0 THEN r_src * CAST(power(10, scale + s_dst) AS BIGINT) END)",
    "CREATE OR REPLACE MACRO fx_klim(kn, kd) AS "
    f"CASE WHEN kn > 0 AND kn <= {_INT64_MAX // 2} AND kd > 0 AND kd <= {_INT64_MAX // 2} "
    f"THEN ({_INT64_MAX} - kd) // (2 * kn) END",
    "CREATE OR REPLACE MACRO fx_k(x, kn, kd, lim, scale, r_src, s_src, r_dst, s_dst, m) AS "
    "CASE WHEN x BETWEEN -lim AND lim "
    "THEN CAST(sign(x) * ((2 * abs(x) * kn + kd) // (2 * kd)) AS HUGEINT) "
    "ELSE fx(x, scale, r_src, s_src, r_dst, s_dst, m) END",
)


class Lake:
    """A read-only view of one work folder (close it, or use it as a context manager)."""

    def __init__(self, workdir: Path, *, memory_mb: int | None = None) -> None:
        """Open the view; ``memory_mb``: ``[performance] memory_mb`` (None: its default)."""
        self.wd = WorkDir(workdir)
        budget = memory_mb if memory_mb is not None else Performance().memory_mb
        self.root = workdir
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        # the month's events are joined in memory: past half the budget, DuckDB spills to disk
        folder = (self.wd.root / "tmp").absolute()
        with contextlib.suppress(OSError):  # DuckDB makes the last level only, when it spills
            folder.mkdir(exist_ok=True)
        spill = str(folder / "duckdb").replace("'", "''")
        self.con.execute(f"SET memory_limit = '{budget // 2}MB'")
        self.con.execute(f"SET temp_directory = '{spill}'")
        for macro in (*duckdb_macros(), *FX_K_MACROS):
            self.con.execute(macro)
        self.con.execute("CREATE SCHEMA empty")
        self.con.execute("SET schema = 'empty'")
        for schema in (STATE, LEDGER):
            self.con.execute(schema.ddl())
        self.con.execute("SET schema = 'main'")
        # the state files read-only (a table a stage never created reads as empty)
        for alias, path, schema in (
            ("st", self.wd.db, STATE),
            ("fl", workdir / LEDGER.file, LEDGER),
        ):
            attached = attach_read_only(self.con, path, alias, schema)
            for t in schema.tables:
                if t not in attached:
                    self.con.execute(f"CREATE VIEW {t} AS SELECT * FROM memory.empty.{t}")
                    continue
                self.con.execute(
                    f"CREATE VIEW {t} AS SELECT {self._columns(alias, t)} FROM {alias}.main.{t}"
                )
        self._fx_view()

    def _columns(self, alias: str, table: str) -> str:
        """The select list of ``table`` as this code knows it (missing columns read as NULL).

        A file written before the migration that added a column lacks it; settlement shows
        such a fact as unavailable rather than fail.
        """
        cols = self.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'memory' "
            "AND schema_name = 'empty' AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
        have = {
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? "
                "AND table_name = ?",
                [alias, table],
            ).fetchall()
        }
        return ", ".join(
            f'"{c}"' if c in have else f'CAST(NULL AS {ty}) AS "{c}"' for c, ty in cols
        )

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The result of ``sql`` as dicts (column name → value)."""
        cur = self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row of ``sql`` (None when there is no row)."""
        row = self.con.execute(sql, list(params)).fetchone()
        return None if row is None else row[0]

    # --- the lake -------------------------------------------------------------------------
    def partition(self, dataset: str, day: date) -> Path:
        """The folder ``lake/<dataset>/date=<day>``."""
        return lake.partition(self.wd.lake, dataset, day)

    def dates(self, dataset: str) -> list[date]:
        """Processing dates for which ``dataset`` has a partition, in order."""
        return lake.dates(self.wd.lake, dataset)

    def dates_between(self, dataset: str, first: date, last: date) -> list[date]:
        """Processing dates from ``first`` to ``last`` for which ``dataset`` has a partition.

        Only the folders of those dates are looked at (not the dataset's whole history).
        """
        days = (first + timedelta(days=k) for k in range((last - first).days + 1))
        return [d for d in days if self.partition(dataset, d).is_dir()]

    def files(self, dataset: str, days: Iterable[date]) -> list[Path]:
        """The Parquet files of ``dataset`` for ``days``, sorted."""
        return lake.files(self.wd.lake, lake.dataset(dataset), days)

    def view(self, name: str, dataset: str, days: Iterable[date]) -> list[Path]:
        """Create view ``name`` over ``dataset`` for ``days`` (+ ``processing_date``).

        Returns the files read (for the audit sheet).
        """
        return lake.view(self.con, self.wd.lake, lake.dataset(dataset), days, name)

    def _fx_view(self) -> None:
        files = sorted((self.wd.rates / "fx").glob("**/*.parquet"))
        if not files:
            self.con.execute(
                "CREATE VIEW fx_rates AS SELECT CAST(NULL AS VARCHAR) AS currency, "
                "CAST(NULL AS DATE) AS valid_from, CAST(NULL AS DATE) AS valid_to, "
                "CAST(NULL AS BIGINT) AS rate, CAST(NULL AS BIGINT) AS rate_scale, "
                "CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS version WHERE false"
            )
            return
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        # SDR is the unit of account: rate 1, scale 0, valid for ever
        self.con.execute(
            "CREATE VIEW fx_rates AS "
            "SELECT currency, valid_from, valid_to, rate, rate_scale, source, version "
            f"FROM read_parquet([{listing}], hive_partitioning = false) "
            "UNION ALL SELECT 'SDR', DATE '1900-01-01', NULL, 1, 0, 'unit of account', '-'"
        )

    def require(self, day: date, *, rating: bool = True) -> None:
        """Raise :class:`MissingInputError` unless validate (and rate) ran for ``day``."""
        root = self.root
        d = day.isoformat()
        if not lake.path(self.wd.lake, lake.FINDINGS, day).exists():
            msg = (
                f"nothing validated for {d} in `{root}` (no `lake/findings/date={d}`): run "
                f"`clearing validate --workdir {root} --date {d}` (then `clearing rate`) first"
            )
            raise MissingInputError(msg)
        if rating and not lake.partition(self.wd.lake, lake.UNRATED_VISITORS, day).is_dir():
            msg = (
                f"the rate stage has not run for {d} in `{root}` (no "
                f"`lake/unrated_visitors/date={d}`): run `clearing rate --workdir {root} "
                f"--date {d}` first"
            )
            raise MissingInputError(msg)
