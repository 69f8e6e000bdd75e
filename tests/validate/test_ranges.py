"""A huge-volume TAP file beside the good ones: a RAP returns its event, the night goes on.

End to end (issue 14, Build 4): a sample world's FRAF9 delivery gets one more file, the next
FSN, one GPRS event whose DataVolumeIncoming and DataVolumeOutgoing are both 2^53 − 2 (each just
within ``event.value.limit``, far above the 2^40 of ``event.volume.limit``), the audit right.
Before the range rules the event was accepted and rated (a bill line of 18 PB). Now:

* the night exits 1 (an anomaly: a RAP), never 4;
* the event is returned in a RAP (one severe ``event.volume.limit`` finding per direction);
* every output of the good files is byte-identical to the clean night's.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from datetime import date
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from clearing.samples.tap import file_sequence_number
from clearing.samples.workdir import generate_world
from tests.hostile.corpus import _audit_of_one, _batch, _encode, _partner, _tap_name

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 22)
HUGE = 2**53 - 2


def _huge_volume_tap(fsn: int) -> bytes:
    batch = _batch("FRAF9", day=DAY, events=60, seed=77)
    gprs = copy.deepcopy(next(e for e in batch["callEventDetails"] if e[0] == "gprsCall"))
    gprs[1]["gprsServiceUsed"]["dataVolumeIncoming"] = HUGE
    gprs[1]["gprsServiceUsed"]["dataVolumeOutgoing"] = HUGE
    _audit_of_one(batch, gprs)
    return _encode(batch, fsn=fsn)


def _night(wd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clearing.cli", "nightly", "-w", str(wd), "--date", str(DAY)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _outputs(wd: Path) -> dict[str, bytes]:
    """Every output file but the RAPs and the workbook (they name the returned event)."""
    return {
        str(p.relative_to(wd)): p.read_bytes()
        for p in sorted((wd / "out").rglob("*"))
        if p.is_file() and "rap" not in p.parts and "settlement" not in p.parts
    }


def _query(sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def _lake(wd: Path, dataset: str, where: str, columns: str = "* EXCLUDE (date)") -> list[Any]:
    glob = str(wd / "lake" / dataset / "**" / "*.parquet")
    return _query(
        f"SELECT {columns} FROM read_parquet('{glob}', union_by_name = true) "
        f"WHERE {where} ORDER BY ALL"
    )


@pytest.mark.slow
def test_a_huge_volume_is_returned_and_the_good_files_are_untouched(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    generate_world(clean, day=DAY, events=300, seed=5)
    hostile = tmp_path / "hostile"
    shutil.copytree(clean, hostile, symlinks=True)
    fsn = file_sequence_number(_partner("FRAF9"), DAY) + 1
    name = _tap_name("FRAF9", fsn)
    (hostile / "exchange" / "FRAF9" / "to_hkgcl" / name).write_bytes(_huge_volume_tap(fsn))

    a, b = _night(clean), _night(hostile)
    assert a.returncode in (0, 1), a.stderr[-2000:]
    assert b.returncode == 1, b.stderr[-2000:]
    assert "Traceback" not in b.stderr

    # the event is returned: one severe finding per direction, the file's only event
    cols = _lake(hostile, "findings", f"file = '{name}'", "rule, severity, message")
    assert [(r, s) for r, s, _ in cols] == [("event.volume.limit", "severe")] * 2
    assert {m.split(" ")[0] for _, _, m in cols} == {"DataVolumeIncoming", "DataVolumeOutgoing"}
    assert all(f"{HUGE} bytes is above the limit of {2**40} bytes" in m for _, _, m in cols)
    status = _lake(hostile, "events_in", f"file = '{name}'", "status")
    assert status == [("returned",)]
    raps = sorted((hostile / "out" / "rap").glob("RCHKGCLFRAF9*"))
    assert len(raps) == len(sorted((clean / "out" / "rap").glob("RCHKGCLFRAF9*"))) + 1
    # nothing of it is billed
    assert _lake(hostile, "retail", f"file = '{name}'") == []

    # the good files: the same outputs, the same bill lines, the same partner checks
    assert _outputs(hostile) == _outputs(clean)
    for dataset in ("retail", "rated_partner", "rated_visitors"):
        assert _lake(hostile, dataset, f"file IS DISTINCT FROM '{name}'") == _lake(
            clean, dataset, "true"
        ), dataset
