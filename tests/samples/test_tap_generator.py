"""The synthetic TAP-in generator: realistic, reconciling, deterministic, and what is committed.

The audit totals are recomputed here independently, by walking the decoded asn1tools value,
never by reusing the generator's own arithmetic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing.codecs import asn1
from clearing.codecs.ber import element_at, walk
from clearing.codecs.indefinite import to_definite
from clearing.errors import ConfigError
from clearing.samples.subscribers import subscriber_rows
from clearing.samples.tap import (
    HOME_MCC_MNC,
    HOME_TADIG,
    PARTNERS,
    generate_tap,
    split_events,
)

DAY = date(2026, 11, 22)
REPO = Path(__file__).resolve().parents[2]
DATA_SAMPLES = REPO / "data_samples" / "tap"
# the parameters data_samples/tap was generated with (see data_samples/README.md)
COMMITTED = {"events": 1500, "seed": 7, "day": date(2026, 11, 22)}

NAME_RE = re.compile(
    r"^CD(?P<sender>[A-Z]{3}[A-Z0-9]{2})(?P<recipient>[A-Z]{3}[A-Z0-9]{2})(?P<fsn>\d{5})$"
)


# ---------------------------------------------------------------------------------------------
# independent recomputation


def _iter_dicts(node: Any) -> Any:
    """Every dict inside an asn1tools value (CHOICE tuples and lists included)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _iter_dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _iter_dicts(v)
    elif isinstance(node, tuple) and len(node) == 2 and isinstance(node[0], str):
        yield from _iter_dicts(node[1])


