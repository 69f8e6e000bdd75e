"""Mediation CDRs of visitors on our network (``specs/mediation/cdr.csv``).

CSV or Parquet in, a typed record table out, bad rows as findings and quarantine rows, never an
exception.

Every rule is checked on whole columns (polars): a value that does not parse, breaks its check,
is missing where its record type needs it, or repeats a ``record_id`` of the same file. A row
with any error is quarantined (kept with its raw text, file and line); the others are returned
typed. An unreadable file is one finding and the other files are still read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from clearing.config import environment
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = [
    "CDR_FINDINGS_SCHEMA",
    "CdrColumn",
    "CdrRead",
    "cdr_schema",
    "empty_records",
    "read_cdrs",
]

CDR_FINDINGS_SCHEMA: Final = pl.Schema(
    {
        "file": pl.String(),
        "line": pl.Int64(),
        "record_id": pl.String(),
        "field": pl.String(),
        "value": pl.String(),
        "severity": pl.String(),
        "problem": pl.String(),
        "action": pl.String(),
    }
)

_FIX = "correct the value in the mediation export and resend the record"
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _spec_path() -> Path:
    return environment().mediation_spec


@dataclass(frozen=True, slots=True)
class CdrColumn:
    """One column of the mediation CDR format."""

    name: str
    type: str  # str | int | datetime | enum
    required: bool
    required_for: tuple[str, ...]  # record types needing it (when not always required)
    check: str
    choices: tuple[str, ...]
    description: str

    @property
    def dtype(self) -> pl.DataType:
        """The polars type of the typed column."""
        if self.type == "int":
            return pl.Int64()
        if self.type == "datetime":
            return pl.Datetime("us")
        return pl.String()


def cdr_schema(path: Path | None = None) -> tuple[CdrColumn, ...]:
    """The columns of ``specs/mediation/cdr.csv``.

    Raises:
        ConfigError: the spec file is missing or malformed.
    """
    p = path or _spec_path()
    try:
        rows = list(csv.DictReader(io.StringIO(p.read_text(encoding="utf-8"))))
    except OSError as exc:
        msg = f"cannot read the mediation CDR spec `{p}`: {exc.strerror}"
        raise ConfigError(msg) from None
    out: list[CdrColumn] = []
    for r in rows:
        typ = r["type"].strip()
        choices: tuple[str, ...] = ()
        if typ.startswith("enum:"):
            choices = tuple(typ[5:].split("|"))
            typ = "enum"
        if typ not in ("str", "int", "datetime", "enum"):
            msg = f"mediation CDR spec `{p}`: column `{r['column']}` has unknown type `{typ}`"
            raise ConfigError(msg)
        req = r["required"].strip()
        always = req == "yes"
        required_for = () if req in ("yes", "no") else tuple(req.split("|"))
        out.append(
            CdrColumn(
                r["column"].strip(),
                typ,
                always,
                required_for,
                r["check"].strip(),
                choices,
                r["description"].strip(),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class CdrRead:
    """What :func:`read_cdrs` found.

    Attributes:
        records: the good rows, typed (one column per spec column, plus ``file`` and ``line``).
        findings: one row per problem (:data:`CDR_FINDINGS_SCHEMA`).
        quarantined: the bad rows as found (text), with ``file``, ``line`` and ``reason``.
    """

    records: pl.DataFrame
    findings: pl.DataFrame
    quarantined: pl.DataFrame


def empty_records(columns: tuple[CdrColumn, ...] | None = None) -> pl.DataFrame:
    """A record table with no rows."""
    cols = columns or cdr_schema()
    schema: dict[str, pl.DataType] = {c.name: c.dtype for c in cols}
    schema |= {"file": pl.String(), "line": pl.Int64()}
    return pl.DataFrame(schema=schema)


def _quarantine_schema(cols: tuple[CdrColumn, ...]) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {c.name: pl.String() for c in cols}
    return schema | {"file": pl.String(), "line": pl.Int64(), "reason": pl.String()}


def _finding(
    file: str, field: str, problem: str, action: str, *, severity: str = "error"
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "file": file,
                "line": 0,
                "record_id": None,
                "field": field,
                "value": None,
                "severity": severity,
                "problem": problem,
                "action": action,
            }
        ],
        schema=CDR_FINDINGS_SCHEMA,
    )


def _load_text(path: Path) -> tuple[pl.DataFrame | None, list[pl.DataFrame]]:
    """The file as text columns with a ``line`` column, or None and a finding."""
    name = path.name
    try:
        if path.suffix.lower() == ".parquet":
            raw = pl.read_parquet(path)
            raw = raw.select(
                pl.col(c).dt.strftime(_DATETIME_FORMAT)
                if raw.schema[c].is_temporal()
                else pl.col(c).cast(pl.String)
                for c in raw.columns
            ).with_row_index("line", offset=1)
        else:
            raw = _read_csv(path)
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as exc:
        problem = f"unreadable file: {str(exc).splitlines()[0][:200]}"
        return None, [_finding(name, "*", problem, "fix or re-export the file")]
    return raw.with_columns(pl.col("line").cast(pl.Int64)), []


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, infer_schema=False, has_header=True, raise_if_empty=False)
        df = df.with_row_index("line", offset=2).with_columns(pl.col("line").cast(pl.Int64))
        return _mark_short_lines(path, df)
    except pl.exceptions.ComputeError:
        pass
    # the slow path, only for files polars refuses (ragged lines): keep every good line
    text = path.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return pl.DataFrame()
    rows: list[list[str]] = []
    lines: list[int] = []
    for cells in reader:
        if len(cells) == len(header):
            rows.append(cells)
            lines.append(reader.line_num)
        else:
            rows.append([""] * len(header))
            lines.append(-reader.line_num)  # marked: a ragged line
    df = pl.DataFrame(rows, schema=header, orient="row")
    return df.with_columns(pl.Series("line", lines, dtype=pl.Int64))


def _mark_short_lines(path: Path, df: pl.DataFrame) -> pl.DataFrame:
    """Negate the line number of rows that had fewer cells than the header.

    polars fills missing trailing cells with nulls; the raw lines tell them apart. Files with
    quotes (a quoted comma or line break) are not checked this way: the rules still catch the
    empty required cells.
    """
    raw = path.read_bytes()
    if b'"' in raw or df.width <= 1:
        return df
    commas = _commas_per_line(raw)
    if commas is None:  # line breaks other than "\n": Python's splitlines() tells them
        every = pl.Series(raw.decode("utf-8").splitlines())
        lines = every.filter(every.str.len_bytes() > 0)
        commas = lines.str.count_matches(",", literal=True).cast(pl.Int64).to_numpy()
    if len(commas) - 1 != df.height:
        return df
    short = commas[1:] != df.width - 2  # width counts the added line column
    if not short.any():
        return df
    return df.with_columns(
        pl.when(pl.Series(short)).then(-pl.col("line")).otherwise(pl.col("line")).alias("line")
    )


# what str.splitlines() breaks lines at besides "\n" ("\r", "\v", "\f", \x1c-\x1e, NEL, LS, PS)
_OTHER_BREAKS: Final = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
_UNICODE_BREAKS: Final = (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")  # UTF-8 of NEL, LS, PS


def _commas_per_line(raw: bytes) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    r"""Commas on each non-empty line of ``raw`` split at "\n".

    The lines are what ``splitlines()`` and dropping empty lines give; None when ``raw`` has
    another kind of line break.
    """
    if any(b in raw for b in _OTHER_BREAKS):
        return None
    if not raw.isascii() and any(b in raw for b in _UNICODE_BREAKS):
        return None
    data = np.frombuffer(raw, dtype=np.uint8)
    breaks = np.flatnonzero(data == 0x0A)
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, data.size]
    commas = np.flatnonzero(data == 0x2C)
    keep = ends > starts
    counts = np.searchsorted(commas, ends[keep]) - np.searchsorted(commas, starts[keep])
    out: np.ndarray[Any, np.dtype[np.int64]] = counts.astype(np.int64)
    return out


def _rules(col: CdrColumn) -> tuple[pl.Expr, list[tuple[pl.Expr, str, str]]]:
    """The typed expression for a column and its (is_bad, problem, action) rules."""
    v = pl.col(col.name)
    rules: list[tuple[pl.Expr, str, str]] = []
    typed: pl.Expr
    if col.type == "int":
        typed = v.str.to_integer(strict=False)
        rules.append((v.is_not_null() & typed.is_null(), "not an integer", _FIX))
        for check in col.check.split():  # ">=0", "<=1000000" or "0..65535", blank-separated
            if check.startswith(">="):
                rules.append((typed < int(check[2:]), f"must be {check}", _FIX))
            elif check.startswith("<="):
                rules.append((typed > int(check[2:]), f"must be {check}", _FIX))
            elif ".." in check:
                lo, hi = (int(x) for x in check.split(".."))
                rules.append(((typed < lo) | (typed > hi), f"must be in {check}", _FIX))
    elif col.type == "datetime":
        typed = v.str.replace(" ", "T", literal=True).str.strptime(
            pl.Datetime("us"), _DATETIME_FORMAT, strict=False
        )
        rules.append(
            (v.is_not_null() & typed.is_null(), "not a local time YYYY-MM-DDTHH:MM:SS", _FIX)
        )
    elif col.type == "enum":
        typed = v
        rules.append(
            (v.is_not_null() & ~v.is_in(col.choices), f"not one of {'|'.join(col.choices)}", _FIX)
        )
    else:
        typed = v
        if col.check:
            rules.append(
                (
                    v.is_not_null() & ~v.str.contains(col.check),
                    f"does not match `{col.check}`",
                    _FIX,
                )
            )
    need = "is required"
    if col.required:
        rules.append((v.is_null(), need, "fix the mediation export: the column is mandatory"))
    elif col.required_for:
        rt = pl.col("record_type")
        rules.append(
            (
                v.is_null() & rt.is_in(col.required_for),
                f"is required for record type {'/'.join(col.required_for)}",
                "fix the mediation export and resend the record",
            )
        )
    return typed.alias(col.name), rules


def _read_one(path: Path, cols: tuple[CdrColumn, ...]) -> CdrRead:
    name = path.name
    raw, findings = _load_text(path)
    qschema = _quarantine_schema(cols)
    if raw is None:
        return CdrRead(empty_records(cols), pl.concat(findings), pl.DataFrame(schema=qschema))
    known = {c.name for c in cols}
    extra = [c for c in raw.columns if c not in known and c != "line"]
    if extra:
        findings.append(
            _finding(
                name,
                ",".join(extra),
                f"unknown column(s) ignored: {', '.join(extra)}",
                "remove them from the export or add them to specs/mediation/cdr.csv",
                severity="warning",
            )
        )
    missing = [c.name for c in cols if c.required and c.name not in raw.columns]
    if missing:
        problem = f"required column(s) missing: {', '.join(missing)}; the whole file is held"
        findings.append(_finding(name, "*", problem, "re-export the file with every column"))
        q = raw.with_columns(pl.lit(name).alias("file"), pl.lit(problem).alias("reason")).select(
            *(
                pl.col(c.name) if c.name in raw.columns else pl.lit(None, pl.String).alias(c.name)
                for c in cols
            ),
            "file",
            "line",
            "reason",
        )
        return CdrRead(empty_records(cols), pl.concat(findings), q)
    text = raw.select(
        *(
            pl.col(c.name).str.strip_chars()
            if c.name in raw.columns
            else pl.lit(None, pl.String).alias(c.name)
            for c in cols
        ),
        "line",
    )
    # empty cells are missing values (a `when` is cheaper than `replace("", None)`)
    text = text.with_columns(
        pl.when(pl.col(c.name) != "").then(pl.col(c.name)).alias(c.name) for c in cols
    )
    del raw  # the file's text, as read: `text` holds what is needed from here on
    typed_exprs: list[pl.Expr] = []
    checks: list[tuple[str, pl.Expr, str, str]] = []
    for col in cols:
        typed, rules = _rules(col)
        typed_exprs.append(typed)
        checks += [(col.name, bad, problem, action) for bad, problem, action in rules]
    checks.append(
        (
            "*",
            pl.col("line") < 0,
            "the line does not have as many cells as the header",
            "fix the line in the mediation export and resend it",
        )
    )
    checks.append(
        (
            "record_id",
            pl.col("record_id").is_not_null() & ~pl.col("record_id").is_first_distinct(),
            "duplicate record_id in the file",
            "the first record with this id is rated; drop the duplicate from the export",
        )
    )
    # a line with too few cells has its values in the wrong columns: report the line only
    whole = pl.col("line") > 0
    flags = text.select(
        *(
            (bad if field == "*" else bad & whole).fill_null(False).alias(f"_bad{i}")
            for i, (field, bad, _, _) in enumerate(checks)
        )
    )
    parts: list[pl.DataFrame] = []
    for i, (field, _bad, problem, action) in enumerate(checks):
        hit = flags[f"_bad{i}"]
        if not hit.any():
            continue
        rows = text.filter(hit)
        value = pl.col(field) if field != "*" else pl.lit(None, pl.String)
        parts.append(
            rows.select(
                pl.lit(name).alias("file"),
                pl.col("line").abs(),
                pl.col("record_id"),
                pl.lit(field).alias("field"),
                value.alias("value"),
                pl.lit("error").alias("severity"),
                pl.lit(problem).alias("problem"),
                pl.lit(action).alias("action"),
            )
        )
    bad_any = (
        flags.select(pl.any_horizontal(pl.all())).to_series()
        if flags.width
        else pl.Series([False] * text.height)
    )
    row_findings = (
        pl.concat(parts).sort("line", "field")
        if parts
        else pl.DataFrame(schema=CDR_FINDINGS_SCHEMA)
    )
    reasons = row_findings.group_by("line").agg(
        pl.concat_str([pl.col("field"), pl.col("problem")], separator=": ")
        .str.join("; ")
        .alias("reason")
    )
    quarantined = (
        text.filter(bad_any)
        .with_columns(pl.col("line").abs(), pl.lit(name).alias("file"))
        .join(reasons, on="line", how="left")
        .select(*(c.name for c in cols), "file", "line", "reason")
    )
    records = (
        text.filter(~bad_any)
        .select(*typed_exprs, "line")
        .with_columns(pl.lit(name).alias("file"))
        .select(*(c.name for c in cols), "file", "line")
    )
    all_findings = pl.concat([*findings, row_findings]) if findings else row_findings
    return CdrRead(
        records.cast(pl.Schema({c.name: c.dtype for c in cols})),
        all_findings,
        quarantined.cast(pl.Schema(qschema)),
    )


def read_cdrs(paths: Iterable[Path], *, spec: Path | None = None) -> CdrRead:
    """Read mediation CDR files (CSV or Parquet), in the order given; never raises on data.

    Raises:
        ConfigError: only when the spec itself is unreadable.
    """
    cols = cdr_schema(spec)
    results = [_read_one(p, cols) for p in paths]
    if not results:
        return CdrRead(
            empty_records(cols),
            pl.DataFrame(schema=CDR_FINDINGS_SCHEMA),
            pl.DataFrame(schema=_quarantine_schema(cols)),
        )
    return CdrRead(
        pl.concat([r.records for r in results]),
        pl.concat([r.findings.cast(CDR_FINDINGS_SCHEMA) for r in results]),
        pl.concat([r.quarantined for r in results]),
    )
