"""The lake registry: atomic writes, typed empty reads, and schemas true to the pipeline."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearing import lake
from clearing.pipeline.nightly import NightlyOptions, run_nightly
from clearing.rating import import_rates, rated_with
from clearing.samples.workdir import generate_world

if TYPE_CHECKING:
    from pathlib import Path

DAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated world after one nightly run (collect from the folder transport).

    Then a tariff row edited in place and the night run again: a replay of a sent day writes
    the re-rate result and its delta too.
    """
    root = tmp_path_factory.mktemp("lake") / "w"
    generate_world(root, day=DAY, events=300, seed=5)
    run_nightly(root, DAY, options=NightlyOptions(send=False))
    iot = root / "rates" / "sources" / "iot.csv"
    old = "FRAF9,inbound,mtc,,all,1234567,00:00,24:00,60,8200,"
    assert old in iot.read_text(encoding="utf-8")
    iot.write_text(
        iot.read_text(encoding="utf-8").replace(old, old.replace(",8200,", ",9200,")),
        encoding="utf-8",
    )
    import_rates(root / "rates")
    run_nightly(root, DAY, options=NightlyOptions(send=False))
    return root / "lake"


def test_every_registered_schema_is_what_the_pipeline_writes(night: Path) -> None:
    for ds in lake.DATASETS:
        found = lake.files(night, ds, [DAY])
        assert found, f"the nightly wrote no file of {ds.name}"
        for f in found:
            assert pq.read_schema(f).remove_metadata() == ds.schema, (ds.name, f.name)
    written = {p.relative_to(night).parts[0] for p in night.rglob("*.parquet")}
    assert written == {d.directory for d in lake.DATASETS}
    # beside the datasets: the record of what reference data rated the day's files (for the
    # monthly rerate, clearing.rating.rated_with), not an output of the day
    record = night / rated_with.FOLDER / f"date={DAY}.json"
    assert record.is_file()
    assert lake.day_files(night, DAY) == sorted(
        (p for p in night.rglob("*") if p.is_file() and p != record),
        key=lambda p: (
            [d.directory for d in lake.DATASETS].index(p.relative_to(night).parts[0]),
            p,
        ),
    )


def test_views_read_real_and_missing_partitions_alike(night: Path) -> None:
    con = duckdb.connect()
    for ds in lake.DATASETS:
        real = lake.view(con, night, ds, [DAY], "real")
        empty = lake.view(con, night, ds, [date(2000, 1, 1)], "empty")
        assert real
        assert empty == []
        assert con.execute("SELECT count(*) FROM empty").fetchone() == (0,)
        types = {c: t for c, t, *_ in con.execute("DESCRIBE empty").fetchall()}
        assert list(types) == [*ds.schema.names, "processing_date"]
        real_types = {c: t for c, t, *_ in con.execute("DESCRIBE real").fetchall()}
        for column, t in types.items():  # the empty view reads like the files
            assert real_types[column] == t, (ds.name, column)
        other = con.execute("SELECT count(*) FROM real WHERE processing_date <> ?", [DAY])
        assert other.fetchone() == (0,)
    con.close()


def test_an_empty_read_has_the_schema(tmp_path: Path) -> None:
    for ds in lake.DATASETS:
        table = lake.read(tmp_path, ds, [DAY])
        assert table.num_rows == 0
        assert table.schema == ds.schema


def test_write_replaces_the_file_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = lake.FINDINGS
    first = lake.FINDINGS.schema.empty_table()
    target = lake.write(tmp_path, ds, DAY, first)
    assert target == tmp_path / "findings" / "date=2026-11-22" / "findings.parquet"
    before = target.read_bytes()

    def half_written(table: pa.Table, where: Path, **_: object) -> None:
        where.write_bytes(b"PAR1 half a file")
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(pq, "write_table", half_written)
    with pytest.raises(OSError, match="disk full"):
        lake.write(tmp_path, ds, DAY, first)
    assert target.read_bytes() == before  # the reader still sees the whole old file
    monkeypatch.undo()
    rows = pa.Table.from_pylist(
        [{"file": "f", "source_format": "tap", "rule": "r", "code": 1, "severity": "warning",
          "context": "file", "message": "m"}],
        schema=ds.schema,
    )  # fmt: skip
    lake.write(tmp_path, ds, DAY, rows)
    assert lake.read(tmp_path, ds, [DAY]).num_rows == 1
    lake.clear(tmp_path, ds, DAY)
    assert lake.files(tmp_path, ds, [DAY]) == []


def test_paths_follow_the_partitioning(tmp_path: Path) -> None:
    p = lake.path(tmp_path, lake.EVENTS_IN, DAY, partner="FRAF9", source="CDFRAF9HKGCL00001")
    assert p == tmp_path / "events_in/date=2026-11-22/partner=FRAF9/CDFRAF9HKGCL00001.parquet"
    assert lake.path(tmp_path, lake.RETAIL_SUMMARY, DAY).parts[-3:] == (
        "retail",
        "date=2026-11-22",
        "summary.parquet",
    )
    with pytest.raises(ValueError, match="partitioned by date\\+partner"):
        lake.path(tmp_path, lake.RATED_PARTNER, DAY)
    with pytest.raises(ValueError, match="partitioned by date"):
        lake.path(tmp_path, lake.IOT_FINDINGS, DAY, partner="FRAF9")
    with pytest.raises(ValueError, match="source=None"):
        lake.path(tmp_path, lake.EVENTS_IN, DAY, partner="FRAF9")
    assert lake.dataset("retail") is lake.RETAIL
    assert lake.dates(tmp_path, lake.RETAIL) == []
