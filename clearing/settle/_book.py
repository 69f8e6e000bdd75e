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
* **Exact cells, readable figures.** A column or key figure may show fewer decimals than it
  holds (``shown``): summary sheets show SDR to the cent, the cell keeps all six.
* **Printable on A4.** Every sheet prints A4 landscape at 85-100 %, so no text prints under
  8 pt; a wider sheet prints several pages wide with its key columns repeated on each page.
  Long subtitles and notes wrap over the page width. Charts sit below their table (or beside
  it, the page planned wide enough for both), cache the values they show and mark each point.
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
from xml.sax.saxutils import escape, unescape

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.chart.marker import Marker
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
_NOTE_FONT = Font(italic=True, size=10, color="595959")
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
    anchor: str | None = None  # cell where the chart's top-left corner sits (default: below)
    beside: bool = False  # beside the table (one under the other), the page planned wide enough
    width: float = 16.0  # centimetres
    height: float = 8.0


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
    # chart data references ('Sheet'!$B$5:$B$9) → the values they hold (the chart's cache)
    series: dict[str, list[Any]] = field(default_factory=dict)

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
    layouts: dict[str, _Layout] = {}
    for index, (ws, item) in enumerate(sheets):
        if isinstance(item, Table):
            layouts[ws.title] = _write_table(ws, item, index, cached, names)
    for index, (ws, item) in enumerate(sheets):
        if isinstance(item, KeyFigures):
            layouts[ws.title] = _write_front(ws, item, index, cached, names)
    for name, ref in sorted(names.items()):
        wb.defined_names[name] = DefinedName(name, attr_text=ref)
    for ws, _ in sheets:
        _page_setup(ws, book, layouts[ws.title])
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
) -> _Layout:
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
    beside = _beside(t)
    if beside:
        ws.column_dimensions[get_column_letter(ncols + 1)].width = _GAP
    layout = _layout(widths + beside, t.columns)
    if t.subtitle:
        _flow(ws, 2, widths, layout.scale, 11)
    for r in range(below + 1, row_no):
        _flow(ws, r, widths, layout.scale, 10)
    _wrap_rows(ws, t, widths, first)
    chart_row = row_no + 1
    for n, chart in enumerate(t.charts):
        _chart(ws, t, chart, letters, (first, last), n, chart_row, cached)
    return layout


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
    room = max(int(width / 1.35) - 1, 4)  # bold, and wider where DejaVu stands in for Calibri
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
    rows: tuple[int, int],
    n: int,
    below: int,
    cached: _Cached,
) -> None:
    """Add ``spec`` to ``ws``: series with markers (a single day still shows a point).

    The chart caches the values it shows, so a reader that does not recalculate draws it.
    """
    if not t.rows:
        return
    first, last = rows
    chart: BarChart | LineChart
    if spec.kind == "bar":
        chart = BarChart()
        chart.type = "col"
        chart.grouping = "clustered"
    else:
        chart = LineChart()
    chart.title = spec.title
    chart.y_axis.title = spec.y_title
    chart.height = spec.height
    chart.width = spec.width
    chart.y_axis.numFmt = "#,##0"
    chart.y_axis.majorGridlines = None
    chart.x_axis.tickLblPos = "low"  # category labels below the plot, also under negatives
    # openpyxl hides axes by default (delete=True); finance wants them
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.legend.position = "b"
    cols = {k: list(letters).index(k) + 1 for k in letters}
    titles = {c.key: c.title for c in t.columns}
    for key in spec.series:
        data = Reference(ws, min_col=cols[key], min_row=HEADER_ROW, max_row=last)
        chart.add_data(data, titles_from_data=True)
    cats = Reference(ws, min_col=cols[spec.category], min_row=first, max_row=last)
    labels = [None if r.get(spec.category) is None else str(r[spec.category]) for r in t.rows]
    cached.series[str(cats)] = labels
    for key, series in zip(spec.series, chart.series, strict=True):
        series.cat = AxDataSource(strRef=StrRef(f=str(cats)))
        cached.series[series.tx.strRef.f] = [titles[key]]
        cached.series[series.val.numRef.f] = [r.get(key) for r in t.rows]
        if spec.kind == "line":
            series.marker = Marker(symbol="circle", size=7)
            series.smooth = False
    # below the table, one under the other (printing: a chart beside a table or beside
    # another chart would make the page wider), 17 rows (8 cm and a gap) apart
    anchor = spec.anchor or f"A{below + 17 * n}"
    if spec.beside:
        # beside the table, one column apart, the next chart under the one before
        gap = int(spec.height / 0.53) + 2  # a row is 15 pt (0.53 cm) high
        anchor = f"{get_column_letter(len(t.columns) + 2)}{HEADER_ROW + gap * n}"
    ws.add_chart(chart, anchor)


