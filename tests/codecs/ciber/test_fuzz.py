"""Mutated CIBER files give either a result or the package's own DecodeError, nothing else."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from clearing.codecs import ciber
from clearing.errors import DecodeError

N_INPUTS = 10_000


def seed_file() -> bytes:
    day = dt.date(2026, 11, 22)
    common = {"home_sid_bid": "85493", "msid_indicator": 2, "msid": "2055550123",
              "mdn": "2055550123", "serving_sid_bid": "06538", "currency_type": 1}  # fmt: skip
    d22 = {**common, "total_charges_and_taxes": 375, "total_state_province_taxes": 25,
           "call_date": day, "call_direction": 2, "caller_id": "18005551212",
           "called_number": "2055550123", "air_connect_time": dt.time(9, 15),
           "air_chargeable_time": 125, "air_charge": 350}  # fmt: skip
    d32 = {**common, "total_charges_and_taxes": 20, "call_date": day, "call_direction": 1,
           "charge_no_1_indicator": 15, "charge_no_1": 20}  # fmt: skip
    d52 = {**common, "total_charges_and_taxes": 299, "occ_start_date": day,
           "occ_end_date": day, "occ_charge": 299, "occ_description": "DAILY ACCESS"}  # fmt: skip
    a = ciber.encode_batch([("22", d22), ("32", d32), ("52", d52)], creation_date=day,
                           batch_sequence_number=1, sending_sid_bid="06538",
                           receiving_sid_bid="85493")  # fmt: skip
    b = ciber.encode_batch([("22", d22)] * 2, creation_date=day, batch_sequence_number=2,
                           sending_sid_bid="06538", receiving_sid_bid="85493",
                           line_ending=b"\n")  # fmt: skip
    return a + b


def mutate(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    kind = rng.randrange(9)
    i = rng.randrange(len(lines))
    line = lines[i]
    if kind == 0 and line:  # any byte value anywhere in a line
        p = rng.randrange(len(line))
        lines[i] = line[:p] + bytes([rng.randrange(256)]) + line[p + 1 :]
    elif kind == 1 and line:  # a printable character
        p = rng.randrange(len(line))
        lines[i] = line[:p] + bytes([rng.randrange(0x20, 0x7F)]) + line[p + 1 :]
    elif kind == 2:  # truncate a line
        lines[i] = line[: rng.randrange(len(line) + 1)]
    elif kind == 3:  # delete or insert a character (shifts every later field)
        p = rng.randrange(len(line) + 1)
        lines[i] = line[:p] + line[p + 1 :] if rng.random() < 0.5 else line[:p] + b"7" + line[p:]
    elif kind == 4:  # drop, duplicate or swap lines
        j = rng.randrange(len(lines))
        op = rng.randrange(3)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(j, line)
        else:
            lines[i], lines[j] = lines[j], lines[i]
    elif kind == 5 and len(line) > 2:  # change the record type
        lines[i] = rng.choice([b"01", b"02", b"22", b"32", b"42", b"52", b"97", b"98",
                               b"20", b"70", b"  ", b"9"]) + line[2:]  # fmt: skip
    elif kind == 6 and line:  # a run of digits somewhere (plausible but wrong values)
        p = rng.randrange(len(line))
        n = rng.randrange(1, 12)
        lines[i] = line[:p] + bytes(rng.choice(b"0123456789") for _ in range(n)) + line[p + n :]
    elif kind == 7:  # pad a line with blanks or junk
        lines[i] = line + (b" " if rng.random() < 0.5 else b"X") * rng.randrange(1, 300)
    else:  # several mutations at once
        for _ in range(rng.randrange(2, 5)):
            data = mutate(rng, b"\n".join(lines))
            lines = data.split(b"\n")
    return b"\n".join(lines)


@pytest.mark.slow
def test_mutated_inputs_only_raise_decode_errors() -> None:
    rng = random.Random(20261122)
    base = seed_file()
    assert ciber.decode(base).findings.num_rows == 0
    outcomes = {"ok": 0, "findings": 0}
    errors: list[tuple[DecodeError, int]] = []
    for _ in range(N_INPUTS):
        data = mutate(rng, base)
        try:
            decoded = ciber.decode(data, file="fuzz.cbr")
            summary = ciber.inspect_summary(data) if rng.random() < 0.05 else None
        except DecodeError as exc:
            errors.append((exc, len(data)))
            continue
        assert decoded.events.num_rows == sum(decoded.batches.column("detail_count").to_pylist())
        if summary is not None:
            assert summary["event_count"] == decoded.events.num_rows
        outcomes["findings" if decoded.findings.num_rows else "ok"] += 1
    outcomes["error"] = len(errors)
    # every error names the file, a line and a byte offset inside the input
    unlocated = [
        str(e)
        for e, size in errors
        if e.file != "fuzz.cbr"
        or not (e.path or "").startswith("line ")
        or e.offset is None
        or not 0 <= e.offset <= size
    ]
    assert not unlocated, unlocated[:5]
    # the mutations reach all three outcomes
    assert min(outcomes.values()) > 100, outcomes
