"""RAP 1.5 writer and reader on real TAP files, checked with an independently compiled RAP-0105."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from clearing.codecs.ber import element_at, encode_header, iter_children, tag_key
from clearing.codecs.rap import (
    ErrorDetail,
    FatalItem,
    MissingItem,
    PathItem,
    RapFile,
    ReturnedEvent,
    SevereItem,
    StopItem,
    rap_file_name,
    read_rap,
    write_rap,
)
from clearing.errors import DecodeError, EncodeError

T_RETURN_DETAILS = tag_key(1, 536)
T_SEVERE = tag_key(1, 540)
T_FATAL = tag_key(1, 539)


def _severe_events_in(rap: bytes) -> list[bytes]:
    """The CallEventDetail TLVs of the SevereReturns, found by walking the RAP's BER."""
    top = element_at(rap, 0)
    (details,) = [c for c in iter_children(rap, top) if c.key == T_RETURN_DETAILS]
    out = []
    for ret in iter_children(rap, details):
        if ret.key == T_SEVERE:
            _fsn, event, *_rest = iter_children(rap, ret)
            out.append(rap[event.offset : event.end])
    return out


def _context(path: tuple[PathItem, ...]) -> list[dict[str, int]]:
    return [
        {"pathItemId": p.item_id, "itemOccurrence": p.occurrence, "itemLevel": p.level}
        for p in path
    ]


def test_rap_decodes_with_the_published_module(tap, h, rap_spec):
    header = h.rap_header(tap)
    items = h.rap_items(tap)
    rap = write_rap(header, items)

    value, length = rap_spec.decode_with_length("RapDataInterChange", rap)
    assert length == len(rap)
    kind, batch = value
    assert kind == "returnBatch"

    bci = batch["rapBatchControlInfoRap"]
    # the HPMN (recipient of the TAP file) returns it to the VPMN (its sender)
    assert bci["sender"] == tap.recipient.encode() == b"HKGCL"
    assert bci["recipient"] == tap.sender.encode()
    assert bci["rapFileSequenceNumber"] == b"00007"
    assert bci["rapFileCreationTimeStamp"] == {
        "localTimeStamp": b"20261123020000",
        "utcTimeOffset": b"+0800",
    }
    assert (bci["specificationVersionNumber"], bci["releaseVersionNumber"]) == (3, 12)
    assert (bci["rapSpecificationVersionNumber"], bci["rapReleaseVersionNumber"]) == (1, 5)
    assert bci["tapDecimalPlaces"] == tap.scale
    assert "fileTypeIndicator" not in bci

    details = batch["returnDetails"]
    assert [name for name, _ in details] == [
        "severeReturn",
        "severeReturn",
        "fatalReturn",
        "missingReturn",
        "stopReturn",
    ]
    for (_, severe), i in zip(details[:2], h.SEVERE_EVENTS, strict=True):
        assert severe["fileSequenceNumber"] == tap.fsn.encode()
        # the echoed event has the value of the event in the TAP file
        assert severe["callEventDetail"] == rap_spec.decode("CallEventDetail", tap.event_bytes(i))
        kind_tag = element_at(tap.event_bytes(i), 0).key & 0xFFFFFF
        assert severe["errorDetail"] == [
            {
                "errorContext": _context(h.event_path(i, kind_tag)),
                "itemOffset": 3,
                "errorCode": h.EVENT_ERROR,
            }
        ]

    _, fatal = details[2]
    assert fatal["fileSequenceNumber"] == tap.fsn.encode()
    assert set(fatal) == {"fileSequenceNumber", "auditControlInfoError"}
    aci_error = fatal["auditControlInfoError"]
    assert aci_error["auditControlInfo"] == rap_spec.decode("AuditControlInfo", tap.group_bytes(15))
    assert aci_error["errorDetail"] == [
        {
            "errorContext": [
                {"pathItemId": 1, "itemOccurrence": 1, "itemLevel": 1},
                {"pathItemId": 15, "itemOccurrence": 1, "itemLevel": 2},
            ],
            "errorCode": 100,
        }
    ]
    assert details[3] == (
        "missingReturn",
        {"startMissingSeqNumber": b"00003", "endMissingSeqNumber": b"00005"},
    )
    assert details[4] == ("stopReturn", {"lastSeqNumber": tap.fsn.encode()})

    # totals computed here from the fast decoder's columns (charge + camel_fee, tax)
    audit = batch["rapAuditControlInfo"]
    assert audit == {
        "totalSevereReturnValue": sum(tap.charge(i) for i in h.SEVERE_EVENTS),
        "returnDetailsCount": 5,
        "totalSevereReturnTax": sum(tap.tax(i) for i in h.SEVERE_EVENTS),
    }
    assert audit["totalSevereReturnValue"] > 0


