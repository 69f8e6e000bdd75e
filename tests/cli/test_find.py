"""``clearing find``: one subscriber's events across processing dates, as a user runs it.

* On a generated world after a night: every TAP-in event of a chosen card of ours (events in
  several partners' files) that an independent decode of the TAP-in files holds (asn1tools
  over ``specs/asn1/TAP-0312.asn``, not the package's codec) is listed, with its start.
* On a hand-built lake (Parquet partitions written with the lake's schemas): each kind and
  fate shows with its status, the range leaves out another date, a sub-number finds its card.
* Exit codes: 1 nothing found, 2 bad arguments.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import asn1tools
import pyarrow as pa
import pytest

from clearing import lake

from ..cli_run import ROOT, run_cli

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Cli

DAY = "2026-11-22"
TAP_MODULE = ROOT / "specs" / "asn1" / "TAP-0312.asn"


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    assert at.utcoffset() is not None, text  # ISO 8601 with its offset
    return at


# --- a generated world, read back independently ------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("find") / "w"
    made = run_cli("samples", "generate", "--out", str(w), "--events", "2000", "--date", DAY)
    assert made.returncode == 0, made.stderr
    night = run_cli("nightly", "-w", str(w), "--date", DAY)
    assert night.returncode in (0, 1), night.stderr  # 1: the world's planted data faults
    return w


def _first(obj: Any, key: str) -> Any:
    """The first value of ``key`` in a decoded ASN.1 value (dicts, lists, CHOICE tuples)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        return None
    for v in items:
        found = _first(v, key)
        if found is not None:
            return found
    return None


def _text(value: str | bytes) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value


def _offset(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))


def _tap_in_events(world: Path) -> dict[str, dict[tuple[str, int], datetime]]:
    """IMSI → {(file, event index): start} of every TAP-in file kept in the work folder."""
    module = asn1tools.compile_files([str(TAP_MODULE)], "ber")
    files = sorted((world / "work" / DAY / "in").glob("CD*"))
    assert files, "the night keeps its TAP-in files in work/<date>/in/"
    out: dict[str, dict[tuple[str, int], datetime]] = defaultdict(dict)
    for path in files:
        kind, batch = module.decode("DataInterChange", path.read_bytes())
        if kind != "transferBatch":
            continue
        offsets = {
            u["utcTimeOffsetCode"]: u["utcTimeOffset"]
            for u in batch["networkInfo"]["utcTimeOffsetInfo"]
        }
        for index, (_, event) in enumerate(batch.get("callEventDetails", [])):
            imsi = _first(event, "imsi").hex().rstrip("f")
            # the start by event kind (TD.57): calls; mobileSession and messagingEvent; a
            # supplServiceEvent's in its supplServiceUsed
            stamp = next(
                s
                for key in ("callEventStartTimeStamp", "serviceStartTimestamp", "chargingTimeStamp")
                if (s := _first(event, key)) is not None
            )
            local = datetime.strptime(_text(stamp["localTimeStamp"]), "%Y%m%d%H%M%S")
            start = local.replace(tzinfo=_offset(_text(offsets[stamp["utcTimeOffsetCode"]])))
            out[imsi][(path.name, index)] = start
    return out


def test_find_lists_every_tap_in_event_of_a_card_an_independent_decode_holds(
    world: Path,
) -> None:
    decoded = _tap_in_events(world)
    ours = {i: ev for i, ev in decoded.items() if i.startswith("45499")}
    # a card of ours with events in the most partners' files (several)
    imsi = max(sorted(ours), key=lambda i: (len({f for f, _ in ours[i]}), len(ours[i])))
    expected = ours[imsi]
    assert len({f for f, _ in expected}) >= 2

    r = run_cli("find", "-w", str(world), "--imsi", imsi, "--json")
    assert r.returncode == 0, r.stderr
    lines = _lines(r.stdout)
    tap = [x for x in lines if x["kind"] == "received" and x["file"].startswith("CD")]
    got = {(x["file"], x["event_index"]): _instant(x["start"]) for x in tap}
    assert set(got) == set(expected)
    for key, start in expected.items():
        assert got[key] == start, key  # the same instant
    assert all(x["imsi"] == imsi for x in lines)
    assert all(x["status"] for x in tap)
    # the partner is the file's sender (CD<sender><recipient><FSN>)
    assert all(x["partner"] == x["file"][2:7] for x in tap)
    # each accepted TAP event of the card has its retail bill line
    accepted = {(x["file"], x["event_index"]) for x in tap if x["status"] == "accepted"}
    retail = {(x["file"], x["event_index"]) for x in lines if x["kind"] == "retail"}
    assert accepted <= retail
    # sorted by start
    starts = [_instant(x["start"]) for x in lines if x["start"]]
    assert starts == sorted(starts)


