"""Third-party samples decode as `cases/SOURCES.md` says; the negative ones fail or are flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing import inspect
from clearing.codecs import asn1, fast
from clearing.codecs.asn1 import FileInfo
from clearing.errors import DecodeError

CASES = Path(__file__).parent / "cases"


def read(name: str) -> bytes:
    return (CASES / name).read_bytes()


# (file, kind, version, sender, recipient, FSN, events) — from cases/SOURCES.md
EXPECTED = [
    ("Olernov-TAP3_TAP_out.asn1", "tap", "3.12", None, "EUR01", "00001", 109),
    ("libxfsx_asn1c_sample-DataInterChange-1.ber", "tap", "3.10", "WERFD", "XLKJE", "31707", 5),
    ("libxfsx_tap_3_12_valid.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 4),
    ("libxfsx_tap_3_12_valid_att.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 4),
    ("libxfsx_tap_3_12_valid_most_indef.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 4),
    ("libxfsx_tap_3_12_valid_some_cdr_indefinite.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 4),
    ("libxfsx_tap_3_12_valid_removed.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 3),
    ("libxfsx_tap_3_12_timestamps.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 5),
    ("libxfsx_tap_3_12_negative_volume_fixed.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 1),
    ("tree-model_tap_3_12_larger_cdr.ber", "tap", "3.12", "WERFD", "XLKJE", "31707", 5),
    ("libxfsx_tap_notification.ber", "notification", "3.9", "ABC08", "XYZ15", "23023", 0),
    ("py-asn1-tap-decoder_test_tap.ans", "notification", "3.11", "PEURA", "LAHTI", "05388", 0),
    ("libxfsx_nrt_2_1.ber", "nrt", "2.1", "FOO01", "BAR02", None, None),
    ("libxfsx_rap_ack.ber", "ack", None, "DGS01", "XYZ02", None, 0),
]


@pytest.mark.parametrize(
    ("name", "kind", "version", "sender", "recipient", "fsn", "events"), EXPECTED
)
def test_sample_summary(
    name: str,
    kind: str,
    version: str | None,
    sender: str | None,
    recipient: str,
    fsn: str | None,
    events: int | None,
) -> None:
    s = inspect.summarize(read(name), file=name)
    assert (s["kind"], s["version"], s["sender"], s["recipient"]) == (
        kind,
        version,
        sender,
        recipient,
    )
    if fsn is not None:
        assert s["file_sequence_number"] == fsn
    if events is not None:
        assert s["event_count"] == events
        assert sum(s["event_count_by_type"].values()) == events


def test_tap_out_has_all_nine_kinds_and_reconciles_refunds_and_tax() -> None:
    s = inspect.summarize(read("Olernov-TAP3_TAP_out.asn1"))
    assert set(s["event_count_by_type"]) == {
        "mobileOriginatedCall",
        "mobileTerminatedCall",
        "supplServiceEvent",
        "serviceCentreUsage",
        "gprsCall",
        "contentTransaction",
        "locationService",
        "messagingEvent",
        "mobileSession",
    }
    assert s["test_data"] is True
    # SOURCES.md: refunds (795), tax (1 814 282) and tax refunds (80) reconcile
    assert s["audit"]["total_charge_refund"] == s["recomputed"]["total_charge_refund"] == 795
    assert s["audit"]["total_tax_value"] == s["recomputed"]["total_tax_value"] == 1814282
    assert s["audit"]["total_tax_refund"] == s["recomputed"]["total_tax_refund"] == 80
    # Sender missing: fatal 30 (flagged, the file still decodes)
    assert any("sender missing" in p and "30" in p for p in s["header_problems"])


def test_valid_sample_total_charge_mismatch_is_flagged() -> None:
    s = inspect.summarize(read("libxfsx_tap_3_12_valid.ber"))
    # SOURCES.md: totalCharge 2300 does not match the sum of its charges (71200)
    assert s["audit"]["total_charge"] == 2300
    assert s["recomputed"]["total_charge"] == 71200
    assert "total_charge" in s["audit_mismatches"]


def test_removed_sample_count_mismatch_is_flagged() -> None:
    s = inspect.summarize(read("libxfsx_tap_3_12_valid_removed.ber"))
    assert s["audit"]["call_event_details_count"] == 4
    assert s["recomputed"]["call_event_details_count"] == 3
    assert "call_event_details_count" in s["audit_mismatches"]


def test_tree_model_sample_reconciles() -> None:
    s = inspect.summarize(read("tree-model_tap_3_12_larger_cdr.ber"))
    assert s["audit_mismatches"] == []


def test_nrt_count_from_header() -> None:
    s = inspect.summarize(read("libxfsx_nrt_2_1.ber"))
    assert s["audit"]["call_events_count"] == 10
    assert s["file_sequence_number"] is not None


def test_ack_sequence_number() -> None:
    s = inspect.summarize(read("libxfsx_rap_ack.ber"))
    assert s["file_sequence_number"] is not None
    assert s["file_sequence_number"].lstrip("0") == "123"


def test_trailing_bytes_are_reported() -> None:
    data = read("libxfsx_tap_3_12_trailing_eoc_invalid.ber")
    for decode in (asn1.decode, fast.decode_tap):
        with pytest.raises(DecodeError) as err:
            decode(data, file="x.ber")
        assert err.value.offset == 819
        assert "2 trailing byte(s)" in str(err.value)
        assert "x.ber" in str(err.value)


def test_schema_invalid_rap_header_only_fails() -> None:
    with pytest.raises(DecodeError) as err:
        asn1.decode(read("libxfsx_rap_mini.ber"))
    assert "returnDetails" in str(err.value)
    assert asn1.sniff(read("libxfsx_rap_mini.ber")).kind == "rap"


def test_negative_volume_is_flagged_and_big_volume_kept() -> None:
    bad = fast.decode_tap(read("libxfsx_tap_3_12_negative_volume.ber"))
    assert any(
        "data_volume_incoming" in p.message and "negative" in p.message for p in bad.problems
    )
    with pytest.raises(DecodeError, match="out of range"):
        inspect.summarize(read("libxfsx_tap_3_12_negative_volume.ber"))
    good = fast.decode_tap(read("libxfsx_tap_3_12_negative_volume_fixed.ber"))
    assert good.problems == []
    # needs more than 32 bits (SOURCES.md)
    assert good.events.column("data_volume_outgoing").to_pylist() == [2_200_000_000]


def test_nrt_is_not_decoded_as_tap() -> None:
    data = read("libxfsx_nrt_2_1.ber")
    assert data[0] == 0x61  # same first byte as a TransferBatch
    assert asn1.sniff(data).kind == "nrt"
    with pytest.raises(DecodeError, match="expected a TAP TransferBatch, found nrt"):
        fast.decode_tap(data)
    # forcing the TAP grammar onto it fails loudly instead of giving an empty batch
    with pytest.raises(DecodeError, match="unknown tag"):
        asn1.check_tags(data, FileInfo("tap", "3.12", 12, len(data)))


def test_wrong_release_never_succeeds_silently() -> None:
    data = read("libxfsx_tap_3_12_valid_most_indef.ber")
    with pytest.raises(DecodeError, match="unknown tag"):
        asn1.check_tags(data, FileInfo("tap", "3.10", 10, len(data)))
    with pytest.raises(DecodeError, match="unknown tag"):
        asn1.check_tags(data, FileInfo("tap", "3.9", 9, len(data)))


def test_unsupported_release_is_refused() -> None:
    data = bytearray(read("libxfsx_tap_3_12_valid.ber"))
    i = data.index(bytes([0x5F, 0x81, 0x3D, 0x01, 12]))  # releaseVersionNumber = 12
    data[i + 4] = 7
    with pytest.raises(DecodeError, match=r"unsupported TAP release 3\.7"):
        asn1.sniff(bytes(data))


def test_unknown_event_tag_is_reported_with_offset() -> None:
    # turn the first event's tag into an APPLICATION tag the 3.12 grammar does not know (453)
    data = bytearray(read("tree-model_tap_3_12_larger_cdr.ber"))
    batch = fast.decode_tap(bytes(data))
    first = batch.events.column("byte_offset")[0].as_py()
    assert data[first] in (0x69, 0x6A, 0x6B, 0x6C, 0x6E)  # a one-byte event tag
    patched = data[:first] + bytes([0x7F, 0x83, 0x45]) + data[first + 1 :]
    # fix the lengths of the two enclosing definite-length containers (+2 bytes)
    out = fast.decode_tap(_grow_containers(bytes(patched), first, 2))
    unknown = [p for p in out.problems if "unknown tag [APPLICATION 453]" in p.message]
    assert unknown
    assert unknown[0].offset == first
    assert unknown[0].event_index == 0
    with pytest.raises(DecodeError, match="APPLICATION 453"):
        asn1.decode(_grow_containers(bytes(patched), first, 2))


def _grow_containers(data: bytes, at: int, extra: int) -> bytes:
    """Bump the definite lengths of every container enclosing offset ``at`` by ``extra``."""
    return _fix_lengths(data[:at], data[at:], extra)


def _fix_lengths(head: bytes, tail: bytes, extra: int) -> bytes:
    """Bump the definite lengths of the containers open at the end of ``head``."""
    from clearing.codecs.ber import encode_header, read_header

    out = bytearray(head + tail)
    opened: list[tuple[int, int, int, int]] = []  # (header offset, key, content start, length)
    pos = 0
    stop = len(head)
    while pos < stop:
        key, cons, cstart, length = read_header(bytes(out), pos)
        assert length is not None
        if cons and cstart + length > stop:
            opened.append((pos, key, cstart, length))
            pos = cstart
        else:
            pos = cstart + length
    shift = 0
    for hdr, key, cstart, length in reversed(opened):
        new = encode_header(key, True, length + extra + shift)
        old_len = cstart - hdr
        out[hdr : hdr + old_len] = new
        shift += len(new) - old_len
    return bytes(out)
