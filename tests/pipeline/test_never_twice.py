"""Never bill or pay twice, over a multi-day world run night after night through the CLI.

The world (``samples generate --days 3``) re-delivers the second day's CDR calls file on the
third day under a new name. On the third day this test also drops, into 04172's exchange
folder, a copy of 04172's second-day CIBER file under a new name (a copied batch: must not be
paid twice) and a batch that reuses the sequence of the third day's first batch with other
content (must be returned whole, Batch Reject Reason Code 08).

What was billed is read back from what went out: every TAP-out file is decoded with a TAP 3.12
module compiled here with asn1tools (not the package's codec), every CIBER-out record is read
by its positions (ciber.md §4.5); no call event may appear twice. The payable of the copied
CIBER partner is checked against a count made from the CIBER bytes by position.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import asn1tools
import duckdb
import polars as pl
import pytest

from clearing import lake
from tests.pipeline.conftest import ROOT, first_value

from ..cli_run import run_cli as _cli

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 22)
DAYS = [DAY + timedelta(days=k) for k in range(3)]
EVENTS = 300
COPIED = "04172"  # Verde Wireless: two batches a day, CR LF
TAP_MODULE = ROOT / "specs" / "asn1" / "TAP-0312.asn"


def _copy_name(day: date) -> str:
    return f"CIBER_{COPIED}_60099_{day:%Y%m%d}_999.dat"


def _reuse_name(day: date) -> str:
    return f"CIBER_{COPIED}_60099_{day:%Y%m%d}_998.dat"


def _own(folder: Path, day: date) -> Path:
    """The partner's own CIBER file of ``day`` in ``folder`` (not the copy, not the reuse)."""
    (path,) = [
        p
        for p in folder.glob(f"CIBER_{COPIED}_*")
        if p.name not in (_copy_name(day), _reuse_name(day))
    ]
    return path


def _reuse_of_first_sequence(own: bytes) -> bytes:
    """The file's second batch with the first batch's sequence (header and trailer, pos 9-11)."""
    lines = own.split(b"\r\n")
    first_seq = lines[0][8:11]
    second = [i for i, x in enumerate(lines) if x[:2] == b"01"][1]
    batch = lines[second:-1]  # the second batch, header to trailer (the file ends with CR LF)
    for i in (0, len(batch) - 1):
        batch[i] = batch[i][:8] + first_seq + batch[i][11:]
    return b"\r\n".join(batch) + b"\r\n"


