"""The run summary templates: text for the terminal and log, HTML for mail."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clearing.errors import ConfigError
from clearing.settle import RunSummary, render_summary

SUMMARY = RunSummary(
    kind="nightly",
    run_id="nightly-2026-11-15-x",
    date="2026-11-15",
    home="HKGCL",
    status="warning",
    stages=[{"name": "validate", "status": "ok", "seconds": 1.25, "note": "22 files"}],
    counts={"validate: files": 22, "rate: rated": 1000},
    identity={
        "in": 2430,
        "accepted": 2168,
        "returned": 256,
        "duplicate": 1,
        "late": 1,
        "quarantined": 4,
        "difference": 0,
    },
    values=[{"label": "payable FRAF9", "amount": Decimal("1234.500001"), "currency": "EUR"}],
    returns=[{"partner": "FRAF9", "kind": "RAP", "file": "RCHKGCLFRAF900001", "records": 2}],
    anomalies=[{"severity": "warning", "message": "CDCHEC9HKGCL03625 <fatal> & returned"}],
    workbooks=[{"label": "workbook", "path": "out/settlement/daily/x.xlsx"}],
)


def test_text_summary_shows_everything_aligned() -> None:
    text = render_summary(SUMMARY)
    assert text.startswith("clearing nightly 2026-11-15 · HKGCL — WARNING")
    assert "2,430 = 2,168 + 256 + 1 + 1 + 4   difference 0" in text
    assert "1,234.500001 EUR" in text  # exact, thousands separators
    assert "[warning] CDCHEC9HKGCL03625 <fatal> & returned" in text
    assert "out/settlement/daily/x.xlsx" in text
    assert "MUST BE 0" not in text


def test_html_summary_escapes_and_flags_a_difference() -> None:
    data = {**SUMMARY.__dict__, "identity": {**SUMMARY.identity, "difference": 3}}  # type: ignore[dict-item]
    html = render_summary(data, fmt="html")
    assert html.startswith("<!DOCTYPE html>")
    assert "&lt;fatal&gt; &amp; returned" in html
    assert "<fatal>" not in html
    assert "background: #fce4d6" in html  # the non-zero difference is shaded
    assert "1,234.500001" in html
    text = render_summary(data)
    assert "difference 3  <-- MUST BE 0" in text


def test_a_partial_dict_renders_and_bad_input_is_refused() -> None:
    assert render_summary({}).startswith("clearing nightly — OK")
    assert "No anomalies." in render_summary({"anomalies": []}, fmt="html")
    assert "  plain words" in render_summary({"anomalies": ["plain words"]})
    with pytest.raises(ConfigError, match="text or html"):
        render_summary({}, fmt="pdf")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        render_summary({"values": [{"label": "x", "amount": 0.1}]})
