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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from clearing.codecs.tap3.values import stamp_parts, text
from clearing.errors import DecodeError

if TYPE_CHECKING:
    from clearing.codecs.fast import TapBatch

__all__ = ["batch_tables"]


def batch_tables(batch: TapBatch) -> dict[str, pa.Table]:
    """The header groups of ``batch`` as Arrow tables (see the module docstring)."""
    g = batch.groups
    bci = g.get("batchControlInfo") or {}
    acc = g.get("accountingInfo") or {}
    net = g.get("networkInfo") or {}
    aci = g.get("auditControlInfo") or {}
    key = {
        "sender": text(bci.get("sender")),
        "recipient": text(bci.get("recipient")),
        "file_sequence_number": text(bci.get("fileSequenceNumber")),
    }

    def rows(items: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
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

    def schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
        base = [("sender", pa.string()), ("recipient", pa.string())]
        base.append(("file_sequence_number", pa.string()))
        return pa.schema([*base, *fields])

    created = stamp_parts(bci.get("fileCreationTimeStamp"))
    available = stamp_parts(bci.get("fileAvailableTimeStamp"))
    cutoff = stamp_parts(bci.get("transferCutOffTimeStamp"))
    earliest = stamp_parts(aci.get("earliestCallTimeStamp"))
    latest = stamp_parts(aci.get("latestCallTimeStamp"))
    s = pa.string()
    i64 = pa.int64()
    out = {
        "batch_control": rows(
            [
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
            ],
            schema(
                ("rap_file_sequence_number", s),
                ("file_type_indicator", s),
                ("test_data", pa.bool_()),
                ("specification_version_number", i64),
                ("release_version_number", i64),
                ("file_creation_local", s),
                ("file_creation_utc_offset", s),
                ("file_available_local", s),
                ("file_available_utc_offset", s),
                ("transfer_cut_off_local", s),
                ("transfer_cut_off_utc_offset", s),
                ("event_count", i64),
            ),
        ),
        "accounting": rows(
            [
                {
                    "local_currency": text(acc.get("localCurrency")),
                    "tap_currency": text(acc.get("tapCurrency")) or "SDR",
                    "tap_decimal_places": acc.get("tapDecimalPlaces"),
                }
            ],
            schema(("local_currency", s), ("tap_currency", s), ("tap_decimal_places", i64)),
        ),
        "exchange_rates": rows(
            [
                {
                    "exchange_rate_code": x.get("exchangeRateCode"),
                    "number_of_decimal_places": x.get("numberOfDecimalPlaces"),
                    "exchange_rate": x.get("exchangeRate"),
                }
                for x in acc.get("currencyConversionInfo", [])
            ],
            schema(
                ("exchange_rate_code", i64),
                ("number_of_decimal_places", i64),
                ("exchange_rate", i64),
            ),
        ),
        "taxation": rows(
            [
                {
                    "tax_code": x.get("taxCode"),
                    "tax_type": text(x.get("taxType")),
                    "tax_rate": text(x.get("taxRate")),
                    "charge_type": text(x.get("chargeType")),
                }
                for x in acc.get("taxation", [])
            ],
            schema(("tax_code", i64), ("tax_type", s), ("tax_rate", s), ("charge_type", s)),
        ),
        "discounting": rows(
            [
                {
                    "discount_code": x.get("discountCode"),
                    "discount_kind": x["discountApplied"][0] if "discountApplied" in x else None,
                    "discount_value": x["discountApplied"][1] if "discountApplied" in x else None,
                }
                for x in acc.get("discounting", [])
            ],
            schema(("discount_code", i64), ("discount_kind", s), ("discount_value", i64)),
        ),
        "utc_offsets": rows(
            [
                {
                    "utc_time_offset_code": x.get("utcTimeOffsetCode"),
                    "utc_time_offset": text(x.get("utcTimeOffset")),
                }
                for x in net.get("utcTimeOffsetInfo", [])
            ],
            schema(("utc_time_offset_code", i64), ("utc_time_offset", s)),
        ),
        "rec_entities": rows(
            [
                {
                    "rec_entity_code": x.get("recEntityCode"),
                    "rec_entity_type": x.get("recEntityType"),
                    "rec_entity_id": text(x.get("recEntityId")),
                }
                for x in net.get("recEntityInfo", [])
            ],
            schema(("rec_entity_code", i64), ("rec_entity_type", i64), ("rec_entity_id", s)),
        ),
        "audit": rows(
            [
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
            ],
            schema(
                ("total_charge", i64),
                ("total_charge_refund", i64),
                ("total_tax_value", i64),
                ("total_tax_refund", i64),
                ("total_discount_value", i64),
                ("total_discount_refund", i64),
                ("call_event_details_count", i64),
                ("earliest_call_local", s),
                ("earliest_call_utc_offset", s),
                ("latest_call_local", s),
                ("latest_call_utc_offset", s),
            ),
        ),
    }
    return out