_GAP = 2.0  # the width of the column between a table and the charts beside it


def _beside(t: Table) -> list[float]:
    """The widths (in column-width units) a table's charts beside it take on the page."""
    wide = [c.width for c in t.charts if c.beside]
    if not wide or not t.rows:
        return []
    return [_GAP, max(wide) * 28.35 / _PT_PER_WIDTH]  # a narrow gap column, the chart


def _write_front(
    ws: Worksheet, k: KeyFigures, index: int, cached: _Cached, names: Mapping[str, str]
) -> _Layout:
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
    notes = r
    for note in k.notes:
        cell = ws.cell(row=r, column=1, value=note)
        cell.font = _NOTE_FONT
        r += 1
    widths = [44.0, 26.0, 60.0]
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    layout = _layout(widths, ())
    for row in range(notes, r):
        _flow(ws, row, widths, layout.scale, 10, extend=False)
    ws.freeze_panes = ws.cell(row=header + 1, column=1)
    ws.print_title_rows = f"{header}:{header}"
    return layout


# ---------------------------------------------------------------------------------------------
# printing: A4 landscape, never below 85 % (the smallest text, 10 pt notes, prints at 8.5 pt);
# a wider sheet prints several pages wide, its key columns repeated on each

_PAGE_PT = 841.89 - 2 * 0.4 * 72  # A4 landscape between the left and right margins
# one unit of column width is a digit of the default font: 5.25 pt with Calibri (Excel), 7 pt
# where LibreOffice falls back to DejaVu Sans; planned for the wider, it fits both
_PT_PER_WIDTH = 7.0
_MIN_SCALE = 85
_DEFAULT_WIDTH = 8.43
_KEY_SHARE = 0.3  # the repeated key columns take at most this share of a page


@dataclass(frozen=True)
class _Layout:
    """How a sheet prints: the scale (percent) and the key columns repeated on every page."""

    scale: int
    keys: int = 0  # leading columns repeated on each page across (0: the sheet fits one)


def _layout(widths: Sequence[float], columns: Sequence[Col]) -> _Layout:
    """The print scale of a sheet whose columns are ``widths`` wide (and its key columns)."""
    need = sum(widths) * _PT_PER_WIDTH * 1.03  # 3 %: grid lines, rounding to pixels
    fit = int(100 * _PAGE_PT / need) if need else 100
    if fit >= _MIN_SCALE:
        return _Layout(min(fit, 100))
    # several pages wide: the first column and a text column after it (partner and name,
    # partner and file) on every page
    room = _PAGE_PT * 100 / _MIN_SCALE / _PT_PER_WIDTH * _KEY_SHARE
    keys, used = 0, 0.0
    for c, w in zip(columns, widths, strict=False):
        if (keys and c.kind != "text") or keys == 2 or used + w > room:
            break
        keys, used = keys + 1, used + w
    return _Layout(_MIN_SCALE, max(keys, 1))


