"""Reference data of retail rating: subscribers, sub-numbers, plans, overage tiers, defaults.

The five tables are described by schema files in ``specs/rates/`` (the format of the generic
rates importer: ``column,type,required,role,default,check,description``). They come either as
the importer's hive-partitioned Parquet (``rates/<table>/valid_from=…/*.parquet``) or, before
an import, straight from the CSV sources (``rates/sources/<table>.csv``); :func:`prepare_tables`
checks and normalises them the same way whatever their origin, so :func:`clearing.rating.retail.
rate_retail` can take Arrow tables, DuckDB relations or polars frames.

Validity follows the importer: ``valid_from`` is the first day a row applies, ``valid_to`` the
first day it no longer does (an empty ``valid_to`` runs until the next version of the same key,
or forever). Days are days of the billing clock.

Every problem is a :class:`~clearing.errors.ConfigError` naming the table, the source line (CSV,
or ``source_line`` of imported Parquet) or row, and the column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa

from clearing import lake
from clearing.config import environment
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    Row = dict[str, Any]

__all__ = [
    "OPTIONAL_TABLES",
    "RETAIL_TABLES",
    "SERVICES",
    "ColumnSpec",
    "RetailTables",
    "TableLike",
    "load_retail_tables",
    "prepare_tables",
    "read_source",
    "table_spec",
]

#: The tables retail rating reads, in dependency order.
RETAIL_TABLES = ("subscribers", "sub_numbers", "plans", "plans_tiers", "plan_defaults", "topups")

#: Tables that may be absent from a rates folder (read as empty).
OPTIONAL_TABLES = frozenset({"plan_defaults", "topups"})

#: Tables of dated facts rather than versions (no ``valid_to``).
_EVENTS = frozenset({"topups"})

#: Retail services, in bill order.
SERVICES = lake.RETAIL_SERVICES

#: Anything with the Arrow C stream interface: ``pa.Table``, DuckDB relation, polars frame.
TableLike = Any

_ARROW = {"str": pa.string(), "int": pa.int64(), "date": pa.date32(), "bool": pa.bool_()}
_POLARS: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "date": pl.Date(),
    "bool": pl.Boolean(),
}
_MAX_SHOWN = 10


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a retail table, as its schema file describes it."""

    name: str
    type: str  # str | int | date | bool (enums are str with choices)
    required: bool
    role: str  # key | valid_from | valid_to | ""
    default: str
    check: str
    choices: tuple[str, ...]

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type of the column's values."""
        return _ARROW[self.type]


def _specs_dir() -> Path:
    return environment().rates_specs_dir


@cache
def table_spec(table: str) -> tuple[ColumnSpec, ...]:
    """The columns of a retail table, read from ``specs/rates/<table>.csv``.

    Raises:
        ConfigError: the schema file is missing or not in the rates schema format.
    """
    path = _specs_dir() / f"{table}.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the schema of rates table `{table}` (`{path}`): {exc.strerror}"
        raise ConfigError(msg) from None
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    cols: list[ColumnSpec] = []
    for row in csv.DictReader(io.StringIO(body)):
        typ = row["type"].strip()
        choices: tuple[str, ...] = ()
        if typ.startswith("enum:"):
            typ, choices = "str", tuple(typ[5:].split("|"))
        if typ not in _ARROW:
            msg = f"schema `{path}`: column `{row['column']}` has unsupported type `{typ}`"
            raise ConfigError(msg)
        cols.append(
            ColumnSpec(
                name=row["column"].strip(),
                type=typ,
                required=row["required"].strip().lower() in ("yes", "true", "1"),
                role=row["role"].strip(),
                default=row["default"].strip(),
                check=row["check"].strip(),
                choices=choices,
            )
        )
    return tuple(cols)


@dataclass(frozen=True, slots=True)
class RetailTables:
    """The checked reference tables (Arrow), ``valid_to`` resolved (null = open).

    ``sub_numbers`` is as given: a row without ``plan_id`` takes a default plan
    (:func:`clearing.rating.retail_plans.assign_plans` resolves them).
    """

    subscribers: pa.Table
    sub_numbers: pa.Table
    plans: pa.Table
    plans_tiers: pa.Table
    plan_defaults: pa.Table
    topups: pa.Table


