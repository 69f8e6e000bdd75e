"""Reading the workbooks back (openpyxl) and querying the lake independently (DuckDB)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb
from openpyxl import load_workbook

if TYPE_CHECKING:
    from pathlib import Path

HEADER_ROW = 4


@dataclass
class Sheet:
    """One table sheet read back: rows by header title, the totals row, formulas."""

    title: str
    headers: list[str]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    formulas: dict[str, str]  # header → formula of the totals cell

    def column(self, header: str) -> list[Any]:
        return [r[header] for r in self.rows]


def read_sheet(path: Path, name: str) -> Sheet:
    """A table sheet of a workbook written by clearing.settle (cached values)."""
    values = load_workbook(path, data_only=True)[name]
    forms = load_workbook(path, data_only=False)[name]
    headers = []
    col = 1
    while values.cell(HEADER_ROW, col).value is not None:
        headers.append(str(values.cell(HEADER_ROW, col).value))
        col += 1
    rows: list[dict[str, Any]] = []
    totals: dict[str, Any] = {}
    formulas: dict[str, str] = {}
    r = HEADER_ROW + 1
    while True:
        first = values.cell(r, 1).value
        if first is None and all(values.cell(r, c).value is None for c in range(1, col)):
            break
        row = {h: values.cell(r, i + 1).value for i, h in enumerate(headers)}
        if first == "Total":
            totals = row
            formulas = {
                h: str(forms.cell(r, i + 1).value)
                for i, h in enumerate(headers)
                if isinstance(forms.cell(r, i + 1).value, str)
                and str(forms.cell(r, i + 1).value).startswith("=")
            }
            break
        rows.append(row)
        r += 1
    return Sheet(name, headers, rows, totals, formulas)


def dec(value: Any) -> Decimal:
    """A cell value as an exact Decimal (numbers are written as exact decimal text)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def sql(workdir: Path, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Run ``query`` in a fresh DuckDB with the work folder's state attached as ``st``.

    ``{lake}`` in the query is replaced by the lake folder, ``{rates}`` by the rates folder.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{workdir / 'clearing.duckdb'}' AS st (READ_ONLY)")
    text = query.replace("{lake}", str(workdir / "lake")).replace("{rates}", str(workdir / "rates"))
    cur = con.execute(text, params or [])
    names = [d[0] for d in cur.description or []]
    out = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    con.close()
    return out
