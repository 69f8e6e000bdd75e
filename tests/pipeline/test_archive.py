"""``clearing archive``: old partitions and inputs into a compressed archive, nothing lost.

A four-night sample world (2026-10-30 … 2026-11-02, a duplicate window of one day, no dispute
period): the last processing date is 2026-11-02, so the nights from there look back to
2026-11-01 and ``--before 2026-11-01`` is the latest allowed. What the lake held is read here
with DuckDB straight from the lake's files before archiving, and compared with what DuckDB reads
from the archive after. A later night (2026-11-03) gets two of FRAF9's files again under new
FSNs: the one accepted on 2026-11-02 (inside the window) comes back as duplicates, the one
accepted on 2026-10-30 (archived, outside the window) does not. A real ``kill -9`` in the
middle of an archive run, then a run again: every row once. The settlement of the days kept is
what it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import textwrap
from datetime import date
from typing import TYPE_CHECKING, Any

import asn1tools
import duckdb
import pytest

from clearing import lake
from clearing.codecs.events import HARD_KEY
from clearing.pipeline.archive import COMPACTED

from ..cli_run import ROOT, run_cli, run_python
from ..test_golden import _workbook_digest

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

DAYS = ["2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"]
BEFORE = "2026-11-01"
ARCHIVED = DAYS[:2]
NEXT = "2026-11-03"
SPECS = ROOT / "specs" / "asn1"


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four nights run in a generated world (never changed: tests take copies)."""
    w = tmp_path_factory.mktemp("archive") / "w"
    gen = run_cli(
        "samples", "generate", "--out", str(w), "--events", "150", "--date", DAYS[0],
        "--days", str(len(DAYS)),
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    cfg = w / "clearing.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + "\n[validation]\nduplicate_window_days = 1\n\n[retention]\ndispute_days = 0\n",
        encoding="utf-8",
    )
    for day in DAYS:
        assert run_cli("samples", "deliver", "-w", str(w), "--date", day).returncode == 0
        night = run_cli("nightly", "-w", str(w), "--date", day)
        assert night.returncode in (0, 1), night.stderr
    return w


@pytest.fixture
def world(nights: Path, tmp_path: Path) -> Path:
    target = tmp_path / "w"
    shutil.copytree(nights, target)
    return target


def _lake_rows(world: Path, ds: lake.Dataset, days: list[str]) -> list[tuple[Any, ...]]:
    """The rows of ``ds`` for ``days``, read from the lake's files (with date, partner, start)."""
    files = [str(f) for f in lake.files(world / "lake", ds, [date.fromisoformat(d) for d in days])]
    if not files:
        return []
    con = duckdb.connect()
    listing = ", ".join(f"'{f}'" for f in files)
    rel = (
        f"read_parquet([{listing}], union_by_name = true, filename = true, "
        "hive_partitioning = false)"
    )
    cols = [c for c in con.sql(f"SELECT * FROM {rel}").columns if c != "filename"]
    extra = ["CAST(regexp_extract(filename, 'date=([0-9-]+)', 1) AS DATE)"]
    if ds.partitioning == lake.Partitioning.DATE_PARTNER and "partner" not in cols:
        extra.append("regexp_extract(filename, 'partner=([^/]+)', 1)")
    if ds.partitioning == lake.Partitioning.DATE_START and "start_day" not in cols:
        extra.append("TRY_CAST(regexp_extract(filename, 'start=([^/]+)', 1) AS DATE)")
    select = ", ".join([*(f'"{c}"' for c in cols), *extra])
    return sorted(con.sql(f"SELECT {select} FROM {rel}").fetchall(), key=repr)


def _archive_rows(world: Path, ds: lake.Dataset, lake_cols: int) -> list[tuple[Any, ...]]:
    """The rows DuckDB reads from the archive of ``ds``, as an auditor would query it."""
    glob = world / "archive" / "lake" / ds.name / "*" / "*.parquet"
    con = duckdb.connect()
    rel = f"read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"
    rows = con.sql(f"SELECT * FROM {rel}").fetchall()
    assert all(len(r) == lake_cols for r in rows)
    return sorted(rows, key=repr)


