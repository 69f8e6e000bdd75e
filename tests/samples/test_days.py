"""A multi-day sample world: ``samples generate --days K``, ``samples deliver``, a night a day."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asn1tools
import duckdb
import polars as pl
import pytest

from clearing.codecs.ciber import decode as decode_ciber
from clearing.names import CiberName, TapName, next_ciber_sequence, next_fsn
from clearing.samples.tap import PARTNERS, build_file, split_events
from clearing.samples.workdir import (
    FATAL_DAY,
    FATAL_PARTNER,
    GAP_DAY,
    GAP_PARTNER,
    RAP_DAY,
    RAP_PARTNER,
    REDELIVERY_DAY,
    SAMPLES,
    generate_world,
    split_world,
    stored_days,
    tariff_day,
)

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
DAYS = [DAY + timedelta(days=k) for k in range(3)]
EVENTS = 300


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A 3-day world, delivered and run night after night; (world, the nights' manifests)."""
    world = tmp_path_factory.mktemp("days") / "w"
    r = _cli(
        "samples", "generate", "--out", str(world), "--events", str(EVENTS),
        "--date", DAY.isoformat(), "--days", "3", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifests = []
    for day in DAYS:
        r = _cli("samples", "deliver", "--workdir", str(world), "--date", day.isoformat())
        assert r.returncode == 0, r.stderr
        r = _cli("nightly", "--workdir", str(world), "--date", day.isoformat(), "--json")
        # the planted CIBER trailer fault of 16425 is rejected every day: a data problem (1)
        assert r.returncode in (0, 1), r.stderr
        last = json.loads(r.stdout.splitlines()[-1])
        assert last["event"] == "manifest"
        run_dir = world / "runs" / last["run_id"]
        manifests.append(json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")))
    return world, manifests


def test_every_night_reconciles(nights: tuple[Path, list[dict[str, Any]]]) -> None:
    _, manifests = nights
    for day, manifest in zip(DAYS, manifests, strict=True):
        rec = manifest["reconciliation"]
        assert rec["difference"] == 0, (day, rec)
        assert rec["in"] > EVENTS // 2
        inputs = [x["path"] for x in manifest["inputs"]]
        # 7 TAP partners and 2 CIBER partners a day, but GAP_PARTNER's second-day file is lost;
        # on the third day FATAL_PARTNER resends its second-day file and RAP_PARTNER sends a RAP
        expected = (
            9 - (day == DAYS[GAP_DAY]) + (day == DAYS[FATAL_DAY + 1]) + (day == DAYS[RAP_DAY])
        )
        assert sum(1 for p in inputs if p.startswith(f"work/{day.isoformat()}/in/")) == expected
        assert all(
            "fsn" not in p and "gap" not in p and "sequence" not in p for p in manifest["problems"]
        ), manifest["problems"]


def test_fsns_run_on_across_days(nights: tuple[Path, list[dict[str, Any]]]) -> None:
    world, _ = nights
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        gaps = con.execute(
            "SELECT processing_date, sender, rule, expected_fsn, gap_start, gap_end "
            "FROM findings WHERE rule LIKE 'fsn.%'"
        ).fetchall()
        missing = con.execute(
            "SELECT processing_date, partner, missing FROM rap_out WHERE missing > 0"
        ).fetchall()
        files = con.execute(
            "SELECT sender, processing_date, file FROM files WHERE file LIKE 'CD%' ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    by_sender: dict[str, list[int]] = {}
    for sender, _, name in files:
        parsed = TapName.parse(name)
        assert parsed is not None
        by_sender.setdefault(sender, []).append(parsed.fsn)
    assert len(by_sender) == 7
    for sender, fsns in by_sender.items():
        if sender == GAP_PARTNER:  # its second-day file never came: one FSN missing
            first, third = fsns
            lost = next_fsn(first)
            assert third == next_fsn(lost)
            continue
        if sender == FATAL_PARTNER:  # its second-day file, rejected as fatal, came again
            assert fsns[FATAL_DAY] == fsns[FATAL_DAY + 1], fsns
            del fsns[FATAL_DAY]
        assert len(fsns) == len(DAYS), sender
        assert all(next_fsn(a) == b for a, b in itertools.pairwise(fsns)), fsns
    # the one gap is reported on the third day, with the lost FSN as its range, and asked for
    # in a MissingReturn of that day's RAP to the partner
    assert gaps == [(DAYS[2], GAP_PARTNER, "fsn.gap", lost, lost, lost)]
    assert missing == [(DAYS[2], GAP_PARTNER, 1)]
    # CIBER: the batch sequence of each SID/BID pair continues from the day before
    sequences: dict[str, list[int]] = {}
    for day in DAYS:
        for path in sorted((world / "work" / day.isoformat() / "in").glob("CIBER_*")):
            name = CiberName.parse(path.name)
            assert name is not None
            batches = decode_ciber(path.read_bytes(), file=path.name).batches
            sequences.setdefault(name.sender, []).extend(
                batches.column("batch_sequence_number").to_pylist()
            )
    assert len(sequences) == 2
    for seqs in sequences.values():
        assert all(next_ciber_sequence(a) == b for a, b in itertools.pairwise(seqs))


def test_subscribers_and_visitors_recur(nights: tuple[Path, list[dict[str, Any]]]) -> None:
    world, _ = nights
    imsis = []
    ids = []
    delivered = sorted(p.name for p in (world / "inbox" / "cdr").glob("CDR_*.csv"))
    assert len(delivered) == len(DAYS) + 1, delivered  # the re-delivered file counts once more
    for day in DAYS:
        csv = next((world / "inbox" / "cdr").glob(f"CDR_*_{day:%Y%m%d}_001.csv"))
        df = pl.read_csv(csv, infer_schema=False)
        imsis.append(set(df["imsi"].to_list()))
        ids.append(set(df["record_id"].to_list()))
    # the same visitors come back, with other records
    assert imsis[0] & imsis[1]
    assert imsis[1] & imsis[2]
    assert not ids[0] & ids[1]
    assert not ids[1] & ids[2]


def test_deliver_is_idempotent_and_refuses_unknown_dates(
    nights: tuple[Path, list[dict[str, Any]]],
) -> None:
    world, _ = nights
    before = _hashes(world / "exchange") | _hashes(world / SAMPLES)
    r = _cli("samples", "deliver", "--workdir", str(world), "--date", DAYS[-1].isoformat())
    assert r.returncode == 0, r.stderr
    # the third day: 7 TAP + FATAL_PARTNER's resent file + 2 CIBER + 2 CDR files + the
    # re-delivered CDR file, RAP_PARTNER's RAP, and the IOT source of the tariff change
    assert len(r.stdout.splitlines()) == 15
    assert (_hashes(world / "exchange") | _hashes(world / SAMPLES)) == before
    # GAP_PARTNER's second-day file was lost on the way: never kept, never delivered
    assert not list((world / SAMPLES / DAYS[1].isoformat()).rglob(f"CD{GAP_PARTNER}*"))
    r = _cli("samples", "deliver", "--workdir", str(world), "--date", "2026-12-01")
    assert r.returncode == 2
    assert "2026-12-01" in r.stderr
    assert all(d.isoformat() in r.stderr for d in DAYS), r.stderr


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = generate_world(tmp_path / "a", day=DAY, events=120, seed=9, days=3)
    b = generate_world(tmp_path / "b", day=DAY, events=120, seed=9, days=3)
    assert stored_days(a.root) == DAYS
    assert _hashes(a.root) == _hashes(b.root)
    # the first day is delivered at once; its kept copy is the same bytes
    for path in [*a.partner_files, *a.cdr_files]:
        kept = a.root / SAMPLES / DAY.isoformat() / path.relative_to(a.root)
        assert kept.read_bytes() == path.read_bytes()
    # the later days are not delivered until asked
    later = DAYS[1].strftime("%Y%m%d")
    assert not list((a.root / "inbox" / "cdr").glob(f"*_{later}_*"))


def test_one_day_is_todays_world(tmp_path: Path) -> None:
    one = generate_world(tmp_path / "one", day=DAY, events=120, seed=9, days=1)
    default = generate_world(tmp_path / "default", day=DAY, events=120, seed=9)
    assert not (one.root / SAMPLES).exists()
    assert _hashes(one.root) == _hashes(default.root)
    r = _cli("samples", "deliver", "--workdir", str(one.root), "--date", DAY.isoformat())
    assert r.returncode == 2
    assert "--days" in r.stderr


def test_a_cdr_file_is_redelivered_under_a_new_name(tmp_path: Path) -> None:
    world = generate_world(tmp_path / "w", day=DAY, events=120, seed=9, days=3)
    second, third = DAYS[1], DAYS[REDELIVERY_DAY]
    cdr = world.root / SAMPLES
    again = cdr / third.isoformat() / "inbox" / "cdr" / f"CDR_HKGCL_{third:%Y%m%d}_003.csv"
    first = cdr / second.isoformat() / "inbox" / "cdr" / f"CDR_HKGCL_{second:%Y%m%d}_001.csv"
    assert again.read_bytes() == first.read_bytes()
    assert len(list((cdr / second.isoformat()).rglob("CDR_*"))) == 2  # only on that day


# ---------------------------------------------------------------------------------------------
# the planted happenings of a world of three days or more (module docstring of workdir)

SPECS = ROOT / "specs" / "asn1"


@pytest.fixture(scope="module")
def tap_rap() -> Any:
    """TAP-0312 and RAP-0105 compiled here, independently of clearing.codecs.asn1."""
    return asn1tools.compile_files(
        [str(SPECS / "RAP-0105.asn"), str(SPECS / "TAP-0312.asn")], "ber"
    )


def _batch(spec: Any, path: Path) -> dict[str, Any]:
    kind, value = spec.decode("DataInterChange", path.read_bytes())
    assert kind == "transferBatch", path
    return dict(value)


def _starts(batch: dict[str, Any]) -> list[datetime]:
    """The local start time of every call event (TD.57: each kind keeps it elsewhere)."""
    out = []
    for kind, body in batch["callEventDetails"]:
        if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
            stamp = body["basicCallInformation"]["callEventStartTimeStamp"]
        elif kind == "gprsCall":
            stamp = body["gprsBasicCallInformation"]["callEventStartTimeStamp"]
        elif kind == "supplServiceEvent":
            stamp = body["supplServiceUsed"]["chargingTimeStamp"]
        else:
            stamp = body["serviceStartTimestamp"]
        out.append(datetime.strptime(stamp["localTimeStamp"].decode(), "%Y%m%d%H%M%S"))
    return out


def _late(spec: Any, root: Path, day: date) -> tuple[int, int]:
    """(late events, events) of the TAP-in files kept for ``day``: late = older than 30 days
    before the day (the files are made available on the day, ~01:00)."""
    late = total = 0
    for path in sorted((root / SAMPLES / day.isoformat()).rglob("CD*")):
        kind, value = spec.decode("DataInterChange", path.read_bytes())
        if kind != "transferBatch":
            continue
        starts = _starts(value)
        total += len(starts)
        limit = datetime(day.year, day.month, day.day) - timedelta(days=30)
        for s in starts:
            if s < limit:
                late += 1
                # 31 to 40 days before the traffic day (the day before)
                assert 31 <= (day - timedelta(days=1) - s.date()).days <= 41, (path, s)
    return late, total


def test_later_days_bring_late_records(tmp_path: Path, tap_rap: Any) -> None:
    world = generate_world(tmp_path / "w", day=DAY, events=600, seed=9, days=3).root
    first = _late(tap_rap, world, DAYS[0])
    assert first[0] == 0  # the first day is the one-day world: nothing late
    late = [_late(tap_rap, world, d) for d in DAYS[1:]]
    n_late, n_all = sum(x for x, _ in late), sum(y for _, y in late)
    # ~4 % of the call events: between 1 % and 8 % of ~600 (sampling)
    assert n_all > 500
    assert 0.01 * n_all < n_late < 0.08 * n_all, (n_late, n_all)
    # a two-day world plants nothing: its second day has no late record
    two = generate_world(tmp_path / "two", day=DAY, events=600, seed=9, days=2).root
    assert _late(tap_rap, two, DAYS[1])[0] == 0
    # … and its files are today's generator's: e.g. FATAL_PARTNER's, clean, no late record
    (kept,) = (two / SAMPLES / DAYS[1].isoformat()).rglob(f"CD{FATAL_PARTNER}*")
    partner = next(p for p in PARTNERS if p.tadig == FATAL_PARTNER)
    events = split_events(split_world(600)[0])[FATAL_PARTNER]
    assert kept.read_bytes() == build_file(partner, events=events, seed=9, day=DAYS[1])[1]


def test_the_fatal_file_and_its_corrected_resend(tmp_path: Path, tap_rap: Any) -> None:
    world = generate_world(tmp_path / "w", day=DAY, events=300, seed=9, days=3).root
    (bad,) = (world / SAMPLES / DAYS[FATAL_DAY].isoformat()).rglob(f"CD{FATAL_PARTNER}*")
    again = (
        world
        / SAMPLES
        / DAYS[FATAL_DAY + 1].isoformat()
        / bad.relative_to(world / SAMPLES / DAYS[FATAL_DAY].isoformat())
    )
    assert again.is_file()  # the same name (same FSN), kept for the day after
    b, g = _batch(tap_rap, bad), _batch(tap_rap, again)
    assert b["batchControlInfo"] == g["batchControlInfo"]
    assert b["callEventDetails"] == g["callEventDetails"]  # the same events …
    # … but the fatal file's total is 100 units more than the corrected one's
    assert b["auditControlInfo"]["totalCharge"] - g["auditControlInfo"]["totalCharge"] == 100
    assert b["auditControlInfo"]["callEventDetailsCount"] == len(b["callEventDetails"])
    # the partner's next file comes the same day, with the next FSN
    fsns = sorted(
        TapName.parse(p.name).fsn  # type: ignore[union-attr]
        for p in (world / SAMPLES / DAYS[FATAL_DAY + 1].isoformat()).rglob(f"CD{FATAL_PARTNER}*")
    )
    assert fsns == [fsns[0], next_fsn(fsns[0])]


def test_the_nights_reject_the_fatal_file_and_accept_it_resent(
    nights: tuple[Path, list[dict[str, Any]]], tap_rap: Any
) -> None:
    world, manifests = nights
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        files = con.execute(
            "SELECT processing_date, file, outcome FROM files WHERE sender = ? ORDER BY ALL",
            [FATAL_PARTNER],
        ).fetchall()
        raps = con.execute(
            "SELECT processing_date, file, rap_fsn, fatal FROM rap_out WHERE partner = ? "
            "ORDER BY ALL",
            [FATAL_PARTNER],
        ).fetchall()
        rap_rules = con.execute(
            "SELECT count(*) FROM findings WHERE rule LIKE 'bci.rap_fsn%' OR rule = 'fsn.reused'"
        ).fetchone()
    finally:
        con.close()
    fatal_day, resend_day = DAYS[FATAL_DAY], DAYS[FATAL_DAY + 1]
    (name,) = {f for d, f, o in files if d == fatal_day}
    assert (fatal_day, name, "fatal") in files
    assert (resend_day, name, "processed") in files  # the same name and FSN, accepted
    assert any(p.endswith(f"{name} rejected (fatal), returned in a RAP") for p in
               manifests[FATAL_DAY]["problems"])  # fmt: skip
    fatal_rap = next(r for r in raps if r[0] == fatal_day)
    assert fatal_rap[3] == 1
    assert rap_rules == (0,)  # the resent FSN neither reused nor without its RAP FSN
    # the resend carries the FSN of our fatal RAP (read by the partner in its folder)
    resent = world / "work" / resend_day.isoformat() / "in" / name
    bci = _batch(tap_rap, resent)["batchControlInfo"]
    assert bci["rapFileSequenceNumber"] == f"{fatal_rap[2]:05d}".encode()
    kind, rap = tap_rap.decode(
        "RapDataInterChange",
        (world / "exchange" / FATAL_PARTNER / "from_hkgcl" / fatal_rap[1]).read_bytes(),
    )
    assert kind == "returnBatch"
    assert rap["rapBatchControlInfoRap"]["rapFileSequenceNumber"] == bci["rapFileSequenceNumber"]
    (detail,) = rap["returnDetails"]
    assert detail[0] == "fatalReturn"
    assert detail[1]["fileSequenceNumber"] == bci["fileSequenceNumber"]


def test_a_partner_returns_events_of_our_tap_out(
    nights: tuple[Path, list[dict[str, Any]]], tap_rap: Any
) -> None:
    world, _ = nights
    (rap_path,) = (world / "exchange" / RAP_PARTNER / "to_hkgcl").glob("RC*")
    assert rap_path.name == f"RC{RAP_PARTNER}HKGCL00001"
    kind, rap = tap_rap.decode("RapDataInterChange", rap_path.read_bytes())
    assert kind == "returnBatch"
    bci = rap["rapBatchControlInfoRap"]
    assert (bci["sender"], bci["recipient"]) == (RAP_PARTNER.encode(), b"HKGCL")
    severe = [d[1] for d in rap["returnDetails"]]
    assert [d[0] for d in rap["returnDetails"]] == ["severeReturn"] * 3
    # the events are those of the first TAP-out we sent the partner (first, middle, last)
    ours = world / "out" / "tap" / f"CDHKGCL{RAP_PARTNER}00001"
    sent = _batch(tap_rap, ours)["callEventDetails"]
    n = len(sent)
    assert [s["callEventDetail"] for s in severe] == [sent[0], sent[n // 2], sent[n - 1]]
    for s in severe:
        assert s["fileSequenceNumber"] == b"00001"
        assert [e["errorCode"] for e in s["errorDetail"]] == [20]  # Charge: range error
    assert rap["rapAuditControlInfo"]["returnDetailsCount"] == 3
    # the night of that day received it: three severe returns to correct
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        got = con.execute(
            "SELECT processing_date, kind, status, count(*) FROM returns_in "
            "WHERE rap_file = ? GROUP BY ALL",
            [rap_path.name],
        ).fetchall()
    finally:
        con.close()
    assert got == [(DAYS[RAP_DAY], "severe", "to_correct", 3)]


def test_the_tariff_change_is_a_new_iot_version(nights: tuple[Path, list[dict[str, Any]]]) -> None:
    world, _ = nights
    change = DAYS[tariff_day(len(DAYS)) or 0]
    assert change == DAYS[2]  # ceil(3/2) + 1 = the third day
    with (world / "rates" / "sources" / "iot.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["partner"] == "GBRG9"]
    sms = [
        (r["price"], r["valid_from"], r["valid_to"])
        for r in rows
        if (r["direction"], r["service"]) == ("inbound", "sms_mo")
    ]
    # 0.014 SDR from the world's start; 0.016 SDR from the day of the change
    assert sms == [("14000", "2025-01-01", ""), ("16000", change.isoformat(), "")]
    # imported: the rates the nights read hold both versions
    iot = pl.read_parquet(world / "rates" / "iot" / "**" / "*.parquet", hive_partitioning=True)
    got = iot.filter(
        (pl.col("partner") == "GBRG9")
        & (pl.col("direction") == "inbound")
        & (pl.col("service") == "sms_mo")
    )
    assert sorted(got["price"].to_list()) == [14000, 16000]


def test_deliver_before_the_nights_notes_what_it_cannot_do(tmp_path: Path) -> None:
    world = generate_world(tmp_path / "w", day=DAY, events=120, seed=9, days=3).root
    r = _cli("samples", "deliver", "--workdir", str(world), "--date", DAYS[2].isoformat())
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2, r.stderr
    assert "rapFileSequenceNumber" in notes[0]
    assert f"{RAP_PARTNER}'s RAP" in notes[1]
    assert not list((world / "exchange" / RAP_PARTNER / "to_hkgcl").glob("RC*"))


def test_five_days_same_seed_same_bytes(tmp_path: Path) -> None:
    a = generate_world(tmp_path / "a", day=DAY, events=200, seed=3, days=5)
    b = generate_world(tmp_path / "b", day=DAY, events=200, seed=3, days=5)
    assert _hashes(a.root) == _hashes(b.root)
    assert len(stored_days(a.root)) == 5