# ---------------------------------------------------------------------------------------------
# problems


def _where(table: str, df: pl.DataFrame, i: int) -> str:
    """``rates table `t`, line N`` (source line known) or ``…, row N`` (1-based)."""
    line = df["source_line"][i] if "source_line" in df.columns else None
    at = f"line {line}" if line is not None else f"row {i + 1}"
    return f"rates table `{table}`, {at}"


def _fail(table: str, df: pl.DataFrame, bad: pl.Series, say: Callable[[Row], str]) -> None:
    """Raise for the rows where ``bad`` is true: ``say(row)`` of each (the first few shown)."""
    idx = bad.fill_null(value=False).arg_true().to_list()
    if not idx:
        return
    shown = [f"{_where(table, df, i)}: {say(df.row(i, named=True))}" for i in idx]
    more = len(shown) - _MAX_SHOWN
    msg = "; ".join(shown[:_MAX_SHOWN]) + (f"; … and {more} more" if more > 0 else "")
    raise ConfigError(msg)


def _cell_says(column: str, problem: str) -> Callable[[Row], str]:
    """``column `c` = 'value': problem`` for a row."""
    return lambda row: f"column `{column}` = {row.get(column)!r}: {problem}"


# ---------------------------------------------------------------------------------------------
# CSV sources


def read_source(table: str, path: Path) -> pl.DataFrame:
    """A CSV source typed by its schema, with a ``source_line`` column; not yet checked.

    ``#`` lines are comments. Cells are trimmed; an empty optional cell takes the column's
    default, or is null.

    Raises:
        ConfigError: unreadable file, unknown or missing columns, a cell of the wrong type.
    """
    spec = table_spec(table)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        msg = f"rates table `{table}`: cannot read `{path}`: {exc.strerror}"
        raise ConfigError(msg) from None
    text = "\n".join("" if ln.lstrip().startswith("#") else ln for ln in text.splitlines())
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    cells: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip() for c in row]
            known = {c.name for c in spec}
            unknown = [h for h in header if h not in known]
            missing = [c.name for c in spec if c.required and c.name not in header]
            if unknown or missing or len(set(header)) != len(header):
                msg = (
                    f"rates table `{table}` (`{path}`), line {reader.line_num}: the header "
                    f"must name columns of `specs/rates/{table}.csv` once each "
                    f"(unknown: {', '.join(unknown) or '-'}; missing: {', '.join(missing) or '-'})"
                )
                raise ConfigError(msg)
            continue
        if len(row) != len(header):
            msg = (
                f"rates table `{table}` (`{path}`), line {reader.line_num}: {len(row)} cells, "
                f"the header has {len(header)}"
            )
            raise ConfigError(msg)
        cells.append([c.strip() for c in row])
        lines.append(reader.line_num)
    if header is None:
        msg = f"rates table `{table}` (`{path}`): empty (a header line is needed)"
        raise ConfigError(msg)
    raw = pl.DataFrame(
        {h: [r[j] for r in cells] for j, h in enumerate(header)},
        schema=dict.fromkeys(header, pl.String()),
    ).with_columns(source_line=pl.Series(lines, dtype=pl.Int32()))
    out: list[pl.Series] = []
    for col in spec:
        s = raw[col.name] if col.name in raw.columns else pl.repeat("", raw.height, eager=True)
        s = s.replace("", col.default or None)
        if col.type == "int":
            typed = s.cast(pl.Int64(), strict=False)
            bad = s.is_not_null() & ~s.str.contains(r"^[+-]?[0-9]+$")
            problem = "must be an integer (no decimal point: amounts use the plan's scale)"
        elif col.type == "date":
            typed = s.str.to_date("%Y-%m-%d", strict=False)
            bad = s.is_not_null() & (typed.is_null() | ~s.str.contains(r"^\d{4}-\d\d-\d\d$"))
            problem = "must be a date YYYY-MM-DD"
        elif col.type == "bool":
            low = s.str.to_lowercase()
            typed = low.replace_strict(
                ["yes", "true", "1", "no", "false", "0"],
                [True, True, True, False, False, False],
                default=None,
                return_dtype=pl.Boolean(),
            )
            bad = s.is_not_null() & typed.is_null()
            problem = "must be yes or no"
        else:
            typed, bad, problem = s, pl.repeat(value=False, n=raw.height, eager=True), ""
        _fail(table, raw, bad, _cell_says(col.name, problem))
        out.append(typed.alias(col.name))
    return pl.DataFrame([*out, raw["source_line"]])


