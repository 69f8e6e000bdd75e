"""Workbook craft: a small model of tables, written with openpyxl, byte-reproducibly.

A workbook is a list of :class:`Table` (one per sheet) and optional :class:`KeyFigures`. Each
table has a title block, one header row (frozen, filtered, repeated on every printed page),
typed columns and an optional totals row. The rules this module keeps:

* **Numbers are numbers.** Money is given as :class:`~decimal.Decimal` (exact, at most the
  column's decimal places), counts as ``int``; each cell gets the column's number format
  (``#,##0.00``, six decimals for SDR, the minor unit of a settlement currency...).
* **Totals are formulas that agree with the values.** A totals row holds ``=SUM(...)`` over the
  data rows *and* the exact sum as the formula's cached value, so a reader that does not
  recalculate (a previewer, ``openpyxl`` with ``data_only=True``) sees the same figure that Excel
  or LibreOffice computes. Row formulas (e.g. a net = receivable - payable) work the same way.
* **Key totals have defined names** (``records_in``, ``net_position_sdr``...), pointing at the
  totals cells; the key-figures sheet shows them through those names.
* **Same model, same bytes.** Document properties (created / modified) come from the caller
  (derived from the processing date or period), zip entries get fixed timestamps, and every
  collection is written in a fixed order.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.packaging.custom import StringProperty
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.properties import PageSetupProperties

from clearing._io import write_atomic

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet.worksheet import Worksheet

__all__ = [
    "Book",
    "Chart",
    "Col",
    "KeyFigure",
    "KeyFigures",
    "Table",
    "money",
    "number_format",
    "read_properties",
    "render_book",
    "write_book",
]

Kind = Literal["text", "int", "money", "decimal", "percent", "date", "datetime", "hours"]

HEADER_ROW = 4  # rows 1-3: title, subtitle, blank
_TITLE_FONT = Font(bold=True, size=14)
_SUBTITLE_FONT = Font(italic=True, color="595959")
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_TOTAL_FONT = Font(bold=True)
_TOTAL_BORDER = Border(top=Side(style="thin"), bottom=Side(style="double"))
_FLAG_FILL = PatternFill("solid", fgColor="FCE4D6")
_NOTE_FONT = Font(italic=True, size=9, color="595959")
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")


def money(value: int | None, scale: int | None) -> Decimal | None:
    """An integer amount at ``scale`` as an exact Decimal (None stays None)."""
    if value is None:
        return None
    return Decimal(int(value)).scaleb(-(scale or 0))


def number_format(kind: Kind, scale: int = 0) -> str:
    """The Excel number format of a column kind (money: negatives in red)."""
    if kind == "int":
        return "#,##0;[Red]-#,##0"
    if kind in ("money", "decimal"):
        body = "#,##0" + ("." + "0" * scale if scale > 0 else "")
        return f"{body};[Red]-{body}" if kind == "money" else body
    if kind == "percent":
        return "0.00%"
    if kind == "hours":
        return "0.0"
    if kind == "date":
        return "yyyy-mm-dd"
    if kind == "datetime":
        return "yyyy-mm-dd hh:mm"
    return "@"


@dataclass(frozen=True)
class Col:
    """One column of a table.

    Attributes:
        key: the key of the value in each row dict.
        title: the header text.
        kind: how the value is stored and formatted.
        scale: decimal places of ``money`` / ``decimal`` values (format and exactness).
        scale_key: for amounts in mixed currencies: the row key holding each row's scale.
        total: add ``=SUM`` of the column to the totals row.
        name: a defined name for the column's total cell.
        formula: a row formula over other columns' keys, e.g. ``"{receivable} - {payable}"``;
            the row dict still carries its exact value (the cached result).
        width: column width in characters (default: from the content).
        flag_nonzero: shade cells that are not 0 (reconciliation differences).
        align: horizontal alignment of the data cells (default: Excel's by type).
        wrap: wrap long text in the column's width.
        shown: decimal places displayed, when fewer than ``scale`` (summary sheets show
            amounts to the cent while the cell keeps the exact value).
    """

    key: str
    title: str
    kind: Kind = "text"
    scale: int = 0
    scale_key: str | None = None
    total: bool = False
    name: str | None = None
    formula: str | None = None
    width: float | None = None
    flag_nonzero: bool = False
    align: Literal["left", "center", "right"] | None = None
    wrap: bool = False
    shown: int | None = None


@dataclass(frozen=True)
class Chart:
    """A chart of some numeric columns against a category column, placed beside the table."""

    title: str
    category: str
    series: tuple[str, ...]
    kind: Literal["bar", "line"] = "bar"
    y_title: str = ""
    anchor: str | None = None  # cell where the chart's top-left corner sits (default: right)


@dataclass
class Table:
    """One sheet: a title block, a header row, typed rows, totals, notes and charts."""

    sheet: str
    title: str
    columns: Sequence[Col]
    rows: list[dict[str, Any]]
    subtitle: str = ""
    totals: bool = True
    notes: Sequence[str] = ()
    charts: Sequence[Chart] = ()
    first_total_label: str = "Total"


@dataclass(frozen=True)
class KeyFigure:
    """One line of the key-figures sheet: a label and a defined name (or a plain value)."""

    label: str
    name: str | None = None  # the defined name whose cell the value comes from
    value: Any = None  # the value (the cached result when ``name`` is given)
    kind: Kind = "int"
    scale: int = 0
    note: str = ""
    shown: int | None = None  # decimal places displayed (None: ``scale``); the cell is exact


@dataclass
class KeyFigures:
    """The first sheet: what the workbook is, then its key figures (by defined name)."""

    sheet: str
    title: str
    header: Sequence[tuple[str, Any]]  # (label, value) lines under the title
    figures: Sequence[KeyFigure]
    notes: Sequence[str] = ()


@dataclass
class Book:
    """A whole workbook: key figures, tables, document properties."""

    title: str
    subject: str
    stamp: datetime  # created / modified (derived from the processing date, never "now")
    creator: str
    front: KeyFigures | None = None
    tables: list[Table] = field(default_factory=list)
    footer: str = ""
    properties: dict[str, str] = field(default_factory=dict)  # custom document properties

    def content_hash(self, *, skip_keys: Sequence[str] = ()) -> str:
        """SHA-256 of every value of the model (except rows/keys named in ``skip_keys``).

        Two runs over the same inputs give the same hash whatever their run id, so a re-run
        can recognise a workbook it would write again unchanged.
        """
        skip = set(skip_keys)

        def row(r: Mapping[str, Any]) -> dict[str, str]:
            return {k: _canon(v) for k, v in sorted(r.items()) if k not in skip}

        # the title is not hashed: it carries the issue number
        doc: dict[str, Any] = {"subject": self.subject}
        if self.front is not None:
            doc["front"] = [
                [label, _canon(v)] for label, v in self.front.header if label not in skip
            ]
            doc["figures"] = [[f.label, f.name, _canon(f.value)] for f in self.front.figures]
        doc["tables"] = [
            {
                "sheet": t.sheet,
                "title": t.title,
                "columns": [[c.key, c.title, c.kind, c.scale, c.formula] for c in t.columns],
                "rows": [row(r) for r in t.rows if r.get("_key") not in skip],
                "notes": list(t.notes),
            }
            for t in self.tables
        ]
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _canon(v: Any) -> str:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime | date):
        return v.isoformat()
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------------------------
# writing


@dataclass
class _Cached:
    """Formula cells and their exact results, per sheet index (for the cached values)."""

    values: dict[int, dict[str, Any]] = field(default_factory=dict)

    def put(self, sheet: int, ref: str, value: Any) -> None:
        self.values.setdefault(sheet, {})[ref] = value


def write_book(book: Book, path: Path) -> bytes:
    """Write ``book`` to ``path`` (atomic rename) and return the bytes written."""
    data = render_book(book)
    write_atomic(path, data)
    return data


def render_book(book: Book) -> bytes:
    """The ``.xlsx`` bytes of ``book`` (same model → same bytes)."""
    wb = Workbook()
    cached = _Cached()
    default = wb.active
    names: dict[str, str] = {}  # defined name → absolute reference
    sheets: list[tuple[Worksheet, Table | KeyFigures]] = []
    if book.front is not None:
        ws = default
        ws.title = book.front.sheet
        sheets.append((ws, book.front))
    else:
        wb.remove(default)
    for table in book.tables:
        ws = wb.create_sheet(table.sheet)
        sheets.append((ws, table))
    # tables first: the key figures refer to their totals by name
    for index, (ws, item) in enumerate(sheets):
        if isinstance(item, Table):
            _write_table(ws, item, index, cached, names)
    for index, (ws, item) in enumerate(sheets):
        if isinstance(item, KeyFigures):
            _write_front(ws, item, index, cached, names)
    for name, ref in sorted(names.items()):
        wb.defined_names[name] = DefinedName(name, attr_text=ref)
    for ws, _ in sheets:
        _page_setup(ws, book)
    props = wb.properties
    props.title = book.title
    props.subject = book.subject
    props.creator = book.creator
    props.lastModifiedBy = book.creator
    props.created = book.stamp
    props.modified = book.stamp
    for key, value in sorted(book.properties.items()):
        wb.custom_doc_props.append(StringProperty(name=key, value=value))
    buf = io.BytesIO()
    wb.save(buf)
    return _finish(buf.getvalue(), cached, book.stamp)


def _write_cell(
    cell: Cell,
    c: Col,
    row: Mapping[str, Any],
    r: int,
    letters: dict[str, str],
    cache: tuple[int, _Cached],
) -> None:
    """Row ``r``'s cell of column ``c``: its value (or formula, the value cached), format, look."""
    value = row.get(c.key)
    scale = c.scale
    if c.scale_key is not None:
        scale = int(row.get(c.scale_key) or 0)
    if c.formula is not None and value is not None:
        cell.value = "=" + c.formula.format(**{k: f"{v}{r}" for k, v in letters.items()})
        index, cached = cache
        cached.put(index, f"{letters[c.key]}{r}", value)
    else:
        cell.value = _cell_value(value, c.kind)
    cell.number_format = number_format(c.kind, scale if c.shown is None else c.shown)
    if c.align is not None or c.wrap or c.kind == "text":
        # text one space in from the left: never glued to a number on its left
        cell.alignment = Alignment(
            horizontal=c.align or ("left" if c.kind == "text" else None),
            wrap_text=c.wrap or None,
            indent=1 if c.kind == "text" and c.align is None else 0,
        )
    if c.flag_nonzero and value not in (None, 0, Decimal(0)):
        cell.fill = _FLAG_FILL


def _write_table(
    ws: Worksheet, t: Table, index: int, cached: _Cached, names: dict[str, str]
) -> None:
    ncols = len(t.columns)
    ws["A1"] = t.title
    ws["A1"].font = _TITLE_FONT
    if t.subtitle:
        ws["A2"] = t.subtitle
        ws["A2"].font = _SUBTITLE_FONT
    letters = {c.key: get_column_letter(i + 1) for i, c in enumerate(t.columns)}
    for i, c in enumerate(t.columns, start=1):
        cell = ws.cell(row=HEADER_ROW, column=i, value=c.title)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
    first = HEADER_ROW + 1
    for r, row in enumerate(t.rows, start=first):
        for i, c in enumerate(t.columns, start=1):
            _write_cell(ws.cell(row=r, column=i), c, row, r, letters, (index, cached))
    last = first + len(t.rows) - 1
    end = get_column_letter(ncols)
    ws.freeze_panes = ws.cell(row=first, column=1)
    ws.auto_filter.ref = f"A{HEADER_ROW}:{end}{max(last, first)}"
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    below = max(last, HEADER_ROW) + 1
    if t.totals:
        total_row = below
        ws.cell(row=total_row, column=1, value=t.first_total_label).font = _TOTAL_FONT
        for i, c in enumerate(t.columns, start=1):
            cell = ws.cell(row=total_row, column=i)
            cell.border = _TOTAL_BORDER
            if not c.total:
                continue
            col = letters[c.key]
            exact = _sum(row.get(c.key) for row in t.rows)
            cell.value = f"=SUM({col}{first}:{col}{last})" if t.rows else "=0"
            cell.number_format = number_format(c.kind, c.scale if c.shown is None else c.shown)
            cell.font = _TOTAL_FONT
            if c.flag_nonzero and exact != 0:
                cell.fill = _FLAG_FILL
            cached.put(index, f"{col}{total_row}", exact)
            if c.name:
                names[c.name] = f"{quote_sheetname(ws.title)}!${col}${total_row}"
        below = total_row + 1
    row_no = below + 1
    for note in t.notes:
        cell = ws.cell(row=row_no, column=1, value=note)
        cell.font = _NOTE_FONT
        row_no += 1
    widths = _widths(ws, t)
    lines = max(_lines(c.title, w) for c, w in zip(t.columns, widths, strict=True))
    ws.row_dimensions[HEADER_ROW].height = 15 * lines + 3
    chart_row = row_no + 1
    for n, chart in enumerate(t.charts):
        _chart(ws, t, chart, letters, first, last, n, chart_row)


def _sum(values: Any) -> Any:
    total: Any = 0
    for v in values:
        if v is not None:
            total += v
    return total


def _cell_value(value: Any, kind: Kind) -> Any:
    if value is None:
        return None
    if kind in ("money", "decimal", "percent", "hours") and not isinstance(value, Decimal | int):
        msg = f"a {kind} cell needs a Decimal or int, not {type(value).__name__} ({value!r})"
        raise TypeError(msg)
    if kind == "datetime" and isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return value


def _lines(title: str, width: float) -> int:
    """Lines a header title wraps to in a column ``width`` characters wide (bold: wider)."""
    room = max(int(width / 1.15) - 1, 4)
    lines, used = 1, 0
    for word in title.split():
        if used and used + 1 + len(word) > room:
            lines, used = lines + 1, len(word)
        else:
            used += (1 if used else 0) + len(word)
    return lines


def _widths(ws: Worksheet, t: Table) -> list[float]:
    out: list[float] = []
    for i, c in enumerate(t.columns, start=1):
        if c.width is not None:
            width = c.width
        else:
            longest = max([len(w) for w in c.title.split()] + [4])
            values = [row.get(c.key) for row in t.rows[:2000]]
            if c.total and t.totals:
                values.append(_sum(row.get(c.key) for row in t.rows))
            for v in values:
                if v is None:
                    continue
                longest = max(longest, _shown_length(v, c))
            width = min(max(longest + 2, 6), 40)
        ws.column_dimensions[get_column_letter(i)].width = width
        out.append(width)
    return out


def _shown_length(v: Any, c: Col) -> int:
    places = c.scale if c.shown is None else c.shown
    if isinstance(v, Decimal):
        shown = abs(v).quantize(Decimal(1).scaleb(-places)) if c.scale_key is None else abs(v)
        return len(format(shown, ",f")) + 1
    if isinstance(v, int) and not isinstance(v, bool):
        digits = len(f"{abs(v):,}") + 1
        return digits + (places + 1 if c.kind in ("money", "decimal") and places else 0)
    if isinstance(v, datetime):
        return 16
    if isinstance(v, date):
        return 10
    return len(str(v))


def _chart(
    ws: Worksheet,
    t: Table,
    spec: Chart,
    letters: Mapping[str, str],
    first: int,
    last: int,
    n: int,
    below: int,
) -> None:
    if not t.rows:
        return
    chart: BarChart | LineChart
    if spec.kind == "bar":
        chart = BarChart()
        chart.type = "col"
        chart.grouping = "clustered"
    else:
        chart = LineChart()
    chart.title = spec.title
    chart.y_axis.title = spec.y_title
    chart.height = 8
    chart.width = 16
    chart.y_axis.numFmt = "#,##0"
    chart.y_axis.majorGridlines = None
    chart.x_axis.tickLblPos = "low"  # category labels below the plot, also under negatives
    # openpyxl hides axes by default (delete=True); finance wants them
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.legend.position = "b"
    cols = {k: list(letters).index(k) + 1 for k in letters}
    for key in spec.series:
        data = Reference(ws, min_col=cols[key], min_row=HEADER_ROW, max_row=last)
        chart.add_data(data, titles_from_data=True)
    cats = Reference(ws, min_col=cols[spec.category], min_row=first, max_row=last)
    chart.set_categories(cats)
    # below the table (printing fits the width: a chart beside a table would shrink it),
    # side by side, about 16 cm apart
    anchor = spec.anchor or f"{_column_at(ws, n * 16.5)}{below}"
    ws.add_chart(chart, anchor)


def _column_at(ws: Worksheet, cm: float) -> str:
    """The column letter where ``cm`` centimetres from the left edge fall."""
    at, i = 0.0, 1
    while True:
        width = ws.column_dimensions[get_column_letter(i)].width or 8.43
        if at + width * 0.19 > cm:
            return str(get_column_letter(i))
        at += width * 0.19
        i += 1


def _write_front(
    ws: Worksheet, k: KeyFigures, index: int, cached: _Cached, names: Mapping[str, str]
) -> None:
    ws["A1"] = k.title
    ws["A1"].font = _TITLE_FONT
    r = 3
    for label, value in k.header:
        ws.cell(row=r, column=1, value=label).font = Font(bold=True)
        cell = ws.cell(row=r, column=2, value=_cell_value(value, "text"))
        if isinstance(value, date) and not isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd"
        cell.alignment = Alignment(horizontal="left")
        r += 1
    r += 1
    header = r
    for i, title in enumerate(("Key figure", "Value", "Where / note"), start=1):
        cell = ws.cell(row=r, column=i, value=title)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
    r += 1
    for f in k.figures:
        ws.cell(row=r, column=1, value=f.label)
        cell = ws.cell(row=r, column=2)
        if f.name is not None and f.name in names:
            cell.value = f"={f.name}"
            cached.put(index, f"B{r}", f.value)
        else:
            cell.value = _cell_value(f.value, f.kind)
        cell.number_format = number_format(f.kind, f.scale if f.shown is None else f.shown)
        if "must be 0" in f.label and f.value not in (None, 0, Decimal(0)):
            cell.fill = _FLAG_FILL
        where = names.get(f.name or "", "").replace("$", "").replace("'", "")
        note = f.note or (f"{where.replace('!', ', cell ')}" if where else "")
        note_cell = ws.cell(row=r, column=3, value=note)
        note_cell.font = _NOTE_FONT
        note_cell.alignment = Alignment(horizontal="left", indent=1)
        r += 1
    r += 1
    for note in k.notes:
        cell = ws.cell(row=r, column=1, value=note)
        cell.font = _NOTE_FONT
        r += 1
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 26
    ws.column_dimensions["C"].width = 60
    ws.freeze_panes = ws.cell(row=header + 1, column=1)
    ws.print_title_rows = f"{header}:{header}"


def _page_setup(ws: Worksheet, book: Book) -> None:
    ws.page_setup.orientation = "landscape"
    # a table wider than about 200 characters prints on A3 (fit to width would make A4 tiny)
    wide = sum(d.width or 8.43 for d in ws.column_dimensions.values()) > 200
    ws.page_setup.paperSize = ws.PAPERSIZE_A3 if wide else ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.horizontalCentered = False
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.oddHeader.left.text = "&A"
    ws.oddHeader.right.text = book.title.replace("&", "&&")
    ws.oddFooter.left.text = (book.footer or book.subject).replace("&", "&&")
    ws.oddFooter.right.text = "Page &P of &N"


# ---------------------------------------------------------------------------------------------
# after openpyxl: cached formula results, fixed zip timestamps

_SHEET_PATH = re.compile(r"xl/worksheets/sheet(\d+)\.xml")
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _finish(data: bytes, cached: _Cached, stamp: datetime) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    when = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps "modified" with the clock on save: put ours back
                text = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                body = _MODIFIED.sub(rb"\g<1>" + text + rb"\g<2>", body)
            m = _SHEET_PATH.fullmatch(info.filename)
            if m is not None:
                values = cached.values.get(int(m.group(1)) - 1)
                if values:
                    body = _fill_cached(body, values)
            entry = zipfile.ZipInfo(info.filename, date_time=when)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            entry.create_system = 3
            dst.writestr(entry, body)
    return out.getvalue()


_FORMULA_CELL = re.compile(rb'(<c r="([A-Z]+[0-9]+)"[^>]*>)(<f>[^<]*</f>)<v\s*/>')


def _fill_cached(xml: bytes, values: Mapping[str, Any]) -> bytes:
    def put(m: re.Match[bytes]) -> bytes:
        ref = m.group(2).decode()
        if ref not in values:
            return m.group(0)
        v = values[ref]
        text = format(v, "f") if isinstance(v, Decimal) else str(int(v))
        return m.group(1) + m.group(3) + b"<v>" + text.encode() + b"</v>"

    return _FORMULA_CELL.sub(put, xml)


_PROPERTY = re.compile(
    rb'<property [^>]*name="([^"]+)"[^>]*>\s*<vt:lpwstr>([^<]*)</vt:lpwstr>\s*</property>'
)


def read_properties(path: Path) -> dict[str, str]:
    """The custom document properties of an ``.xlsx`` (empty when none or unreadable)."""
    try:
        with zipfile.ZipFile(path) as z:
            xml = z.read("docProps/custom.xml")
    except (OSError, KeyError, zipfile.BadZipFile):
        return {}
    return {m.group(1).decode(): m.group(2).decode() for m in _PROPERTY.finditer(xml)}
