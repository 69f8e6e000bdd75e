"""``clearing retail explain``: why one bill line costs what it costs, worked by hand.

The card and plan of :mod:`tests.rating.test_retail_processing_order` (plan ``P``: 10 free
minutes of outgoing voice a cycle, then HK$1.00 a minute in 60 s increments; data covered by a
HK$5.00 day pass of 24 h). Money in cents, shown in HKD.

Processing day 1 (2026-11-21) bills an 8-minute call (480 s, all in the allowance). Processing
day 2 (2026-11-22) brings a late 5-minute call (300 s): it comes after day 1's 480 s, so the
cycle's voice usage goes from 480 s to 780 s; the allowance (600 s) has 120 s left, the other
180 s are beyond it, at 100 cents a minute: 180 × 100 / 60 = 300 cents exactly, HK$3.00.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow.parquet as pq

from clearing.rating.retail import write_retail
from tests.cli_run import run_cli

from .test_retail import DATA, LOCAL, PRIMARY, VIRTUAL, event, flat_tiers, plan, world
from .test_retail_plans import card_pass_world, numbers, tables
from .test_retail_processing_order import DAY1, DAY2, at, deliver, setup

if TYPE_CHECKING:
    from pathlib import Path


def _line_id(tmp: Path, day: Any, fsn: str) -> str:
    """The id of the only line of file ``fsn`` of ``day``, as a user builds it from the file."""
    path = tmp / "lake" / "retail" / f"date={day}" / "bill_lines.parquet"
    rows = [r for r in pq.read_table(path).to_pylist() if r["file"] == f"CDFRAF9HKGCL{fsn}"]
    assert len(rows) == 1
    return f"{day}/CDFRAF9HKGCL{fsn}/{rows[0]['event_index']}"


def _explain(tmp: Path, line: str, *more: str) -> Any:
    return run_cli("retail", "explain", "-w", str(tmp), "--line", line, *more)


def _two_calls(tmp: Path) -> str:
    setup(tmp)
    deliver(tmp, DAY1, "00001", event("moc", at(20, 10), duration=480))
    write_retail(tmp, DAY1)
    deliver(tmp, DAY2, "00002", event("moc", at(20, 9), duration=300))
    write_retail(tmp, DAY2)
    return _line_id(tmp, DAY2, "00002")


def test_a_late_call_is_explained_from_what_the_day_before_billed(tmp_path: Path) -> None:
    line = _two_calls(tmp_path)
    r = _explain(tmp_path, line, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["line_id"] == line
    assert out["processing_date"] == "2026-11-22"
    assert out["service"] == "voice_mo"
    # the event carries the primary MSISDN, which does not decide by default: fallback
    assert out["attribution"]["rule"] == "primary"
    assert out["sub_number"] == PRIMARY
    assert out["plan"] == {
        "plan_id": "P",
        "version": "2024-01-01",  # the only plans row of P, valid from 2024-01-01
        "valid_to": None,
        "anchor": "2026-11-01",  # the cycle's first day (bill cycle day 1)
        "level": "user",  # the number's own plan
    }
    assert out["cycle_start"] == "2026-11-01"
    assert out["units"] == {"raw": 300, "increment": 60, "unit": "second", "units": 300}
    # 480 s carried from day 1, nothing earlier on day 2
    assert out["usage"]["carried"] == 480
    assert out["usage"]["earlier_today"] == []
    assert (out["usage"]["before"], out["usage"]["after"]) == (480, 780)
    # the whole cycle (30 of November's 30 days): 10 min × 60 s, not prorated
    assert out["allowance"] == {
        "size": 600,
        "left_before": 120,
        "left_after": 0,
        "used": 120,
        "full": 600,
        "active_days": 30,
        "cycle_days": 30,
    }
    (tier,) = out["tiers"]
    assert (tier["tier"], tier["from"], tier["to"], tier["units"]) == (1, 600, None, 180)
    assert (tier["price"], tier["part"]) == ("1.00", "3.00")  # 180 × 100 / 60 cents
    assert out["amount"]["exact"] == "3.00"
    assert out["amount"]["rounded"] == out["amount"]["line"] == "3.00"
    assert out["amount"]["day_pass"] == "0.00"
    assert out["currency"] == "HKD"
    assert out["day_pass"] is None
    assert out["matches"] is True
    assert out["mismatches"] == []


def test_the_text_says_the_same(tmp_path: Path) -> None:
    line = _two_calls(tmp_path)
    r = _explain(tmp_path, line)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "attribution: primary" in text
    assert "plan P version 2024-01-01" in text
    assert "before 480" in text
    assert "after 780" in text
    assert "left before 120, left after 0; this line uses 120" in text
    assert "tier 1 [600, ∞): 180 × 1.00 HKD per 60 second(s) = 3.00 HKD" in text
    assert "= 3.00 HKD" in text
    assert "WARNING" not in text


def test_changed_reference_data_is_said_loudly(tmp_path: Path) -> None:
    line = _two_calls(tmp_path)
    # today the plan gives 20 free minutes: re-rated, the call would be free
    plans = tmp_path / "rates" / "sources" / "plans.csv"
    text = plans.read_text()
    header, *rows = text.splitlines()
    column = header.split(",").index("allowance_voice_mo_min")
    fixed = []
    for row in rows:
        cells = row.split(",")
        if cells[0] == "P":
            cells[column] = "20"
        fixed.append(",".join(cells))
    plans.write_text("\n".join([header, *fixed]) + "\n")
    r = _explain(tmp_path, line, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["matches"] is False
    assert out["warning"] == "the line does not match a re-rating with today's reference data"
    assert any(m.startswith("amount") for m in out["mismatches"])
    assert "WARNING: the line does not match" in _explain(tmp_path, line).stdout


def _sessions(tmp: Path) -> None:
    setup(tmp)
    deliver(tmp, DAY1, "00001", event("gprs", at(20, 12), mb=1))  # opens a pass, HK$5.00
    write_retail(tmp, DAY1)
    deliver(tmp, DAY2, "00002", event("gprs", at(20, 20), mb=1))  # inside day 1's pass
    write_retail(tmp, DAY2)


def test_a_session_covered_by_an_earlier_days_pass_names_it(tmp_path: Path) -> None:
    _sessions(tmp_path)
    opener = _line_id(tmp_path, DAY1, "00001")
    covered = _line_id(tmp_path, DAY2, "00002")
    out = json.loads(_explain(tmp_path, covered, "--json").stdout)
    assert out["day_pass"] == {
        "covered": True,
        "pass_start": "2026-11-20T12:00:00+00:00",
        "pass_end": "2026-11-21T12:00:00+00:00",
        "opened_here": False,
        "price": "5.00",
        "opened_by": opener,
        "scope": "sub_number",
        "opened_by_number": PRIMARY,
    }
    assert out["units"]["units"] == 1 << 20  # 1 MB, already a whole number of 1 KB increments
    assert out["allowance"] is None
    assert out["amount"]["line"] == "0.00"
    assert out["matches"] is True
    first = json.loads(_explain(tmp_path, opener, "--json").stdout)
    assert first["day_pass"]["opened_here"] is True
    assert first["day_pass"]["price"] == "5.00"
    assert first["amount"]["line"] == "5.00"
    assert "by line " + opener in _explain(tmp_path, covered).stdout


def test_find_prints_the_line_id_explain_takes(tmp_path: Path) -> None:
    line = _two_calls(tmp_path)
    r = run_cli("find", "-w", str(tmp_path), "--imsi", "454990000000001", "--json")
    assert r.returncode == 0, r.stderr
    ids = [json.loads(x)["line_id"] for x in r.stdout.splitlines() if '"retail"' in x]
    assert line in ids
    assert len(ids) == 2


def test_an_unknown_line_exits_1_and_a_bad_id_2(tmp_path: Path) -> None:
    _two_calls(tmp_path)
    r = _explain(tmp_path, "2026-11-22/CDFRAF9HKGCL00002/999999")
    assert r.returncode == 1
    assert "no bill line" in r.stdout
    assert _explain(tmp_path, "2026-11-23/CDFRAF9HKGCL00002/0").returncode == 1
    bad = _explain(tmp_path, "yesterday/x")
    assert bad.returncode == 2
    assert "not a bill line id" in bad.stderr
    assert _explain(tmp_path / "nowhere", "2026-11-22/F/0").returncode == 2


def test_the_retail_stage_still_runs_as_before(tmp_path: Path) -> None:
    setup(tmp_path)
    deliver(tmp_path, DAY1, "00001", event("moc", at(20, 10), duration=480))
    r = run_cli("retail", "-w", str(tmp_path), "--date", str(DAY1), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["rows"] == 1
    assert run_cli("retail", "-w", str(tmp_path)).returncode == 2  # no --date


def test_an_earlier_line_of_the_same_day_counts_before(tmp_path: Path) -> None:
    """Day 2 brings two late calls: 09:00 (300 s) and 11:00 (120 s), rated in that order.

    After day 1's 480 s, the 09:00 call takes the cycle to 780 s; the 11:00 call comes after it:
    before 480 + 300 = 780 s, after 900 s, nothing left of the 600 s allowance, 120 s at 100
    cents a minute = 200 cents, HK$2.00.
    """
    setup(tmp_path)
    deliver(tmp_path, DAY1, "00001", event("moc", at(20, 10), duration=480))
    write_retail(tmp_path, DAY1)
    deliver(
        tmp_path,
        DAY2,
        "00002",
        event("moc", at(20, 11), duration=120),  # listed first in the file, rated second
        event("moc", at(20, 9), duration=300),
    )
    write_retail(tmp_path, DAY2)
    path = tmp_path / "lake" / "retail" / f"date={DAY2}" / "bill_lines.parquet"
    index = {r["start_utc"].hour: r["event_index"] for r in pq.read_table(path).to_pylist()}
    first = f"{DAY2}/CDFRAF9HKGCL00002/{index[9]}"
    second = f"{DAY2}/CDFRAF9HKGCL00002/{index[11]}"
    out = json.loads(_explain(tmp_path, second, "--json").stdout)
    assert out["usage"] == {
        "carried": 480,
        "earlier_today": [first],
        "earlier_today_units": 300,
        "before": 780,
        "after": 900,
    }
    assert out["allowance"] == {
        "size": 600,
        "left_before": 0,
        "left_after": 0,
        "used": 0,
        "full": 600,
        "active_days": 30,
        "cycle_days": 30,
    }
    assert [(t["units"], t["part"]) for t in out["tiers"]] == [(120, "2.00")]
    assert out["amount"]["line"] == "2.00"
    assert out["matches"] is True
    # the first: 120 s of the allowance, 180 s beyond: HK$3.00 (as in the one-call case)
    out = json.loads(_explain(tmp_path, first, "--json").stdout)
    assert (out["usage"]["before"], out["usage"]["after"]) == (480, 780)
    assert out["amount"]["line"] == "3.00"


def test_the_values_each_rule_matched_are_shown(tmp_path: Path) -> None:
    """A call dialled +86… goes to the virtual number (selection code +86, plan LOCAL), a call
    carrying the local number's MSISDN to it, a session on APN corp.vpn to the data number.

    LOCAL and DATA have no allowance and one tier at 100 cents a unit: a 60 s call is 1 minute,
    HK$1.00; 1 MB of data is HK$1.00.
    """
    setup(tmp_path)
    deliver(
        tmp_path,
        DAY1,
        "00001",
        event("moc", at(20, 10), duration=60, dialled="+8613800000000"),
        event("moc", at(20, 11), duration=60, msisdn=LOCAL),
        event("gprs", at(20, 12), mb=1, apn="corp.vpn"),
    )
    write_retail(tmp_path, DAY1)
    path = tmp_path / "lake" / "retail" / f"date={DAY1}" / "bill_lines.parquet"
    index = {r["start_utc"].hour: r["event_index"] for r in pq.read_table(path).to_pylist()}
    got = {
        hour: json.loads(_explain(tmp_path, f"{DAY1}/CDFRAF9HKGCL00001/{i}", "--json").stdout)
        for hour, i in index.items()
    }
    virtual, local, data = got[10], got[11], got[12]
    assert virtual["attribution"]["rule"] == "selection_code"
    assert virtual["attribution"]["matched"] == {
        "dialled_digits": "+8613800000000",
        "selection_code": "+86",
    }
    assert (virtual["sub_number"], virtual["plan"]["plan_id"]) == (VIRTUAL, "LOCAL")
    assert local["attribution"]["rule"] == "msisdn"
    assert local["attribution"]["matched"] == {"event_msisdn": LOCAL, "sub_number": LOCAL}
    assert data["attribution"]["rule"] == "apn"
    assert data["attribution"]["matched"] == {"apn_ni": "corp.vpn", "apn": "corp.vpn"}
    assert (data["sub_number"], data["plan"]["plan_id"]) == (DATA, "DATA")
    for out in (virtual, local, data):
        assert out["allowance"]["size"] == 0
        assert out["amount"]["line"] == "1.00"
        assert out["matches"] is True


def test_the_amount_is_rounded_half_up_once(tmp_path: Path) -> None:
    """Per-second voice (increment 1 s) at 100 cents a minute, no allowance: a 61 s call is
    61 × 100 / 60 = 101.666… cents, rounded half up once to 102 cents (HK$1.02).
    """
    (tmp_path / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0000"\n')
    p = plan("P", voice_increment_s=1)
    sources = tmp_path / "rates" / "sources"
    sources.mkdir(parents=True)
    for name, table in world(p, tiers=flat_tiers("P", price=100)).items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")
    deliver(tmp_path, DAY1, "00001", event("moc", at(20, 10), duration=61))
    write_retail(tmp_path, DAY1)
    out = json.loads(_explain(tmp_path, _line_id(tmp_path, DAY1, "00001"), "--json").stdout)
    assert out["units"] == {"raw": 61, "increment": 1, "unit": "second", "units": 61}
    assert out["tiers"][0]["part"] == "≈1.01666667"  # 101.666667 cents
    assert out["amount"]["exact"] == "≈1.01666667"
    assert out["amount"]["rounded"] == out["amount"]["line"] == "1.02"
    assert out["matches"] is True


# --------------------------------------------------------------------------------------------
# plans, complete: resolved plans, prorated allowances, card-wide passes


def _write_sources(tmp: Path, ref: dict[str, Any]) -> None:
    (tmp / "clearing.toml").write_text('[home]\ntadig = "HKGCL"\ntimezone_offset = "+0000"\n')
    sources = tmp / "rates" / "sources"
    sources.mkdir(parents=True)
    for name, table in ref.items():
        pl.DataFrame(pl.from_arrow(table)).write_csv(sources / f"{name}.csv")


def test_a_prorated_line_of_a_group_default_is_explained(tmp_path: Path) -> None:
    """VIRTUAL (selection code +86) starts on 2026-11-12 with no plan of its own; the card is
    in group ACME, whose default plan is CORP: 10 outgoing minutes a cycle, then HK$1.00 a
    minute (started minutes).

    Its November account has 19 days (11-12 … 11-30) of the cycle's 30: allowance
    600 s × 19 / 30 = 380 s. A call of 6 min 50 s dialled +86… on 11-20 is 7 started minutes,
    420 s: 380 s in the allowance, 40 s beyond at 100 cents a minute: 40 × 100 / 60 = 66.67
    cents, rounded half up to 67 cents, HK$0.67. (Unprorated it would be free.)
    """
    ref = tables(
        plan("P"),
        numbers=numbers(virtual={"plan_id": None, "valid_from": date(2026, 11, 12)}),
        plans=[plan("CORP", allowance_voice_mo_min=10)],
        group="ACME",
        defaults=[{"group_id": "ACME", "plan_id": "CORP", "valid_from": date(2024, 1, 1)}],
    )
    _write_sources(tmp_path, ref)
    deliver(tmp_path, DAY1, "00001", event("moc", at(20, 10), duration=410, dialled="+8613800"))
    write_retail(tmp_path, DAY1)
    line = _line_id(tmp_path, DAY1, "00001")
    out = json.loads(_explain(tmp_path, line, "--json").stdout)
    assert out["attribution"]["matched"] == {"dialled_digits": "+8613800", "selection_code": "+86"}
    assert out["sub_number"] == VIRTUAL
    assert out["plan"] == {
        "plan_id": "CORP",
        "version": "2024-01-01",
        "valid_to": None,
        "anchor": "2026-11-12",  # the first day of the cycle the number has CORP
        "level": "group",
    }
    assert out["units"]["units"] == 420
    assert out["allowance"] == {
        "size": 380,
        "left_before": 380,
        "left_after": 0,
        "used": 380,
        "full": 600,
        "active_days": 19,
        "cycle_days": 30,
    }
    (tier,) = out["tiers"]
    assert (tier["from"], tier["units"], tier["part"]) == (380, 40, "≈0.66666667")
    assert out["amount"]["rounded"] == out["amount"]["line"] == "0.67"
    assert out["matches"] is True, out["mismatches"]
    text = _explain(tmp_path, line).stdout
    assert "plan CORP version 2024-01-01 (level group" in text
    assert "allowance 600 s × 19/30 days = 380 s (prorated, rounded down): left before 380" in text
    assert "WARNING" not in text


def test_a_line_covered_by_a_card_wide_pass_names_the_other_number(tmp_path: Path) -> None:
    """PRIMARY and LOCAL share a card-wide HK$128.00 pass (plan CPASS, outgoing calls and data).

    Day 1: PRIMARY's session at 11-20 12:00 opens the card's pass (until 11-21 12:00), and
    LOCAL's call at 13:00 is inside it. Day 2: LOCAL's late call at 11-20 20:00 is inside it
    too. Both LOCAL lines cost 0 and name PRIMARY's line as the opener.
    """
    _write_sources(tmp_path, card_pass_world())
    deliver(
        tmp_path,
        DAY1,
        "00001",
        event("gprs", at(20, 12), mb=1),
        event("moc", at(20, 13), msisdn=LOCAL, duration=60),
    )
    write_retail(tmp_path, DAY1)
    deliver(tmp_path, DAY2, "00002", event("moc", at(20, 20), msisdn=LOCAL, duration=60))
    write_retail(tmp_path, DAY2)
    path = tmp_path / "lake" / "retail" / f"date={DAY1}" / "bill_lines.parquet"
    index = {r["sub_number"]: r["event_index"] for r in pq.read_table(path).to_pylist()}
    opener = f"{DAY1}/CDFRAF9HKGCL00001/{index[PRIMARY]}"
    want = {
        "covered": True,
        "pass_start": "2026-11-20T12:00:00+00:00",
        "pass_end": "2026-11-21T12:00:00+00:00",
        "opened_here": False,
        "price": "128.00",
        "opened_by": opener,
        "scope": "card",
        "opened_by_number": PRIMARY,
    }
    for line in (f"{DAY1}/CDFRAF9HKGCL00001/{index[LOCAL]}", _line_id(tmp_path, DAY2, "00002")):
        out = json.loads(_explain(tmp_path, line, "--json").stdout)
        assert out["sub_number"] == LOCAL
        assert out["day_pass"] == want
        assert out["amount"]["line"] == "0.00"
        assert out["matches"] is True, out["mismatches"]
    text = _explain(tmp_path, line).stdout
    assert "card-wide pass opened at 2026-11-20T12:00:00+00:00" in text
    assert f"by line {opener} (number {PRIMARY}) (128.00 HKD)" in text
    first = json.loads(_explain(tmp_path, opener, "--json").stdout)["day_pass"]
    assert (first["opened_here"], first["opened_by_number"], first["price"]) == (
        True,
        PRIMARY,
        "128.00",
    )
