"""``clearing stats``: a hand-built lake whose figures are worked out below, a generated world
checked against an independent decode of its TAP files, and the workbook printed by LibreOffice.

The hand-built month (period 2026-11; a date of October and one of December are in the lake too
and must be left out):

Outbound (our roamers abroad; ``events_in``, only ``accepted`` counts):

====  ==========  =======  ====================  =====================  ========  ===========
day   partner     IMSI     event                 duration / volume      status    charge
====  ==========  =======  ====================  =====================  ========  ===========
11-03 FRAF9       A        MOC tele 11           45 s                   accepted  1.000 SDR
11-03 FRAF9       A        MOC tele 11           60 s                   accepted
11-03 FRAF9       B        MTC tele 11           61 s                   accepted
11-03 FRAF9       A        MOC tele 22 (SMS MO)                         accepted
11-03 FRAF9       B        MTC tele 21 (SMS MT)                         accepted
11-03 FRAF9       B        gprsCall              1 000 000 + 48 576 B   accepted  2.500 SDR
11-03 FRAF9       A        MOC tele 11           500 s                  rejected
11-04 DEUD9       B        MOC tele 11           1 900 s                accepted  0.12345 SDR
11-04 DEUD9       A        gprsCall              2 097 152 + 0 B        accepted
11-04 DEUD9       A        mobileSession         121 s                  accepted
11-04 04172       C        MOC (CIBER)           30 s                   accepted  1.50 USD
10-31 FRAF9       A        MOC tele 11           10 s                   accepted  (October)
12-01 FRAF9       A        MOC tele 11           10 s                   accepted  (December)
====  ==========  =======  ====================  =====================  ========  ===========

Inbound (visitors; ``rated_visitors`` of 11-03 from GBRG9, ``unrated_visitors`` of 11-04):
moc 120 s (1.500000 SDR), mtc 0 s, sms_mo, sms_mo (0.250000 SDR), sms_mt, gprs 1 000 + 2 000 B,
a moc of 999 s with origin ``recycled`` (counted on its first date: not here); unrated: moc
301 s (GBRG9), gprs 500 + 500 B (JPNJ9, held).

Retail bill lines (HKD): A primary/primary voice_mo 60 s 10.50, A data/apn 2 097 152 B 0.00; B
local/msisdn voice_mt 1 920 s 25.99, B primary/primary sms_mt 1 message 1.00, B
virtual/selection_code voice_mo 30 s 0.005 (scale 3).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from openpyxl import load_workbook

from clearing import lake
from clearing.codecs import asn1
from tests.cli_run import run_cli

from .pdf_fonts import read_pdf

if TYPE_CHECKING:
    from pathlib import Path

PERIOD = "2026-11"
D1, D2 = date(2026, 11, 3), date(2026, 11, 4)
A, B, C = "454001234560001", "454001234560002", "310001234560003"
MSISDN = {A: "85291230001", B: "85291230002", C: "13125550003"}
TOML = """[home]
tadig = "HKGCL"

[partners.FRAF9]
name = "Fromage Mobile"
standard = "tap"

