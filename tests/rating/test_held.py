"""Held records over several nights: never unrated or zero, recycled once, default_rate.

A generated multi-day world is delivered and run night after night through the CLI (real
DuckDB, real Parquet, real TAP-out files decoded with asn1tools from the release's own ASN.1
module, not with the package's decoder).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asn1tools
import polars as pl
import pytest

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
DAYS = [DAY + timedelta(days=k) for k in range(3)]
PARTNER, SERVICE = "FRAF9", "mtc"
TAP = asn1tools.compile_files([str(ROOT / "specs" / "asn1" / "TAP-0312.asn")], "ber")


def _night(world: Path, day: date) -> tuple[int, dict[str, Any]]:
    r = _cli("nightly", "--workdir", str(world), "--date", day.isoformat(), "--json")
    last = json.loads(r.stdout.splitlines()[-1])
    manifest = json.loads(
        (world / "runs" / last["run_id"] / "manifest.json").read_text(encoding="utf-8")
    )
    return r.returncode, manifest


def _edit_csv(path: Path, keep: Any) -> list[dict[str, str]]:
    """Rewrite ``path`` without the rows ``keep`` refuses; return the removed rows."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    removed = [r for r in rows if not keep(r)]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(r for r in rows if keep(r))
    return removed


def _add_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open(encoding="utf-8", newline="") as f:
        fields = list(csv.DictReader(f).fieldnames or [])
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.DictWriter(f, fieldnames=fields).writerows(rows)


def _import_rates(world: Path) -> None:
    r = _cli("rates", "import", "--workdir", str(world))
    assert r.returncode == 0, r.stderr


def _bcd(raw: bytes) -> str:
    """The digits of a TAP IMSI (BCD, filler F)."""
    digits = []
    for b in raw:
        for nibble in (b >> 4, b & 0x0F):
            if nibble != 0x0F:
                digits.append(str(nibble))
    return "".join(digits)


def _walk(value: Any, key: str) -> list[Any]:
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(v)
            found += _walk(v, key)
    elif isinstance(value, list | tuple):
        for v in value:
            found += _walk(v, key)
    return found


def _tap_events(world: Path, partner: str) -> Counter[tuple[str, str]]:
    """(IMSI, local start YYYYMMDDHHMMSS) of every call event in our TAP-out to ``partner``."""
    seen: Counter[tuple[str, str]] = Counter()
    for path in sorted((world / "out" / "tap").glob(f"CDHKGCL{partner}*")):
        kind, value = TAP.decode("DataInterChange", path.read_bytes())
        if kind != "transferBatch":
            continue
        for _choice, event in value.get("callEventDetails", []):
            imsi = _walk(event, "imsi")
            start = _walk(event, "callEventStartTimeStamp") or _walk(event, "dataVolumeReference")
            stamp = _walk(start, "localTimeStamp")
            seen[(_bcd(imsi[0]), stamp[0].decode())] += 1
    return seen


def _mediation(world: Path, day: date) -> pl.DataFrame:
    """The day's mediation CDRs as delivered (CSV and Parquet), text columns."""
    stamp = day.strftime("%Y%m%d")
    frames = []
    for p in sorted((world / "inbox" / "cdr").glob(f"*{stamp}*")):
        if p.suffix == ".csv":
            df = pl.read_csv(p, infer_schema=False)
        else:
            df = pl.read_parquet(p)
            df = df.select(
                pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S")
                if df.schema[c].is_temporal()
                else pl.col(c).cast(pl.String)
                for c in df.columns
            )
        frames.append(df.select("record_id", "record_type", "imsi", "start_time", "duration"))
    return pl.concat(frames)


def _prefixes(world: Path, partner: str) -> list[str]:
    with (world / "rates" / "sources" / "imsi_ranges.csv").open(encoding="utf-8") as f:
        return [r["imsi_prefix"] for r in csv.DictReader(f) if r["partner"] == partner]


def _of_partner_service(cdrs: pl.DataFrame, world: Path) -> pl.DataFrame:
    starts = pl.any_horizontal(pl.col("imsi").str.starts_with(p) for p in _prefixes(world, PARTNER))
    return cdrs.filter(
        starts & (pl.col("record_type") == SERVICE) & pl.col("record_id").is_not_null()
    )


