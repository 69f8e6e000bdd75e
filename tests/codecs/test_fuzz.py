"""Fuzzing: mutated TAP, Notification, RAP, ACK and NRT files only ever raise the package's errors.

Each kind gets 10 000 mutated inputs (bit flips, byte changes, insertions, deletions,
truncations, length-byte damage) fed through everything that reads bytes: sniffing, the
full-fidelity decoder with its tag checks, the fast event decoder and `inspect`.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from clearing import inspect
from clearing.codecs import asn1, fast
from clearing.errors import ClearingError

CASES = Path(__file__).parent / "cases"
PER_KIND = 10_000


def _rap_return_batch() -> bytes:
    """A small schema-valid RAP 1.5 ReturnBatch (no public one exists; see SOURCES.md)."""
    stamp = {"localTimeStamp": b"20261122030000", "utcTimeOffset": b"+0800"}
    value = (
        "returnBatch",
        {
            "rapBatchControlInfoRap": {
                "sender": b"HKGCL",
                "recipient": b"FRAF9",
                "rapFileSequenceNumber": b"00001",
                "rapFileCreationTimeStamp": stamp,
                "rapFileAvailableTimeStamp": stamp,
                "specificationVersionNumber": 3,
                "releaseVersionNumber": 12,
                "rapSpecificationVersionNumber": 1,
                "rapReleaseVersionNumber": 5,
            },
            "returnDetails": [
                (
                    "missingReturn",
                    {"startMissingSeqNumber": b"00007", "endMissingSeqNumber": b"00009"},
                ),
                ("stopReturn", {"lastSeqNumber": b"00010"}),
            ],
            "rapAuditControlInfo": {"totalSevereReturnValue": 0, "returnDetailsCount": 2},
        },
    )
    return asn1.encode("rap", value)


SEEDS = {
    "tap": (CASES / "tree-model_tap_3_12_larger_cdr.ber").read_bytes(),
    "tap-indefinite": (CASES / "libxfsx_tap_3_12_valid_most_indef.ber").read_bytes(),
    "notification": (CASES / "libxfsx_tap_notification.ber").read_bytes(),
    "rap": _rap_return_batch(),
    "ack": (CASES / "libxfsx_rap_ack.ber").read_bytes(),
    "nrt": (CASES / "libxfsx_nrt_2_1.ber").read_bytes(),
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(7)
        i = rng.randrange(len(b)) if b else 0
        if not b:
            b.append(rng.randrange(256))
        elif op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            b.insert(i, rng.randrange(256))
        elif op == 3:
            del b[i]
        elif op == 4:
            del b[rng.randrange(len(b)) :]
        elif op == 5:
            b[i] = rng.choice((0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x88, 0xFF))
        else:
            j = rng.randrange(len(b))
            b[i], b[j] = b[j], b[i]
    return bytes(b)


def exercise(data: bytes) -> None:
    try:
        info = asn1.sniff(data)
    except ClearingError:
        return
    for step in (
        lambda: asn1.decode(data),
        lambda: inspect.summarize(data),
        lambda: fast.decode_tap(data, chunk_events=3),
    ):
        with contextlib.suppress(ClearingError):
            step()
    assert info.kind in ("tap", "notification", "rap", "ack", "nrt")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_mutated_inputs_raise_only_package_errors(kind: str) -> None:
    seed = SEEDS[kind]
    asn1.decode(seed)  # the seed itself is valid
    rng = random.Random(f"fuzz-{kind}")
    for n in range(PER_KIND):
        data = mutate(seed, rng)
        try:
            exercise(data)
        except Exception as exc:
            pytest.fail(f"{kind} mutation #{n}: {type(exc).__name__}: {exc!r:.300} on {data.hex()}")
