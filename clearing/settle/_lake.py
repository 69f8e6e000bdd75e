"""Read-only access to what the earlier stages wrote: the Parquet lake and ``clearing.duckdb``.

:class:`Lake` opens an in-memory DuckDB connection, attaches the work folder's state file
read-only (``files``, ``findings``, ``rap_out``, ``acks_in``, ``raps_in``, ``returns_in``,
``outbound_files``, ``outbound_sequences``, ``outbox``) and the fetch ledger, and makes a view of
each; a table a stage never created reads as empty. Lake datasets are read per processing
date (``lake/<dataset>/date=D/...``) with the date as column ``processing_date``.

The money macros of :func:`clearing.money.duckdb_macros` keep money exact (HUGEINT
arithmetic, one rounding, half away from zero): ``fx(amount, scale, r_src, s_src, r_dst, s_dst,
m)`` converts, ``minor(c)`` is a currency's minor unit.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

import duckdb

from clearing.config import WorkDir
from clearing.errors import ClearingError, MissingInputError
from clearing.money import duckdb_macros

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

__all__ = ["SDR_SCALE", "Lake", "MissingInputError"]

SDR_SCALE = 6  # SDR amounts are shown with 6 decimals (the largest tapDecimalPlaces)

_DATE_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})")

# columns of lake datasets that may have no file at all for a date (typed, for empty views)
_EMPTY: dict[str, dict[str, str]] = {
    "rated_visitors": {
        "record_id": "VARCHAR", "record_type": "VARCHAR", "imsi": "VARCHAR",
        "start_time": "TIMESTAMP", "utc_offset": "VARCHAR", "duration": "BIGINT",
        "volume_up": "BIGINT", "volume_down": "BIGINT", "file": "VARCHAR", "line": "BIGINT",
        "partner": "VARCHAR", "standard": "VARCHAR", "service": "VARCHAR",
        "charged_units": "BIGINT", "price": "BIGINT", "price_scale": "BIGINT",
        "unit": "BIGINT", "charge": "BIGINT", "charge_scale": "BIGINT", "currency": "VARCHAR",
        "tax": "BIGINT", "status": "VARCHAR", "iot_key": "VARCHAR",
    },
    "rated_partner": {
        "file": "VARCHAR", "source_format": "VARCHAR", "partner": "VARCHAR",
        "event_index": "BIGINT", "event_kind": "VARCHAR", "local_start": "TIMESTAMP",
        "kind": "VARCHAR", "usage": "BIGINT", "currency": "VARCHAR", "charge_scale": "BIGINT",
        "charge": "BIGINT", "discount": "BIGINT", "camel_fee": "BIGINT", "tax": "BIGINT",
        "service": "VARCHAR", "charged_units": "BIGINT", "expected": "BIGINT",
        "charged": "BIGINT", "difference": "BIGINT", "breach": "BOOLEAN", "status": "VARCHAR",
        "payable": "BIGINT", "settlement_currency": "VARCHAR", "settlement_scale": "BIGINT",
        "settlement_amount": "BIGINT", "reason": "VARCHAR",
    },
    "iot_findings": {
        "partner": "VARCHAR", "file": "VARCHAR", "event_index": "BIGINT",
        "event_kind": "VARCHAR", "service": "VARCHAR", "local_start": "TIMESTAMP",
        "expected": "BIGINT", "charged": "BIGINT", "difference": "BIGINT",
        "charge_scale": "BIGINT", "currency": "VARCHAR", "tolerance": "VARCHAR",
        "iot_key": "VARCHAR",
    },
    "unrated_visitors": {
        "record_id": "VARCHAR", "file": "VARCHAR", "line": "BIGINT", "partner": "VARCHAR",
        "status": "VARCHAR", "reason": "VARCHAR",
    },
    "cdr_quarantine": {
        "record_id": "VARCHAR", "file": "VARCHAR", "line": "BIGINT", "reason": "VARCHAR",
    },
    "events_in": {
        "source_format": "VARCHAR", "sender": "VARCHAR", "recipient": "VARCHAR",
        "file_sequence_number": "VARCHAR", "event_index": "BIGINT", "event_kind": "VARCHAR",
        "imsi": "VARCHAR", "start_utc": "TIMESTAMPTZ", "local_start": "TIMESTAMP",
        "duration": "BIGINT", "data_volume_incoming": "BIGINT",
        "data_volume_outgoing": "BIGINT", "currency": "VARCHAR", "charge_scale": "TINYINT",
        "charge": "BIGINT", "tax": "BIGINT", "discount": "BIGINT", "camel_fee": "BIGINT",
        "refund": "BOOLEAN", "file": "VARCHAR", "status": "VARCHAR",
    },
    "retail": {
        "imsi": "VARCHAR", "sub_number": "VARCHAR", "role": "VARCHAR",
        "attribution_rule": "VARCHAR", "plan_id": "VARCHAR", "file": "VARCHAR",
        "sender": "VARCHAR", "event_index": "BIGINT", "service": "VARCHAR",
        "amount": "BIGINT", "currency": "VARCHAR", "scale": "TINYINT",
    },
}  # fmt: skip

# where each dataset's files are, under lake/<dataset>/date=D/
_GLOBS = {
    "events_in": "partner=*/*.parquet",
    "rated_visitors": "partner=*/*.parquet",
    "rated_partner": "partner=*/*.parquet",
    "unrated_visitors": "*.parquet",
    "cdr_quarantine": "*.parquet",
    "iot_findings": "*.parquet",
    "findings": "*.parquet",
    "retail": "bill_lines.parquet",
}


def _state_ddl() -> list[tuple[str, str]]:
    """The DDL of every state table (the stages' own, so the empty views match them)."""
    from clearing.outbound.sequences import _DDL as outbound_ddl
    from clearing.transport._collect import _SCHEMA as fetched_ddl
    from clearing.transport.outbox import _SCHEMA as outbox_ddl
    from clearing.validate.state import _SCHEMA as state_ddl

    return [("st", state_ddl), ("st", outbound_ddl), ("st", outbox_ddl), ("fl", fetched_ddl)]


_STATE_TABLES = {
    "st": (
        "files", "findings", "rap_out", "acks_in", "raps_in", "returns_in",
        "outbound_sequences", "outbound_files", "outbox",
    ),
    "fl": ("fetched",),
}  # fmt: skip


class Lake:
    """A read-only view of one work folder (close it, or use it as a context manager)."""

    def __init__(self, workdir: Path) -> None:
        self.wd = WorkDir(workdir)
        self.root = workdir
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        for macro in duckdb_macros():
            self.con.execute(macro)
        self.con.execute("CREATE SCHEMA empty")
        self.con.execute("SET schema = 'empty'")
        for _alias, ddl in _state_ddl():
            self.con.execute(ddl)
        self.con.execute("SET schema = 'main'")
        attached: dict[str, set[str]] = {"st": set(), "fl": set()}
        for alias, path in (("st", self.wd.db), ("fl", workdir / "fetch_ledger.duckdb")):
            if not path.exists():
                continue
            lit = str(path).replace("'", "''")
            try:
                self.con.execute(f"ATTACH '{lit}' AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                msg = (
                    f"cannot open `{path}` read-only ({exc}); if another clearing command is "
                    "writing it, wait for it to finish and run again"
                )
                raise ClearingError(msg) from None
            rows = self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]
            ).fetchall()
            attached[alias] = {r[0] for r in rows}
        for alias, tables in _STATE_TABLES.items():
            for t in tables:
                src = f"{alias}.main.{t}" if t in attached[alias] else f"memory.empty.{t}"
                self.con.execute(f"CREATE VIEW {t} AS SELECT * FROM {src}")
        self._fx_view()

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
        return self.wd.lake / dataset / f"date={day.isoformat()}"

    def dates(self, dataset: str) -> list[date]:
        """Processing dates for which ``dataset`` has a partition, in order."""
        folder = self.wd.lake / dataset
        if not folder.is_dir():
            return []
        out = []
        for p in folder.iterdir():
            m = _DATE_DIR.fullmatch(p.name)
            if m and p.is_dir():
                out.append(date.fromisoformat(m.group(1)))
        return sorted(out)

    def files(self, dataset: str, days: Iterable[date]) -> list[Path]:
        """The Parquet files of ``dataset`` for ``days``, sorted."""
        found: list[Path] = []
        for d in sorted(set(days)):
            folder = self.partition(dataset, d)
            if folder.is_dir():
                found += sorted(folder.glob(_GLOBS[dataset]))
        return found

    def view(self, name: str, dataset: str, days: Iterable[date]) -> list[Path]:
        """Create view ``name`` over ``dataset`` for ``days`` (+ ``processing_date``).

        Returns the files read (for the audit sheet).
        """
        files = self.files(dataset, days)
        if not files:
            cols = ", ".join(
                f"CAST(NULL AS {t}) AS {c}" for c, t in _EMPTY.get(dataset, {}).items()
            )
            sep = ", " if cols else ""
            self.con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT {cols}{sep}"
                "CAST(NULL AS DATE) AS processing_date WHERE false"
            )
            return []
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        self.con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * EXCLUDE (filename), "
            "CAST(regexp_extract(filename, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE) "
            "AS processing_date "
            f"FROM read_parquet([{listing}], union_by_name = true, filename = true)"
        )
        return files

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
        if not (self.partition("findings", day) / "findings.parquet").exists():
            msg = (
                f"nothing validated for {d} in `{root}` (no `lake/findings/date={d}`): run "
                f"`clearing validate --workdir {root} --date {d}` (then `clearing rate`) first"
            )
            raise MissingInputError(msg)
        if rating and not self.partition("unrated_visitors", day).is_dir():
            msg = (
                f"the rate stage has not run for {d} in `{root}` (no "
                f"`lake/unrated_visitors/date={d}`): run `clearing rate --workdir {root} "
                f"--date {d}` first"
            )
            raise MissingInputError(msg)
