"""The retail reference tables: CSV sources, imported Parquet, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from clearing.errors import ConfigError
from clearing.rating.retail_tables import (
    RETAIL_TABLES,
    load_retail_tables,
    prepare_tables,
    read_source,
)
from clearing.samples.subscribers import subscriber_rows, write_subscriber_sources

if TYPE_CHECKING:
    import pyarrow as pa

SPECS = Path(__file__).parents[2] / "specs" / "rates"

SUBSCRIBERS = """\
# our cards
imsi,msisdn,bill_cycle_day,valid_from
454990000000001,85251110001,1,2024-01-01
454990000000002,85251110002,15,2024-01-01
"""
SUB_NUMBERS = """\
msisdn,imsi,role,selection_code,apn,plan_id,valid_from,valid_to
85251110001,454990000000001,primary,,,BASIC,2024-01-01,
33612345678,454990000000001,local,,,BASIC,2026-01-01,2027-01-01
85251110002,454990000000002,primary,,,BASIC,2024-01-01,
85240000002,454990000000002,data,,Corp.VPN,BASIC,2024-01-01,
"""
PLANS = """\
plan_id,currency,scale,allowance_data_mb,valid_from,valid_to
BASIC,HKD,2,1024,2024-01-01,2027-01-01
BASIC,HKD,2,2048,2027-01-01,
"""
TIERS = """\
plan_id,service,from_units,price,valid_from
BASIC,voice_mo,0,300,2024-01-01
BASIC,data,0,50,2024-01-01
BASIC,data,500,20,2024-01-01
"""


def frame(table: pa.Table) -> pl.DataFrame:
    """An Arrow table as a polars DataFrame (``pl.from_arrow`` is typed to return a Series too)."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def write(rates: Path, **sources: str) -> Path:
    texts = {
        "subscribers": SUBSCRIBERS,
        "sub_numbers": SUB_NUMBERS,
        "plans": PLANS,
        "plans_tiers": TIERS,
    } | sources
    (rates / "sources").mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (rates / "sources" / f"{name}.csv").write_text(text)
    return rates


def test_sources_are_typed_checked_and_resolved(tmp_path: Path) -> None:
    t = load_retail_tables(write(tmp_path))
    nums = pl.from_arrow(t.sub_numbers)
    assert isinstance(nums, pl.DataFrame)
    # APNs are compared lower-case; defaults fill optional columns (voice_increment_s = 60)
    assert nums.filter(pl.col("role") == "data")["apn"].to_list() == ["corp.vpn"]
    plans = pl.from_arrow(t.plans)
    assert isinstance(plans, pl.DataFrame)
    assert plans["voice_increment_s"].to_list() == [60, 60]
    assert plans["allowance_voice_mo_min"].to_list() == [0, 0]
    # source lines are kept for messages (line 1 is the comment, 2 the header)
    assert frame(t.subscribers)["source_line"].to_list() == [3, 4]


def test_an_empty_valid_to_runs_until_the_next_version(tmp_path: Path) -> None:
    plans = "plan_id,currency,scale,valid_from\nBASIC,HKD,2,2024-01-01\nBASIC,HKD,2,2027-01-01\n"
    t = load_retail_tables(write(tmp_path, plans=plans))
    got = frame(t.plans).select("valid_from", "valid_to").rows()
    assert [(str(a), str(b)) for a, b in got] == [
        ("2024-01-01", "2027-01-01"),
        ("2027-01-01", "None"),
    ]


