"""Schema files of the reference-data tables (``specs/rates/<table>.csv``).

A schema file is a CSV with one row per column of the table::

    # table: iot
    # continuous: yes
    column,type,required,role,default,check,description
    partner,str,yes,key,,^[A-Z0-9]{5}$,TADIG code or SID/BID

* ``type``: ``str``, ``int``, ``date`` (YYYY-MM-DD), ``time`` (HH:MM[:SS], 00:00-24:00, stored
  as seconds after midnight), ``bool`` (yes/no/true/false/1/0) or ``enum:a|b|c``.
* ``required``: ``yes`` or ``no``; an empty optional cell takes ``default`` (or null).
* ``role``: ``key`` (part of the table's key), ``valid_from``, ``valid_to`` or empty.
* ``check``: a regular expression (str), a range ``0..6`` or a bound ``>=1`` (int).

Comment lines ``# name: value`` set table options: ``continuous: yes`` refuses a gap between
consecutive versions of a key. A table with a ``partner`` column is partitioned by partner.

C901: ``ColumnSpec.parse`` (one branch per cell type and its checks) and ``load_schema`` (one
refusal per way a schema file can be wrong, each with its message) are rule tables read top to
bottom.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from clearing.config import environment
from clearing.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Column", "TableSchema", "load_schema", "rates_specs_dir", "schemas"]

_TYPES = ("str", "int", "date", "time", "bool")
_HEADER = ["column", "type", "required", "role", "default", "check", "description"]
_TRUE = {"yes", "true", "1", "y"}
_FALSE = {"no", "false", "0", "n"}


def rates_specs_dir() -> Path:
    """Folder of the table schemas (``rates/`` of ``$CLEARING_SPECS_DIR`` or the shipped tree)."""
    return environment().rates_specs_dir


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a reference table."""

    name: str
    type: str  # str | int | date | time | bool | enum
    required: bool
    role: str  # key | valid_from | valid_to | ""
    default: str
    check: str
    description: str
    choices: tuple[str, ...] = ()

    @property
    def arrow_type(self) -> pa.DataType:
        """The Parquet/Arrow type the column is stored as."""
        return {
            "str": pa.string(),
            "enum": pa.string(),
            "int": pa.int64(),
            "date": pa.date32(),
            "time": pa.int32(),
            "bool": pa.bool_(),
        }[self.type]

    def parse(self, text: str) -> tuple[Any, str | None]:
        """``(value, problem)`` for one source cell (problem None when the cell is fine)."""
        text = text.strip()
        if text == "":
            text = self.default
            if text == "":
                if self.required:
                    return None, "is required"
                return ("" if self.role == "key" else None), None
        value: Any
        if self.type in ("str", "enum"):
            value = text
            if self.type == "enum" and text not in self.choices:
                return None, f"must be one of {', '.join(self.choices)}"
            if self.check and self.type == "str" and not re.fullmatch(self.check, text):
                return None, f"does not match `{self.check}`"
            return value, None
        if self.type == "int":
            if not re.fullmatch(r"[+-]?[0-9]+", text):
                return None, "must be an integer (no decimal point: use the scale column)"
            value = int(text)
            return value, self._check_int(value)
        if self.type == "date":
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
                return None, "must be a date YYYY-MM-DD"
            try:
                return date.fromisoformat(text), None
            except ValueError:
                return None, "must be a date YYYY-MM-DD"
        if self.type == "time":
            m = re.fullmatch(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?", text)
            if m is None:
                return None, "must be a time HH:MM or HH:MM:SS"
            h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
            seconds = h * 3600 + mi * 60 + s
            if mi > 59 or s > 59 or seconds > 86400:
                return None, "must be a time between 00:00 and 24:00"
            return seconds, None
        low = text.lower()
        if low in _TRUE:
            return True, None
        if low in _FALSE:
            return False, None
        return None, "must be yes or no"

    def _check_int(self, value: int) -> str | None:
        c = self.check
        if not c:
            return None
        if c.startswith(">="):
            low = int(c[2:])
            return None if value >= low else f"must be {c}"
        lo, _, hi = c.partition("..")
        if int(lo) <= value <= int(hi):
            return None
        return f"must be in {c}"


@dataclass(frozen=True, slots=True)
class TableSchema:
    """A reference table: its columns, key, validity columns and options."""

    name: str
    columns: tuple[Column, ...]
    continuous: bool
    source: Path

    @property
    def key(self) -> tuple[str, ...]:
        """Columns of the key (without validity)."""
        return tuple(c.name for c in self.columns if c.role == "key")

    @property
    def valid_from(self) -> str:
        """The column with role ``valid_from``."""
        return next(c.name for c in self.columns if c.role == "valid_from")

    @property
    def valid_to(self) -> str | None:
        """The column with role ``valid_to`` (None when the table has none)."""
        return next((c.name for c in self.columns if c.role == "valid_to"), None)

    @property
    def partitioned_by_partner(self) -> bool:
        """True when the table has a ``partner`` column (the outer hive partition)."""
        return any(c.name == "partner" for c in self.columns)

    @property
    def partition_columns(self) -> tuple[str, ...]:
        """Hive partition columns, outermost first (also stored inside the files)."""
        if self.partitioned_by_partner:
            return ("partner", self.valid_from)
        return (self.valid_from,)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        """Every column plus ``version`` and ``source_line``, in schema order."""
        fields = [pa.field(c.name, c.arrow_type) for c in self.columns]
        fields += [pa.field("version", pa.string()), pa.field("source_line", pa.int32())]
        return pa.schema(fields)

    def file_schema(self) -> pa.Schema:
        """The columns stored in each Parquet file: all of them.

        The partition columns are in the path (hive) *and* in the file, so that a reader that
        guesses types from paths (``partner=04172`` as an integer) still gets the file's text.
        """
        return self.arrow_schema()


def load_schema(path: Path) -> TableSchema:
    """Parse one schema file.

    Raises:
        ConfigError: the file is unreadable or does not describe a table.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read rates schema `{path}`: {exc.strerror}"
        raise ConfigError(msg) from None
    options: dict[str, str] = {}
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            name, sep, value = line[1:].partition(":")
            if sep and re.fullmatch(r"\s*[a-z_]+\s*", name):
                options[name.strip()] = value.strip()
            continue
        if line.strip():
            body.append(line)
    rows = list(csv.reader(io.StringIO("\n".join(body))))
    where = f"rates schema `{path}`"
    if not rows or [h.strip() for h in rows[0]] != _HEADER:
        msg = f"{where}: the header must be `{','.join(_HEADER)}`"
        raise ConfigError(msg)
    columns: list[Column] = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(_HEADER):
            msg = f"{where}, row {i}: {len(row)} cells, expected {len(_HEADER)}"
            raise ConfigError(msg)
        name, typ, req, role, default, check, desc = (x.strip() for x in row)
        choices: tuple[str, ...] = ()
        if typ.startswith("enum:"):
            choices = tuple(typ[5:].split("|"))
            typ = "enum"
        if typ not in (*_TYPES, "enum"):
            msg = f"{where}, column `{name}`: unknown type `{typ}`"
            raise ConfigError(msg)
        if role not in ("key", "valid_from", "valid_to", ""):
            msg = f"{where}, column `{name}`: unknown role `{role}`"
            raise ConfigError(msg)
        if req.lower() not in _TRUE | _FALSE:
            msg = f"{where}, column `{name}`: required must be yes or no"
            raise ConfigError(msg)
        columns.append(Column(name, typ, req.lower() in _TRUE, role, default, check, desc, choices))
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        msg = f"{where}: a column is listed twice"
        raise ConfigError(msg)
    roles = [c.role for c in columns]
    if roles.count("valid_from") != 1 or roles.count("valid_to") > 1:
        msg = f"{where}: exactly one `valid_from` column and at most one `valid_to` are needed"
        raise ConfigError(msg)
    if any(c.role == "valid_from" and (c.type != "date" or not c.required) for c in columns):
        msg = f"{where}: the `valid_from` column must be a required date"
        raise ConfigError(msg)
    if any(c.role == "valid_to" and c.type != "date" for c in columns):
        msg = f"{where}: the `valid_to` column must be a date"
        raise ConfigError(msg)
    name = options.get("table", path.stem)
    if name != path.stem:
        msg = f"{where}: `# table: {name}` does not match the file name"
        raise ConfigError(msg)
    continuous = options.get("continuous", "no").lower() in _TRUE
    return TableSchema(name, tuple(columns), continuous, path)


def schemas(specs: Path | None = None) -> dict[str, TableSchema]:
    """Every table schema of the specs folder, by table name (sorted)."""
    root = specs or rates_specs_dir()
    return {p.stem: load_schema(p) for p in sorted(root.glob("*.csv"))}
