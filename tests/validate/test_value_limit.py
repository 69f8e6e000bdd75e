"""Values beyond what int64 can sum are findings on their events, never overflows (issue 13, 9).

Two events of a real sample file get a charge of 2^62 each (8 octets: valid BER, a valid TD.57
AbsoluteAmount), and TotalCharge is kept their file's sum, now 2^63 + the rest: more than an
int64 holds. Summed in int64 the charges would wrap to a negative total and the audit check
would see a mismatch that is not there (or miss one that is).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from clearing.money import VALUE_LIMIT, exact_sum

from .tap_mutate import DEFINITE, check, mutate

BIG = 2**62


def _priced_moc_mtc(body: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(event index, chargeType 00 ChargeDetail) of the MOC/MTC events, in file order."""
    out = []
    for i, (kind, value) in enumerate(body["callEventDetails"]):
        if kind not in ("mobileOriginatedCall", "mobileTerminatedCall"):
            continue
        info = value["basicServiceUsedList"][0].get("chargeInformationList") or []
        details = info[0].get("chargeDetailList", []) if info else []
        if details and details[0]["chargeType"] == b"00":
            out.append((i, details[0]))
    return out


def test_two_charges_of_2_to_the_62_are_findings_and_the_audit_total_does_not_wrap() -> None:
    changed: list[int] = []

    def two_big(body: dict[str, Any]) -> None:
        for i, detail in _priced_moc_mtc(body)[:2]:
            body["auditControlInfo"]["totalCharge"] += BIG - detail["charge"]
            detail["charge"] = BIG
            changed.append(i)

    data = mutate(two_big, DEFINITE)
    out = check(data, file=DEFINITE)
    assert len(changed) == 2
    limit = sorted(f.event_index or 0 for f in out.findings if f.rule == "event.value.limit")
    assert limit == sorted(changed)
    assert all(f.severity == "severe" for f in out.findings if f.rule == "event.value.limit")
    # the declared total (> 2^63) equals the exact sum: no audit mismatch, nothing fatal
    rules = {f.rule for f in out.findings}
    assert not any(r.startswith("aci.") for r in rules), rules
    assert not out.fatal
    charges = out.events.column("charge")
    assert exact_sum(charges) > 2**63


def test_exact_sum_does_not_wrap_where_int64_does() -> None:
    col = pa.chunked_array([pa.array([BIG, BIG, None, -1], pa.int64())])
    assert exact_sum(col) == 2**63 - 1
    assert exact_sum(pa.array([], pa.int64())) == 0
    assert VALUE_LIMIT == 9_007_199_254_740_991  # 2^53 - 1