[partners.DEUD9]
name = "Brezel Funk"
standard = "tap"
"""

# --- the figures worked out by hand (see the module docstring) --------------------------------

COARSE = [  # bucket, outbound calls, seconds, inbound calls, seconds
    ("0-60 s", 3, 45 + 60 + 30, 1, 0),
    ("61-120 s", 1, 61, 1, 120),
    ("> 120 s", 2, 1900 + 121, 1, 301),
]
FINE = [
    ("0-30 s", 1, 30, 1, 0),
    ("31-60 s", 2, 105, 0, 0),
    ("61-120 s", 1, 61, 1, 120),
    ("121-300 s", 1, 121, 0, 0),
    ("301-600 s", 0, 0, 1, 301),
    ("601-1800 s", 0, 0, 0, 0),
    ("> 1800 s", 1, 1900, 0, 0),
]
SMS = [("Outbound (our roamers abroad)", 1, 1), ("Inbound (visitors)", 2, 1)]
COUNTRY = [("DEU", 1, 1, 2_097_152, Decimal("2.000")), ("FRA", 1, 1, 1_048_576, Decimal("1.000"))]
PARTNER = [  # partner, name, country, out sessions, out bytes, out MB, in sessions, bytes, MB
    ("DEUD9", "Brezel Funk", "DEU", 1, 2_097_152, Decimal("2.000"), 0, 0, Decimal("0.000")),
    ("FRAF9", "Fromage Mobile", "FRA", 1, 1_048_576, Decimal("1.000"), 0, 0, Decimal("0.000")),
    ("GBRG9", "", "GBR", 0, 0, Decimal("0.000"), 1, 3_000, Decimal("0.003")),
    ("JPNJ9", "", "JPN", 0, 0, Decimal("0.000"), 1, 1_000, Decimal("0.001")),
]
TOP = [  # rank, IMSI, MSISDN masked, events, voice s, SMS, data bytes, amount
    (1, "***********0002", "*******0002", 4, 61 + 1900, 1, 1_048_576, Decimal("26.995")),
    (2, "***********0001", "*******0001", 5, 45 + 60 + 121, 1, 2_097_152, Decimal("10.500")),
    (3, "***********0003", "*******0003", 1, 30, 0, 0, Decimal("0.000")),
]
ROLES = [  # role / rule, events, voice s, SMS, data bytes, amount
    ("data / apn", 1, 0, 0, 2_097_152, Decimal("0.000")),
    ("local / msisdn", 1, 1920, 0, 0, Decimal("25.990")),
    ("primary / primary", 2, 60, 1, 0, Decimal("11.500")),
    ("virtual / selection_code", 1, 30, 0, 0, Decimal("0.005")),
]
TREND = [  # date, outbound events, inbound events, out SDR, out USD, in SDR
    (D1, 6, 6, Decimal("3.50000"), Decimal("0.00"), Decimal("1.750000")),
    (D2, 4, 2, Decimal("0.12345"), Decimal("1.50"), Decimal("0.000000")),
]


# --- the hand-built lake ----------------------------------------------------------------------


def _event(i: int, imsi: str, kind: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source_format": "tap",
        "event_index": i,
        "event_kind": kind,
        "byte_offset": 100 * i,
        "byte_length": 100,
        "imsi": imsi,
        "msisdn": MSISDN[imsi],
        "status": "accepted",
        "currency": "SDR",
        "charge_scale": 3,
    }
    row.update(kw)
    return row


def _events(root: Path, day: date, partner: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        r.setdefault("sender", partner)
        r.setdefault("file", f"CD{partner}HKGCL00001")
    table = pa.Table.from_pylist(rows, schema=lake.EVENTS_IN.schema)
    lake.write(root, lake.EVENTS_IN, day, table, partner=partner, source=f"CD{partner}HKGCL00001")


def _visitor(rtype: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"record_type": rtype, "imsi": "234150000000001", "origin": "cdr"}
    row.update(kw)
    return row


def _line(imsi: str, role: str, rule: str, service: str, unit: str, units: int, amount: int,
          scale: int = 2) -> dict[str, Any]:  # fmt: skip
    return {
        "imsi": imsi,
        "sub_number": MSISDN[imsi],
        "role": role,
        "attribution_rule": rule,
        "service": service,
        "unit": unit,
        "units": units,
        "amount": amount,
        "currency": "HKD",
        "scale": scale,
    }


def _retail(root: Path, day: date, rows: list[dict[str, Any]]) -> None:
    lake.write(root, lake.RETAIL, day, pa.Table.from_pylist(rows, schema=lake.RETAIL.schema))


def build_lake(workdir: Path) -> Path:
    """The hand-built work folder of the module docstring."""
    workdir.mkdir(parents=True)
    (workdir / "clearing.toml").write_text(TOML, encoding="utf-8")
    root = workdir / "lake"
    moc, mtc = "mobileOriginatedCall", "mobileTerminatedCall"
    _events(root, D1, "FRAF9", [
        _event(0, A, moc, tele_service_code="11", duration=45, charge=1000),
        _event(1, A, moc, tele_service_code="11", duration=60),
        _event(2, B, mtc, tele_service_code="11", duration=61),
        _event(3, A, moc, tele_service_code="22"),
        _event(4, B, mtc, tele_service_code="21"),
        _event(5, B, "gprsCall", data_volume_incoming=1_000_000, data_volume_outgoing=48_576,
               charge=2500),
        _event(6, A, moc, tele_service_code="11", duration=500, status="rejected", charge=9999),
    ])  # fmt: skip
    _events(root, D2, "DEUD9", [
        _event(0, B, moc, tele_service_code="11", duration=1900, charge=12345, charge_scale=5),
        _event(1, A, "gprsCall", data_volume_incoming=2_097_152, data_volume_outgoing=0),
        _event(2, A, "mobileSession", duration=121),
    ])  # fmt: skip
    _events(root, D2, "04172", [
        _event(0, C, moc, source_format="ciber", duration=30, currency="USD", charge=150,
               charge_scale=2),
    ])  # fmt: skip
    for outside in (date(2026, 10, 31), date(2026, 12, 1)):
        _events(root, outside, "FRAF9", [_event(0, A, moc, tele_service_code="11", duration=10)])
        lake.write(root, lake.RATED_VISITORS, outside, pa.Table.from_pylist(
            [_visitor("sms_mo", partner="GBRG9")], schema=lake.RATED_VISITORS.schema
        ), partner="GBRG9")  # fmt: skip
    sdr = {"currency": "SDR", "charge_scale": 6, "partner": "GBRG9"}
    rated = [
        _visitor("moc", duration=120, charge=1_500_000, **sdr),
        _visitor("mtc", duration=0, **sdr),
        _visitor("sms_mo", **sdr),
        _visitor("sms_mo", charge=250_000, **sdr),
        _visitor("sms_mt", **sdr),
        _visitor("gprs", volume_up=1000, volume_down=2000, **sdr),
        _visitor("moc", duration=999, origin="recycled", origin_date=date(2026, 11, 1), **sdr),
    ]
    table = pa.Table.from_pylist(rated, schema=lake.RATED_VISITORS.schema)
    lake.write(root, lake.RATED_VISITORS, D1, table, partner="GBRG9")
    unrated = [
        _visitor("moc", duration=301, partner="GBRG9", status="unrated"),
        _visitor("gprs", volume_up=500, volume_down=500, partner="JPNJ9", status="held"),
    ]
    table = pa.Table.from_pylist(unrated, schema=lake.UNRATED_VISITORS.schema)
    lake.write(root, lake.UNRATED_VISITORS, D2, table)
    _retail(root, D1, [
        _line(A, "primary", "primary", "voice_mo", "second", 60, 1050),
        _line(B, "local", "msisdn", "voice_mt", "second", 1920, 2599),
        _line(B, "primary", "primary", "sms_mt", "message", 1, 100),
    ])  # fmt: skip
    _retail(root, D2, [
        _line(A, "data", "apn", "data", "byte", 2_097_152, 0),
        _line(B, "virtual", "selection_code", "voice_mo", "second", 30, 5, scale=3),
    ])  # fmt: skip
    return workdir


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lake(tmp_path_factory.mktemp("stats") / "w")


@pytest.fixture(scope="module")
def hand_book(hand: Path) -> Path:
    r = run_cli("stats", "-w", str(hand), "--period", PERIOD)
    assert r.returncode == 0, r.stderr
    path = hand / "out" / "stats" / "stats_HKGCL_2026-11.xlsx"
    assert f"`{path}`" in r.stdout
    return path


def _table(path: Path, sheet: str, ncols: int) -> list[tuple[Any, ...]]:
    """The data rows of a sheet (from row 5 to the row before ``Total``), cached values."""
    ws = load_workbook(path, data_only=True)[sheet]
    out = []
    for row in ws.iter_rows(min_row=5, max_col=ncols, values_only=True):
        if row[0] in ("Total", None):
            break
        out.append(tuple(row))
    return out


def _total_row(path: Path, sheet: str, ncols: int) -> tuple[Any, ...]:
    ws = load_workbook(path, data_only=True)[sheet]
    for row in ws.iter_rows(min_row=5, max_col=ncols, values_only=True):
        if row[0] == "Total":
            return tuple(row)
    raise AssertionError(sheet)


def _dec(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Cells as read back: floats (what Excel stores) to exact Decimals by their text, an
    empty text cell (None) as ``""``."""
    return [
        tuple(Decimal(repr(v)) if isinstance(v, float) else "" if v is None else v for v in row)
        for row in rows
    ]


