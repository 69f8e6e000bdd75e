"""The rate stage's plumbing gives the rows and bytes of the straightforward way.

``rate_day`` sorts the day's rated rows once (keys first, rows gathered once) and cuts them by
partner, writes the Parquet files from a thread pool, and reads only the event columns the IOT
check needs. Each is compared here with the plain polars way it replaces: same rows, same file
bytes, whatever the chunks of the input.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest

from clearing import lake
from clearing.rating import run
from clearing.rating.run import (
    IOT_EVENT_COLUMNS,
    _by_partner,
    _partitioned,
    _Writes,
    partner_events,
    write_parquet,
)

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 22)
ORDER = ["partner", "start_time", "record_id", "file", "line"]


def _rows(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 22)
    return pl.DataFrame(
        {
            "partner": rng.choice(
                np.array(["AAAA1", "BBBB2", "CCCC3", None], dtype=object), n
            ).tolist(),
            "start_time": [t0 + timedelta(seconds=int(s)) for s in rng.integers(0, 500, n)],
            "record_id": [f"R{int(i)}" for i in rng.integers(0, n, n)],
            "file": rng.choice(["a.csv", "b.parquet"], n).tolist(),
            "line": np.arange(n) + 2,
            "imei": [None if i % 7 == 0 else f"35{int(i):013d}" for i in rng.permutation(n)],
            "charge": rng.integers(-5, 10**6, n),
            "status": rng.choice(["rated", "unrated"], n, p=[0.9, 0.1]).tolist(),
        }
    )


def _chunked(df: pl.DataFrame, pieces: int) -> pl.DataFrame:
    """The same rows in ``pieces`` chunks."""
    df = df.rechunk()
    step = -(-df.height // pieces)
    out = pl.concat([df.slice(i, step) for i in range(0, df.height, step)], rechunk=False)
    assert out.n_chunks() == min(pieces, df.height)
    return out


@pytest.mark.parametrize("pieces", [1, 3])
def test_partner_files_are_the_sorted_partitions(tmp_path: Path, pieces: int) -> None:
    df = _chunked(_rows(30_000, pieces), pieces)
    rated = pl.col("status") == "rated"
    # the plain way: filter, sort, one group per partner
    old = tmp_path / "old"
    expected: dict[str | None, pl.DataFrame] = {}
    plain = df.filter(rated).sort(ORDER, nulls_last=True)
    for (partner,), part in plain.group_by("partner", maintain_order=True):
        expected[partner] = part
        write_parquet(part, old / f"date={DAY}" / f"partner={partner}" / "part-0.parquet")
    parts = _by_partner(df, ORDER, rated)
    assert [p for p, _ in parts] == list(expected)
    for partner, part in parts:
        assert part.equals(expected[partner])
    writes = _Writes()
    try:
        paths = _partitioned(parts, tmp_path / "new", lake.RATED_VISITORS, DAY, writes)
        writes.wait()
    finally:
        writes.close()
    assert len(paths) == len(expected)
    for path in paths:
        twin = old / path.relative_to(tmp_path / "new" / "rated_visitors")
        assert path.read_bytes() == twin.read_bytes(), path


def test_partner_files_do_not_depend_on_chunks(tmp_path: Path) -> None:
    # a big day's gather comes in chunks cut wherever polars' threads cut it; past Parquet's
    # 1 MB dictionary page a column of unique values falls back to plain encoding at a point
    # that depends on the chunks (here: 95 093 IMEIs, cut at 48 531, as seen on a 1M day)
    rng = np.random.default_rng(1)
    n = 95_093
    df = pl.DataFrame(
        {
            "partner": ["AAAA1"] * n,
            "imei": [f"{int(x):015d}" for x in rng.integers(10**14, 10**15, n)],
        }
    )
    chunked = pl.concat([df.slice(0, 48_531), df.slice(48_531)], rechunk=False)
    one = write_parquet(df, tmp_path / "one.parquet").read_bytes()
    writes = _Writes()
    try:
        (path,) = _partitioned(
            [("AAAA1", chunked)], tmp_path / "new", lake.RATED_VISITORS, DAY, writes
        )
        writes.wait()
    finally:
        writes.close()
    assert path.read_bytes() == one


def test_writes_keep_the_order_they_were_asked_for_and_raise(tmp_path: Path) -> None:
    writes = _Writes()
    try:
        df = _rows(10, 1)
        path = writes.write(tmp_path / "a", lake.UNRATED_VISITORS, DAY, df)
        writes.wait()
        assert pl.read_parquet(path).equals(df)
        (tmp_path / "file").write_text("not a folder")
        writes.write(tmp_path / "file", lake.UNRATED_VISITORS, DAY, df)
        with pytest.raises(OSError, match="ile"):
            writes.wait()
    finally:
        writes.close()


def _event_files(root: Path) -> None:
    folder = root / "lake" / "events_in" / f"date={DAY}"
    base = {
        "source_format": ["tap", "tap", "tap"],
        "sender": ["AAAA1"] * 3,
        "file": ["f1"] * 3,
        "event_index": [0, 1, 2],
        "event_kind": ["mobileOriginatedCall"] * 3,
        "charge": [1, 2, 3],
        "byte_offset": [10, 20, 30],  # a column the IOT check does not read
        "status": ["accepted", "returned", "accepted"],
    }
    a = folder / "partner=AAAA1" / "part-0.parquet"
    a.parent.mkdir(parents=True)
    pl.DataFrame(base).write_parquet(a)
    # another partner's file without `charge` (older layout): null there
    b = folder / "partner=BBBB2" / "part-0.parquet"
    b.parent.mkdir(parents=True)
    pl.DataFrame({k: v for k, v in base.items() if k != "charge"}).write_parquet(b)


def test_partner_events_reads_only_the_columns_asked_for(tmp_path: Path) -> None:
    _event_files(tmp_path)
    every = partner_events(tmp_path, DAY)
    some = partner_events(tmp_path, DAY, columns=IOT_EVENT_COLUMNS)
    assert every is not None
    assert some is not None
    assert "byte_offset" in every.columns
    assert "byte_offset" not in some.columns
    assert some.equals(every.select(some.columns))
    assert some["charge"].to_list() == [1, 3, None, None]


def test_a_file_without_status_has_no_accepted_rows_next_to_one_with(tmp_path: Path) -> None:
    _event_files(tmp_path)
    folder = tmp_path / "lake" / "events_in" / f"date={DAY}" / "partner=BBBB2"
    pl.read_parquet(folder / "part-0.parquet").drop("status").write_parquet(
        folder / "part-0.parquet"
    )
    every = partner_events(tmp_path, DAY)
    some = partner_events(tmp_path, DAY, columns=IOT_EVENT_COLUMNS)
    assert every is not None
    assert some is not None
    assert every.height == some.height == 2


def test_the_stage_module_keeps_its_public_names() -> None:
    assert {"rate_day", "write_parquet", "partner_events", "cdr_files"} <= set(run.__all__)
