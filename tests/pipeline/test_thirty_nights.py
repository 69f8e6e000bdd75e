"""Thirty nights of a generated world through the CLI: nothing lost, nothing billed twice.

``clearing samples generate --days 30`` and then, night by night, ``clearing samples deliver``
and ``clearing nightly --json`` (exit 1 is fine: the world plants data problems on purpose),
then ``clearing monthly`` for every period the thirty processing dates touch. Beside what the
world plants, FRAF9's severe returns are resubmitted (``clearing returns resubmit --all``) after
its RAP, and DEUD9's inbound IOT rows are gone for two nights (its visitors' records held, then
recycled). Checked over the whole month, from what the runs wrote and what went out, read
independently:

* the record identity of every night, added up here from the manifest's own counts;
* what was sent = what the monthly workbooks settle, per partner, period and currency: every
  TAP-out registered in the outbox decoded with a TAP 3.12 module compiled here (asn1tools, not
  the package's codec), every CIBER-out batch trailer read by its positions (ciber.md §4.8),
  against the Summary sheet of the workbook (exact Decimals);
* no call event went out twice (but the resubmissions that carry a RapFileSequenceNumber), the
  held records went out once, on the night their IOT was back;
* a replay of an early night after an IOT price edited in place: every sent byte and every
  settled figure as it was, the change a re-rate delta of the value worked out here by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asn1tools
import duckdb
import openpyxl
import pytest

from clearing.samples.workdir import RAP_DAY, RAP_PARTNER
from tests.pipeline.conftest import first_value

from ..cli_run import run_cli as _cli

ROOT = Path(__file__).parents[2]
DAY = date(2026, 11, 22)
NIGHTS = 30
DAYS = [DAY + timedelta(days=k) for k in range(NIGHTS)]
EVENTS = 60
PERIODS = ("2026-11", "2026-12", "2027-01")  # TAP: calendar months; CIBER: 16th to 15th
TAP_MODULE = ROOT / "specs" / "asn1" / "TAP-0312.asn"
SDR_SCALE = 6
SMS_MO = b"22"  # TD.57 TeleServiceCode: short message MO
HOLD = (12, 14)  # DEUD9's inbound IOT rows gone from night 13 until (before) night 15
HELD_PARTNER = "DEUD9"
IDENTITY = ("accepted", "returned", "duplicate", "late", "quarantined", "held")

pytestmark = pytest.mark.slow


def _night(world: Path, day: date) -> dict[str, Any]:
    r = _cli("nightly", "--workdir", str(world), "--date", day.isoformat(), "--json")
    assert r.returncode in (0, 1), (day, r.returncode, r.stderr[-2000:])  # 2/3/4: failures
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["event"] == "manifest", r.stderr
    manifest = world / "runs" / last["run_id"] / "manifest.json"
    out: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return out


def _monthly(world: Path, period: str) -> Path:
    r = _cli("monthly", "--workdir", str(world), "--period", period, "--json")
    assert r.returncode in (0, 1), (period, r.stderr[-2000:])
    folder = world / "out" / "settlement" / "monthly"
    return max(folder.glob(f"*_{period}_v*.xlsx"), key=lambda p: int(p.stem.rsplit("_v", 1)[1]))


def _outbox(world: Path) -> list[tuple[str, str, str, str, str]]:
    """(name, partner, kind, sha256, local path) of every registered file."""
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT name, partner, kind, sha256, local_path FROM outbox ORDER BY name"
        ).fetchall()
    finally:
        con.close()
    return [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]


def _processing_dates(world: Path) -> dict[str, date]:
    """The night each outbound file was made on (the bucket of its settlement period)."""
    con = duckdb.connect(str(world / "clearing.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT file_name, processing_date FROM outbound_files").fetchall()
    finally:
        con.close()
    return {str(n): d for n, d in rows}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _tap_period(day: date) -> str:
    return f"{day:%Y-%m}"


def _ciber_period(day: date) -> str:
    """The CIBER settlement period of a processing date: the 16th to the 15th of the next."""
    if day.day <= 15:
        return f"{day:%Y-%m}"
    nxt = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return f"{nxt:%Y-%m}"


# --- what went out, read independently ------------------------------------------------------


def _all(obj: Any, key: str) -> list[Any]:
    """Every value of ``key`` in a decoded ASN.1 value, depth first."""
    out: list[Any] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                out.append(v)
            else:
                out += _all(v, key)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += _all(v, key)
    return out


def _event_money(event: Any) -> tuple[int, int]:
    """(charge, tax) of one call event: its ChargeDetails of type 00, its TaxInformation."""
    details = [d for lst in _all(event, "chargeDetailList") for d in lst]
    charge = sum(d["charge"] for d in details if d["chargeType"] == b"00")
    tax = sum(t.get("taxValue", 0) for lst in _all(event, "taxInformation") for t in lst)
    return charge, tax


def _service(choice: str, event: Any) -> Any:
    code = first_value(event, "serviceCode")
    return (choice, code[0], code[1]) if code is not None else (choice,)


class Sent:
    """Every TAP-out registered in the outbox, decoded here: files and call events."""

    def __init__(self, world: Path) -> None:
        module = asn1tools.compile_files([str(TAP_MODULE)], "ber")
        dates = _processing_dates(world)
        self.files: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        for name, partner, kind, sha, local in _outbox(world):
            if kind not in ("transferBatch", "notification"):
                continue
            data = Path(local).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha, name  # registered = on disk
            choice, value = module.decode("DataInterChange", data)
            if choice != "transferBatch":
                continue  # a Notification: no events, no money
            assert value["accountingInfo"].get("tapCurrency", b"SDR") == b"SDR", name
            audit = value["auditControlInfo"]
            offsets = {
                u["utcTimeOffsetCode"]: u["utcTimeOffset"]
                for u in value["networkInfo"]["utcTimeOffsetInfo"]
            }
            resent = value["batchControlInfo"].get("rapFileSequenceNumber") is not None
            charges = taxes = 0
            details = value.get("callEventDetails", [])
            for index, (kind_, event) in enumerate(details):
                charge, tax = _event_money(event)
                charges += charge
                taxes += tax
                start = first_value(event, "callEventStartTimeStamp")
                self.events.append(
                    {
                        "file": name,
                        "index": index,
                        "partner": partner,
                        "day": dates[name],
                        "key": (
                            first_value(event, "imsi").hex(),
                            start["localTimeStamp"],
                            offsets[start["utcTimeOffsetCode"]],
                            _service(kind_, event),
                            first_value(event, "totalCallEventDuration"),
                        ),
                        "resubmitted": resent
                        or first_value(event, "rapFileSequenceNumber") is not None,
                        "charge": charge,
                        "tax": tax,
                        "sms_mo": _service(kind_, event)[1:] == ("teleServiceCode", SMS_MO),
                    }
                )
            # the file adds up: its audit totals are its events
            assert audit["callEventDetailsCount"] == len(details), name
            assert audit["totalCharge"] == charges, name
            assert audit.get("totalTaxValue", 0) == taxes, name
            self.files.append(
                {
                    "name": name,
                    "partner": partner,
                    "day": dates[name],
                    "scale": value["accountingInfo"]["tapDecimalPlaces"],
                    "charge": audit["totalCharge"],
                    "tax": audit.get("totalTaxValue", 0),
                    "events": len(details),
                }
            )


def _ciber_batches(world: Path) -> list[dict[str, Any]]:
    """Every CIBER-out batch registered in the outbox: partner, night, currency, total."""
    dates = _processing_dates(world)
    out = []
    for name, partner, kind, sha, local in _outbox(world):
        if kind != "ciber":
            continue
        data = Path(local).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha, name
        records = 0
        for line in data.split(b"\r\n"):
            if line[:2] in (b"22", b"32", b"52"):
                records += 1
            elif line[:2] == b"98":  # batch trailer, ciber.md §4.8 (positions 1-based)
                total = int(line[25:37])
                sign = -1 if line[44:45] == b"-" else 1
                assert int(line[21:25]) == records, name
                out.append(
                    {
                        "name": name,
                        "partner": partner,
                        "day": dates[name],
                        "currency": {b"01": "USD", b"02": "CAD"}[line[73:75]],
                        "total": sign * total,
                        "records": records,
                    }
                )
                records = 0
    return out


def _summary(book: Path) -> dict[str, dict[str, Any]]:
    """The Summary sheet of a monthly workbook: one dict per partner, keyed by column title."""
    ws = openpyxl.load_workbook(book)["Summary"]
    rows = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r[0] == "Partner")
    titles = rows[head]
    out = {}
    for r in rows[head + 1 :]:
        if r[0] in (None, "Total"):
            break
        out[str(r[0])] = dict(zip(titles, r, strict=True))
    return out


def _deltas(book: Path) -> list[dict[str, Any]]:
    """The lines of the Re-rate deltas sheet, keyed by column title."""
    ws = openpyxl.load_workbook(book)["Re-rate deltas"]
    rows = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r[0] == "Processing date")
    out = []
    for r in rows[head + 1 :]:
        if r[0] in (None, "Total"):
            break
        out.append(dict(zip(rows[head], r, strict=True)))
    return out


def _dec(cell: Any) -> Decimal:
    """A workbook money cell as an exact Decimal (written from a Decimal, read as a float)."""
    return Decimal(str(cell or 0))


def _fx(world: Path) -> dict[str, Decimal]:
    """Units of each currency per SDR, from the world's rates/sources/fx.csv (one row each)."""
    lines = (world / "rates" / "sources" / "fx.csv").read_text(encoding="utf-8").splitlines()
    head = lines[0].split(",")
    out: dict[str, Decimal] = {"SDR": Decimal(1)}
    for line in lines[1:]:
        row = dict(zip(head, line.split(","), strict=False))
        assert row["currency"] not in out, "one fx row per currency in the sample world"
        out[row["currency"]] = Decimal(row["rate"]).scaleb(-int(row["rate_scale"]))
    return out


