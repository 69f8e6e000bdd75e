"""`clearing inspect` against TD.57 and the file formats (issue 15, item 6).

Files are built by hand: from the generated samples (changed through asn1tools and encoded
again, see :mod:`tests.validate.tap_mutate`) or as raw bytes. Expected values are worked out
here from the bytes or the file's own (independent) XML rendering, never read back from the
code under test. The inspector runs as the analyst runs it: ``clearing inspect`` in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.validate.tap_mutate import CHEC9, CHEC9_DISCOUNTS, FIXED, fixed_discount_file

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

ROOT = Path(__file__).parents[2]
CASES = ROOT / "tests" / "codecs" / "cases"


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_fixed_discounts_count_in_the_recomputed_total(tmp_path: Path, clearing: Cli) -> None:
    """TD.57 TotalDiscountValue = the events' Discount values + each fixed discount applied."""
    want = CHEC9_DISCOUNTS + 2 * FIXED  # 59584
    path = _write(tmp_path, CHEC9, fixed_discount_file(want))
    r = clearing("inspect", path, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["audit"]["total_discount_value"] == 59584
    assert s["recomputed"]["total_discount_value"] == 59584
    assert s["audit_mismatches"] == []


def test_a_missing_fixed_discount_is_still_a_mismatch(tmp_path: Path, clearing: Cli) -> None:
    """The file states only the events' own discounts: the fixed ones are missing from it."""
    path = _write(tmp_path, CHEC9, fixed_discount_file(CHEC9_DISCOUNTS))
    s = json.loads(clearing("inspect", path, "--json").stdout)
    assert s["recomputed"]["total_discount_value"] == 59584
    assert s["audit_mismatches"] == ["total_discount_value"]


def test_nrt_file_available_is_read(clearing: Cli) -> None:
    """The XML rendering of the same NRT file (libxfsx) says FileAvailableTimeStamp
    20160123110203 and UtcTimeOffset +0200."""
    xml = (CASES / "libxfsx_nrt_2_1.xml").read_text(encoding="utf-8")
    assert "<FileAvailableTimeStamp>20160123110203</FileAvailableTimeStamp>" in xml
    r = clearing("inspect", str(CASES / "libxfsx_nrt_2_1.ber"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["file_available"] == "20160123110203+0200"
