"""The daily workbook counts a mediation file's records from its bytes, not through the reader.

A CSV file's records: its non-blank rows less the header. Plain files are counted line by
line; files with quotes (a quoted cell may hold a line break) or lone carriage returns go
through the CSV reader. Each case is counted by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from clearing.settle._daily import _count_rows, _plain_rows

if TYPE_CHECKING:
    from pathlib import Path

CASES = [
    # (bytes, records counted by hand, whether the plain route may answer)
    (b"a,b\n1,2\n3,4\n", 2, True),
    (b"a,b\r\n1,2\r\n3,4", 2, True),  # CRLF, no final line break
    (b"a,b\n\n1,2\n , \n,,\n\t,\x0c\n3,4\n", 2, True),  # blank rows: nothing but , and spaces
    (b"a,b\n1,2\n\x1c,\x1f\n", 1, True),  # separators are whitespace to str.strip
    ("a,b\n1,\u00a0\n\u00a0,\u2003\n".encode(), 1, True),  # NBSP and em space: blank
    ("a,b\n1,caf\u00e9\n".encode(), 1, True),
    (b'a,b\n1,"two\nlines"\n3,4\n', 2, False),  # a quoted line break: one record
    (b"a,b\r1,2\r3,4\r", 2, False),  # carriage returns only (the reader's line breaks)
    (b"a,b\n", 0, True),
    (b"", 0, True),
]


@pytest.mark.parametrize(("data", "records", "plain"), CASES)
def test_records_of_a_csv_file(tmp_path: Path, data: bytes, records: int, plain: bool) -> None:
    path = tmp_path / "cdrs.csv"
    path.write_bytes(data)
    assert _count_rows(path) == records
    assert (_plain_rows(path) is not None) == plain
