"""The record identity (clearing.identity): hand-worked counts, the difference, the key order."""

from __future__ import annotations

import pytest

from clearing.identity import STATUSES, Identity, Status


def test_statuses_in_the_identity_order() -> None:
    assert STATUSES == ("accepted", "returned", "duplicate", "late", "quarantined", "held")
    assert [s.value for s in Status] == list(STATUSES)
    # deliberate: a StrEnum member equals its value (mypy sees two unrelated literals)
    assert Status.LATE == "late"  # type: ignore[comparison-overlap]
    assert f"n_{Status.LATE}" == "n_late"


def test_of_counts_one_status_per_record() -> None:
    statuses = ["accepted", "accepted", "returned", "late", "accepted", "quarantined"]
    i = Identity.of(7, statuses)
    assert i == Identity(in_=7, accepted=3, returned=1, duplicate=0, late=1, quarantined=1)
    assert i.out == 6
    assert i.difference == 1  # one record came in and went nowhere


def test_balanced_identity_has_no_difference() -> None:
    i = Identity(in_=10, accepted=4, returned=3, duplicate=1, late=1, quarantined=1)
    assert i.difference == 0
    assert Identity().difference == 0


@pytest.mark.parametrize("status", STATUSES)
def test_difference_nonzero_when_a_count_is_off(status: str) -> None:
    counts = {
        "accepted": 4, "returned": 3, "duplicate": 1, "late": 1, "quarantined": 1, "held": 0,
    }  # fmt: skip
    assert Identity(10, **counts).difference == 0
    assert Identity(10, **{**counts, status: counts[status] + 1}).difference == -1
    assert Identity(10, **{**counts, status: counts[status] - 1}).difference == 1
    assert Identity(11, **counts).difference == 1


def test_add_sums_count_by_count() -> None:
    a = Identity(in_=5, accepted=3, returned=2)
    b = Identity(in_=4, duplicate=1, late=1, quarantined=1)
    total = a.add(b)
    assert total == Identity(in_=9, accepted=3, returned=2, duplicate=1, late=1, quarantined=1)
    assert total.difference == 1
    assert a + b == total
    assert a == Identity(in_=5, accepted=3, returned=2)  # unchanged


def test_as_dict_is_the_manifest_reconciliation_in_order() -> None:
    d = Identity(in_=9, accepted=3, returned=2, duplicate=1, late=1, quarantined=1).as_dict()
    assert list(d) == [
        "in", "accepted", "returned", "duplicate", "late", "quarantined", "held", "difference",
    ]  # fmt: skip
    assert d == {
        "in": 9, "accepted": 3, "returned": 2, "duplicate": 1, "late": 1, "quarantined": 1,
        "held": 0, "difference": 1,
    }  # fmt: skip


def test_from_dict_round_trips_and_recomputes_the_difference() -> None:
    i = Identity(in_=9, accepted=3, returned=2, duplicate=1, late=1, quarantined=1)
    assert Identity.from_dict(i.as_dict()) == i
    assert Identity.from_dict({"in": 2, "accepted": 2, "difference": 99}).difference == 0


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="rated"):
        Identity.of(1, ["rated"])
