"""A day rated in chunks (a small ``memory_mb``) writes what the day rated at once writes.

Two copies of one generated world are rated side by side, one at the default budget (the day
in one go), one in chunks of a few dozen records (files cut in pieces); every lake file must
be the same bytes and every figure of the summary the same. The world is built so that the
chunked path meets what it must carry across chunks: duplicates of records of an earlier
chunk (by id and by usage), held records (an IOT row removed), records billed at a default
rate, and, the next night, held records recycled. The golden scenario (two nights and a
month through the CLI) is run again with small chunks: its record must not change.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import shutil
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from clearing import config, lake
from clearing._io import write_table_atomic
from clearing.rating._refdata import import_rates
from clearing.rating._spool import ROW_GROUP, Spool, concat_to, sorted_to
from clearing.rating.cdr import PieceReader, plan_pieces, read_cdrs
from clearing.rating.rerate import rerate
from clearing.rating.run import MIN_CHUNK_ROWS, RateSummary, chunk_rows, rate_day

from ..cli_run import run_cli
from ..test_golden import GOLDEN, _scenario

if TYPE_CHECKING:
    from pathlib import Path

D1 = date(2026, 11, 22)
D2 = D1 + timedelta(days=1)
HELD = ("FRAF9", "mtc")  # its IOT row removed on night 1: held, recycled on night 2
DEFAULT = ("GBRG9", "mtc")  # its IOT row removed, a default_rate in clearing.toml
CHUNK = 40  # records a chunk: the day's CSV file is cut in pieces


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _drop_iot(world: Path, partner: str, service: str) -> list[dict[str, str]]:
    """Remove ``partner``'s inbound IOT rows of ``service``; return them."""
    path = world / "rates" / "sources" / "iot.csv"
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)

    def mine(r: dict[str, str]) -> bool:
        return (r["partner"], r["direction"], r["service"]) == (partner, "inbound", service)

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(r for r in rows if not mine(r))
    return [r for r in rows if mine(r)]


def _restore_iot(world: Path, rows: list[dict[str, str]]) -> None:
    path = world / "rates" / "sources" / "iot.csv"
    with path.open(encoding="utf-8", newline="") as f:
        fields = list(csv.DictReader(f).fieldnames or [])
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.DictWriter(f, fieldnames=fields).writerows(rows)
    import_rates(world / "rates")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    """Two days delivered, IOT rows removed (returned), a third CDR file of repeats on D1."""
    root = tmp_path_factory.mktemp("chunks") / "w"
    r = run_cli(
        "samples", "generate", "--out", str(root), "--events", "400",
        "--date", D1.isoformat(), "--days", "2", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for d in (D1, D2):
        r = run_cli("samples", "deliver", "--workdir", str(root), "--date", d.isoformat())
        assert r.returncode == 0, r.stderr
    removed = _drop_iot(root, *HELD)
    assert removed
    assert _drop_iot(root, *DEFAULT)
    import_rates(root / "rates")
    toml = root / "clearing.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        + f'\n[partners.{DEFAULT[0]}.default_rate.{DEFAULT[1]}]\nprice = "0.10"\nunit = 60\n',
        encoding="utf-8",
    )
    # the repeats: file 001's first three records again (same ids), its next two under new
    # ids (same usage), a new record twice in the file (the second: the reader's), and a new one
    first = root / "inbox" / "cdr" / f"CDR_HKGCL_{D1:%Y%m%d}_001.csv"
    header, rows = _csv_rows(first)
    rid, dur, called = (header.index(c) for c in ("record_id", "duration", "called_number"))
    renamed = [[*r[:rid], f"REPEAT-{k}", *r[rid + 1 :]] for k, r in enumerate(rows[3:5])]
    calls = [r for r in rows[5:] if r[dur].isdigit() and r[called].isdigit()]  # good calls
    new = [*calls[0][:rid], "NEW-1", *calls[0][rid + 1 :]]
    new[dur] = str(int(new[dur]) + 1)  # one second longer: other usage
    again = [*calls[1][:rid], "NEW-2", *calls[1][rid + 1 :]]
    again[dur] = str(int(again[dur]) + 7)
    third = root / "inbox" / "cdr" / f"CDR_HKGCL_{D1:%Y%m%d}_003.csv"
    with third.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([*rows[:3], *renamed, new, new, again])
    return root, removed


