"""The generic reference-data import: checks, validity resolution, partitions, determinism."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pytest

from clearing.errors import ConfigError
from clearing.rating._refdata import duckdb_view, import_rates, read_table
from tests.rating.conftest import AGREEMENTS, FX, IMSI_RANGES, IOT, write_sources

if TYPE_CHECKING:
    from pathlib import Path

AT = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
FX_HEADER = "currency,valid_from,valid_to,rate,rate_scale,source\n"


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "sources" not in p.parts
    }


def test_layout_is_hive_partitioned_by_partner_and_valid_from(tiny_rates_dir: Path) -> None:
    files = sorted(str(p.relative_to(tiny_rates_dir)) for p in tiny_rates_dir.rglob("*.parquet"))
    assert "iot/partner=TSTA1/valid_from=2026-01-01/part-0.parquet" in files
    assert "iot/partner=01234/valid_from=2026-01-01/part-0.parquet" in files
    assert "fx/valid_from=2026-01-01/part-0.parquet" in files  # no partner column
    iot = read_table(tiny_rates_dir, "iot")
    assert iot.schema["partner"] == pl.String  # "01234" stays text
    assert iot.schema["price"] == pl.Int64
    assert iot.schema["band_start"] == pl.Int32  # seconds after midnight
    peak = iot.filter(pl.col("time_band") == "peak").row(0, named=True)
    assert (peak["band_start"], peak["band_end"], peak["valid_to"]) == (8 * 3600, 20 * 3600, None)
    assert peak["source_line"] == 2


def test_same_sources_give_the_same_bytes(tmp_path: Path) -> None:
    trees = []
    for name in ("a", "b"):
        rates = write_sources(
            tmp_path / name / "rates",
            agreements=AGREEMENTS,
            imsi_ranges=IMSI_RANGES,
            fx=FX,
            iot=IOT,
        )
        # the version recorded carries its import time: the same one here
        import_rates(rates, imported_at=AT)
        import_rates(rates, imported_at=AT)  # a re-import replaces, never appends
        trees.append(_tree(rates))
    assert trees[0] == trees[1]
    assert len(trees[0]) > 10


def test_empty_valid_to_runs_until_the_next_version_and_versions_are_stable(
    tmp_path: Path,
) -> None:
    one = FX_HEADER + "EUR,2026-01-01,,117234,5,imf\n"
    rates = write_sources(tmp_path / "rates", fx=one)
    import_rates(rates)
    before = read_table(rates, "fx").row(0, named=True)
    write_sources(rates, fx=one + "EUR,2026-02-01,,117510,5,imf\n")
    import_rates(rates)
    fx = read_table(rates, "fx")
    assert fx["valid_from"].to_list() == [date(2026, 1, 1), date(2026, 2, 1)]
    assert fx["valid_to"].to_list() == [date(2026, 2, 1), None]
    # the first row did not change: same version (a content hash of the row as written)
    assert fx["version"][0] == before["version"]
    assert fx["version"][1] != before["version"]


def test_overlap_is_refused_naming_table_key_and_lines(tmp_path: Path) -> None:
    text = (
        FX_HEADER
        + "EUR,2026-01-01,2026-07-01,117234,5,imf\n"
        + "USD,2026-01-01,,136412,5,imf\n"
        + "EUR,2026-06-01,,117510,5,imf\n"
    )
    rates = write_sources(tmp_path / "rates", fx=text)
    with pytest.raises(ConfigError) as err:
        import_rates(rates)
    assert str(err.value) == (
        f"rates table `fx` (`{rates / 'sources' / 'fx.csv'}`): 1 problem(s): key "
        "(currency='EUR'): overlapping validity: line 2 (2026-01-01 to 2026-07-01) and line 4 "
        "(from 2026-06-01)"
    )
    assert not (rates / "fx").exists()  # nothing written


def test_gap_is_refused_when_the_table_must_be_continuous(tmp_path: Path) -> None:
    text = FX_HEADER + "EUR,2026-01-01,2026-06-01,117234,5,imf\nEUR,2026-07-01,,117510,5,imf\n"
    rates = write_sources(tmp_path / "rates", fx=text)
    with pytest.raises(ConfigError, match=r"gap in validity: line 2 ends on 2026-06-01, the next"):
        import_rates(rates)
    # imsi_ranges is not continuous: a gap is fine there
    ranges = (
        "imsi_prefix,partner,valid_from,valid_to\n"
        "20801,TSTA1,2026-01-01,2026-06-01\n20801,TSTA1,2026-07-01,\n"
    )
    write_sources(rates, fx=FX, imsi_ranges=ranges)
    import_rates(rates)
    assert read_table(rates, "imsi_ranges").height == 2


def test_same_start_twice_is_an_overlap(tmp_path: Path) -> None:
    text = FX_HEADER + "EUR,2026-01-01,,1,5,a\nEUR,2026-01-01,,2,5,b\n"
    rates = write_sources(tmp_path / "rates", fx=text)
    with pytest.raises(ConfigError, match="lines 2 and 3 both start on 2026-01-01"):
        import_rates(rates)


def test_bad_cells_are_listed_with_line_and_column(tmp_path: Path) -> None:
    text = (
        "# a comment line keeps the numbering\n"
        + FX_HEADER
        + "EUR,2026-01-01,,1.17,5,imf\n"
        + "eur,2026-13-01,,117234,12,imf\n"
    )
    rates = write_sources(tmp_path / "rates", fx=text)
    with pytest.raises(ConfigError) as err:
        import_rates(rates)
    msg = str(err.value)
    assert "4 problem(s)" in msg
    assert "line 3, column `rate` = '1.17': must be an integer (no decimal point" in msg
    assert "line 4, column `currency` = 'eur': does not match `^[A-Z]{3}$`" in msg
    assert "line 4, column `valid_from` = '2026-13-01': must be a date YYYY-MM-DD" in msg
    assert "line 4, column `rate_scale` = '12': must be in 0..9" in msg


def test_unknown_source_and_missing_column_are_refused(tmp_path: Path) -> None:
    rates = write_sources(tmp_path / "rates", tarifs="a,b\n")
    with pytest.raises(ConfigError, match=r"source.s. without a schema .*: tarifs"):
        import_rates(rates)
    rates = write_sources(tmp_path / "r2", fx="currency,valid_from,rate\nEUR,2026-01-01,1\n")
    with pytest.raises(ConfigError, match=r"required column.s. missing: rate_scale, source"):
        import_rates(rates)


def test_a_failed_import_keeps_the_previous_parquet(tmp_path: Path) -> None:
    rates = write_sources(tmp_path / "rates", fx=FX)
    import_rates(rates)
    before = _tree(rates)
    write_sources(rates, fx=FX_HEADER + "EUR,2026-01-01,,x,5,imf\n")
    with pytest.raises(ConfigError):
        import_rates(rates)
    assert _tree(rates) == before


def test_duckdb_view_reads_the_partitions(tiny_rates_dir: Path) -> None:
    con = duckdb.connect()
    view = duckdb_view(con, tiny_rates_dir, "agreements")
    rows = con.sql(f"SELECT partner, standard FROM {view} ORDER BY partner").fetchall()
    assert rows[0] == ("01234", "ciber")
    assert [r[0] for r in rows] == ["01234", "TSTA1", "TSTB2", "TSTC3"]
