"""RAP Acknowledgements: written, read back, checked with an independently compiled RAP-0105."""

from __future__ import annotations

import pytest

from clearing.codecs.rap import (
    Ack,
    ack_file_name,
    ack_for,
    read_ack,
    read_rap,
    write_ack,
    write_rap,
)
from clearing.errors import DecodeError, EncodeError


def test_write_ack_decodes_with_the_published_module(rap_spec):
    data = write_ack("USAU9", "HKGCL", 7, False, "20261124010000", "-0500")
    value, length = rap_spec.decode_with_length("RapDataInterChange", data)
    assert length == len(data)
    stamp = {"localTimeStamp": b"20261124010000", "utcTimeOffset": b"-0500"}
    assert value == (
        "acknowledgement",
        {
            "sender": b"USAU9",
            "recipient": b"HKGCL",
            "rapFileSequenceNumber": b"00007",
            "ackFileCreationTimeStamp": stamp,
            "ackFileAvailableTimeStamp": stamp,
        },
    )
    test = rap_spec.decode(
        "RapDataInterChange", write_ack("USAU9", "HKGCL", 7, True, *stamp_args())
    )
    assert test[1]["fileTypeIndicator"] == b"T"


def stamp_args() -> tuple[str, str]:
    return ("20261124010000", "-0500")


def test_ack_for_swaps_parties(h, rap_spec):
    tap = h.load_tap(h.INDEFINITE_TAP)
    header = h.rap_header(tap, test=True, rap_fsn=42)
    rap = read_rap(write_rap(header, h.rap_items(tap)))
    data = ack_for(rap, created_local="20261124010000", utc_offset="-0500")
    _, value = rap_spec.decode("RapDataInterChange", data)
    # the RAP went HKGCL → USAU9; USAU9 acknowledges it
    assert (value["sender"], value["recipient"]) == (b"USAU9", b"HKGCL")
    assert value["rapFileSequenceNumber"] == b"00042"
    assert value["fileTypeIndicator"] == b"T"
    assert read_ack(data) == Ack("USAU9", "HKGCL", 42, True, "20261124010000", "-0500")


def test_read_ack_round_trip_and_determinism():
    data = write_ack("DEU01", "FRAF9", 99999, False, "20260101000000", "+0100")
    assert data == write_ack("DEU01", "FRAF9", 99999, False, "20260101000000", "+0100")
    assert read_ack(data) == Ack("DEU01", "FRAF9", 99999, False, "20260101000000", "+0100")


def test_third_party_ack_sample(h, tmp_path):
    path = h.CASES / "libxfsx_rap_ack.ber"
    ack = read_ack(path.read_bytes())
    # its rapFileSequenceNumber is "123": 3 digits, not the 5 of TD.32
    assert ack == Ack("DGS01", "XYZ02", 123, False, "20160501222324", "+0002")
    ours = tmp_path / ack_file_name("DGS01", "XYZ02", 123, False)
    ours.write_bytes(write_ack("DGS01", "XYZ02", 123, False, "20160501222324", "+0002"))
    assert (
        h.file_says(path)
        == h.file_says(ours)
        == ("RAP Acknowledgement (TD.32, Returned Account Procedure)")
    )


def test_ack_file_names():
    assert ack_file_name("USAU9", "HKGCL", 7, False) == "ACUSAU9HKGCL00007"
    assert ack_file_name("USAU9", "HKGCL", 7, True) == "ATUSAU9HKGCL00007"


def test_read_ack_refuses_other_bytes(h):
    tap = h.load_tap(h.DEFINITE_TAP)
    rap = write_rap(h.rap_header(tap), h.rap_items(tap))
    with pytest.raises(DecodeError, match="not an Acknowledgement"):
        read_ack(rap, file="RC")
    ack = write_ack("USAU9", "HKGCL", 7, False, "20261124010000", "-0500")
    for cut in range(len(ack)):
        with pytest.raises(DecodeError) as err:
            read_ack(ack[:cut], file="AC")
        assert err.value.file == "AC"
    with pytest.raises(DecodeError):
        read_ack(b"\x00" * 20)


@pytest.mark.parametrize(
    "args",
    [
        ("USAU", "HKGCL", 7, False, "20261124010000", "-0500"),
        ("USAU9", "HKGCL", 0, False, "20261124010000", "-0500"),
        ("USAU9", "HKGCL", 7, False, "2026112401000", "-0500"),
        ("USAU9", "HKGCL", 7, False, "20261124010000", "0500"),
    ],
)
def test_bad_ack_fields(args):
    with pytest.raises(EncodeError):
        write_ack(*args)