# ---------------------------------------------------------------------------------------------
# checks


def _to_polars(table: str, data: TableLike) -> pl.DataFrame:
    """Any table-like value as a polars frame with the schema's columns, cast to their types."""
    if isinstance(data, pl.DataFrame):
        df = data
    else:
        arrow = data if isinstance(data, pa.Table) else pa.table(data)
        df = pl.from_arrow(arrow)  # type: ignore[assignment]
    assert isinstance(df, pl.DataFrame)
    spec = table_spec(table)
    missing = [c.name for c in spec if c.required and c.name not in df.columns]
    if missing:
        msg = f"rates table `{table}`: required column(s) missing: {', '.join(missing)}"
        raise ConfigError(msg)
    cols: list[pl.Series] = []
    for col in spec:
        if col.name not in df.columns:
            cols.append(pl.Series(col.name, [None] * df.height, dtype=_POLARS[col.type]))
            continue
        src = df[col.name]
        if col.role == "key" and not col.required and col.type == "str":
            src = src.replace("", None)  # the rates importer stores an empty key as ''
        typed = src.cast(_POLARS[col.type], strict=False)
        bad = src.is_not_null() & typed.is_null()
        _fail(table, df, bad, _cell_says(col.name, f"not a {col.type}"))
        cols.append(typed.alias(col.name))
    if "source_line" in df.columns:
        line = df["source_line"].cast(pl.Int32())
    else:
        line = pl.Series("source_line", [None] * df.height, dtype=pl.Int32())
    return pl.DataFrame([*cols, line])


def _check_columns(table: str, df: pl.DataFrame) -> None:
    """Required cells, enumerations and the schema's ``check`` of every column."""
    for col in table_spec(table):
        s = df[col.name]
        if col.required:
            _fail(table, df, s.is_null(), _cell_says(col.name, "is required"))
        if col.choices:
            bad = s.is_not_null() & ~s.is_in(col.choices)
            _fail(table, df, bad, _cell_says(col.name, f"must be one of {', '.join(col.choices)}"))
        if not col.check:
            continue
        if col.type == "str":
            bad = s.is_not_null() & ~s.str.contains(col.check)
            _fail(table, df, bad, _cell_says(col.name, f"does not match `{col.check}`"))
        elif col.type == "int" and col.check.startswith(">="):
            bad = s < int(col.check[2:])
            _fail(table, df, bad, _cell_says(col.name, f"must be {col.check}"))
        elif col.type == "int":
            lo, _, hi = col.check.partition("..")
            bad = (s < int(lo)) | (s > int(hi))
            _fail(table, df, bad, _cell_says(col.name, f"must be in {col.check}"))


def _key(table: str) -> list[str]:
    return [c.name for c in table_spec(table) if c.role == "key"]


