"""CIBER events get a UTC start from the partner's offset or the record's time zone code."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from clearing.errors import ConfigError
from clearing.validate.stage import validate_ciber_file

from .conftest import DAY, PARTNER, batch, call, settings_with

YESTERDAY = DAY - dt.timedelta(days=1)
UTC = dt.UTC


def _starts(data: bytes, partner: dict[str, Any]) -> list[tuple[Any, Any]]:
    result, _checked = validate_ciber_file(
        data,
        file="CIBER_04172_60099_20261122_101.dat",
        settings=settings_with({PARTNER: partner}),
        day=DAY,
    )
    ev = result.events
    starts, offsets = ev.column("start_utc").to_pylist(), ev.column("utc_offset").to_pylist()
    return list(zip(starts, offsets, strict=True))


def test_partner_offset_gives_the_utc_start() -> None:
    # 23:30:00 local yesterday at UTC−5 is 04:30:00 UTC today
    data = batch([call(0, air_connect_time=dt.time(23, 30, 0))])
    assert _starts(data, {"utc_offset": "-05:00"}) == [
        (dt.datetime(2026, 11, 22, 4, 30, 0, tzinfo=UTC), "-0500")
    ]
    # "+0530" form too: 23:30 at UTC+5:30 is 18:00 UTC the same day
    assert _starts(data, {"utc_offset": "+0530"}) == [
        (dt.datetime(2026, 11, 21, 18, 0, 0, tzinfo=UTC), "+0530")
    ]


def test_time_zone_code_wins_over_the_partner_offset() -> None:
    details = [
        call(0, time_zone_indicator=8, daylight_savings_indicator=1),  # 10:00:00 local
        call(1, time_zone_indicator=8, daylight_savings_indicator=0),  # 10:00:01 local
        call(2, time_zone_indicator=99),  # 10:00:02, unknown zone: the partner's offset
    ]
    zones = {"08": "-08:00", "08/1": "-07:00"}
    got = _starts(batch(details), {"utc_offset": "-05:00", "time_zones": zones})
    assert got == [
        (dt.datetime(2026, 11, 21, 17, 0, 0, tzinfo=UTC), "-0700"),
        (dt.datetime(2026, 11, 21, 18, 0, 1, tzinfo=UTC), "-0800"),
        (dt.datetime(2026, 11, 21, 15, 0, 2, tzinfo=UTC), "-0500"),
    ]


def test_no_offset_and_no_known_code_leaves_the_start_unknown() -> None:
    data = batch([call(0, time_zone_indicator=8)])
    assert _starts(data, {}) == [(None, None)]
    assert _starts(data, {"time_zones": {"05": "-05:00"}}) == [(None, None)]


@pytest.mark.parametrize("bad", [{"utc_offset": "EST"}, {"time_zones": {"08": "-8"}}])
def test_bad_offsets_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises((ConfigError, ValueError)):
        settings_with({PARTNER: bad})
