"""Reference data: human-editable CSV sources → hive-partitioned Parquet, for any table.

``import_rates(DIR)`` reads ``DIR/sources/<table>.csv`` for every table that has a schema in
``specs/rates/<table>.csv`` and writes ``DIR/<table>/partner=XXXXX/valid_from=YYYY-MM-DD/
part-0.parquet`` (``DIR/<table>/valid_from=…/`` for tables without a ``partner`` column); the
partition columns are also kept inside the files, so any reader gets their types. It refuses,
with a :class:`~clearing.errors.ConfigError` naming the table, key and source lines:

* a cell of the wrong type or outside its check;
* two versions of the same key whose validity overlaps;
* a gap between consecutive versions of a key, when the schema says ``continuous: yes``.

An empty ``valid_to`` means "until the next version of the same key"; the resolved value is
stored, so readers filter with ``valid_from <= day < valid_to`` (null = open). Every row gets a
``version``: a content hash of the table name and the row's values, so a rated row can record the
exact tariff row it used, and an unchanged row keeps its version when other rows change. Output
bytes depend only on the sources (sorted rows, fixed writer options); each table is swapped in
whole, so a failed import leaves the previous Parquet untouched. Every import that changes the
tables' content is recorded as a version under ``DIR/versions/`` (:mod:`clearing.rating.versions`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from clearing.errors import ConfigError
from clearing.rating._schema import TableSchema, schemas

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import duckdb

__all__ = [
    "FX_JUMP",
    "FX_MAX",
    "FX_MIN",
    "ImportedTable",
    "check_reference",
    "duckdb_view",
    "fx_problems",
    "import_rates",
    "read_table",
    "row_version",
    "table_glob",
]

SOURCES = "sources"
_MAX_PROBLEMS = 25

FX_MIN = Decimal("0.0001")
"""The fewest units of a currency per 1 SDR that is believable (the dearest currency, KWD,
is about 0.4)."""
FX_MAX = Decimal(10_000_000)
"""The most units of a currency per 1 SDR that is believable (the cheapest, IRR, is about
10**6)."""
FX_JUMP = 1000
"""A rate more than this factor away from the currency's rate before it is a typo (a scale
or a decimal point), not a market move."""


def fx_problems(
    rows: Iterable[dict[str, Any]], before: dict[str, Decimal] | None = None
) -> list[str]:
    """What is absurd in rows of the ``fx`` table (currency, valid_from, rate, rate_scale).

    A rate (units per SDR) outside :data:`FX_MIN` … :data:`FX_MAX`, or more than
    :data:`FX_JUMP` times away from the currency's rate before it (the previous row of the
    currency by ``valid_from``, or ``before[currency]``, the rate in place before an import).
    """
    problems: list[str] = []
    last: dict[str, Decimal] = dict(before or {})
    ordered = sorted(rows, key=lambda r: (str(r["currency"]), r["valid_from"]))
    for r in ordered:
        cur, rate, scale = str(r["currency"]), r["rate"], r["rate_scale"]
        if rate is None or scale is None:
            continue
        value = Decimal(int(rate)).scaleb(-int(scale))
        where = f"{cur} from {r['valid_from']}: rate {rate} scale {scale} = {value} per SDR"
        if not FX_MIN <= value <= FX_MAX:
            problems.append(f"{where}, outside {FX_MIN} … {FX_MAX}")
        elif cur in last and last[cur] > 0 and max(value / last[cur], last[cur] / value) > FX_JUMP:
            problems.append(
                f"{where}, more than {FX_JUMP} times the rate before it ({last[cur]}): "
                "a wrong scale or decimal point?"
            )
        last[cur] = value
    return problems


def check_reference(rates_dir: Path, *, specs: Path | None = None) -> None:
    """Refuse imported reference data a night cannot use: an absurd exchange rate.

    Checked before a night touches anything. A table not imported (yet) is not checked here
    (the stage that needs it says so).

    Raises:
        ConfigError: the ``fx`` table holds an absurd rate (which, and what to do).
    """
    folder = rates_dir / "fx"
    if not folder.is_dir() or not any(folder.glob("**/*.parquet")):
        return
    rows = read_table(rates_dir, "fx", specs=specs).to_dicts()
    problems = fx_problems(rows)
    if problems:
        shown = "; ".join(problems[:_MAX_PROBLEMS])
        msg = (
            f"rates table `fx` in `{rates_dir}` holds absurd rate(s): {shown}. Correct "
            f"`{rates_dir / SOURCES / 'fx.csv'}`, run `clearing rates import`, then run again "
            "(nothing was done)"
        )
        raise ConfigError(msg)


@dataclass(frozen=True, slots=True)
class ImportedTable:
    """What one table's import wrote."""

    name: str
    rows: int
    partitions: int
    source_sha256: str
    path: Path


