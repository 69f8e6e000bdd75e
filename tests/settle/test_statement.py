"""``clearing retail statement``: a hand-built card rated by the retail stage, worked by hand.

The card of :mod:`tests.rating.test_retail` (IMSI ...001, bill cycle day 1, billing clock UTC)
with its four numbers: PRIMARY on plan ``P`` (10 free minutes of outgoing voice a cycle, then
HK$1.00 a minute in 60 s increments), LOCAL and VIRTUAL (selection code ``+86``) on plan
``LOCAL``, DATA (APN ``corp.vpn``) on plan ``DATA``; LOCAL and DATA charge HK$1.00 a minute, a
message, a MB from the first unit. Money in cents.

Processing date 2026-11-21, file ``CDFRAF9HKGCL00001`` from FRAF9 (France):

==  =====================  ======================  ==========================================
#   event (UTC)            number                  amount
==  =====================  ======================  ==========================================
0   moc 11-20 10:00 720 s  PRIMARY (fallback)      600 s in the allowance, 120 s beyond:
                                                   2 × 100 = 200
1   mtc 11-20 11:00 90 s   LOCAL (its MSISDN)      120 s (60 s increments): 2 × 100 = 200
2   sms_mo 11-20 12:00     VIRTUAL (dialled +86)   1 × 100 = 100
3   moc 10-31 23:00 60 s   PRIMARY                 October's cycle: not on November's
==  =====================  ======================  ==========================================

Processing date 2026-12-02 (after the cycle ended), file ``CDDEUD9HKGCL00002`` from DEUD9
(Germany): a data session of 11-29 20:00, 1.5 MB on ``corp.vpn`` (DATA: 1.5 × 100 = 150) —
a late event, on November's statement — and a call of 12-01 10:00 (December's cycle).

November's usage: PRIMARY 200, LOCAL 200, VIRTUAL 100, DATA 150.

Fees and tax (``plans.fee`` per sub-number and cycle, ``plans.tax_bp``): ``P`` HK$10.00 and
7.5 %, ``LOCAL`` HK$3.33 and 10 %, ``DATA`` no fee and 5 %. Per sub-number, tax rounded half
up on (fee + usage):

========  =====  =====  ========  ===========================  =====
number    fee    usage  subtotal  tax                          total
========  =====  =====  ========  ===========================  =====
PRIMARY   1000   200    1200      1200 × 7.5 % = 90            1290
LOCAL     333    200    533       53.3 → 53                    586
VIRTUAL   333    100    433       43.3 → 43                    476
DATA      0      150    150       7.5 → 8 (half up)            158
========  =====  =====  ========  ===========================  =====

The card: 2510 cents = HK$25.10.

A second card (IMSI ...002, primary 85251110002 on ``P``) makes one 60 s call on 11-20 (in
its allowance: 0): one line, 1000 + 0, tax 75, total HK$10.75.

A third card (IMSI ...003, bill cycle day 5: the cycle 2026-11-05 to 12-04, 30 days) has no
usage: its primary 85251110003 on ``LOCAL`` (fee 333, tax 33.3 → 33: 366) and a local number
33698765432 from 11-20 (15 of the 30 days: fee 333 × 15 / 30 = 166.5 → 167, tax 16.7 → 17:
184): a fee-only statement of HK$5.50.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pytest
from openpyxl import load_workbook

from clearing import lake
from clearing.codecs.events import EVENT_SCHEMA
from clearing.rating.retail import write_retail
from tests.cli_run import run_cli
from tests.rating.test_retail import (
    DATA,
    IMSI,
    LOCAL,
    PRIMARY,
    VIRTUAL,
    event,
    flat_tiers,
    plan,
    world,
)

from .pdf_fonts import read_pdf

if TYPE_CHECKING:
    from pathlib import Path

CYCLE = "2026-11"
D1, D2 = date(2026, 11, 21), date(2026, 12, 2)
IMSI2, PRIMARY2 = "454990000000002", "85251110002"
IMSI3, PRIMARY3, LOCAL3 = "454990000000003", "85251110003", "33698765432"
CALLED, CALLING, SMS_TO = "33145678901", "4915112345678", "+8613800001111"


def _at(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _ev(kind: str, at: datetime, sender: str, **kw: Any) -> dict[str, Any]:
    extra = {k: kw.pop(k) for k in ("called_number", "calling_number", "utc_offset") if k in kw}
    row = event(kind, at, **kw) | {"sender": sender} | extra
    row.setdefault("utc_offset", "+0100")
    return row


def _deliver(root: Path, day: date, partner: str, fsn: str, rows: list[dict[str, Any]]) -> None:
    name = f"CD{partner}HKGCL{fsn}"
    table = pa.Table.from_pylist(
        [{**r, "file_sequence_number": fsn} for r in rows], schema=EVENT_SCHEMA
    )
    table = table.append_column("file", pa.array([name] * table.num_rows))
    table = table.append_column("status", pa.array(["accepted"] * table.num_rows))
    table = table.cast(lake.EVENTS_IN.schema)
    lake.write(root, lake.EVENTS_IN, day, table, partner=partner, source=name)


def build(workdir: Path) -> Path:
    """The work folder of the module docstring, billed by the retail stage."""
    workdir.mkdir(parents=True)
    (workdir / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0000"\n')
    tables = world(plan("P", allowance_voice_mo_min=10), tiers=flat_tiers("P", price=100))
    tables["plans"] = pa.Table.from_pylist([
        plan("P", allowance_voice_mo_min=10, fee=1000, tax_bp=750),
        plan("LOCAL", fee=333, tax_bp=1000),
        plan("DATA", fee=0, tax_bp=500),
    ])  # fmt: skip
    subs = tables["subscribers"].to_pylist()
    subs.append({**subs[0], "imsi": IMSI2, "msisdn": PRIMARY2})
    subs.append({**subs[0], "imsi": IMSI3, "msisdn": PRIMARY3, "bill_cycle_day": 5})
    tables["subscribers"] = pa.Table.from_pylist(subs)
    nums = tables["sub_numbers"].to_pylist()
    nums.append({**nums[0], "imsi": IMSI2, "msisdn": PRIMARY2})
    nums.append({**nums[0], "imsi": IMSI3, "msisdn": PRIMARY3, "plan_id": "LOCAL"})
    nums.append({**nums[0], "imsi": IMSI3, "msisdn": LOCAL3, "role": "local", "plan_id": "LOCAL",
                 "label": "France local", "valid_from": date(2026, 11, 20)})  # fmt: skip
    tables["sub_numbers"] = pa.Table.from_pylist(nums)
    sources = workdir / "rates" / "sources"
    sources.mkdir(parents=True)
    for name, table in tables.items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")
    root = workdir / "lake"
    _deliver(root, D1, "FRAF9", "00001", [
        _ev("moc", _at(11, 20, 10), "FRAF9", duration=720, called_number=CALLED),
        _ev("mtc", _at(11, 20, 11), "FRAF9", duration=90, msisdn=LOCAL, calling_number=CALLING),
        _ev("sms_mo", _at(11, 20, 12), "FRAF9", dialled=SMS_TO),
        _ev("moc", _at(10, 31, 23), "FRAF9", duration=60, called_number=CALLED),
        _ev("moc", _at(11, 20, 13), "FRAF9", duration=60, imsi=IMSI2, msisdn=PRIMARY2,
            called_number=CALLED),
    ])  # fmt: skip
    write_retail(workdir, D1)
    _deliver(root, D2, "DEUD9", "00002", [
        _ev("gprs", _at(11, 29, 20), "DEUD9", mb=1.5, apn="corp.vpn", utc_offset="-0130"),
        _ev("moc", _at(12, 1, 10), "DEUD9", duration=60, called_number=CALLED),
    ])  # fmt: skip
    write_retail(workdir, D2)
    return workdir


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("statement") / "w")


@pytest.fixture(scope="module")
def written(hand: Path) -> list[dict[str, Any]]:
    r = run_cli("retail", "statement", "-w", str(hand), "--cycle", CYCLE, "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def _card(written: list[dict[str, Any]], imsi: str = IMSI) -> dict[str, Any]:
    (card,) = [c for c in written if c["imsi"] == imsi]
    return card


def _numbers(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["msisdn"]: s for s in card["sub_numbers"]}


def test_one_statement_per_card_in_files_and_on_stdout(hand: Path, written: list[Any]) -> None:
    assert [c["imsi"] for c in written] == [IMSI, IMSI2, IMSI3]
    folder = hand / "out" / "statements" / CYCLE
    for card in written:
        stem = f"statement_{card['imsi']}_{CYCLE}"
        assert card["xlsx"] == str(folder / f"{stem}.xlsx")
        assert card["json"] == str(folder / f"{stem}.json")
        on_disk = json.loads((folder / f"{stem}.json").read_text())
        assert on_disk == {k: v for k, v in card.items() if k not in ("xlsx", "json")}


def test_the_json_shape(written: list[Any]) -> None:
    card = _card(written)
    assert {"imsi", "cycle", "currency", "total", "sub_numbers"} <= set(card)
    assert (card["imsi"], card["cycle"], card["currency"]) == (IMSI, CYCLE, "HKD")
    assert (card["cycle_start"], card["cycle_last_day"]) == ("2026-11-01", "2026-11-30")
    for s in card["sub_numbers"]:
        assert {"msisdn", "plan", "plan_version", "fee", "lines", "total", "tax", "subtotal"} <= (
            set(s)
        )
        for line in s["lines"]:
            assert {"id", "start", "service", "units", "amount", "attribution_rule"} <= set(line)
            assert isinstance(line["amount"], str)
            datetime.fromisoformat(line["start"])  # ISO 8601
            assert line["start"][-6] in "+-"  # with its offset


def test_the_lines_worked_by_hand(written: list[Any]) -> None:
    n = _numbers(_card(written))
    assert set(n) == {PRIMARY, LOCAL, VIRTUAL, DATA}
    (call,) = n[PRIMARY]["lines"]  # October's call and December's are not on it
    assert call["id"] == "2026-11-21/CDFRAF9HKGCL00001/" + call["id"].rsplit("/", 1)[1]
    assert call["start"] == "2026-11-20T11:00:00+01:00"  # local time at its offset
    assert (call["network"], call["country"], call["service"]) == ("FRAF9", "FRA", "voice_mo")
    assert call["other_party"] == "*******8901"  # 33145678901, last 4 digits
    assert (call["units"], call["unit"], call["allowance_units"]) == (720, "second", 600)
    assert call["tier_units"] == [120]
    assert (call["amount"], call["attribution_rule"]) == ("2.00", "primary")
    (mt,) = n[LOCAL]["lines"]
    assert (mt["units"], mt["amount"], mt["attribution_rule"]) == (120, "2.00", "msisdn")
    assert mt["other_party"] == "*********5678"  # the caller 4915112345678
    (sms,) = n[VIRTUAL]["lines"]
    assert (sms["service"], sms["amount"], sms["attribution_rule"]) == (
        "sms_mo",
        "1.00",
        "selection_code",
    )
    assert sms["other_party"] == "**********1111"  # the dialled +8613800001111
    (data,) = n[DATA]["lines"]  # billed on 12-02, after the cycle ended
    assert data["id"].startswith("2026-12-02/CDDEUD9HKGCL00002/")
    assert data["start"] == "2026-11-29T18:30:00-01:30"
    assert (data["country"], data["other_party"], data["amount"]) == ("DEU", None, "1.50")
    assert data["units"] == 1_572_864  # 1.5 MB in bytes


def test_fees_tax_and_totals_worked_by_hand(written: list[Any]) -> None:
    card = _card(written)
    n = _numbers(card)
    by_hand = {  # fee, usage, subtotal, tax, total (the module docstring's table)
        PRIMARY: ("10.00", "2.00", "12.00", "0.90", "12.90"),
        LOCAL: ("3.33", "2.00", "5.33", "0.53", "5.86"),
        VIRTUAL: ("3.33", "1.00", "4.33", "0.43", "4.76"),
        DATA: ("0.00", "1.50", "1.50", "0.08", "1.58"),
    }
    for msisdn, want in by_hand.items():
        s = n[msisdn]
        assert (s["fee"], s["usage"], s["subtotal"], s["tax"], s["total"]) == want, msisdn
    assert (n[PRIMARY]["plan"], n[PRIMARY]["plan_version"]) == ("P", "2024-01-01")
    assert n[PRIMARY]["plan_level"] == "user"
    assert (n[DATA]["tax_bp"], n[VIRTUAL]["role"]) == (500, "virtual")
    assert (card["fees"], card["usage"], card["tax"], card["total"]) == (
        "16.66",
        "6.50",
        "1.94",
        "25.10",
    )
    assert _card(written, IMSI2)["total"] == "10.75"


def test_totals_are_exact_sums_of_the_lines(written: list[Any]) -> None:
    for card in written:
        total = Decimal(0)
        for s in card["sub_numbers"]:
            lines = sum((Decimal(x["amount"]) for x in s["lines"]), Decimal(0))
            assert Decimal(s["usage"]) == lines
            assert Decimal(s["subtotal"]) == Decimal(s["fee"]) + lines
            assert Decimal(s["total"]) == Decimal(s["subtotal"]) + Decimal(s["tax"])
            total += Decimal(s["total"])
        assert Decimal(card["total"]) == total


def test_a_card_without_usage_gets_a_fee_only_statement(written: list[Any]) -> None:
    card = _card(written, IMSI3)
    assert (card["cycle_start"], card["cycle_last_day"]) == ("2026-11-05", "2026-12-04")
    n = _numbers(card)
    assert list(n) == [PRIMARY3, LOCAL3]
    assert all(s["lines"] == [] for s in n.values())
    primary, local = n[PRIMARY3], n[LOCAL3]
    assert (primary["active_days"], primary["cycle_days"]) == (30, 30)
    assert (primary["fee"], primary["tax"], primary["total"]) == ("3.33", "0.33", "3.66")
    assert (local["active_days"], local["cycle_days"], local["label"]) == (15, 30, "France local")
    assert (local["fee"], local["tax"], local["total"]) == ("1.67", "0.17", "1.84")
    assert card["total"] == "5.50"


def test_the_imsi_filter_and_nothing_found(hand: Path, tmp_path: Path) -> None:
    out = tmp_path / "only"
    r = run_cli("retail", "statement", "-w", str(hand), "--cycle", CYCLE, "--imsi", IMSI2,
                "--out", str(out), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (card,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert card["imsi"] == IMSI2
    (s,) = card["sub_numbers"]
    assert s["msisdn"] == PRIMARY2
    assert [x["amount"] for x in s["lines"]] == ["0.00"]  # in the allowance
    assert sorted(p.name for p in out.iterdir()) == [
        f"statement_{IMSI2}_{CYCLE}.json",
        f"statement_{IMSI2}_{CYCLE}.xlsx",
    ]
    r = run_cli("retail", "statement", "-w", str(hand), "--cycle", CYCLE, "--imsi",
                "454990000000099", "--out", str(tmp_path / "none"))  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "no statement for card 454990000000099 in cycle 2026-11" in r.stdout
    r = run_cli("retail", "statement", "-w", str(hand), "--cycle", "2023-06",
                "--out", str(tmp_path / "none"))  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "no statement for any card in cycle 2023-06" in r.stdout
    assert not (tmp_path / "none").exists()
    r = run_cli("retail", "statement", "-w", str(hand), "--cycle", "2026-13")
    assert r.returncode == 2
    assert "--cycle `2026-13` must be a month YYYY-MM" in r.stderr


def test_a_card_in_two_currencies_is_refused(hand: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(hand, work)
    shutil.rmtree(work / "out", ignore_errors=True)  # what the other tests wrote
    plans = work / "rates" / "sources" / "plans.csv"
    header, *rows = plans.read_text().splitlines()
    cells = header.split(",")
    fixed = []
    for row in rows:
        values = row.split(",")
        if values[cells.index("plan_id")] == "DATA":
            values[cells.index("currency")] = "EUR"
        fixed.append(",".join(values))
    plans.write_text("\n".join([header, *fixed]) + "\n")
    r = run_cli("retail", "statement", "-w", str(work), "--cycle", CYCLE, "--imsi", IMSI)
    assert r.returncode == 2
    assert f"card {IMSI}: its sub-numbers bill in more than one currency" in r.stderr
    assert "DATA (EUR)" in r.stderr
    assert "P (HKD)" in r.stderr
    assert not (work / "out" / "statements").exists()


def test_the_text_output(hand: Path, tmp_path: Path) -> None:
    r = run_cli("retail", "statement", "-w", str(hand), "--cycle", CYCLE, "--out",
                str(tmp_path / "t"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    first, second, third, last = r.stdout.splitlines()
    assert first.startswith(
        f"card {IMSI} cycle 2026-11-01 to 2026-11-30: 4 number(s), 4 line(s), total 25.10 HKD; `"
    )
    assert second.startswith(f"card {IMSI2} cycle 2026-11-01 to 2026-11-30: 1 number(s), 1 line(s)")
    assert third.startswith(f"card {IMSI3} cycle 2026-11-05 to 2026-12-04: 2 number(s), 0 line(s)")
    assert last == f"3 statements in `{tmp_path / 't'}`"


def test_the_workbook_shows_the_same(written: list[Any]) -> None:
    card = _card(written)
    wb = load_workbook(card["xlsx"], data_only=True)
    assert wb.sheetnames == ["Statement", "Summary", PRIMARY, LOCAL, VIRTUAL, DATA]
    ws = wb[PRIMARY]
    rows = list(ws.iter_rows(min_row=5, max_col=10, values_only=True))
    assert (rows[0][0], rows[0][9]) == ("Recurring fee", Decimal("10.00"))
    assert rows[1][:5] == ("2026-11-20 11:00 +0100", "FRAF9", "FRA", "voice_mo", "*******8901")
    assert rows[1][5:] == (720, "second", 600, "1: 120", Decimal("2.00"))
    assert rows[2][0] == "Subtotal"
    assert Decimal(str(rows[2][9])) == Decimal(_numbers(card)[PRIMARY]["subtotal"])
    summary = wb["Summary"]
    total = [r for r in summary.iter_rows(min_row=5, values_only=True) if r[0] == "Total"]
    assert Decimal(str(total[0][11])) == Decimal(card["total"])
    for ws in wb.worksheets:
        assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4
        assert ws.page_setup.orientation == "landscape"


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(_soffice() is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_prints_a_statement(written: list[Any], tmp_path: Path) -> None:
    soffice = _soffice()
    assert soffice is not None
    book = _card(written)["xlsx"]
    profile = tmp_path / "profile"
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"), book],
        check=True, capture_output=True, timeout=240, env={**os.environ, "HOME": str(profile)},
    )  # fmt: skip
    data = (tmp_path / "pdf" / f"statement_{IMSI}_{CYCLE}.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    pages = read_pdf(data)
    assert len(pages) == 6  # the overview, the summary, a sheet per number: each one page
    for page in pages:
        assert round(page.width) == 842  # A4 landscape
        assert round(page.height) == 595
        sizes = [run.size for run in page.runs if run.text.strip()]
        assert min(sizes) >= 8, sizes
    shown = " ".join(run.text for page in pages for run in page.runs)
    assert "*******8901" in shown
    assert CALLED not in shown  # never the whole number


def test_a_second_run_writes_the_same_bytes(hand: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        r = run_cli("retail", "statement", "-w", str(hand), "--cycle", CYCLE, "--out",
                    str(tmp_path / name))  # fmt: skip
        assert r.returncode == 0, r.stderr
    for suffix in ("xlsx", "json"):
        stem = f"statement_{IMSI}_{CYCLE}.{suffix}"
        assert (tmp_path / "a" / stem).read_bytes() == (tmp_path / "b" / stem).read_bytes()


# --- the generated world: the cycle's statements add up to the monthly workbook ---------------


def _retail_bills_total(path: Path) -> Decimal:
    """The ``Total`` of the ``Total`` column of the monthly workbook's ``Retail bills`` sheet."""
    ws = load_workbook(path, data_only=True)["Retail bills"]
    header = [c.value for c in ws[4]]
    column = header.index("Total")
    for row in ws.iter_rows(min_row=5, values_only=True):
        if row[0] == "Total":
            return Decimal(str(row[column]))
    msg = "no Total row on Retail bills"
    raise AssertionError(msg)


def test_the_cycle_statements_add_up_to_the_monthly_workbook(
    world: Path, monthly_path: Path, tmp_path: Path
) -> None:
    r = run_cli("retail", "statement", "-w", str(world), "--cycle", CYCLE, "--out",
                str(tmp_path), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    cards = [json.loads(x) for x in r.stdout.splitlines()]
    lines = 0
    for card in cards:
        for s in card["sub_numbers"]:
            amounts = sum((Decimal(x["amount"]) for x in s["lines"]), Decimal(0))
            assert Decimal(s["subtotal"]) == Decimal(s["fee"]) + amounts
            assert Decimal(s["total"]) == Decimal(s["subtotal"]) + Decimal(s["tax"])
            lines += len(s["lines"])
        assert Decimal(card["total"]) == sum(Decimal(s["total"]) for s in card["sub_numbers"])
    assert lines > 100  # the world's November cycles do have usage
    assert sum(Decimal(c["fees"]) for c in cards) > 0  # and fees
    total = sum((Decimal(c["total"]) for c in cards), Decimal(0))
    assert total == _retail_bills_total(monthly_path)