def _start(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
        return body["basicCallInformation"]["callEventStartTimeStamp"]  # type: ignore[no-any-return]
    if kind == "gprsCall":
        return body["gprsBasicCallInformation"]["callEventStartTimeStamp"]  # type: ignore[no-any-return]
    if kind == "supplServiceEvent":
        return body["supplServiceUsed"]["chargingTimeStamp"]  # type: ignore[no-any-return]
    return body["serviceStartTimestamp"]  # type: ignore[no-any-return]


def _utc(local: bytes, offset: bytes) -> datetime:
    t = datetime.strptime(local.decode(), "%Y%m%d%H%M%S")
    sign = -1 if offset.startswith(b"-") else 1
    minutes = sign * (int(offset[1:3]) * 60 + int(offset[3:5]))
    return t - timedelta(minutes=minutes)


def recompute(batch: dict[str, Any]) -> dict[str, Any]:
    """Audit totals of a TransferBatch, recomputed from its events (TD.57 §4.6)."""
    events = batch["callEventDetails"]
    charge = tax = discount = 0
    for kind, body in events:
        if kind == "messagingEvent":
            charge += body["charge"]  # MessagingEvent carries its total charge directly
        for d in _iter_dicts(body):
            if "chargeDetailList" in d:
                charge += sum(
                    c["charge"] for c in d["chargeDetailList"] if c["chargeType"] == b"00"
                )
            if "camelInvocationFee" in d:
                charge += d["camelInvocationFee"]
            if "taxValue" in d:
                tax += d["taxValue"]
            if "discountCode" in d and "discount" in d:
                discount += d["discount"]
            assert "chargeRefundIndicator" not in d
    offsets = {
        u["utcTimeOffsetCode"]: u["utcTimeOffset"]
        for u in batch["networkInfo"]["utcTimeOffsetInfo"]
    }
    starts = []
    for kind, body in events:
        dt = _start(kind, body)
        starts.append(_utc(dt["localTimeStamp"], offsets[dt["utcTimeOffsetCode"]]))
    return {
        "totalCharge": charge,
        "totalTaxValue": tax,
        "totalDiscountValue": discount,
        "callEventDetailsCount": len(events),
        "earliest": min(starts),
        "latest": max(starts),
    }


def check_file(path: Path) -> tuple[str, dict[str, Any]]:
    """Decode one generated file and check everything that holds for every file."""
    data = path.read_bytes()
    m = NAME_RE.match(path.name)
    assert m, path.name
    decoded = asn1.decode(data, file=path.name)
    assert decoded.info.version == "3.12"
    kind, body = decoded.value
    header = body["batchControlInfo"] if kind == "transferBatch" else body
    assert header["sender"].decode() == m["sender"]
    assert header["recipient"].decode() == m["recipient"] == HOME_TADIG
    assert header["fileSequenceNumber"].decode() == m["fsn"]
    assert "fileTypeIndicator" not in header  # live data ("CD")
    # the round trip: definite files byte for byte, indefinite ones to their definite form
    again = asn1.encode(decoded.info.kind, decoded.value)
    assert again == to_definite(data)
    if kind == "transferBatch":
        audit = body["auditControlInfo"]
        got = recompute(body)
        for key in ("totalCharge", "totalTaxValue", "totalDiscountValue", "callEventDetailsCount"):
            assert audit[key] == got[key], (path.name, key)
        for key, want in (("earliestCallTimeStamp", "earliest"), ("latestCallTimeStamp", "latest")):
            stamp = audit[key]
            assert _utc(stamp["localTimeStamp"], stamp["utcTimeOffset"]) == got[want]
        for key in ("totalChargeRefund", "totalTaxRefund", "totalDiscountRefund"):
            assert key not in audit
    return kind, body


# ---------------------------------------------------------------------------------------------
# one realistic day


@pytest.fixture(scope="module")
def day_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_tap(tmp_path_factory.mktemp("day"), events=900, seed=3, day=DAY)


@pytest.fixture(scope="module")
def decoded_day(day_files: list[Path]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {p.name: check_file(p) for p in day_files}


def test_one_file_per_partner(day_files: list[Path]) -> None:
    senders = [NAME_RE.match(p.name)["sender"] for p in day_files]  # type: ignore[index]
    assert senders == [p.tadig for p in PARTNERS]
    assert len({p.tadig for p in PARTNERS}) >= 5
    assert all(p.parent == day_files[0].parent for p in day_files)


def test_audit_totals_reconcile(decoded_day: dict[str, tuple[str, dict[str, Any]]]) -> None:
    batches = [b for k, b in decoded_day.values() if k == "transferBatch"]
    assert len(batches) >= 4
    assert sum(b["auditControlInfo"]["callEventDetailsCount"] for b in batches) == 900


def test_notification_for_the_partner_without_traffic(
    decoded_day: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    notifications = [(n, b) for n, (k, b) in decoded_day.items() if k == "notification"]
    assert [n[2:7] for n, _ in notifications] == ["SGPS9"]
    body = notifications[0][1]
    assert body["specificationVersionNumber"] == 3
    assert body["releaseVersionNumber"] == 12


def test_realistic_variety(decoded_day: dict[str, tuple[str, dict[str, Any]]]) -> None:
    batches = [b for k, b in decoded_day.values() if k == "transferBatch"]
    kinds = {kind for b in batches for kind, _ in b["callEventDetails"]}
    assert {
        "mobileOriginatedCall",
        "mobileTerminatedCall",
        "gprsCall",
        "supplServiceEvent",
        "messagingEvent",
        "mobileSession",
    } <= kinds
    currencies = {b["accountingInfo"]["localCurrency"] for b in batches}
    assert len(currencies) >= 4
    assert {b["accountingInfo"]["tapDecimalPlaces"] for b in batches} >= {3, 5, 6}
    assert any(len(b["accountingInfo"]["currencyConversionInfo"]) > 1 for b in batches)
    offsets = max(len(b["networkInfo"]["utcTimeOffsetInfo"]) for b in batches)
    assert offsets >= 3
    dicts = [d for b in batches for d in _iter_dicts(b["callEventDetails"])]
    assert any("camelInvocationFee" in d for d in dicts)
    assert any("discountInformation" in d for d in dicts)
    assert any(d.get("dataVolumeIncoming", 0) > 2**32 for d in dicts)
    assert any(d.get("chargeType") == b"03" for d in dicts)  # toll split on international calls
    rec_types = {r["recEntityType"] for b in batches for r in b["networkInfo"]["recEntityInfo"]}
    assert {1, 3, 4} <= rec_types
    apns = {d["accessPointNameNI"] for d in dicts if "accessPointNameNI" in d}
    assert len(apns) >= 3


def test_identities_and_numbers(decoded_day: dict[str, tuple[str, dict[str, Any]]]) -> None:
    rows = subscriber_rows()["sub_numbers"]
    locals_ = {str(r["msisdn"]) for r in rows if r["role"] == "local"}
    for kind, body in decoded_day.values():
        if kind != "transferBatch":
            continue
        for d in _iter_dicts(body["callEventDetails"]):
            if "imsi" in d:
                imsi = d["imsi"].hex().rstrip("f")
                assert imsi.startswith(HOME_MCC_MNC), imsi
                assert len(imsi) == 15, imsi
            if "msisdn" in d:
                # the card's primary number, or its local number in the partner's country
                number = d["msisdn"].hex().rstrip("f")
                assert number.startswith("852") or number in locals_, number
            for key in ("calledNumber", "callingNumber", "requestedNumber"):
                if key in d:
                    digits = d[key].hex().rstrip("f")
                    assert digits.isdigit(), digits
                    assert 8 <= len(digits) <= 15, digits


def test_money_and_tax(decoded_day: dict[str, tuple[str, dict[str, Any]]]) -> None:
    for kind, body in decoded_day.values():
        if kind != "transferBatch":
            continue
        rates = {
            t["taxCode"]: int(t["taxRate"]) for t in body["accountingInfo"].get("taxation", [])
        }
        for t in body["accountingInfo"].get("taxation", []):
            assert re.fullmatch(rb"\d{7}", t["taxRate"])
        codes = {c["exchangeRateCode"] for c in body["accountingInfo"]["currencyConversionInfo"]}
        for d in _iter_dicts(body["callEventDetails"]):
            for key in ("charge", "taxValue", "discount", "camelInvocationFee"):
                if key in d:
                    assert isinstance(d[key], int)
                    assert d[key] >= 0
            if "taxValue" in d:
                # taxValue = taxableAmount × rate, within half a unit (TD.57 tolerance: 0.02)
                exact2 = 2 * d["taxableAmount"] * rates[d["taxCode"]]
                assert abs(2 * d["taxValue"] * 10**7 - exact2) <= 10**7
            if "exchangeRateCode" in d:
                assert d["exchangeRateCode"] in codes


def test_encodings(day_files: list[Path]) -> None:
    def indefinite(data: bytes) -> int:
        return sum(1 for _, t in walk(data, element_at(data, 0)) if t.length is None)

    shapes = {p.name[2:7]: indefinite(p.read_bytes()) for p in day_files}
    usa = next(p for p in day_files if p.name[2:7] == "USAU9").read_bytes()
    assert usa[:2] == b"\x61\x80"  # outer indefinite, and some inner groups
    assert shapes["USAU9"] > 1
    assert shapes["JPNJ9"] > shapes["USAU9"]
    assert sum(1 for n in shapes.values() if n == 0) >= 4


# ---------------------------------------------------------------------------------------------
# determinism and parameters


def _bytes(out: Path, **kw: Any) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in generate_tap(out, **kw)}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = _bytes(tmp_path / "a", events=200, seed=42, day=DAY)
    b = _bytes(tmp_path / "b", events=200, seed=42, day=DAY)
    assert a == b


def test_other_seed_or_day_other_bytes(tmp_path: Path) -> None:
    a = _bytes(tmp_path / "a", events=200, seed=42, day=DAY)
    b = _bytes(tmp_path / "b", events=200, seed=43, day=DAY)
    assert a.keys() == b.keys()
    assert all(a[n] != b[n] for n in a if not n.startswith("CDSGPS9"))
    c = _bytes(tmp_path / "c", events=200, seed=42, day=DAY + timedelta(days=1))
    # the next day: every FSN one higher
    fsn_a = sorted((n[2:7], int(n[-5:])) for n in a)
    fsn_c = sorted((n[2:7], int(n[-5:])) for n in c)
    assert [(s, f + 1) for s, f in fsn_a] == fsn_c


def test_split_events() -> None:
    for n in (0, 1, 5, 6, 7, 999, 1500):
        split = split_events(n)
        assert sum(split.values()) == n
        assert "SGPS9" not in split
    assert split_events(6) == dict.fromkeys(split_events(6), 1)


def test_zero_events_gives_notifications_only(tmp_path: Path) -> None:
    for path in generate_tap(tmp_path, events=0, seed=1, day=DAY):
        assert asn1.decode(path.read_bytes()).info.kind == "notification"


def test_negative_events_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate_tap(tmp_path, events=-1, seed=1, day=DAY)


# dear examples (each generates, decodes and reconciles a TAP file): half the profile's number
@settings(
    parent=settings.default,
    max_examples=max(1, settings().max_examples // 2),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(min_value=0, max_value=2**64),
    events=st.integers(min_value=0, max_value=30),
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
)
def test_property_generated_batches_round_trip_and_reconcile(
    seed: int, events: int, day: date
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate_tap(Path(tmp), events=events, seed=seed, day=day)
        total = 0
        for path in paths:
            kind, body = check_file(path)
            if kind == "transferBatch":
                total += body["auditControlInfo"]["callEventDetailsCount"]
                stamps = [_start(k, b)["localTimeStamp"] for k, b in body["callEventDetails"]]
                assert stamps == sorted(stamps)
        assert total == events


# ---------------------------------------------------------------------------------------------
# file(1) and the committed data set


def test_file_command_recognises_generated_files(day_files: list[Path]) -> None:
    file_cmd = shutil.which("file")
    if file_cmd is None:
        pytest.fail(
            "file(1) is not installed: install it (apt-get install file); CI installs it in .ci/run"
        )
    for path in day_files:
        out = subprocess.run(
            [file_cmd, "-b", str(path)], check=True, capture_output=True, text=True
        ).stdout
        want = "TAP 3.12 Notification" if path.name.startswith("CDSGPS9") else "TAP 3.12 Batch"
        assert want in out, (path.name, out)


def test_committed_data_samples_match_the_generator(tmp_path: Path) -> None:
    committed = {p.name: p.read_bytes() for p in DATA_SAMPLES.iterdir()}
    fresh = _bytes(tmp_path, **COMMITTED)
    assert sorted(committed) == sorted(fresh), "data_samples/tap has other files than generated"
    drifted = [n for n in fresh if committed[n] != fresh[n]]
    assert not drifted, (
        f"data_samples/tap drifted from the generator: {drifted}; regenerate it as "
        "data_samples/README.md says"
    )
    for path in DATA_SAMPLES.iterdir():
        check_file(path)