@dataclass(slots=True)
class _Row:
    line: int
    values: dict[str, Any]


def row_version(table: str, values: Iterable[Any]) -> str:
    """The content hash of one source row (16 hex digits)."""
    text = "\x1f".join([table, *("" if v is None else str(v) for v in values)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_source(schema: TableSchema, path: Path) -> list[_Row]:
    where = f"rates table `{schema.name}` (`{path}`)"
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        msg = f"{where}: cannot read: {exc.strerror}"
        raise ConfigError(msg) from None
    except UnicodeDecodeError:
        msg = f"{where}: not UTF-8 text"
        raise ConfigError(msg) from None
    # comment lines are blanked, not removed, so that line numbers stay those of the file
    text = "\n".join("" if ln.lstrip().startswith("#") else ln for ln in raw.splitlines())
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    problems: list[str] = []
    rows: list[_Row] = []
    known = {c.name for c in schema.columns}
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                unknown = [h for h in header if h not in known]
                missing = [c.name for c in schema.columns if c.required and c.name not in header]
                twice = sorted({h for h in header if header.count(h) > 1})
                if unknown or missing or twice:
                    parts = []
                    if unknown:
                        parts.append(f"unknown column(s) {', '.join(unknown)}")
                    if missing:
                        parts.append(f"required column(s) missing: {', '.join(missing)}")
                    if twice:
                        parts.append(f"column(s) listed twice: {', '.join(twice)}")
                    msg = (
                        f"{where}, line {reader.line_num}: {'; '.join(parts)} "
                        f"(see `{schema.source}`)"
                    )
                    raise ConfigError(msg)
                continue
            line = reader.line_num
            if len(cells) != len(header):
                problems.append(f"line {line}: {len(cells)} cells, the header has {len(header)}")
                continue
            given = dict(zip(header, cells, strict=True))
            values: dict[str, Any] = {}
            for col in schema.columns:
                value, problem = col.parse(given.get(col.name, ""))
                if problem:
                    shown = given.get(col.name, "")
                    problems.append(f"line {line}, column `{col.name}` = {shown!r}: {problem}")
                values[col.name] = value
            # the version hashes the row as written (before `valid_to` is resolved), so a
            # row keeps its version when a later version of its key is added
            values["version"] = row_version(schema.name, (values[c.name] for c in schema.columns))
            values["source_line"] = line
            rows.append(_Row(line, values))
    except csv.Error as exc:
        msg = f"{where}, line {reader.line_num}: not valid CSV: {exc}"
        raise ConfigError(msg) from None
    if header is None:
        msg = f"{where}: empty (a header line is needed)"
        raise ConfigError(msg)
    _raise(where, problems)
    return rows


def _check_fx(rates_dir: Path, rows: list[_Row], path: Path, specs: Path | None) -> None:
    """Refuse an absurd exchange rate in a source being imported (nothing is written then)."""
    new = [r.values for r in rows]
    problems = fx_problems(new)
    firsts: dict[str, dict[str, Any]] = {}
    for r in sorted(new, key=lambda r: (str(r["currency"]), r["valid_from"])):
        firsts.setdefault(str(r["currency"]), r)
    folder = rates_dir / "fx"
    if folder.is_dir() and any(folder.glob("**/*.parquet")):
        # the rate in place just before a currency's first new row (a source cut short)
        before: dict[str, Decimal] = {}
        old = read_table(rates_dir, "fx", specs=specs).to_dicts()
        for r in sorted(old, key=lambda r: (str(r["currency"]), r["valid_from"])):
            first = firsts.get(str(r["currency"]))
            if first is not None and r["valid_from"] < first["valid_from"]:
                before[str(r["currency"])] = Decimal(int(r["rate"])).scaleb(-int(r["rate_scale"]))
        problems += [
            f"{p} (the rate in place)"
            for p in fx_problems(firsts.values(), before)
            if "times the rate before it" in p
        ]
    _raise(f"rates table `fx` (`{path}`)", problems)


def _raise(where: str, problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:_MAX_PROBLEMS]
    more = len(problems) - len(shown)
    tail = f"; … and {more} more" if more else ""
    msg = f"{where}: {len(problems)} problem(s): " + "; ".join(shown) + tail
    raise ConfigError(msg)


def _key_text(schema: TableSchema, row: _Row) -> str:
    return "(" + ", ".join(f"{k}={row.values[k]!r}" for k in schema.key) + ")"


def _resolve_validity(schema: TableSchema, rows: list[_Row], path: Path) -> None:
    """Fill empty ``valid_to`` with the next version's start; refuse overlaps and gaps."""
    where = f"rates table `{schema.name}` (`{path}`)"
    vf, vt = schema.valid_from, schema.valid_to
    problems: list[str] = []
    groups: dict[tuple[Any, ...], list[_Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.values[k] for k in schema.key), []).append(row)
        if vt and row.values[vt] is not None and row.values[vt] <= row.values[vf]:
            problems.append(
                f"line {row.line}: {vt} {row.values[vt]} is not after {vf} {row.values[vf]}"
            )
    for versions in groups.values():
        versions.sort(key=lambda r: (r.values[vf], r.line))
        for a, b in itertools.pairwise(versions):
            start_a, start_b = a.values[vf], b.values[vf]
            end_a = a.values[vt] if vt else None
            key = _key_text(schema, a)
            if start_a == start_b:
                problems.append(
                    f"key {key}: overlapping validity: lines {a.line} and {b.line} both start "
                    f"on {start_a}"
                )
            elif end_a is None:
                if vt:
                    a.values[vt] = start_b
            elif end_a > start_b:
                problems.append(
                    f"key {key}: overlapping validity: line {a.line} ({start_a} to {end_a}) "
                    f"and line {b.line} (from {start_b})"
                )
            elif end_a < start_b and schema.continuous:
                problems.append(
                    f"key {key}: gap in validity: line {a.line} ends on {end_a}, the next "
                    f"version (line {b.line}) starts on {start_b}; the table must be continuous"
                )
    _raise(where, problems)


def _sort_key(schema: TableSchema, row: _Row) -> tuple[Any, ...]:
    return (*(str(row.values[k]) for k in schema.key), row.values[schema.valid_from], row.line)


def _partition_dir(schema: TableSchema, row: _Row) -> str:
    parts = []
    for name in schema.partition_columns:
        value = row.values[name]
        text = value.isoformat() if isinstance(value, date) else str(value)
        parts.append(f"{name}={text}")
    return "/".join(parts)


def _write_table(schema: TableSchema, rows: list[_Row], target: Path, source_sha: str) -> int:
    file_schema = schema.file_schema()
    by_part: dict[str, list[_Row]] = {}
    for row in sorted(rows, key=lambda r: _sort_key(schema, r)):
        by_part.setdefault(_partition_dir(schema, row), []).append(row)
    for part, part_rows in sorted(by_part.items()):
        folder = target / part
        folder.mkdir(parents=True)
        columns = {
            f.name: pa.array([r.values[f.name] for r in part_rows], type=f.type)
            for f in file_schema
        }
        table = pa.table(columns, schema=file_schema)
        pq.write_table(table, folder / "part-0.parquet", compression="zstd")
    manifest = {
        "table": schema.name,
        "source": f"{SOURCES}/{schema.name}.csv",
        "source_sha256": source_sha,
        "rows": len(rows),
        "partitions": sorted(by_part),
    }
    (target / "_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return len(by_part)


def import_rates(
    rates_dir: Path,
    *,
    specs: Path | None = None,
    tables: Iterable[str] | None = None,
    imported_at: datetime | None = None,
) -> list[ImportedTable]:
    """Import every source of ``rates_dir/sources`` that has a schema; return what was written.

    The import is append-only: when the tables' content changes, a new version is recorded in
    ``rates_dir/versions`` (:mod:`clearing.rating.versions`); tables imported before versions
    existed are first recorded as ``v1``.

    Args:
        rates_dir: the reference-data folder (``<workdir>/rates``).
        specs: the folder of schema files (default: the project's ``specs/rates``).
        tables: only these tables (default: every table with a source file).
        imported_at: the import time to record in a new version (default: now).

    Raises:
        ConfigError: a source without a schema, a bad cell, an overlap or a gap (nothing of
            that table is written then).
    """
    known = schemas(specs)
    src_dir = rates_dir / SOURCES
    if not src_dir.is_dir():
        msg = f"no reference-data sources: `{src_dir}` is not a folder"
        raise ConfigError(msg)
    wanted = sorted(set(tables)) if tables is not None else None
    sources = sorted(src_dir.glob("*.csv"))
    unknown = [p.stem for p in sources if p.stem not in known]
    if unknown and wanted is None:
        msg = (
            f"source(s) without a schema in `{src_dir}`: {', '.join(unknown)} "
            f"(known tables: {', '.join(known)})"
        )
        raise ConfigError(msg)
    todo = [p for p in sources if p.stem in known and (wanted is None or p.stem in wanted)]
    if wanted is not None:
        missing = [t for t in wanted if t not in {p.stem for p in todo}]
        if missing:
            msg = f"no source for table(s) {', '.join(missing)} in `{src_dir}`"
            raise ConfigError(msg)
    # parse and check everything first: one bad table writes nothing
    parsed: list[tuple[TableSchema, list[_Row], str]] = []
    for path in todo:
        schema = known[path.stem]
        rows = _read_source(schema, path)
        _resolve_validity(schema, rows, path)
        if schema.name == "fx":
            _check_fx(rates_dir, rows, path, specs)
        parsed.append((schema, rows, hashlib.sha256(path.read_bytes()).hexdigest()))
    from clearing.rating.versions import adopt_current, record_version

    adopt_current(rates_dir, specs=specs)  # the tables in place, before they are replaced
    out: list[ImportedTable] = []
    for schema, rows, sha in parsed:
        final = rates_dir / schema.name
        tmp = rates_dir / f".{schema.name}.importing-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            n_parts = _write_table(schema, rows, tmp, sha)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = rates_dir / f".{schema.name}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        out.append(ImportedTable(schema.name, len(rows), n_parts, sha, final))
    record_version(rates_dir, imported_at=imported_at, specs=specs)
    return out


def table_glob(rates_dir: Path, table: str) -> str:
    """The glob of a table's Parquet files."""
    return str(rates_dir / table / "**" / "*.parquet")


def read_table(rates_dir: Path, table: str, *, specs: Path | None = None) -> pl.DataFrame:
    """One imported table as a DataFrame, partition columns included, in a stable order.

    Raises:
        ConfigError: no schema for the table, or it was never imported.
    """
    known = schemas(specs)
    if table not in known:
        msg = f"no schema for rates table `{table}` (known: {', '.join(known)})"
        raise ConfigError(msg)
    schema = known[table]
    folder = rates_dir / table
    files = sorted(folder.glob("**/*.parquet")) if folder.is_dir() else []
    if not files:
        msg = (
            f"rates table `{table}` is not imported in `{rates_dir}`: put its source in "
            f"`{rates_dir / SOURCES / (table + '.csv')}` and run `clearing rates import`"
        )
        raise ConfigError(msg)
    arrow = schema.arrow_schema()
    # every column is in the files (partition columns too), typed as the schema says
    df = pl.read_parquet([str(f) for f in files], hive_partitioning=False)
    order = [f.name for f in arrow]
    return df.select(order).sort([*schema.key, schema.valid_from], nulls_last=True)


def duckdb_view(
    con: duckdb.DuckDBPyConnection,
    rates_dir: Path,
    table: str,
    *,
    name: str | None = None,
    specs: Path | None = None,
) -> str:
    """Create (or replace) a DuckDB view of an imported table; return the view's name.

    The view is named ``rates_<table>`` unless ``name`` is given; columns come from the files
    (a SID/BID such as ``04172`` stays a string).
    """
    read_table(rates_dir, table, specs=specs)  # checks the table exists
    view = name or f"rates_{table}"
    glob = table_glob(rates_dir, table).replace("'", "''")
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet('{glob}', "
        "hive_partitioning = false)"
    )
    return view
