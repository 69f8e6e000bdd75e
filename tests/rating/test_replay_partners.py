"""A replay of a night holds one sent partner's rows at a time (as sent and as replayed).

A replay of a big night held every sent partner's rows twice at once: rating a 10M-record
night again took 9.4 GB (the whole day as sent, the whole day as replayed, their join) against
a 2 GB budget. The replay now makes a partner's replayed rows only when it comes to that
partner and writes its re-rate result before the next one's are made; what it reports (the
sent rows' receivable, the delta, the totals) is unchanged. The figures here are worked out by
hand from the rows written below.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import polars as pl

from clearing import lake
from clearing.rating import run

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DAY = date(2026, 11, 1)


def _rows(partner: str, charges: list[int]) -> pl.DataFrame:
    schema = pl.Schema(pl.from_arrow(lake.RATED_VISITORS.schema.empty_table()).schema)  # type: ignore[union-attr]
    rows = [
        {
            "record_id": f"{partner}-{i}",
            "imsi": "262019999999999",
            "start_time": datetime(2026, 10, 31, 12, i),
            "file": f"CDR_{partner}.csv",
            "line": i + 2,
            "partner": partner,
            "service": "MOC",
            "iot_version": "v1",
            "charge": c,
            "charge_scale": 3,
            "currency": "SDR",
            "tax": 0,
            "status": "rated",
        }
        for i, c in enumerate(charges)
    ]
    return pl.DataFrame(rows, schema=schema)


class _LoggedWrites(run._Writes):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def write(
        self,
        root: Path,
        ds: lake.Dataset,
        day: date,
        df: pl.DataFrame,
        partner: str | None = None,
    ) -> Path:
        self.log.append(f"write {ds.name} {partner}")
        return super().write(root, ds, day, df, partner)


def test_replay_makes_one_partners_rows_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    sent = {"AAAAA": [1000, 2500], "BBBBB": [700]}
    for p, charges in sent.items():
        lake.write(root, lake.RATED_VISITORS, DAY, _rows(p, charges).to_arrow(), partner=p)
    log: list[str] = []

    def maker(p: str, charges: list[int]) -> Callable[[], pl.DataFrame]:
        def make() -> pl.DataFrame:
            log.append(f"make {p}")
            return _rows(p, charges)

        return make

    # A's tariff changed on the replay (+10 on its second record); B rates as it was sent
    replayed = {"AAAAA": maker("AAAAA", [1000, 2510]), "BBBBB": maker("BBBBB", [700])}
    writes = _LoggedWrites(log)
    try:
        replay = run._replay(root, DAY, frozenset(sent), replayed, writes)
        writes.wait()
    finally:
        writes.close()

    # A's result is written before B's rows are made: never two partners' rows at once
    assert log[:3] == ["make AAAAA", f"write {lake.RERATED_VISITORS.name} AAAAA", "make BBBBB"]
    # what went out stays what went out: the receivable is of the rows as sent
    assert replay.kept == {
        "AAAAA": [("AAAAA", "SDR", 3, 3500)],
        "BBBBB": [("BBBBB", "SDR", 3, 700)],
    }
    assert [(d["partner"], d["delta"]) for d in replay.deltas] == [("AAAAA", 10)]
    totals = {t["partner"]: (t["sent"], t["deltas"], t["rerated"]) for t in replay.totals}
    assert totals == {"AAAAA": (3500, 10, 3510), "BBBBB": (700, 0, 700)}
    # only the partner whose rating changed has a re-rate result in the lake
    rerated = lake.path(root, lake.RERATED_VISITORS, DAY, partner="AAAAA")
    assert rerated.is_file()
    assert pl.read_parquet(rerated, hive_partitioning=False)["charge"].to_list() == [1000, 2510]
    assert not lake.path(root, lake.RERATED_VISITORS, DAY, partner="BBBBB").exists()