@pytest.mark.parametrize(
    ("table", "text", "message"),
    [
        (
            "plans",
            "plan_id,currency,scale,valid_from\nBASIC,HKD,2.5,2024-01-01\n",
            r"rates table `plans`, line 2: column `scale` = '2.5': must be an integer",
        ),
        (
            "subscribers",
            "imsi,msisdn,bill_cycle_day,valid_from\n454990000000001,85251110001,31,2024-01-01\n",
            r"rates table `subscribers`, line 2: column `bill_cycle_day` = 31: must be in 1..28",
        ),
        (
            "sub_numbers",
            "msisdn,imsi,role,plan_id,valid_from\n85251110001,454990000000001,main,BASIC,2024-01-01\n",
            r"line 2: column `role` = 'main': must be one of primary, local, virtual, data",
        ),
        (
            "plans_tiers",
            "plan_id,service,from_units,price,valid_from\nBASIC,data,0,50,01/01/2024\n",
            r"rates table `plans_tiers`, line 2: column `valid_from` = '01/01/2024': "
            r"must be a date",
        ),
        (
            "plans",
            "plan_id,currency,scale,colour,valid_from\n",
            r"rates table `plans` \(.*\), line 1: the header .* \(unknown: colour; missing: -\)",
        ),
        (
            "plans",
            "plan_id,currency,scale,valid_from,valid_to\nBASIC,HKD,2,2024-01-01,2028-01-01\n"
            "BASIC,HKD,2,2027-01-01,\n",
            r"rates table `plans`, line 2: key \(plan_id='BASIC'\): validity overlaps the next "
            r"version, which starts on 2027-01-01",
        ),
        (
            "sub_numbers",
            SUB_NUMBERS.replace(
                "85240000002,454990000000002,data,,Corp.VPN,BASIC",
                "85240000002,454990000000002,data,,Corp.VPN,GOLD",
            ),
            r"rates table `sub_numbers`, line 5: column `plan_id` = 'GOLD': no such `plan_id` in "
            r"rates table `plans`",
        ),
        (
            "sub_numbers",
            SUB_NUMBERS.replace(
                "85251110002,454990000000002,primary", "85251110002,454990000000002,local"
            ),
            r"rates table `subscribers`, line 4: card 454990000000002: no `sub_numbers` row makes "
            r"85251110002 its primary",
        ),
        (
            "sub_numbers",
            SUB_NUMBERS + "85290000002,454990000000002,primary,,,BASIC,2025-01-01,\n",
            r"rates table `sub_numbers`, lines 4 and 6: two primary numbers of one card "
            r"\(imsi='454990000000002'\) at the same time",
        ),
        (
            "sub_numbers",
            SUB_NUMBERS + "85240000003,454990000000002,data,,corp.vpn,BASIC,2024-01-01,\n",
            r"lines 5 and 6: one APN on two numbers \(imsi='454990000000002', apn='corp.vpn'\)",
        ),
        (
            "plans",
            "plan_id,currency,scale,day_pass_price,valid_from\nBASIC,HKD,2,9800,2024-01-01\n",
            r"rates table `plans`, line 2: plan BASIC: `day_pass_price` and `day_pass_services` go "
            r"together",
        ),
        (
            "plans_tiers",
            "plan_id,service,from_units,price,valid_from\nBASIC,data,10,50,2024-01-01\n",
            r"line 2: plan BASIC, service data: the first tier must start at `from_units` 0, "
            r"not 10",
        ),
    ],
)
def test_bad_reference_data_names_table_line_and_column(
    tmp_path: Path, table: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_retail_tables(write(tmp_path, **{table: text}))


def test_a_missing_table_says_what_to_do(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "sources" / "plans.csv").unlink()
    with pytest.raises(ConfigError, match=r"rates table `plans` is missing: neither .* exists"):
        load_retail_tables(tmp_path)


def test_arrow_inputs_are_checked_like_sources(tmp_path: Path) -> None:
    t = load_retail_tables(write(tmp_path))
    subs = t.subscribers.drop_columns(["source_line"])
    nums = frame(t.sub_numbers).drop("source_line")
    # a polars frame without line numbers: rows are counted from 1
    bad = nums.with_columns(plan_id=pl.lit("GOLD"))
    with pytest.raises(ConfigError, match=r"rates table `sub_numbers`, row 1: column `plan_id`"):
        prepare_tables(subs, bad, t.plans, t.plans_tiers)
    with pytest.raises(ConfigError, match=r"required column\(s\) missing: role"):
        prepare_tables(subs, nums.drop("role"), t.plans, t.plans_tiers)


def test_sample_sources_load_and_are_deterministic(tmp_path: Path) -> None:
    a = write_subscriber_sources(tmp_path / "a")
    b = write_subscriber_sources(tmp_path / "b")
    assert [p.name for p in a] == [f"{n}.csv" for n in RETAIL_TABLES]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    t = load_retail_tables(tmp_path / "a")
    assert t.subscribers.num_rows == 240
    roles = frame(t.sub_numbers)["role"].value_counts()
    counts = dict(roles.iter_rows())
    assert counts["primary"] == 240
    assert min(counts["local"], counts["virtual"], counts["data"]) >= 30
    plans = {r["plan_id"] for r in subscriber_rows()["plans"]}
    assert plans == {"BASIC", "DATA_PLUS", "DAY_PASS", "NUMBER", "CORP_PASS", "PREPAID"}


def test_imported_parquet_reads_like_the_sources(tmp_path: Path) -> None:
    refdata = pytest.importorskip("clearing.rating._refdata")
    write_subscriber_sources(tmp_path)
    from_csv = load_retail_tables(tmp_path)
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in RETAIL_TABLES:
        shutil.copy(SPECS / f"{name}.csv", specs)
    refdata.import_rates(tmp_path, specs=specs)
    shutil.rmtree(tmp_path / "sources")
    from_parquet = load_retail_tables(tmp_path)
    for name in RETAIL_TABLES:
        a = pl.from_arrow(getattr(from_csv, name))
        b = pl.from_arrow(getattr(from_parquet, name))
        assert isinstance(a, pl.DataFrame)
        assert isinstance(b, pl.DataFrame)
        assert a.equals(b), name


def test_read_source_keeps_line_numbers_past_comments(tmp_path: Path) -> None:
    path = tmp_path / "plans.csv"
    path.write_text(
        "# a comment\n\nplan_id,currency,scale,valid_from\n# x\nBASIC,HKD,2,2024-01-01\n"
    )
    df = read_source("plans", path)
    assert df["source_line"].to_list() == [5]
