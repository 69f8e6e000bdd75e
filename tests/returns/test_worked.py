"""Partners' returns about our TAP-out are worked: listed, resubmitted, written off, answered.

A generated world runs a night; a partner then returns events of our TAP-out in a RAP built with
the project's RAP writer and delivered to its exchange folder, as a partner would. The checks
read our files back with an asn1tools module compiled here from ``specs/`` (not the project's
decoder) and the workbooks with openpyxl.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asn1tools
import pytest

from clearing.codecs.ber import element_at, iter_children, tag_key
from clearing.codecs.rap import (
    ErrorDetail,
    MissingItem,
    PathItem,
    RapHeader,
    SevereItem,
    StopItem,
    rap_file_name,
    write_rap,
)
from clearing.samples.workdir import generate_world

from ..cli_run import run_cli

cli = run_cli  # test_fatal and test_workbooks import it from here

if TYPE_CHECKING:
    import subprocess

ROOT = Path(__file__).resolve().parents[2]
D1, D2, D3, D4 = (date(2026, 11, d) for d in (22, 23, 24, 25))


@pytest.fixture(scope="module")
def tap_spec() -> Any:
    return asn1tools.compile_files([str(ROOT / "specs" / "asn1" / "TAP-0312.asn")], "ber")


def nightly(world: Path, day: date) -> subprocess.CompletedProcess[str]:
    return cli("nightly", "--workdir", str(world), "--date", day.isoformat())


def listed(world: Path, *extra: str) -> list[dict[str, Any]]:
    r = cli("returns", "list", "--workdir", str(world), "--json", "--date", D4.isoformat(), *extra)
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, Any]] = json.loads(r.stdout)
    return rows


@pytest.fixture
def world(tmp_path: Path) -> Path:
    root = generate_world(tmp_path / "w", day=D1, events=400, seed=3).root
    r = nightly(root, D1)
    assert r.returncode in (0, 1), r.stderr
    return root


def events_of(data: bytes) -> list[bytes]:
    """Our TAP-out's CallEventDetails, byte for byte (the partner echoes them in a RAP)."""
    top = element_at(data, 0)
    (cel,) = [c for c in iter_children(data, top) if c.key == tag_key(1, 3)]
    return [data[e.offset : e.end] for e in iter_children(data, cel)]