def test_the_workbook_holds_the_hand_worked_figures(hand_book: Path) -> None:
    assert _table(hand_book, "Call duration", 5) == COARSE
    assert _total_row(hand_book, "Call duration", 5) == ("Total", 6, 135 + 61 + 2021, 3, 421)
    assert _table(hand_book, "Duration detail", 5) == FINE
    assert _table(hand_book, "SMS", 3) == SMS
    assert _dec(_table(hand_book, "Data by country", 5)) == COUNTRY
    assert _dec(_table(hand_book, "Data by partner", 9)) == PARTNER
    assert _dec(_table(hand_book, "Top roamers", 8)) == TOP
    assert _dec(_table(hand_book, "Sub-number usage", 6)) == ROLES
    trend = _dec(_table(hand_book, "Daily trend", 6))
    assert [(r[0].date(), *r[1:]) for r in trend] == TREND
    ws = load_workbook(hand_book)["Daily trend"]
    assert [ws.cell(4, c).value for c in range(4, 7)] == [
        "Outbound charge SDR",
        "Outbound charge USD",
        "Inbound charge SDR",
    ]
    assert load_workbook(hand_book)["Top roamers"]["H4"].value == "Retail amount HKD"


def test_money_cells_are_exact_and_never_rounded(hand_book: Path) -> None:
    ws = load_workbook(hand_book)["Top roamers"]
    assert ws["H5"].number_format.startswith("#,##0.000")  # 26.995 shown to the last digit
    ws = load_workbook(hand_book)["Daily trend"]
    assert ws["D6"].number_format.startswith("#,##0.00000")


