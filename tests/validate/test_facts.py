"""The register holds what a file declares and what its events add up to (recorded once).

The expected values are read here without the package's decoders: the TAP file through an
asn1tools module compiled from the TD.57 ASN.1, the CIBER file by slicing its fixed-width
lines at the positions of ``specs/ciber/type*.csv``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import asn1tools

from clearing.config import WorkDir
from clearing.returns import validate_and_return
from clearing.samples.tap import PARTNERS, build_file
from clearing.validate.state import State

ROOT = Path(__file__).parents[2]
DAY = dt.date(2026, 11, 22)
FRA = next(p for p in PARTNERS if p.tadig == "FRAF9")
NORDLYS = ROOT / "data_samples" / "ciber" / "CIBER_16425_60099_20261122_027.dat"

_COLUMNS = (
    "format, header_kind, file_available, file_created, tap_currency, tap_decimal_places, "
    "currency, charge, charge_scale, audit_charge, audit_tax, audit_discount, audit_events, "
    "recomputed_charge, recomputed_tax, recomputed_discount, events, sender"
)


@cache
def tap_module() -> Any:
    return asn1tools.compile_files([str(ROOT / "specs" / "asn1" / "TAP-0312.asn")], "ber")


def world(tmp: Path) -> WorkDir:
    lines = ['[home]\ntadig = "HKGCL"\nsid_bid = "60099"\n']
    lines += [f"[partners.{p.tadig}]\n" for p in PARTNERS]
    lines.append('[partners.16425]\nstandard = "ciber"\n')
    (tmp / "clearing.toml").write_text("".join(lines))
    return WorkDir(tmp)


def register_row(wd: WorkDir, file: str) -> dict[str, Any]:
    with State(wd.db, read_only=True) as s:
        cur = s.con.execute(f"SELECT {_COLUMNS} FROM files WHERE file = ?", [file])
        names = [c[0] for c in cur.description]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def utc(stamp: dict[str, bytes]) -> dt.datetime:
    """A DateTimeLong as naive UTC, by hand."""
    local = dt.datetime.strptime(stamp["localTimeStamp"].decode(), "%Y%m%d%H%M%S")
    off = stamp["utcTimeOffset"].decode()
    minutes = int(off[1:3]) * 60 + int(off[3:5])
    return local - (1 if off[0] == "+" else -1) * dt.timedelta(minutes=minutes)


def test_tap_register_holds_declared_and_recomputed_audit_totals(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = build_file(FRA, events=30, seed=11, day=DAY)
    kind, value = tap_module().decode("DataInterChange", data)
    assert kind == "transferBatch"
    aci = value["auditControlInfo"]
    # plant a declared total 7 units above what the events give, the rest as built
    aci["totalCharge"] += 7
    changed = tap_module().encode("DataInterChange", ("transferBatch", value))
    path = tmp_path / "in" / name
    path.parent.mkdir()
    path.write_bytes(changed)
    result = validate_and_return(wd, DAY, [path])
    assert "aci.total_charge" in {f.rule for f in result.files[0].findings}

    row = register_row(wd, name)
    acc, bci = value["accountingInfo"], value["batchControlInfo"]
    assert row["format"] == row["header_kind"] == "tap"
    assert row["audit_charge"] == aci["totalCharge"]
    assert row["recomputed_charge"] == aci["totalCharge"] - 7
    assert row["audit_tax"] == aci["totalTaxValue"] == row["recomputed_tax"]
    assert row["audit_discount"] == aci.get("totalDiscountValue")
    assert row["audit_events"] == aci["callEventDetailsCount"] == 30 == row["events"]
    declared_currency = acc.get("tapCurrency")  # absent: SDR
    assert row["tap_currency"] == (declared_currency and declared_currency.decode())
    assert row["tap_decimal_places"] == acc["tapDecimalPlaces"]
    assert row["file_available"] == utc(bci["fileAvailableTimeStamp"])
    assert row["file_created"] == utc(bci["fileCreationTimeStamp"])


def _money(line: bytes, start: int, length: int) -> int:
    return int(line[start - 1 : start - 1 + length])


def test_ciber_register_holds_trailer_total_records_total_and_currency(tmp_path: Path) -> None:
    wd = world(tmp_path)
    path = tmp_path / "in" / NORDLYS.name
    path.parent.mkdir()
    shutil.copyfile(NORDLYS, path)
    validate_and_return(wd, DAY, [path])

    lines = NORDLYS.read_bytes().splitlines()
    # type 98: Batch Total Charges and Taxes at 26 (12); type 22: Total Charges and Taxes at
    # 72 (10), State/Province Taxes at 83 (10), Local/Other Taxes at 94 (10)
    (trailer,) = [ln for ln in lines if ln[:2] == b"98"]
    details = [ln for ln in lines if ln[:2] == b"22"]
    (header,) = [ln for ln in lines if ln[:2] == b"01"]
    declared = _money(trailer, 26, 12)
    records = sum(_money(ln, 72, 10) for ln in details)
    taxes = sum(_money(ln, 83, 10) + _money(ln, 94, 10) for ln in details)
    assert declared == records + 100  # the sample's planted fault: 1.00 CAD too much

    row = register_row(wd, NORDLYS.name)
    assert row["format"] == row["header_kind"] == "ciber"
    assert row["audit_charge"] == declared
    assert row["recomputed_charge"] == records
    assert row["charge"] == records - taxes
    assert row["charge_scale"] == 2
    assert row["currency"] == "CAD"
    created = dt.datetime.strptime(header[2:8].decode(), "%y%m%d")
    assert row["file_created"] == created
    assert row["events"] == len(details)
    assert row["sender"] == header[11:16].decode() == "16425"  # Sending Carrier SID/BID at 12

    # the CIBER return written for the rejected batch: its totals as written
    with State(wd.db, read_only=True) as s:
        (ret,) = s.con.execute(
            "SELECT file, input_file, events, currency, audit_charge, recomputed_charge "
            "FROM ciber_returns_out"
        ).fetchall()
    assert ret[0].startswith("CIBER_60099_16425_20261122_")
    assert ret[0].endswith("_RET.dat")
    assert ret[1:] == (NORDLYS.name, len(details), "CAD", declared, records)


def test_a_row_without_facts_has_nulls_not_a_crash(tmp_path: Path) -> None:
    wd = world(tmp_path)
    path = tmp_path / "in" / "CDFRAF9HKGCL00001"
    path.parent.mkdir()
    path.write_bytes(b"not a TAP file at all")
    validate_and_return(wd, DAY, [path])
    row = register_row(wd, path.name)
    assert row["header_kind"] is None
    assert row["audit_charge"] is None
    assert row["file_available"] is None