def _resolve_validity(table: str, df: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Fill an empty ``valid_to`` with the next version's start; refuse overlapping versions."""
    _fail(
        table,
        df,
        df["valid_to"] <= df["valid_from"],
        lambda r: f"`valid_to` {r['valid_to']} is not after `valid_from` {r['valid_from']}",
    )
    df = df.sort([*key, "valid_from", "source_line"], nulls_last=True)
    df = df.with_columns(_next=pl.col("valid_from").shift(-1).over(list(key)))
    nxt, vt = df["_next"], df["valid_to"]
    overlap = nxt.is_not_null() & ((vt.is_null() & (nxt == df["valid_from"])) | (vt > nxt))
    _fail(
        table,
        df,
        overlap,
        lambda r: (
            f"key ({', '.join(f'{k}={r[k]!r}' for k in key)}): validity overlaps the next "
            f"version, which starts on {r['_next']}"
        ),
    )
    return df.with_columns(valid_to=pl.coalesce("valid_to", "_next")).drop("_next")


def _check_unique_in_time(table: str, df: pl.DataFrame, by: list[str], what: str) -> None:
    """Refuse two rows with the same ``by`` values whose validity overlaps."""
    open_end = pl.date(9999, 12, 31)
    rows = df.filter(pl.all_horizontal(pl.col(by).is_not_null())).with_row_index("_i")
    pairs = (
        rows.join(rows, on=by, suffix="_b")
        .filter(
            (pl.col("_i") < pl.col("_i_b"))
            & (pl.col("valid_from") < pl.coalesce("valid_to_b", open_end))
            & (pl.col("valid_from_b") < pl.coalesce("valid_to", open_end))
        )
        .sort("_i", "_i_b")
    )
    if pairs.height:
        first = pairs.row(0, named=True)
        a, b = first["source_line"], first["source_line_b"]
        where = f"lines {a} and {b}" if a is not None and b is not None else "two rows"
        vals = ", ".join(f"{k}={first[k]!r}" for k in by)
        msg = f"rates table `{table}`, {where}: {what} ({vals}) at the same time"
        raise ConfigError(msg)


def _check_reference(
    table: str, df: pl.DataFrame, column: str, other: str, other_df: pl.DataFrame
) -> None:
    """Refuse a value of ``column`` that the same column of ``other`` does not have."""
    bad = df[column].is_not_null() & ~df[column].is_in(other_df[column].unique().implode())
    _fail(table, df, bad, _cell_says(column, f"no such `{column}` in rates table `{other}`"))


def _pair(df: pl.DataFrame) -> pl.Series:
    return df["imsi"] + "|" + df["msisdn"]


def _empty(table: str) -> pl.DataFrame:
    """A table of no rows with the schema's columns."""
    return pl.DataFrame(schema={c.name: _POLARS[c.type] for c in table_spec(table)})


def prepare_tables(
    subscribers: TableLike,
    sub_numbers: TableLike,
    plans: TableLike,
    plans_tiers: TableLike,
    plan_defaults: TableLike | None = None,
    topups: TableLike | None = None,
) -> RetailTables:
    """Check and normalise the reference tables; return them as Arrow tables.

    Each input may be a ``pa.Table``, a DuckDB relation or a polars frame with the columns of
    its schema file (optional ones may be missing; ``source_line`` is kept when present).
    Empty ``valid_to`` cells are resolved to the next version's ``valid_from``; APNs are
    lower-cased.

    Raises:
        ConfigError: a missing or badly typed column, a required cell left empty, a value
            outside its check, overlapping versions, a sub-number whose card or plan does not
            exist, a card without its primary number, two primaries of one card at the same
            time, a selection code or APN used twice on one card at the same time, a day pass
            without price or services, a plan's service whose tiers do not start at 0, a
            default naming no plan.
    """
    defaults = _empty("plan_defaults") if plan_defaults is None else plan_defaults
    credit = _empty("topups") if topups is None else topups
    inputs = (subscribers, sub_numbers, plans, plans_tiers, defaults, credit)
    frames: dict[str, pl.DataFrame] = {}
    for name, data in zip(RETAIL_TABLES, inputs, strict=True):
        df = _to_polars(name, data)
        _check_columns(name, df)
        frames[name] = df if name in _EVENTS else _resolve_validity(name, df, _key(name))
    subs, nums, plan, tiers, dflt, credit_ = (frames[n] for n in RETAIL_TABLES)

    _check_reference("sub_numbers", nums, "imsi", "subscribers", subs)
    _check_reference("sub_numbers", nums, "plan_id", "plans", plan)
    _check_reference("plans_tiers", tiers, "plan_id", "plans", plan)
    _check_reference("plan_defaults", dflt, "plan_id", "plans", plan)
    _check_reference("topups", credit_, "imsi", "subscribers", subs)

    # one primary per card at any time, and it is the card's own msisdn
    primaries = nums.filter(pl.col("role") == "primary")
    _check_unique_in_time("sub_numbers", primaries, ["imsi"], "two primary numbers of one card")
    _fail(
        "subscribers",
        subs,
        ~_pair(subs).is_in(_pair(primaries).implode()),
        lambda r: f"card {r['imsi']}: no `sub_numbers` row makes {r['msisdn']} its primary",
    )
    _fail(
        "sub_numbers",
        primaries,
        ~_pair(primaries).is_in(_pair(subs).implode()),
        lambda r: f"primary number {r['msisdn']} is not the msisdn of card {r['imsi']}",
    )
    nums = nums.with_columns(apn=pl.col("apn").str.to_lowercase())
    _check_unique_in_time(
        "sub_numbers", nums, ["imsi", "selection_code"], "one selection code on two numbers"
    )
    _check_unique_in_time("sub_numbers", nums, ["imsi", "apn"], "one APN on two numbers")

    _fail(
        "plans",
        plan,
        plan["day_pass_price"].is_null() != plan["day_pass_services"].is_null(),
        lambda r: f"plan {r['plan_id']}: `day_pass_price` and `day_pass_services` go together",
    )
    starts = tiers.group_by("plan_id", "service").agg(pl.col("from_units").min().alias("_min"))
    tiers_ = tiers.join(starts, on=["plan_id", "service"], how="left")
    _fail(
        "plans_tiers",
        tiers_,
        tiers_["_min"] > 0,
        lambda r: (
            f"plan {r['plan_id']}, service {r['service']}: the first tier must start at "
            f"`from_units` 0, not {r['_min']}"
        ),
    )
    return RetailTables(
        subscribers=subs.to_arrow(),
        sub_numbers=nums.to_arrow(),
        plans=plan.to_arrow(),
        plans_tiers=tiers.to_arrow(),
        plan_defaults=dflt.to_arrow(),
        topups=credit_.sort("imsi", "day", "time").to_arrow(),
    )


# ---------------------------------------------------------------------------------------------
# from a rates folder


def _read_parquet(table: str, folder: Path) -> pl.DataFrame:
    """An imported table: hive-partitioned Parquet, partition columns typed by the schema."""
    spec = {c.name: c for c in table_spec(table)}
    glob = str(folder / "**" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    try:
        rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
        cols = [c for c in rel.columns if c in spec or c == "source_line"]
        arrow = rel.select(*cols).to_arrow_table()
    finally:
        con.close()
    df = pl.from_arrow(arrow)
    assert isinstance(df, pl.DataFrame)
    return df


def load_retail_tables(rates_dir: Path) -> RetailTables:
    """The retail tables of a rates folder, checked (see :func:`prepare_tables`).

    A table is read from its imported Parquet (``rates_dir/<table>/``) when there is any, else
    from its source ``rates_dir/sources/<table>.csv``.

    Raises:
        ConfigError: a table is neither imported nor has a source, or it is wrong.
    """
    frames: list[pl.DataFrame] = []
    for table in RETAIL_TABLES:
        folder = rates_dir / table
        source = rates_dir / "sources" / f"{table}.csv"
        if folder.is_dir() and any(folder.glob("**/*.parquet")):
            frames.append(_read_parquet(table, folder))
        elif source.is_file():
            frames.append(read_source(table, source))
        elif table in OPTIONAL_TABLES:
            frames.append(_empty(table))
        else:
            msg = (
                f"rates table `{table}` is missing: neither `{folder}` (imported Parquet) "
                f"nor its source `{source}` exists; write the source "
                "(e.g. `clearing.samples.subscribers.write_subscriber_sources`) and import it"
            )
            raise ConfigError(msg)
    return prepare_tables(*frames)