def test_returned_bytes_are_the_received_bytes(tap, h):
    rap = write_rap(h.rap_header(tap), h.rap_items(tap))
    sent = [tap.event_bytes(i) for i in h.SEVERE_EVENTS]
    assert _severe_events_in(rap) == sent
    for raw in sent:
        assert rap.find(raw) > 0
    assert rap.find(tap.group_bytes(15)) > 0
    if tap.name == h.INDEFINITE_TAP:
        # the sample really exercises indefinite lengths: the event and the ACI group
        assert all(raw[1] == 0x80 and raw.endswith(b"\x00\x00") for raw in sent)
        assert tap.group_bytes(15)[1] == 0x80


def test_file_magic_says_rap(tap, h, tmp_path):
    header = h.rap_header(tap)
    path = tmp_path / rap_file_name(header)
    path.write_bytes(write_rap(header, h.rap_items(tap)))
    says = h.file_says(path)
    assert says.startswith("RAP 1.5 Batch"), says
    assert "TAP 3.12" in says
    # the third-party sample is what the installed magic recognises the same way
    assert h.file_says(h.CASES / "libxfsx_rap_mini.ber").startswith("RAP 1.5 Batch")


def test_file_magic_on_a_large_rap(h, tmp_path):
    """Many returns: the ReturnBatch length takes 3 bytes; file(1) still recognises it."""
    tap = h.load_tap(h.DEFINITE_TAP)
    items = [
        SevereItem(tap.fsn, tap.event_bytes(i), [ErrorDetail(20, ())], tap.charge(i), tap.tax(i))
        for i in range(len(tap.rows))
    ]
    rap = write_rap(h.rap_header(tap), items)
    assert len(rap) > 65535
    path = tmp_path / "big"
    path.write_bytes(rap)
    assert h.file_says(path).startswith("RAP 1.5 Batch")
    back = read_rap(rap)
    assert back.mismatches == []
    assert back.total_severe_return_value == sum(tap.charge(i) for i in range(len(tap.rows)))
    assert back.total_severe_return_tax == sum(tap.tax(i) for i in range(len(tap.rows)))


def test_same_inputs_same_bytes(tap, h):
    first = write_rap(h.rap_header(tap), h.rap_items(tap))
    second = write_rap(h.rap_header(tap), h.rap_items(tap))
    assert first == second


def test_file_names(h):
    tap = h.load_tap(h.INDEFINITE_TAP)
    assert rap_file_name(h.rap_header(tap)) == "RCHKGCLUSAU900007"
    assert rap_file_name(h.rap_header(tap, test=True, rap_fsn=123)) == "RTHKGCLUSAU900123"


def test_test_flag_is_written(tap, h, rap_spec):
    rap = write_rap(h.rap_header(tap, test=True), h.rap_items(tap))
    _, batch = rap_spec.decode("RapDataInterChange", rap)
    assert batch["rapBatchControlInfoRap"]["fileTypeIndicator"] == b"T"
    assert read_rap(rap).header.test is True


