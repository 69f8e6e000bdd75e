"""Sent history is write-once: a replay of a sent night re-rates into a delta, never over it.

Two nights and a month of a generated multi-day world through the CLI; then night 1 replayed
as it is (nothing may change) and after a tariff row edited in place (every sent byte, every
lake row behind it and every settled figure as it was; the change is a delta whose value is
worked out here from the price change and the events' durations).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import polars as pl
import pytest

from clearing.rating import rerate

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
DAYS = [DAY, DAY + timedelta(days=1)]
D1 = DAY.isoformat()
PERIOD = "2026-11"
PARTNER = "FRAF9"
OLD_ROW = "FRAF9,inbound,mtc,,all,1234567,00:00,24:00,60,8200,6,SDR,30,30,1,"
OLD_PRICE, NEW_PRICE = 8200, 9200  # SDR per 60 s at 6 decimals; minimum 30 s, then per second
# sheets whose cells may differ on a replay: the deltas themselves, and the run / lake files
_OWN = {"Re-rate deltas", "Audit", "Overview"}


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _night(world: Path, day: str) -> dict[str, Any]:
    r = _cli("nightly", "--workdir", str(world), "--date", day, "--json")
    # the planted CIBER trailer fault of 16425 is rejected every day: a data problem (1)
    assert r.returncode in (0, 1), r.stderr
    last = json.loads(r.stdout.splitlines()[-1])
    manifest = world / "runs" / last["run_id"] / "manifest.json"
    out: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return out


def _monthly(world: Path) -> Path:
    r = _cli("monthly", "--workdir", str(world), "--period", PERIOD, "--json")
    assert r.returncode in (0, 1), r.stderr
    return max((world / "out" / "settlement" / "monthly").glob("*.xlsx"), key=lambda p: p.name)


def _cells(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet's cell values, but the replay's own sheets."""
    book = openpyxl.load_workbook(path)
    return {
        ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)]
        for ws in book.worksheets
        if ws.title not in _OWN
    }


def _outbox(world: Path) -> list[tuple[str, str, str]]:
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT name, sha256, local_path FROM outbox ORDER BY name").fetchall()
    finally:
        con.close()
    return [(str(n), str(s), str(p)) for n, s, p in rows]


