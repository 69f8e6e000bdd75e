"""Rating never wraps and never crashes on huge values: checked arithmetic (issue 14, Build 4).

Validation keeps each event's values in range (``event.duration.limit``, ``event.volume.limit``,
``event.value.limit``); rating is called here directly, without validation in front, with
values beyond those limits, to show what happens when a sum or a product still does not fit:

* retail: a package error (:class:`~clearing.errors.ValueRangeError`, exit code 1), never a
  DuckDB overflow (an internal error, exit 4), never a wrapped sum;
* visitors' CDRs priced at the IOT: a charge beyond ``VALUE_LIMIT`` is held (``unrated`` with
  its reason), never an Int64 that wrapped;
* mediation CDRs: a duration or a data volume beyond the limits is quarantined at reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from clearing.errors import ValueRangeError
from clearing.money import DURATION_LIMIT, VALUE_LIMIT, VOLUME_LIMIT
from clearing.rating.cdr import read_cdrs
from clearing.rating.inbound import rate_visitors
from tests.rating.conftest import records
from tests.rating.test_cdr import HEADER
from tests.rating.test_retail import MB, T0, event, events, flat_tiers, plan, rate, world

if TYPE_CHECKING:
    from pathlib import Path

    from clearing.rating._book import Rates


def test_the_limits() -> None:
    assert DURATION_LIMIT == 1_000_000  # 11 days 13 h 46 min 40 s
    assert VOLUME_LIMIT == 1_099_511_627_776  # 1 TiB
    assert VALUE_LIMIT == 2**53 - 1


# --------------------------------------------------------------------------------------------
# retail


def test_retail_at_the_volume_limit_is_exact() -> None:
    # 2^40 bytes each way = 2^41 bytes = 2 097 152 MB (1 KB increments: no rounding) at
    # HK$1.00 per MB → 209 715 200 cents
    ref = world(plan("BIG"), tiers=flat_tiers("BIG", 100))
    ev = event("gprs", T0, volume=2 * VOLUME_LIMIT)
    lines, summary = rate(events(ev), ref)
    (line,) = lines.to_dicts()
    assert (line["units"], line["amount"]) == (2**41, 2**41 // MB * 100)
    assert line["amount"] == 209_715_200
    assert summary.row(0, named=True)["amount"] == 209_715_200


def test_retail_volumes_beyond_int64_are_a_package_error_not_a_crash() -> None:
    # one session of 2^62 + 2^62 bytes: incoming + outgoing is 2^63, one more than INT64 holds
    ref = world(plan("BIG"), tiers=flat_tiers("BIG", 100))
    ev = event("gprs", T0) | {"data_volume_incoming": 2**62, "data_volume_outgoing": 2**62}
    with pytest.raises(ValueRangeError, match="does not fit in 64 bits"):
        rate(events(ev), ref)


def test_retail_a_cycle_sum_beyond_int64_is_a_package_error() -> None:
    # two sessions of 2^62 bytes each (each fits): the cycle's units, 2^63, do not
    ref = world(plan("BIG"), tiers=flat_tiers("BIG", 1))
    evs = [event("gprs", T0, volume=2**62), event("gprs", T0.replace(hour=9), volume=2**62)]
    with pytest.raises(ValueRangeError, match="retail rating"):
        rate(events(*evs), ref)


# --------------------------------------------------------------------------------------------
# visitors at the IOT (tiny_rates: TSTA1 gprs 2.5 SDR per MiB, 1 KiB increments, 5 decimals)


def _gprs(rates: Rates, up: int, down: int) -> dict[str, object]:
    rows = records(
        {
            "record_type": "gprs",
            "volume_up": up,
            "volume_down": down,
            "duration": 600,
            "apn": "internet",
        }
    )
    out = rate_visitors(rows, rates)
    assert out.height == 1
    return out.row(0, named=True)


def test_a_visitor_session_at_the_volume_limit_is_rated_exactly(tiny_rates: Rates) -> None:
    # 2^41 bytes = 2^21 MiB × 2.5 SDR = 5 242 880 SDR → 524 288 000 000 at 5 decimals
    r = _gprs(tiny_rates, VOLUME_LIMIT, VOLUME_LIMIT)
    assert (r["status"], r["charged_units"], r["charge"]) == ("rated", 2**41, 524_288_000_000)


def test_a_visitor_charge_beyond_the_value_limit_is_held(tiny_rates: Rates) -> None:
    # 2^62 bytes = 2^42 MiB × 2.5 SDR = 10 995 116 277 760 SDR → 1.0995e18 at 5 decimals:
    # above 2^53 − 1, so held (unrated, with its reason), never a wrapped Int64
    r = _gprs(tiny_rates, 2**61, 2**61)
    assert r["status"] == "unrated"
    assert r["charge"] is None
    assert r["tax"] is None
    assert "above 9007199254740991" in str(r["reason"])


# --------------------------------------------------------------------------------------------
# mediation CDRs: the same limits at reading


def test_cdr_durations_and_volumes_beyond_the_limits_are_quarantined(tmp_path: Path) -> None:
    rows = [
        HEADER,
        # at the limits: kept
        "B1,gprs,208010000000001,,,,,2026-11-23T10:00:00,+0800,1000000,1099511627776,"
        "1099511627776,internet,sgsn,203.0.113.1,,,,",
        # one second / one byte above: quarantined, each value named
        "B2,moc,208010000000001,,,85291234567,,2026-11-23T10:00:00,+0800,1000001,,,,msc,"
        "85290100001,,,,",
        "B3,gprs,208010000000001,,,,,2026-11-23T10:00:00,+0800,60,1099511627777,1,internet,"
        "sgsn,203.0.113.1,,,,",
        # beyond INT64: not an integer
        "B4,gprs,208010000000001,,,,,2026-11-23T10:00:00,+0800,60,1,"
        "99999999999999999999,internet,sgsn,203.0.113.1,,,,",
    ]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = read_cdrs([path])
    assert r.records["record_id"].to_list() == ["B1"]
    found = {(f["line"], f["field"], f["problem"]) for f in r.findings.iter_rows(named=True)}
    assert found == {
        (3, "duration", "must be <=1000000"),
        (4, "volume_up", "must be <=1099511627776"),
        (5, "volume_down", "not an integer"),
    }
    assert r.quarantined.sort("line")["line"].to_list() == [3, 4, 5]
