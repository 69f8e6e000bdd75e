"""The sample files, the files sent back, partner overrides and re-runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from clearing.codecs import ciber
from clearing.returns.ciber import ciber_returns
from clearing.samples.ciber import CIBER_PARTNERS, HOME_SID_BID, _Partner, generate_ciber
from clearing.validate.ciber import CiberChecked, check_ciber
from clearing.validate.findings import Finding

from .conftest import DAY, OTHER, PARTNER, acted, batch, call, check, settings_with

if TYPE_CHECKING:
    from clearing.config import Settings
    from clearing.samples.ciber import CiberPartner

SAMPLES = Path(__file__).parents[3] / "data_samples" / "ciber"
VERDE = SAMPLES / "CIBER_04172_60099_20261122_951.dat"
NORDLYS = SAMPLES / "CIBER_16425_60099_20261122_027.dat"


def check_file(path: Path, settings: Settings, today: dt.date = DAY) -> CiberChecked:
    return check_ciber(path.read_bytes(), file=path.name, settings=settings, today=today)


# --------------------------------------------------------------------------- the samples


def first_type_22(data: bytes) -> tuple[int, int]:
    """(event index, line) of the first type-22 record, found without the codec."""
    event = 0
    for no, line in enumerate(data.splitlines(), start=1):
        if line[:2] in (b"22", b"32", b"42", b"52"):
            if line[:2] == b"22":
                return event, no
            event += 1
    raise AssertionError("no type-22 record")


def test_verde_sample_has_exactly_the_planted_air_charge_letter(settings: Settings) -> None:
    # the generator: "one type-22 record has a letter in its Air Charge (a record return
    # 4/07, field 026)"
    data = VERDE.read_bytes()
    event, line = first_type_22(data)
    assert data.splitlines()[line - 1][233:243].strip(b"0123456789") == b"O"
    checked = check_ciber(data, file=VERDE.name, settings=settings, today=DAY)
    assert acted(checked) == [("ciber.record.format", 7, event)]
    assert checked.findings[0].context == "air_charge"
    assert checked.rejected == (False, False)
    [(name, out)] = ciber_returns(checked, checked.findings, settings=settings, sequence=12)
    assert name == "CIBER_60099_04172_20261122_012_RET.dat"
    returned = out.split(b"\r\n")[1]
    assert returned[2:8] == b"407026"
    assert returned[8:] == data.splitlines()[line - 1][8:]


def test_nordlys_sample_has_exactly_the_planted_trailer_total(settings: Settings) -> None:
    # the generator: "the trailer's batch total is 1.00 CAD more than the sum of its records
    # (a batch reject, reason 26)"
    data = NORDLYS.read_bytes()
    checked = check_ciber(data, file=NORDLYS.name, settings=settings, today=DAY)
    assert acted(checked) == [("ciber.trailer.total", 26, None)]
    assert checked.rejected == (True,)
    trailer_offset = data.rindex(b"\n98") + 1
    assert checked.findings[0].byte_offset == trailer_offset
    [(name, out)] = ciber_returns(checked, checked.findings, settings=settings, sequence=12)
    assert name == "CIBER_60099_16425_20261122_027_RET.dat"
    # a batch reject: the batch itself, header indicator 3 and reason 26 (LF kept, as sent)
    lines, sent = out.split(b"\n")[:-1], data.split(b"\n")[:-1]
    assert len(lines) == len(sent)
    assert lines[0][23:24] == b"3"
    assert lines[0][33:35] == b"26"
    assert (
        lines[0][:23] + lines[0][24:33] + lines[0][35:]
        == sent[0][:23] + sent[0][24:33] + (sent[0][35:])
    )
    assert lines[1:] == sent[1:]
    decoded = ciber.decode(out)
    assert decoded.batches.column("original_return_indicator").to_pylist() == ["3"]
    assert decoded.batches.column("batch_reject_reason_code").to_pylist() == [26]


@pytest.mark.parametrize(("seed", "day"), [(1, DAY), (7, dt.date(2026, 3, 1)), (42, DAY)])
def test_generated_files_give_only_their_planted_faults(
    tmp_path: Path, settings: Settings, seed: int, day: dt.date
) -> None:
    found = []
    for path in generate_ciber(tmp_path, seed=seed, day=day):
        checked = check_ciber(path.read_bytes(), file=path.name, settings=settings, today=day)
        found += [(f.rule, f.code) for f in checked.findings]
    assert sorted(found) == [("ciber.record.format", 7), ("ciber.trailer.total", 26)]


@pytest.mark.parametrize("partner", CIBER_PARTNERS, ids=lambda p: p.sid_bid)
def test_clean_generated_batch_gives_nothing(settings: Settings, partner: CiberPartner) -> None:
    for day in (DAY, dt.date(2027, 1, 1)):
        gen = _Partner(partner, 3, day)
        details = [gen.call(5) for _ in range(30)] + [gen.daily_fee(5), gen.message(5)]
        data = ciber.encode_batch(
            details,
            creation_date=day,
            batch_sequence_number=5,
            sending_sid_bid=gen.p.sid_bid,
            receiving_sid_bid=HOME_SID_BID,
            currency_type=gen.p.currency_type,
            line_ending=gen.p.line_ending,
        )
        checked = check_ciber(data, file="clean.dat", settings=settings, today=day)
        assert checked.findings == []


# --------------------------------------------------------------------------- returns


def two_batches() -> bytes:
    first = batch([call(0), call(1, call_direction=0), call(2), call(3, call_date=DAY)])
    second = batch([call(4), call(5, serving_sid_bid="12345")], batch_sequence_number=102)
    return first + second


def test_record_returns_decode_as_a_return_batch(settings: Settings) -> None:
    data = two_batches()
    checked = check(data)
    assert acted(checked) == [("ciber.record.code_value", 6, 1),
                              ("ciber.record.serving_carrier", 15, 5)]  # fmt: skip
    [(name, out)] = ciber_returns(checked, checked.findings, settings=settings, sequence=998)
    assert name == "CIBER_60099_04172_20261122_998_RET.dat"
    decoded = ciber.decode(out)
    assert decoded.findings.num_rows == 0
    batches = decoded.batches.to_pylist()
    assert [(b["original_return_indicator"], b["sending_sid_bid"], b["receiving_sid_bid"],
             b["batch_sequence_number"], b["total_number_of_records"],
             b["original_total_number_of_records"], b["settlement_period"],
             b["clearinghouse_id"], b["batch_creation_date"]) for b in batches] == [
        ("2", "60099", "04172", 998, 1, 4, None, 0, DAY),
        ("2", "60099", "04172", 999, 1, 2, None, 0, DAY),
    ]  # fmt: skip
    sent = data.split(b"\r\n")
    back = out.split(b"\r\n")
    # returned lines are the sent lines, positions 3-8 excepted (Return Code, Reason, Field)
    assert back[1][:2] + back[1][8:] == sent[2][:2] + sent[2][8:]
    assert back[1][2:8] == b"406012"
    assert back[4][:2] + back[4][8:] == sent[8][:2] + sent[8][8:]
    assert back[4][2:8] == b"415008"
    rows = ciber.returns_table(decoded).to_pylist()
    assert [(r["field"], r["reason"]) for r in rows] == [
        ("call_direction", "invalid code value"),
        ("serving_sid_bid", "no roaming agreement / invalid home carrier"),
    ]


def test_sequence_wraps_after_999(settings: Settings) -> None:
    checked = check(two_batches())
    [(name, out)] = ciber_returns(checked, checked.findings, settings=settings, sequence=999)
    assert name.endswith("_999_RET.dat")
    assert ciber.decode(out).batches.column("batch_sequence_number").to_pylist() == [999, 1]
    with pytest.raises(ValueError, match="001-999"):
        ciber_returns(checked, checked.findings, settings=settings, sequence=0)


def test_same_inputs_same_bytes(settings: Settings) -> None:
    data = two_batches() + batch([call(9)], batch_sequence_number=103, clearinghouse_id=7)
    runs = []
    for _ in range(2):
        checked = check(data)
        runs.append(ciber_returns(checked, checked.findings, settings=settings, sequence=40))
    assert runs[0] == runs[1]
    [(name, out)] = runs[0]
    assert name == "CIBER_60099_04172_20261122_040_RET.dat"
    decoded = ciber.decode(out)
    # two return batches, then the rejected batch sent back whole
    assert decoded.batches.column("original_return_indicator").to_pylist() == ["2", "2", "3"]
    assert decoded.batches.column("batch_reject_reason_code").to_pylist() == [0, 0, 11]


def test_extra_findings_of_the_caller_are_returned(settings: Settings) -> None:
    data = two_batches()
    checked = check(data)
    history_duplicate = Finding(
        rule="ciber.record.duplicate",
        code=11,
        severity="severe",
        context="record",
        message="already received in CIBER_04172_60099_20261120_949.dat",
        event_index=2,
    )
    # a second finding on an already returned record: the first in rule order wins
    late_duplicate = Finding(
        rule="ciber.record.duplicate",
        code=11,
        severity="severe",
        context="record",
        message="already received",
        event_index=1,
    )
    warning = Finding(
        rule="ciber.record.duplicate", code=11, severity="warning", context="record",
        message="maybe", event_index=0,
    )  # fmt: skip
    findings = [*checked.findings, history_duplicate, late_duplicate, warning]
    [(_, out)] = ciber_returns(checked, findings, settings=settings, sequence=1)
    rows = ciber.returns_table(ciber.decode(out)).to_pylist()
    assert [(r["line"], r["return_reason_code"], r["invalid_field_identifier"]) for r in rows] == [
        (2, 6, 12),  # event 1: the code-value finding of check_ciber, not the duplicate
        (3, 11, 42),  # event 2: the caller's duplicate
        (6, 15, 8),  # event 5 (second batch); event 0's warning is not returned
    ]  # (lines of the return file: header, 2 records, trailer, header, record, trailer)


def test_caller_batch_finding_rejects_the_batch_at_its_offset(settings: Settings) -> None:
    data = two_batches()
    checked = check(data)
    second_header = data.index(b"\r\n01") + 2
    extra = Finding(
        rule="ciber.trailer.total", code=26, severity="fatal", context="batch",
        message="reconciliation", byte_offset=second_header + 10,
    )  # fmt: skip
    [(_, out)] = ciber_returns(checked, [*checked.findings, extra], settings=settings, sequence=3)
    decoded = ciber.decode(out)
    # batch 1 returns its record; batch 2 goes back whole (its record return is dropped)
    assert decoded.batches.column("original_return_indicator").to_pylist() == ["2", "3"]
    assert decoded.batches.column("batch_reject_reason_code").to_pylist() == [0, 26]


def test_nothing_to_return(settings: Settings) -> None:
    checked = check(batch())
    assert ciber_returns(checked, checked.findings, settings=settings, sequence=1) == []
    unreadable = check(b"garbage")
    assert ciber_returns(unreadable, unreadable.findings, settings=settings, sequence=1) == []


# --------------------------------------------------------------------------- overrides


def test_override_off_removes_the_finding() -> None:
    settings = settings_with({PARTNER: {"rules": {"ciber.record.format": "off"}}})
    checked = check_file(VERDE, settings)
    assert checked.findings == []
    assert ciber_returns(checked, [], settings=settings, sequence=1) == []


def test_override_for_another_partner_changes_nothing() -> None:
    other = settings_with({OTHER: {"rules": {"ciber.record.format": "off"}}})
    assert [f.rule for f in check_file(VERDE, other).findings] == ["ciber.record.format"]


def test_override_warning_reports_without_returning() -> None:
    settings = settings_with({PARTNER: {"rules": {"ciber.record.code_value": "warning"}}})
    checked = check(two_batches(), settings)
    assert [(f.rule, f.severity, f.event_index) for f in checked.findings] == [
        ("ciber.record.code_value", "warning", 1),
        ("ciber.record.serving_carrier", "severe", 5),
    ]
    [(_, out)] = ciber_returns(checked, checked.findings, settings=settings, sequence=1)
    rows = ciber.returns_table(ciber.decode(out)).to_pylist()
    assert [(r["return_reason_code"], r["invalid_field_identifier"]) for r in rows] == [(15, 8)]


def test_warning_does_not_stop_the_record() -> None:
    settings = settings_with({PARTNER: {"rules": {"ciber.record.code_value": "warning"}}})
    bad = call(1, call_direction=0, serving_sid_bid="12345")
    checked = check(batch([call(0), bad]), settings)
    assert [(f.rule, f.severity) for f in checked.findings] == [
        ("ciber.record.code_value", "warning"),
        ("ciber.record.serving_carrier", "severe"),
    ]


def test_batch_rule_as_warning_keeps_the_batch() -> None:
    settings = settings_with({OTHER: {"rules": {"ciber.trailer.total": "warning"}}})
    checked = check_file(NORDLYS, settings)
    assert [(f.rule, f.severity) for f in checked.findings] == [("ciber.trailer.total", "warning")]
    assert checked.rejected == (False,)
    assert ciber_returns(checked, checked.findings, settings=settings, sequence=1) == []
