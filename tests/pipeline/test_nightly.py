"""`clearing nightly` on a generated world, as cron or an operator runs it.

Expected figures come from the world itself (what the generator wrote: TAP events, CIBER
records, CDR rows), from the files on disk, or from a second, uninterrupted run — never from
the run under test.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

from clearing.codecs.ciber import decode as decode_ciber
from clearing.errors import ConfigError
from clearing.identity import STATUSES
from clearing.ingest import claim_inputs
from clearing.pipeline import NightlyOptions, run_backfill, run_nightly
from clearing.pipeline.lock import LOCK_NAME

from ..worlds import unreachable
from .conftest import DAY, ROOT, snapshot, state

if TYPE_CHECKING:
    from clearing.samples.workdir import World

    from .conftest import Cli

STAGES_OK = {"collect", "claim", "validate", "receive", "rate", "retail", "outbox", "send"}


def _usage_records(world: World) -> tuple[int, int, int]:
    """(TAP events, CIBER records, CDR rows) the generator wrote, counted from its files."""
    ciber = 0
    for p in world.partner_files:
        if p.name.startswith("CIBER_"):
            ciber += decode_ciber(p.read_bytes(), file=p.name).events.num_rows
    csv_file, parquet_file = world.cdr_files
    rows = csv_file.read_text(encoding="utf-8").count("\n") - 1
    rows += pq.ParquetFile(parquet_file).metadata.num_rows
    return world.tap_events, ciber, rows


def test_nightly_cli_runs_the_whole_day(world: Path, world_source: World, clearing: Cli) -> None:
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json")
    # the world has a planted CIBER batch fault (a partner's trailer total is off by $1):
    # that batch is rejected → a data problem, exit code 1; everything else is processed
    assert r.returncode == 1, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    ends = {x["stage"]: x for x in lines if x["event"] == "stage_end"}
    # retail is a `warning` when a prepaid card of the world falls to a low-balance level
    assert {k for k, v in ends.items() if v["status"] in ("ok", "warning")} >= STAGES_OK
    assert {k for k, v in ends.items() if v["status"] == "warning"} <= {"retail"}
    manifest_line = lines[-1]
    assert manifest_line["event"] == "manifest"
    run_dir = world / "runs" / manifest_line["run_id"]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "data"  # the severity word of exit code 1
    assert manifest["exit_code"] == 1
    assert any("16425" in p and "batch rejected" in p for p in manifest["problems"])
    # low prepaid balances are warnings: listed apart, never among the exit code's problems
    warned = ends["retail"]["status"] == "warning"
    assert warned == bool(manifest.get("warnings"))
    assert all(w.startswith("retail: prepaid card ") for w in manifest.get("warnings", []))
    assert not any(p.startswith("retail: prepaid card ") for p in manifest["problems"])

    # reconciliation: in = everything the generator wrote, and nothing lost
    tap, ciber, cdrs = _usage_records(world_source)
    rec = manifest["reconciliation"]
    assert rec["in"] == tap + ciber + cdrs
    assert rec["difference"] == 0
    assert rec["in"] == sum(rec[k] for k in STATUSES)
    # the CDR export plants 3 bad rows and 1 visitor of no partner: held, not lost
    assert rec["quarantined"] == 4

    # every input and output is listed with the SHA-256 of the bytes on disk
    listed = {x["path"]: x for x in manifest["inputs"] + manifest["outputs"]}
    for rel, entry in listed.items():
        path = world / rel
        assert path.stat().st_size == entry["bytes"]
        assert snapshot_one(path) == entry["sha256"]
    assert sum(1 for x in manifest["inputs"] if x["path"].startswith("work/2026-11-22/in/")) == 9
    tap_out = [x for x in manifest["outputs"] if x["path"].startswith("out/tap/CD")]
    # one TransferBatch per GSM partner with visitors, a Notification for SGPS9 (no visitors)
    gsm = ["CHEC9", "DEUD9", "FRAF9", "GBRG9", "JPNJ9", "SGPS9", "USAU9"]
    assert sorted(Path(x["path"]).name for x in tap_out) == [f"CDHKGCL{p}00001" for p in gsm]
    assert all(s["seconds"] >= 0 for s in manifest["stages"])

    # partners' files were collected and claimed; ours were sent to their exchange folders
    assert not any((world / "inbox").glob("CD*"))
    for entry in tap_out:
        name = Path(entry["path"]).name
        partner = name[7:12]
        sent = world / "exchange" / partner / "from_hkgcl" / name
        assert sent.read_bytes() == (world / entry["path"]).read_bytes()
    rap_or_return = [
        x for x in manifest["outputs"] if x["path"].startswith(("out/rap/", "out/ciber_returns/"))
    ]
    assert rap_or_return  # the rejected CIBER batch goes back to its partner
    for entry in rap_or_return:
        name = Path(entry["path"]).name
        partner = name.split("_")[2] if name.startswith("CIBER_") else name[7:12]
        assert (world / "exchange" / partner / "from_hkgcl" / name).is_file()


def snapshot_one(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_rerun_gives_the_same_bytes_and_state(world: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(world, twin)
    opts = NightlyOptions(settle=False)
    first = run_nightly(world, DAY, options=opts)
    run_nightly(twin, DAY, options=opts)
    again = run_nightly(twin, DAY, options=opts)
    assert first.reconciliation == again.reconciliation
    assert snapshot(world) == snapshot(twin)
    assert state(world) == state(twin)
    # the second run of twin had nothing new to fetch and nothing due to send
    stages = {s["name"]: s for s in again.manifest()["stages"]}
    assert stages["collect"]["detail"]["fetched"] == 0
    assert stages["send"]["detail"]["sent"] == 0


def _run_and_kill(world: Path, stage: str) -> None:
    """Start `clearing nightly --json`, SIGKILL it once ``stage`` has started."""
    args = ["nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json", "--no-send"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearing.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "stage_start" and event["stage"] == stage:
            time.sleep(0.05)  # inside the stage
            break
    else:
        pytest.fail(f"the run ended before stage {stage}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage", ["claim", "validate", "rate", "retail", "outbox"])
def test_killed_then_rerun_ends_like_an_uninterrupted_run(
    world: Path, tmp_path: Path, stage: str
) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(world, reference)
    opts = NightlyOptions(send=False, settle=False)
    run_nightly(reference, DAY, options=opts)

    _run_and_kill(world, stage)
    killed = sorted((world / "runs").iterdir())[-1]
    manifest = json.loads((killed / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "running"  # the killed run says where it stopped
    rerun = run_nightly(world, DAY, options=opts)
    assert rerun.reconciliation is not None
    assert rerun.reconciliation["difference"] == 0
    assert snapshot(world) == snapshot(reference)
    assert state(world) == state(reference)


def test_one_run_at_a_time(world: Path, clearing: Cli) -> None:
    fd = os.open(world / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"nightly 2026-11-22 (pid 4242, since 2026-11-23T02:00:00Z)\n")
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat())
    finally:
        os.close(fd)
    assert r.returncode == 2
    assert "busy" in r.stderr
    assert "pid 4242" in r.stderr
    assert not (world / "runs").exists()  # nothing was started


def test_no_config_is_exit_2(tmp_path: Path, clearing: Cli) -> None:
    r = clearing("nightly", "--workdir", str(tmp_path), "--date", DAY.isoformat())
    assert r.returncode == 2
    assert "clearing.toml" in r.stderr
    r = clearing("nightly", "--workdir", str(tmp_path), "--date", "22.11.2026")
    assert r.returncode == 2


def test_an_unreachable_partner_is_exit_3_and_the_rest_is_done(world: Path, clearing: Cli) -> None:
    unreachable(world, "GBRG9")
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat(), "--json")
    assert r.returncode == 3, r.stderr
    manifest = json.loads(r.stdout.splitlines()[-1])
    assert any(p.startswith("collect: GBRG9") for p in manifest["problems"])
    assert any(p.startswith("send: ") and "GBRG9" in p for p in manifest["problems"])
    inputs = sorted(p.name for p in (world / "work" / "2026-11-22" / "in").iterdir())
    assert len(inputs) == 8  # every other partner's file was collected and processed
    assert not any("GBRG9" in n for n in inputs)
    # the GBRG9 TAP-out stays due for the next `clearing send`
    r = clearing("transport", "status", "--workdir", str(world))
    gb = [x.split("\t") for x in r.stdout.splitlines() if "\tGBRG9\t" in x]
    assert gb
    assert all(x[3] == "failed" for x in gb)


def test_claim_moves_inbox_files_once_and_finishes_a_killed_claim(world: Path) -> None:
    from clearing.config import WorkDir

    wd = WorkDir(world)
    inbox = world / "inbox"
    for p in (world / "exchange").glob("*/to_hkgcl/*"):
        shutil.copy2(p, inbox / p.name)
    names = sorted(p.name for p in inbox.iterdir() if p.is_file())
    # a claim killed after moving two files
    partial = world / "work" / "2026-11-22" / "in.partial"
    partial.mkdir(parents=True)
    for name in names[:2]:
        (inbox / name).replace(partial / name)
    claimed = claim_inputs(wd, DAY)
    assert sorted(p.name for p in claimed) == names
    assert not partial.exists()
    assert not any(p.is_file() for p in inbox.iterdir())
    assert (inbox / "cdr").is_dir()  # our mediation export is not a partner file
    # a later date finds nothing waiting; the first date keeps its files
    from datetime import timedelta

    assert claim_inputs(wd, DAY + timedelta(days=1)) == []
    assert [p.name for p in claim_inputs(wd, DAY)] == names


def test_backfill_dry_run_then_two_days(world: Path, clearing: Cli) -> None:
    from clearing import config

    # the partners' files are already in the inbox (no collect in a backfill)
    assert config.load(world).transport.partners
    for p in (world / "exchange").glob("*/to_hkgcl/*"):
        shutil.copy2(p, world / "inbox" / p.name)
    r = clearing(
        "backfill",
        "--workdir",
        str(world),
        "--from",
        "2026-11-22",
        "--to",
        "2026-11-23",
        "--dry-run",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2026-11-22: first run: would claim 9 file(s) waiting in inbox/; 2 CDR file(s)",
        "2026-11-23: first run: no partner files (inbox claimed by an earlier date); 0 CDR file(s)",
    ]
    assert not (world / "runs").exists()
    runs = run_backfill(world, DAY, DAY.replace(day=23), send=False)
    assert [r.label for r in runs] == ["2026-11-22", "2026-11-23"]
    assert [r.kind for r in runs] == ["backfill", "backfill"]
    assert runs[0].reconciliation is not None
    assert runs[0].reconciliation["in"] > 0
    assert runs[1].reconciliation is not None
    assert runs[1].reconciliation["in"] == 0
    r = clearing("backfill", "--workdir", str(world), "--from", "2026-11-23", "--to", "2026-11-22")
    assert r.returncode == 2
    assert "before" in r.stderr


def test_monthly_after_nightly_on_a_generated_world(world: Path, clearing: Cli) -> None:
    r = clearing("nightly", "--workdir", str(world), "--date", DAY.isoformat())
    assert r.returncode == 1, r.stderr  # the planted CIBER batch fault
    r = clearing("monthly", "--workdir", str(world), "--period", "2026-11", "--json")
    assert r.returncode == 0, r.stderr
    manifest = json.loads(r.stdout.splitlines()[-1])
    stages = {s["name"]: s for s in manifest["stages"]}
    assert stages["rerate"]["status"] == "ok"
    # same tariffs → nothing to re-price; every rated row of the month was looked at
    rated = sum(  # rated and unrated visitor rows (an unrated row may price now)
        pq.ParquetFile(p).metadata.num_rows
        for table in ("rated_visitors", "unrated_visitors")
        for p in (world / "lake" / table).rglob("*.parquet")
    )
    assert stages["rerate"]["detail"]["receivable_rows"] == rated
    assert stages["rerate"]["detail"]["changed_rows"] == 0
    book = world / manifest["monthly_workbook"]
    assert book.is_file()
    first = book.read_bytes()
    r = clearing("monthly", "--workdir", str(world), "--period", "2026-11")
    assert r.returncode == 0, r.stderr
    assert book.read_bytes() == first  # an issued workbook is never overwritten
    r = clearing("monthly", "--workdir", str(world), "--period", "11/2026")
    assert r.returncode == 2


def test_parallel_file_checks_give_the_same_result_as_serial(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clearing.validate import stage

    twin = tmp_path / "twin"
    shutil.copytree(world, twin)
    opts = NightlyOptions(send=False, settle=False)
    monkeypatch.setenv("CLEARING_WORKERS", "1")
    run_nightly(world, DAY, options=opts)
    monkeypatch.setenv("CLEARING_WORKERS", "2")
    monkeypatch.setenv("CLEARING_PARALLEL_MIN_MB", "0")
    calls: list[str] = []
    monkeypatch.setattr(stage, "check_tap", lambda data, file, settings: calls.append(file))
    run_nightly(twin, DAY, options=opts)
    assert not calls  # the file checks ran in the worker processes, not here
    assert snapshot(world) == snapshot(twin)
    assert state(world) == state(twin)
    monkeypatch.setenv("CLEARING_WORKERS", "two")
    with pytest.raises(ConfigError, match="CLEARING_WORKERS"):
        stage.workers()


def test_the_stage_verbs_one_by_one_deliver_what_the_nightly_delivers(
    world: Path, tmp_path: Path, clearing: Cli
) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(world, twin)
    w, d = ["--workdir", str(world)], ["--date", DAY.isoformat()]
    codes = {}
    for verb in (["collect"], ["validate"], ["receive"], ["rate"], ["retail"], ["outbox"]):
        codes[verb[0]] = clearing(*verb, *w, *d).returncode if verb != ["collect"] else None
        if verb == ["collect"]:
            codes["collect"] = clearing("collect", *w).returncode
    codes["send"] = clearing("send", *w).returncode
    codes["settle"] = clearing("settle", "daily", *w, *d).returncode
    # validate exits 1: the planted CIBER batch fault; everything else went through
    assert codes == {
        "collect": 0,
        "validate": 1,
        "receive": 0,
        "rate": 0,
        "retail": 0,
        "outbox": 0,
        "send": 0,
        "settle": 0,
    }
    r = clearing("nightly", "--workdir", str(twin), *d)
    assert r.returncode == 1, r.stderr
    # the daily workbook lists when each file was fetched and sent: real times, which differ
    # between the two folders; everything else is byte for byte the same
    a, b = snapshot(world), snapshot(twin)
    book = "out/settlement/daily/settlement_daily_HKGCL_2026-11-22.xlsx"
    assert a.pop(book)
    assert b.pop(book)
    assert a == b
    assert state(world) == state(twin)


def test_a_crash_exits_4_not_1() -> None:
    code = (
        "import clearing.cli as c\n"
        "@c.app.command('boom')\n"
        "def boom() -> None:\n"
        "    raise ZeroDivisionError('a bug')\n"
        "c.main(['boom'])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 4
    assert "ZeroDivisionError: a bug" in r.stderr
    assert "internal error" in r.stderr


def test_the_nightly_reads_its_config_once(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # every stage takes the settings from the run's context: clearing.toml is parsed once per
    # night (it was parsed about eight times before the stage contract)
    import clearing.config

    parsed: list[str] = []
    real = clearing.config.parse

    def counting(
        text: str, *, source: str = clearing.config.CONFIG_NAME
    ) -> clearing.config.Settings:
        parsed.append(source)
        return real(text, source=source)

    monkeypatch.setattr(clearing.config, "parse", counting)
    run = run_nightly(world, DAY, options=NightlyOptions(send=False))
    assert run.reconciliation is not None
    assert run.reconciliation["difference"] == 0
    assert len(parsed) == 1