def test_read_rap_round_trip(tap, h):
    header = h.rap_header(tap)
    items = h.rap_items(tap)
    rap = read_rap(write_rap(header, items), file="RCHKGCL")

    assert isinstance(rap, RapFile)
    assert rap.header == header
    assert (rap.available_local, rap.available_utc_offset) == ("20261123020000", "+0800")
    assert rap.mismatches == []
    assert rap.return_details_count == 5
    assert rap.total_severe_return_value == sum(tap.charge(i) for i in h.SEVERE_EVENTS)
    assert rap.total_severe_return_tax == sum(tap.tax(i) for i in h.SEVERE_EVENTS)
    assert len(rap.items) == 5
    for got, sent in zip(rap.severe, items[:2], strict=True):
        assert isinstance(got, ReturnedEvent)
        assert (got.fsn, got.event_bytes, got.errors) == (sent.fsn, sent.event_bytes, sent.errors)
        assert (got.charge, got.tax) == (sent.charge, sent.tax)
        assert got.problem is None
        assert got.value is not None
        assert got.kind == got.value[0]
    assert [r.kind for r in rap.severe] == [tap.rows[i]["event_kind"] for i in h.SEVERE_EVENTS]
    assert rap.fatal == [items[2]]
    assert rap.missing == [MissingItem(3, 5)]
    assert rap.stop == [StopItem(int(tap.fsn))]


def test_fatal_items_of_one_file_share_one_fatal_return(h, rap_spec):
    tap = h.load_tap(h.DEFINITE_TAP)
    bci_error = FatalItem(
        tap.fsn,
        "batchControlInfo",
        tap.group_bytes(4),
        [ErrorDetail(100, (PathItem(1, 1, 1), PathItem(4, 1, 2), PathItem(109, 1, 3)))],
    )
    tb_error = FatalItem(tap.fsn, "transferBatch", b"", [ErrorDetail(35, (PathItem(1, 1, 1),))])
    aci = h.rap_items(tap)[2]
    rap = write_rap(h.rap_header(tap), [aci, bci_error, tb_error, MissingItem(9)])
    _, batch = rap_spec.decode("RapDataInterChange", rap)
    details = batch["returnDetails"]
    assert [n for n, _ in details] == ["fatalReturn", "missingReturn"]
    assert list(details[0][1]) == [  # RAP-0105 member order
        "fileSequenceNumber",
        "transferBatchError",
        "batchControlError",
        "auditControlInfoError",
    ]
    assert details[0][1]["transferBatchError"] == {
        "errorDetail": [
            {
                "errorContext": [{"pathItemId": 1, "itemOccurrence": 1, "itemLevel": 1}],
                "errorCode": 35,
            }
        ]
    }
    assert details[1][1] == {"startMissingSeqNumber": b"00009"}
    assert batch["rapAuditControlInfo"] == {
        "totalSevereReturnValue": 0,
        "returnDetailsCount": 2,
        "totalSevereReturnTax": 0,
    }
    back = read_rap(rap)
    assert back.fatal == [tb_error, bci_error, aci]
    assert back.missing == [MissingItem(9, None)]
    assert back.mismatches == []


def test_notification_and_other_groups(h, rap_spec):
    """A Notification (third-party sample) returned whole; accounting and network groups."""
    note = (h.CASES / "libxfsx_tap_notification.ber").read_bytes()
    tap = h.load_tap(h.INDEFINITE_TAP)
    header = replace(h.rap_header(tap), tap_release=12)
    items = [
        FatalItem("23023", "notification", note, [ErrorDetail(30, (PathItem(2, 1, 1),))]),
        FatalItem(tap.fsn, "accountingInfo", tap.group_bytes(5), [ErrorDetail(34, ())]),
        FatalItem(tap.fsn, "networkInfo", tap.group_bytes(6), [ErrorDetail(30, ())]),
    ]
    rap = write_rap(header, items)
    _, batch = rap_spec.decode("RapDataInterChange", rap)
    first, second = batch["returnDetails"]
    assert first[1]["notificationError"]["notification"]["sender"] == b"ABC08"
    assert set(second[1]) == {"fileSequenceNumber", "accountingInfoError", "networkInfoError"}
    back = read_rap(rap)
    assert back.fatal == items
    assert rap.find(note) > 0


