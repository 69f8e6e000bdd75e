"""The daily workbook is a function of the register and the lake: no input file is read again.

* the inputs and our outputs can be gone from disk: the same workbook;
* the Sequences sheet's FSN gaps come from the findings' ``gap_start`` / ``gap_end``, not from
  the message text;
* a register written before the facts were recorded (schema version 1) gives blank cells, not
  a crash.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import duckdb
from openpyxl import load_workbook

from clearing.settle import daily_workbook

from .helpers import read_sheet
from .world import DAY2

if TYPE_CHECKING:
    from pathlib import Path

D = DAY2.isoformat()


def _run_id(path: Path) -> str | None:
    header = {r[0].value: r[1].value for r in load_workbook(path)["Overview"].iter_rows()}
    return None if header["Run id"] == "(not given)" else str(header["Run id"])


def _rebuild(world: Path, run_id: str | None) -> Path:
    (world / "out" / "settlement" / "daily" / f"settlement_daily_HKGCL_{D}.xlsx").unlink()
    return daily_workbook(world, DAY2, run_id=run_id)


def test_the_workbook_needs_no_input_or_output_file_on_disk(
    world_copy: Path, daily_path: Path
) -> None:
    # the partners' files wherever they were (mediation CDR files stay: they are counted)
    for folder in ("done", "failed", *(f"work/{d.name}/in" for d in world_copy.glob("work/*"))):
        shutil.rmtree(world_copy / folder, ignore_errors=True)
    for p in (world_copy / "inbox").iterdir():
        if p.name != "cdr":
            shutil.rmtree(p)
    for folder in ("tap", "ciber", "rap", "ciber_returns", "ack"):
        shutil.rmtree(world_copy / "out" / folder, ignore_errors=True)
    rebuilt = _rebuild(world_copy, _run_id(daily_path))
    assert rebuilt.read_bytes() == daily_path.read_bytes()


def test_sequences_gap_comes_from_the_columns_not_the_message(
    world_copy: Path, daily_path: Path
) -> None:
    before = read_sheet(daily_path, "Sequences")
    gaps = [r for r in before.rows if r["Gaps"]]
    assert gaps
    con = duckdb.connect(str(world_copy / "clearing.duckdb"))
    stored = con.execute(
        "SELECT sender, gap_start, gap_end, expected_fsn FROM findings "
        f"WHERE rule = 'fsn.gap' AND processing_date = DATE '{D}'"
    ).fetchall()
    con.execute("UPDATE findings SET message = 'reworded, no numbers' WHERE rule = 'fsn.gap'")
    con.close()
    assert stored
    for sender, start, end, expected in stored:
        assert start is not None
        assert end is not None
        assert expected == start  # the stream expected the first FSN missing
        row = next(r for r in gaps if r["Partner"] == sender)
        assert f"{start:05d}-{end:05d}" in row["Missing FSNs"]
    after = read_sheet(_rebuild(world_copy, _run_id(daily_path)), "Sequences")
    assert after.rows == before.rows


def test_a_register_from_before_the_facts_gives_blanks_not_a_crash(
    world_copy: Path, daily_path: Path
) -> None:
    con = duckdb.connect(str(world_copy / "clearing.duckdb"))
    added = {
        "files": (
            "header_kind",
            "file_available",
            "file_created",
            "tap_currency",
            "tap_decimal_places",
            "audit_tax",
            "audit_discount",
            "audit_events",
            "recomputed_charge",
            "recomputed_tax",
            "recomputed_discount",
        ),
        "findings": ("expected_fsn", "gap_start", "gap_end"),
        "rap_out": ("audit_severe_value",),
        "outbound_files": ("audit_charge", "file_available"),
    }
    for table, columns in added.items():
        for c in columns:
            con.execute(f"ALTER TABLE {table} DROP COLUMN {c}")
    con.execute("UPDATE files SET audit_charge = NULL")  # the dead column of version 1
    con.execute("DROP TABLE ciber_returns_out")
    con.execute("DELETE FROM schema_version WHERE version > 1")
    con.close()

    path = _rebuild(world_copy, _run_id(daily_path))
    reg = read_sheet(path, "File register")
    inbound = [r for r in reg.rows if r["Dir."] == "in" and r["Kind"] in ("TAP", "CIBER")]
    assert inbound
    assert all(r["Audit total (file)"] is None for r in inbound)
    assert all(r["Available (UTC)"] is None for r in inbound)
    before = read_sheet(daily_path, "File register")
    # the events and their charges come from the lake: unchanged
    assert [r["Records"] for r in reg.rows if r["Dir."] == "in"] == [
        r["Records"] for r in before.rows if r["Dir."] == "in"
    ]