def _daily(world: Path, day: date) -> Path:
    return world / "out" / "settlement" / "daily" / f"settlement_daily_HKGCL_{day}.xlsx"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two nights and a month; what was sent and settled, recorded before any replay."""
    w = tmp_path_factory.mktemp("sealed") / "w"
    r = _cli(
        "samples", "generate", "--out", str(w), "--events", "300",
        "--date", D1, "--days", "3", "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifests = []
    for day in DAYS:
        r = _cli("samples", "deliver", "--workdir", str(w), "--date", day.isoformat())
        assert r.returncode == 0, r.stderr
        manifests.append(_night(w, day.isoformat()))
    monthly = _monthly(w)
    outbox = _outbox(w)
    assert any(n.startswith(f"CDHKGCL{PARTNER}") for n, _, _ in outbox)
    for _name, sha, path in outbox:  # the registered bytes are the bytes on disk
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
    return {
        "w": w,
        "manifest": manifests[0],
        "outbox": outbox,
        "out": _hashes(w / "out"),
        "lake": _hashes(w / "lake"),
        "rated": {d: _hashes(w / "lake" / "rated_visitors" / f"date={d}") for d in DAYS},
        "daily": {d: _cells(_daily(w, d)) for d in DAYS},
        "monthly": _cells(monthly),
    }


def _expected_delta(w: Path) -> int:
    """new − sent of FRAF9's MTC events of night 1, from their durations (by hand).

    The IOT row: price per 60 s at 6 decimals, a minimum of 30 s then per second, rounded half
    up per event to the file's charge scale (FRAF9's TAP decimal places).
    """
    rows = pl.read_parquet(
        w / "lake" / "rated_visitors" / f"date={D1}" / f"partner={PARTNER}" / "part-0.parquet"
    ).filter(pl.col("service") == "mtc")
    assert rows.height > 0
    (scale,) = set(rows["charge_scale"].to_list())
    total = 0
    for seconds in rows["duration"].to_list():
        units = max(int(seconds), 30)

        def charge(price: int, units: int = units) -> int:
            value = Decimal(units * price) / 60 / Decimal(10) ** (6 - scale)
            return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))

        total += charge(NEW_PRICE) - charge(OLD_PRICE)
    return total


def test_a_replay_without_change_leaves_everything_byte_identical(
    world: dict[str, Any],
) -> None:
    w: Path = world["w"]
    manifest = _night(w, D1)
    assert manifest["money"]["rerate_deltas"] == []
    assert manifest["money"]["receivable"] == world["manifest"]["money"]["receivable"]
    assert all(t["deltas"] == 0 for t in manifest["money"]["sent_identity"])
    assert not (w / "lake" / "rerate_deltas").exists()
    assert not (w / "lake" / "rerated_visitors").exists()
    assert _hashes(w / "lake") == world["lake"]
    assert _hashes(w / "out") == world["out"]
    assert _outbox(w) == world["outbox"]


def test_a_replay_after_an_in_place_tariff_edit_gives_a_delta_not_new_history(
    world: dict[str, Any],
) -> None:
    w: Path = world["w"]
    iot = w / "rates" / "sources" / "iot.csv"
    text = iot.read_text(encoding="utf-8")
    assert text.count(OLD_ROW) == 1
    iot.write_text(text.replace(OLD_ROW, OLD_ROW.replace(",8200,", ",9200,")), encoding="utf-8")
    r = _cli("rates", "import", "--workdir", str(w))
    assert r.returncode == 0, r.stderr
    expected = _expected_delta(w)
    assert expected > 0

    manifest = _night(w, D1)

    # every sent byte as it was, on disk and in the outbox
    assert _outbox(w) == world["outbox"]
    for _name, sha, path in world["outbox"]:
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
    out = _hashes(w / "out")
    for rel, sha in world["out"].items():
        if not rel.endswith(".xlsx"):
            assert out[rel] == sha, rel
    # the rows behind the sent files as they were
    for day in DAYS:
        assert _hashes(w / "lake" / "rated_visitors" / f"date={day}") == world["rated"][day]
    # what settles: the receivable is what was sent
    assert manifest["money"]["receivable"] == world["manifest"]["money"]["receivable"]
    assert _cells(_daily(w, DAY)) == world["daily"][DAY]
    assert _cells(_monthly(w)) == world["monthly"]

    # the replay's rating and its delta, on their own
    rerated = w / "lake" / "rerated_visitors" / f"date={D1}"
    assert sorted(p.name for p in rerated.iterdir()) == [f"partner={PARTNER}"]
    delta = pl.read_parquet(w / "lake" / "rerate_deltas" / f"date={D1}" / "part-0.parquet")
    assert delta.select("partner", "service", "currency").rows() == [(PARTNER, "mtc", "SDR")]
    line = delta.row(0, named=True)
    assert line["delta"] == expected
    assert line["new_total"] - line["old_total"] == expected
    assert (line["debit"], line["credit"]) == (expected, 0)
    assert manifest["money"]["rerate_deltas"] == delta.to_dicts()
    # the money identity per partner: re-rated = sent + deltas, sent = what settles
    identity = {t["partner"]: t for t in manifest["money"]["sent_identity"]}
    assert all(t["difference"] == 0 for t in identity.values())
    assert identity[PARTNER]["deltas"] == expected
    assert {t["partner"] for t in identity.values() if t["deltas"]} == {PARTNER}
    receivable = {
        (m["partner"], m["currency"], m["scale"]): m["amount"]
        for m in world["manifest"]["money"]["receivable"]
    }
    for t in identity.values():
        assert t["sent"] == receivable[(t["partner"], t["currency"], t["scale"])]

    # the workbooks show the delta on its own sheet, in the partner's currency
    for book in (_daily(w, DAY), _monthly(w)):
        ws = openpyxl.load_workbook(book)["Re-rate deltas"]
        rows = [r for r in ws.iter_rows(values_only=True) if r[1] == PARTNER]
        assert len(rows) == 1, book.name
        got = Decimal(str(rows[0][8]))
        assert got == Decimal(expected).scaleb(-int(line["charge_scale"])), book.name

    # the month re-rated: the sent rows the replay kept were rated with the old price, and
    # night 1's record kept what rated them: the rerate finds their change as a full
    # re-rating does, and takes the other partners' files as they are
    part, full = rerate(w, D1[:7]), rerate(w, D1[:7], full=True)
    assert part.delta.to_dicts() == full.delta.to_dicts()
    assert part.changed_rows.drop("changed").sort("date", "file", "line").to_dicts() == (
        full.changed_rows.drop("changed").sort("date", "file", "line").to_dicts()
    )
    assert part.same_rows > 0
    mtc = [
        r
        for r in part.delta.to_dicts()
        if (r["direction"], r["partner"], r["service"]) == ("receivable", PARTNER, "mtc")
    ]
    assert len(mtc) == 1
    assert mtc[0]["delta"] >= expected  # night 1's, and the later nights' sent MTC rows


def test_a_replay_rated_in_chunks_gives_the_same_delta_one_partner_at_a_time(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """The replay of a day too big for the budget (rated in chunks) after the tariff edit.

    A copy of the world the test above replayed, night 1 replayed again with chunks of 150
    records: the sent partners' rows are sorted from the chunks' parts one partner at a time
    (never all of them held at once); the delta, the re-rate result and every sent byte are
    those of the replay rated at once.
    """
    w: Path = world["w"]
    delta_dir = w / "lake" / "rerate_deltas" / f"date={D1}"
    rerated_dir = w / "lake" / "rerated_visitors" / f"date={D1}"
    if not delta_dir.is_dir():
        pytest.skip("runs after the tariff-edit replay above")
    at_once = {"delta": _hashes(delta_dir), "rerated": _hashes(rerated_dir)}
    copy = tmp_path / "w"
    shutil.copytree(w, copy, symlinks=True)
    r = _cli(
        "nightly",
        "--workdir",
        str(copy),
        "--date",
        D1,
        "--json",
        env={"CLEARING_RATE_CHUNK_ROWS": "150"},
    )
    assert r.returncode in (0, 1), r.stderr
    assert _hashes(copy / "lake" / "rerate_deltas" / f"date={D1}") == at_once["delta"]
    assert _hashes(copy / "lake" / "rerated_visitors" / f"date={D1}") == at_once["rerated"]
    for day in DAYS:
        assert _hashes(copy / "lake" / "rated_visitors" / f"date={day}") == world["rated"][day]
    # nothing sent is sent otherwise: the same names with the same bytes
    assert [(n, sha) for n, sha, _p in _outbox(copy)] == [
        (n, sha) for n, sha, _p in world["outbox"]
    ]


def test_a_sent_file_changed_on_disk_stops_the_replay_naming_it(
    world: dict[str, Any],
) -> None:
    w: Path = world["w"]
    name, _sha, path = next(t for t in world["outbox"] if t[0].startswith("CDHKGCLGBRG9"))
    sent = Path(path).read_bytes()
    Path(path).write_bytes(sent + b"\0")
    try:
        r = _cli("nightly", "--workdir", str(w), "--date", D1, "--json")
        assert r.returncode == 1, r.stderr
        assert name in r.stdout + r.stderr
        assert Path(path).read_bytes() == sent + b"\0"  # left for the analyst, not rewritten
    finally:
        Path(path).write_bytes(sent)
