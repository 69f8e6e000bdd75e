"""The normalised call-event table shared by every decoder (TAP3 and CIBER).

One row per call event. Money columns are integers: ``charge`` etc. are in the file's
currency (``currency``) scaled by ``10**charge_scale`` (TAP: the file's ``tapDecimalPlaces``;
CIBER: 2, i.e. cents). A column a format does not carry is null.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["CIBER_KEY", "EVENT_COLUMNS", "EVENT_SCHEMA", "HARD_KEY", "empty_event_table"]

EVENT_SCHEMA = pa.schema(
    [
        # provenance
        pa.field("source_format", pa.string(), nullable=False),  # "tap" | "ciber"
        pa.field("sender", pa.string()),  # TADIG (TAP) or SID/BID (CIBER) of the sender
        pa.field("recipient", pa.string()),
        pa.field("file_sequence_number", pa.string()),  # TAP FSN / CIBER batch seq., as in file
        pa.field("event_index", pa.int64(), nullable=False),  # 0-based position in the file
        pa.field(
            "event_kind", pa.string(), nullable=False
        ),  # TD.57 name, e.g. mobileOriginatedCall
        pa.field("byte_offset", pa.int64(), nullable=False),  # where the event's bytes start
        pa.field("byte_length", pa.int64(), nullable=False),  # how many bytes it spans
        # who
        pa.field("imsi", pa.string()),
        pa.field("msisdn", pa.string()),
        pa.field("called_number", pa.string()),
        pa.field("calling_number", pa.string()),
        pa.field("dialled_digits", pa.string()),
        # when
        pa.field("local_start", pa.timestamp("s")),  # local time at the subscriber's location
        pa.field("utc_offset", pa.string()),  # "+hhmm" / "-hhmm"
        pa.field("start_utc", pa.timestamp("s", tz="UTC")),
        pa.field("duration", pa.int64()),  # seconds
        # what
        pa.field("data_volume_incoming", pa.int64()),  # bytes
        pa.field("data_volume_outgoing", pa.int64()),  # bytes
        pa.field("tele_service_code", pa.string()),
        pa.field("bearer_service_code", pa.string()),
        pa.field("supplementary_service_code", pa.string()),
        pa.field("apn_ni", pa.string()),
        pa.field("apn_oi", pa.string()),
        # where
        pa.field("rec_entity_code", pa.int64()),
        pa.field("rec_entity_id", pa.string()),
        pa.field("serving_network", pa.string()),
        pa.field("location_area", pa.int64()),
        pa.field("cell_id", pa.int64()),
        # money (integers; value = raw / 10**charge_scale)
        pa.field("currency", pa.string()),  # TAP currency ("SDR" unless tapCurrency) / CIBER "USD"
        pa.field("charge_scale", pa.int8()),
        # chargeType 00 (TAP) / Total Charges and Taxes − state − local taxes (CIBER)
        pa.field("charge", pa.int64()),
        pa.field("charge_airtime", pa.int64()),  # chargeType 01 (TAP) / air charge (CIBER)
        pa.field("charge_toll", pa.int64()),  # chargeType 03 (TAP) / toll charge (CIBER)
        pa.field("tax", pa.int64()),
        pa.field("discount", pa.int64()),
        pa.field("camel_fee", pa.int64()),
        pa.field("refund", pa.bool_()),
        pa.field("exchange_rate_code", pa.int64()),
        pa.field("charged_item", pa.string()),
        pa.field("call_type_level1", pa.int64()),
        pa.field("call_type_level2", pa.int64()),
        pa.field("call_type_level3", pa.int64()),
        # for validation and duplicate keys
        pa.field("tax_code", pa.int64()),  # the first TaxCode of the event
        pa.field("discount_code", pa.int64()),  # the first DiscountCode of the event
        pa.field("taxable_amount", pa.int64()),  # sum of TaxableAmount (null: none given)
        pa.field("tax_items", pa.int64()),  # number of TaxInformation in the event
        pa.field("charge_items", pa.int64()),  # number of ChargeInformation in the event
        pa.field("cause_for_term", pa.int64()),
        pa.field("charging_id", pa.int64()),  # GPRS / session charging id
        pa.field("partial_type", pa.string()),  # PartialTypeIndicator (F, I, L)
        pa.field("rap_file_sequence_number", pa.string()),  # set on a resubmitted event
        pa.field("charge_detail_local", pa.timestamp("s")),  # first ChargeDetailTimeStamp
    ]
)

EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)


def empty_event_table() -> pa.Table:
    """An event table with no rows and the full schema."""
    return EVENT_SCHEMA.empty_table()


#: The columns that make two call events the same event (the duplicate check's hard key,
#: domain.md §1.6): event kind, IMSI, UTC start, duration, data volumes, other party (called /
#: calling number) or APN, recording entity, charging id and partial-record type.
HARD_KEY = (
    "event_kind",
    "imsi",
    "start_utc",
    "duration",
    "data_volume_incoming",
    "data_volume_outgoing",
    "called_number",
    "calling_number",
    "apn_ni",
    "rec_entity_code",
    "rec_entity_id",
    "charging_id",
    "partial_type",
)

#: The normalised event columns of a CIBER record that make it the same record again: its
#: parties, subscriber, start, direction, numbers, duration and money (ciber.md §7.2 4/11).
CIBER_KEY = (
    "sender",
    "recipient",
    "serving_network",
    "event_kind",
    "imsi",
    "msisdn",
    "local_start",
    "duration",
    "called_number",
    "calling_number",
    "charge",
    "tax",
)
