"""One record of every type, typed in by hand from the layout tables of ciber.md §4.

Positions and expected values below are transcribed from ciber.md (1-based, inclusive), not
taken from `specs/ciber/*.csv` or from the writer. Every field the reader returns is checked.
"""

from __future__ import annotations

import datetime as dt

import pytest

from clearing.codecs import ciber

# (first position, text, field name, expected decoded value); gaps are blank filler.
Field = tuple[int, str, str, object]

HEADER_01: list[Field] = [
    (1, "01", "record_type", "01"),
    (3, "251120", "batch_creation_date", dt.date(2025, 11, 20)),
    (9, "029", "batch_sequence_number", 29),
    (12, "06538", "sending_sid_bid", "06538"),
    (17, "85493", "receiving_sid_bid", "85493"),
    (22, "25", "record_release_number", 25),
    (24, "1", "original_return_indicator", "1"),
    (25, "02", "currency_type", 2),
    (27, "031015", "settlement_period", dt.date(2003, 10, 15)),
    (33, "2", "clearinghouse_id", 2),
    (34, "00", "batch_reject_reason_code", 0),
    (36, "1", "batch_contents", 1),
    (37, "208040784     EX0433", "local_carrier_reserved", "208040784     EX0433"),
]
# record 22 total = air 1234 + other 100 + toll 2500 + state 300 + local 45 = 4179 cents
DETAIL_22: list[Field] = [
    (1, "22", "record_type", "22"),
    (3, "0", "return_code", 0),
    (4, "00", "return_reason_code", 0),
    (6, "000", "invalid_field_identifier", 0),
    (9, "85493", "home_sid_bid", "85493"),
    (14, "1", "msid_indicator", 1),
    (15, "310012345678901", "msid", "310012345678901"),
    (30, "10", "mdn_length", 10),
    (32, "205555012300000", "mdn", "2055550123"),
    (47, "1", "esn_indicator", 1),
    (48, "1234567890100000000", "esn", "1234567890100000000"),
    (67, "06538", "serving_sid_bid", "06538"),
    (72, "0000004179", "total_charges_and_taxes", 4179),
    (83, "0000000300", "total_state_province_taxes", 300),
    (94, "0000000045", "total_local_other_taxes", 45),
    (105, "251119", "call_date", dt.date(2025, 11, 19)),
    (111, "1", "call_direction", 1),
    (112, "2", "call_completion_indicator", 2),
    (113, "2", "call_termination_indicator", 2),
    (114, "10", "caller_id_length", 10),
    (116, "205555012300000", "caller_id", "2055550123"),
    (131, "11", "called_number_length", 11),
    (133, "442079460000000", "called_number", "44207946000"),
    (148, "10", "lrn_length", 10),
    (150, "205999000000000", "lrn", "2059990000"),
    (165, "00", "tldn_length", 0),
    (167, "000000000000000", "tldn", None),
    (182, "02", "currency_type", 2),
    (186, "029", "original_batch_sequence_number", 29),
    (189, "CELL0042   ", "initial_cell_site", "CELL0042"),
    (200, "08", "time_zone_indicator", 8),
    (202, "1", "daylight_savings_indicator", 1),
    (203, "0000004096", "message_accounting_digits", 4096),
    (213, "134502", "air_connect_time", dt.time(13, 45, 2)),
    (219, "000230", "air_chargeable_time", 150),
    (225, "000217", "air_elapsed_time", 137),
    (231, "01", "air_rate_period", 1),
    (233, "1", "air_multi_rate_period", 1),
    (234, "0000001234", "air_charge", 1234),
    (245, "05", "other_charge_no_1_indicator", 5),
    (247, "0000000100", "other_charge_no_1", 100),
    (271, "PRINTED CALL 1 ", "printed_call", "PRINTED CALL 1"),
    (286, "00", "fraud_indicator", 0),
    (288, "0", "fraud_sub_indicator", 0),
    (289, "D    ", "special_features_used", "D"),
    (294, "LONDON    ", "called_place", "LONDON"),
    (304, "  ", "called_state_province", ""),
    (306, "GBR", "called_country", "GBR"),
    (309, "BIRMINGHAM", "serving_place", "BIRMINGHAM"),
    (319, "AL", "serving_state_province", "AL"),
    (321, "USA", "serving_country", "USA"),
    (324, "134510", "toll_connect_time", dt.time(13, 45, 10)),
    (330, "000300", "toll_chargeable_time", 180),
    (336, "000209", "toll_elapsed_time", 129),
    (342, "01", "toll_tariff_descriptor", 1),
    (344, "02", "toll_rate_period", 2),
    (346, "1", "toll_multi_rate_period", 1),
    (347, "1", "toll_rate_class", 1),
    (348, "06", "toll_rating_point_length", 6),
    (350, "2055550000", "toll_rating_point", "205555"),
    (360, "0000002500", "toll_charge", 2500),
    (371, "0000000200", "toll_state_province_taxes", 200),
    (382, "0000000040", "toll_local_taxes", 40),
    (393, "10001", "toll_network_carrier_id", "10001"),
    (398, "OUR REF 7", "local_carrier_reserved", "OUR REF 7"),
]
# record 32 total = charges 500 + 250 + 0 + 75 + other 0 + taxes 60 + 5 = 890
DETAIL_32: list[Field] = [
    (1, "32", "record_type", "32"),
    (3, "0", "return_code", 0),
    (4, "00", "return_reason_code", 0),
    (6, "000", "invalid_field_identifier", 0),
    (9, "85493", "home_sid_bid", "85493"),
    (14, "2", "msid_indicator", 2),
    (15, "205555012300000", "msid", "205555012300000"),
    (30, "00", "mdn_length", 0),
    (32, "000000000000000", "mdn", None),
    (47, "3", "esn_indicator", 3),
    (48, "9100000000000000000", "esn", "9100000000000000000"),
    (67, "06538", "serving_sid_bid", "06538"),
    (72, "0000000890", "total_charges_and_taxes", 890),
    (83, "0000000060", "total_state_province_taxes", 60),
    (94, "0000000005", "total_local_other_taxes", 5),
    (105, "991231", "call_date", dt.date(1999, 12, 31)),
    (111, "2", "call_direction", 2),
    (112, "3", "call_completion_indicator", 3),
    (113, "4", "call_termination_indicator", 4),
    (114, "07", "caller_id_length", 7),
    (116, "555123400000000", "caller_id", "5551234"),
    (131, "15", "called_number_length", 15),
    (133, "123456789012345", "called_number", "123456789012345"),
    (148, "00", "lrn_length", 0),
    (150, "000000000000000", "lrn", None),
    (165, "10", "tldn_length", 10),
    (167, "205777000100000", "tldn", "2057770001"),
    (182, "02", "currency_type", 2),
    (186, "029", "original_batch_sequence_number", 29),
    (189, "           ", "initial_cell_site", ""),
    (200, "99", "time_zone_indicator", 99),
    (202, "2", "daylight_savings_indicator", 2),
    (203, "1048576000", "message_accounting_digits", 1048576000),
    (213, "15", "charge_no_1_indicator", 15),
    (215, "000001", "charge_no_1_connect_time", dt.time(0, 0, 1)),
    (221, "000100", "charge_no_1_chargeable_time", 60),
    (227, "999959", "charge_no_1_elapsed_time", 9999 * 60 + 59),
    (233, "03", "charge_no_1_rate_period", 3),
    (235, "2", "charge_no_1_multi_rate_period", 2),
    (236, "1", "charge_no_1_tax_surcharge_indicator", 1),
    (237, "0000000500", "charge_no_1", 500),
    (248, "19", "charge_no_2_indicator", 19),
    (250, "235959", "charge_no_2_connect_time", dt.time(23, 59, 59)),
    (256, "000010", "charge_no_2_chargeable_time", 10),
    (262, "000011", "charge_no_2_elapsed_time", 11),
    (268, "04", "charge_no_2_rate_period", 4),
    (270, "1", "charge_no_2_multi_rate_period", 1),
    (271, "3", "charge_no_2_tax_surcharge_indicator", 3),
    (272, "0000000250", "charge_no_2", 250),
    (283, "00", "charge_no_3_indicator", 0),
    (285, "000000", "charge_no_3_connect_time", dt.time(0, 0, 0)),
    (291, "000000", "charge_no_3_chargeable_time", 0),
    (297, "000000", "charge_no_3_elapsed_time", 0),
    (303, "00", "charge_no_3_rate_period", 0),
    (305, "0", "charge_no_3_multi_rate_period", 0),
    (306, "0", "charge_no_3_tax_surcharge_indicator", 0),
    (307, "0000000000", "charge_no_3", 0),
    (318, "21", "charge_no_4_indicator", 21),
    (320, "120000", "charge_no_4_connect_time", dt.time(12, 0, 0)),
    (326, "000001", "charge_no_4_chargeable_time", 1),
    (332, "000002", "charge_no_4_elapsed_time", 2),
    (338, "05", "charge_no_4_rate_period", 5),
    (340, "0", "charge_no_4_multi_rate_period", 0),
    (341, "7", "charge_no_4_tax_surcharge_indicator", 7),
    (342, "0000000075", "charge_no_4", 75),
    (353, "MOBILE    ", "serving_place", "MOBILE"),
    (363, "AL", "serving_state_province", "AL"),
    (365, "USA", "serving_country", "USA"),
    (368, "T    ", "special_features_used", "T"),
    (373, "00", "other_charge_no_1_indicator", 0),
    (375, "0000000000", "other_charge_no_1", 0),
    (399, "SMS            ", "printed_call", "SMS"),
    (414, "35", "fraud_indicator", 35),
    (416, "1", "fraud_sub_indicator", 1),
    (417, "1", "features_used_after_handoff_indicator", 1),
    (418, "X" * 75, "local_carrier_reserved", "X" * 75),
]
# record 52 total = OCC 299 + other 0 + taxes 0 = 299
DETAIL_52: list[Field] = [
    (1, "52", "record_type", "52"),
    (3, "0", "return_code", 0),
    (4, "00", "return_reason_code", 0),
    (6, "000", "invalid_field_identifier", 0),
    (9, "85493", "home_sid_bid", "85493"),
    (14, "1", "msid_indicator", 1),
    (15, "310012345678902", "msid", "310012345678902"),
    (30, "11", "mdn_length", 11),
    (32, "120555501240000", "mdn", "12055550124"),
    (47, "0", "esn_indicator", 0),
    (48, "0000000000000000000", "esn", "0000000000000000000"),
    (67, "06538", "serving_sid_bid", "06538"),
    (72, "0000000299", "total_charges_and_taxes", 299),
    (83, "0000000000", "total_state_province_taxes", 0),
    (94, "0000000000", "total_local_other_taxes", 0),
    (105, "251118", "occ_start_date", dt.date(2025, 11, 18)),
    (111, "000000", "connect_time", dt.time(0, 0, 0)),
    (117, "251119", "occ_end_date", dt.date(2025, 11, 19)),
    (123, "1", "occ_interval_indicator", 1),
    (124, "0000000299", "occ_charge", 299),
    (135, "DAILY ROAMING ACCESS FEE ", "occ_description", "DAILY ROAMING ACCESS FEE"),
    (160, "02", "currency_type", 2),
    (164, "029", "original_batch_sequence_number", 29),
    (167, "C1         ", "initial_cell_site", "C1"),
    (178, "05", "time_zone_indicator", 5),
    (180, "0", "daylight_savings_indicator", 0),
    (181, "0000000000", "message_accounting_digits", 0),
    (191, "A", "record_use_indicator", "A"),
    (192, "HUNTSVILLE", "serving_place", "HUNTSVILLE"),
    (202, "AL", "serving_state_province", "AL"),
    (204, "USA", "serving_country", "USA"),
    (207, "00", "other_charge_no_1_indicator", 0),
    (209, "0000000000", "other_charge_no_1", 0),
    (233, "00", "fraud_indicator", 0),
    (235, "0", "fraud_sub_indicator", 0),
    (236, "251120", "record_create_date", dt.date(2025, 11, 20)),
    (242, "01", "sequence_indicator", 1),
    (244, "", "local_carrier_reserved", ""),
]
TRAILER_98: list[Field] = [
    (1, "98", "record_type", "98"),
    (3, "251120", "batch_creation_date", dt.date(2025, 11, 20)),
    (9, "029", "batch_sequence_number", 29),
    (12, "06538", "sending_sid_bid", "06538"),
    (17, "85493", "receiving_sid_bid", "85493"),
    (22, "0003", "total_number_of_records", 3),
    (26, "000000005368", "batch_total_charges_and_taxes", 4179 + 890 + 299),
    (38, "031015", "settlement_period", dt.date(2003, 10, 15)),
    (44, "2", "clearinghouse_id", 2),
    (45, "0", "batch_total_charges_and_taxes_sign", "0"),
    (46, "0", "original_total_charges_and_taxes_sign", "0"),
    (50, "0003", "original_total_number_of_records", 3),
    (54, "000000005368", "original_total_charges_and_taxes", 5368),
    (74, "02", "currency_type", 2),
    (76, "TRAILER RESERVED", "local_carrier_reserved", "TRAILER RESERVED"),
]
HEADER_02: list[Field] = [
    (1, "02", "record_type", "02"),
    (3, "260102", "batch_creation_date", dt.date(2026, 1, 2)),
    (9, "999", "batch_sequence_number", 999),
    (12, "31103", "sending_clearinghouse_bid", "31103"),
    (17, "00123", "original_serving_sid_bid", "00123"),
    (22, "25", "record_release_number", 25),
    (24, "1", "original_return_indicator", "1"),
    (25, "01", "currency_type", 1),
    (27, "260115", "settlement_period", dt.date(2026, 1, 15)),
    (33, "2", "clearinghouse_id", 2),
    (34, "00", "batch_reject_reason_code", 0),
    (36, "00456", "original_home_sid_bid", "00456"),
    (41, "2", "batch_contents", 2),
]
# record 42 total = other 10 + charges 100 + 200 + 300 + 400 + taxes 0 = 1010
DETAIL_42: list[Field] = [
    (1, "42", "record_type", "42"),
    (3, "0", "return_code", 0),
    (4, "00", "return_reason_code", 0),
    (6, "000", "invalid_field_identifier", 0),
    (9, "00456", "receiving_sid_bid", "00456"),
    (14, "2", "msid_indicator", 2),
    (15, "205555987600000", "msid", "205555987600000"),
    (30, "10", "mdn_length", 10),
    (32, "205555987600000", "mdn", "2055559876"),
    (47, "00001234", "transaction_code_i", "00001234"),
    (55, "11", "translation_code_ii", 11),
    (67, "00123", "sending_sid_bid", "00123"),
    (72, "0000001010", "total_charges_and_taxes", 1010),
    (83, "0000000000", "total_state_province_taxes", 0),
    (94, "0000000000", "total_local_other_taxes", 0),
    (105, "260101", "call_date", dt.date(2026, 1, 1)),
    (111, "00", "lrn_length", 0),
    (113, "000000000000000", "lrn", None),
    (128, "01", "currency_type", 1),
    (132, "017", "original_batch_sequence_number", 17),
    (135, "CLLI0001   ", "initial_cell_site", "CLLI0001"),
    (146, "37", "time_zone_indicator", 37),
    (148, "0", "daylight_savings_indicator", 0),
    (149, "02", "other_charge_no_1_indicator", 2),
    (151, "0000000010", "other_charge_no_1", 10),
    *(
        item
        for n, base in ((1, 175), (2, 210), (3, 245), (4, 280))
        for item in (
            (base, f"{n:02d}", f"charge_no_{n}_indicator", n),
            (base + 2, f"0{n}0000", f"charge_no_{n}_connect_time", dt.time(n, 0, 0)),
            (base + 8, f"00{n:02d}00", f"charge_no_{n}_chargeable_time", n * 60),
            (base + 14, f"00{n:02d}30", f"charge_no_{n}_elapsed_time", n * 60 + 30),
            (base + 20, f"{n:02d}", f"charge_no_{n}_rate_period", n),
            (base + 22, "1", f"charge_no_{n}_multi_rate_period", 1),
            (base + 23, "0", f"charge_no_{n}_tax_surcharge_indicator", 0),
            (base + 24, f"{n * 100:010d}", f"charge_no_{n}", n * 100),
        )
    ),
    (315, "C2C", "local_carrier_reserved", "C2C"),
]
TRAILER_97: list[Field] = [
    (1, "97", "record_type", "97"),
    (3, "260102", "batch_creation_date", dt.date(2026, 1, 2)),
    (9, "999", "batch_sequence_number", 999),
    (12, "31103", "sending_clearinghouse_bid", "31103"),
    (17, "00123", "original_serving_sid_bid", "00123"),
    (22, "0001", "total_number_of_records", 1),
    (26, "000000001010", "batch_total_charges_and_taxes", 1010),
    (38, "260115", "settlement_period", dt.date(2026, 1, 15)),
    (44, "2", "clearinghouse_id", 2),
    (45, "0", "batch_total_charges_and_taxes_sign", "0"),
    (46, "0", "original_total_charges_and_taxes_sign", "0"),
    (50, "00456", "original_home_sid_bid", "00456"),
    (55, "016", "original_batch_sequence_number", 16),
    (58, "251231", "original_batch_creation_date", dt.date(2025, 12, 31)),
    (64, "0001", "original_total_number_of_records", 1),
    (68, "000000001010", "original_total_charges_and_taxes", 1010),
    (80, "01", "currency_type", 1),
]
LENGTHS = {"01": 200, "02": 200, "98": 200, "97": 200, "22": 547, "32": 567, "42": 464, "52": 393}