def _key(imsi: str, start: str) -> tuple[str, str]:
    return imsi, datetime.fromisoformat(start.replace(" ", "T")).strftime("%Y%m%d%H%M%S")


@pytest.fixture(scope="module")
def world_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = tmp_path_factory.mktemp("held") / "w"
    r = _cli(
        "samples", "generate", "--out", str(world), "--events", "300",
        "--date", DAY.isoformat(), "--days", "3", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return world


def test_a_missing_iot_row_holds_then_recycles_exactly_once(world_days: Path) -> None:
    world = world_days
    iot = world / "rates" / "sources" / "iot.csv"
    removed = _edit_csv(
        iot,
        lambda r: (
            not (
                r["partner"] == PARTNER and r["direction"] == "inbound" and r["service"] == SERVICE
            )
        ),
    )
    assert removed
    _import_rates(world)

    # night 1: the partner's MTC calls are held, named, counted, not sent and not zero
    r = _cli("samples", "deliver", "--workdir", str(world), "--date", DAYS[0].isoformat())
    assert r.returncode == 0, r.stderr
    expected = _of_partner_service(_mediation(world, DAYS[0]), world)
    n = expected.height
    assert n > 0
    code, m1 = _night(world, DAYS[0])
    assert code == 1
    line = [p for p in m1["problems"] if f"{PARTNER} {SERVICE} held" in p]
    assert len(line) == 1, m1["problems"]
    assert f"{n} record(s) of {PARTNER} {SERVICE} held" in line[0]
    assert m1["reconciliation"]["held"] == n
    assert m1["reconciliation"]["difference"] == 0
    rate = next(s for s in m1["stages"] if s["name"] == "rate")
    assert rate["detail"]["held"] == n
    unrated = pl.read_parquet(world / "lake" / "unrated_visitors" / f"date={DAYS[0]}" / "*.parquet")
    held = unrated.filter(pl.col("status") == "held")
    assert sorted(held["record_id"].to_list()) == sorted(expected["record_id"].to_list())
    assert held["charge"].null_count() == n  # not zero: no charge at all
    keys = {_key(i, s) for i, s in expected.select("imsi", "start_time").rows()}
    sent = _tap_events(world, PARTNER)
    assert not keys & set(sent), "a held record went out on night 1"

    # night 2, after the IOT row is restored: out once, in night 2's TAP-out
    _add_csv(iot, removed)
    _import_rates(world)
    r = _cli("samples", "deliver", "--workdir", str(world), "--date", DAYS[1].isoformat())
    assert r.returncode == 0, r.stderr
    before = _tap_events(world, PARTNER)
    code, m2 = _night(world, DAYS[1])
    assert not [p for p in m2["problems"] if " held" in p], m2["problems"]
    assert m2["reconciliation"]["difference"] == 0
    assert m2["reconciliation"]["held"] == 0
    rate = next(s for s in m2["stages"] if s["name"] == "rate")
    assert rate["detail"]["recycled"] == n
    after = _tap_events(world, PARTNER)
    new = after - before
    assert all(new[k] == 1 for k in keys), "every held record in night 2's TAP-out, once"
    assert all(after[k] == 1 for k in keys)
    rated = pl.read_parquet(world / "lake" / "rated_visitors" / f"date={DAYS[1]}" / "**/*.parquet")
    recycled = rated.filter(pl.col("origin") == "recycled")
    assert sorted(recycled["record_id"].to_list()) == sorted(expected["record_id"].to_list())
    assert set(recycled["origin_date"].to_list()) == {DAYS[0]}
    assert (recycled["charge"] > 0).all()

    # a replay of night 2 picks the same records: still once
    code, m2b = _night(world, DAYS[1])
    rate = next(s for s in m2b["stages"] if s["name"] == "rate")
    assert rate["detail"]["recycled"] == n
    assert m2b["reconciliation"]["difference"] == 0
    again = _tap_events(world, PARTNER)
    assert all(again[k] == 1 for k in keys)

    # night 3: none again
    r = _cli("samples", "deliver", "--workdir", str(world), "--date", DAYS[2].isoformat())
    assert r.returncode == 0, r.stderr
    code, m3 = _night(world, DAYS[2])
    rate = next(s for s in m3["stages"] if s["name"] == "rate")
    assert rate["detail"]["recycled"] == 0
    assert m3["reconciliation"]["difference"] == 0
    final = _tap_events(world, PARTNER)
    assert all(final[k] == 1 for k in keys)


@pytest.fixture
def one_day(world_days: Path, tmp_path: Path) -> Path:
    """A fresh one-day world (the first day of a generated multi-day world, not yet run)."""
    world = tmp_path / "w"
    r = _cli(
        "samples", "generate", "--out", str(world), "--events", "300",
        "--date", DAY.isoformat(), "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return world


def test_a_missing_fx_rate_holds_the_payable_instead_of_zero(one_day: Path) -> None:
    world = one_day
    with (world / "rates" / "sources" / "agreements.csv").open(encoding="utf-8") as f:
        eur = {r["partner"] for r in csv.DictReader(f) if r["settlement_currency"] == "EUR"}
    assert eur
    _edit_csv(world / "rates" / "sources" / "fx.csv", lambda r: r["currency"] != "EUR")
    _import_rates(world)
    code, m = _night(world, DAY)
    assert code == 1
    events = pl.read_parquet(world / "lake" / "events_in" / f"date={DAY}" / "**/*.parquet")
    accepted = events.filter((pl.col("status") == "accepted") & pl.col("sender").is_in(eur))
    n = accepted.height
    assert n > 0
    # no EUR payable at all: neither 0.00 nor any other figure
    assert not [p for p in m["money"]["payable"] if p["currency"] == "EUR"]
    by_partner = Counter(accepted["sender"].to_list())
    for partner, count in by_partner.items():
        lines = [p for p in m["problems"] if f"event(s) of {partner} " in p and "held" in p]
        assert sum(int(x.split("payable of ")[1].split(" ")[0]) for x in lines) == count
        assert all("EUR" in x for x in lines)
    rate = next(s for s in m["stages"] if s["name"] == "rate")
    assert rate["detail"]["payables_held"] == n
    assert m["reconciliation"]["held"] == n
    assert m["reconciliation"]["difference"] == 0


def test_default_rate_bills_instead_of_holding_with_a_warning(one_day: Path) -> None:
    world = one_day
    _edit_csv(
        world / "rates" / "sources" / "iot.csv",
        lambda r: (
            not (
                r["partner"] == PARTNER and r["direction"] == "inbound" and r["service"] == SERVICE
            )
        ),
    )
    _import_rates(world)
    toml = world / "clearing.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        + f'\n[partners.{PARTNER}.default_rate.{SERVICE}]\nprice = "0.10"\nunit = 60\n',
        encoding="utf-8",
    )
    expected = _of_partner_service(_mediation(world, DAY), world)
    n = expected.height
    assert n > 0
    _code, m = _night(world, DAY)
    assert not [p for p in m["problems"] if " held" in p], m["problems"]
    rate = next(s for s in m["stages"] if s["name"] == "rate")
    assert rate["status"] == "warning"
    assert rate["detail"]["held"] == 0
    assert rate["detail"]["default_rated"] == n
    assert [h["count"] for h in m["held"] if h["kind"] == "default_rate"] == [n]
    assert m["reconciliation"]["difference"] == 0
    # FRAF9 charges at 5 decimal places (agreements.csv): 0.10 per 60 s, half up, no increment
    with (world / "rates" / "sources" / "agreements.csv").open(encoding="utf-8") as f:
        (places,) = [
            int(r["tap_decimal_places"]) for r in csv.DictReader(f) if r["partner"] == PARTNER
        ]
    want = {
        rid: int((Decimal("0.10") * int(d) / 60 * 10**places).quantize(Decimal(1), ROUND_HALF_UP))
        for rid, d in expected.select("record_id", "duration").rows()
    }
    rated = pl.read_parquet(world / "lake" / "rated_visitors" / f"date={DAY}" / "**/*.parquet")
    got = dict(
        rated.filter(pl.col("record_id").is_in(list(want))).select("record_id", "charge").rows()
    )
    assert got == want
    keys = {_key(i, s) for i, s in expected.select("imsi", "start_time").rows()}
    sent = _tap_events(world, PARTNER)
    assert all(sent[k] == 1 for k in keys)
    shutil.rmtree(world)
