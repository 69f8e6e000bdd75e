"""Outbound files written in pieces are the files encoded whole; the stage reads lazily.

:func:`clearing.outbound.tap.write_tap_file` encodes the call events a chunk of rows at a time
into a temporary file and gives the file to its writer in pieces, its outer BER lengths made
from the pieces' lengths. Forced to tiny chunks, a tiny in-memory spool and tiny copies, its
bytes must still be those of the asn1tools reference encoder (one value for the whole file).
:func:`clearing.outbound._ciber_out.write_columnar_to` gives a CIBER-out file one batch at a
time: the bytes of ``ciber.write``.
:func:`clearing.outbound.write_day` reads a partner's rows only when its file is written.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import pytest

from clearing import config
from clearing.codecs import ciber
from clearing.codecs.facts import ciber_facts, tap_header_facts
from clearing.outbound import _ciber_out, run, tap
from clearing.outbound.tap import encode_tap_file, encode_transfer_batch_reference, write_tap_file
from clearing.rating import Rates
from clearing.rating.run import rate_day
from tests.outbound.test_ciber_columnar import DAY as CIBER_DAY
from tests.outbound.test_ciber_columnar import events
from tests.outbound.test_tap_columnar import HEADER, rated_rows
from tests.outbound.test_tap_out import DAY

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(("chunk", "spool", "copy"), [(7, 64, 50), (1, 0, 1), (64, 1 << 20, 4096)])
def test_a_file_written_in_pieces_is_the_whole_file(
    chunk: int, spool: int, copy: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rated_rows(300, 21)
    whole, totals = encode_transfer_batch_reference(rows, HEADER)

    def fail(*_args: Any) -> Any:
        raise AssertionError("the columnar writer fell back to the reference")

    monkeypatch.setattr(tap, "encode_transfer_batch_reference", fail)
    monkeypatch.setattr(tap, "_CHUNK", chunk)
    monkeypatch.setattr(tap, "_SPOOL", spool)  # 0 / 64: the events go to a file on disk
    monkeypatch.setattr(tap, "_COPY", copy)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    pieces: list[bytes] = []
    kind, got_totals, head = write_tap_file(rows, HEADER, pieces.append, spool_dir=spool_dir)
    assert (kind, got_totals) == ("transferBatch", totals)
    assert len(pieces) > 2  # header, events, audit: never one piece
    assert b"".join(pieces) == whole
    assert encode_tap_file(rows, HEADER) == (whole, "transferBatch", totals)
    # the header the facts are read from is the written file's
    facts = tap_header_facts(head)
    assert facts is not None
    assert facts == tap_header_facts(whole)
    assert (facts.total_charge, facts.event_count) == (totals.total_charge, totals.events)
    assert not list(spool_dir.iterdir())  # the temporary file is gone


def test_a_notification_is_one_piece() -> None:
    pieces: list[bytes] = []
    kind, totals, head = write_tap_file(rated_rows(3, 1).clear(), HEADER, pieces.append)
    assert kind == "notification"
    assert (totals.events, totals.total_charge, totals.total_tax) == (0, 0, 0)
    assert pieces == [head] == [tap.encode_notification(HEADER)]


@pytest.mark.parametrize("spool", [0, 1 << 24])
def test_a_ciber_file_written_a_batch_at_a_time_is_the_codecs(
    spool: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = events(20_500, 3, currencies=("USD", "CAD"))  # batches of two currencies, 9999 each
    ref_seq = {("60099", "01234"): 998}
    ref = ciber.write(ev.to_arrow(), creation_date=CIBER_DAY, sequences=ref_seq)
    monkeypatch.setattr(_ciber_out, "_SPOOL", spool)  # 0: the batches go to a file on disk
    pieces: list[bytes] = []
    seq = {("60099", "01234"): 998}
    assert _ciber_out.write_columnar_to(
        ev, creation_date=CIBER_DAY, sequences=seq, write=pieces.append, spool_dir=tmp_path
    )
    assert b"".join(pieces) == ref
    assert seq == ref_seq
    assert len(pieces) > 2  # one piece a batch
    # each piece is a whole batch: their trailer totals are the file's
    whole = ciber_facts(ciber.decode(ref)).total
    assert sum(ciber_facts(ciber.decode(p)).total for p in pieces) == whole
    assert not list(tmp_path.iterdir())


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_write_day_reads_one_partner_at_a_time(
    tiny_workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rate_day(tiny_workdir, DAY)
    eager = tmp_path / "eager"
    shutil.copytree(tiny_workdir, eager)
    # the former stage: every partner's rows read at once, then the files
    rated = run.rated_by_partner(eager, DAY)
    want = run.write_partner_files(
        eager, DAY, rated, Rates.load(eager / "rates"), config.load(eager)
    )

    log: list[tuple[str, str]] = []
    read = run._LakeRows.__getitem__

    def getitem(self: run._LakeRows, partner: str) -> Any:
        rows = read(self, partner)
        log.append(("read", partner))
        return rows

    def logged(name: str) -> Any:
        write = getattr(run, name)

        def wrapper(workdir: Path, day: Any, partner: str, *args: Any) -> Any:
            log.append(("write", partner))
            return write(workdir, day, partner, *args)

        return wrapper

    monkeypatch.setattr(run._LakeRows, "__getitem__", getitem)
    monkeypatch.setattr(run, "_tap_file", logged("_tap_file"))
    monkeypatch.setattr(run, "_ciber_file", logged("_ciber_file"))
    got = run.write_day(tiny_workdir, DAY)

    # each partner with rows: read once, just before its file is written
    reads = [p for op, p in log if op == "read"]
    assert sorted(reads) == sorted(rated)
    for i, (op, partner) in enumerate(log):
        if op == "write" and partner in rated:
            assert log[i - 1] == ("read", partner), log
    # the same files, bytes and register entries as the eager stage
    assert [(f.path.name, f.kind, f.events, f.total_charge, f.total_tax) for f in got] == [
        (f.path.name, f.kind, f.events, f.total_charge, f.total_tax) for f in want
    ]
    assert _tree(tiny_workdir / "out") == _tree(eager / "out")