def test_find_by_the_cards_primary_number_finds_the_same_received_events(world: Path) -> None:
    by_imsi = _lines(
        run_cli("find", "-w", str(world), "--imsi", "454990001007919", "--json").stdout
    )
    # 85288892149: the primary number of 454990001007919 in rates/sources/subscribers.csv
    r = run_cli("find", "-w", str(world), "--msisdn", "85288892149", "--json")
    assert r.returncode == 0, r.stderr
    by_number = _lines(r.stdout)
    assert {x["imsi"] for x in by_number} == {"454990001007919"}
    key = [(x["kind"], x["file"], x.get("event_index")) for x in by_imsi]
    assert key == [(x["kind"], x["file"], x.get("event_index")) for x in by_number]


# --- a hand-built lake ------------------------------------------------------------------------

D1, D2 = date(2026, 11, 22), date(2026, 11, 23)
CARD = "454990000000001"
OTHER = "454990000000002"
VISITOR = "262019876543210"
LOCAL = "33612345678"  # the card's French local number (sub_numbers), carried by no event


def _received(index: int, imsi: str, status: str, start: datetime) -> dict[str, Any]:
    return {
        "source_format": "tap",
        "sender": "FRAF9",
        "recipient": "HKGCL",
        "file_sequence_number": "00001",
        "event_index": index,
        "event_kind": "mobileOriginatedCall",
        "byte_offset": 100 + 40 * index,
        "byte_length": 40,
        "imsi": imsi,
        "msisdn": "85290000001",
        "local_start": start.replace(tzinfo=None) + timedelta(hours=1),
        "utc_offset": "+0100",
        "start_utc": start,
        "duration": 60,
        "currency": "SDR",
        "charge_scale": 3,
        "charge": 150,
        "status": status,
    }


def _events_in(rows: list[dict[str, Any]], file: str) -> pa.Table:
    return pa.Table.from_pylist([{**r, "file": file} for r in rows], schema=lake.EVENTS_IN_SCHEMA)


def _visitor(record: str, status: str, charge: int | None) -> dict[str, Any]:
    return {
        "record_id": record,
        "record_type": "moc",
        "imsi": VISITOR,
        "msisdn": "4917000000001",
        "start_time": datetime(2026, 11, 21, 18, 30),  # local time, +0800
        "utc_offset": "+0800",
        "file": "CDR_HKGCL_20261122_001.csv",
        "line": 7 if status == "rated" else 8,
        "partner": "DEUD9",
        "service": "moc_local",
        "charged_units": 120 if charge is not None else None,
        "charge": charge,
        "charge_scale": 2 if charge is not None else None,
        "currency": "EUR" if charge is not None else None,
        "status": status,
        "reason": None if charge is not None else "no IOT row for this service",
    }


