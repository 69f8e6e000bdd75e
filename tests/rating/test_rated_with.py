"""What rated a lake file, and when the monthly rerate may take the file as it is."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from clearing.rating import rated_with

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 3)


def _reference(**iot: dict[str, str]) -> dict[str, Any]:
    return {
        "code": "c0de",
        "tables": {"agreements": "a1", "imsi_ranges": "i1", "fx": "f1"},
        "iot": {"inbound": {"AAA": "h1", "BBB": "h2"}, "outbound": {"AAA": "o1"}, **iot},
    }


def _files(lake: Path) -> dict[str, Path]:
    out = {}
    for rel in (
        f"rated_visitors/date={DAY}/partner=AAA/part-0.parquet",
        f"rated_visitors/date={DAY}/partner=BBB/part-0.parquet",
        f"unrated_visitors/date={DAY}/part-0.parquet",
        f"rated_partner/date={DAY}/partner=AAA/part-0.parquet",
    ):
        p = lake / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())
        out[rel.split("/")[0] + "/" + rel.split("/")[2]] = p
    return out


def test_a_file_is_current_for_its_own_partner_and_direction_only(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    f = _files(lake)
    then = _reference()
    rated_with.record(lake, DAY, list(f.values()), then)
    recorded = rated_with.reference_of(lake, DAY)
    assert set(recorded) == {p.relative_to(lake).as_posix() for p in f.values()}

    def current(now: dict[str, Any]) -> set[str]:
        return {k for k, p in f.items() if rated_with.current(p, lake, recorded, now)}

    assert current(then) == set(f)
    # BBB's inbound tariff changed: BBB's visitors and the unrated rows (any inbound change
    # can rate them) are rated again; AAA's visitors and AAA's partner events are not
    bbb = _reference(inbound={"AAA": "h1", "BBB": "h2-new"})
    assert current(bbb) == {"rated_visitors/partner=AAA", "rated_partner/partner=AAA"}
    # an outbound change touches the partner events only
    out = _reference(outbound={"AAA": "o2"})
    assert current(out) == {
        "rated_visitors/partner=AAA",
        "rated_visitors/partner=BBB",
        "unrated_visitors/part-0.parquet",
    }
    # another fx table, or other rating code: nothing is current
    assert current({**then, "tables": {**then["tables"], "fx": "f2"}}) == set()
    assert current({**then, "code": "other"}) == set()
    assert current({**then, "code": ""}) == set()  # code unknown: never trusted


def test_a_changed_file_is_not_trusted_and_a_rewrite_keeps_the_others(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    f = _files(lake)
    rated_with.record(lake, DAY, list(f.values()), _reference())
    # a file edited after the record: its bytes differ, it has no reference any more
    f["rated_visitors/partner=BBB"].write_bytes(b"other rows")
    recorded = rated_with.reference_of(lake, DAY)
    assert f["rated_visitors/partner=BBB"].relative_to(lake).as_posix() not in recorded
    assert len(recorded) == 3
    # a replay rewrites AAA's visitors with another reference: the other entries stay as
    # recorded (a sent partner's file is kept, rated with what rated it then)
    new = _reference(inbound={"AAA": "h9", "BBB": "h2"})
    f["rated_visitors/partner=AAA"].write_bytes(b"replayed rows")
    rated_with.record(lake, DAY, [f["rated_visitors/partner=AAA"]], new)
    again = rated_with.reference_of(lake, DAY)
    assert again[f["rated_visitors/partner=AAA"].relative_to(lake).as_posix()] == new
    assert again[f["rated_partner/partner=AAA"].relative_to(lake).as_posix()] == _reference()
    # only the files asked for are read
    only = rated_with.reference_of(lake, DAY, [f["rated_partner/partner=AAA"]])
    assert list(only) == [f["rated_partner/partner=AAA"].relative_to(lake).as_posix()]
    # archive: the records of the days before go
    assert rated_with.forget_before(lake, date(2026, 11, 4)) == 1
    assert rated_with.reference_of(lake, DAY) == {}
