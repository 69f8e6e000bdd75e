"""The validate stage against history: copies, reused FSNs, gaps, RAP FSNs, duplicates, stops.

Each test builds a work folder, validates one date after another, and checks the findings,
the RAP files (decoded with a RAP-0105 module compiled here, not by the package) and the state.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import asn1tools
import pytest

from clearing.codecs import asn1, fast
from clearing.config import WorkDir
from clearing.returns import validate_and_return
from clearing.samples.tap import PARTNERS, build_file
from clearing.validate.state import State

from ..cli_run import run_cli, run_python

ROOT = Path(__file__).parents[2]
SPECS = ROOT / "specs" / "asn1"
DAY1 = dt.date(2026, 11, 21)
DAY2 = dt.date(2026, 11, 22)
FRA = next(p for p in PARTNERS if p.tadig == "FRAF9")


@cache
def rap_module() -> Any:
    return asn1tools.compile_files(
        [str(SPECS / "RAP-0105.asn"), str(SPECS / "TAP-0312.asn")], "ber"
    )


def world(tmp: Path, **partner: str) -> WorkDir:
    lines = ['[home]\ntadig = "HKGCL"\n']
    for p in PARTNERS:
        lines.append(f"[partners.{p.tadig}]\n")
        if p.tadig in partner:
            lines.append(partner[p.tadig] + "\n")
    (tmp / "clearing.toml").write_text("".join(lines))
    return WorkDir(tmp)


@cache
def day_file(day: dt.date, events: int = 40) -> tuple[str, bytes]:
    return build_file(FRA, events=events, seed=5, day=day)


def put(tmp: Path, folder: str, name: str, data: bytes) -> Path:
    p = tmp / "in" / folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def rules(result: Any, file: str) -> set[str]:
    f = next(f for f in result.files if f.file == file)
    return {x.rule for x in f.findings}


def decode_rap(path: Path) -> dict[str, Any]:
    kind, value = rap_module().decode("RapDataInterChange", path.read_bytes())
    assert kind == "returnBatch"
    assert isinstance(value, dict)
    return value


def renamed(data: bytes, fsn: int) -> tuple[str, bytes]:
    """The same batch under another FSN (header and name), audit intact."""
    _, value = asn1.decode(data).value
    value["batchControlInfo"]["fileSequenceNumber"] = f"{fsn:05d}".encode()
    return f"CDFRAF9HKGCL{fsn:05d}", asn1.encode("tap", ("transferBatch", value))


def test_identical_copy_is_ignored_and_logged(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    validate_and_return(wd, DAY1, [put(tmp_path, "1", name, data)])
    r = validate_and_return(wd, DAY2, [put(tmp_path, "2", name, data)])
    assert r.files[0].outcome == "copy"
    assert r.files[0].findings == []
    assert r.raps == []
    with State(wd.db, read_only=True) as s:
        row = s.con.execute("SELECT count(*) FROM files WHERE outcome = 'copy'").fetchone()
        assert row is not None
        (copies,) = row
        status = s.sequence_status()
    assert copies == 1
    assert status[0]["copies"] == 1


def test_reused_fsn_with_other_content_is_fatal_201(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    validate_and_return(wd, DAY1, [put(tmp_path, "1", name, data)])
    _, other = build_file(FRA, events=41, seed=6, day=DAY1)
    assert other != data
    r = validate_and_return(wd, DAY2, [put(tmp_path, "2", name, other)])
    assert "fsn.reused" in rules(r, name)
    f = next(x for x in r.files[0].findings if x.rule == "fsn.reused")
    assert (f.code, f.severity, f.context) == (201, "fatal", "FileSequenceNumber")
    rap = decode_rap(r.raps[0])
    (detail,) = rap["returnDetails"]
    assert detail[0] == "fatalReturn"
    assert detail[1]["fileSequenceNumber"] == name[-5:].encode()
    # every event of a fatal file is returned: the record identity still balances
    assert r.reconciliation()["returned"] == 41
    assert r.reconciliation()["difference"] == 0


def test_gap_is_a_warning_200_and_a_missing_return(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    fsn = int(name[-5:])
    validate_and_return(wd, DAY1, [put(tmp_path, "1", name, data)])
    name3, data3 = renamed(day_file(DAY2)[1], fsn + 3)
    r = validate_and_return(wd, DAY2, [put(tmp_path, "2", name3, data3)])
    f = next(x for x in r.files[0].findings if x.rule == "fsn.gap")
    assert (f.code, f.severity) == (200, "warning")
    assert r.files[0].outcome == "processed"
    rap = decode_rap(r.raps[0])
    missing = [d[1] for d in rap["returnDetails"] if d[0] == "missingReturn"]
    assert missing == [
        {
            "startMissingSeqNumber": f"{fsn + 1:05d}".encode(),
            "endMissingSeqNumber": f"{fsn + 2:05d}".encode(),
        }
    ]


def test_rap_fsn_expected_after_a_fatal_and_unexpected_without(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    _, value = asn1.decode(data).value
    broken = dict(value)
    broken["auditControlInfo"] = dict(value["auditControlInfo"], totalCharge=1)
    r1 = validate_and_return(
        wd, DAY1, [put(tmp_path, "1", name, asn1.encode("tap", ("transferBatch", broken)))]
    )
    assert r1.files[0].outcome == "fatal"
    # the corrected resubmission without rapFileSequenceNumber: warning 37, not 201
    r2 = validate_and_return(wd, DAY2, [put(tmp_path, "2", name, data)])
    assert rules(r2, name) == {"bci.rap_fsn_expected"}
    assert r2.files[0].outcome == "processed"
    # a next file carrying a RAP FSN although nothing was rejected: warning 40
    nxt = dict(asn1.decode(day_file(DAY2)[1]).value[1])
    nxt["batchControlInfo"] = dict(nxt["batchControlInfo"], rapFileSequenceNumber=b"00001")
    nxt["batchControlInfo"]["fileSequenceNumber"] = f"{int(name[-5:]) + 1:05d}".encode()
    n2 = f"CDFRAF9HKGCL{int(name[-5:]) + 1:05d}"
    r3 = validate_and_return(
        wd,
        DAY2 + dt.timedelta(1),
        [put(tmp_path, "3", n2, asn1.encode("tap", ("transferBatch", nxt)))],
    )
    assert rules(r3, n2) == {"bci.rap_fsn_unexpected"}


def test_duplicate_across_files_is_returned_with_its_bytes(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    validate_and_return(wd, DAY1, [put(tmp_path, "1", name, data)])
    # day 2's file carries event 3 of day 1 again (audit totals fixed to match)
    _, v1 = asn1.decode(data).value
    n2, d2 = day_file(DAY2)
    _, v2 = asn1.decode(d2).value
    dup = v1["callEventDetails"][3]
    v2["callEventDetails"].append(dup)
    batch = fast.decode_tap(asn1.encode("tap", ("transferBatch", v2)))
    ev = batch.events
    aci = v2["auditControlInfo"]
    i = ev.num_rows - 1
    aci["callEventDetailsCount"] += 1
    aci["totalCharge"] += (ev.column("charge")[i].as_py() or 0) + (
        ev.column("camel_fee")[i].as_py() or 0
    )
    aci["totalTaxValue"] += ev.column("tax")[i].as_py() or 0
    aci["totalDiscountValue"] += ev.column("discount")[i].as_py() or 0
    d2 = asn1.encode("tap", ("transferBatch", v2))
    r = validate_and_return(wd, DAY2, [put(tmp_path, "2", n2, d2)])
    (f,) = [x for x in r.files[0].findings if x.severity != "warning"]
    assert (f.rule, f.event_index, f.severity) == ("event.duplicate", i, "severe")
    assert r.files[0].counts()["duplicate"] == 1
    assert r.files[0].counts()["accepted"] == i
    rap = decode_rap(r.raps[0])
    (severe,) = [d[1] for d in rap["returnDetails"] if d[0] == "severeReturn"]
    assert severe["fileSequenceNumber"] == n2[-5:].encode()
    # the event echoed as received: its bytes are in the RAP file unchanged
    off = ev.column("byte_offset")[i].as_py()
    raw = d2[off : off + ev.column("byte_length")[i].as_py()]
    assert raw in r.raps[0].read_bytes()
    # once its rows are in the lake, the file keeps only what its RAP echoes (memory: the
    # day's files would otherwise stay whole until the returns are written)
    assert r.files[0].checked.data == raw
    assert r.files[0].checked.events.column("event_index").to_pylist() == [i]


def test_duplicate_within_one_file(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    _, v = asn1.decode(data).value
    v["callEventDetails"].append(v["callEventDetails"][0])
    ev = fast.decode_tap(asn1.encode("tap", ("transferBatch", v))).events
    aci = v["auditControlInfo"]
    aci["callEventDetailsCount"] += 1
    aci["totalCharge"] += (ev.column("charge")[0].as_py() or 0) + (
        ev.column("camel_fee")[0].as_py() or 0
    )
    aci["totalTaxValue"] += ev.column("tax")[0].as_py() or 0
    aci["totalDiscountValue"] += ev.column("discount")[0].as_py() or 0
    r = validate_and_return(
        wd, DAY1, [put(tmp_path, "1", name, asn1.encode("tap", ("transferBatch", v)))]
    )
    bad = [(x.rule, x.event_index) for x in r.files[0].findings if x.severity != "warning"]
    assert bad == [("event.duplicate", ev.num_rows - 1)]


def test_silent_partner_gets_one_stop_return(tmp_path: Path) -> None:
    wd = world(tmp_path, FRAF9="silent_days = 3")
    name, data = day_file(DAY1)
    validate_and_return(wd, DAY1, [put(tmp_path, "1", name, data)])
    quiet = validate_and_return(wd, DAY1 + dt.timedelta(3), [])
    assert quiet.raps == []
    late = validate_and_return(wd, DAY1 + dt.timedelta(4), [])
    (path,) = late.raps
    rap = decode_rap(path)
    assert rap["returnDetails"] == [("stopReturn", {"lastSeqNumber": name[-5:].encode()})]
    again = validate_and_return(wd, DAY1 + dt.timedelta(5), [])
    assert again.raps == []


def test_rerun_gives_same_findings_and_rap_bytes(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    _, value = asn1.decode(data).value
    value["auditControlInfo"]["totalCharge"] += 7
    bad = asn1.encode("tap", ("transferBatch", value))
    inputs = [put(tmp_path, "1", name, bad)]
    a = validate_and_return(wd, DAY1, inputs)
    first = {p.name: p.read_bytes() for p in a.raps}
    b = validate_and_return(wd, DAY1, inputs)
    assert {p.name: p.read_bytes() for p in b.raps} == first
    assert [f.findings for f in a.files] == [f.findings for f in b.files]
    with State(wd.db, read_only=True) as s:
        files_row = s.con.execute("SELECT count(*) FROM files").fetchone()
        raps_row = s.con.execute("SELECT count(*) FROM rap_out").fetchone()
    assert files_row is not None
    assert raps_row is not None
    (n,), (raps,) = files_row, raps_row
    assert (n, raps) == (1, 1)


def test_cli_validate_json_contract_and_rap_dir(tmp_path: Path) -> None:
    name, data = day_file(DAY1)
    _, value = asn1.decode(data).value
    i = next(
        n
        for n, (kind, _e) in enumerate(value["callEventDetails"])
        if kind == "mobileOriginatedCall"
    )
    value["callEventDetails"][i][1]["basicCallInformation"]["chargeableSubscriber"] = (
        "simChargeableSubscriber",
        {},
    )
    path = tmp_path / name
    path.write_bytes(asn1.encode("tap", ("transferBatch", value)))
    done = run_cli("validate", str(path), "--json", "--rap-dir", str(tmp_path / "rap"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["fatal"] is False
    (f,) = out["findings"]
    assert (f["severity"], f["code"], f["context"], f["event_index"]) == (
        "severe",
        30,
        "GsmChargeableSubscriber",
        i,
    )
    assert isinstance(f["message"], str)
    (rap,) = (tmp_path / "rap").iterdir()
    assert rap.name == f"RCHKGCLFRAF9{1:05d}"
    file_says = subprocess.run(["file", "-b", str(rap)], capture_output=True, text=True)
    assert "RAP" in file_says.stdout


def test_cli_seq_status_and_rap_ack(tmp_path: Path) -> None:
    wd = world(tmp_path)
    name, data = day_file(DAY1)
    _, value = asn1.decode(data).value
    value["auditControlInfo"]["callEventDetailsCount"] += 1
    r = validate_and_return(
        wd, DAY1, [put(tmp_path, "1", name, asn1.encode("tap", ("transferBatch", value)))]
    )
    (rap,) = r.raps
    status = json.loads(run_cli("seq", "status", "-w", str(tmp_path), "--json").stdout)
    (row,) = status
    assert (row["sender"], row["last_fsn"], row["fatal"], row["acks_owed"]) == (
        "FRAF9",
        name[-5:],
        1,
        1,
    )
    # the partner acknowledges our RAP: we play the partner with `rap ack` on our own RAP
    partner_side = tmp_path / "partner"
    done = run_cli("rap", "ack", str(rap), "--out", str(partner_side))
    assert done.returncode == 0, done.stderr
    (ack,) = partner_side.iterdir()
    assert ack.name == "ACFRAF9HKGCL00001"
    kind, value = rap_module().decode("RapDataInterChange", ack.read_bytes())
    assert kind == "acknowledgement"
    assert (value["sender"], value["recipient"], value["rapFileSequenceNumber"]) == (
        b"FRAF9",
        b"HKGCL",
        b"00001",
    )
    done = run_cli("rap", "ack", str(ack), "-w", str(tmp_path), "--date", "2026-11-22")
    assert done.returncode == 0, done.stderr
    status = json.loads(run_cli("seq", "status", "-w", str(tmp_path), "--json").stdout)
    assert status[0]["acks_owed"] == 0


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01\x02", b"\x61\x85\xff"])
def test_cli_validate_garbage_is_a_fatal_finding_not_a_crash(
    tmp_path: Path, garbage: bytes
) -> None:
    path = tmp_path / "CDFRAF9HKGCL00001"
    path.write_bytes(garbage)
    done = run_cli("validate", str(path), "--json")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["fatal"] is True
    assert [f["context"] for f in out["findings"]] == ["TransferBatch"]


@pytest.mark.parametrize(("memory_mb", "parallel"), [(256, False), (4096, True)])
def test_file_checks_go_to_workers_only_when_the_files_in_flight_fit_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_mb: int, parallel: bool
) -> None:
    """Two workers hold up to five 7 MB files at about 4× their size: 140 MB.

    That is more than half of a 256 MB budget (the files are checked here, one at a time,
    nothing decoded ahead) and well inside half of 4 096 MB (the workers check them).
    """
    from clearing.validate import stage

    monkeypatch.setenv("CLEARING_WORKERS", "2")
    monkeypatch.setenv("CLEARING_PARALLEL_MIN_MB", "0")
    (tmp_path / "clearing.toml").write_text(
        f'[home]\ntadig = "HKGCL"\n[performance]\nmemory_mb = {memory_mb}\n'
    )
    settings = WorkDir(tmp_path).settings()
    files = [put(tmp_path, "in", f"CDFRAF9HKGCL0000{i}", b"\x00" * (7 << 20)) for i in (1, 2)]
    got = list(stage._checked(files, settings))
    assert len(got) == 2
    if parallel:
        assert [c.file if c else None for c in got] == [f.name for f in files]
    else:
        assert got == [None, None]


def _with_close_copy(data: bytes, of: int) -> tuple[bytes, int]:
    """``data`` with a copy of event ``of`` appended, one second longer (audit totals fixed).

    Same card, kind and start, another hard key (the duration): close, not the same.
    """
    _, v = asn1.decode(data).value
    event = (v["callEventDetails"][of][0], {**v["callEventDetails"][of][1]})
    event[1]["basicCallInformation"] = {
        **event[1]["basicCallInformation"],
        "totalCallEventDuration": event[1]["basicCallInformation"]["totalCallEventDuration"] + 1,
    }
    v["callEventDetails"].append(event)
    ev = fast.decode_tap(asn1.encode("tap", ("transferBatch", v))).events
    aci = v["auditControlInfo"]
    aci["callEventDetailsCount"] += 1
    aci["totalCharge"] += (ev.column("charge")[of].as_py() or 0) + (
        ev.column("camel_fee")[of].as_py() or 0
    )
    aci["totalTaxValue"] += ev.column("tax")[of].as_py() or 0
    aci["totalDiscountValue"] += ev.column("discount")[of].as_py() or 0
    return asn1.encode("tap", ("transferBatch", v)), ev.num_rows - 1


def test_a_close_event_is_a_suspect_warning_in_the_lake_and_accepted(tmp_path: Path) -> None:
    """A soft duplicate: a warning (kept as a table of findings), the event accepted.

    Event 2 of the day's file is an MOC; its copy one second longer is event 40. The finding
    is in the lake's findings, the register and the file's report, with the RAP ErrorContext
    of event 40 (MobileOriginatedCall is APPLICATION 9: occurrence 41 at level 3).
    """
    import pyarrow.parquet as pq

    wd = world(tmp_path)
    name, data = day_file(DAY1)
    close, i = _with_close_copy(data, 2)
    r = validate_and_return(wd, DAY1, [put(tmp_path, "1", name, close)])
    f = r.files[0]
    assert f.counts()["accepted"] == i + 1  # every event, the suspect too
    assert r.raps == []
    lake = pq.read_table(tmp_path / "lake" / "findings" / f"date={DAY1}")
    (row,) = [x for x in lake.to_pylist() if x["rule"] == "event.duplicate_suspect"]
    assert (row["event_index"], row["severity"], row["file"]) == (i, "warning", name)
    assert row["message"] == "close to event 2 earlier in this file (±2 s)"
    assert {"item_id": 9, "occurrence": i + 1, "level": 3} in row["path"]
    (said,) = [x for x in f.summary()["findings"] if x["rule"] == "event.duplicate_suspect"]
    assert (said["event_index"], said["message"]) == (i, row["message"])
    with State(wd.db, read_only=True) as s:
        got = s.con.execute(
            "SELECT event_index, message FROM findings WHERE rule = 'event.duplicate_suspect'"
        ).fetchall()
    assert got == [(i, row["message"])]


def test_a_day_s_suspects_go_to_the_register_and_lake_file_by_file_and_wait_on_disk(
    tmp_path: Path,
) -> None:
    """Two files with a suspect each: the register and the lake get both files' findings, in
    the files' order, the reports list them; the suspects are not held in Arrow's memory
    after the stage (mapped from a file since removed) and nothing is left under ``tmp/``.

    (A dense day has 1.5M suspects: held, and then all the day's findings made into one
    table at the end of the stage, they took a gigabyte of the 10M night's peak.)
    """
    import pyarrow.parquet as pq

    wd = world(tmp_path)
    de = next(p for p in PARTNERS if p.tadig == "DEUD9")
    name1, data1 = day_file(DAY1)
    name2, data2 = build_file(de, events=30, seed=6, day=DAY1)
    close1, i1 = _with_close_copy(data1, 2)
    close2, i2 = _with_close_copy(data2, 5)
    paths = [put(tmp_path, "1", name1, close1), put(tmp_path, "1", name2, close2)]
    r = validate_and_return(wd, DAY1, paths)
    assert [f.file for f in r.files] == sorted([name1, name2])
    want = {name1: (i1, 2), name2: (i2, 5)}
    for f in r.files:
        i, of = want[f.file]
        (said,) = [x for x in f.summary()["findings"] if x["rule"] == "event.duplicate_suspect"]
        assert (said["event_index"], said["message"]) == (
            i,
            f"close to event {of} earlier in this file (±2 s)",
        )
        # read from the mapped file: none of its buffers is Arrow's own (writable) memory
        assert f.bulk is not None
        buffers = [b for col in f.bulk.columns for c in col.chunks for b in c.buffers() if b]
        assert buffers
        assert not any(b.is_mutable for b in buffers)
    lake = pq.read_table(tmp_path / "lake" / "findings" / f"date={DAY1}")
    columns = ["file", "event_index", "rule", "severity", "message"]
    lake_rows = [tuple(x[c] for c in columns) for x in lake.select(columns).to_pylist()]
    with State(wd.db, read_only=True) as s:
        register = s.con.execute(f"SELECT {', '.join(columns)} FROM findings").fetchall()
    assert register == lake_rows
    suspects = [(x[0], x[1]) for x in lake_rows if x[2] == "event.duplicate_suspect"]
    assert suspects == sorted((name, i) for name, (i, _) in want.items())
    # every file's findings before the next file's, in the files' order
    files = [x[0] for x in lake_rows]
    assert files == sorted(files, key=[f.file for f in r.files].index)
    assert not [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()]


def test_a_suspect_made_severe_by_an_override_is_returned(tmp_path: Path) -> None:
    wd = world(tmp_path, FRAF9='rules = { "event.duplicate_suspect" = "severe" }')
    name, data = day_file(DAY1)
    close, i = _with_close_copy(data, 2)
    r = validate_and_return(wd, DAY1, [put(tmp_path, "1", name, close)])
    bad = [(x.rule, x.event_index) for x in r.files[0].findings if x.severity == "severe"]
    assert bad == [("event.duplicate_suspect", i)]
    assert r.files[0].counts()["returned"] == 1
    assert len(r.raps) == 1


_KILL_AFTER_FINDINGS = """
import os, signal, sys
from datetime import date
from pathlib import Path
from clearing.config import WorkDir
from clearing.returns import validate_and_return
from clearing.validate import stage
original = stage._DayFindings.add
calls = []
def dying(self, table):
    original(self, table)
    calls.append(1)
    if len(calls) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real kill -9
stage._DayFindings.add = dying
root = Path(sys.argv[1])
paths = [Path(p) for p in sys.argv[4:]]
validate_and_return(WorkDir(root), date.fromisoformat(sys.argv[2]), paths)
"""


def test_a_validate_killed_after_some_files_findings_then_run_again_ends_as_one_run(
    tmp_path: Path,
) -> None:
    """``kill -9`` once two of three files' findings are in the register (and the first
    rows in the findings' stream under ``tmp/``): the date validated again has each file's
    findings once, the lake's findings file the same rows, the same counts (no event of the
    killed run's files taken for a duplicate of itself) and nothing left under ``tmp/``."""
    import pyarrow.parquet as pq

    files = []
    for tadig, seed, of in (("FRAF9", 5, 2), ("DEUD9", 6, 5), ("GBRG9", 7, 5)):
        partner = next(p for p in PARTNERS if p.tadig == tadig)
        name, data = build_file(partner, events=30, seed=seed, day=DAY1)
        files.append((name, _with_close_copy(data, of)[0]))
    columns = "file, event_index, rule, severity, message"
    got = {}
    for run in ("reference", "killed"):
        root = tmp_path / run
        root.mkdir()
        wd = world(root)
        paths = [put(root, "1", name, data) for name, data in files]
        if run == "killed":
            killed = run_python(
                _KILL_AFTER_FINDINGS, str(root), DAY1.isoformat(), "2", *map(str, paths)
            )
            assert killed.returncode == -9, killed.stderr
            with State(wd.db, read_only=True) as s:
                half = s.con.execute("SELECT DISTINCT file FROM findings").fetchall()
            assert len(half) == 2  # the premise: two files' findings were in the register
        r = validate_and_return(wd, DAY1, paths)
        with State(wd.db, read_only=True) as s:
            register = s.con.execute(f"SELECT {columns} FROM findings ORDER BY ALL").fetchall()
        lake = pq.read_table(root / "lake" / "findings" / f"date={DAY1}")
        lake_rows = sorted(tuple(x.values()) for x in lake.select(columns.split(", ")).to_pylist())
        assert register == lake_rows
        assert not [p for p in (root / "tmp").rglob("*") if p.is_file()]
        got[run] = (register, [(f.file, f.counts()) for f in r.files])
    assert got["killed"] == got["reference"]
    register, counts = got["reference"]
    assert [c["in"] for _, c in counts] == [31, 31, 31]
    suspects = [x[:2] for x in register if x[2] == "event.duplicate_suspect"]
    assert len(suspects) == 3
