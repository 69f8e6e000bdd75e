"""Over-long CIBER lines are findings, never passed over (issue 14, Build 4).

A CIBER record has a fixed length, the end of its last field (ciber.md §2): type 22 is 547
characters (its last field at 473 + 75 − 1 in ``specs/ciber/type22.csv``), type 32 is 567 (493 +
75 − 1 in ``type32.csv``). A
shorter line is a cut blank tail (padded); a longer one holds characters that belong to no field:

* a detail record: a record return, rule ``ciber.record.format`` (Return Code 4, reason 07),
  the rest of its batch accepted;
* a header or a trailer: the batch structure is not CIBER, the file is unreadable (fatal, code 0).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .conftest import batch, check

SPECS = Path(__file__).resolve().parents[3] / "specs" / "ciber"


def _record_length(rt: str) -> int:
    """The end of the last field of a record type, read from its layout table."""
    with (SPECS / f"type{rt}.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    last = rows[-1]
    return int(last["start"]) + int(last["length"]) - 1


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    sep = b"\r\n" if b"\r\n" in data else b"\n"
    return data.split(sep), sep


def _lengthen(data: bytes, prefix: bytes, extra: bytes) -> tuple[bytes, int]:
    """``data`` with ``extra`` appended to the first line starting with ``prefix`` (1-based)."""
    lines, sep = _lines(data)
    i = next(k for k, line in enumerate(lines) if line.startswith(prefix))
    lines[i] += extra
    return sep.join(lines), i + 1


def test_the_layouts_are_547_and_567_characters() -> None:
    assert _record_length("22") == 547
    assert _record_length("32") == 567


def test_a_clean_batch_has_no_finding_and_full_length_records() -> None:
    out = check(batch())
    assert out.findings == []
    lines, _ = _lines(batch())
    assert {len(line) for line in lines if line[:2] == b"22"} == {547}


def test_one_character_too_many_returns_that_record_only() -> None:
    data, line = _lengthen(batch(), b"22", b"9")
    out = check(data)
    assert [(f.rule, f.severity) for f in out.findings] == [("ciber.record.format", "severe")]
    (f,) = out.findings
    assert "548 characters, longer than the 547 of a type-22 record" in f.message
    assert out.rejected == (False,)
    assert f.event_index == 0  # the first record of the batch, the call on line 2
    assert line == 2
    assert out.events.num_rows == 4  # the batch's four records are all decoded


def test_a_1000_character_record_is_returned() -> None:
    data, _ = _lengthen(batch(), b"32", b"7" * (1000 - 567))
    out = check(data)
    assert [f.rule for f in out.findings] == ["ciber.record.format"]
    assert "1000 characters" in out.findings[0].message


def test_trailing_blanks_beyond_the_layout_are_over_long_too() -> None:
    data, _ = _lengthen(batch(), b"22", b"   ")
    assert [f.rule for f in check(data).findings] == ["ciber.record.format"]


def test_an_over_long_header_makes_the_file_unreadable() -> None:
    data, _ = _lengthen(batch(), b"01", b"X")
    out = check(data)
    assert out.unreadable
    assert [(f.rule, f.severity) for f in out.findings] == [("ciber.file.unreadable", "fatal")]
    assert "longer than" in out.findings[0].message


def test_an_over_long_trailer_makes_the_file_unreadable() -> None:
    data, _ = _lengthen(batch(), b"98", b"0")
    out = check(data)
    assert out.unreadable
    assert [f.rule for f in out.findings] == ["ciber.file.unreadable"]
