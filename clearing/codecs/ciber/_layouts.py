"""CIBER 2.5 record layouts, loaded from the tables in ``specs/ciber/typeNN.csv``.

Every position the reader and the writer use comes from these tables; the code holds none.
A table has one row per field, in record order, with the columns

``field``         snake_case name (the column name in the decoded record table)
``start``         1-based first position, as in the CIBER layouts (ciber.md §4)
``length``        number of characters
``format``        ``N`` unsigned integer; ``D`` digit string kept as text (SID/BID, MSID,
                  ESN: leading zeros matter); ``X`` alphanumeric, left-justified, blank-filled;
                  ``F`` system reserved filler (not decoded, written as blanks); ``money``
                  unsigned integer with 2 implied decimals (integer cents); ``date`` YYMMDD;
                  ``time`` HHMMSS; ``duration`` MMMMSS; ``number`` digits left-justified and
                  zero-filled on the right, cut by the field named in ``length_field``
``length_field``  for ``number`` fields: the ``N`` field holding the real length
``field_id``      CIBER Invalid Field Identifier used in record returns (ciber.md §7.3)
``ciber_name``    the field's name in ciber.md
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from clearing.config import environment

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DETAIL_TYPES",
    "FORMATS",
    "HEADER_TYPES",
    "TRAILER_TYPES",
    "Field",
    "Layout",
    "layout",
    "layouts",
    "specs_dir",
]

FORMATS = frozenset({"N", "D", "X", "F", "money", "date", "time", "duration", "number"})
HEADER_TYPES = ("01", "02")
TRAILER_TYPES = ("98", "97")
DETAIL_TYPES = ("22", "32", "42", "52")
#: Formats whose characters must all be ASCII digits.
DIGIT_FORMATS = frozenset({"N", "D", "money", "date", "time", "duration", "number"})


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record layout (``start`` is 0-based here; the CSV is 1-based)."""

    name: str
    start: int
    length: int
    format: str
    length_field: str | None
    field_id: int | None
    ciber_name: str

    @property
    def end(self) -> int:
        """0-based exclusive end position."""
        return self.start + self.length


@dataclass(frozen=True, slots=True)
class Layout:
    """The layout of one record type.

    Attributes:
        record_type: ``"01"``, ``"22"``...
        fields: every field in record order, fillers included.
        length: the full record length (without line terminator).
        min_length: the shortest line accepted: the end of the last field that is neither
            filler nor alphanumeric (a truncated blank tail is padded, ciber.md §2).
    """

    record_type: str
    fields: tuple[Field, ...]
    length: int
    min_length: int
    by_name: dict[str, Field] = field(compare=False, repr=False)

    def field(self, name: str) -> Field:
        """The field called ``name``."""
        return self.by_name[name]

    @property
    def data_fields(self) -> tuple[Field, ...]:
        """The fields that are decoded (everything but fillers)."""
        return tuple(f for f in self.fields if f.format != "F")


def specs_dir() -> Path:
    """Folder of the layout tables (``ciber/`` of ``$CLEARING_SPECS_DIR`` or the shipped tree)."""
    return environment().ciber_specs_dir


def _load(path: Path, record_type: str) -> Layout:
    fields: list[Field] = []
    with path.open(newline="", encoding="ascii") as fh:
        for row in csv.DictReader(fh):
            fmt = row["format"]
            if fmt not in FORMATS:
                msg = f"{path.name}: field `{row['field']}` has unknown format `{fmt}`"
                raise ValueError(msg)
            fid = row["field_id"].strip()
            fields.append(
                Field(
                    name=row["field"],
                    start=int(row["start"]) - 1,
                    length=int(row["length"]),
                    format=fmt,
                    length_field=row["length_field"] or None,
                    field_id=int(fid) if fid else None,
                    ciber_name=row["ciber_name"],
                )
            )
    pos = 0
    for f in fields:
        if f.start != pos or f.length <= 0:
            msg = f"{path.name}: field `{f.name}` starts at {f.start + 1}, expected {pos + 1}"
            raise ValueError(msg)
        pos = f.end
    by_name = {f.name: f for f in fields}
    for f in fields:
        if f.format == "number" and (
            f.length_field not in by_name or by_name[f.length_field].format != "N"
        ):
            msg = f"{path.name}: `{f.name}` needs an N length field, got `{f.length_field}`"
            raise ValueError(msg)
    if fields[0].name != "record_type" or fields[0].length != 2:
        msg = f"{path.name}: the first field must be the 2-character `record_type`"
        raise ValueError(msg)
    min_length = max(f.end for f in fields if f.format not in ("F", "X"))
    return Layout(record_type, tuple(fields), pos, min_length, by_name)


@cache
def layouts() -> dict[str, Layout]:
    """Every CIBER 2.5 layout, keyed by record type (``"01"``, ``"22"``...)."""
    root = specs_dir()
    out: dict[str, Layout] = {}
    for rt in (*HEADER_TYPES, *TRAILER_TYPES, *DETAIL_TYPES):
        out[rt] = _load(root / f"type{rt}.csv", rt)
    return out


def layout(record_type: str) -> Layout:
    """The layout of ``record_type``."""
    return layouts()[record_type]