def test_every_sheet_has_a_chart_beside_its_table_over_its_own_cells(hand_book: Path) -> None:
    wb = load_workbook(hand_book)
    expected = {  # sheet: (table columns, the series' columns, rows)
        "Call duration": (5, ["B", "D"], 3),
        "Duration detail": (5, ["B", "D"], 7),
        "SMS": (3, ["B", "C"], 2),
        "Data by country": (5, ["E"], 2),
        "Data by partner": (9, ["F", "I"], 4),
        "Top roamers": (8, ["H"], 3),
        "Sub-number usage": (7, ["B"], 4),
        "Daily trend": (6, ["B", "C"], 2),
    }
    assert wb.sheetnames == ["Overview", *expected]
    for sheet, (ncols, series, rows) in expected.items():
        ws = wb[sheet]
        assert len(ws._charts) == 1, sheet
        chart = ws._charts[0]
        last = 4 + rows
        quoted = f"'{sheet}'"
        refs = [s.val.numRef.f for s in chart.series]
        assert refs == [f"{quoted}!${c}$5:${c}${last}" for c in series], sheet
        for s in chart.series:
            assert s.cat.strRef.f == f"{quoted}!$A$5:$A${last}", sheet
        anchor = chart.anchor._from
        assert anchor.col == ncols + 1, sheet  # one narrow column right of the table
        assert anchor.row == 3, sheet  # level with the header row
        # A4 landscape, 85 % or more
        assert int(ws.page_setup.paperSize) == 9
        assert ws.page_setup.orientation == "landscape"
        assert 85 <= int(ws.page_setup.scale) <= 100