def _snapshot_lake(world: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {ds.name: _lake_rows(world, ds, ARCHIVED) for ds in lake.DATASETS}


def _counts(world: Path) -> dict[str, dict[str, int]]:
    """Rows per dataset and archived date in the lake (those with rows)."""
    out: dict[str, dict[str, int]] = {}
    for ds in lake.DATASETS:
        per_date = {d: len(_lake_rows(world, ds, [d])) for d in ARCHIVED}
        out[ds.name] = {d: n for d, n in per_date.items() if n}
    return out


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _inputs_of(world: Path, days: list[str]) -> dict[str, str]:
    """The inputs of ``days`` in the work folder: claimed, quarantined, mediation CDRs."""
    out: dict[str, str] = {}
    for day in days:
        for folder in (world / "work" / day, world / "failed" / day):
            if folder.is_dir():
                out |= {f"{folder.relative_to(world)}/{k}": v for k, v in _files(folder).items()}
        stamp = day.replace("-", "")
        for p in sorted((world / "inbox" / "cdr").glob(f"CDR_*_{stamp}_*")):
            out[f"inbox/cdr/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _tar_members(world: Path) -> dict[str, str]:
    out = {}
    for path in sorted((world / "archive" / "inputs").glob("*.tar.xz")):
        with tarfile.open(path, "r:xz") as tar:
            for m in tar:
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    out[m.name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _check_archived(
    world: Path, before: dict[str, list[tuple[Any, ...]]], counts: dict[str, dict[str, int]]
) -> None:
    """The archive holds every row the lake held for the archived dates, once; the lake none."""
    for ds in lake.DATASETS:
        if not before[ds.name]:
            continue
        got = _archive_rows(world, ds, len(before[ds.name][0]))
        assert got == before[ds.name], ds.name
        assert _lake_rows(world, ds, ARCHIVED) == [], ds.name
        assert not any(lake.partition(world / "lake", ds, date.fromisoformat(d)).exists()
                       for d in ARCHIVED)  # fmt: skip
    manifest = json.loads((world / "archive" / "archive.json").read_text(encoding="utf-8"))
    for rel, entry in manifest["files"].items():
        assert (
            hashlib.sha256((world / "archive" / rel).read_bytes()).hexdigest() == (entry["sha256"])
        )
        if rel.startswith("lake/"):
            assert entry["rows"] == counts[rel.split("/")[1]], rel


def _archive(world: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("archive", "-w", str(world), "--before", BEFORE, *args)


def test_the_archive_holds_what_the_lake_held_and_duckdb_reads_it(world: Path) -> None:
    before = _snapshot_lake(world)
    counts = _counts(world)
    assert sum(len(v) for v in before.values()) > 500  # a real world, not an empty one
    assert before["events_in"]
    assert before["rated_visitors"]
    assert before["retail"]
    inputs = _inputs_of(world, ARCHIVED)
    assert any(k.startswith("work/2026-10-30/in/CD") for k in inputs)
    assert any(k.startswith("inbox/cdr/CDR_") for k in inputs)
    kept = {ds.name: _lake_rows(world, ds, DAYS[2:]) for ds in lake.DATASETS}
    out_before = _files(world / "out")
    records = world / "lake" / "_rated_with"
    assert {f.name for f in records.iterdir()} == {f"date={d}.json" for d in DAYS}

    done = _archive(world, "--json")
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["event"] == "archive"
    assert line["dates"] == ARCHIVED
    moved = {k: {d: n for d, n in v.items() if n} for k, v in line["rows"].items()}
    assert {k: v for k, v in moved.items() if v} == {k: v for k, v in counts.items() if v}
    _check_archived(world, before, counts)

    # the inputs: in the tar under their paths, byte for byte; gone from the work folder
    assert _tar_members(world) == inputs
    assert _inputs_of(world, ARCHIVED) == {}
    # what rated the archived days' files goes with them; the later days' records stay
    assert {f.name for f in records.iterdir()} == {f"date={d}.json" for d in DAYS[2:]}
    assert not (world / "work" / ARCHIVED[0]).exists()
    # kept: the later dates' rows (compaction changes files, not rows), out/, the state
    assert {ds.name: _lake_rows(world, ds, DAYS[2:]) for ds in lake.DATASETS} == kept
    assert _files(world / "out") == out_before
    assert (world / "clearing.duckdb").exists()
    assert line["compacted"] >= 1  # the world has partitions of several files

    # a run again has nothing more to do and changes nothing
    snapshot = _files(world / "archive")
    again = _archive(world, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == {}
    assert _files(world / "archive") == snapshot | {
        "archive.json": _files(world / "archive")["archive.json"]
    }


def test_inside_the_window_or_the_dispute_period_is_refused(world: Path) -> None:
    lake_before = _files(world / "lake")
    inside = run_cli("archive", "-w", str(world), "--before", "2026-11-02")
    assert inside.returncode == 2
    assert "duplicate window" in inside.stderr
    assert "2026-11-01" in inside.stderr  # the latest allowed
    forced = run_cli("archive", "-w", str(world), "--before", "2026-11-02", "--force")
    assert forced.returncode == 2  # --force never lifts the window

    cfg = world / "clearing.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace("dispute_days = 0", "dispute_days = 1"),
        encoding="utf-8",
    )
    dispute = _archive(world)
    assert dispute.returncode == 2
    assert "dispute period" in dispute.stderr
    assert "--before 2026-10-31" in dispute.stderr
    assert _files(world / "lake") == lake_before
    assert not (world / "archive").exists()
    assert _archive(world, "--force").returncode == 0


def _resend(world: Path, day: str, fsn: int) -> tuple[str, str]:
    """FRAF9's first file of ``day`` again under FSN ``fsn`` (header and name) into inbox/."""
    src = min((world / "work" / day / "in").glob("CDFRAF9HKGCL*"))
    tap = asn1tools.compile_files([str(SPECS / "TAP-0312.asn")], "ber")
    kind, value = tap.decode("DataInterChange", src.read_bytes())
    value["batchControlInfo"]["fileSequenceNumber"] = f"{fsn:05d}".encode()
    name = f"CDFRAF9HKGCL{fsn:05d}"
    (world / "inbox" / name).write_bytes(tap.encode("DataInterChange", (kind, value)))
    return src.name, name


def _status(world: Path, day: str, file: str) -> dict[int, str]:
    """Each event's status of ``file`` on ``day``, read from the lake's files."""
    f = lake.files(world / "lake", lake.EVENTS_IN, [date.fromisoformat(day)])
    listing = ", ".join(f"'{p}'" for p in f)
    got = duckdb.execute(
        f"SELECT event_index, status FROM read_parquet([{listing}], union_by_name = true) "
        "WHERE file = ?",
        [file],
    ).fetchall()
    assert got, file
    return dict(got)


def test_a_later_night_finds_duplicates_inside_the_window_and_none_outside(world: Path) -> None:
    fsns = [int(p.name[-5:]) for p in (world / "work").glob("*/in/CDFRAF9HKGCL*")]
    inside_src, inside = _resend(world, DAYS[-1], max(fsns) + 1)
    outside_src, outside = _resend(world, DAYS[0], max(fsns) + 2)
    was_inside = _status(world, DAYS[-1], inside_src)
    was_outside = _status(world, DAYS[0], outside_src)
    assert "accepted" in was_inside.values()
    assert "accepted" in was_outside.values()
    # the keys the night of NEXT may match: accepted inside its window (DAYS[-1]), worked out
    # with DuckDB from the lake as it is before the archive
    con = duckdb.connect()
    files = lake.files(world / "lake", lake.EVENTS_IN, [date.fromisoformat(DAYS[-1])])
    listing = ", ".join(f"'{p}'" for p in files)
    key = ", ".join(HARD_KEY)
    window_keys = set(
        con.execute(
            f"SELECT {key} FROM read_parquet([{listing}], union_by_name = true) "
            "WHERE status = 'accepted'"
        ).fetchall()
    )
    files0 = lake.files(world / "lake", lake.EVENTS_IN, [date.fromisoformat(DAYS[0])])
    listing0 = ", ".join(f"'{p}'" for p in files0)
    outside_in_window = {
        int(i)
        for i, *k in con.execute(
            f"SELECT event_index, {key} FROM read_parquet([{listing0}], union_by_name = true) "
            "WHERE file = ? AND status = 'accepted'",
            [outside_src],
        ).fetchall()
        if tuple(k) in window_keys
    }

    assert _archive(world).returncode == 0
    night = run_cli("nightly", "-w", str(world), "--date", NEXT)
    assert night.returncode in (0, 1), night.stderr

    now_inside = _status(world, NEXT, inside)
    now_outside = _status(world, NEXT, outside)
    # inside the window: every event accepted the first time is a duplicate now
    for i, status in was_inside.items():
        if status == "accepted":
            assert now_inside[i] == "duplicate", i
    # outside it: none is (but an event whose key was also accepted inside the window)
    dupes = {i for i, s in now_outside.items() if s == "duplicate"}
    assert dupes == outside_in_window
    assert any(now_outside[i] == "accepted" for i, s in was_outside.items() if s == "accepted")


_KILL = """
import os, signal, sys
from datetime import date
from pathlib import Path
from clearing.pipeline import archive as a
from clearing.pipeline.lock import WorkdirLock
name, after = sys.argv[2], int(sys.argv[3])
holder = a._Trash if name == "take" else a
original = getattr(holder, name)
calls = []
def dying(*args, **kwargs):
    out = original(*args, **kwargs)
    calls.append(1)
    if len(calls) == after:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real kill -9
    return out
setattr(holder, name, dying)
with WorkdirLock(Path(sys.argv[1]), "archive"):
    a.archive(Path(sys.argv[1]), date.fromisoformat(sys.argv[4]))
"""


@pytest.mark.parametrize(
    ("where", "after"),
    [("_write_month", 3), ("_write_inputs", 1), ("take", 5)],
    ids=["archive files half written", "before archive.json", "half removed"],
)
def test_a_run_killed_midway_loses_nothing_and_a_run_again_finishes(
    world: Path, where: str, after: int
) -> None:
    before = _snapshot_lake(world)
    counts = _counts(world)
    inputs = _inputs_of(world, ARCHIVED)
    killed = run_python(textwrap.dedent(_KILL), str(world), where, str(after), BEFORE)
    assert killed.returncode == -9, killed.stderr
    # every row is still somewhere: in the lake, or in the archive (not yet removed: both)
    for ds in lake.DATASETS:
        if before[ds.name] and _lake_rows(world, ds, ARCHIVED) != before[ds.name]:
            assert (world / "archive" / "archive.json").exists()

    done = _archive(world)
    assert done.returncode == 0, done.stderr
    _check_archived(world, before, counts)
    assert _tar_members(world) == inputs
    assert not (world / "archive" / ".trash").exists()
    assert not list((world / "archive").rglob("*.tmp"))


def test_the_days_kept_settle_as_before_and_a_compacted_date_replays(world: Path) -> None:
    daily = world / "out" / "settlement" / "daily" / f"settlement_daily_HKGCL_{DAYS[-1]}.xlsx"
    was_daily = _workbook_digest(daily)
    monthly_before = run_cli("settle", "monthly", "-w", str(world), "--period", "2026-11")
    assert monthly_before.returncode in (0, 1), monthly_before.stderr
    (book,) = (world / "out" / "settlement").glob("monthly/*2026-11*.xlsx")
    was_monthly = _workbook_digest(book)
    events_kept = _status_all(world, DAYS[2])

    assert _archive(world).returncode == 0
    compacted = list((world / "lake" / "events_in").rglob(COMPACTED))
    assert compacted, "nothing compacted: the test shows nothing"

    again = run_cli("settle", "daily", "-w", str(world), "--date", DAYS[-1])
    assert again.returncode in (0, 1), again.stderr
    assert _workbook_digest(daily) == was_daily
    monthly = run_cli("settle", "monthly", "-w", str(world), "--period", "2026-11")
    assert monthly.returncode == monthly_before.returncode, monthly.stderr
    assert _workbook_digest(book) == was_monthly

    # a replay of a compacted date rewrites it as the first run did
    replay = run_cli("validate", "-w", str(world), "--date", DAYS[2])
    assert replay.returncode in (0, 1), replay.stderr
    assert _status_all(world, DAYS[2]) == events_kept


def _status_all(world: Path, day: str) -> list[tuple[Any, ...]]:
    files = lake.files(world / "lake", lake.EVENTS_IN, [date.fromisoformat(day)])
    listing = ", ".join(f"'{p}'" for p in files)
    return duckdb.execute(
        f"SELECT file, event_index, status FROM read_parquet([{listing}], union_by_name = true) "
        "ORDER BY ALL"
    ).fetchall()


def test_a_night_for_an_archived_date_is_refused_and_touches_nothing(world: Path) -> None:
    assert _archive(world).returncode == 0
    inbox = _files(world / "inbox")
    state = hashlib.sha256((world / "clearing.duckdb").read_bytes()).hexdigest()
    r = run_cli("nightly", "-w", str(world), "--date", ARCHIVED[0])
    assert r.returncode == 2, r.stderr
    assert f"was archived (`clearing archive --before {BEFORE}`)" in r.stderr
    assert not (world / "work" / ARCHIVED[0]).exists()  # no inputs claimed into it
    # nor by the stage verbs of that date
    for verb in (["validate"], ["rate"], ["retail"], ["receive"], ["outbox"], ["settle", "daily"]):
        r = run_cli(*verb, "-w", str(world), "--date", ARCHIVED[0])
        assert r.returncode == 2, (verb, r.stderr)
        assert "was archived" in r.stderr, verb
    assert not (world / "work" / ARCHIVED[0]).exists()
    assert not any(lake.partition(world / "lake", ds, date.fromisoformat(ARCHIVED[0])).exists()
                   for ds in lake.DATASETS)  # fmt: skip
    assert _files(world / "inbox") == inbox
    assert hashlib.sha256((world / "clearing.duckdb").read_bytes()).hexdigest() == state
    # a date after the archive runs as before
    assert run_cli("nightly", "-w", str(world), "--date", BEFORE).returncode in (0, 1)
