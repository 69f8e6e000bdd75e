"""``clearing validate`` of a CIBER file: its parties and batches, never ``None -> None``."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

import pytest

from clearing.samples import generate

if TYPE_CHECKING:
    from pathlib import Path

    from ..cli_run import Cli


@pytest.fixture(scope="module")
def ciber_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("files")
    written = generate(out, events=40, seed=3, day=date(2026, 11, 22))
    return next(p for p in sorted(written) if p.name.startswith("CIBER_"))


def _headers(path: Path) -> list[tuple[str, str, str]]:
    """(batch sequence, sending SID/BID, receiving SID/BID) of every batch header (type 01).

    CIBER 2.5 record 01: type (2), settlement date YYMMDD (6), batch sequence number (3),
    sending carrier SID/BID (5), receiving carrier SID/BID (5).
    """
    lines = path.read_bytes().decode("ascii").splitlines()
    return [(x[8:11], x[11:16], x[16:21]) for x in lines if x.startswith("01")]


def test_a_ciber_file_shows_its_parties_and_batches(clearing: Cli, ciber_file: Path) -> None:
    headers = _headers(ciber_file)
    assert headers
    ((sender, recipient),) = {(s, r) for _seq, s, r in headers}
    batches = [seq for seq, _s, _r in headers]
    done = clearing("validate", str(ciber_file))
    first = done.stdout.splitlines()[0]
    assert "None" not in done.stdout
    assert first.startswith(f"{ciber_file.name}  ciber  {sender} -> {recipient}  ")
    word = "batches" if len(batches) > 1 else "batch"
    assert f"  {word} {', '.join(batches)}  " in first
    assert "FSN" not in first  # a CIBER file has no TD.57 FSN: its batches are numbered

    summary = json.loads(clearing("validate", str(ciber_file), "--json").stdout)
    assert (summary["sender"], summary["recipient"]) == (sender, recipient)
    assert summary["batches"] == batches
    assert summary["file_sequence_number"] is None


def test_what_a_broken_ciber_file_does_not_say_is_left_out(
    clearing: Cli, ciber_file: Path, tmp_path: Path
) -> None:
    cut = tmp_path / ciber_file.name
    cut.write_bytes(ciber_file.read_bytes()[:300])  # no batch trailer
    done = clearing("validate", str(cut))
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == f"{cut.name}  ciber  FATAL: whole file returned"
    assert "None" not in done.stdout