def basic(event: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    kind, body = event
    info: dict[str, Any] = body[
        "gprsBasicCallInformation" if kind == "gprsCall" else "basicCallInformation"
    ]
    return info


def money(event: tuple[str, dict[str, Any]]) -> tuple[int, int]:
    """chargeType 00 charges and tax of one of our events, read from the decoded value."""
    kind, body = event
    used = [body["gprsServiceUsed"]] if kind == "gprsCall" else body["basicServiceUsedList"]
    charge = tax = 0
    for u in used:
        for info in u["chargeInformationList"]:
            charge += sum(d["charge"] for d in info["chargeDetailList"] if d["chargeType"] == b"00")
            tax += sum(t["taxValue"] for t in info.get("taxInformation", []))
    return charge, tax


def imsi_and_start(event: tuple[str, dict[str, Any]]) -> tuple[str, str]:
    b = basic(event)
    sub = (
        b["gprsChargeableSubscriber"]["chargeableSubscriber"]
        if "gprsChargeableSubscriber" in b
        else b["chargeableSubscriber"]
    )
    imsi = sub[1]["imsi"].hex().rstrip("f")
    stamp = b["callEventStartTimeStamp"]["localTimeStamp"].decode()
    return imsi, datetime.strptime(stamp, "%Y%m%d%H%M%S").isoformat()


def deliver_rap(
    world: Path, partner: str, rap_fsn: int, items: list[Any], *, scale: int = 5
) -> str:
    header = RapHeader(
        sender=partner,
        recipient="HKGCL",
        rap_fsn=rap_fsn,
        test=False,
        created_local="20261123020000",
        utc_offset="+0100",
        tap_decimal_places=scale,
    )
    name = rap_file_name(header)
    (world / "exchange" / partner / "to_hkgcl" / name).write_bytes(write_rap(header, items))
    return name


def severe(tap_spec: Any, data: bytes, index: int) -> SevereItem:
    raw = events_of(data)[index]
    charge, tax = money(tap_spec.decode("CallEventDetail", raw))
    tag = element_at(raw, 0).key & 0xFFFFFF
    path = (PathItem(1, 1, 1), PathItem(3, 1, 2), PathItem(tag, index + 1, 3))
    return SevereItem("00001", raw, [ErrorDetail(20, path)], charge, tax)


def our_tap(world: Path, partner: str, fsn: int) -> Path:
    return world / "out" / "tap" / f"CDHKGCL{partner}{fsn:05d}"


def test_severe_returns_are_resubmitted_once_with_the_rap_fsn(world: Path, tap_spec: Any) -> None:
    first = our_tap(world, "FRAF9", 1).read_bytes()
    kind, batch = tap_spec.decode("DataInterChange", first)
    assert kind == "transferBatch"
    assert len(batch["callEventDetails"]) > 4
    scale = batch["accountingInfo"]["tapDecimalPlaces"]
    returned = [0, 3]
    items = [severe(tap_spec, first, i) for i in returned]
    name = deliver_rap(world, "FRAF9", 7, items, scale=scale)
    assert nightly(world, D2).returncode == 0

    rows = listed(world)
    assert [(r["rap_file"], r["kind"], r["event_index"], r["status"]) for r in rows] == [
        (name, "severe", 0, "to_correct"),
        (name, "severe", 3, "to_correct"),
    ]
    for row, i in zip(rows, returned, strict=True):
        event = batch["callEventDetails"][i]
        charge, tax = money(event)
        assert (row["imsi"], row["start"]) == imsi_and_start(event)
        assert row["partner"] == "FRAF9"
        assert row["file_sequence_number"] == "00001"
        assert row["error_codes"] == "20"
        assert Decimal(row["amount"]) == Decimal(charge + tax).scaleb(-scale)
        assert row["age_days"] == (D4 - D2).days

    r = cli("returns", "resubmit", "--workdir", str(world), "--all")
    assert r.returncode == 0, r.stderr
    assert "2 return(s)" in r.stdout
    assert {x["status"] for x in listed(world)} == {"to_correct"}  # recorded, not yet sent

    assert nightly(world, D3).returncode == 0
    third = our_tap(world, "FRAF9", 3)  # D1: 00001, D2: a Notification 00002, D3: 00003
    kind, again = tap_spec.decode("DataInterChange", third.read_bytes())
    assert kind == "transferBatch"
    marked = [e for e in again["callEventDetails"] if "rapFileSequenceNumber" in basic(e)]
    assert [basic(e)["rapFileSequenceNumber"] for e in marked] == [b"00007", b"00007"]
    want = sorted(imsi_and_start(batch["callEventDetails"][i]) for i in returned)
    assert sorted(imsi_and_start(e) for e in marked) == want
    # a fatally returned file aside, the batch itself is not a resubmission
    assert "rapFileSequenceNumber" not in again["batchControlInfo"]
    assert [x["status"] for x in listed(world)] == ["resubmitted", "resubmitted"]
    assert {x["out_file"] for x in listed(world)} == {third.name}

    # a replay of D3 sends the same; the next night does not send them again
    before = hashlib.sha256(third.read_bytes()).hexdigest()
    assert nightly(world, D3).returncode == 0
    assert hashlib.sha256(third.read_bytes()).hexdigest() == before
    assert nightly(world, D4).returncode == 0
    kind, fourth = tap_spec.decode("DataInterChange", our_tap(world, "FRAF9", 4).read_bytes())
    events = fourth.get("callEventDetails", []) if kind == "transferBatch" else []
    assert not [e for e in events if "rapFileSequenceNumber" in basic(e)]
    assert [x["status"] for x in listed(world)] == ["resubmitted", "resubmitted"]


def test_write_off_records_the_loss(world: Path, tap_spec: Any) -> None:
    data = our_tap(world, "GBRG9", 1).read_bytes()
    scale = tap_spec.decode("DataInterChange", data)[1]["accountingInfo"]["tapDecimalPlaces"]
    item = severe(tap_spec, data, 1)
    name = deliver_rap(world, "GBRG9", 2, [item], scale=scale)
    assert nightly(world, D2).returncode == 0
    (row,) = listed(world, "--partner", "GBRG9")
    r = cli(
        "returns", "write-off", "--workdir", str(world), "--rap", name,
        "--event", str(row["event_index"]), "--reason", "beyond the resubmission window",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (row,) = listed(world, "--status", "written_off")
    assert row["rap_file"] == name
    assert Decimal(row["amount"]) == Decimal(item.charge + item.tax).scaleb(-scale)
    assert row["reason"] == "beyond the resubmission window"
    # a written-off event is not resubmitted
    r = cli("returns", "resubmit", "--workdir", str(world), "--all")
    assert "0 return(s)" in r.stdout
    assert listed(world, "--status", "to_correct") == []


def test_missing_return_resends_the_same_bytes_and_stop_is_an_anomaly(world: Path) -> None:
    ours = our_tap(world, "DEUD9", 1)
    registered = hashlib.sha256(ours.read_bytes()).hexdigest()
    at_partner = world / "exchange" / "DEUD9" / "from_hkgcl" / ours.name
    at_partner.unlink()  # the partner says it never got it
    deliver_rap(world, "DEUD9", 1, [MissingItem(1), StopItem(1)])
    r = nightly(world, D2)
    assert r.returncode == 1  # the StopReturn
    assert "StopReturn from DEUD9" in r.stdout + r.stderr
    assert hashlib.sha256(at_partner.read_bytes()).hexdigest() == registered
    kinds = {x["kind"]: x for x in listed(world, "--partner", "DEUD9")}
    assert kinds["missing"]["status"] == "resubmitted"
    assert kinds["missing"]["out_file"] == ours.name
    assert kinds["stop"]["status"] == "to_correct"
    # answered once: the next night does not send it again
    at_partner.unlink()
    nightly(world, D3)
    assert not at_partner.exists()
