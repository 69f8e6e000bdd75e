"""Batch-level tables of a TAP TransferBatch (the header groups as Arrow tables).

One table per group, each with the file's sender, recipient and FSN so they can be stored
in the lake next to the events:

* ``batch_control``  — one row: parties, FSN, RAP FSN, test flag, timestamps, release;
* ``accounting``     — one row: local / TAP currency, tapDecimalPlaces;
* ``exchange_rates`` — a row per currencyConversionInfo entry;
* ``taxation``       — a row per taxation entry (taxRate as in the file: 7 digits, 5 decimals);
* ``discounting``    — a row per discounting entry (fixed value or rate);
* ``utc_offsets``    — a row per utcTimeOffsetInfo entry;
* ``rec_entities``   — a row per recEntityInfo entry;
* ``audit``          — one row: the AuditControlInfo totals as in the file.

:func:`fixed_discount_total` is the part of TD.57's TotalDiscountValue that no event states as a
``Discount`` value: the fixed discounts (``fixedDiscountValue`` of the Discounting table) the
events apply. The validator and the inspector both add it to the recomputed total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs.tap3.values import stamp_parts, text
from clearing.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from clearing.codecs.fast import TapBatch

__all__ = ["batch_tables", "fixed_discount_total"]


def batch_tables(batch: TapBatch) -> dict[str, pa.Table]:
    """The header groups of ``batch`` as Arrow tables (see the module docstring)."""
    bci = batch.groups.get("batchControlInfo") or {}
    key = {
        "sender": text(bci.get("sender")),
        "recipient": text(bci.get("recipient")),
        "file_sequence_number": text(bci.get("fileSequenceNumber")),
    }
    return {name: _table(key, rows(batch), schema) for name, (rows, schema) in _TABLES.items()}


def fixed_discount_total(batch: TapBatch) -> int:
    """The fixed discounts applied by the events of ``batch`` (refunds apart).

    TD.57 TotalDiscountValue is the sum of the events' discounts. A Discounting entry with a
    ``fixedDiscountValue`` is applied as such by an event that names its DiscountCode without a
    ``Discount`` value of its own: each such (non-refund) event adds the fixed value once.
    """
    fixed = {
        d["discountCode"]: int(d["discountApplied"][1])
        for d in _group(batch, "accountingInfo").get("discounting") or []
        if isinstance(d.get("discountApplied"), tuple)
        and d["discountApplied"][0] == "fixedDiscountValue"
        and isinstance(d.get("discountCode"), int)
    }
    if not fixed:
        return 0
    ev = batch.events
    applied = pc.and_(pc.is_null(ev.column("discount")), pc.invert(ev.column("refund")))
    total = 0
    for code, value in fixed.items():
        hits = pc.sum(pc.and_(applied, pc.equal(ev.column("discount_code"), code)).cast(pa.int64()))
        total += int(hits.as_py() or 0) * value
    return total


def _table(key: dict[str, Any], items: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    full = [{**key, **r} for r in items]
    try:
        return pa.Table.from_pylist(full, schema=schema)
    except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = f"header value out of range: {exc}"
        raise DecodeError(
            msg,
            offset=0,
            path="transferBatch",
            hint="a header group holds a value no TAP release allows; reject the file",
        ) from None


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    base = [("sender", pa.string()), ("recipient", pa.string())]
    base.append(("file_sequence_number", pa.string()))
    return pa.schema([*base, *fields])


def _group(batch: TapBatch, name: str) -> dict[str, Any]:
    return batch.groups.get(name) or {}


def _batch_control(batch: TapBatch) -> list[dict[str, Any]]:
    bci = _group(batch, "batchControlInfo")
    created = stamp_parts(bci.get("fileCreationTimeStamp"))
    available = stamp_parts(bci.get("fileAvailableTimeStamp"))
    cutoff = stamp_parts(bci.get("transferCutOffTimeStamp"))
    return [
        {
            "rap_file_sequence_number": text(bci.get("rapFileSequenceNumber")),
            "file_type_indicator": text(bci.get("fileTypeIndicator")),
            "test_data": text(bci.get("fileTypeIndicator")) == "T",
            "specification_version_number": bci.get("specificationVersionNumber"),
            "release_version_number": bci.get("releaseVersionNumber"),
            "file_creation_local": created[0],
            "file_creation_utc_offset": created[1],
            "file_available_local": available[0],
            "file_available_utc_offset": available[1],
            "transfer_cut_off_local": cutoff[0],
            "transfer_cut_off_utc_offset": cutoff[1],
            "event_count": batch.events.num_rows,
        }
    ]


def _accounting(batch: TapBatch) -> list[dict[str, Any]]:
    acc = _group(batch, "accountingInfo")
    return [
        {
            "local_currency": text(acc.get("localCurrency")),
            "tap_currency": text(acc.get("tapCurrency")) or "SDR",
            "tap_decimal_places": acc.get("tapDecimalPlaces"),
        }
    ]


def _exchange_rates(batch: TapBatch) -> list[dict[str, Any]]:
    return [
        {
            "exchange_rate_code": x.get("exchangeRateCode"),
            "number_of_decimal_places": x.get("numberOfDecimalPlaces"),
            "exchange_rate": x.get("exchangeRate"),
        }
        for x in _group(batch, "accountingInfo").get("currencyConversionInfo", [])
    ]


def _taxation(batch: TapBatch) -> list[dict[str, Any]]:
    return [
        {
            "tax_code": x.get("taxCode"),
            "tax_type": text(x.get("taxType")),
            "tax_rate": text(x.get("taxRate")),
            "charge_type": text(x.get("chargeType")),
        }
        for x in _group(batch, "accountingInfo").get("taxation", [])
    ]


def _discounting(batch: TapBatch) -> list[dict[str, Any]]:
    return [
        {
            "discount_code": x.get("discountCode"),
            "discount_kind": x["discountApplied"][0] if "discountApplied" in x else None,
            "discount_value": x["discountApplied"][1] if "discountApplied" in x else None,
        }
        for x in _group(batch, "accountingInfo").get("discounting", [])
    ]


def _utc_offsets(batch: TapBatch) -> list[dict[str, Any]]:
    return [
        {
            "utc_time_offset_code": x.get("utcTimeOffsetCode"),
            "utc_time_offset": text(x.get("utcTimeOffset")),
        }
        for x in _group(batch, "networkInfo").get("utcTimeOffsetInfo", [])
    ]


def _rec_entities(batch: TapBatch) -> list[dict[str, Any]]:
    return [
        {
            "rec_entity_code": x.get("recEntityCode"),
            "rec_entity_type": x.get("recEntityType"),
            "rec_entity_id": text(x.get("recEntityId")),
        }
        for x in _group(batch, "networkInfo").get("recEntityInfo", [])
    ]


def _audit(batch: TapBatch) -> list[dict[str, Any]]:
    aci = _group(batch, "auditControlInfo")
    earliest = stamp_parts(aci.get("earliestCallTimeStamp"))
    latest = stamp_parts(aci.get("latestCallTimeStamp"))
    return [
        {
            "total_charge": aci.get("totalCharge"),
            "total_charge_refund": aci.get("totalChargeRefund"),
            "total_tax_value": aci.get("totalTaxValue"),
            "total_tax_refund": aci.get("totalTaxRefund"),
            "total_discount_value": aci.get("totalDiscountValue"),
            "total_discount_refund": aci.get("totalDiscountRefund"),
            "call_event_details_count": aci.get("callEventDetailsCount"),
            "earliest_call_local": earliest[0],
            "earliest_call_utc_offset": earliest[1],
            "latest_call_local": latest[0],
            "latest_call_utc_offset": latest[1],
        }
    ]


_S = pa.string()
_I64 = pa.int64()
# per table: its rows (from the batch) and its schema (after sender, recipient, FSN)
_TABLES: dict[str, tuple[Callable[[TapBatch], list[dict[str, Any]]], pa.Schema]] = {
    "batch_control": (
        _batch_control,
        _schema(
            ("rap_file_sequence_number", _S),
            ("file_type_indicator", _S),
            ("test_data", pa.bool_()),
            ("specification_version_number", _I64),
            ("release_version_number", _I64),
            ("file_creation_local", _S),
            ("file_creation_utc_offset", _S),
            ("file_available_local", _S),
            ("file_available_utc_offset", _S),
            ("transfer_cut_off_local", _S),
            ("transfer_cut_off_utc_offset", _S),
            ("event_count", _I64),
        ),
    ),
    "accounting": (
        _accounting,
        _schema(("local_currency", _S), ("tap_currency", _S), ("tap_decimal_places", _I64)),
    ),
    "exchange_rates": (
        _exchange_rates,
        _schema(
            ("exchange_rate_code", _I64),
            ("number_of_decimal_places", _I64),
            ("exchange_rate", _I64),
        ),
    ),
    "taxation": (
        _taxation,
        _schema(("tax_code", _I64), ("tax_type", _S), ("tax_rate", _S), ("charge_type", _S)),
    ),
    "discounting": (
        _discounting,
        _schema(("discount_code", _I64), ("discount_kind", _S), ("discount_value", _I64)),
    ),
    "utc_offsets": (
        _utc_offsets,
        _schema(("utc_time_offset_code", _I64), ("utc_time_offset", _S)),
    ),
    "rec_entities": (
        _rec_entities,
        _schema(("rec_entity_code", _I64), ("rec_entity_type", _I64), ("rec_entity_id", _S)),
    ),
    "audit": (
        _audit,
        _schema(
            ("total_charge", _I64),
            ("total_charge_refund", _I64),
            ("total_tax_value", _I64),
            ("total_tax_refund", _I64),
            ("total_discount_value", _I64),
            ("total_discount_refund", _I64),
            ("call_event_details_count", _I64),
            ("earliest_call_local", _S),
            ("earliest_call_utc_offset", _S),
            ("latest_call_local", _S),
            ("latest_call_utc_offset", _S),
        ),
    ),
}
