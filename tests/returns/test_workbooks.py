"""The workbooks show the returns: the daily by status and age, the monthly the write-offs.

Two partners return events of our first TAP-out (RAPs built as a partner would); one event is
resubmitted, one left to correct, one written off. The sheets are read back with openpyxl and
compared with the money of the returned events as decoded from our TAP-out by an asn1tools
module compiled from ``specs/`` (charge + tax at the file's tapDecimalPlaces).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from openpyxl import load_workbook

from .test_worked import D2, D3, cli, deliver_rap, money, nightly, our_tap, severe, tap_spec, world

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["tap_spec", "world"]

LATER = date(2027, 1, 2)  # 40 days after the RAPs were received (D2)


def _sheet(path: Path, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows and the totals row of a table sheet (header on row 4)."""
    ws = load_workbook(path, data_only=True)[name]
    headers: list[Any] = []
    while ws.cell(4, len(headers) + 1).value is not None:
        headers.append(ws.cell(4, len(headers) + 1).value)
    rows: list[dict[str, Any]] = []
    total: dict[str, Any] = {}
    r = 5
    while any(ws.cell(r, c + 1).value is not None for c in range(len(headers))):
        row = {h: ws.cell(r, c + 1).value for c, h in enumerate(headers)}
        if row[headers[0]] == "Total":
            total = row
            break
        rows.append(row)
        r += 1
    return rows, total


def _daily(world: Path, day: date) -> Path:
    return world / "out" / "settlement" / "daily" / f"settlement_daily_HKGCL_{day}.xlsx"


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def test_returns_by_status_and_age_and_the_write_offs(world: Path, tap_spec: Any) -> None:
    fr = our_tap(world, "FRAF9", 1).read_bytes()
    gb = our_tap(world, "GBRG9", 1).read_bytes()
    amounts: dict[tuple[str, int], Decimal] = {}
    scales: dict[str, int] = {}
    for partner, data in (("FRAF9", fr), ("GBRG9", gb)):
        _kind, batch = tap_spec.decode("DataInterChange", data)
        assert batch["accountingInfo"].get("tapCurrency", b"SDR") == b"SDR"  # absent: SDR
        scale = batch["accountingInfo"]["tapDecimalPlaces"]
        scales[partner] = scale
        for i in (0, 1, 3):
            charge, tax = money(batch["callEventDetails"][i])
            amounts[(partner, i)] = Decimal(charge + tax).scaleb(-scale)
    fr_items = [severe(tap_spec, fr, 0), severe(tap_spec, fr, 3)]
    fr_rap = deliver_rap(world, "FRAF9", 7, fr_items, scale=scales["FRAF9"])
    gb_rap = deliver_rap(world, "GBRG9", 2, [severe(tap_spec, gb, 1)], scale=scales["GBRG9"])
    assert nightly(world, D2).returncode == 0
    r = cli("returns", "resubmit", "--workdir", str(world), "--rap", fr_rap, "--event", "0")
    assert r.returncode == 0, r.stderr
    r = cli(
        "returns", "write-off", "--workdir", str(world), "--rap", gb_rap, "--event", "1",
        "--reason", "older than the resubmission window", "--date", D3.isoformat(),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert nightly(world, D3).returncode == 0

    # D3: received on D2, one day old
    rows, total = _sheet(_daily(world, D3), "Returns")
    got = [
        (x["Partner"], x["Status"], x["Age (days)"], x["Items"], _dec(x["Amount"]), x["Currency"])
        for x in rows
    ]
    assert got == [
        ("FRAF9", "to_correct", "0-7", 1, amounts[("FRAF9", 3)], "SDR"),
        ("FRAF9", "resubmitted", "0-7", 1, amounts[("FRAF9", 0)], "SDR"),
        ("GBRG9", "written_off", "0-7", 1, amounts[("GBRG9", 1)], "SDR"),
    ]
    assert [_dec(x["Amount (SDR)"]) for x in rows] == [g[4] for g in got]  # SDR: scale only
    assert total["Items"] == 3
    assert _dec(total["Amount (SDR)"]) == sum(g[4] for g in got)

    # forty days later the same items are in the 31-90 band
    assert nightly(world, LATER).returncode in (0, 1)
    rows, _total = _sheet(_daily(world, LATER), "Returns")
    assert [(x["Partner"], x["Status"], x["Age (days)"]) for x in rows] == [
        ("FRAF9", "to_correct", "31-90"),
        ("FRAF9", "resubmitted", "31-90"),
        ("GBRG9", "written_off", "31-90"),
    ]

    # the monthly of November lists the write-off (dated D3); January's has none
    r = cli("settle", "monthly", "--workdir", str(world), "--period", "2026-11")
    assert r.returncode == 0, r.stderr
    rows, total = _sheet(world / r.stdout.strip().splitlines()[-1], "Write-offs")
    assert [
        (
            x["Date"].date(),
            x["RAP file"],
            x["Partner"],
            x["Kind"],
            x["Event"],
            _dec(x["Amount"]),
            x["Currency"],
            x["Reason"],
        )
        for x in rows
    ] == [
        (
            D3,
            gb_rap,
            "GBRG9",
            "severe",
            1,
            amounts[("GBRG9", 1)],
            "SDR",
            "older than the resubmission window",
        )
    ]
    assert _dec(total["Amount (SDR)"]) == amounts[("GBRG9", 1)]
    r = cli("settle", "monthly", "--workdir", str(world), "--period", "2027-01")
    assert r.returncode == 0, r.stderr
    rows, total = _sheet(world / r.stdout.strip().splitlines()[-1], "Write-offs")
    assert rows == []
