"""IOT breaches above the thresholds, through the CLI: held from the payable, then decided.

One TAP-in event of the sample world (FRAF9's file, event 26: an MTC charged 0.00410 SDR,
exactly its IOT price) is re-encoded with an independently compiled TAP 3.12 module at a much
higher charge (its tax and the file's audit totals follow, so validation accepts it). The
expected figures are worked out by hand from the file and the fx rate (EUR 1.17234 per SDR,
the partner's invoiced total converted once and rounded half up to the cent: reports/README.md,
Rounding), against a run of the untouched world.
"""

from __future__ import annotations

import json
import shutil
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import asn1tools
import openpyxl

from .conftest import ROOT, Cli

if TYPE_CHECKING:
    from pathlib import Path

DAY, PERIOD = "2026-11-22", "2026-11"
FILE = "CDFRAF9HKGCL01506"
EVENT = 26
SPECS = ROOT / "specs" / "asn1"
EUR_PER_SDR = Decimal("1.17234")


def _clean(world: Path) -> None:
    """Without the sample's rejected CIBER batch the night has no other anomaly (exit 0)."""
    for f in (world / "exchange" / "16425" / "to_hkgcl").iterdir():
        f.unlink()


def _charge(world: Path, charge: int) -> tuple[int, int]:
    """Set FRAF9's event 26 to ``charge`` (tax 20 %); return (old charge, old file total)."""
    path = world / "exchange" / "FRAF9" / "to_hkgcl" / FILE
    tap = asn1tools.compile_files([str(SPECS / "TAP-0312.asn")], "ber")
    kind, value = tap.decode("DataInterChange", path.read_bytes())
    kind_ev, ev = value["callEventDetails"][EVENT]
    assert kind_ev == "mobileTerminatedCall"
    info = ev["basicServiceUsedList"][0]["chargeInformationList"][0]
    detail, tax = info["chargeDetailList"][0], info["taxInformation"][0]
    aci = value["auditControlInfo"]
    old, old_tax, total = detail["charge"], tax["taxValue"], aci["totalCharge"]
    detail["charge"] = charge
    tax["taxValue"], tax["taxableAmount"] = charge // 5, charge
    aci["totalCharge"] += charge - old
    aci["totalTaxValue"] += charge // 5 - old_tax
    path.write_bytes(tap.encode("DataInterChange", (kind, value)))
    return old, total


def _manifest(world: Path) -> dict[str, Any]:
    latest = sorted((world / "runs").glob("nightly-*/manifest.json"))[-1]
    manifest: dict[str, Any] = json.loads(latest.read_text(encoding="utf-8"))
    return manifest


def _payable(world: Path, partner: str) -> Decimal:
    rows = _manifest(world)["money"]["payable"]
    (r,) = [r for r in rows if r["partner"] == partner]
    return Decimal(r["amount"]).scaleb(-r["scale"])


def _monthly_payable_sdr(world: Path, clearing: Cli, partner: str) -> Decimal:
    """FRAF9's "Payable charge as invoiced (SDR)" on a new monthly workbook."""
    r = clearing("settle", "monthly", "--workdir", str(world), "--period", PERIOD)
    assert r.returncode == 0, r.stderr
    (path,) = sorted((world / "out" / "settlement" / "monthly").glob("*.xlsx"))[-1:]
    sheet = openpyxl.load_workbook(path)["Summary"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = next(r for r in rows if r and r[0] == "Partner")
    (row,) = [r for r in rows if r and r[0] == partner]
    return Decimal(str(row[head.index("Payable charge as invoiced (SDR)")]))


def _iot_list(world: Path, clearing: Cli) -> list[dict[str, Any]]:
    r = clearing("iot", "list", "--workdir", str(world), "--json")
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, Any]] = json.loads(r.stdout)
    return rows


