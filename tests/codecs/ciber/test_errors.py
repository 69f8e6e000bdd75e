"""Bad input: the package's own errors, naming line and field, or findings rows."""

from __future__ import annotations

import datetime as dt

import pytest

from clearing.codecs import ciber
from clearing.codecs.ciber import CiberDecodeError, CiberStructureError, UnsupportedRecordTypeError
from clearing.errors import DecodeError

DAY = dt.date(2026, 11, 22)


def detail(total: int = 250, **extra: object) -> tuple[str, dict[str, object]]:
    values: dict[str, object] = {
        "home_sid_bid": "85493",
        "msid_indicator": 2,
        "msid": "2055550123",
        "mdn": "2055550123",
        "serving_sid_bid": "06538",
        "total_charges_and_taxes": total,
        "call_date": dt.date(2026, 11, 21),
        "call_direction": 1,
        "currency_type": 1,
        "air_connect_time": dt.time(10, 0, 0),
        "air_chargeable_time": 60,
        "air_charge": total,
    }
    values.update(extra)
    return ("22", values)


def batch(n: int = 2, seq: int = 7, eol: bytes = b"\r\n", **kw: object) -> bytes:
    return ciber.encode_batch(
        [detail() for _ in range(n)],
        creation_date=DAY,
        batch_sequence_number=seq,
        sending_sid_bid="06538",
        receiving_sid_bid="85493",
        line_ending=eol,
        **kw,  # type: ignore[arg-type]
    )


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines) + b"\r\n"


def test_lf_and_crlf_read_alike() -> None:
    a = ciber.read(batch(eol=b"\r\n"))
    b = ciber.read(batch(eol=b"\n"))
    assert a.drop_columns(["byte_offset"]).equals(b.drop_columns(["byte_offset"]))
    assert a.column("byte_length").to_pylist() == [547, 547]


def test_many_batches_and_a_missing_final_newline() -> None:
    data = batch(seq=1) + batch(n=3, seq=2) + batch(n=1, seq=3)
    decoded = ciber.decode(data[:-2])
    assert decoded.batches.column("detail_count").to_pylist() == [2, 3, 1]
    assert decoded.events.column("file_sequence_number").to_pylist() == ["001"] * 2 + [
        "002"
    ] * 3 + ["003"]
    assert decoded.events.column("event_index").to_pylist() == list(range(6))


def test_truncated_blank_tails_are_tolerated() -> None:
    lines = lines_of(batch())
    lines[0] = lines[0][:56]  # header cut after its local-carrier-reserved area (S2 example)
    lines[1] = lines[1][:397]  # detail cut after the toll network carrier ID
    lines[3] = lines[3][:75]  # trailer cut after the currency
    decoded = ciber.decode(join(lines))
    assert decoded.findings.num_rows == 0
    assert decoded.events.column("byte_length").to_pylist() == [397, 547]
    assert decoded.records["22"].column("local_carrier_reserved").to_pylist() == ["", ""]


def test_a_line_cut_inside_its_fixed_part_is_an_error() -> None:
    lines = lines_of(batch())
    lines[2] = lines[2][:300]
    with pytest.raises(CiberStructureError, match="shorter than the 397") as exc:
        ciber.decode(join(lines), file="cut.cbr")
    assert exc.value.path == "line 3"
    assert exc.value.file == "cut.cbr"
    assert exc.value.offset == 202 + 549


@pytest.mark.parametrize("record_type", ["10", "11", "20", "30", "50", "70"])
def test_ciber_20_and_type_70_are_named(record_type: str) -> None:
    lines = lines_of(batch())
    lines[2] = record_type.encode() + lines[2][2:]
    with pytest.raises(UnsupportedRecordTypeError, match=f"record type `{record_type}`") as exc:
        ciber.decode(join(lines), file="old.cbr")
    assert exc.value.path == "line 3"
    assert isinstance(exc.value, DecodeError)
    assert "not supported" in str(exc.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ls: ls[:-1], "batch has no trailer"),
        (lambda ls: ls[1:], "batch trailer without a header"),
        (lambda ls: [ls[0], *ls], "batch header before the trailer"),
        (lambda ls: [*ls, ls[-1]], "batch trailer without a header"),
        (lambda ls: [*ls, ls[1]], "detail record outside a batch"),
        (lambda ls: [b"ZZ" + ls[1][2:], *ls[1:]], "unknown record type `ZZ`"),
        (lambda ls: [ls[0], b"2", *ls[1:]], "too short to hold a record type"),
        (lambda ls: [ls[0], ls[1][:40] + b"\x00" + ls[1][41:], *ls[2:]], "byte 0x00"),
        (lambda ls: [ls[0], ls[1][:40] + b"\xe9" + ls[1][41:], *ls[2:]], "byte 0xe9"),
        (lambda ls: [ls[0], ls[1][:40] + b"\r" + ls[1][41:], *ls[2:]], "byte 0x0d"),
        (lambda ls: [b"02" + ls[0][2:], *ls[1:]], "type-02 header closed by a type-98"),
    ],
)
def test_structure_errors(mutate, message: str) -> None:
    with pytest.raises(CiberDecodeError, match=message):
        ciber.decode(join(mutate(lines_of(batch()))))


