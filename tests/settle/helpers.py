"""Reading the workbooks back (openpyxl) and querying the lake independently (DuckDB)."""

from __future__ import annotations

import re
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


_TOKEN = re.compile(
    r"\s*(?:SUM\((?P<c1>[A-Z]+)(?P<r1>\d+):(?P<c2>[A-Z]+)(?P<r2>\d+)\)"
    r"|(?P<ref>[A-Z]+\d+)|(?P<name>[a-z_][a-z0-9_]*)|(?P<num>\d+(?:\.\d+)?)|(?P<op>[+-]))"
)


def evaluate(formula: str, sheet: Any, workbook: Any) -> Decimal:
    """Evaluate the formulas clearing.settle writes (SUM of a range, + and - of cells, a
    defined name, a number) from the cached values of the cells they refer to."""
    from openpyxl.utils import column_index_from_string

    text = formula.removeprefix("=")
    total = Decimal(0)
    sign = 1
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            msg = f"cannot evaluate `{formula}` at {pos}"
            raise ValueError(msg)
        pos = m.end()
        if m["op"]:
            sign = 1 if m["op"] == "+" else -1
            continue
        if m["c1"]:
            col = column_index_from_string(m["c1"])
            value = sum(
                (dec(sheet.cell(r, col).value) for r in range(int(m["r1"]), int(m["r2"]) + 1)),
                Decimal(0),
            )
        elif m["ref"]:
            value = dec(sheet[m["ref"]].value)
        elif m["name"]:
            ((title, ref),) = workbook.defined_names[m["name"]].destinations
            value = dec(workbook[title][ref.replace("$", "")].value)
        else:
            value = Decimal(m["num"])
        total += sign * value
        sign = 1
    return total


def formula_cells(path: Path) -> list[tuple[str, str, str, Any]]:
    """Every formula cell: (sheet, coordinate, formula, cached value)."""
    forms = load_workbook(path)
    values = load_workbook(path, data_only=True)
    out = []
    for ws in forms.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    out.append(
                        (
                            ws.title,
                            cell.coordinate,
                            cell.value,
                            values[ws.title][cell.coordinate].value,
                        )
                    )
    return out