def _write_rates(rates: Path) -> None:
    sources = rates / "sources"
    sources.mkdir(parents=True)
    (sources / "subscribers.csv").write_text(
        "imsi,msisdn,bill_cycle_day,valid_from,valid_to,note\n"
        f"{CARD},85290000001,1,2024-01-01,,\n"
        f"{OTHER},85290000009,1,2024-01-01,,\n"
    )
    (sources / "sub_numbers.csv").write_text(
        "msisdn,imsi,role,selection_code,apn,plan_id,label,valid_from,valid_to\n"
        f"85290000001,{CARD},primary,,,BASIC,,2024-01-01,\n"
        f"{LOCAL},{OTHER},local,,,BASIC,France local number,2024-01-01,2025-01-01\n"
        f"{LOCAL},{CARD},local,,,BASIC,France local number,2025-01-01,\n"
        f"85290000009,{OTHER},primary,,,BASIC,,2024-01-01,\n"
    )
    (sources / "plans.csv").write_text(
        "plan_id,name,currency,scale,allowance_voice_mo_min,allowance_voice_mt_min,"
        "allowance_sms_mo,allowance_data_mb,voice_increment_s,data_increment_kb,day_pass_price,"
        "day_pass_services,valid_from,valid_to\n"
        "BASIC,Roam Basic,HKD,2,0,0,0,0,60,1,,,2024-01-01,\n"
    )
    (sources / "plans_tiers.csv").write_text(
        "plan_id,service,from_units,price,valid_from,valid_to\nBASIC,voice_mo,0,300,2024-01-01,\n"
    )


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A work folder whose lake holds two processing dates, written by hand."""
    w = tmp_path / "w"
    root = w / "lake"
    t = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    day1 = [
        _received(0, CARD, "accepted", t),
        _received(1, CARD, "duplicate", t),  # the same call sent again
        _received(2, CARD, "returned", t + timedelta(hours=2)),  # rejected: returned by RAP
        _received(3, OTHER, "accepted", t),  # another card: not listed
    ]
    lake.write(root, lake.EVENTS_IN, D1, _events_in(day1, "CDFRAF9HKGCL00001"), partner="FRAF9",
               source="CDFRAF9HKGCL00001")  # fmt: skip
    day2 = [_received(0, CARD, "accepted", t + timedelta(days=1))]
    lake.write(root, lake.EVENTS_IN, D2, _events_in(day2, "CDFRAF9HKGCL00002"), partner="FRAF9",
               source="CDFRAF9HKGCL00002")  # fmt: skip
    line = {
        "imsi": CARD,
        "sub_number": "85290000001",
        "role": "primary",
        "attribution_rule": "primary",
        "plan_id": "BASIC",
        "file": "CDFRAF9HKGCL00001",
        "sender": "FRAF9",
        "event_index": 0,
        "event_kind": "mobileOriginatedCall",
        "start_utc": t,
        "event_msisdn": "85290000001",
        "service": "voice_mo",
        "unit": "second",
        "units": 60,
        "usage_amount": 300,
        "amount": 300,
        "currency": "HKD",
        "scale": 2,
    }
    lake.write(root, lake.RETAIL, D1,
               pa.Table.from_pylist([line], schema=lake.RETAIL_BILL_LINE_SCHEMA))  # fmt: skip
    schema = lake.RATED_VISITORS.schema
    rated = pa.Table.from_pylist([_visitor("HKGCL-20261122-0000007", "rated", 250)], schema=schema)
    lake.write(root, lake.RATED_VISITORS, D1, rated, partner="DEUD9")
    unrated = pa.Table.from_pylist([_visitor("HKGCL-20261122-0000008", "unrated", None)],
                                   schema=schema)  # fmt: skip
    lake.write(root, lake.UNRATED_VISITORS, D1, unrated)
    _write_rates(w / "rates")
    return w


def test_each_kind_shows_with_its_status(built: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(built), "--imsi", CARD, "--json")
    assert r.returncode == 0, r.stderr
    got = [
        (x["kind"], x["processing_date"], x["status"], x["start"], x["event_index"])
        for x in _lines(r.stdout)
    ]
    # by start, then kind (received before retail); both dates (the last 31 by default)
    assert got == [
        ("received", "2026-11-22", "accepted", "2026-11-21T10:00:00+00:00", 0),
        ("received", "2026-11-22", "duplicate", "2026-11-21T10:00:00+00:00", 1),
        ("retail", "2026-11-22", "rated", "2026-11-21T10:00:00+00:00", 0),
        ("received", "2026-11-22", "returned", "2026-11-21T12:00:00+00:00", 2),
        ("received", "2026-11-23", "accepted", "2026-11-22T10:00:00+00:00", 0),
    ]
    first, _, bill, *_ = _lines(r.stdout)
    assert first["local_start"] == "2026-11-21T11:00:00+01:00"
    assert (first["partner"], first["file"], first["amount"], first["currency"]) == (
        "FRAF9",
        "CDFRAF9HKGCL00001",
        "0.150",  # 150 at scale 3
        "SDR",
    )
    assert (bill["service"], bill["units"], bill["amount"], bill["currency"]) == (
        "voice_mo",
        60,
        "3.00",  # 300 at scale 2
        "HKD",
    )
    assert (bill["msisdn"], bill["attribution_rule"]) == ("85290000001", "primary")


def test_a_visitors_cdrs_rated_or_not(built: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(built), "--imsi", VISITOR, "--json")
    assert r.returncode == 0, r.stderr
    lines = _lines(r.stdout)
    assert [(x["kind"], x["status"], x["record_id"]) for x in lines] == [
        ("visitor", "rated", "HKGCL-20261122-0000007"),
        ("visitor", "unrated", "HKGCL-20261122-0000008"),
    ]
    # 18:30 local at +0800 is 10:30 UTC
    assert {x["start"] for x in lines} == {"2026-11-21T10:30:00+00:00"}
    assert lines[0]["local_start"] == "2026-11-21T18:30:00+08:00"
    assert (lines[0]["partner"], lines[0]["amount"], lines[0]["currency"]) == ("DEUD9", "2.50",
                                                                                "EUR")  # fmt: skip
    assert lines[1]["amount"] is None
    assert lines[1]["reason"] == "no IOT row for this service"
    # its own MSISDN finds it too
    by_number = clearing("find", "-w", str(built), "--msisdn", "+4917000000001", "--json")
    assert len(_lines(by_number.stdout)) == 2


def test_the_range_leaves_out_another_dates_events(built: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(built), "--imsi", CARD, "--from", "2026-11-22", "--to",
                 "2026-11-22", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = _lines(r.stdout)
    assert {x["processing_date"] for x in lines} == {"2026-11-22"}
    assert len(lines) == 4
    only2 = clearing("find", "-w", str(built), "--imsi", CARD, "--from", "2026-11-23", "--json")
    assert [(x["file"], x["status"]) for x in _lines(only2.stdout)] == [
        ("CDFRAF9HKGCL00002", "accepted")
    ]


def test_a_sub_number_finds_its_cards_events(built: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(built), "--msisdn", LOCAL, "--json")
    assert r.returncode == 0, r.stderr
    lines = _lines(r.stdout)
    # the card that holds the number in November 2026 (OTHER held it in 2024 only)
    assert {x["imsi"] for x in lines} == {CARD}
    assert len(lines) == 5  # the card's 4 received events and its bill line
    text = clearing("find", "-w", str(built), "--msisdn", LOCAL)
    assert text.returncode == 0, text.stderr
    assert f"msisdn {LOCAL} (card {CARD})" in text.stdout
    assert text.stdout.splitlines()[-2] == (
        "5 events: 4 received, 1 retail, 0 visitor; retail amount: 3.00 HKD"
    )


def test_human_output_is_a_table_with_totals(built: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(built), "--imsi", CARD, "--to", "2026-11-22")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == f"imsi {CARD}, processing dates 2026-11-22 … 2026-11-22 (1)"
    assert out[1].split()[:4] == ["start", "(UTC)", "kind", "status"]
    assert [line.split()[2:4] for line in out[2:6]] == [
        ["received", "accepted"],
        ["received", "duplicate"],
        ["retail", "rated"],
        ["received", "returned"],
    ]
    assert out[-2] == "4 events: 3 received, 1 retail, 0 visitor; retail amount: 3.00 HKD"
    # the last line says how to explain a retail line, with the id of the one shown: the
    # row's processing date, file and index (`retail explain` takes it: test_retail_explain)
    retail_row = out[4].split()
    assert out[-1].startswith("why a retail line costs what it costs: clearing retail explain")
    ident = out[-1].split("e.g. ")[1].rstrip(")")
    assert ident.split("/")[0] == retail_row[-1] == "2026-11-22"
    _, file, index = ident.split("/")
    assert retail_row[retail_row.index(file) + 1] == index  # the row's `#` column


def test_only_the_partitions_of_the_range_are_read(built: Path, clearing: Cli) -> None:
    broken = lake.files(built / "lake", lake.EVENTS_IN, [D2])
    assert len(broken) == 1
    broken[0].write_bytes(b"not parquet")  # 2026-11-23's file, unreadable
    r = clearing("find", "-w", str(built), "--imsi", CARD, "--to", "2026-11-22", "--json")
    assert r.returncode == 0, r.stderr
    assert len(_lines(r.stdout)) == 4
    # the default range reads it: a broken lake file is named, exit 2, no traceback
    whole = clearing("find", "-w", str(built), "--imsi", CARD)
    assert whole.returncode == 2, whole.stderr
    assert whole.stderr.startswith("error: cannot read the lake's `events_in` of 2026-11-22 …")
    assert "Traceback" not in whole.stderr


# --- exit codes -------------------------------------------------------------------------------


def test_an_unknown_imsi_is_exit_1(built: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(built), "--imsi", "454990000000099")
    assert r.returncode == 1
    assert r.stdout.startswith("nothing found: imsi 454990000000099")
    j = clearing("find", "-w", str(built), "--imsi", "454990000000099", "--json")
    assert j.returncode == 1
    (line,) = _lines(j.stdout)
    assert (line["level"], line["event"], line["exit_code"]) == ("data", "not_found", 1)


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither --imsi nor --msisdn
        ["--imsi", CARD, "--msisdn", LOCAL],  # both
        ["--imsi", "not-an-imsi"],
        ["--msisdn", "12a"],
        ["--imsi", CARD, "--from", "2026-11-31"],
        ["--imsi", CARD, "--from", "2026-11-23", "--to", "2026-11-22"],
    ],
    ids=["neither", "both", "bad-imsi", "bad-msisdn", "bad-date", "backwards"],
)
def test_bad_arguments_are_exit_2(built: Path, clearing: Cli, args: list[str]) -> None:
    r = clearing("find", "-w", str(built), *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr


def test_no_work_folder_is_exit_2(tmp_path: Path, clearing: Cli) -> None:
    r = clearing("find", "-w", str(tmp_path / "none"), "--imsi", CARD)
    assert r.returncode == 2
    assert "no lake in" in r.stderr
