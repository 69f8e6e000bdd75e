"""The CIBER-in sample generator: deterministic, two CDMA partners, planted faults found."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from clearing.codecs import ciber
from clearing.samples.ciber import HOME_SID_BID, generate_ciber

if TYPE_CHECKING:
    from pathlib import Path

DAY = dt.date(2026, 11, 22)


def test_same_seed_and_day_same_bytes(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).mkdir()
    a = generate_ciber(tmp_path / "a", seed=7, day=DAY)
    b = generate_ciber(tmp_path / "b", seed=7, day=DAY)
    assert [p.name for p in a] == [p.name for p in b]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    c = generate_ciber(tmp_path / "c", seed=8, day=DAY)
    assert [p.read_bytes() for p in c] != [p.read_bytes() for p in a]


def test_two_partners_with_planted_faults(tmp_path: Path) -> None:
    paths = generate_ciber(tmp_path, seed=1, day=DAY)
    assert len(paths) == 2
    summaries = [ciber.inspect_summary(p.read_bytes(), file=p.name) for p in paths]
    senders = {b["sending_sid_bid"] for s in summaries for b in s["batches"]}
    assert len(senders) == 2
    assert {b["receiving_sid_bid"] for s in summaries for b in s["batches"]} == {HOME_SID_BID}
    assert all(p.stat().st_size < 16_000 for p in paths)
    codes = sorted(str(f["code"]) for s in summaries for f in s["findings"])
    assert codes == ["26", "4/07/026"]  # bad trailer total; letter in an air charge
    kinds = {k for s in summaries for b in s["batches"] for k in b["records_by_type"]}
    assert kinds == {"22", "32", "52"}
    assert {b["currency"] for s in summaries for b in s["batches"]} == {"USD", "CAD"}