# --- the thirty nights -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The world after thirty nights and the monthly workbooks of the periods they touch."""
    w = tmp_path_factory.mktemp("thirty") / "w"
    r = _cli(
        "samples", "generate", "--out", str(w), "--events", str(EVENTS),
        "--date", DAY.isoformat(), "--days", str(NIGHTS), "--seed", "5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifests = []
    iot = w / "rates" / "sources" / "iot.csv"
    for k, day in enumerate(DAYS):
        r = _cli("samples", "deliver", "--workdir", str(w), "--date", day.isoformat())
        assert r.returncode == 0, (day, r.stderr)
        if k in HOLD:  # a partner's inbound IOT rows removed (held), then put back (recycled)
            text = iot.read_text(encoding="utf-8")
            if k == HOLD[0]:
                kept = [x for x in text.splitlines(keepends=True)
                        if not x.startswith(f"{HELD_PARTNER},inbound,")]  # fmt: skip
                iot.with_suffix(".orig").write_text(text, encoding="utf-8")
                iot.write_text("".join(kept), encoding="utf-8")
            else:
                iot.write_text(
                    iot.with_suffix(".orig").read_text(encoding="utf-8"), encoding="utf-8"
                )
                iot.with_suffix(".orig").unlink()
            r = _cli("rates", "import", "--workdir", str(w))
            assert r.returncode == 0, r.stderr
        manifests.append(_night(w, day))
        if day == DAYS[RAP_DAY]:  # FRAF9's RAP came in: its severe items go out again
            r = _cli("returns", "resubmit", "--workdir", str(w), "--all")
            assert r.returncode == 0, r.stderr
    books = {p: _monthly(w, p) for p in PERIODS}
    r = _cli("returns", "list", "--workdir", str(w), "--json")
    assert r.returncode == 0, r.stderr
    returns = json.loads(r.stdout)
    return {"w": w, "manifests": manifests, "books": books, "returns": returns}


def test_every_night_the_record_identity_adds_up(month: dict[str, Any]) -> None:
    manifests: list[dict[str, Any]] = month["manifests"]
    assert [m["label"] for m in manifests] == [d.isoformat() for d in DAYS]
    for day, m in zip(DAYS, manifests, strict=True):
        rec = m["reconciliation"]
        assert rec["in"] > 0, day
        # in = accepted + returned + duplicate + late + quarantined + held, added up here
        assert rec["in"] == sum(rec[k] for k in IDENTITY), (day, rec)
        assert rec["difference"] == 0, (day, rec)
    # the planted happenings show in the counts: late records (~4 % of the partners' calls,
    # from the second night), the re-delivered CDR file of the third night as duplicates
    assert manifests[0]["reconciliation"]["late"] == 0
    assert sum(m["reconciliation"]["late"] for m in manifests[1:]) > 0
    assert manifests[2]["reconciliation"]["duplicate"] > manifests[1]["reconciliation"]["duplicate"]
    # the nights without DEUD9's IOT hold its visitors' records (an anomaly naming it), the
    # night it is back recycles exactly those; no other night holds anything
    held = [m["reconciliation"]["held"] for m in manifests]
    assert all(n > 0 for n in held[HOLD[0] : HOLD[1]]), held
    assert sum(held) == sum(held[HOLD[0] : HOLD[1]])
    for m in manifests[HOLD[0] : HOLD[1]]:
        assert any(f"of {HELD_PARTNER} " in p and "held" in p for p in m["problems"]), m["problems"]
    recycled = [_rate(m)["recycled"] for m in manifests]
    assert recycled[HOLD[1]] == sum(held)
    assert sum(recycled) == sum(held)


def _rate(manifest: dict[str, Any]) -> dict[str, Any]:
    (detail,) = [s["detail"] for s in manifest["stages"] if s["name"] == "rate"]
    out: dict[str, Any] = detail
    return out


def test_what_was_sent_is_what_the_monthly_workbooks_settle(month: dict[str, Any]) -> None:
    w: Path = month["w"]
    sent = Sent(w)
    assert {f["day"] for f in sent.files} == set(DAYS)  # TAP-out every night
    # TAP partners: Σ (totalCharge + totalTaxValue) of the decoded files, in SDR, per period
    tap: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    tap_events: Counter[tuple[str, str]] = Counter()
    for f in sent.files:
        key = (_tap_period(f["day"]), f["partner"])
        tap[key] += Decimal(f["charge"] + f["tax"]).scaleb(-f["scale"])
        tap_events[key] += f["events"]
    # CIBER partners: Σ batch totals, in the batches' currency, per CIBER settlement period
    ciber: dict[tuple[str, str, str], int] = defaultdict(int)
    ciber_records: Counter[tuple[str, str]] = Counter()
    for b in _ciber_batches(w):
        ciber[(_ciber_period(b["day"]), b["partner"], b["currency"])] += b["total"]
        ciber_records[(_ciber_period(b["day"]), b["partner"])] += b["records"]
    assert ciber
    fx = _fx(w)
    compared = 0
    for period, book in month["books"].items():
        summary = _summary(book)
        for partner, row in summary.items():
            if row["Standard"] == "TAP":
                want = tap.get((period, partner), Decimal(0))
                got = _dec(row["Receivable charge (SDR)"]) + _dec(row["Receivable tax (SDR)"])
                assert got == want, (period, partner, got, want)
                assert row["Receivable events"] == tap_events[(period, partner)], (period, partner)
                compared += want != 0
                continue
            # CIBER: the settlement-currency receivable, converted once per total (via SDR)
            sc = row["Settlement currency"]
            want = Decimal(0)
            for (p, code, cur), total in ciber.items():
                if (p, code) == (period, partner):
                    value = Decimal(total).scaleb(-2) / fx[cur] * fx[sc]
                    want += value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            got = _dec(row["Net receivable (settlement)"])
            assert got == want, (period, partner, got, want)
            assert row["Receivable events"] == ciber_records[(period, partner)], (period, partner)
            compared += want != 0
        assert _deltas(book) == [], period  # no replay yet: no delta
    # what came back: FRAF9's severe items, −(charge + tax) of those events as we sent them
    returned = _returned(month, sent)
    rap_period = _tap_period(DAYS[RAP_DAY])
    for period, book in month["books"].items():
        for partner, row in _summary(book).items():
            want = Decimal(0)
            if (period, partner) == (rap_period, RAP_PARTNER):
                want = -sum(
                    (Decimal(e["charge"] + e["tax"]).scaleb(-e["scale"]) for e in returned),
                    Decimal(0),
                )
            assert _dec(row["RAP received (SDR)"]) == want, (period, partner)
    # every partner that was sent something was compared, in some period
    assert compared >= len({f["partner"] for f in sent.files if f["charge"]}) + 1


def _returned(month: dict[str, Any], sent: Sent) -> list[dict[str, Any]]:
    """The decoded events that FRAF9's RAP returned (severe), with their file's decimals."""
    items = [x for x in month["returns"] if x["kind"] == "severe"]
    assert len(items) == 3  # the first, middle and last event of our first TAP-out to FRAF9
    scale = {f["name"]: f["scale"] for f in sent.files}
    by_index = {(e["file"], e["index"]): e for e in sent.events}
    return [
        {**by_index[(x["tap_file"], x["event_index"])], "scale": scale[x["tap_file"]]}
        for x in items
    ]


def test_no_event_went_out_twice(month: dict[str, Any]) -> None:
    sent = Sent(month["w"])
    assert len(sent.events) > NIGHTS * EVENTS // 4
    counts = Counter(e["key"] for e in sent.events if not e["resubmitted"])
    twice = {k: n for k, n in counts.items() if n > 1}
    assert twice == {}
    # the records held while DEUD9's IOT was gone went out once, on the night it was back:
    # the events of that night's file that started before its traffic day (HKT, D − 1)
    back = DAYS[HOLD[1]]
    recycled = [
        e for e in sent.events
        if e["partner"] == HELD_PARTNER and e["day"] == back
        and date.fromisoformat(e["key"][1][:8].decode()) < back - timedelta(days=1)
    ]  # fmt: skip
    held = sum(m["reconciliation"]["held"] for m in month["manifests"])
    assert len(recycled) == held
    # the legitimate second billing: FRAF9's severely returned events, resubmitted once, on
    # the night after the RAP, with its RapFileSequenceNumber, and listed as resubmitted
    again = [e for e in sent.events if e["resubmitted"]]
    returned = _returned(month, sent)
    assert sorted(e["key"] for e in again) == sorted(e["key"] for e in returned)
    assert {(e["partner"], e["day"]) for e in again} == {(RAP_PARTNER, DAYS[RAP_DAY + 1])}
    items = [x for x in month["returns"] if x["kind"] == "severe"]
    assert {(x["status"], x["out_file"]) for x in items} == {("resubmitted", again[0]["file"])}


def test_a_replay_after_an_in_place_iot_edit_leaves_sent_and_settled_as_they_were(
    month: dict[str, Any],
) -> None:
    w: Path = month["w"]
    outbox = _outbox(w)
    out_before = _hashes(w / "out")
    sent = Sent(w)
    # an early night with visitors' SMS MO of a partner whose inbound sms_mo tariff has one row
    iot = w / "rates" / "sources" / "iot.csv"
    text = iot.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")

    def sms_row(partner: str) -> list[str]:
        return [x for x in text.splitlines() if x.startswith(f"{partner},inbound,sms_mo,")]

    night, partner = next(
        (d, e["partner"])
        for d in DAYS[3:10]
        for e in sent.events
        if e["day"] == d and e["sms_mo"] and len(sms_row(e["partner"])) == 1
    )
    (old_row,) = sms_row(partner)
    row = dict(zip(header, old_row.split(","), strict=True))
    assert (row["unit"], row["minimum_units"], row["tax_rate"]) == ("1", "0", "0")
    old, price_scale = int(row["price"]), int(row["price_scale"])
    new = old + 1000  # 0.001 SDR more per SMS
    new_row = old_row.replace(f",{old},{price_scale},", f",{new},{price_scale},", 1)
    assert new_row != old_row
    sms = [e for e in sent.events if e["day"] == night and e["partner"] == partner and e["sms_mo"]]
    (scale,) = {f["scale"] for f in sent.files if f["partner"] == partner}

    def charge(price: int) -> int:  # one SMS, rounded half up once to the file's decimals
        value = Decimal(price).scaleb(scale - price_scale)
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    assert all(e["charge"] == charge(old) for e in sms)  # what was sent: the old price
    expected = len(sms) * (charge(new) - charge(old))
    assert expected > 0
    period = _tap_period(night)
    summary_before = _summary(month["books"][period])

    iot.write_text(text.replace(old_row, new_row), encoding="utf-8")
    r = _cli("rates", "import", "--workdir", str(w))
    assert r.returncode == 0, r.stderr
    manifest = _night(w, night)
    rec = manifest["reconciliation"]
    assert rec["in"] == sum(rec[k] for k in IDENTITY), rec

    # every sent byte as it was: the outbox, the files it names, everything under out/
    assert _outbox(w) == outbox
    for _n, _p, _k, sha, local in outbox:
        assert _sha(Path(local)) == sha, local
    out_after = _hashes(w / "out")
    for rel, sha in out_before.items():
        if not rel.startswith("settlement/"):
            assert out_after.get(rel) == sha, rel
    assert {r for r in out_after if not r.startswith("settlement/")} == {
        r for r in out_before if not r.startswith("settlement/")
    }

    # what settles is what was sent; the change is a delta on its own
    book = _monthly(w, period)
    assert book != month["books"][period]  # a new issue of the period's workbook
    assert _summary(book) == summary_before
    lines = _deltas(book)
    assert [(ln["Processing date"].date(), ln["Partner"], ln["Service"], ln["Currency"])
            for ln in lines] == [(night, partner, "sms_mo", "SDR")]  # fmt: skip
    (line,) = lines
    delta = Decimal(expected).scaleb(-scale)
    assert _dec(line["Delta (re-rated − sent)"]) == delta
    assert _dec(line["Debit (partner owes more)"]) == delta
    assert _dec(line["Credit (we owe back)"]) == 0
    assert line["Events"] == len(sms)
    # re-rated = sent + delta, sent being the SMS MO charges of the night's file (decoded)
    sent_sms = Decimal(sum(e["charge"] + e["tax"] for e in sms)).scaleb(-scale)
    assert _dec(line["Sent"]) == sent_sms
    assert _dec(line["Re-rated"]) == sent_sms + delta
    # the manifest's money identity of the replay: sent = settled, re-rated = sent + deltas
    identity = {t["partner"]: t for t in manifest["money"]["sent_identity"]}
    assert all(t["difference"] == 0 for t in identity.values())
    assert identity[partner]["deltas"] == expected
    assert {p for p, t in identity.items() if t["deltas"]} == {partner}
    that_night: Counter[str] = Counter()
    for f in sent.files:
        if f["day"] == night:
            that_night[f["partner"]] += f["charge"] + f["tax"]
    for b in _ciber_batches(w):
        if b["day"] == night:
            that_night[b["partner"]] += b["total"]
    assert {p: t["sent"] for p, t in identity.items()} == dict(that_night)
