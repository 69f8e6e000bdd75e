"""TAP-out, Notification and CIBER-out of a processing day, checked with independent tools.

Every TAP-out file is decoded with a TAP 3.12 module compiled here, directly with asn1tools
(not through ``clearing.codecs.asn1``); its audit totals are compared with sums of its events
computed here, and with the charges worked by hand in ``tests/rating/conftest.py``.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import asn1tools
import duckdb
import pytest

from clearing.codecs import ciber, fast
from clearing.outbound import OutboundFile, write_day
from clearing.rating.run import RateSummary, rate_day

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def tap_spec() -> Any:
    return asn1tools.compile_files([str(ROOT / "specs" / "asn1" / "TAP-0312.asn")], "ber")


def _rate(workdir: Path, day: date) -> tuple[RateSummary, list[OutboundFile]]:
    """The nightly's rate step: the rating stage, then the outbound stage."""
    return rate_day(workdir, day), write_day(workdir, day)


def _charges(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "gprsCall":
        infos: list[dict[str, Any]] = body["gprsServiceUsed"]["chargeInformationList"]
        return infos
    return [i for bs in body["basicServiceUsedList"] for i in bs["chargeInformationList"]]


def _sums(batch: dict[str, Any]) -> tuple[int, int, int]:
    charge = tax = 0
    for kind, body in batch["callEventDetails"]:
        for info in _charges(kind, body):
            charge += sum(d["charge"] for d in info["chargeDetailList"] if d["chargeType"] == b"00")
            tax += sum(t["taxValue"] for t in info.get("taxInformation", []))
        charge += body.get("camelServiceUsed", {}).get("camelInvocationFee", 0)
    return charge, tax, len(batch["callEventDetails"])


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_files_of_the_day(tiny_workdir: Path, tap_spec: Any) -> None:
    summary, outbound = _rate(tiny_workdir, DAY)
    names = sorted(p.name for p in (tiny_workdir / "out" / "tap").iterdir())
    assert names == ["CDHKGCLTSTA100001", "CDHKGCLTSTB200001", "CDHKGCLTSTC300001"]
    # sorted by file name: CD… before CIBER_…
    assert [f.kind for f in outbound] == [
        "transferBatch",
        "transferBatch",
        "notification",
        "ciber",
    ]
    assert (summary.rated, summary.unrated, summary.quarantined) == (7, 1, 0)

    # TSTA1: totals worked by hand (conftest): 3.83039 SDR, tax 0.00275, 4 events
    kind, a = tap_spec.decode(
        "DataInterChange", (tiny_workdir / "out/tap/CDHKGCLTSTA100001").read_bytes()
    )
    assert kind == "transferBatch"
    audit = a["auditControlInfo"]
    assert (audit["totalCharge"], audit["totalTaxValue"], audit["callEventDetailsCount"]) == (
        383039,
        275,
        4,
    )
    assert _sums(a) == (
        audit["totalCharge"],
        audit["totalTaxValue"],
        audit["callEventDetailsCount"],
    )
    assert audit["totalDiscountValue"] == 0
    assert audit["earliestCallTimeStamp"] == {
        "localTimeStamp": b"20261123100000",
        "utcTimeOffset": b"+0800",
    }
    assert audit["latestCallTimeStamp"]["localTimeStamp"] == b"20261123120000"
    bci = a["batchControlInfo"]
    assert (bci["sender"], bci["recipient"], bci["fileSequenceNumber"]) == (
        b"HKGCL",
        b"TSTA1",
        b"00001",
    )
    # timestamps come from the processing date, never the clock
    assert bci["transferCutOffTimeStamp"] == {
        "localTimeStamp": b"20261124000000",
        "utcTimeOffset": b"+0800",
    }
    assert bci["fileAvailableTimeStamp"]["localTimeStamp"] == b"20261124020000"
    acc = a["accountingInfo"]
    assert acc["tapDecimalPlaces"] == 5
    assert acc["localCurrency"] == b"HKD"
    assert "tapCurrency" not in acc  # SDR
    assert acc["currencyConversionInfo"] == [
        {"exchangeRateCode": 1, "numberOfDecimalPlaces": 5, "exchangeRate": 1062340}
    ]
    assert acc["taxation"] == [{"taxCode": 1, "taxType": b"01", "taxRate": b"2000000"}]
    net = a["networkInfo"]
    assert net["utcTimeOffsetInfo"] == [{"utcTimeOffsetCode": 1, "utcTimeOffset": b"+0800"}]
    assert [e["recEntityType"] for e in net["recEntityInfo"]] == [1, 1, 4]
    kinds = [k for k, _ in a["callEventDetails"]]
    assert kinds == [
        "mobileOriginatedCall",
        "mobileOriginatedCall",
        "gprsCall",
        "mobileTerminatedCall",
    ]
    moc = a["callEventDetails"][0][1]
    detail = moc["basicServiceUsedList"][0]["chargeInformationList"][0]["chargeDetailList"][0]
    assert (detail["charge"], detail["chargeableUnits"], detail["chargedUnits"]) == (19000, 95, 95)

    # TSTB2: one call, 0.200 SDR at 3 dp
    _, b = tap_spec.decode(
        "DataInterChange", (tiny_workdir / "out/tap/CDHKGCLTSTB200001").read_bytes()
    )
    assert (
        _sums(b)
        == (200, 0, 1)
        == (
            b["auditControlInfo"]["totalCharge"],
            b["auditControlInfo"]["totalTaxValue"],
            b["auditControlInfo"]["callEventDetailsCount"],
        )
    )
    assert b["accountingInfo"]["tapDecimalPlaces"] == 3

    # TSTC3 has an agreement and no traffic: a Notification keeps its sequence going
    kind, n = tap_spec.decode(
        "DataInterChange", (tiny_workdir / "out/tap/CDHKGCLTSTC300001").read_bytes()
    )
    assert kind == "notification"
    assert (n["sender"], n["recipient"], n["fileSequenceNumber"]) == (b"HKGCL", b"TSTC3", b"00001")

    # CDMA partner 01234: CIBER-out, 0.90 + 0.45 USD
    (cfile,) = (tiny_workdir / "out" / "ciber").iterdir()
    assert cfile.name == "CIBER_60099_01234_20261124_001.dat"
    events = ciber.read(cfile.read_bytes())
    assert events.column("charge").to_pylist() == [90, 45]
    assert set(events.column("sender").to_pylist()) == {"60099"}
    assert set(events.column("recipient").to_pylist()) == {"01234"}


def test_the_project_decoders_read_tap_out(tiny_workdir: Path) -> None:
    _rate(tiny_workdir, DAY)
    batch = fast.decode_tap((tiny_workdir / "out/tap/CDHKGCLTSTA100001").read_bytes())
    assert batch.problems == []
    assert batch.events.column("charge").to_pylist() == [19000, 1373, 357666, 5000]
    assert batch.events.column("tax").to_pylist() == [None, 275, None, None]


@pytest.mark.skipif(shutil.which("file") is None, reason="no `file` command")
def test_file_magic_says_tap(tiny_workdir: Path) -> None:
    _rate(tiny_workdir, DAY)
    out = tiny_workdir / "out" / "tap"

    def magic(name: str) -> str:
        return subprocess.run(
            ["file", "-b", str(out / name)], capture_output=True, text=True, check=True
        ).stdout

    # what the installed magic (file 5.44) prints: "TAP 3.12 Batch (TD.57, Transferred Account)"
    assert magic("CDHKGCLTSTA100001").startswith("TAP 3.12 Batch")
    assert magic("CDHKGCLTSTC300001").startswith("TAP 3.12 Notification")


def test_a_rerun_gives_the_same_bytes_and_numbers(tiny_workdir: Path) -> None:
    _rate(tiny_workdir, DAY)
    out = tiny_workdir / "out"
    lake = tiny_workdir / "lake"
    first_out, first_lake = _tree(out), _tree(lake)
    _summary, outbound = _rate(tiny_workdir, DAY)
    assert _tree(out) == first_out
    assert _tree(lake) == first_lake
    assert not any(f.content_changed for f in outbound)
    with duckdb.connect(str(tiny_workdir / "clearing.duckdb")) as con:
        rows = con.sql(
            "SELECT partner, standard, first_number FROM outbound_sequences "
            "WHERE processing_date = DATE '2026-11-24' ORDER BY partner"
        ).fetchall()
        files = con.execute("SELECT count(*) FROM outbound_files").fetchone()
    assert rows == [
        ("01234", "ciber", 1),
        ("TSTA1", "tap", 1),
        ("TSTB2", "tap", 1),
        ("TSTC3", "tap", 1),
    ]
    assert files == (4,)


def test_the_next_day_takes_the_next_fsn_and_test_data_its_own_sequence(
    tiny_workdir: Path,
) -> None:
    _rate(tiny_workdir, DAY)
    _rate(tiny_workdir, date(2026, 11, 25))  # no CDRs: Notifications, FSN 2
    names = sorted(p.name for p in (tiny_workdir / "out" / "tap").iterdir())
    assert "CDHKGCLTSTA100002" in names
    assert "CDHKGCLTSTC300002" in names
    # re-running the first day again still reuses FSN 1
    _rate(tiny_workdir, DAY)
    assert (tiny_workdir / "out/tap/CDHKGCLTSTA100001").exists()
    # a test agreement from 2026-11-26: TD files, a sequence of its own starting at 1
    src = tiny_workdir / "rates" / "sources" / "agreements.csv"
    src.write_text(
        src.read_text() + "TSTC3,Test C,tap,SDR,5,HKD,0,6,EUR,test,2026-11-26\n", encoding="utf-8"
    )
    from clearing.rating import import_rates

    import_rates(tiny_workdir / "rates")
    _rate(tiny_workdir, date(2026, 11, 26))
    names = sorted(p.name for p in (tiny_workdir / "out" / "tap").iterdir())
    assert "TDHKGCLTSTC300001" in names
    assert "CDHKGCLTSTA100003" in names