@pytest.fixture(scope="module")
def nights(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[dict[str, Any]], list[int]]:
    """The world after three nights: (world, the nights' manifests, their exit codes)."""
    world = tmp_path_factory.mktemp("never_twice") / "w"
    r = _cli(
        "samples", "generate", "--out", str(world), "--events", str(EVENTS),
        "--date", DAY.isoformat(), "--days", "3", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifests: list[dict[str, Any]] = []
    codes: list[int] = []
    for day in DAYS:
        r = _cli("samples", "deliver", "--workdir", str(world), "--date", day.isoformat())
        assert r.returncode == 0, r.stderr
        if day == DAYS[2]:
            inbox = world / "exchange" / COPIED / "to_hkgcl"
            yesterday = _own(world / "work" / DAYS[1].isoformat() / "in", DAYS[1])
            (inbox / _copy_name(day)).write_bytes(yesterday.read_bytes())
            own = [p for p in inbox.glob(f"*_{day:%Y%m%d}_*") if p.name != _copy_name(day)]
            (inbox / _reuse_name(day)).write_bytes(_reuse_of_first_sequence(own[0].read_bytes()))
        r = _cli("nightly", "--workdir", str(world), "--date", day.isoformat(), "--json")
        last = json.loads(r.stdout.splitlines()[-1])
        assert last["event"] == "manifest", r.stderr
        manifest = world / "runs" / last["run_id"] / "manifest.json"
        manifests.append(json.loads(manifest.read_text(encoding="utf-8")))
        codes.append(r.returncode)
    return world, manifests, codes


# --- what went out, read independently ------------------------------------------------------


def _tap_events(world: Path) -> list[tuple[Any, ...]]:
    """Every call event of every TAP-out file: kind, IMSI, start, UTC offset, usage, numbers."""
    module = asn1tools.compile_files([str(TAP_MODULE)], "ber")
    events: list[tuple[Any, ...]] = []
    for path in sorted((world / "out" / "tap").iterdir()):
        kind, value = module.decode("DataInterChange", path.read_bytes())
        if kind != "transferBatch":
            continue  # a Notification: no events
        offsets = {
            u["utcTimeOffsetCode"]: u["utcTimeOffset"]
            for u in value["networkInfo"]["utcTimeOffsetInfo"]
        }
        for choice, event in value.get("callEventDetails", []):
            start = first_value(event, "callEventStartTimeStamp")
            events.append(
                (
                    choice,
                    first_value(event, "imsi").hex(),
                    start["localTimeStamp"],
                    offsets[start["utcTimeOffsetCode"]],
                    first_value(event, "totalCallEventDuration"),
                    first_value(event, "calledNumber"),
                    first_value(event, "callingNumber"),
                    first_value(event, "dataVolumeIncoming"),
                    first_value(event, "dataVolumeOutgoing"),
                    first_value(event, "chargingId"),
                )
            )
    return events


def _ciber_out_records(world: Path) -> list[tuple[bytes, ...]]:
    """Every detail record of our CIBER-out: type, MSID, call date, direction, called, time."""
    out: list[tuple[bytes, ...]] = []
    for path in sorted((world / "out" / "ciber").iterdir()):
        for line in path.read_bytes().splitlines():
            if line[:2] == b"22":
                out.append((line[:2], line[14:29], line[104:110], line[110:111], line[132:147],
                            line[212:218]))  # fmt: skip
            elif line[:2] == b"32":
                out.append((line[:2], line[14:29], line[104:110], line[110:111], line[132:147],
                            line[214:220]))  # fmt: skip
    return out


# --- the tests ---------------------------------------------------------------------------------


def test_every_night_reconciles(nights: tuple[Path, list[dict[str, Any]], list[int]]) -> None:
    _, manifests, codes = nights
    for day, m in zip(DAYS, manifests, strict=True):
        assert m["reconciliation"]["difference"] == 0, (day, m["reconciliation"])
    # 16425's planted trailer fault is rejected every night: a data problem (1)
    assert codes == [1, 1, 1]


def test_no_call_event_goes_out_twice(
    nights: tuple[Path, list[dict[str, Any]], list[int]],
) -> None:
    world, manifests, _ = nights
    tap = _tap_events(world)
    ciber = _ciber_out_records(world)
    assert tap
    assert ciber
    twice = {k: n for k, n in Counter(tap).items() if n > 1}
    assert twice == {}
    twice_ciber = {k: n for k, n in Counter(ciber).items() if n > 1}
    assert twice_ciber == {}
    # everything rated went out, once: the manifests' rated counts are what the files carry
    rated = sum(m_stage["detail"]["rated"] for m in manifests for m_stage in m["stages"]
                if m_stage["name"] == "rate")  # fmt: skip
    assert len(tap) + len(ciber) == rated


def test_the_redelivered_cdr_file_is_quarantined_as_duplicates(
    nights: tuple[Path, list[dict[str, Any]], list[int]],
) -> None:
    world, manifests, _ = nights
    second, third = DAYS[1], DAYS[2]
    again = f"CDR_HKGCL_{third:%Y%m%d}_003.csv"
    original = f"CDR_HKGCL_{second:%Y%m%d}_001.csv"
    with (world / "inbox" / "cdr" / again).open(newline="", encoding="utf-8") as f:
        ids = [r["record_id"] for r in csv.DictReader(f)]
    # the records of the second day's file that the second day took (rated or not rateable)
    taken = set()
    for ds in (lake.RATED_VISITORS, lake.UNRATED_VISITORS):
        for p in lake.files(world / "lake", ds, [second]):
            frame = pl.read_parquet(p, columns=["record_id", "file"])
            taken |= set(frame.filter(pl.col("file") == original)["record_id"].to_list())
    # a record_id repeated inside the file is the reader's (held, as on the second day)
    expected = sorted({i for i in ids if i in taken})
    assert len(expected) > 50
    q = pl.read_parquet(lake.path(world / "lake", lake.CDR_QUARANTINE, third))
    dupes = q.filter(pl.col("reason").str.starts_with(f"duplicate of {original} "))
    assert sorted(dupes["record_id"].to_list()) == expected
    assert set(dupes["file"].to_list()) == {again}
    # every row of the file is accounted for: a duplicate, or held by the reader as on day 2
    assert q.filter(pl.col("file") == again).height == len(ids)
    # none of it was rated on the third day
    for p in lake.files(world / "lake", lake.RATED_VISITORS, [third]):
        assert again not in pl.read_parquet(p, columns=["file"])["file"].to_list()
    cdr_duplicates = len(expected)
    assert manifests[2]["reconciliation"]["duplicate"] >= cdr_duplicates
    assert manifests[1]["reconciliation"]["duplicate"] == 0


def _hand_payable(path: Path) -> int:
    """Σ (Total Charges and Taxes − state − local taxes) of the records that can be paid.

    Positions of ciber.md §4.5-4.8 (72-81, 83-92, 94-103 in 22/32/52); a type-22 record whose
    Air Charge (234-243) is not digits is returned, not paid.
    """
    total = 0
    for line in path.read_bytes().split(b"\r\n"):
        if line[:2] not in (b"22", b"32", b"52"):
            continue
        if line[:2] == b"22" and not line[233:243].isdigit():
            continue
        total += int(line[71:81]) - int(line[82:92]) - int(line[93:103])
    return total


def test_a_copied_ciber_batch_is_paid_once(
    nights: tuple[Path, list[dict[str, Any]], list[int]],
) -> None:
    world, manifests, _ = nights
    third = DAYS[2]
    own = _own(world / "work" / third.isoformat() / "in", third)
    payable = {p["partner"]: p["amount"] for p in manifests[2]["money"]["payable"]}
    # the third day pays the partner's own file only: not the copy, not the reused sequence
    assert payable[COPIED] == _hand_payable(own)
    copy = _copy_name(third)
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT file, accepted, duplicate, returned, rap_file FROM files "
            "WHERE processing_date = ? AND format = 'ciber' ORDER BY file",
            [third],
        ).fetchall()
        outcomes = con.execute(
            "SELECT file, sequence, outcome FROM ciber_batches_in WHERE processing_date = ? "
            "ORDER BY rowid",
            [third],
        ).fetchall()
    finally:
        con.close()
    by_file = {r[0]: r[1:] for r in rows}
    accepted, duplicate, returned, returns = by_file[copy]
    assert (accepted, returned, returns) == (0, 0, None)  # nothing paid, nothing returned
    assert duplicate > 0
    assert [o for f, _, o in outcomes if f == copy] == ["copy", "copy"]
    # the reused sequence: rejected whole, back with reason 08
    reuse = _reuse_name(third)
    r_accepted, _, r_returned, r_returns = by_file[reuse]
    assert r_accepted == 0
    assert r_returned > 0
    assert [o for f, _, o in outcomes if f == reuse] == ["reused"]
    lines = (world / "out" / "ciber_returns" / r_returns).read_bytes().split(b"\r\n")
    assert lines[0][:2] == b"01"
    assert (lines[0][23:24], lines[0][33:35]) == (b"3", b"08")
    assert any("998.dat: batch rejected" in p for p in manifests[2]["problems"])
