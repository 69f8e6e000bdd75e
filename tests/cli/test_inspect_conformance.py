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

from clearing.inspect import SYNTAX_ITEMS
from tests.validate.tap_mutate import (
    CHEC9,
    CHEC9_DISCOUNTS,
    DEFINITE,
    FIXED,
    NOTIFICATION,
    csv_rules,
    encode,
    fixed_discount_file,
    sample_value,
    stamp_long,
)

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

ROOT = Path(__file__).parents[2]
CASES = ROOT / "tests" / "codecs" / "cases"
SAMPLES = ROOT / "data_samples" / "tap"


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_fixed_discounts_count_in_the_recomputed_total(tmp_path: Path, clearing: Cli) -> None:
    """TD.57 TotalDiscountValue = the events' Discount values + each fixed discount applied."""
    want = CHEC9_DISCOUNTS + 2 * FIXED  # 49499
    path = _write(tmp_path, CHEC9, fixed_discount_file(want))
    r = clearing("inspect", path, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["audit"]["total_discount_value"] == 49499
    assert s["recomputed"]["total_discount_value"] == 49499
    assert s["audit_mismatches"] == []


def test_a_missing_fixed_discount_is_still_a_mismatch(tmp_path: Path, clearing: Cli) -> None:
    """The file states only the events' own discounts: the fixed ones are missing from it."""
    path = _write(tmp_path, CHEC9, fixed_discount_file(CHEC9_DISCOUNTS))
    s = json.loads(clearing("inspect", path, "--json").stdout)
    assert s["recomputed"]["total_discount_value"] == 49499
    assert s["audit_mismatches"] == ["total_discount_value"]


def test_nrt_file_available_is_read(clearing: Cli) -> None:
    """The XML rendering of the same NRT file (libxfsx) says FileAvailableTimeStamp
    20160123110203 and UtcTimeOffset +0200."""
    xml = (CASES / "libxfsx_nrt_2_1.xml").read_text(encoding="utf-8")
    assert "<FileAvailableTimeStamp>20160123110203</FileAvailableTimeStamp>" in xml
    r = clearing("inspect", str(CASES / "libxfsx_nrt_2_1.ber"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["file_available"] == "20160123110203+0200"


def test_header_syntax_is_flagged_with_its_td57_code(tmp_path: Path, clearing: Cli) -> None:
    value = sample_value(DEFINITE)
    bci = value[1]["batchControlInfo"]
    bci["sender"] = b"FRAF"  # 4 characters
    bci["recipient"] = b"hkgcl"  # small letters
    bci["fileSequenceNumber"] = b"1506"  # 4 digits
    bci["fileAvailableTimeStamp"] = stamp_long("2026112201490")  # 13 digits
    bci["transferCutOffTimeStamp"] = stamp_long("20261122000000", "+01")  # not +hhmm
    r = clearing("inspect", _write(tmp_path, DEFINITE, encode(value)), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["header_problems"] == [
        "sender: `FRAF` is 4 characters, not a 5-character TADIG code (TD.57 Sender fatal 10)",
        "recipient: `hkgcl` is not a TADIG code (5 capital letters or digits)"
        " (TD.57 Recipient fatal 10)",
        "fileSequenceNumber: `1506` is not 5 digits (TD.57 FileSequenceNumber fatal 10)",
        "fileAvailableTimeStamp: localTimeStamp `2026112201490` is not 14 digits"
        " (CCYYMMDDhhmmss) (TD.57 FileAvailableTimeStamp fatal 10)",
        "transferCutOffTimeStamp: utcTimeOffset `+01` is not +hhmm or -hhmm"
        " (TD.57 TransferCutOffTimeStamp fatal 10)",
    ]
    text = clearing("inspect", str(tmp_path / DEFINITE)).stdout
    assert "  ! sender: `FRAF` is 4 characters" in text


def test_notification_header_syntax_is_flagged(tmp_path: Path, clearing: Cli) -> None:
    value = sample_value(NOTIFICATION)
    value[1]["fileCreationTimeStamp"] = stamp_long("20261122011800", "+2500")
    r = clearing("inspect", _write(tmp_path, NOTIFICATION, encode(value)), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["header_problems"] == [
        "fileCreationTimeStamp: utcTimeOffset `+2500` is outside -1300..+1400 in quarter hours"
        " (TD.57 FileCreationTimeStamp fatal 10)"
    ]


def test_clean_sample_has_no_header_problems(clearing: Cli) -> None:
    r = clearing("inspect", str(SAMPLES / DEFINITE), "--json")
    assert json.loads(r.stdout)["header_problems"] == []


def test_inspect_codes_are_the_rule_table_s() -> None:
    """Each item inspect checks has its TD.57 syntax row (code 10, fatal) in the rule table."""
    rows = {(r.context, r.code, r.severity) for r in csv_rules()}
    for _member, context, _check in SYNTAX_ITEMS:
        assert (context, 10, "fatal") in rows, context


# --------------------------------------------------------------------------------------------
# what a file that is no TAP file, or a broken one, is said to be

# a BatchControlInfo of 12 bytes: specificationVersionNumber [APPLICATION 201] = 3 and
# releaseVersionNumber [APPLICATION 189] = 12 (tags 5F 81 49 and 5F 81 3D, one content byte each)
BCI_3_12 = bytes.fromhex("640a5f814901035f813d010c")


def _inspect_error(clearing: Cli, tmp_path: Path, name: str, data: bytes) -> str:
    r = clearing("inspect", _write(tmp_path, name, data), "--json")
    assert r.returncode == 1, r.stdout
    # --json: the error is one JSON line on stdout (level: the severity of exit code 1)
    (line,) = r.stdout.strip().splitlines()
    error = json.loads(line)
    assert (error["level"], error["event"], error["exit_code"]) == ("data", "error", 1)
    return str(error["message"])


def test_xml_is_named(tmp_path: Path, clearing: Cli) -> None:
    xml = (CASES / "libxfsx_tap_notification.xml").read_bytes()  # starts with <Notification>
    line = _inspect_error(clearing, tmp_path, "CDABC08XYZ1523023", xml)
    assert "XML (<Notification>), not a TAP file" in line
    assert "offset 0" in line


def test_xml_in_utf16_with_a_prolog_is_named(tmp_path: Path, clearing: Cli) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<!-- tap3xml -->\n<TransferBatch/>\n'
    data = b"\xff\xfe" + text.encode("utf-16-le")
    assert "XML (<TransferBatch>), not a TAP file" in _inspect_error(clearing, tmp_path, "x", data)


def test_a_second_top_level_element_is_named(tmp_path: Path, clearing: Cli) -> None:
    """An empty TransferBatch (61 00: 2 bytes), then a whole TAP file from offset 2."""
    data = b"\x61\x00" + (SAMPLES / DEFINITE).read_bytes()
    line = _inspect_error(clearing, tmp_path, DEFINITE, data)
    assert (
        "a second top-level element [APPLICATION 1] at offset 2, after an empty top-level "
        "[APPLICATION 1] (2 bytes)"
    ) in line
    assert "top-level tag" not in line


def test_a_fault_deep_in_an_indefinite_file_names_the_element(
    tmp_path: Path, clearing: Cli
) -> None:
    """Indefinite lengths throughout, so that the header cannot be read without finding the
    end of the event list. Offsets: TransferBatch 0 (61 80), BatchControlInfo 2 (12 bytes),
    callEventDetails 14 (63 80), its entry 0 an empty mobileOriginatedCall 16 (69 80 00 00),
    entry 1 a gprsCall 20 (6E 80) whose first member at 22 is a primitive OCTET STRING with an
    indefinite length (04 80), which BER does not allow."""
    data = b"\x61\x80" + BCI_3_12 + b"\x63\x80" + b"\x69\x80\x00\x00" + b"\x6e\x80" + b"\x04\x80"
    data += b"\x00\x00" * 3
    line = _inspect_error(clearing, tmp_path, "deep.tap", data)
    assert (
        "decoding stopped at offset 22 in `transferBatch.callEventDetails[1].gprsCall`: "
        "indefinite length on a primitive element"
    ) in line
    assert "unreadable header" not in line


def test_a_truncated_file_says_where_it_ends(tmp_path: Path, clearing: Cli) -> None:
    """The TransferBatch declares 50 bytes of content (61 32); only the 12 of BatchControlInfo
    follow, so the file (14 bytes) ends inside releaseVersionNumber (offsets 9-13)."""
    data = b"\x61\x32" + BCI_3_12
    line = _inspect_error(clearing, tmp_path, "cut.tap", data)
    assert (
        "decoding stopped at the end of the file (offset 14) in "
        "`transferBatch.batchControlInfo.releaseVersionNumber`: [APPLICATION 1] at offset 0 "
        "declares 50 byte(s) of content, only 12 follow"
    ) in line
