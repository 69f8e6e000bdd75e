"""The workbook builder on a hand-made model: exact numbers, totals, names, same bytes."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from openpyxl import load_workbook

from clearing.money import round_div
from clearing.settle._book import (
    Book,
    Chart,
    Col,
    KeyFigure,
    KeyFigures,
    Table,
    money,
    number_format,
    read_properties,
    render_book,
    write_book,
)
from clearing.settle._fx import Fx, Rate
from clearing.settle._issue import HASH_PROPERTY, write_daily

if TYPE_CHECKING:
    from pathlib import Path


def _book(run_id: str = "r1", rows: list[dict[str, Any]] | None = None) -> Book:
    rows = rows or [
        {"partner": "AAAAA", "a": Decimal("0.1"), "b": Decimal("0.2"), "n": 3},
        {"partner": "BBBBB", "a": Decimal("0.7"), "b": Decimal("-0.000001"), "n": 4},
    ]
    for r in rows:
        r["c"] = r["a"] + r["b"]
    table = Table(
        "Data",
        "Data",
        [
            Col("partner", "Partner"),
            Col("n", "Count", "int", total=True, name="count_total"),
            Col("a", "A (SDR)", "money", 6, total=True),
            Col("b", "B (SDR)", "money", 6, total=True),
            Col("c", "A + B (SDR)", "money", 6, total=True, formula="{a} + {b}", name="c_total"),
        ],
        rows,
    )
    audit = Table(
        "Audit",
        "Audit",
        [Col("what", "What"), Col("name", "Value")],
        [{"what": "run id", "name": run_id, "_key": "run_id"}],
        totals=False,
    )
    front = KeyFigures(
        "Overview",
        "Test",
        [("Run id", run_id)],
        [KeyFigure("A + B", "c_total", sum((r["c"] for r in rows), Decimal(0)), "money", 6)],
    )
    return Book("t", "s", datetime(2026, 11, 15), "clearing test", front, [table, audit])


def test_decimals_are_written_exactly_and_totals_are_formulas_with_their_value() -> None:
    data = render_book(_book())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet2.xml").decode()
    # 0.1 + 0.2 is 0.3 here, not 0.30000000000000004
    assert "<v>0.3</v>" in sheet
    assert "<f>SUM(E5:E6)</f><v>0.999999</v>" in sheet
    assert "<f>C5 + D5</f><v>0.3</v>" in sheet
    assert "<f>SUM(B5:B6)</f><v>7</v>" in sheet


def test_names_front_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "b.xlsx"
    write_book(_book(), path)
    wb = load_workbook(path)
    assert set(wb.defined_names) == {"count_total", "c_total"}
    ((sheet, ref),) = wb.defined_names["c_total"].destinations
    assert (sheet, ref) == ("Data", "$E$7")
    assert wb["Overview"]["B6"].value == "=c_total"
    assert wb["Data"]["C5"].number_format == number_format("money", 6)
    assert wb["Data"].freeze_panes == "A5"
    assert wb["Data"].auto_filter.ref == "A4:E6"
    values = load_workbook(path, data_only=True)
    assert values["Overview"]["B6"].value == pytest.approx(0.999999)


def test_same_model_same_bytes_and_the_hash_ignores_the_run(tmp_path: Path) -> None:
    assert render_book(_book()) == render_book(_book())
    assert render_book(_book("r1")) != render_book(_book("r2"))
    skip = ("Run id", "run_id")
    assert _book("r1").content_hash(skip_keys=skip) == _book("r2").content_hash(skip_keys=skip)
    other = _book(rows=[{"partner": "AAAAA", "a": Decimal("0.1"), "b": Decimal(0), "n": 1}])
    assert other.content_hash(skip_keys=skip) != _book().content_hash(skip_keys=skip)
    path = tmp_path / "d.xlsx"
    write_daily(_book("r1"), path)
    first = path.read_bytes()
    assert read_properties(path)[HASH_PROPERTY] == _book().content_hash(
        skip_keys=("Run id", "run_id", "Issue", "issue", "Replaces", "replaces", "content_hash")
    )
    write_daily(_book("r2"), path)  # same content: the file is left as it is
    assert path.read_bytes() == first
    with zipfile.ZipFile(path) as z:
        core = z.read("docProps/core.xml").decode()
    assert "2026-11-15T00:00:00Z</dcterms:modified>" in core


def test_money_is_never_a_float() -> None:
    table = Table("D", "D", [Col("a", "A (SDR)", "money", 6)], [{"a": 0.1}], totals=False)
    with pytest.raises(TypeError, match="Decimal or int"):
        render_book(Book("t", "s", datetime(2026, 11, 15), "c", None, [table]))
    assert money(12345, 3) == Decimal("12.345")
    assert money(None, 2) is None


def test_conversion_rounds_once_half_away_from_zero_and_parts_add_up() -> None:
    assert round_div(5, 10) == 1
    assert round_div(-5, 10) == -1
    assert round_div(4, 10) == 0
    usd = Rate("USD", 136412, 5, date(2025, 1, 1), None, "test", "v1")
    sdr = Rate("SDR", 1, 0, date(1900, 1, 1), None, "unit", "-")
    fx = Fx([usd, sdr])
    # 1.00 USD = 1 / 1.36412 SDR = 0.733073(3...) SDR
    assert fx.sdr(100, 2, "USD", date(2026, 11, 15)) == Decimal("0.733073")
    parts = fx.sdr_parts([1, 1, 1], 2, "USD", date(2026, 11, 15))
    assert sum(parts) == fx.sdr(3, 2, "USD", date(2026, 11, 15))
    assert fx.sdr(12345, 5, "SDR", date(2026, 11, 15)) == Decimal("0.123450")


def test_a_one_day_line_chart_has_markers_and_its_values_cached() -> None:
    rows = [{"label": "2026-11-15", "rec": Decimal("189.179817"), "pay": Decimal("-0.5")}]
    table = Table(
        "Daily trend",
        "Daily trend",
        [
            Col("label", "Processing date"),
            Col("rec", "Net receivable (SDR)", "money", 6, total=True),
            Col("pay", "Net payable (SDR)", "money", 6, total=True),
        ],
        rows,
        charts=[Chart("Daily trend (SDR)", "label", ("rec", "pay"), kind="line")],
    )
    data = render_book(Book("t", "s", datetime(2026, 11, 15), "c", None, [table]))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        (name,) = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        xml = z.read(name).decode()
    # one point per series, drawn as a marker (a line through one point draws nothing)
    assert xml.count('<symbol val="circle" />') == 2
    assert '<symbol val="none" />' not in xml
    # the values the chart shows are cached in it, exactly as the cells hold them
    assert '<pt idx="0"><v>189.179817</v></pt>' in xml
    assert '<pt idx="0"><v>-0.5</v></pt>' in xml
    assert '<pt idx="0"><v>2026-11-15</v></pt>' in xml  # the category
    assert '<pt idx="0"><v>Net payable (SDR)</v></pt>' in xml  # the series name
    assert xml.count("<numCache>") == 2
    assert xml.count("<strCache>") == 4  # 2 names + 2 category lists
    assert 'sz="1000"' in xml  # the chart's text at 10 pt


def test_a_wide_sheet_prints_on_several_a4_pages_with_its_key_columns_repeated() -> None:
    wide = [Col("partner", "Partner"), Col("name", "Name")] + [
        Col(f"v{i}", f"Value {i}", "money", 6, width=16) for i in range(20)
    ]
    narrow = [Col("partner", "Partner"), Col("v0", "Value", "money", 2)]
    row = {"partner": "AAAAA", "name": "A network", **{f"v{i}": Decimal(i) for i in range(20)}}
    note = "A note long enough to wrap over the width of the page. " * 8
    book = Book(
        "t",
        "s",
        datetime(2026, 11, 15),
        "c",
        None,
        [
            Table("Wide", "Wide", wide, [row], notes=[note]),
            Table("Narrow", "Narrow", narrow, [row], subtitle=note),
        ],
    )
    wb = load_workbook(io.BytesIO(render_book(book)))
    for ws in wb.worksheets:
        assert int(ws.page_setup.paperSize) == 9  # A4
        assert ws.page_setup.orientation == "landscape"
        assert not ws.sheet_properties.pageSetUpPr.fitToPage
        assert 85 <= int(ws.page_setup.scale) <= 100
    # 2 + 20 * 16 characters: far wider than a page at 85 %, so several pages wide with the
    # partner and name on each; the narrow one fits one page at 100 %
    assert int(wb["Wide"].page_setup.scale) == 85
    assert wb["Wide"].print_title_cols == "$A:$B"
    assert int(wb["Narrow"].page_setup.scale) == 100
    assert wb["Narrow"].print_title_cols is None
    # long notes and subtitles wrap over the page width (merged, wrapped, rows made higher)
    assert any(r.min_row == r.max_row == 2 for r in wb["Narrow"].merged_cells.ranges)
    assert wb["Narrow"]["A2"].alignment.wrap_text
    assert (wb["Narrow"].row_dimensions[2].height or 0) > 30
