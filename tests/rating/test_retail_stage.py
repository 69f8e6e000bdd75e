"""Retail rating on the sample world: against the per-event reference, and as a lake stage."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from clearing.codecs import fast
from clearing.rating.retail import (
    BILL_LINE_SCHEMA,
    SUMMARY_SCHEMA,
    rate_retail,
    slices_for,
    write_retail,
)
from clearing.rating.retail_reference import rate_rows
from clearing.rating.retail_tables import RetailTables, load_retail_tables
from clearing.samples.subscribers import write_subscriber_sources
from clearing.samples.tap import PARTNERS, generate_tap

if TYPE_CHECKING:
    from pathlib import Path

DAY1 = date(2026, 11, 22)
DAY2 = date(2026, 11, 23)


def tap_events(tmp: Path, day: date, events: int, seed: int) -> pa.Table:
    """The day's sample TAP-in files, decoded, with the lake's ``file`` and ``status``."""
    tables = []
    silent = {p.tadig for p in PARTNERS if p.notification_only}  # they send a Notification
    for path in generate_tap(tmp / f"tap-{day}", events=events, seed=seed, day=day):
        if path.name[2:7] in silent:
            continue
        batch = fast.decode_tap(path.read_bytes(), file=path.name).events
        batch = batch.append_column("file", pa.array([path.name] * batch.num_rows))
        tables.append(batch.append_column("status", pa.array(["accepted"] * batch.num_rows)))
    return pa.concat_tables(tables)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, RetailTables]:
    tmp = tmp_path_factory.mktemp("retail")
    write_subscriber_sources(tmp / "rates")
    events = pa.concat_tables([tap_events(tmp, DAY1, 1200, 1), tap_events(tmp, DAY2, 1200, 2)])
    return events, load_retail_tables(tmp / "rates")


def rate(events: pa.Table, t: RetailTables, **kw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    lines, summary = rate_retail(
        events, t.subscribers, t.sub_numbers, t.plans, t.plans_tiers, cycle_of="+0800", **kw
    )
    return pl.DataFrame(pl.from_arrow(lines)), pl.DataFrame(pl.from_arrow(summary))


def test_sample_events_exercise_the_rules(sample: tuple[pa.Table, RetailTables]) -> None:
    events, t = sample
    lines, summary = rate(events, t)
    rules = dict(lines["attribution_rule"].value_counts().iter_rows())
    # the generator writes the primary MSISDN on every record that has one, so `msisdn` never
    # decides by default; the virtual numbers' +86/+61 and the data numbers' APNs do
    assert rules["selection_code"] > 0
    assert rules["apn"] > 0
    assert rules["primary"] > 0
    assert "msisdn" not in rules
    assert "none" not in rules
    lines2, _ = rate(events, t, primary_msisdn_decides=True)
    assert dict(lines2["attribution_rule"].value_counts().iter_rows())["msisdn"] > 0
    # overage, tiers and day passes all occur; amounts add up
    assert lines["overage_units"].sum() > 0
    assert lines["day_pass_charged"].sum() > 0
    assert lines.filter(pl.col("tier_units").list.len() == 2)["tier_units"].len() > 0
    assert summary["amount"].sum() == lines["amount"].sum()
    assert summary["events"].sum() == lines.height


def _comparable(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    cols = (
        "sub_number",
        "attribution_rule",
        "plan_id",
        "cycle_start",
        "service",
        "units",
        "allowance_units",
        "overage_units",
        "tier_units",
        "day_pass_units",
        "day_pass_charged",
        "usage_amount",
        "day_pass_amount",
        "amount",
    )
    return {
        (r["sender"], r["file_sequence_number"], r["event_index"]): tuple(r[c] for c in cols)
        for r in rows
    }


def test_vectorised_rating_equals_the_per_event_reference(
    sample: tuple[pa.Table, RetailTables],
) -> None:
    events, t = sample
    # spread the two days over ~50 days (crossing bill cycles, using up allowances and tiers,
    # opening many day passes); drop events that share a second with another of their card
    # (the two implementations break such ties differently, both deterministically)
    shifted = []
    for k in range(25):
        copy = events.set_column(
            events.schema.get_field_index("start_utc"),
            "start_utc",
            pc.add(events["start_utc"], pa.scalar(timedelta(days=2 * k, seconds=k))),
        )
        fsn = pc.binary_join_element_wise(copy["file_sequence_number"], pa.scalar(f"-{k}"), "")
        index = copy.schema.get_field_index("file_sequence_number")
        shifted.append(copy.set_column(index, "file_sequence_number", fsn))
    many = pl.DataFrame(pl.from_arrow(pa.concat_tables(shifted)))
    many = many.filter(pl.len().over("imsi", "start_utc") == 1)
    big = many.to_arrow()
    lines, _ = rate(big, t)
    reference = rate_rows(big, t, cycle_of="+0800")
    got = _comparable(lines.to_dicts())
    want = _comparable(reference)
    assert len(got) == len(want) == big.num_rows
    diff = [k for k in want if got[k] != want[k]]
    assert not diff, (diff[:3], [got[k] for k in diff[:3]], [want[k] for k in diff[:3]])
    assert lines["amount"].sum() > 10_000_000  # HK$100,000: the comparison covers real money


def write_lake(root: Path, day: date, events: pa.Table) -> None:
    for sender in sorted(set(events["sender"].to_pylist())):
        part = root / "lake" / "events_in" / f"date={day}" / f"partner={sender}"
        part.mkdir(parents=True)
        rows = events.filter(pc.equal(events["sender"], sender))
        pq.write_table(rows, part / "events.parquet")


def test_write_retail_rates_a_day_within_its_bill_cycles(tmp_path: Path) -> None:
    (tmp_path / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0800"\n')
    write_subscriber_sources(tmp_path / "rates")
    day1 = tap_events(tmp_path, DAY1, 900, 1)
    day2 = tap_events(tmp_path, DAY2, 900, 2)
    # one event of day 2 was found to be a duplicate by validation: not rated
    status = ["duplicate"] + ["accepted"] * (day2.num_rows - 1)
    day2 = day2.set_column(day2.schema.get_field_index("status"), "status", pa.array(status))
    write_lake(tmp_path, DAY1, day1)
    write_lake(tmp_path, DAY2, day2)

    lines_path, summary_path = write_retail(tmp_path, DAY2)
    assert lines_path == tmp_path / "lake" / "retail" / f"date={DAY2}" / "bill_lines.parquet"
    # Parquet keeps timestamps in ms at best: cast back to the in-memory seconds
    lines = pq.read_table(lines_path).cast(BILL_LINE_SCHEMA)
    summary = pq.read_table(summary_path).cast(SUMMARY_SCHEMA)
    # the day's accepted events only, rated in the context of day 1 (same cycles)
    assert lines.num_rows == day2.num_rows - 1
    assert set(lines["file"].to_pylist()) == set(day2["file"].to_pylist())
    both = pa.concat_tables([day1, day2.slice(1)])
    t = load_retail_tables(tmp_path / "rates")
    full_lines, full_summary = rate(both, t)
    want = full_lines.filter(pl.col("file").is_in(day2["file"].to_pylist()))
    assert pl.DataFrame(pl.from_arrow(lines)).equals(want)
    keys = ["imsi", "sub_number", "plan_id", "cycle_start"]
    touched = full_summary.join(want.select(keys).unique(), on=keys, how="semi")
    assert pl.DataFrame(pl.from_arrow(summary)).equals(touched)

    # a re-run writes the same bytes
    first = (lines_path.read_bytes(), summary_path.read_bytes())
    write_retail(tmp_path, DAY2)
    assert (lines_path.read_bytes(), summary_path.read_bytes()) == first


def test_write_retail_of_a_day_without_events_writes_empty_tables(tmp_path: Path) -> None:
    write_subscriber_sources(tmp_path / "rates")
    lines_path, summary_path = write_retail(tmp_path, DAY1, cycle_of="+0800")
    assert pq.read_table(lines_path).num_rows == 0
    assert pq.read_table(summary_path).schema == SUMMARY_SCHEMA


def test_rated_in_slices_of_cards_the_figures_are_the_whole_days(tmp_path: Path) -> None:
    """A budget too small for the cycle's events: slices of cards, the same lines and totals.

    The expected lines are those of rating both days whole in one call (the route without
    slices); with 1 MB the look-back and the day (about 1 800 events) are cut into slices.
    """
    (tmp_path / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0800"\n')
    write_subscriber_sources(tmp_path / "rates")
    day1 = tap_events(tmp_path, DAY1, 900, 1)
    day2 = tap_events(tmp_path, DAY2, 900, 2)
    write_lake(tmp_path, DAY1, day1)
    write_lake(tmp_path, DAY2, day2)
    assert slices_for(day1.num_rows + day2.num_rows, 1) >= 2

    lines_path, summary_path = write_retail(tmp_path, DAY2, memory_mb=1)
    lines = pl.DataFrame(pl.from_arrow(pq.read_table(lines_path).cast(BILL_LINE_SCHEMA)))
    summary = pl.DataFrame(pl.from_arrow(pq.read_table(summary_path).cast(SUMMARY_SCHEMA)))

    t = load_retail_tables(tmp_path / "rates")
    full_lines, full_summary = rate(pa.concat_tables([day1, day2]), t)
    want = full_lines.filter(pl.col("file").is_in(day2["file"].to_pylist()))
    assert lines.height == day2.num_rows
    # every line and figure the same; a sub-number's lines in the same (event-time) order
    named = pl.col("attribution_rule") != "none"
    assert lines.filter(named).equals(want.filter(named))
    key = ["file", "event_index"]
    assert lines.filter(~named).sort(key).equals(want.filter(~named).sort(key))
    keys = ["imsi", "sub_number", "plan_id", "cycle_start"]
    touched = full_summary.join(want.select(keys).unique(), on=keys, how="semi")
    assert summary.equals(touched)
    assert summary["amount"].sum() > 0  # money was rated, not an empty day
