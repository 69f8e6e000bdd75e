"""A TAP-out the partner returned whole (fatal) is resent under its own name and FSN.

A generated world runs a night; the partner's RAP returns our TAP-out FSN 00001 with a fatal
error in its BatchControlInfo. After ``clearing returns resubmit`` the next night sends a file of
the same name to the partner's exchange folder: read with an asn1tools module compiled here from
``specs/`` it has fileSequenceNumber 00001 and BatchControlInfo.rapFileSequenceNumber = the
RAP's FSN, and the same events as the returned file. The returned bytes are kept, and so is
their outbox row (``outbox_versions``); it is done once.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from clearing.codecs.ber import element_at, iter_children, tag_key
from clearing.codecs.rap import ErrorDetail, FatalItem, PathItem

from .test_worked import D2, D3, D4, cli, deliver_rap, listed, nightly, our_tap, tap_spec, world

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["tap_spec", "world"]

RAP_FSN = 7


def _bci(data: bytes) -> bytes:
    """Our TAP-out's BatchControlInfo group, byte for byte (the partner echoes it)."""
    top = element_at(data, 0)
    (bci,) = [c for c in iter_children(data, top) if c.key == tag_key(1, 4)]
    return data[bci.offset : bci.end]


def _outbox(world: Path, name: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    with duckdb.connect(str(world / "clearing.duckdb"), read_only=True) as con:
        row = con.execute(
            "SELECT sha256, state, attempts FROM outbox WHERE name = ?", [name]
        ).fetchone()
        versions = con.execute(
            "SELECT version, sha256, local_path, state, rap_file, item FROM outbox_versions "
            "WHERE name = ? ORDER BY version",
            [name],
        ).fetchall()
    assert row is not None
    return row, versions


def test_a_fatally_returned_file_is_resent_once_under_its_fsn(world: Path, tap_spec: Any) -> None:
    ours = our_tap(world, "FRAF9", 1)
    first = ours.read_bytes()
    first_sha = hashlib.sha256(first).hexdigest()
    kind, batch = tap_spec.decode("DataInterChange", first)
    assert kind == "transferBatch"
    scale = batch["accountingInfo"]["tapDecimalPlaces"]
    audit = batch["auditControlInfo"]
    returned_amount = Decimal(audit["totalCharge"] + audit.get("totalTaxValue", 0)).scaleb(-scale)

    fatal = FatalItem(
        "00001",
        "batchControlInfo",
        _bci(first),
        [ErrorDetail(100, (PathItem(1, 1, 1), PathItem(4, 1, 2), PathItem(109, 1, 3)))],
    )
    rap = deliver_rap(world, "FRAF9", RAP_FSN, [fatal], scale=scale)
    assert nightly(world, D2).returncode in (0, 1)

    (row,) = listed(world, "--partner", "FRAF9")
    assert (row["rap_file"], row["kind"], row["status"]) == (rap, "fatal", "to_correct")
    assert (row["file_sequence_number"], row["tap_file"]) == ("00001", ours.name)
    assert Decimal(row["amount"]) == returned_amount

    r = cli("returns", "resubmit", "--workdir", str(world), "--rap", rap)
    assert r.returncode == 0, r.stderr
    assert "1 return(s)" in r.stdout
    assert listed(world, "--partner", "FRAF9")[0]["status"] == "to_correct"  # not yet sent

    r = nightly(world, D3)
    assert r.returncode == 0, r.stdout + r.stderr
    at_partner = world / "exchange" / "FRAF9" / "from_hkgcl" / ours.name
    again = at_partner.read_bytes()
    assert again == ours.read_bytes() != first
    kind, resent = tap_spec.decode("DataInterChange", again)
    assert kind == "transferBatch"
    bci = resent["batchControlInfo"]
    assert bci["fileSequenceNumber"] == b"00001"
    assert bci["rapFileSequenceNumber"] == f"{RAP_FSN:05d}".encode()
    assert bci["fileAvailableTimeStamp"]["localTimeStamp"].startswith(b"20261124")  # D3
    # the same events and money as the returned file
    assert resent["callEventDetails"] == batch["callEventDetails"]
    assert resent["auditControlInfo"] == audit
    # the night's own TAP-out goes on with its own FSN, not a resubmission
    kind, third = tap_spec.decode("DataInterChange", our_tap(world, "FRAF9", 3).read_bytes())
    body = third["batchControlInfo"] if kind == "transferBatch" else third
    assert "rapFileSequenceNumber" not in body

    (row,) = listed(world, "--partner", "FRAF9")
    assert (row["status"], row["out_file"]) == ("resubmitted", ours.name)

    # the returned bytes are kept, and their outbox row as a version
    kept = world / "out" / "tap" / "returned" / f"{ours.name}.{first_sha[:12]}"
    assert kept.read_bytes() == first
    current, versions = _outbox(world, ours.name)
    assert current == (hashlib.sha256(again).hexdigest(), "sent", 1)
    assert [(v[0], v[1], v[3], v[4], v[5]) for v in versions] == [(1, first_sha, "sent", rap, 0)]
    assert versions[0][2] == str(kept.resolve())

    # a replay of D3 sends nothing again; nor does the next night
    at_partner.unlink()
    assert nightly(world, D3).returncode == 0
    assert nightly(world, D4).returncode == 0
    assert not at_partner.exists()
    assert ours.read_bytes() == again
    assert _outbox(world, ours.name) == (current, versions)
    assert listed(world, "--partner", "FRAF9")[0]["status"] == "resubmitted"