def test_a_breach_above_the_threshold_is_held_until_accepted(
    world: Path, tmp_path: Path, clearing: Cli
) -> None:
    _clean(world)
    base = tmp_path / "base"
    shutil.copytree(world, base)
    r = clearing("nightly", "--workdir", str(base), "--date", DAY)
    assert r.returncode == 0, r.stdout + r.stderr
    base_payable = {p["partner"]: p["amount"] for p in _manifest(base)["money"]["payable"]}

    # 10^12 units at 5 decimals: 10,000,000 SDR for an MTC whose IOT price is 0.00410 SDR
    old, file_total = _charge(world, 10**12)
    assert old == 410
    r = clearing("nightly", "--workdir", str(world), "--date", DAY)
    assert r.returncode == 1, r.stdout + r.stderr
    m = _manifest(world)
    (problem,) = m["problems"]
    assert "FRAF9 mtc, 1 event(s)" in problem
    assert "11723400.00 EUR held from the payable" in problem  # 10,000,000 × 1.17234
    assert m["stages"][4]["detail"]["iot_held"] == 1
    # the payable is the other events', converted once: the untouched night's is the file's
    # total (24.75511 SDR × 1.17234 = 29.0214… → 29.02 EUR); without event 26 (0.00410 SDR),
    # 24.75101 SDR × 1.17234 = 29.0165… → 29.02 EUR
    cent = Decimal("0.01")
    whole = Decimal(file_total).scaleb(-5) * EUR_PER_SDR
    assert Decimal(base_payable["FRAF9"]).scaleb(-2) == whole.quantize(cent, ROUND_HALF_UP)
    without = Decimal(file_total - old).scaleb(-5) * EUR_PER_SDR
    assert _payable(world, "FRAF9") == without.quantize(cent, ROUND_HALF_UP)
    others = {p["partner"]: p["amount"] for p in m["money"]["payable"] if p["partner"] != "FRAF9"}
    assert others == {k: v for k, v in base_payable.items() if k != "FRAF9"}
    (listed,) = _iot_list(world, clearing)
    assert (listed["partner"], listed["file"], listed["event_index"]) == ("FRAF9", FILE, EVENT)
    assert (listed["status"], listed["payable"], listed["charged"]) == (
        "held",
        "11723400.00",
        "10000000.00000",
    )
    # the daily workbook lists it as held, 10,000,000 SDR of charge out of the payable
    daily = world / "out" / "settlement" / "daily" / f"settlement_daily_HKGCL_{DAY}.xlsx"
    book = openpyxl.load_workbook(daily)
    held_rows = [list(r) for r in book["IOT held"].iter_rows(values_only=True)]
    (row,) = [r for r in held_rows if r and r[0] == "FRAF9"]
    assert (row[2], row[3], row[11]) == (FILE, EVENT, "held")
    assert Decimal(str(row[14])) == 10_000_000
    # the monthly payable: the file as invoiced less event 26 (the whole file before: 24.75511)
    others_sdr = Decimal(file_total - old).scaleb(-5)
    assert _monthly_payable_sdr(world, clearing, "FRAF9") == others_sdr

    # disputed: still out of the payable, listed as disputed
    r = clearing(
        "iot", "dispute", "--workdir", str(world), "--date", DAY, "--partner", "FRAF9",
        "--event", str(EVENT), "--reason", "charged far above the IOT",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (listed,) = _iot_list(world, clearing)
    assert (listed["status"], listed["reason"]) == ("disputed", "charged far above the IOT")
    assert _monthly_payable_sdr(world, clearing, "FRAF9") == others_sdr

    # accepted: in the payable of the date it was received on (the month, the night replayed)
    r = clearing("iot", "accept", "--workdir", str(world), "--all-of-date", DAY)
    assert r.returncode == 0, r.stderr
    assert _iot_list(world, clearing)[0]["status"] == "accepted"
    assert _monthly_payable_sdr(world, clearing, "FRAF9") == others_sdr + 10_000_000
    r = clearing("nightly", "--workdir", str(world), "--date", DAY)
    assert r.returncode == 0, r.stdout + r.stderr  # decided: no anomaly any more
    # (24.75101 + 10,000,000) SDR × 1.17234 = 11723429.0165… → 11723429.02 EUR
    accepted = Decimal(file_total - old + 10**12).scaleb(-5) * EUR_PER_SDR
    assert _payable(world, "FRAF9") == accepted.quantize(cent, ROUND_HALF_UP)
    # accepted is final here: a dispute now is refused (exit 2), the status stays
    r = clearing("iot", "dispute", "--workdir", str(world), "--all-of-date", DAY)
    assert r.returncode == 2
    assert "cannot be disputed" in r.stderr
    assert _iot_list(world, clearing)[0]["status"] == "accepted"


def test_a_breach_below_the_thresholds_is_counted_and_paid(
    world: Path, tmp_path: Path, clearing: Cli
) -> None:
    _clean(world)
    base = tmp_path / "base"
    shutil.copytree(world, base)
    assert clearing("nightly", "--workdir", str(base), "--date", DAY).returncode == 0
    # 0.03000 SDR for 0.00410: 632 % above the IOT (≤ 1000 %), 0.03 EUR (≤ 100 EUR)
    old, file_total = _charge(world, 3_000)
    r = clearing("nightly", "--workdir", str(world), "--date", DAY)
    assert r.returncode == 0, r.stdout + r.stderr
    m = _manifest(world)
    assert m["stages"][4]["detail"]["iot_breaches"] == 1
    assert m["stages"][4]["detail"]["iot_held"] == 0
    # paid, converted once with the rest: (24.75511 − 0.00410 + 0.03) SDR × 1.17234
    # = 29.0517… → 29.05 EUR
    paid = Decimal(file_total - old + 3_000).scaleb(-5) * EUR_PER_SDR
    assert _payable(world, "FRAF9") == paid.quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert _payable(base, "FRAF9") != _payable(world, "FRAF9")
    assert _iot_list(world, clearing) == []


def test_the_iot_verbs_say_what_is_wrong(world: Path, clearing: Cli) -> None:
    r = clearing("iot", "accept", "--workdir", str(world), "--date", DAY)
    assert r.returncode == 2
    assert "--partner" in r.stderr
    r = clearing("iot", "accept", "--workdir", str(world), "--all-of-date", DAY)
    assert r.returncode == 2
    assert "no IOT breach above the thresholds on 2026-11-22" in r.stderr
    r = clearing("iot", "list", "--workdir", str(world))
    assert (r.returncode, r.stdout.strip()) == (0, "no IOT breach above the thresholds")
