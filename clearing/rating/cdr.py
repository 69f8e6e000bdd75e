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
    from collections.abc import Callable, Iterable
    from pathlib import Path

__all__ = [
    "CDR_FINDINGS_SCHEMA",
    "CdrColumn",
    "CdrPiece",
    "CdrRead",
    "PieceReader",
    "cdr_schema",
    "count_rows",
    "empty_records",
    "plan_pieces",
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
    return _check(path.name, lambda: _load_text(path), cols)[0]


def _check(
    name: str,
    load: Callable[[], tuple[pl.DataFrame | None, list[pl.DataFrame]]],
    cols: tuple[CdrColumn, ...],
    *,
    first: bool = True,
    earlier: pl.Series | None = None,
) -> tuple[CdrRead, pl.Series | None]:
    """The rows ``load`` reads (a file, or a piece of it: :class:`CdrPiece`) checked; their ids.

    ``load`` gives the text columns and ``line`` (or None and a finding). ``first``: the
    file's first piece (the file's own findings are its); ``earlier``: the record ids of the
    file's pieces before (a repeat of one is a duplicate in the file).
    """
    raw, findings = load()  # held here only: dropped once its text is taken
    qschema = _quarantine_schema(cols)
    if raw is None:
        return CdrRead(empty_records(cols), pl.concat(findings), pl.DataFrame(schema=qschema)), None
    known = {c.name for c in cols}
    extra = [c for c in raw.columns if c not in known and c != "line"]
    if extra and first:
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
        if first:
            findings.append(_finding(name, "*", problem, "re-export the file with every column"))
        else:
            findings.append(pl.DataFrame(schema=CDR_FINDINGS_SCHEMA))
        q = raw.with_columns(pl.lit(name).alias("file"), pl.lit(problem).alias("reason")).select(
            *(
                pl.col(c.name) if c.name in raw.columns else pl.lit(None, pl.String).alias(c.name)
                for c in cols
            ),
            "file",
            "line",
            "reason",
        )
        return CdrRead(empty_records(cols), pl.concat(findings), q), None
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
    repeated = ~pl.col("record_id").is_first_distinct()
    if earlier is not None and earlier.len():
        repeated = repeated | pl.col("record_id").is_in(earlier.implode())
    checks.append(
        (
            "record_id",
            pl.col("record_id").is_not_null() & repeated,
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
    ids = text["record_id"].drop_nulls()
    return CdrRead(
        records.cast(pl.Schema({c.name: c.dtype for c in cols})),
        all_findings,
        quarantined.cast(pl.Schema(qschema)),
    ), ids


def count_rows(path: Path) -> int:
    """About how many records the file ``path`` holds (to plan the day's chunks), cheaply.

    A Parquet file's row count; a CSV file's line breaks (its header and any quoted line
    break counted too); 0 for a file that cannot be read (its finding comes when it is).
    """
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.read_metadata(path).num_rows)
        count = 0
        with path.open("rb") as fh:
            while block := fh.read(1 << 24):
                count += block.count(b"\n")
    except (OSError, ValueError):
        return 0
    return count


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


@dataclass(frozen=True)
class CdrPiece:
    """A file, or a run of its records, read on its own (:func:`plan_pieces`).

    Attributes:
        path: the file.
        start: the piece's first record (0: the file's first).
        rows: its records (of a file read whole: :func:`count_rows`' estimate).
        last: the file's last piece.
        span: of a CSV piece, the bytes of its lines ``(from, to)``; None: not a CSV piece.
        whole: the file read whole, as :func:`read_cdrs` reads it.
    """

    path: Path
    start: int
    rows: int
    last: bool = True
    span: tuple[int, int] | None = None
    whole: bool = True


# bytes that keep a CSV file whole: a quote (a quoted comma or line break), line breaks other
# than "\n" (splitlines() sees them), and non-ASCII bytes (other line breaks, bad UTF-8)
_UNCUT: Final = np.zeros(256, dtype=np.bool_)
_UNCUT[[ord('"'), *b"\r\x0b\x0c\x1c\x1d\x1e"]] = True
_UNCUT[0x80:] = True


def _csv_lines(path: Path) -> tuple[int, np.ndarray[Any, np.dtype[np.int64]]] | None:
    r"""The header's length and the byte offset of each record line, or None (not cut).

    A file is cut only where the whole-file read and the pieces' reads are the same rows:
    plain ASCII without quotes, every line ended by "\n" (the last may not be), none empty,
    each with the header's number of cells.
    """
    starts: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    with path.open("rb") as fh:
        header = fh.readline()
        if not header.endswith(b"\n") or len(header) < 2:
            return None
        want = header.count(b",")
        at = len(header)  # the offset of ``carry``'s first byte
        carry = b""
        while True:
            block = fh.read(1 << 24)
            data = np.frombuffer(carry + block, dtype=np.uint8)
            if not data.size:
                break
            if _UNCUT[data].any():
                return None
            breaks = np.flatnonzero(data == 0x0A)
            if not block:  # the end: a last line without its "\n"
                breaks = np.r_[breaks, data.size]
            if breaks.size:
                begin = np.r_[0, breaks[:-1] + 1]
                commas = np.flatnonzero(data == 0x2C)
                cells = np.searchsorted(commas, breaks) - np.searchsorted(commas, begin)
                if (breaks == begin).any() or (cells != want).any():
                    return None
                starts.append(begin.astype(np.int64) + at)
                cut = int(breaks[-1]) + 1
            else:
                cut = 0
            carry = bytes(data[cut:])
            at += cut
            if not block:
                break
    lines = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    return len(header), lines


def plan_pieces(path: Path, rows: int) -> list[CdrPiece]:
    """``path`` in pieces of at most ``rows`` records, or whole (one piece) when it is not cut.

    A file of ``rows`` records or fewer is read whole, as is a CSV file whose pieces could
    read otherwise than the whole file (see :func:`_csv_lines`). A Parquet file is cut by
    record number; one found unreadable after its first piece leaves the pieces before read.
    """
    n = count_rows(path)
    whole = [CdrPiece(path, 0, n)]
    if n <= rows:
        return whole
    size = path.stat().st_size
    if path.suffix.lower() == ".parquet":
        return [
            CdrPiece(path, a, min(rows, n - a), last=a + rows >= n, whole=False)
            for a in range(0, n, rows)
        ]
    planned = _csv_lines(path)
    if planned is None:
        return whole
    _head, lines = planned
    n = len(lines)
    bounds = [*(int(x) for x in lines[::rows]), size]
    return [
        CdrPiece(
            path,
            k * rows,
            min(rows, n - k * rows),
            last=k == len(bounds) - 2,
            span=(bounds[k], bounds[k + 1]),
            whole=False,
        )
        for k in range(len(bounds) - 1)
    ]


class PieceReader:
    """Reads :class:`CdrPiece` runs of files as :func:`read_cdrs` reads the files.

    The pieces of a file are read in order; the record ids of its pieces before are kept
    (about 40 bytes a record) so that a record id repeated across pieces is the file's
    duplicate, as in the whole file.
    """

    def __init__(self, spec: Path | None = None) -> None:
        self._cols = cdr_schema(spec)
        self._ids: pl.Series | None = None

    def read(self, pieces: Iterable[CdrPiece]) -> CdrRead:
        """The records, findings and quarantined rows of ``pieces``, in order."""
        results = [self._piece(p) for p in pieces]
        if not results:
            return read_cdrs([], spec=None)
        return CdrRead(
            pl.concat([r.records for r in results]),
            pl.concat([r.findings.cast(CDR_FINDINGS_SCHEMA) for r in results]),
            pl.concat([r.quarantined for r in results]),
        )

    def _piece(self, piece: CdrPiece) -> CdrRead:
        if piece.whole:
            return _read_one(piece.path, self._cols)
        read, ids = _check(
            piece.path.name,
            lambda: _load_piece(piece),
            self._cols,
            first=piece.start == 0,
            earlier=self._ids if piece.start else None,
        )
        if piece.last:
            self._ids = None
        elif ids is not None:
            self._ids = ids if self._ids is None or not piece.start else pl.concat([self._ids, ids])
        return read


def _load_piece(piece: CdrPiece) -> tuple[pl.DataFrame | None, list[pl.DataFrame]]:
    """A piece's text columns and ``line`` (as :func:`_load_text` gives the file's)."""
    path = piece.path
    try:
        if piece.span is None:  # Parquet: by record number
            raw = pl.scan_parquet(path).slice(piece.start, piece.rows).collect()
            raw = raw.select(
                pl.col(c).dt.strftime(_DATETIME_FORMAT)
                if raw.schema[c].is_temporal()
                else pl.col(c).cast(pl.String)
                for c in raw.columns
            ).with_row_index("line", offset=1 + piece.start)
        else:
            lo, hi = piece.span
            with path.open("rb") as fh:
                header = fh.readline()
                fh.seek(lo)
                body = fh.read(hi - lo)
            raw = pl.read_csv(
                io.BytesIO(header + body), infer_schema=False, has_header=True, raise_if_empty=False
            ).with_row_index("line", offset=2 + piece.start)
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as exc:
        problem = f"unreadable file: {str(exc).splitlines()[0][:200]}"
        return None, [_finding(path.name, "*", problem, "fix or re-export the file")]
    return raw.with_columns(pl.col("line").cast(pl.Int64)), []
