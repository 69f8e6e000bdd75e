"""The nightly with every TAP file streamed through validate in small pieces (issue 16).

A TAP file too big to hold whole within ``[performance] memory_mb`` is decoded, checked and
written to the lake a piece of events at a time; ``CLEARING_VALIDATE_PIECE_EVENTS`` streams
every file, in pieces of that many events, whatever its size. Two nights and a month so
streamed must give what files read whole give: the golden record's RAPs (the returned events'
bytes echoed), TAP-out, figures; the same lake rows and findings; the same workbooks but for
the lake files' own hashes (a row group per piece: other bytes, the same rows).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest

from ..cli_run import run_cli
from ..test_golden import GOLDEN, _outputs, _scenario

if TYPE_CHECKING:
    from pathlib import Path

PIECE = 5


def _lake(world: Path, dataset: str) -> dict[str, Any]:
    root = world / "lake" / dataset
    return {
        str(f.relative_to(root)): pq.read_table(f, partitioning=None).to_pylist()
        for f in sorted(root.rglob("*.parquet"))
    }


@pytest.mark.slow
def test_two_nights_streamed_in_pieces_of_five_events_are_those_read_whole(
    tmp_path: Path,
) -> None:
    def streamed(*args: str, timeout: float = 600) -> Any:
        env = {"CLEARING_VALIDATE_PIECE_EVENTS": str(PIECE)}
        return run_cli(*args, timeout=timeout, env=env)

    def whole(*args: str, timeout: float = 600) -> Any:
        return run_cli(*args, timeout=timeout)

    got = _scenario(tmp_path / "s", streamed)
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got["exit_codes"] == want["exit_codes"]
    assert got["manifests"] == want["manifests"]
    # every output but the workbooks is the golden record's, byte for byte
    assert {k: v for k, v in got["out"].items() if not k.endswith(".xlsx")} == {
        k: v for k, v in want["out"].items() if not k.endswith(".xlsx")
    }
    assert any(k.startswith("out/rap/") for k in got["out"])  # returned events were echoed
    _scenario(tmp_path / "w", whole)
    assert _outputs(tmp_path / "s", lake_hashes=False) == _outputs(
        tmp_path / "w", lake_hashes=False
    )
    for dataset in ("events_in", "keys_in", "findings"):
        assert _lake(tmp_path / "s", dataset) == _lake(tmp_path / "w", dataset), dataset
    # the premise: the TAP files were streamed, a row group per piece of five events
    files = sorted((tmp_path / "s" / "lake" / "events_in").rglob("CD*.parquet"))
    assert files
    for f in files:
        meta = pq.ParquetFile(f).metadata
        assert meta.num_row_groups == -(-meta.num_rows // PIECE), f
    assert not list((tmp_path / "s" / "tmp" / "events").glob("*"))  # no piece left behind
