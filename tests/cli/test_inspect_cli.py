"""`clearing inspect` as an analyst runs it: a real subprocess, real files, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

ROOT = Path(__file__).parents[2]
CASES = ROOT / "tests" / "codecs" / "cases"
SAMPLES = ROOT / "data_samples" / "tap"


def test_inspect_json_has_the_documented_fields(clearing: Cli) -> None:
    r = clearing("inspect", str(CASES / "tree-model_tap_3_12_larger_cdr.ber"), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    for key in (
        "kind",
        "version",
        "sender",
        "recipient",
        "file_sequence_number",
        "test_data",
        "event_count",
        "event_count_by_type",
        "audit",
        "recomputed",
        "tap_decimal_places",
        "local_currency",
    ):
        assert key in s
    assert s["kind"] == "tap"
    assert s["version"] == "3.12"
    assert s["file_sequence_number"] == "31707"
    assert isinstance(s["test_data"], bool)
    for key in ("total_charge", "total_tax_value", "call_event_details_count"):
        assert isinstance(s["audit"][key], int)
    assert set(s["recomputed"]) >= {"total_charge", "total_tax_value"}


def test_inspect_generated_file_reconciles(clearing: Cli) -> None:
    path = SAMPLES / "CDFRAF9HKGCL01506"
    s = json.loads(clearing("inspect", str(path), "--json").stdout)
    assert (s["sender"], s["recipient"], s["file_sequence_number"]) == ("FRAF9", "HKGCL", "01506")
    assert s["audit"]["total_charge"] == s["recomputed"]["total_charge"]
    assert s["audit"]["total_tax_value"] == s["recomputed"]["total_tax_value"]
    assert s["audit"]["call_event_details_count"] == s["event_count"] == 360


def test_inspect_csv_and_events_give_one_row_per_event(clearing: Cli) -> None:
    path = str(SAMPLES / "CDGBRG9HKGCL00353")
    rows = list(csv.DictReader(io.StringIO(clearing("inspect", path, "--csv").stdout)))
    assert len(rows) == 210
    assert rows[0]["source_format"] == "tap"
    lines = clearing("inspect", path, "--events").stdout.splitlines()
    assert len(lines) == 210
    first = json.loads(lines[0])
    assert first["event_index"] == 0
    assert first["byte_offset"] == int(rows[0]["byte_offset"])
    data = Path(path).read_bytes()
    # the offset and length delimit the event's own bytes (an APPLICATION-tagged element)
    chunk = data[first["byte_offset"] : first["byte_offset"] + first["byte_length"]]
    assert chunk[0] & 0xE0 == 0x60


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("libxfsx_tap_notification.ber", "notification"),
        ("libxfsx_rap_ack.ber", "ack"),
        ("libxfsx_nrt_2_1.ber", "nrt"),
    ],
)
def test_inspect_other_kinds(name: str, kind: str, clearing: Cli) -> None:
    r = clearing("inspect", str(CASES / name), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == kind


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("libxfsx_tap_3_12_trailing_eoc_invalid.ber", "trailing byte(s)"),
        ("libxfsx_rap_mini.ber", "returnDetails"),
        ("libxfsx_tap_3_12_negative_volume.ber", "out of range"),
    ],
)
def test_bad_file_exits_1_with_one_line(name: str, needle: str, clearing: Cli) -> None:
    r = clearing("inspect", str(CASES / name))
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert name in lines[0]
    assert "offset" in lines[0]
    # with --json the error is one JSON line on stdout (a data problem), nothing on stderr
    r = clearing("inspect", str(CASES / name), "--json")
    assert r.returncode == 1
    assert r.stderr == ""
    (line,) = r.stdout.splitlines()
    error = json.loads(line)
    assert (error["level"], error["event"], error["exit_code"]) == ("data", "error", 1)
    assert error["message"] == lines[0].removeprefix("error: ")


def test_missing_file_is_a_config_error(tmp_path: Path, clearing: Cli) -> None:
    r = clearing("inspect", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "cannot read" in r.stderr


def test_text_view_marks_differences(clearing: Cli) -> None:
    r = clearing("inspect", str(CASES / "libxfsx_tap_3_12_valid.ber"))
    assert r.returncode == 0
    line = next(x for x in r.stdout.splitlines() if "total_charge " in x)
    assert "2300" in line
    assert "71200" in line
    assert "differs" in line
