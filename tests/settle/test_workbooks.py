"""Both workbooks as files: formulas agree with values, numbers are numbers, LibreOffice opens,
recalculates and prints them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from openpyxl import load_workbook

from .helpers import dec, evaluate, formula_cells
from .pdf_fonts import Page, read_pdf
from .world import DAY2

if TYPE_CHECKING:
    from pathlib import Path


# the sheets that show SDR amounts to 2 decimals (the cells keep all 6)
SUMMARY_SHEETS = {"Overview", "Partners", "Reconciliation by partner", "Summary", "Daily trend"}
CENTS = "#,##0.00;[Red]-#,##0.00"


@pytest.fixture(scope="module")
def books(daily_path: Path, monthly_path: Path) -> list[Path]:
    return [daily_path, monthly_path]


def test_every_formula_agrees_with_its_stored_value(books: list[Path]) -> None:
    for path in books:
        wb = load_workbook(path, data_only=True)
        cells = formula_cells(path)
        assert len(cells) > 50
        for sheet, ref, formula, cached in cells:
            assert cached is not None, (path.name, sheet, ref, formula)
            assert evaluate(formula, wb[sheet], wb) == dec(cached), (sheet, ref, formula)


def test_numbers_are_numbers_with_formats_frozen_filtered_and_printable(
    books: list[Path],
) -> None:
    for path in books:
        wb = load_workbook(path)
        for ws in wb.worksheets:
            # A4 landscape at 85 % or more (never fit to one page: that shrinks the text);
            # the LibreOffice test measures the printed sizes
            assert ws.page_setup.orientation == "landscape"
            assert int(ws.page_setup.paperSize) == 9  # A4
            assert not ws.sheet_properties.pageSetUpPr.fitToPage
            assert 85 <= int(ws.page_setup.scale) <= 100
            assert ws.print_title_rows
            assert ws.freeze_panes is not None
            if ws.title == "Overview":
                continue
            assert ws.freeze_panes == "A5"
            assert ws.auto_filter.ref.startswith("A4:")
            for row in ws.iter_rows(min_row=5):
                for cell in row:
                    fmt = cell.number_format
                    m = re.match(r"#,##0(?:\.(0+))?", fmt)
                    if m is None or cell.value is None or isinstance(cell.value, str):
                        continue
                    # stored as a number, with no more decimals than its format shows; a
                    # summary sheet shows SDR to the cent and keeps the exact (6-place) value
                    assert cell.data_type == "n", (ws.title, cell.coordinate)
                    places = len(m.group(1) or "")
                    if ws.title in SUMMARY_SHEETS and places == 2:
                        places = 6
                    value = dec(cell.value)
                    assert value == value.quantize(Decimal(1).scaleb(-places)), (
                        ws.title,
                        cell.coordinate,
                    )
    daily = load_workbook(books[0])
    cell = daily["Reconciliation"]["M5"]
    assert cell.number_format == "#,##0.000000;[Red]-#,##0.000000"
    monthly = load_workbook(books[1])
    names = set(monthly.defined_names)
    assert {"net_position_sdr", "net_payable_sdr", "receivable_sdr"} <= names


def _column(ws: Any, title: str) -> list[Any]:
    (col,) = [c.column for c in ws[4] if c.value == title]
    return [ws.cell(r, col) for r in range(5, ws.max_row + 1) if ws.cell(r, col).value is not None]


def test_summary_sheets_show_cents_and_keep_the_exact_amount(books: list[Path]) -> None:
    daily, monthly = (load_workbook(p) for p in books)
    shown = [
        *_column(daily["Partners"], "Accepted charge in (SDR)"),
        *_column(daily["Reconciliation by partner"], "Accepted (SDR)"),
        *_column(monthly["Summary"], "Net position (SDR)"),
        *_column(monthly["Daily trend"], "Net (SDR)"),
    ]
    assert shown
    assert {c.number_format for c in shown} == {CENTS}
    # the exact values are in the cells: some have more than 2 decimals
    assert any(dec(c.value) != dec(c.value).quantize(Decimal("0.01")) for c in shown)
    for wb in (daily, monthly):
        figures = {r[0].value: r[1] for r in wb["Overview"].iter_rows(max_col=2) if r[0].value}
        sdr = {k: c for k, c in figures.items() if "SDR" in str(k) and c.value is not None}
        assert sdr
        for label, cell in sdr.items():
            # identity differences stay in full: a difference of 0.000001 must not show 0.00
            want = CENTS if "must be 0" not in label else "#,##0.000000;[Red]-#,##0.000000"
            assert cell.number_format == want, label
    # the detail sheets keep the six decimals
    assert {c.number_format for c in _column(monthly["Detail"], "Net (SDR)")} == {
        "#,##0.000000;[Red]-#,##0.000000"
    }


def test_workbook_properties_come_from_the_date_not_the_clock(books: list[Path]) -> None:
    daily, monthly = books
    props = load_workbook(daily).properties
    assert props.created.isoformat() == "2026-11-15T00:00:00"
    assert props.modified.isoformat() == "2026-11-15T00:00:00"
    assert load_workbook(monthly).properties.modified.isoformat() == "2026-12-01T00:00:00"
    with zipfile.ZipFile(daily) as z:
        assert {i.date_time for i in z.infolist()} == {(2026, 11, 15, 0, 0, 0)}


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _convert(soffice: str, target: str, files: list[Path], out: Path, profile: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            target,
            "--outdir",
            str(out),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        timeout=240,
        env={**os.environ, "HOME": str(profile)},
    )


_CACHED = re.compile(rb"(<c [^>]*>)(<f>[^<]*</f>)<v>[^<]*</v>")


@pytest.mark.skipif(_soffice() is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_recalculates_the_same_and_prints(books: list[Path], tmp_path: Path) -> None:
    soffice = _soffice()
    assert soffice is not None
    profile = tmp_path / "profile"
    # copies without the cached results: LibreOffice must compute every formula itself
    bare = []
    for path in books:
        copy = tmp_path / "bare" / path.name
        copy.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(copy, "w") as dst:
            for info in src.infolist():
                body = src.read(info.filename)
                if info.filename.startswith("xl/worksheets/"):
                    body = _CACHED.sub(rb"\1\2", body)
                dst.writestr(info, body)
        bare.append(copy)
    _convert(soffice, "xlsx:Calc MS Excel 2007 XML", bare, tmp_path / "recalc", profile)
    _convert(soffice, "pdf", books, tmp_path / "pdf", profile)
    for path in books:
        recalculated = load_workbook(tmp_path / "recalc" / path.name, data_only=True)
        ours = load_workbook(path, data_only=True)
        n = 0
        for sheet, ref, _formula, cached in formula_cells(path):
            lo = recalculated[sheet][ref].value
            assert lo is not None, (path.name, sheet, ref)
            exponent = dec(cached).as_tuple().exponent
            assert isinstance(exponent, int), (sheet, ref, cached)  # a finite number
            places = max(-exponent, 0)
            got = dec(lo).quantize(Decimal(1).scaleb(-places)) if places else dec(round(lo))
            assert got == dec(ours[sheet][ref].value), (sheet, ref, lo, cached)
            n += 1
        assert n > 50
        pdf = tmp_path / "pdf" / path.with_suffix(".pdf").name
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF")
        assert data.count(b"/Type /Page") + data.count(b"/Type/Page") > len(ours.worksheets)
        _printed_on_a4_at_8_pt_or_more(path, read_pdf(data))


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _printed_on_a4_at_8_pt_or_more(path: Path, pages: list[Page]) -> None:
    """Every page A4, no text under 8 pt, every sheet printed whole.

    A sheet printed one page wide shows every column title on each of its pages (the header
    row repeats); a wider one shows its key columns' titles on each page and every title on
    some page. The Audit sheet's names and hashes are printed in full (long ones wrap).
    """
    wb = load_workbook(path)
    assert pages
    for page in pages:
        assert page.is_a4, (path.name, page.number, page.width, page.height)
        assert page.smallest is not None
        assert page.smallest >= 8, (path.name, page.number, page.smallest)
    # the page header names the sheet (&A): each page's first text run
    by_sheet: dict[str, list[str]] = {}
    for page in pages:
        sheet = next(r.text for r in page.runs if r.text.strip())
        by_sheet.setdefault(sheet, []).append(_squeeze("".join(r.text for r in page.runs)))
    assert set(by_sheet) == set(wb.sheetnames), path.name
    for ws in wb.worksheets:
        if ws.title == "Overview":
            continue
        titles = [_squeeze(str(c.value)) for c in ws[4] if c.value is not None]
        texts = by_sheet[ws.title]
        if ws.print_title_cols is None:
            for text in texts:
                missing = [t for t in titles if t not in text]
                assert not missing, (path.name, ws.title, missing)
        else:
            keys = int(ws.page_setup.scale) == 85 and ws.print_title_cols.count("$") // 2
            assert keys
            assert len(texts) > 1
            for text in texts:
                assert all(t in text for t in titles[: int(keys)]), ws.title
            assert all(any(t in text for text in texts) for t in titles), ws.title
    audit = "".join(by_sheet["Audit"])
    shown = [
        _squeeze(str(c.value))
        for row in wb["Audit"].iter_rows(min_row=5, max_col=3)
        for c in row[1:]
        if c.value
    ]
    assert any("/" in s and len(s) > 40 for s in shown)  # long paths are there to print
    assert [s for s in shown if s not in audit] == [], path.name


def test_the_config_fingerprint_is_the_manifests(world: Path, books: list[Path]) -> None:
    """Overview and Audit show the SHA-256 of clearing.toml's bytes: the manifest's figure."""
    expected = hashlib.sha256((world / "clearing.toml").read_bytes()).hexdigest()
    (manifest,) = (world / "runs").glob(f"nightly-{DAY2}-*/manifest.json")
    assert json.loads(manifest.read_text(encoding="utf-8"))["config_sha256"] == expected
    for path in books:
        wb = load_workbook(path)
        front = {r[0].value: r[1].value for r in wb["Overview"].iter_rows(max_col=2) if r[0].value}
        assert front["Config SHA-256"] == expected, path.name
        audit = {r[0].value: r for r in wb["Audit"].iter_rows(min_row=5, max_col=3)}
        assert audit["config"][1].value == "clearing.toml"
        assert audit["config"][2].value == expected, path.name


_SERIES = re.compile(
    r"<(numRef|strRef)><f>'?([^'!<]+)'?!\$?([A-Z]+)\$?(\d+)(?::\$?[A-Z]+\$?(\d+))?</f>"
    r"<(?:numCache|strCache)>(.*?)</(?:numCache|strCache)>"
)


def test_charts_cache_the_values_of_their_cells_and_lines_have_markers(
    books: list[Path],
) -> None:
    n = 0
    for path in books:
        wb = load_workbook(path, data_only=True)
        with zipfile.ZipFile(path) as z:
            charts = [z.read(i).decode() for i in z.namelist() if i.startswith("xl/charts/")]
        assert charts
        for xml in charts:
            assert "<f>" in xml
            assert xml.count("<f>") == len(_SERIES.findall(xml)), "a reference without cache"
            if "<lineChart>" in xml:
                assert '<symbol val="none" />' not in xml
            for kind, sheet, col, lo, hi, cache in _SERIES.findall(xml):
                ws = wb[sheet]
                cells = [ws[f"{col}{r}"].value for r in range(int(lo), int(hi or lo) + 1)]
                points = dict(re.findall(r'<pt idx="(\d+)"><v>([^<]*)</v></pt>', cache))
                for i, value in enumerate(cells):
                    if kind == "numRef":
                        assert dec(points[str(i)]) == dec(value), (sheet, col, i)
                    else:
                        assert points[str(i)] == str(value), (sheet, col, i)
                n += 1
    assert n >= 10