def test_json_gives_the_same_figures(hand: Path, tmp_path: Path) -> None:
    r = run_cli("stats", "-w", str(hand), "--period", PERIOD, "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["workbook"] == str(tmp_path / "stats_HKGCL_2026-11.xlsx")
    assert (tmp_path / "stats_HKGCL_2026-11.xlsx").exists()
    assert doc["dates"] == ["2026-11-03", "2026-11-04"]  # October and December left out
    t = doc["tables"]
    keys = ("bucket", "out_calls", "out_seconds", "in_calls", "in_seconds")
    assert [tuple(r[k] for k in keys) for r in t["Call duration"]] == COARSE
    assert [tuple(r[k] for k in keys) for r in t["Duration detail"]] == FINE
    assert [(r["direction"], r["sent"], r["received"]) for r in t["SMS"]] == SMS
    assert [
        (r["country"], r["partners"], r["sessions"], r["bytes"], Decimal(r["mb"]))
        for r in t["Data by country"]
    ] == COUNTRY
    assert [r["mb"] for r in t["Data by country"]] == ["2.000", "1.000"]
    top = [
        (r["rank"], r["imsi"], r["msisdn"], r["events"], r["voice_seconds"], r["sms"],
         r["data_bytes"], Decimal(r["amount"]))
        for r in t["Top roamers"]
    ]  # fmt: skip
    assert top == TOP
    assert [r["amount"] for r in t["Top roamers"]] == ["26.995", "10.50", "0"]
    roles = [
        (r["label"], r["events"], r["voice_seconds"], r["sms"], r["data_bytes"],
         Decimal(r["amount"]))
        for r in t["Sub-number usage"]
    ]  # fmt: skip
    assert roles == ROLES
    assert [(r["role"], r["rule"]) for r in t["Sub-number usage"]][-1] == (
        "virtual",
        "selection_code",
    )
    trend = [
        (date.fromisoformat(r["date"]), r["out_events"], r["in_events"], Decimal(r["out_SDR"]),
         Decimal(r["out_USD"]), Decimal(r["in_SDR"]))
        for r in t["Daily trend"]
    ]  # fmt: skip
    assert trend == TREND
    assert t["Daily trend"][1]["out_SDR"] == "0.12345"  # a decimal string, exact
    # nothing unmasked anywhere
    for number in (A, B, C, *MSISDN.values()):
        assert number not in r.stdout


def test_a_month_without_data_says_so_and_exits_0(hand: Path, tmp_path: Path) -> None:
    r = run_cli("stats", "-w", str(hand), "--period", "2026-09", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("no data for 2026-09")
    wb = load_workbook(tmp_path / "stats_HKGCL_2026-09.xlsx", data_only=True)
    notes = [c.value for row in wb["Overview"].iter_rows() for c in row if c.value]
    assert "No data: no processing date of 2026-09 is in the lake." in notes
    assert _table(tmp_path / "stats_HKGCL_2026-09.xlsx", "Call duration", 5) == [
        (label, 0, 0, 0, 0) for label, *_ in COARSE
    ]
    assert wb["Top roamers"]["A5"].value == "Total"  # no rows


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--period", "2026-13"], "--period `2026-13` must be a month YYYY-MM"),
        (["--period", "november"], "--period `november` must be a month YYYY-MM"),
    ],
)
def test_a_bad_period_is_exit_2(hand: Path, args: list[str], says: str) -> None:
    r = run_cli("stats", "-w", str(hand), *args)
    assert r.returncode == 2
    assert says in r.stderr


def test_no_work_folder_is_exit_2(tmp_path: Path) -> None:
    r = run_cli("stats", "-w", str(tmp_path / "nowhere"), "--period", PERIOD)
    assert r.returncode == 2
    assert "no clearing.toml" in r.stderr


# --- a generated world ------------------------------------------------------------------------

DAY = "2026-11-22"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("stats-world") / "w"
    r = run_cli("samples", "generate", "--out", str(w), "--events", "2000", "--date", DAY)
    assert r.returncode == 0, r.stderr
    r = run_cli("nightly", "-w", str(w), "--date", DAY)
    assert r.returncode in (0, 1), r.stderr  # 1: the world's planted data problems
    return w


