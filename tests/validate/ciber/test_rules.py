"""One broken input per rule of ``specs/ciber/rules.csv``: exactly that rule fires.

Every case starts from a clean batch written by the codec (``conftest.batch``: two calls, an
SMS and a daily fee from 04172 to us) and breaks one field, by value before encoding or by
overwriting characters at their ciber.md §4 positions. Lines: 1 header, 2-5 the records
(events 0-3), 6 trailer.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from clearing.codecs import ciber
from clearing.returns.ciber import ciber_returns
from clearing.validate.ciber import ciber_rules

from .conftest import (
    DAY,
    OTHER,
    PARTNER,
    acted,
    batch,
    call,
    check,
    clearinghouse_batch,
    daily_fee,
    handoff,
    message,
    patch,
    settings_with,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TRAILER = 6  # line of the trailer of a clean batch
YESTERDAY = DAY - dt.timedelta(days=1)


def returned_batch(first: dict[str, object], second: dict[str, object]) -> bytes:
    """A batch of *our* records that 04172 sends back (indicator 2): home 04172, serving us."""
    ours = {"home_sid_bid": PARTNER, "serving_sid_bid": "60099"}
    details = [call(0, **ours, **first), call(1, **ours, **second)]
    return batch(details, original_return_indicator="2")


def returned(code: str) -> dict[str, object]:
    return {"return_code": int(code[0]), "return_reason_code": int(code[1:3]),
            "invalid_field_identifier": int(code[3:])}  # fmt: skip


# rule → (broken input, expected event index or None for a batch finding)
CASES: dict[str, tuple[Callable[[], bytes], int | None]] = {
    "ciber.file.unreadable": (lambda: b"22 this is not a CIBER batch\r\n", None),
    "ciber.batch.creation_date": (lambda: patch(batch(), 1, 3, "261340"), None),
    "ciber.batch.future_date": (lambda: batch(creation_date=DAY + dt.timedelta(days=1)), None),
    "ciber.batch.sending_sid_bid": (lambda: batch(sending_sid_bid="00000"), None),
    "ciber.batch.receiving_sid_bid": (lambda: batch(receiving_sid_bid="00000"), None),
    "ciber.batch.recipient": (lambda: batch(receiving_sid_bid="60098"), None),
    "ciber.batch.release": (lambda: patch(batch(), 1, 22, "03"), None),
    "ciber.batch.currency": (lambda: patch(patch(batch(), 1, 25, "99"), TRAILER, 74, "99"), None),
    "ciber.batch.sequence": (lambda: batch(batch_sequence_number=0), None),
    "ciber.batch.reject_reason": (lambda: batch(batch_reject_reason_code=5), None),
    "ciber.batch.indicator": (lambda: batch(original_return_indicator="4"), None),
    "ciber.batch.clearinghouse": (lambda: batch(clearinghouse_id=7), None),
    "ciber.batch.settlement_period": (
        lambda: batch(clearinghouse_id=2, settlement_period=dt.date(2026, 12, 14)),
        None,
    ),
    "ciber.batch.contents": (lambda: batch(batch_contents=8), None),
    "ciber.trailer.creation_date": (lambda: patch(batch(), TRAILER, 3, "261121"), None),
    "ciber.trailer.sending_sid_bid": (lambda: patch(batch(), TRAILER, 12, OTHER), None),
    "ciber.trailer.record_count": (lambda: patch(batch(), TRAILER, 22, "0005"), None),
    "ciber.trailer.total": (lambda: patch(batch(), TRAILER, 26, "000000000001"), None),
    "ciber.trailer.settlement_period": (lambda: patch(batch(), TRAILER, 38, "261215"), None),
    "ciber.trailer.currency": (lambda: patch(batch(), TRAILER, 74, "02"), None),
    "ciber.trailer.sequence": (lambda: patch(batch(), TRAILER, 9, "102"), None),
    "ciber.trailer.clearinghouse": (lambda: patch(batch(), TRAILER, 44, "1"), None),
    "ciber.trailer.original_sequence": (
        lambda: clearinghouse_batch(original_batch_sequence_number=0),
        None,
    ),
    # 97 trailer positions 58-63: Original Batch Creation Date
    "ciber.trailer.original_date": (lambda: patch(clearinghouse_batch(), 6, 58, "261340"), None),
    "ciber.trailer.original_count": (lambda: patch(batch(), TRAILER, 50, "0000"), None),
    "ciber.trailer.original_total": (lambda: patch(batch(), TRAILER, 60, "X"), None),
    "ciber.trailer.total_sign": (lambda: patch(batch(), TRAILER, 45, "A"), None),
    "ciber.trailer.original_sign": (lambda: patch(batch(), TRAILER, 46, "J"), None),
    "ciber.record.contents_42": (lambda: batch([call(0), handoff()]), 1),
    "ciber.record.contents_other": (lambda: batch([handoff(), call(0)], batch_contents=2), 1),
    # positions 3-8: Return Code, Return Reason Code, Invalid Field Identifier
    "ciber.record.return_code_initial": (lambda: patch(batch(), 3, 3, "4"), 1),
    "ciber.record.return_code_returned": (
        lambda: returned_batch(returned("407026"), returned("000000")),
        1,
    ),
    "ciber.record.field_identifier": (lambda: patch(batch(), 4, 6, "300"), 2),
    # positions 234-243: Air Charge
    "ciber.record.format": (lambda: patch(batch(), 3, 240, "O"), 1),
    "ciber.record.code_value": (lambda: batch([call(0), call(1, call_direction=0)]), 1),
    "ciber.record.call_completion": (
        lambda: batch([call(0), call(1, call_completion_indicator=5)]),
        1,
    ),
    "ciber.record.currency": (lambda: batch([call(0), message(currency_type=2)]), 1),
    "ciber.record.total": (
        lambda: batch([call(0), daily_fee(total_charges_and_taxes=400)]),
        1,
    ),
    "ciber.record.charge_indicator": (
        lambda: batch([call(0), call(1, other_charge_no_1=50, total_charges_and_taxes=193)]),
        1,
    ),
    "ciber.record.special_features": (
        lambda: batch([call(0), call(1, special_features_used="F")]),
        1,
    ),
    "ciber.record.occ_date_order": (
        lambda: batch([call(0), daily_fee(occ_end_date=DAY - dt.timedelta(days=2))]),
        1,
    ),
    "ciber.record.home_carrier": (lambda: batch([call(0), call(1, home_sid_bid="60098")]), 1),
    "ciber.record.serving_carrier": (
        lambda: batch([call(0), call(1, serving_sid_bid="12345")]),
        1,
    ),
    "ciber.record.future_date": (
        lambda: batch([call(0), call(1, call_date=DAY + dt.timedelta(days=1))]),
        1,
    ),
    "ciber.record.late": (
        lambda: batch([call(0), call(1, call_date=DAY - dt.timedelta(days=31))]),
        1,
    ),
    "ciber.record.return_late": (
        lambda: returned_batch(
            returned("407026"),
            {**returned("407026"), "call_date": DAY - dt.timedelta(days=61)},
        ),
        1,
    ),
    "ciber.record.duplicate": (lambda: batch([call(0), call(1), call(0)]), 2),
}

# the Invalid Field Identifier each record case must come back with (ciber.md §7.3)
FIELD_IDS = {
    "ciber.record.contents_42": 92,
    "ciber.record.contents_other": 93,
    "ciber.record.return_code_initial": 46,
    "ciber.record.return_code_returned": 44,
    "ciber.record.field_identifier": 50,
    "ciber.record.format": 26,  # air charge
    "ciber.record.code_value": 12,  # call direction
    "ciber.record.call_completion": 13,
    "ciber.record.currency": 21,
    "ciber.record.total": 9,
    "ciber.record.charge_indicator": 114,  # other charge no. 1
    "ciber.record.special_features": 26,  # air charge with F
    "ciber.record.occ_date_order": 51,
    "ciber.record.home_carrier": 211,
    "ciber.record.serving_carrier": 8,
    "ciber.record.future_date": 7,  # call date
    "ciber.record.late": 7,
    "ciber.record.return_late": 45,
    "ciber.record.duplicate": 42,
}


def test_every_rule_has_its_own_broken_input() -> None:
    assert list(CASES) == list(ciber_rules())
    assert set(FIELD_IDS) == {r for r, rule in ciber_rules().items() if rule.scope == "record"}


@pytest.mark.parametrize("rule_id", list(CASES))
def test_rule_fires_alone(rule_id: str) -> None:
    make, event = CASES[rule_id]
    rule = ciber_rules()[rule_id]
    checked = check(make())
    assert acted(checked) == [(rule_id, rule.code, event)], checked.findings
    finding = next(f for f in checked.findings if f.rule == rule_id)
    assert finding.severity == rule.severity
    assert finding.message
    if rule.scope == "batch":
        assert rule.code == (rule.batch_reject_code or 0)
        if checked.decoded is not None:
            assert checked.rejected == (True,)
            assert checked.reject_reasons == (rule.code,)
            assert finding.byte_offset is not None
    else:
        assert checked.rejected == (False,)
        assert finding.code == rule.reason_code
        # the finding points at the record's line
        assert checked.events.column("byte_offset")[event].as_py() == finding.byte_offset


@pytest.mark.parametrize("rule_id", [r for r in CASES if ciber_rules()[r].scope == "record"])
def test_record_rule_returns_its_codes(rule_id: str) -> None:
    make, _ = CASES[rule_id]
    rule = ciber_rules()[rule_id]
    checked = check(make())
    settings = settings_with()
    [(name, data)] = ciber_returns(checked, checked.findings, settings=settings, sequence=7)
    table = ciber.returns_table(ciber.decode(data)).to_pylist()
    codes = [(r["return_code"], r["return_reason_code"], r["invalid_field_identifier"])
             for r in table]  # fmt: skip
    assert codes == [(rule.return_code, rule.reason_code, FIELD_IDS[rule_id])]
    assert name.startswith("CIBER_60099_04172_20261122_007")


def test_unreadable_file_is_one_fatal_finding_without_events() -> None:
    checked = check(b"01" + b"\x00" * 50)
    assert checked.unreadable
    assert checked.decoded is None
    assert checked.events.num_rows == 0
    assert [(f.rule, f.code, f.severity) for f in checked.findings] == [
        ("ciber.file.unreadable", 0, "fatal")
    ]
    assert checked.findings[0].byte_offset == 2
    assert checked.rejected == ()


def test_clean_batches_of_every_kind_give_nothing() -> None:
    for data in (
        batch(),
        batch([handoff(), handoff(transaction_code_i="00001235")], batch_contents=2),
        batch(clearinghouse_id=2, settlement_period=dt.date(2026, 12, 15)),
        clearinghouse_batch(),
        returned_batch(returned("407026"), returned("411042")),
        batch() + batch([call(7), call(8)], batch_sequence_number=102),
    ):
        checked = check(data)
        assert checked.findings == []
        assert not any(checked.rejected)
        assert checked.decoded is not None
        assert checked.events.num_rows == checked.decoded.events.num_rows


def test_settlement_period_that_is_not_a_date() -> None:
    checked = check(patch(batch(), 1, 27, "261340"))
    assert acted(checked) == [("ciber.batch.settlement_period", 12, None)]


def test_trailer_record_count_zero() -> None:
    checked = check(batch([]))  # an empty batch: its original count is 0 as well
    assert acted(checked) == [
        ("ciber.trailer.record_count", 25, None),
        ("ciber.trailer.original_count", 34, None),
    ]
    assert checked.reject_reasons == (25,)


def test_unknown_clearinghouse() -> None:
    data = clearinghouse_batch()
    data = patch(patch(data, 1, 12, "12345"), 6, 12, "12345")
    assert acted(check(data)) == [("ciber.batch.sending_sid_bid", 4, None)]


def test_first_error_per_record_in_rule_order() -> None:
    # a record late, from an unknown serving carrier, with a bad call direction: the code
    # value rule comes first in rules.csv and is the only one reported
    bad = call(1, call_direction=0, serving_sid_bid="12345", call_date=DAY - dt.timedelta(40))
    checked = check(batch([call(0), bad]))
    assert acted(checked) == [("ciber.record.code_value", 6, 1)]
    # the next record is still checked
    checked = check(batch([call(0), bad, call(2, serving_sid_bid="12345")]))
    assert acted(checked) == [("ciber.record.code_value", 6, 1),
                              ("ciber.record.serving_carrier", 15, 2)]  # fmt: skip


def test_batch_reject_reason_is_the_first_rule() -> None:
    # a wrong trailer total and a bad total sign: both reported, rejected with 26
    data = patch(patch(batch(), TRAILER, 26, "000000000001"), TRAILER, 45, "A")
    checked = check(data)
    assert [(f.rule, f.code) for f in checked.findings] == [
        ("ciber.trailer.total", 26),
        ("ciber.trailer.total_sign", 38),
    ]
    assert checked.reject_reasons == (26,)


def test_records_of_a_rejected_batch_are_not_checked_one_by_one() -> None:
    data = batch([call(0, call_direction=0)], clearinghouse_id=7)
    assert acted(check(data)) == [("ciber.batch.clearinghouse", 11, None)]


def test_late_days_per_partner() -> None:
    data = batch([call(0), call(1, call_date=DAY - dt.timedelta(days=31))])
    assert acted(check(data, settings_with({PARTNER: {"late_days": 40}}))) == []
    data = batch([call(0), call(1, call_date=DAY - dt.timedelta(days=11))])
    assert acted(check(data, settings_with({PARTNER: {"late_days": 10}}))) == [
        ("ciber.record.late", 10, 1)
    ]
    # 32/42 records get twice the limit (S1: 30 and 60 days)
    data = batch([call(0), message(call_date=DAY - dt.timedelta(days=45))])
    assert acted(check(data)) == []
    data = batch([call(0), message(call_date=DAY - dt.timedelta(days=61))])
    assert acted(check(data)) == [("ciber.record.late", 10, 1)]
    # 52: the OCC end date counts
    old = DAY - dt.timedelta(days=31)
    data = batch([daily_fee(occ_start_date=old, occ_end_date=old)])
    [finding] = check(data).findings
    assert (finding.rule, finding.context) == ("ciber.record.late", "occ_end_date")


def test_duplicates_across_batches_of_one_file() -> None:
    data = batch() + batch([call(5), call(1)], batch_sequence_number=102)
    checked = check(data)
    assert acted(checked) == [("ciber.record.duplicate", 11, 5)]
    assert "line 3" in checked.findings[0].message


def test_type_42_carriers() -> None:
    data = batch([handoff(receiving_sid_bid="60098")], batch_contents=2)
    assert acted(check(data)) == [("ciber.record.home_carrier", 15, 0)]
    data = batch([handoff(sending_sid_bid="12345")], batch_contents=2)
    assert acted(check(data)) == [("ciber.record.serving_carrier", 15, 0)]


def test_type_52_future_record_create_date() -> None:
    data = batch([daily_fee(record_create_date=DAY + dt.timedelta(days=1))])
    [finding] = check(data).findings
    assert (finding.rule, finding.context) == ("ciber.record.future_date", "record_create_date")


def test_zero_call_date_is_a_format_error() -> None:
    data = patch(batch(), 3, 105, "000000")
    [finding] = check(data).findings
    assert (finding.rule, finding.code, finding.context) == ("ciber.record.format", 7, "call_date")
