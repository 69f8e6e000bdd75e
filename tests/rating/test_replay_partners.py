"""A replay of a night holds one sent partner's rows at a time (as sent and as replayed).

A replay of a big night held every sent partner's rows twice at once: rating a 10M-record
night again took 9.4 GB (the whole day as sent, the whole day as replayed, their join) against
a 2 GB budget. The replay now makes a partner's replayed rows only when it comes to that
partner and writes its re-rate result before the next one's are made; what it reports (the
sent rows' receivable, the delta, the totals) is unchanged. The figures here are worked out by
hand from the rows written below.

A partner of a big night (1.1M rows) was still held whole, twice (as sent, and as sorted back
from the chunks' parts into one frame, DuckDB given the whole budget for it): the replay of a
10M-record night peaked at 3.6 GB. A day rated in chunks now has each sent partner's replayed
rows sorted out of core into its re-rate result file, compared with the sent file a bucket of
records at a time (cut by their keys, the compared columns only), the file removed again when
nothing changed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

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
        replay = run._replay(root, DAY, frozenset(sent), replayed, writes, None)
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


def _sent_lake(root: Path, sent: dict[str, list[int]]) -> None:
    for p, charges in sent.items():
        lake.write(root, lake.RATED_VISITORS, DAY, _rows(p, charges).to_arrow(), partner=p)


def _replayed_file(root: Path, p: str, charges: list[int]) -> Callable[[], Path]:
    def make() -> Path:  # the replay's rows, sorted into the re-rate result's file
        return lake.write(root, lake.RERATED_VISITORS, DAY, _rows(p, charges).to_arrow(), partner=p)

    return make


def _replayed(root: Path, rows: int | None, made: dict[str, Callable[[], Any]]) -> run._Replay:
    writes = run._Writes()
    try:
        replay = run._replay(root, DAY, frozenset(made), made, writes, rows)
        writes.wait()
    finally:
        writes.close()
    return replay


def test_a_partner_replayed_from_its_file_is_compared_a_bucket_of_records_at_a_time(
    tmp_path: Path,
) -> None:
    """Eight records of A as sent against A's re-rate result file, in buckets of 1–3 records
    (cut by the records' keys) and at once: the same receivable, delta and totals; a partner
    whose replay changed nothing has no re-rate result left (its file made and removed)."""
    a_sent = [1000, 2500, 300, 40, 5, 600, 70, 800]  # 5 315
    # the replay: +10 on record 1, −40 on record 3, record 7 no longer rated (gone)
    a_new = [1000, 2510, 300, 0, 5, 600, 70]
    sent = {"AAAAA": a_sent, "BBBBB": [700, 701]}
    got = []
    for rows in (None, 1, 2, 3):
        root = tmp_path / f"lake-{rows}"
        _sent_lake(root, sent)
        made = {"AAAAA": _replayed_file(root, "AAAAA", a_new)}
        made["BBBBB"] = _replayed_file(root, "BBBBB", [700, 701])
        replay = _replayed(root, rows, made)
        got.append((replay.kept, replay.deltas, replay.totals))
        rerated = lake.path(root, lake.RERATED_VISITORS, DAY, partner="AAAAA")
        assert replay.paths[0] == rerated
        assert pl.read_parquet(rerated, hive_partitioning=False)["charge"].to_list() == a_new
        assert not lake.path(root, lake.RERATED_VISITORS, DAY, partner="BBBBB").exists()
    assert all(g == got[0] for g in got[1:])
    kept, deltas, totals = got[0]
    assert kept == {"AAAAA": [("AAAAA", "SDR", 3, 5315)], "BBBBB": [("BBBBB", "SDR", 3, 1401)]}
    # 3 records of 8 changed: +10, −40, −800 (no new charge)
    assert [(d["partner"], d["events"], d["changed"], d["delta"]) for d in deltas] == [
        ("AAAAA", 8, 3, 10 - 40 - 800)
    ]
    assert [(d["debit"], d["credit"]) for d in deltas] == [(0, 830)]
    by_partner = {t["partner"]: (t["sent"], t["deltas"], t["rerated"]) for t in totals}
    assert by_partner == {"AAAAA": (5315, -830, 4485), "BBBBB": (1401, 0, 1401)}


def test_a_partner_s_records_are_cut_into_buckets_by_their_keys(tmp_path: Path) -> None:
    """Every record falls in one bucket, the same for its row as sent and as replayed."""
    root = tmp_path / "lake"
    _sent_lake(root, {"AAAAA": list(range(50))})
    sent = run._Side(path=lake.path(root, lake.RATED_VISITORS, DAY, partner="AAAAA"))
    again = run._Side(frame=_rows("AAAAA", list(range(50))).reverse())
    buckets = [(sent.bucket(b, 4), again.bucket(b, 4)) for b in range(4)]
    lines = [sorted(side["line"].to_list()) for pair in buckets for side in pair]
    assert lines[0::2] == lines[1::2]  # the same records on both sides
    assert sorted(x for got in lines[0::2] for x in got) == list(range(2, 52))
    assert all(got for got in lines)  # 50 records: none of 4 buckets empty
    assert set(buckets[0][0].columns) == set(run._COMPARED)
