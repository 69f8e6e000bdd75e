"""Round trips of the full-fidelity codec: third-party samples and our generated TAP files.

``encode(decode(x)) == x`` for every definite-length file; an indefinite-length file
re-encodes to its definite form (``to_definite``) and decodes to the same value.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from clearing.codecs import asn1
from clearing.codecs.ber import element_at, read_header, walk
from clearing.codecs.indefinite import to_definite, to_indefinite
from clearing.errors import DecodeError
from clearing.samples.tap import generate_tap

CASES = Path(__file__).parent / "cases"

DEFINITE = [
    "Olernov-TAP3_TAP_out.asn1",
    "libxfsx_asn1c_sample-DataInterChange-1.ber",
    "libxfsx_nrt_2_1.ber",
    "libxfsx_rap_ack.ber",
    "libxfsx_tap_3_12_negative_volume.ber",
    "libxfsx_tap_3_12_negative_volume_fixed.ber",
    "libxfsx_tap_3_12_timestamps.ber",
    "libxfsx_tap_3_12_valid.ber",
    "libxfsx_tap_3_12_valid_add_osi.ber",
    "libxfsx_tap_3_12_valid_removed.ber",
    "libxfsx_tap_3_12_valid_replaced.ber",
    "libxfsx_tap_notification.ber",
    "py-asn1-tap-decoder_test_tap.ans",
    "tree-model_tap_3_12_larger_cdr.ber",
]
INDEFINITE = [
    "libxfsx_tap_3_12_valid_att.ber",
    "libxfsx_tap_3_12_valid_most_indef.ber",
    "libxfsx_tap_3_12_valid_some_cdr_indefinite.ber",
]


def _reencode(data: bytes) -> bytes:
    decoded = asn1.decode(data)
    return asn1.encode(decoded.info.kind, decoded.value, tap_release=decoded.info.tap_release)


def _indefinite_count(data: bytes) -> int:
    return sum(1 for _, tlv in walk(data, element_at(data, 0)) if tlv.length is None)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("tap")
    return generate_tap(out, events=400, seed=11, day=date(2026, 3, 29))


def test_cases_are_all_listed() -> None:
    binaries = {p.name for p in CASES.iterdir() if p.suffix not in (".xml", ".md")}
    known = {
        *DEFINITE,
        *INDEFINITE,
        "libxfsx_rap_mini.ber",
        "libxfsx_tap_3_12_trailing_eoc_invalid.ber",
    }
    assert binaries == known


@pytest.mark.parametrize("name", DEFINITE)
def test_definite_sample_round_trips_byte_for_byte(name: str) -> None:
    data = (CASES / name).read_bytes()
    assert _indefinite_count(data) == 0
    assert _reencode(data) == data


@pytest.mark.parametrize("name", INDEFINITE)
def test_indefinite_sample_reencodes_to_its_definite_form(name: str) -> None:
    data = (CASES / name).read_bytes()
    assert _indefinite_count(data) > 0
    definite = to_definite(data)
    assert _indefinite_count(definite) == 0
    assert _reencode(data) == definite
    assert asn1.decode(definite).value == asn1.decode(data).value


def test_libxfsx_indefinite_variants_are_the_valid_file() -> None:
    valid = asn1.decode((CASES / "libxfsx_tap_3_12_valid.ber").read_bytes()).value
    most = (CASES / "libxfsx_tap_3_12_valid_most_indef.ber").read_bytes()
    assert asn1.decode(most).value == valid
    assert to_definite(most) == (CASES / "libxfsx_tap_3_12_valid.ber").read_bytes()


@pytest.mark.parametrize(
    "name", ["libxfsx_rap_mini.ber", "libxfsx_tap_3_12_trailing_eoc_invalid.ber"]
)
def test_broken_samples_raise_decode_error(name: str) -> None:
    with pytest.raises(DecodeError):
        asn1.decode((CASES / name).read_bytes(), file=name)


@pytest.mark.parametrize("name", DEFINITE)
def test_to_indefinite_is_reversible(name: str) -> None:
    data = (CASES / name).read_bytes()
    constructed = sum(1 for _, tlv in walk(data, element_at(data, 0)) if tlv.constructed)
    every = to_indefinite(data)
    outer = to_indefinite(data, depth_limit=0)
    assert _indefinite_count(every) == constructed
    assert _indefinite_count(outer) == 1
    assert read_header(outer, 0)[3] is None
    assert outer.endswith(b"\x00\x00")
    assert to_definite(every) == data
    assert to_definite(outer) == data


# asn1tools 0.169 cannot find the end-of-contents of an indefinite-length SEQUENCE that has
# extension additions after `...` (NRT's Moc/Mtc/Gprs; eerimoq/asn1tools#183); `asn1.decode`
# falls back to the definite form, so the NRT case is covered here too.
@pytest.mark.parametrize("name", DEFINITE)
def test_to_indefinite_keeps_the_value(name: str) -> None:
    data = (CASES / name).read_bytes()
    value = asn1.decode(data).value
    assert asn1.decode(to_indefinite(data, depth_limit=0)).value == value
    assert asn1.decode(to_indefinite(data)).value == value


def test_to_indefinite_select_and_depth_limit_are_exclusive() -> None:
    data = (CASES / "tree-model_tap_3_12_larger_cdr.ber").read_bytes()
    with pytest.raises(ValueError, match="not both"):
        to_indefinite(data, depth_limit=1, select=lambda _d, _t: True)


def test_to_indefinite_select_by_depth() -> None:
    data = (CASES / "tree-model_tap_3_12_larger_cdr.ber").read_bytes()
    some = to_indefinite(data, select=lambda depth, _tlv: depth <= 2)
    nodes = walk(some, element_at(some, 0))
    assert all(tlv.length is None for depth, tlv in nodes if depth <= 2 and tlv.constructed)
    assert all(tlv.length is not None for depth, tlv in nodes if depth > 2)
    assert to_definite(some) == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x61\x05\x01\x02",  # content runs past the end
        b"\x61\x80\x04\x01\x00",  # indefinite without end-of-contents
        b"\x61\x03\x04\x01\x00\x00",  # trailing byte
    ],
)
def test_malformed_ber_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        to_indefinite(data)
    with pytest.raises(DecodeError):
        to_definite(data)


def test_generated_files_round_trip(generated: list[Path]) -> None:
    shapes = {"definite": 0, "indefinite": 0}
    for path in generated:
        data = path.read_bytes()
        if _indefinite_count(data):
            shapes["indefinite"] += 1
            definite = to_definite(data)
            assert _reencode(data) == definite, path.name
            assert asn1.decode(definite).value == asn1.decode(data).value, path.name
            assert to_indefinite(definite, select=lambda d, _t: True) == to_indefinite(data)
        else:
            shapes["definite"] += 1
            assert _reencode(data) == data, path.name
    assert shapes["definite"] >= 3
    assert shapes["indefinite"] >= 1