def build(fields: list[Field], length: int) -> str:
    line = [" "] * length
    for pos, text, _name, _value in fields:
        assert pos - 1 + len(text) <= length
        line[pos - 1 : pos - 1 + len(text)] = text
    return "".join(line)


Records = list[tuple[str, list[Field]]]  # (record type, its fields), in file order
FILE_A: Records = [("01", HEADER_01), ("22", DETAIL_22), ("32", DETAIL_32), ("52", DETAIL_52),
                   ("98", TRAILER_98)]  # fmt: skip
FILE_B: Records = [("02", HEADER_02), ("42", DETAIL_42), ("97", TRAILER_97)]


@pytest.mark.parametrize("records", [FILE_A, FILE_B], ids=["01-22-32-52-98", "02-42-97"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_every_field_of_every_type(records: Records, eol: str) -> None:
    data = "".join(build(f, LENGTHS[rt]) + eol for rt, f in records).encode("ascii")
    decoded = ciber.decode(data, file="hand.cbr")
    assert decoded.findings.num_rows == 0, decoded.findings.to_pylist()
    for rt, fields in records:
        (row,) = decoded.records[rt].to_pylist()
        meta = {"line", "byte_offset", "byte_length", "batch_index"}
        assert set(row) - meta == {name for _p, _t, name, _v in fields}
        for _pos, _text, name, expected in fields:
            assert row[name] == expected, (rt, name)
        assert row["byte_length"] == LENGTHS[rt]


def test_event_mapping_of_the_hand_built_records() -> None:
    data = "".join(build(f, LENGTHS[rt]) + "\r\n" for rt, f in FILE_A).encode("ascii")
    events = ciber.read(data).to_pylist()
    assert [e["event_kind"] for e in events] == [
        "mobileOriginatedCall",  # 22, call direction 1
        "mobileTerminatedCall",  # 32, call direction 2
        "ciberOtherChargesAndCredits",  # 52
    ]
    e22, e32, e52 = events
    assert e22["source_format"] == "ciber"
    assert (e22["sender"], e22["recipient"], e22["file_sequence_number"]) == (
        "06538",
        "85493",
        "029",
    )
    assert e22["event_index"] == 0
    assert e52["event_index"] == 2
    assert e22["byte_offset"] == 202
    assert e22["byte_length"] == 547
    assert e32["byte_offset"] == 202 + 549
    assert e22["imsi"] == "310012345678901"
    assert e32["imsi"] is None
    assert e22["msisdn"] == "2055550123"
    assert e22["calling_number"] == "2055550123"
    assert e22["called_number"] == e22["dialled_digits"] == "44207946000"
    assert e32["dialled_digits"] is None  # mobile terminated
    assert e22["local_start"] == dt.datetime(2025, 11, 19, 13, 45, 2)
    assert e32["local_start"] == dt.datetime(1999, 12, 31, 0, 0, 1)
    assert e52["local_start"] == dt.datetime(2025, 11, 18, 0, 0, 0)
    assert e22["duration"] == 150
    assert e32["duration"] == 60
    assert e52["duration"] is None
    assert e22["serving_network"] == "06538"
    assert e22["currency"] == "CAD"
    assert e22["charge_scale"] == 2
    # charge excludes taxes (like TAP chargeType 00): 4179 - 300 - 45
    assert (e22["charge"], e22["tax"]) == (3834, 345)
    assert (e22["charge_airtime"], e22["charge_toll"]) == (1234, 2500)
    assert (e32["charge"], e32["tax"]) == (825, 65)
    assert (e52["charge"], e52["tax"]) == (299, 0)
    assert e22["tele_service_code"] == "11"


def test_inspect_summary_of_the_hand_built_file() -> None:
    data = "".join(build(f, LENGTHS[rt]) + "\n" for rt, f in FILE_A + FILE_B).encode("ascii")
    summary = ciber.inspect_summary(data, file="hand.cbr")
    assert summary["kind"] == "ciber"
    assert summary["event_count"] == 4
    assert summary["returned_records"] == 0
    b1, b2 = summary["batches"]
    assert b1["sending_sid_bid"] == "06538"
    assert b1["receiving_sid_bid"] == "85493"
    assert b1["batch_sequence_number"] == 29
    assert b1["record_count"] == 3
    assert b1["total_charges_and_taxes"] == 5368
    assert b1["records_by_type"] == {"22": 1, "32": 1, "52": 1}
    assert b1["currency"] == "CAD"
    assert b2["sending_sid_bid"] == "00123"
    assert b2["receiving_sid_bid"] == "00456"
    assert b2["records_by_type"] == {"42": 1}
    assert b2["currency"] == "USD"
    assert b2["batch_sequence_number"] == 999