def _find(value: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in a decoded structure."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list | tuple):
        for v in value:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _tap_voice(w: Path) -> tuple[dict[str, int], int]:
    """Voice calls per coarse bucket, decoded from the day's TAP files with asn1tools."""
    buckets = {"0-60 s": 0, "61-120 s": 0, "> 120 s": 0}
    files = sorted((w / "work" / DAY / "in").glob("CD*"))
    assert len(files) >= 5
    calls = 0
    for f in files:
        decoded = asn1.decode(f.read_bytes()).value
        if decoded[0] != "transferBatch":  # a notification: no events
            continue
        for kind, body in decoded[1]["callEventDetails"]:
            if kind == "mobileSession":
                voice = True
            elif kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
                code = _find(body, "serviceCode")
                voice = not (code and code[0] == "teleServiceCode" and code[1] in (b"21", b"22"))
            else:
                voice = False
            if not voice:
                continue
            seconds = int(_find(body, "totalCallEventDuration") or 0)
            calls += 1
            label = "0-60 s" if seconds <= 60 else "61-120 s" if seconds <= 120 else "> 120 s"
            buckets[label] += 1
    return buckets, calls


def test_on_a_generated_world_the_distribution_counts_every_accepted_call(
    world: Path, tmp_path: Path
) -> None:
    r = run_cli("stats", "-w", str(world), "--period", PERIOD, "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["tables"]
    events = lake.read(world / "lake", lake.EVENTS_IN, [date.fromisoformat(DAY)])
    tap = events.filter(pc.equal(events["source_format"], "tap"))
    # every TAP event of the day was accepted: the TAP files' calls are the accepted ones
    assert set(tap["status"].to_pylist()) == {"accepted"}
    decoded, calls = _tap_voice(world)
    assert calls > 300
    # the CIBER calls accepted (pyarrow over the lake: record type 22, not teleservice 21/22)
    ciber = events.filter(
        pc.and_(pc.equal(events["source_format"], "ciber"), pc.equal(events["status"], "accepted"))
    ).to_pylist()
    for e in ciber:
        if e["event_kind"] in ("mobileOriginatedCall", "mobileTerminatedCall") and e[
            "tele_service_code"
        ] not in ("21", "22"):
            s = e["duration"] or 0
            decoded["0-60 s" if s <= 60 else "61-120 s" if s <= 120 else "> 120 s"] += 1
    got = {r["bucket"]: r["out_calls"] for r in t["Call duration"]}
    assert got == decoded
    assert sum(r["out_calls"] for r in t["Duration detail"]) == sum(decoded.values())
    # inbound: the visitors' moc / mtc CDRs of the day (first rated here), pyarrow over the lake
    day = [date.fromisoformat(DAY)]
    rows = [
        *lake.read(world / "lake", lake.RATED_VISITORS, day).to_pylist(),
        *lake.read(world / "lake", lake.UNRATED_VISITORS, day).to_pylist(),
    ]
    visitors = [
        x for x in rows if x["record_type"] in ("moc", "mtc") and (x["origin"] or "cdr") == "cdr"
    ]
    assert sum(r["in_calls"] for r in t["Call duration"]) == len(visitors) > 100
    assert sum(r["in_seconds"] for r in t["Call duration"]) == sum(
        x["duration"] or 0 for x in visitors
    )
    # the top list: 20 roamers, masked, largest amount first
    top = t["Top roamers"]
    assert len(top) == 20
    assert all(r["imsi"].startswith("*" * 11) and len(r["imsi"]) == 15 for r in top)
    amounts = [Decimal(r["amount"]) for r in top]
    assert amounts == sorted(amounts, reverse=True)


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(_soffice() is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_prints_the_workbook(world: Path, tmp_path: Path) -> None:
    soffice = _soffice()
    assert soffice is not None
    r = run_cli("stats", "-w", str(world), "--period", PERIOD, "--out", str(tmp_path / "x"))
    assert r.returncode == 0, r.stderr
    book = tmp_path / "x" / "stats_HKGCL_2026-11.xlsx"
    profile = tmp_path / "profile"
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"), str(book)],
        check=True, capture_output=True, timeout=240, env={**os.environ, "HOME": str(profile)},
    )  # fmt: skip
    data = (tmp_path / "pdf" / "stats_HKGCL_2026-11.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    pages = read_pdf(data)
    sheets = load_workbook(book).sheetnames
    assert len(pages) >= len(sheets)
    for page in pages:
        assert round(page.width) == 842  # A4 landscape
        assert round(page.height) == 595
        sizes = [run.size for run in page.runs if run.text.strip()]
        assert min(sizes) >= 8, sizes  # nothing printed under 8 pt
    shown = " ".join(run.text for page in pages for run in page.runs)
    for sheet in sheets:
        assert sheet in shown  # every sheet printed (its name in the page header)


def test_the_workbook_is_the_same_bytes_on_a_second_run(hand: Path, tmp_path: Path) -> None:
    first = run_cli("stats", "-w", str(hand), "--period", PERIOD, "--out", str(tmp_path / "a"))
    second = run_cli("stats", "-w", str(hand), "--period", PERIOD, "--out", str(tmp_path / "b"))
    assert first.returncode == second.returncode == 0
    name = "stats_HKGCL_2026-11.xlsx"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert datetime(2026, 11, 30) == load_workbook(tmp_path / "a" / name).properties.created