def test_audit_mismatches_are_reported(h):
    tap = h.load_tap(h.DEFINITE_TAP)
    items = h.rap_items(tap)
    wrong = replace(items[0], charge=items[0].charge + 1, tax=items[0].tax + 2)
    rap = read_rap(write_rap(h.rap_header(tap), [wrong, *items[1:]]))
    found = {m.item: (m.declared, m.computed) for m in rap.mismatches}
    value = sum(tap.charge(i) for i in h.SEVERE_EVENTS)
    tax = sum(tap.tax(i) for i in h.SEVERE_EVENTS)
    assert found == {
        "totalSevereReturnValue": (value + 1, value),
        "totalSevereReturnTax": (tax + 2, tax),
    }


def test_returned_event_that_does_not_decode_is_kept(h):
    """A severe return whose event breaks its TAP module still reads (value None, problem)."""
    tap = h.load_tap(h.DEFINITE_TAP)
    event = bytearray(tap.event_bytes(2))  # a call: its last element is basicServiceUsedList
    node = element_at(bytes(event), 0)
    last = iter_children(bytes(event), node)[-1]
    assert event[last.offset : last.offset + 2] == b"\x7f\x26"  # basicServiceUsedList, short length
    event[last.offset + 2] += 5  # its content now claims 5 bytes more than the event holds
    item = SevereItem(tap.fsn, bytes(event), [ErrorDetail(10, ())], 0, 0)
    rap = read_rap(write_rap(h.rap_header(tap), [item]))
    (got,) = rap.severe
    assert got.event_bytes == bytes(event)
    assert got.kind == "mobileOriginatedCall"
    assert got.value is None
    assert (got.charge, got.tax) == (None, None)
    assert got.problem is not None
    assert "does not decode" in got.problem
    assert "basicServiceUsedList" in got.problem
    assert [m.item for m in rap.mismatches] == ["totalSevereReturnValue"]
    assert rap.mismatches[0].computed is None


def test_third_party_rap_sample(h):
    """libxfsx's rap_mini has no returnDetails / audit: not RAP-0105-valid, a DecodeError."""
    data = (h.CASES / "libxfsx_rap_mini.ber").read_bytes()
    with pytest.raises(DecodeError) as err:
        read_rap(data, file="libxfsx_rap_mini.ber")
    assert "returnDetails" in str(err.value)
    assert err.value.file == "libxfsx_rap_mini.ber"


def test_third_party_rap_header_completed(h, rap_spec):
    """The third-party header bytes, completed with an empty returnDetails and an audit."""
    mini = (h.CASES / "libxfsx_rap_mini.ber").read_bytes()
    top = element_at(mini, 0)
    (bci,) = iter_children(mini, top)
    audit = rap_spec.encode(
        "RapAuditControlInfo", {"totalSevereReturnValue": 0, "returnDetailsCount": 0}
    )
    body = mini[bci.offset : bci.end] + encode_header(T_RETURN_DETAILS, True, 0) + audit
    data = encode_header(tag_key(1, 534), True, len(body)) + body
    rap = read_rap(data)
    assert (rap.header.sender, rap.header.recipient, rap.header.rap_fsn) == ("ABC08", "DEF15", 23)
    assert (rap.header.created_local, rap.header.utc_offset) == ("20160520101500", "-0200")
    assert (rap.available_local, rap.available_utc_offset) == ("20160520101600", "-0200")
    assert (rap.header.tap_spec, rap.header.tap_release, rap.header.test) == (3, 12, False)
    assert rap.items == []
    assert rap.total_severe_return_tax is None
    assert rap.mismatches == []


def test_ack_is_not_a_rap(h):
    with pytest.raises(DecodeError, match="not a RAP"):
        read_rap((h.CASES / "libxfsx_rap_ack.ber").read_bytes())


