"""A file large enough for the multi-piece, multi-thread path gives the same records."""

from __future__ import annotations

import datetime as dt

from clearing.codecs import ciber

DAY = dt.date(2026, 11, 22)


def record(i: int) -> bytes:
    mdn = f"20555{i:05d}"
    return ciber.encode_record(
        "22",
        {
            "home_sid_bid": "60099",
            "msid_indicator": 1,
            "msid": f"45499{i:010d}",
            "mdn": mdn,
            "serving_sid_bid": "04172",
            "total_charges_and_taxes": 100 + i,
            "call_date": DAY - dt.timedelta(days=i % 40),
            "call_direction": 1 + i % 2,
            "caller_id": mdn,
            "called_number": f"1{i:09d}"[: 1 + i % 11],
            "currency_type": 1,
            "air_connect_time": dt.time(i % 24, i % 60, (7 * i) % 60),
            "air_chargeable_time": i % 3600,
            "air_charge": 100 + i,
            "serving_place": f"PLACE{i % 7}",
        },
    )


def test_large_file_with_short_and_bad_lines_in_the_middle() -> None:
    n = 70_001  # more than 4 pieces, so pieces are decoded on two threads
    distinct = [record(i) for i in range(97)]
    lines = [distinct[i % 97] for i in range(n)]
    lines[40_000] = lines[40_000][:397]  # truncated tail: decoded from a padded copy
    lines[50_000] = lines[50_000][:233] + b"0000000X00" + lines[50_000][243:]  # bad air charge
    batches = []
    for b, start in enumerate(range(0, n, 9999)):
        chunk = lines[start : start + 9999]
        total = sum(100 + (i % 97) for i in range(start, start + len(chunk)))
        trailer = ciber.encode_record(
            "98",
            {
                "batch_creation_date": DAY,
                "batch_sequence_number": b + 1,
                "sending_sid_bid": "04172",
                "receiving_sid_bid": "60099",
                "total_number_of_records": len(chunk),
                "batch_total_charges_and_taxes": total,
                "original_total_number_of_records": len(chunk),
                "original_total_charges_and_taxes": total,
                "currency_type": 1,
            },
        )
        header = ciber.encode_batch(
            [],
            creation_date=DAY,
            batch_sequence_number=b + 1,
            sending_sid_bid="04172",
            receiving_sid_bid="60099",
        ).split(b"\r\n")[0]
        batches.append(b"\r\n".join([header, *chunk, trailer]) + b"\r\n")
    decoded = ciber.decode(b"".join(batches))
    rec = decoded.records["22"]
    assert rec.num_rows == n
    small = {i: ciber.decode(record_file(distinct[i])).records["22"].to_pylist()[0] for i in
             range(97)}  # fmt: skip
    meta = ("line", "byte_offset", "byte_length", "batch_index")
    for row in (0, 1, 9998, 9999, 32767, 32768, 40_000, 49_999, 65_535, 65_536, n - 1):
        got = {k: v for k, v in rec.slice(row, 1).to_pylist()[0].items() if k not in meta}
        want = {k: v for k, v in small[row % 97].items() if k not in meta}
        assert got == want, row
    (finding,) = decoded.findings.to_pylist()
    assert finding["field"] == "air_charge"
    assert finding["line"] == 50_000 + 1 + 2 * (50_000 // 9999) + 1
    assert rec.column("air_charge")[50_000].as_py() is None
    assert rec.column("byte_length")[40_000].as_py() == 397
    assert decoded.events.column("event_index").to_pylist() == list(range(n))


def record_file(line: bytes) -> bytes:
    return ciber.encode_batch(
        [], creation_date=DAY, batch_sequence_number=1, sending_sid_bid="04172",
        receiving_sid_bid="60099",
    ).replace(b"\r\n98", b"\r\n" + line + b"\r\n98", 1)  # fmt: skip