def _flow(
    ws: Worksheet, row: int, widths: Sequence[float], scale: int, size: int, *, extend: bool = True
) -> None:
    """Wrap the long text of ``row``'s first cell over the width of one printed page.

    The cell is merged with its neighbours up to the page's width (beyond the table's columns
    when ``extend``, through empty ones) and the row made as high as its lines.
    """
    cell = ws.cell(row=row, column=1)
    text = str(cell.value or "")
    room = _PAGE_PT * 100 / scale / _PT_PER_WIDTH  # the page's width in column-width units
    span, used = 0, 0.0
    while True:
        w = widths[span] if span < len(widths) else (_DEFAULT_WIDTH if extend else room)
        if used + w > room:
            break
        span, used = span + 1, used + w
    span = max(span, 1)
    # an average character is about 0.45 (Calibri) to 0.55 (DejaVu) of its size wide
    lines = -(-len(text) * size * 0.6 // (used * _PT_PER_WIDTH))
    if lines <= 1:
        return
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=span)
    cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")
    ws.row_dimensions[row].height = lines * round(size * 1.3) + 2


def _wrap_rows(ws: Worksheet, t: Table, widths: Sequence[float], first: int) -> None:
    """Rows whose wrapped columns (``Col.wrap``) hold long text: as high as their lines."""
    wrapped = [(c.key, w) for c, w in zip(t.columns, widths, strict=True) if c.wrap]
    if not wrapped:
        return
    for r, row in enumerate(t.rows, start=first):
        lines = max(-(-len(str(row.get(key) or "")) // max(int(w) - 2, 1)) for key, w in wrapped)
        if lines > 1:
            ws.row_dimensions[r].height = 15 * lines


def _page_setup(ws: Worksheet, book: Book, layout: _Layout) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.scale = layout.scale
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=False)
    if layout.keys:
        ws.print_title_cols = f"A:{get_column_letter(layout.keys)}"
        ws.page_setup.pageOrder = "overThenDown"  # a row's pages across one after the other
    ws.print_options.horizontalCentered = False
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.oddHeader.left.text = "&A"
    ws.oddHeader.right.text = book.title.replace("&", "&&")
    ws.oddFooter.left.text = (book.footer or book.subject).replace("&", "&&")
    ws.oddFooter.right.text = "Page &P of &N"
    for part in (ws.oddHeader.left, ws.oddHeader.right, ws.oddFooter.left, ws.oddFooter.right):
        part.size = 10


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
            if _CHART_PATH.fullmatch(info.filename):
                body = _fill_chart(body, cached.series)
            entry = zipfile.ZipInfo(info.filename, date_time=when)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            entry.create_system = 3
            dst.writestr(entry, body)
    return out.getvalue()


_CHART_PATH = re.compile(r"xl/charts/chart(\d+)\.xml")
_CHART_REF = re.compile(rb"<(numRef|strRef)><f>([^<]*)</f></\1>")
# the chart's text: 10 pt (axis labels, legend; titles are drawn larger), readable when printed
_CHART_TEXT = (
    b'<txPr><a:bodyPr /><a:lstStyle /><a:p><a:pPr><a:defRPr sz="1000" /></a:pPr>'
    b'<a:endParaRPr lang="en-US" /></a:p></txPr>'
)


def _fill_chart(xml: bytes, series: Mapping[str, list[Any]]) -> bytes:
    """Cache each data reference's values in the chart (numbers exact, as their cells)."""

    def put(m: re.Match[bytes]) -> bytes:
        kind, ref = m.group(1), unescape(m.group(2).decode())
        values = series.get(ref)
        if values is None:
            return m.group(0)
        points = "".join(
            f'<pt idx="{i}"><v>{escape(_canon(v))}</v></pt>'
            for i, v in enumerate(values)
            if v is not None
        )
        count = f'<ptCount val="{len(values)}" />'
        cache = (
            f"<numCache><formatCode>General</formatCode>{count}{points}</numCache>"
            if kind == b"numRef"
            else f"<strCache>{count}{points}</strCache>"
        )
        return m.group(0)[: -len(kind) - 3] + cache.encode() + b"</" + kind + b">"

    xml = _CHART_REF.sub(put, xml)
    return xml.replace(b"</chart>", b"</chart>" + _CHART_TEXT, 1)


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