def _lake(wd: Path) -> dict[str, str]:
    return {
        str(p.relative_to(wd)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((wd / "lake").rglob("*"))
        if p.is_file()
    }


def _figures(s: RateSummary, wd: Path) -> dict[str, Any]:
    d = dataclasses.asdict(s)
    d["paths"] = [str(p.relative_to(wd)) for p in s.paths]
    d["cdr_files"] = [p.name for p in s.cdr_files]
    del d["chunks"]
    return d


def _held_records(wd: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(config.WorkDir(wd).db), read_only=True)
    try:
        return con.execute("SELECT * FROM held_records ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_a_day_rated_in_chunks_writes_the_same_bytes_and_figures(
    world: tuple[Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    shutil.copytree(world[0], whole)
    shutil.copytree(world[0], chunked)
    files = sorted((world[0] / "inbox" / "cdr").glob(f"*{D1:%Y%m%d}*"))
    assert len(files) == 3
    a = rate_day(whole, D1, settings=config.load(whole))
    b = rate_day(chunked, D1, settings=config.load(chunked), rows_per_chunk=CHUNK)
    assert a.chunks == 1
    assert b.chunks > len(files)  # files cut in pieces
    assert _lake(chunked) == _lake(whole)
    assert _figures(b, chunked) == _figures(a, whole)
    assert _held_records(chunked) == _held_records(whole)
    # what the chunks had to carry: held and default-rated records, the repeats of file 001
    assert b.held > 0
    assert b.default_rated > 0
    assert b.duplicates == 5
    assert b.identity_ok

    # night 2: the IOT rows back, night 1's held records recycled into night 2's rated rows
    for wd in (whole, chunked):
        _restore_iot(wd, world[1])
    a2 = rate_day(whole, D2, settings=config.load(whole))
    b2 = rate_day(chunked, D2, settings=config.load(chunked), rows_per_chunk=CHUNK)
    assert b2.chunks > 1
    assert _lake(chunked) == _lake(whole)
    assert _figures(b2, chunked) == _figures(a2, whole)
    assert _held_records(chunked) == _held_records(whole)
    assert b2.recycled == b.held

    # the month re-rated after the IOT rows came back: held, default-rated and recycled rows,
    # files rated before and after the change — only what can change is rated again, and the
    # report is the full re-rating's (chunked or not: the same files, the same record)
    for wd in (whole, chunked):
        part, full = rerate(wd, f"{D1:%Y-%m}"), rerate(wd, f"{D1:%Y-%m}", full=True)
        assert full.same_rows == 0 < part.same_rows
        assert part.delta.to_dicts() == full.delta.to_dicts()
        assert part.changed_rows.drop("changed").to_dicts() == (
            full.changed_rows.drop("changed").to_dicts()
        )
        assert part.changed_rows.height > 0  # the held rows of night 1 price now


def test_repeats_of_an_earlier_chunk_are_duplicates_of_its_records(
    world: tuple[Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    shutil.copytree(world[0], wd)
    s = rate_day(wd, D1, settings=config.load(wd), rows_per_chunk=CHUNK)
    assert s.chunks > 3
    name = f"CDR_HKGCL_{D1:%Y%m%d}"
    q = pl.read_parquet(lake.path(wd / "lake", lake.CDR_QUARANTINE, D1))
    mine = q.filter(pl.col("file") == f"{name}_003.csv").sort("line")
    usage = "same IMSI, start, service, numbers, duration and volume"
    # lines 2-4: file 001's lines 2-4 (same ids); 5-6: its lines 5-6 (same usage); line 8: the
    # second NEW-1 of the file (the reader's own check)
    assert mine.select("line", "reason").rows() == [
        (2, f"duplicate of {name}_001.csv line 2 date {D1} (same record_id)"),
        (3, f"duplicate of {name}_001.csv line 3 date {D1} (same record_id)"),
        (4, f"duplicate of {name}_001.csv line 4 date {D1} (same record_id)"),
        (5, f"duplicate of {name}_001.csv line 5 date {D1} ({usage})"),
        (6, f"duplicate of {name}_001.csv line 6 date {D1} ({usage})"),
        (8, "record_id: duplicate record_id in the file"),
    ]
    rated = pl.concat(
        pl.read_parquet(f) for f in lake.files(wd / "lake", lake.RATED_VISITORS, [D1])
    )
    ids = rated.filter(pl.col("file") == f"{name}_003.csv")["record_id"].to_list()
    unrated = pl.read_parquet(lake.path(wd / "lake", lake.UNRATED_VISITORS, D1))
    ids += unrated.filter(pl.col("file") == f"{name}_003.csv")["record_id"].to_list()
    assert sorted(ids) == ["NEW-1", "NEW-2"]


def test_a_file_made_from_parts_is_the_file_written_at_once(tmp_path: Path) -> None:
    n = ROW_GROUP * 2 + 12_345  # three row groups
    df = pl.DataFrame({"n": pl.int_range(n, eager=True, dtype=pl.Int64) % 977})
    at_once = tmp_path / "at_once.parquet"
    write_table_atomic(df.to_arrow(), at_once)
    made = tmp_path / "made.parquet"
    with Spool(tmp_path / "spool") as spool:
        for k in range(0, n, 700_000):
            spool.add("t", df.slice(k, 700_000))
        concat_to(spool.files("t"), made, compression="zstd")
    assert made.read_bytes() == at_once.read_bytes()


def test_a_file_sorted_from_parts_is_the_polars_sort_written_at_once(tmp_path: Path) -> None:
    rows = 5_000
    df = pl.DataFrame(
        {
            "k": [None if i % 97 == 0 else f"p{(i * 7919) % 13}" for i in range(rows)],
            "t": pl.datetime_range(
                pl.datetime(2026, 11, 1), pl.datetime(2026, 11, 2), "10s", eager=True
            )[:rows].reverse(),
            "s": [f"id-{(i * 31) % rows:05d}ü" for i in range(rows)],
            "n": pl.Series([None if i % 50 == 0 else i % 11 for i in range(rows)], dtype=pl.Int32),
        }
    ).with_columns(pl.lit(date(2026, 11, 1)).alias("d"))
    order = ["k", "n", "s"]
    for nulls_last in (True, False):
        at_once = tmp_path / f"at_once-{nulls_last}.parquet"
        write_table_atomic(df.sort(order, nulls_last=nulls_last).rechunk().to_arrow(), at_once)
        made = tmp_path / f"made-{nulls_last}.parquet"
        with Spool(tmp_path / "spool") as spool:
            for k in range(0, rows, 1_300):
                spool.add("t", df.slice(k, 1_300))
            sorted_to(
                spool.files("t"),
                made,
                order,
                nulls_last=nulls_last,
                compression="zstd",
                tmp=spool.tmp,
                memory_mb=64,
            )
        assert made.read_bytes() == at_once.read_bytes()
    assert isinstance(df.to_arrow(), pa.Table)


def test_pieces_of_a_file_read_as_the_whole_file(tmp_path: Path) -> None:
    """A record id repeated in a later piece is still the file's duplicate; quotes: whole."""
    header = (
        "record_id,record_type,imsi,msisdn,called_number,start_time,utc_offset,duration,"
        "rec_entity_type,rec_entity_id"
    )
    rows = [
        f"r{k % 23},moc,208011234567890,33612345678,8522345{k:04d},2026-11-23T10:{k % 60:02d}:00,"
        f"+0800,{60 + k},msc,85290000001"
        for k in range(50)
    ]  # r0..r22 again from the 24th line: the file's duplicates, in other pieces
    rows[7] = rows[7].replace(",moc,", ",xyz,")  # a bad value
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(
        "\n".join([header, *rows[:-1], rows[-1].replace(",msc,", ',"msc",')]) + "\n",
        encoding="utf-8",
    )
    for path, pieces in ((plain, 5), (quoted, 1)):
        planned = plan_pieces(path, 10)
        assert len(planned) == pieces
        got = PieceReader().read(planned)
        want = read_cdrs([path])
        assert got.records.equals(want.records)
        assert got.findings.equals(want.findings)
        assert got.quarantined.equals(want.quarantined)
    # 27 of the 50 lines repeat an id of the file (lines 25-51), one has a bad record type
    assert want.quarantined.height == 28
    assert chunk_rows(2048) > 500_000  # a day of 500 000 records is rated at once by default
    assert chunk_rows(256) == MIN_CHUNK_ROWS  # the smallest budget: chunks of 50 000


@pytest.mark.slow
def test_the_golden_scenario_rated_in_small_chunks_is_the_golden_record(tmp_path: Path) -> None:
    """Two nights and a month, every day's CDRs and partner events rated in chunks of 150."""

    def chunked(*args: str, timeout: float = 600) -> Any:
        return run_cli(*args, timeout=timeout, env={"CLEARING_RATE_CHUNK_ROWS": "150"})

    world = tmp_path / "w"
    got = _scenario(world, chunked)
    lines = [
        f.read_text(encoding="utf-8").count("\n") for f in (world / "inbox" / "cdr").glob("*.csv")
    ]
    assert min(lines) > 2 * 150  # each day's CSV file alone is more than two chunks
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got["exit_codes"] == want["exit_codes"]
    assert got["out"] == want["out"]
    assert got["manifests"] == want["manifests"]
