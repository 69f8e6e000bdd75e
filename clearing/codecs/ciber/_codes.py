"""CIBER code tables (ciber.md §2, §5, §7) and the few constants of the format."""

from __future__ import annotations

__all__ = [
    "BATCH_REJECT_REASONS",
    "CURRENCY_BY_CODE",
    "CURRENCY_CODE_BY_ISO",
    "EVENT_KIND_BY_DIRECTION",
    "EVENT_KIND_BY_TYPE",
    "RETURN_REASONS",
    "UNSUPPORTED_TYPES",
    "YEAR_PIVOT",
]

#: Two-digit years: ``YY < YEAR_PIVOT`` is 20YY, otherwise 19YY. CIBER exists since 1988
#: (ciber.md §1, S5), so 80-99 can only mean 1980-1999; 00-79 covers 2000-2079.
YEAR_PIVOT = 80

#: CIBER Currency Type → ISO 4217 (ciber.md §2; S1's country names are trusted over its
#: partly wrong ISO codes). Codes 01-98 are valid; unknown ones decode to ``CIBER-nn``.
CURRENCY_BY_CODE: dict[int, str] = {
    1: "USD",
    2: "CAD",
    3: "GBP",
    4: "JPY",
    5: "MXP",
    6: "CHF",
    7: "HKD",
    8: "CLP",
    9: "ARS",
    10: "BOB",
    11: "BRL",
    12: "COP",
    13: "CRC",
    14: "NZD",
    15: "PEN",
    16: "UYU",
    17: "VEB",
    18: "MXN",
    19: "BSD",
    20: "BMD",
    21: "AUD",
    22: "ATS",
    23: "BBD",
    24: "BEF",
    25: "BGL",
    26: "KYD",
    27: "CNY",
    28: "CYP",
    29: "CZK",
    30: "DKK",
    31: "DOP",
}
CURRENCY_CODE_BY_ISO: dict[str, int] = {v: k for k, v in CURRENCY_BY_CODE.items()}

#: Record types of CIBER 2.0 ("X0", withdrawn March 2006) and type 70: recognised, not read.
UNSUPPORTED_TYPES: dict[str, str] = {
    "10": "CIBER 2.0 (X0) air charges",
    "11": "CIBER 2.0 (X0) carrier-to-carrier charges",
    "20": "CIBER 2.0 (X0) air and toll charges",
    "30": "CIBER 2.0 (X0) four-bucket charges",
    "40": "CIBER 2.0 (X0) record",
    "50": "CIBER 2.0 (X0) other charges and credits",
    "70": "type 70 (purpose undocumented; signed batch totals)",
}

#: Call Direction (22/32) → TD.57 call event name (ciber.md §9: S1 maps 1 to MO, 2 to MT).
EVENT_KIND_BY_DIRECTION: dict[int, str] = {1: "mobileOriginatedCall", 2: "mobileTerminatedCall"}
#: Event kinds of records that have no TD.57 counterpart, and of 22/32 records whose call
#: direction is neither 1 nor 2 (valid 3-9 per S1, meaning unknown).
EVENT_KIND_BY_TYPE: dict[str, str] = {
    "22": "ciberAirAndToll",
    "32": "ciberCharges",
    "42": "ciberCarrierToCarrier",
    "52": "ciberOtherChargesAndCredits",
}

#: Batch Reject Reason Codes (header positions 34-35), ciber.md §7.1 (S1's checks).
BATCH_REJECT_REASONS: dict[int, str] = {
    2: "header batch creation date invalid",
    3: "header creation date in the future",
    4: "sending carrier SID/BID invalid",
    5: "receiving carrier SID/BID invalid",
    6: "record release number not 02/25",
    7: "currency type not 01-98",
    8: "batch sequence number not 001-999",
    9: "batch reject reason code inconsistent",
    10: "original/return indicator not 1/2/3",
    11: "clearinghouse ID not 0-5",
    12: "settlement period not a valid date",
    15: "batch contents invalid",
    22: "trailer creation date invalid or different from the header",
    23: "trailer sending SID/BID invalid or different from the header",
    25: "trailer record count not 1-9999 or not the number of detail records",
    26: "trailer batch total is not the sum of the detail totals",
    27: "trailer settlement period invalid or different from the header",
    28: "trailer currency invalid or different from the header",
    29: "trailer batch sequence number invalid or different from the header",
    30: "trailer clearinghouse ID invalid or different from the header",
    32: "original batch sequence number invalid",
    33: "original batch creation date invalid",
    34: "original total number of records not 1-9999",
    35: "original total charges negative",
    38: "batch total sign not 0/A/J",
    39: "original total sign invalid",
}

#: (Return Code, Return Reason Code) → inferred meaning, ciber.md §7.2.
RETURN_REASONS: dict[tuple[int, int], str] = {
    (4, 6): "invalid code value",
    (4, 7): "invalid format or value",
    (4, 10): "exceeds submission time limit",
    (4, 11): "duplicate record",
    (4, 15): "no roaming agreement / invalid home carrier",
    (4, 17): "future date",
    (4, 18): "return code inconsistent with the batch indicator",
    (4, 19): "record type not allowed by batch contents",
    (4, 20): "type 70 outside a batch-contents-3 batch",
    (4, 25): "OCC start date after OCC end date",
    (4, 27): "call completion indicator invalid",
    (5, 13): "return submitted too late",
    (6, 14): "invalid field identifier out of range",
}
