"""Retail rating on the sample world: against the per-event reference, and as a lake stage."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
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
        events,
        t.subscribers,
        t.sub_numbers,
        t.plans,
        t.plans_tiers,
        cycle_of="+0800",
        plan_defaults=t.plan_defaults,
        topups=t.topups,
        **kw,
    )
    return pl.DataFrame(pl.from_arrow(lines)), pl.DataFrame(pl.from_arrow(summary))


def test_sample_events_exercise_the_rules(sample: tuple[pa.Table, RetailTables]) -> None:
    events, t = sample
    lines, summary = rate(events, t)
    rules = dict(lines["attribution_rule"].value_counts().iter_rows())
    # every rule decides: the local numbers' calls carry them (`msisdn`), the virtual
    # numbers' +86/+61 and the data numbers' APNs; the rest falls back to the primary
    assert rules["msisdn"] > 0
    assert rules["selection_code"] > 0
    assert rules["apn"] > 0
    assert rules["primary"] > 0
    assert "none" not in rules
    # an event carrying the local number goes to it; the primary number never decides
    local = lines.filter(pl.col("attribution_rule") == "msisdn")
    assert (local["role"] == "local").all()
    assert (local["event_msisdn"] == local["sub_number"]).all()
    lines2, _ = rate(events, t, primary_msisdn_decides=True)
    assert dict(lines2["attribution_rule"].value_counts().iter_rows())["msisdn"] > 0
    # overage, tiers and day passes all occur; amounts add up
    assert lines["overage_units"].sum() > 0
    assert lines["day_pass_charged"].sum() > 0
    assert lines.filter(pl.col("tier_units").list.len() == 2)["tier_units"].len() > 0
    assert summary["amount"].sum() == lines["amount"].sum()
    assert summary["events"].sum() == lines.height
    # every level of plan assignment decides some lines: the sub-number's own plan, the
    # ACME group's default (CORP_PASS), the global default (BASIC) of GLOBEX's primaries
    levels = lines.group_by("plan_level", "plan_id").len()
    assert set(levels["plan_level"]) == {"user", "group", "global"}
    assert set(levels.filter(pl.col("plan_level") == "group")["plan_id"]) == {"CORP_PASS"}
    assert set(levels.filter(pl.col("plan_level") == "global")["plan_id"]) == {"BASIC"}
    # prepaid cards consume their balance; some go beyond it
    prepaid = lines.filter(pl.col("plan_id") == "PREPAID")
    assert prepaid["balance_after"].null_count() == 0 < prepaid.height
    assert lines.filter(pl.col("plan_id") != "PREPAID")["balance_after"].null_count() == (
        lines.height - prepaid.height
    )
    assert prepaid["over_balance"].sum() > 0
    # CORP_PASS's pass is card-wide: one window covers lines of two numbers of one card
    corp = lines.filter((pl.col("plan_id") == "CORP_PASS") & pl.col("day_pass_start").is_not_null())
    shared = corp.group_by("imsi", "day_pass_start").agg(pl.col("sub_number").n_unique())
    assert shared["sub_number"].max() == 2
    assert (
        corp.group_by("imsi", "day_pass_start").agg(pl.col("day_pass_charged").sum())[
            "day_pass_charged"
        ]
        == 1
    ).all()


def _comparable(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    cols = (
        "sub_number",
        "attribution_rule",
        "plan_id",
        "plan_version",
        "plan_level",
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
        "balance_after",
        "over_balance_amount",
        "over_balance",
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
    assert not diff, (diff[:3], [got[k][-6:] for k in diff[:3]], [want[k][-6:] for k in diff[:3]])
    assert lines["amount"].sum() > 10_000_000  # HK$100,000: the comparison covers real money


def write_lake(root: Path, day: date, events: pa.Table) -> None:
    for sender in sorted(set(events["sender"].to_pylist())):
        part = root / "lake" / "events_in" / f"date={day}" / f"partner={sender}"
        part.mkdir(parents=True)
        rows = events.filter(pc.equal(events["sender"], sender))
        pq.write_table(rows, part / "events.parquet")


def _untied(events: pa.Table) -> pa.Table:
    """``events`` without those sharing a second with another of their card (the reference
    and the vectorised rating break such ties differently, both deterministically)."""
    df = pl.DataFrame(pl.from_arrow(events.select(["imsi", "start_utc"])))
    alone = df.select(pl.len().over("imsi", "start_utc") == 1).to_series()
    return events.filter(pa.array(alone.to_list()))


def _reference(days: list[tuple[date, pa.Table]], rates: Path) -> pl.DataFrame:
    """The per-event reference over the days in processing order (an earlier day's first)."""
    tagged = pa.concat_tables(
        [t.append_column("pday", pa.array([d] * t.num_rows, pa.date32())) for d, t in days]
    )
    rows = rate_rows(tagged, load_retail_tables(rates), cycle_of="+0800", processed_by="pday")
    key = {(r["sender"], r["file_sequence_number"], r["event_index"]): r for r in rows}
    out = []
    for d, t in days:
        for sender, fsn, index in zip(
            t["sender"].to_pylist(),
            t["file_sequence_number"].to_pylist(),
            t["event_index"].to_pylist(),
            strict=True,
        ):
            out.append(key[(sender, fsn, index)] | {"pday": d})
    return pl.DataFrame(out, infer_schema_length=None)


def test_write_retail_bills_a_day_after_the_days_before_it(tmp_path: Path) -> None:
    """Processing order: day 2's events come after what day 1 billed, even the earlier ones.

    The expected lines are the per-event reference's, taking the events day by day; day 2's
    sample events overlap day 1's in time (late events), so this differs from event-time order.
    """
    (tmp_path / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0800"\n')
    write_subscriber_sources(tmp_path / "rates")
    day1 = _untied(tap_events(tmp_path, DAY1, 900, 1))
    day2 = tap_events(tmp_path, DAY2, 900, 2)
    day2 = _untied(pa.concat_tables([day1, day2])).slice(day1.num_rows)
    # one event of day 2 was found to be a duplicate by validation: not rated
    status = ["duplicate"] + ["accepted"] * (day2.num_rows - 1)
    day2 = day2.set_column(day2.schema.get_field_index("status"), "status", pa.array(status))
    write_lake(tmp_path, DAY1, day1)
    write_lake(tmp_path, DAY2, day2)
    # some of day 2's events are earlier than day 1's of the same card: late
    last1 = pl.DataFrame(pl.from_arrow(day1)).group_by("imsi").agg(pl.col("start_utc").max())
    late = pl.DataFrame(pl.from_arrow(day2)).join(last1, on="imsi", suffix="_1")
    assert late.filter(pl.col("start_utc") < pl.col("start_utc_1")).height > 20

    # day 1's retail never ran: day 2's bills it first (processing order), then day 2
    lines_path, summary_path = write_retail(tmp_path, DAY2)
    assert lines_path == tmp_path / "lake" / "retail" / f"date={DAY2}" / "bill_lines.parquet"
    assert (tmp_path / "lake" / "retail" / f"date={DAY1}" / "bill_lines.parquet").is_file()
    lines = pl.DataFrame(pl.from_arrow(pq.read_table(lines_path).cast(BILL_LINE_SCHEMA)))
    summary = pl.DataFrame(pl.from_arrow(pq.read_table(summary_path).cast(SUMMARY_SCHEMA)))
    # the day's accepted events only
    assert lines.height == day2.num_rows - 1
    assert set(lines["file"].to_list()) == set(day2["file"].to_pylist())

    want = _reference([(DAY1, day1), (DAY2, day2.slice(1))], tmp_path / "rates")
    got = _comparable(lines.to_dicts())
    ref2 = _comparable(want.filter(pl.col("pday") == DAY2).to_dicts())
    assert got == ref2
    # every line's own columns are the event's
    mine = lines.select("file", "event_index", "start_utc").sort("file", "event_index")
    want_ev = pl.DataFrame(pl.from_arrow(day2.slice(1).select(["file", "event_index"])))
    assert mine.select("file", "event_index").equals(want_ev.sort("file", "event_index"))

    # the summary: per sub-number, plan and cycle day 2 touched, the totals of both days' lines
    keys = ["sub_number", "plan_id", "cycle_start"]
    rated = want.filter(pl.col("attribution_rule") != "none")
    totals = (
        rated.join(rated.filter(pl.col("pday") == DAY2).select(keys).unique(), on=keys)
        .group_by(keys)
        .agg(
            pl.len().alias("events"),
            pl.col("amount").sum(),
            pl.col("usage_amount").sum(),
            pl.col("day_pass_charged").sum().alias("day_passes"),
        )
        .sort(keys)
    )
    mine = summary.select([*keys, "events", "amount", "usage_amount", "day_passes"]).sort(keys)
    assert mine.to_dicts() == totals.select(mine.columns).to_dicts()
    assert summary["amount"].sum() > 0

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
    """A budget too small for the day's events: slices of cards, the same lines and totals.

    The expected lines are those of the per-event reference in processing order; with 1 MB
    the day (about 900 events) is cut into slices.
    """
    (tmp_path / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0800"\n')
    write_subscriber_sources(tmp_path / "rates")
    day1 = _untied(tap_events(tmp_path, DAY1, 900, 1))
    day2 = tap_events(tmp_path, DAY2, 900, 2)
    day2 = _untied(pa.concat_tables([day1, day2])).slice(day1.num_rows)
    write_lake(tmp_path, DAY1, day1)
    write_lake(tmp_path, DAY2, day2)
    assert slices_for(day2.num_rows, 1) >= 2

    write_retail(tmp_path, DAY1, memory_mb=1)
    lines_path, summary_path = write_retail(tmp_path, DAY2, memory_mb=1)
    lines = pl.DataFrame(pl.from_arrow(pq.read_table(lines_path).cast(BILL_LINE_SCHEMA)))
    summary = pl.DataFrame(pl.from_arrow(pq.read_table(summary_path).cast(SUMMARY_SCHEMA)))
    want = _reference([(DAY1, day1), (DAY2, day2)], tmp_path / "rates")
    assert lines.height == day2.num_rows
    assert _comparable(lines.to_dicts()) == _comparable(
        want.filter(pl.col("pday") == DAY2).to_dicts()
    )
    # a sub-number's lines in event-time order, sub-numbers in order
    named = lines.filter(pl.col("attribution_rule") != "none")
    assert named.equals(named.sort(["imsi", "sub_number", "start_utc"], maintain_order=True))
    # the summary is the whole day's (no slice lost or counted twice)
    assert summary["events"].sum() >= named.height
    assert summary.select("imsi", "sub_number", "plan_id", "cycle_start").is_duplicated().sum() == 0
    assert summary["amount"].sum() > 0  # money was rated, not an empty day


def _strangers(events: pa.Table) -> pa.Table:
    """``events`` with 90 of them on cards not ours (unattributed lines, in every slice), 30
    of those at one second and 10 without a start (ties broken by slice, then row)."""
    imsi = events["imsi"].to_pylist()
    start = events["start_utc"].to_pylist()
    for i, row in enumerate(range(7, events.num_rows, events.num_rows // 90)[:90]):
        imsi[row] = f"99999{i % 45:010d}"
        start[row] = None if i < 10 else start[7] if i < 40 else start[row]
    out = events.set_column(events.schema.get_field_index("imsi"), "imsi", pa.array(imsi))
    at = out.schema.get_field_index("start_utc")
    return out.set_column(at, out.schema.field(at), pa.array(start, out.schema.field(at).type))


def test_a_day_rated_in_slices_is_the_day_in_one_piece(tmp_path: Path) -> None:
    """Slices are read from the lake, their lines spooled and sorted out of core: the same
    bill lines, summary and balances as the day rated in one piece, in ``rate_retail``'s
    order (sub-numbers' lines as one piece has them, then the unattributed ones by start)."""
    one, sliced = tmp_path / "one", tmp_path / "sliced"
    (one / "clearing.toml").parent.mkdir()
    (one / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0800"\n')
    write_subscriber_sources(one / "rates")
    day1 = tap_events(tmp_path, DAY1, 600, 1)
    day2 = _strangers(tap_events(tmp_path, DAY2, 2000, 2))
    write_lake(one, DAY1, day1)
    write_lake(one, DAY2, day2)
    shutil.copytree(one, sliced)
    assert slices_for(day2.num_rows, 2048) == 1
    assert slices_for(day2.num_rows, 1) >= 3

    write_retail(one, DAY2)  # day 1 first (processing order), then day 2: each in one piece
    write_retail(sliced, DAY2, memory_mb=1)  # both days in slices
    assert not list((sliced / "tmp").glob("*"))  # the spooled parts are gone

    def tables(root: Path, day: date) -> list[pa.Table]:
        folder = root / "lake" / "retail" / f"date={day}"
        names = ("bill_lines", "summary", "balances")
        return [pq.read_table(folder / f"{name}.parquet") for name in names]

    for day in (DAY1, DAY2):
        want_lines, want_summary, want_balances = tables(one, day)
        lines, summary, balances = tables(sliced, day)
        assert summary.equals(want_summary)
        assert balances.equals(want_balances)
        assert lines.schema.equals(want_lines.schema, check_metadata=True)
        # the lines of sub-numbers: exactly one piece's rows, in its order
        named = pc.not_equal(lines["attribution_rule"], "none")
        want_named = pc.not_equal(want_lines["attribution_rule"], "none")
        assert lines.filter(named).equals(want_lines.filter(want_named))
        # the others after them: one piece's, by start (none last), then slice (stable)
        rest = lines.filter(pc.invert(named))
        want_rest = want_lines.filter(pc.invert(want_named))
        assert rest.num_rows > 0 or day == DAY1
        assert lines.slice(lines.num_rows - rest.num_rows).equals(rest)
        n = slices_for(want_lines.num_rows, 1)
        with duckdb.connect() as con:
            con.register("rest", want_rest)
            k = con.sql(f"SELECT hash(imsi) % {n} AS k FROM rest").to_arrow_table()["k"]
        order = pc.sort_indices(
            pa.table({"start": want_rest["start_utc"], "k": k}),
            sort_keys=[("start", "ascending", "at_end"), ("k", "ascending", "at_end")],
        )
        assert rest.equals(want_rest.take(order))
        assert pc.sum(lines["amount"]).as_py() > 0


def test_a_day_rated_in_slices_is_written_again_byte_for_byte(tmp_path: Path) -> None:
    """A re-run of a day rated in slices (a replay of the night) rewrites the same bytes: the
    out-of-core sort and the row groups do not depend on DuckDB's threads or batches."""
    work = tmp_path / "work"
    (work / "clearing.toml").parent.mkdir()
    (work / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0800"\n')
    write_subscriber_sources(work / "rates")
    write_lake(work, DAY1, tap_events(tmp_path, DAY1, 600, 1))
    day2 = _strangers(tap_events(tmp_path, DAY2, 2000, 2))
    write_lake(work, DAY2, day2)
    assert slices_for(day2.num_rows, 1) >= 3
    folder = work / "lake" / "retail" / f"date={DAY2}"

    def digests() -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.parquet"))
        }

    write_retail(work, DAY2, memory_mb=1)
    first = digests()
    assert set(first) == {"bill_lines.parquet", "summary.parquet", "balances.parquet"}
    write_retail(work, DAY2, memory_mb=1)
    assert digests() == first