def test_truncated_and_garbage_raise_decode_error(h):
    tap = h.load_tap(h.INDEFINITE_TAP)
    rap = write_rap(h.rap_header(tap), h.rap_items(tap))
    for cut in range(len(rap)):
        with pytest.raises(DecodeError) as err:
            read_rap(rap[:cut], file="cut")
        assert err.value.file == "cut"
    with pytest.raises(DecodeError, match="trailing"):
        read_rap(rap + b"\x00\x00")
    rng = random.Random(1)
    for _ in range(200):
        with pytest.raises(DecodeError):
            read_rap(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))))


def test_mutations_never_crash(h):
    """Flipped bytes give a RapFile or a DecodeError, never another exception."""
    tap = h.load_tap(h.DEFINITE_TAP)
    rap = write_rap(h.rap_header(tap), h.rap_items(tap))
    rng = random.Random(2)
    outcomes = {"read": 0, "error": 0}
    reasons = []
    for _ in range(1500):
        data = bytearray(rap)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            read_rap(bytes(data))
        except DecodeError as exc:
            reasons.append(exc.reason)
            outcomes["error"] += 1
        else:
            outcomes["read"] += 1
    assert outcomes["read"] > 0
    assert outcomes["error"] > 0
    assert all(reasons)


def test_decode_errors_name_the_place(h):
    tap = h.load_tap(h.DEFINITE_TAP)
    rap = bytearray(write_rap(h.rap_header(tap), h.rap_items(tap)))
    # turn the first ReturnDetail's tag [APPLICATION 540] into [APPLICATION 541]
    pos = rap.find(b"\x7f\x84\x1c")
    rap[pos + 2] = 0x1D
    with pytest.raises(DecodeError) as err:
        read_rap(bytes(rap), file="x")
    assert err.value.offset == pos
    assert err.value.path == "returnBatch.returnDetails[0]"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sender": "HKG"}, "TADIG"),
        ({"rap_fsn": 0}, "out of range"),
        ({"rap_fsn": 100000}, "out of range"),
        ({"created_local": "2026-11-23"}, "CCYYMMDDhhmmss"),
        ({"utc_offset": "0800"}, "hhmm"),
        ({"tap_release": 8}, "TAP 3.8"),
        ({"tap_decimal_places": 7}, "out of range"),
        ({"tap_currency": "eur"}, "ISO 4217"),
    ],
)
def test_bad_header_is_an_encode_error(h, change, message):
    tap = h.load_tap(h.DEFINITE_TAP)
    with pytest.raises(EncodeError, match=message):
        write_rap(replace(h.rap_header(tap), **change), h.rap_items(tap))


def test_bad_items_are_encode_errors(h):
    tap = h.load_tap(h.DEFINITE_TAP)
    header = h.rap_header(tap)
    severe, _, aci, *_ = h.rap_items(tap)
    bad = [
        (replace(severe, event_bytes=severe.event_bytes + b"\x00"), "after the element"),
        (replace(severe, event_bytes=severe.event_bytes[:-1]), "not a BER element"),
        (replace(severe, event_bytes=tap.group_bytes(15)), "not a CallEventDetail"),
        (replace(severe, errors=[]), "at least one error"),
        (replace(severe, charge=-1), "out of range"),
        (replace(aci, group_bytes=tap.group_bytes(4)), "wrong tag"),
        (replace(aci, group="transferBatch"), "must be empty"),
        (replace(aci, group="vasInfo"), "unknown fatal group"),
        (MissingItem(0, 5), "out of range"),
        (StopItem(123456), "out of range"),
    ]
    for item, message in bad:
        with pytest.raises(EncodeError, match=message):
            write_rap(header, [item])
    with pytest.raises(EncodeError, match="second auditControlInfo"):
        write_rap(header, [aci, aci])


def test_rap_for_tap_3_11(h, tmp_path):
    tap = h.load_tap(h.DEFINITE_TAP)
    header = replace(h.rap_header(tap), tap_release=11)
    rap = write_rap(header, [MissingItem(3, 5), StopItem(10)])
    path = tmp_path / rap_file_name(header)
    path.write_bytes(rap)
    assert "TAP 3.11" in h.file_says(path)
    back = read_rap(rap)
    assert back.header == header
    assert back.items == [MissingItem(3, 5), StopItem(10)]
