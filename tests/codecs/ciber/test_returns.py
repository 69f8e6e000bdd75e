"""Record returns and batch rejects (ciber.md §7): written, then read back."""

from __future__ import annotations

import datetime as dt

import pytest

from clearing.codecs import ciber
from clearing.errors import EncodeError

DAY = dt.date(2026, 11, 22)


def incoming() -> bytes:
    def d(total: int, mdn: str) -> tuple[str, dict[str, object]]:
        return ("22", {"home_sid_bid": "85493", "msid": mdn, "mdn": mdn,
                       "serving_sid_bid": "06538", "total_charges_and_taxes": total,
                       "call_date": dt.date(2026, 11, 20), "call_direction": 1,
                       "currency_type": 1, "air_charge": total})  # fmt: skip

    return ciber.encode_batch(
        [d(100, "2055550001"), d(200, "2055550002"), d(300, "2055550003")],
        creation_date=dt.date(2026, 11, 21),
        batch_sequence_number=41,
        sending_sid_bid="06538",
        receiving_sid_bid="85493",
        clearinghouse_id=2,
        settlement_period=dt.date(2026, 12, 15),
    )


def test_record_returns_round_trip() -> None:
    data = incoming()
    sequences = {("85493", "06538"): 999}
    out = ciber.record_returns(
        data,
        [ciber.RecordReturn(4, 4, 7, 26), ciber.RecordReturn(2, 4, 11, 42)],
        creation_date=DAY,
        sequences=sequences,
    )
    lines = out.split(b"\r\n")[:-1]
    assert len(lines) == 4
    header, r1, r2, trailer = (line.decode() for line in lines)
    # header positions (ciber.md §4.1): 3-8 date, 9-11 seq, 12-16 sending, 17-21 receiving,
    # 24 original/return indicator, 27-32 settlement period, 33 clearinghouse
    assert header[2:8] == "261122"
    assert header[8:11] == "001"  # 999 wraps to 001
    assert header[11:16] == "85493"
    assert header[16:21] == "06538"
    assert header[23] == "2"
    assert header[26:32] == "000000"
    assert header[32] == "0"
    # returned records: the original lines with positions 3-8 replaced
    original = data.split(b"\r\n")
    assert r1[2:8] == "411042"
    assert r1[8:] == original[1].decode()[8:]
    assert r2[2:8] == "407026"
    assert r2[8:] == original[3].decode()[8:]
    # trailer: 22-25 count, 26-37 total, 50-53 original count, 54-65 original total
    assert trailer[21:25] == "0002"
    assert trailer[25:37] == "000000000400"
    assert trailer[49:53] == "0003"
    assert trailer[53:65] == "000000000600"
    assert sequences[("85493", "06538")] == 1
    # and read back
    decoded = ciber.decode(out)
    assert decoded.findings.num_rows == 0
    table = ciber.returns_table(decoded).to_pylist()
    assert [(r["line"], r["return_code"], r["return_reason_code"], r["invalid_field_identifier"],
             r["field"], r["reason"]) for r in table] == [
        (2, 4, 11, 42, None, "duplicate record"),
        (3, 4, 7, 26, "air_charge", "invalid format or value"),
    ]  # fmt: skip
    summary = ciber.inspect_summary(out)
    assert summary["returned_records"] == 2
    assert summary["batches"][0]["original_return_indicator"] == "2"


def test_batch_reject_round_trip() -> None:
    data = incoming()
    out = ciber.batch_reject(data, 0, 26)
    header = out.split(b"\r\n")[0].decode()
    assert header[23] == "3"
    assert header[33:35] == "26"
    assert out.split(b"\r\n")[1:] == data.split(b"\r\n")[1:]
    (batch,) = ciber.inspect_summary(out)["batches"]
    assert batch["original_return_indicator"] == "3"
    assert batch["batch_reject_reason_code"] == 26
    assert batch["batch_reject_reason"].startswith("trailer batch total")
    assert ciber.inspect_summary(out)["rejected_batches"] == 1


def test_return_codes_must_match_the_batch_indicator() -> None:
    lines = incoming().split(b"\r\n")
    lines[1] = lines[1][:2] + b"407026" + lines[1][8:]  # non-zero return code, initial batch
    rows = ciber.decode(b"\r\n".join(lines)).findings.to_pylist()
    assert [(r["line"], r["field_id"], r["return_reason_code"]) for r in rows] == [(2, 46, 18)]


def test_refuses_to_return_a_header() -> None:
    with pytest.raises(EncodeError, match="line 1 is not a detail record"):
        ciber.record_returns(incoming(), [ciber.RecordReturn(1, 4, 7, 1)], creation_date=DAY)