def test_empty_input() -> None:
    with pytest.raises(CiberStructureError, match="empty file"):
        ciber.decode(b"")
    with pytest.raises(CiberStructureError, match="no records"):
        ciber.decode(b"\r\n\n")


def test_bad_trailer_total_and_count_are_batch_findings() -> None:
    lines = lines_of(batch())
    # trailer positions 22-25 record count, 26-37 batch total (ciber.md §4.3)
    lines[3] = lines[3][:21] + b"0003" + b"000000000999" + lines[3][37:]
    decoded = ciber.decode(join(lines))
    rows = decoded.findings.to_pylist()
    assert [(r["severity"], r["batch_reject_reason_code"], r["field"]) for r in rows] == [
        ("batch", 25, "total_number_of_records"),
        ("batch", 26, "batch_total_charges_and_taxes"),
    ]
    assert all(r["line"] == 4 for r in rows)
    assert decoded.events.num_rows == 2  # the records are still read


def test_header_trailer_disagreement() -> None:
    lines = lines_of(batch())
    lines[3] = lines[3][:8] + b"008" + lines[3][11:]  # trailer batch sequence number
    (row,) = ciber.decode(join(lines)).findings.to_pylist()
    assert row["batch_reject_reason_code"] == 29
    assert "`batch_sequence_number` 8 differs from the header's 7" in row["message"]


def test_bad_field_values_are_record_findings_with_field_ids() -> None:
    lines = lines_of(batch())
    lines[1] = lines[1][:233] + b"00000001X4" + lines[1][243:]  # air charge, pos 234-243
    lines[2] = lines[2][:104] + b"251340" + lines[2][110:]  # call date 25-13-40
    decoded = ciber.decode(join(lines), file="bad.cbr")
    rows = decoded.findings.to_pylist()
    assert [(r["line"], r["field"], r["field_id"], r["return_code"], r["return_reason_code"])
            for r in rows] == [(2, "air_charge", 26, 4, 7), (3, "call_date", 7, 4, 7)]  # fmt: skip
    assert decoded.records["22"].column("air_charge").to_pylist() == [None, 250]
    assert decoded.events.column("local_start").to_pylist()[1] is None
    with pytest.raises(CiberDecodeError, match="`air_charge` is not 10 digits") as exc:
        ciber.read(join(lines), file="bad.cbr", strict=True)
    assert exc.value.path == "line 2 field air_charge"
    assert exc.value.offset == 202


def test_number_length_longer_than_the_field() -> None:
    lines = lines_of(batch())
    lines[1] = lines[1][:29] + b"16" + lines[1][31:]  # MDN length 16 > 15
    decoded = ciber.decode(join(lines))
    (row,) = decoded.findings.to_pylist()
    assert (row["field"], row["field_id"]) == ("mdn_length", 102)
    assert decoded.events.column("msisdn").to_pylist() == [None, "2055550123"]


def test_year_pivot() -> None:
    lines = lines_of(batch())
    lines[1] = lines[1][:104] + b"791231" + lines[1][110:]
    lines[2] = lines[2][:104] + b"800101" + lines[2][110:]
    dates = ciber.decode(join(lines)).records["22"].column("call_date").to_pylist()
    assert dates == [dt.date(2079, 12, 31), dt.date(1980, 1, 1)]
    assert ciber.YEAR_PIVOT == 80


def test_looks_like_ciber() -> None:
    assert ciber.looks_like_ciber(batch())
    assert ciber.looks_like_ciber(b"20000000" + b"0" * 300)  # CIBER 2.0: read gives the error
    assert not ciber.looks_like_ciber(b"\x61\x82\x01\x00")  # TAP BER
    assert not ciber.looks_like_ciber(b"01")
