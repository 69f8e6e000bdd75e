"""Write CIBER 2.5 records and batches, driven by the layout tables.

:func:`encode_record` turns one mapping of field values into one fixed-width line;
:func:`encode_batch` wraps detail lines into header + details + trailer with the trailer's
count and total computed; :func:`write` builds whole files from the normalised event table
(CIBER-out), one batch per sending/receiving SID/BID pair and currency, at most 9 999 records
each, numbering batches per pair 001-999 and wrapping.

C901: ``_encode_field`` is the table of CIBER field formats (``N``, money, ``D``, number, ``X``,
date, time, duration), one branch per format with its refusals, as the spec's format list reads.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from clearing.codecs.ciber._codes import CURRENCY_CODE_BY_ISO, YEAR_PIVOT
from clearing.codecs.ciber._layouts import layout
from clearing.errors import EncodeError
from clearing.names import next_ciber_sequence

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, MutableMapping

    import pyarrow as pa

    from clearing.codecs.ciber._layouts import Field

__all__ = [
    "MAX_RECORDS",
    "encode_batch",
    "encode_record",
    "next_sequence",
    "settlement_period_for",
    "write",
]

MAX_RECORDS = 9999
_DETAIL_DEFAULTS: dict[str, Any] = {
    "special_features_used": "0",  # "0" + blanks when no special feature (ciber.md §5)
    "call_completion_indicator": 2,  # called party answered
    "call_termination_indicator": 2,  # normal
    "time_zone_indicator": 99,  # unknown
    "toll_network_carrier_id": "00000",
}


def next_sequence(last: int | None) -> int:
    """The batch sequence number after ``last`` (001-999, 999 wraps to 001)."""
    return next_ciber_sequence(last)


def settlement_period_for(day: dt.date) -> dt.date:
    """The settlement period (the 15th closing the 16th-15th period) that holds ``day``."""
    if day.day <= 15:
        return day.replace(day=15)
    if day.month == 12:
        return dt.date(day.year + 1, 1, 15)
    return dt.date(day.year, day.month + 1, 15)


def _fail(record_type: str, f: Field, value: object, why: str) -> EncodeError:
    return EncodeError(f"type-{record_type} field `{f.name}` = {value!r}: {why}")


def _digits(record_type: str, f: Field, value: object) -> str:
    text = str(value)
    if not text.isascii() or not text.isdigit():
        raise _fail(record_type, f, value, "digits expected")
    return text


def _encode_field(record_type: str, f: Field, value: Any) -> str:
    n = f.length
    fmt = f.format
    if fmt in ("N", "money"):
        v = 0 if value is None else value
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise _fail(record_type, f, value, "a non-negative integer expected")
        text = str(v)
        if len(text) > n:
            raise _fail(record_type, f, value, f"more than {n} digits")
        return text.zfill(n)
    if fmt == "D":
        text = "" if value is None else _digits(record_type, f, value)
        if len(text) > n:
            raise _fail(record_type, f, value, f"more than {n} digits")
        # MSID and ESN (15/19 digits) are left-justified and zero-filled (ciber.md §2)
        return text.ljust(n, "0") if n >= 15 else text.zfill(n)
    if fmt == "number":
        text = "" if value is None else _digits(record_type, f, value)
        if len(text) > n:
            raise _fail(record_type, f, value, f"more than {n} digits")
        return text.ljust(n, "0")
    if fmt == "X":
        text = "" if value is None else str(value)
        if len(text) > n or not all(" " <= c <= "~" for c in text):
            raise _fail(record_type, f, value, f"at most {n} printable ASCII characters")
        return text.ljust(n)
    if fmt == "date":
        if value is None:
            return "0" * 6
        if isinstance(value, dt.datetime):
            value = value.date()
        if not isinstance(value, dt.date):
            raise _fail(record_type, f, value, "a date expected")
        low = 1900 + YEAR_PIVOT
        if not low <= value.year < low + 100:
            raise _fail(record_type, f, value, f"years {low}-{low + 99} fit YYMMDD")
        return value.strftime("%y%m%d")
    if fmt == "time":
        if value is None:
            return "0" * 6
        if isinstance(value, int) and 0 <= value < 86400:
            value = dt.time(value // 3600, value // 60 % 60, value % 60)
        if isinstance(value, dt.datetime):
            value = value.time()
        if not isinstance(value, dt.time):
            raise _fail(record_type, f, value, "a time of day expected")
        return value.strftime("%H%M%S")
    if fmt == "duration":
        v = 0 if value is None else value
        if isinstance(v, dt.timedelta):
            v = int(v.total_seconds())
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 10000 * 60:
            raise _fail(record_type, f, value, "0 to 9999:59 seconds expected")
        return f"{v // 60:04d}{v % 60:02d}"
    return " " * n  # filler


def encode_record(record_type: str, values: Mapping[str, Any]) -> bytes:
    """One record line (without terminator) from field values keyed by layout field name.

    Fields not given are zero (numbers, dates) or blank (text). A ``number`` field's length
    field is set from the number unless given. Raises :class:`EncodeError` when a value does
    not fit its field.
    """
    lay = layout(record_type)
    unknown = set(values) - set(lay.by_name)
    if unknown:
        msg = f"type-{record_type} has no field(s) {', '.join(sorted(unknown))}"
        raise EncodeError(msg)
    out: list[str] = []
    for f in lay.fields:
        if f.name == "record_type":
            out.append(record_type)
            continue
        value = values.get(f.name)
        if f.format == "N" and value is None:
            # the length of a number field, unless given
            owner = next((g for g in lay.fields if g.length_field == f.name), None)
            if owner is not None:
                value = len(str(values.get(owner.name) or ""))
        out.append(_encode_field(record_type, f, value))
    return "".join(out).encode("ascii")


def encode_batch(
    details: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    creation_date: dt.date,
    batch_sequence_number: int,
    sending_sid_bid: str,
    receiving_sid_bid: str,
    currency_type: int = 1,
    settlement_period: dt.date | None = None,
    clearinghouse_id: int = 0,
    original_return_indicator: str = "1",
    batch_reject_reason_code: int = 0,
    batch_contents: int = 1,
    local_carrier_reserved: str = "",
    line_ending: bytes = b"\r\n",
) -> bytes:
    """A type-01 header, the detail records and a type-98 trailer with count and total.

    Args:
        details: ``(record_type, values)`` per detail record.
        creation_date: the Batch Creation Date (header and trailer).
        batch_sequence_number: the Batch Sequence Number (header and trailer).
        sending_sid_bid: the sender's SID/BID.
        receiving_sid_bid: the recipient's SID/BID.
        currency_type: the Currency Type (header and trailer).
        settlement_period: ``None`` writes zeros, as a carrier must (ciber.md §2).
        clearinghouse_id: the Clearinghouse ID (header and trailer).
        original_return_indicator: the header's Original/Return Indicator.
        batch_reject_reason_code: the header's CIBER Batch Reject Reason Code.
        batch_contents: the header's Batch Contents.
        local_carrier_reserved: the header's Local Carrier Reserved text.
        line_ending: the bytes after every record, the trailer's too.
    """
    lines = []
    total = 0
    for rt, values in details:
        total += int(values.get("total_charges_and_taxes") or 0)
        lines.append(encode_record(rt, values))
    if len(lines) > MAX_RECORDS:
        msg = f"a batch holds at most {MAX_RECORDS} records, got {len(lines)}"
        raise EncodeError(msg)
    common = {
        "batch_creation_date": creation_date,
        "batch_sequence_number": batch_sequence_number,
        "sending_sid_bid": sending_sid_bid,
        "receiving_sid_bid": receiving_sid_bid,
        "settlement_period": settlement_period,
        "clearinghouse_id": clearinghouse_id,
        "currency_type": currency_type,
    }
    header = encode_record(
        "01",
        {
            **common,
            "record_release_number": 25,
            "original_return_indicator": original_return_indicator,
            "batch_reject_reason_code": batch_reject_reason_code,
            "batch_contents": batch_contents,
            "local_carrier_reserved": local_carrier_reserved,
        },
    )
    trailer = encode_record(
        "98",
        {
            **common,
            "total_number_of_records": len(lines),
            "batch_total_charges_and_taxes": total,
            "batch_total_charges_and_taxes_sign": "0",
            "original_total_charges_and_taxes_sign": "0",
            "original_total_number_of_records": len(lines),
            "original_total_charges_and_taxes": total,
        },
    )
    return line_ending.join([header, *lines, trailer]) + line_ending


_CIBER_FIELDS_22 = frozenset(layout("22").by_name)
_CIBER_FIELDS_52 = frozenset(layout("52").by_name)


def _event_values(row: Mapping[str, Any], seq: int) -> tuple[str, dict[str, Any]]:
    """Map one normalised event to a CIBER detail record (ciber.md §9, in reverse)."""
    kind = row.get("event_kind")
    charge = row.get("charge") or 0
    tax = row.get("tax") or 0
    start = row.get("local_start")
    if charge < 0 or tax < 0:
        msg = f"event {row.get('event_index')}: CIBER charges cannot be negative"
        raise EncodeError(msg)
    common: dict[str, Any] = {
        "home_sid_bid": row.get("recipient"),
        "serving_sid_bid": row.get("serving_network") or row.get("sender"),
        "mdn": row.get("msisdn"),
        "total_charges_and_taxes": charge + tax,
        "total_state_province_taxes": tax,
        "currency_type": CURRENCY_CODE_BY_ISO.get(row.get("currency") or "USD"),
        "original_batch_sequence_number": seq,
    }
    if row.get("imsi"):
        common["msid_indicator"] = 1
        common["msid"] = row["imsi"]
    if common["currency_type"] is None:
        msg = f"event {row.get('event_index')}: no CIBER currency code for {row['currency']!r}"
        raise EncodeError(msg)
    if kind == "ciberOtherChargesAndCredits":
        rt = "52"
        values = {
            **common,
            "occ_start_date": start,
            "occ_end_date": start,
            "connect_time": start,
            "occ_charge": charge,
            "record_use_indicator": "0",
        }
        fields = _CIBER_FIELDS_52
    elif kind in ("mobileOriginatedCall", "mobileTerminatedCall", "ciberAirAndToll"):
        rt = "22"
        mo = kind == "mobileOriginatedCall"
        toll = row.get("charge_toll") or 0
        air = row.get("charge_airtime")
        air = charge - toll if air is None else air
        other = charge - toll - air
        if other < 0:
            msg = f"event {row.get('event_index')}: air + toll charges exceed the charge"
            raise EncodeError(msg)
        duration = row.get("duration")
        values = {
            **_DETAIL_DEFAULTS,
            **common,
            "call_date": start,
            "air_connect_time": start,
            "air_chargeable_time": duration,
            "air_elapsed_time": duration,
            "call_direction": 1 if mo else 2 if kind == "mobileTerminatedCall" else None,
            "caller_id": row.get("calling_number") or (row.get("msisdn") if mo else None),
            "called_number": row.get("called_number") or row.get("dialled_digits"),
            "air_charge": air,
            "toll_charge": toll,
            "other_charge_no_1_indicator": 1 if other else 0,
            "other_charge_no_1": other,
        }
        fields = _CIBER_FIELDS_22
    else:
        msg = f"event {row.get('event_index')}: `{kind}` has no CIBER record type"
        raise EncodeError(msg)
    # columns named like a layout field (e.g. `esn`, `msid`, `call_direction`) win
    for name, value in row.items():
        if name in fields and value is not None and name != "record_type":
            values[name] = value
    if values.get("msid") is None:
        msg = f"event {row.get('event_index')}: needs an `imsi` or an `msid` (MIN)"
        raise EncodeError(msg)
    values.setdefault("msid_indicator", 2)
    return rt, values


def write(
    events: pa.Table,
    *,
    creation_date: dt.date,
    sequences: MutableMapping[tuple[str, str], int] | None = None,
    clearinghouse_id: int = 0,
    batch_contents: int = 1,
    line_ending: bytes = b"\r\n",
    max_records: int = MAX_RECORDS,
) -> bytes:
    """CIBER batches for the events of ``events`` (the normalised event table).

    One batch per (sender, recipient, currency), in sorted order, split every
    ``max_records``; events keep their table order inside a batch. ``sequences`` maps
    (sending, receiving) SID/BID to the last batch sequence number used and is updated.
    The settlement period is zero-filled when the sender is a carrier (clearinghouse ID 0),
    otherwise it is the period holding ``creation_date``. Extra columns named like a layout
    field (``esn``, ``msid``, ``call_completion_indicator``...) are written as given.
    """
    if sequences is None:
        sequences = {}
    rows = events.to_pylist()
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if not row.get("sender") or not row.get("recipient"):
            msg = f"event {row.get('event_index')}: sender and recipient SID/BID needed"
            raise EncodeError(msg)
        key = (row["sender"], row["recipient"], row.get("currency") or "USD")
        groups.setdefault(key, []).append(row)
    settlement = None if clearinghouse_id == 0 else settlement_period_for(creation_date)
    out: list[bytes] = []
    for (sender, recipient, currency), group in sorted(groups.items()):
        for i in range(0, len(group), max_records):
            seq = next_sequence(sequences.get((sender, recipient)))
            sequences[(sender, recipient)] = seq
            details = [_event_values(r, seq) for r in group[i : i + max_records]]
            out.append(
                encode_batch(
                    details,
                    creation_date=creation_date,
                    batch_sequence_number=seq,
                    sending_sid_bid=sender,
                    receiving_sid_bid=recipient,
                    currency_type=CURRENCY_CODE_BY_ISO[currency],
                    settlement_period=settlement,
                    clearinghouse_id=clearinghouse_id,
                    batch_contents=batch_contents,
                    line_ending=line_ending,
                )
            )
    return b"".join(out)
