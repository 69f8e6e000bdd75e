"""Fuzzing the TAP, RAP, ACK, NRT and CIBER decoders with a time and memory bound per input.

Hypothesis draws mutations of real files (the generated samples and the public test cases):
bit flips, byte changes, insertions, deletions, truncations, damaged length octets and
repeated slices (which grow nesting and element counts). Every input must either decode or
raise the package's own :class:`~clearing.errors.ClearingError`, within 5 seconds and with a
peak of allocated memory (tracemalloc) under 64 × its size + 64 MB.

The quick test runs in the normal suite (a few seconds); the ``slow`` one gives Hypothesis a
larger budget (400 examples per decoder family, sized for CI's 90 minutes;
``CLEARING_FUZZ_EXAMPLES=20000`` for a night of fuzzing).
"""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from clearing.codecs import asn1, ciber, fast
from clearing.codecs.rap import read_rap
from clearing.errors import ClearingError

ROOT = Path(__file__).parents[2]
CASES = ROOT / "tests" / "codecs" / "cases"
BER_SEEDS = [
    (ROOT / "data_samples" / "tap" / "CDCHEC9HKGCL03631").read_bytes(),
    (ROOT / "data_samples" / "tap" / "CDJPNJ9HKGCL10266").read_bytes(),  # indefinite lengths
    (ROOT / "data_samples" / "tap" / "CDSGPS9HKGCL00966").read_bytes(),  # notification
    (CASES / "libxfsx_tap_3_12_valid_most_indef.ber").read_bytes(),
    (CASES / "libxfsx_rap_ack.ber").read_bytes(),
    (CASES / "libxfsx_nrt_2_1.ber").read_bytes(),
]
CIBER_SEEDS = [
    p.read_bytes()[:20_000] for p in sorted((ROOT / "data_samples" / "ciber").glob("*.dat"))[:2]
]
SECONDS = 5.0  # linear decoders take well under 1 s on these sizes; slack for a loaded CI


def _ber(data: bytes) -> None:
    """Everything that reads TAP / RAP / ACK / NRT bytes."""
    try:
        info = asn1.sniff(data, lenient=True)
    except ClearingError:
        return
    if info.kind == "tap":
        fast.decode_tap(data, info=info, chunk_events=7)
    elif info.kind == "rap":
        read_rap(data)
    else:
        asn1.decode(data, info=info)


def _ciber(data: bytes) -> None:
    ciber.decode(data, file="CIBER_04172_60099_20261122_951.dat")


class Blob(bytes):
    """A drawn input: bytes shown by size and digest in a failure report.

    Hypothesis prints a failing example's arguments; a mutated file of 150 kB made that
    report fail itself (a "large repr" warning is an error here) and hid the failure. The
    example is replayed from the ``@reproduce_failure`` line it prints (``print_blob``).
    """

    def __repr__(self) -> str:
        return f"<{len(self)} bytes, sha256 {hashlib.sha256(self).hexdigest()[:16]}>"


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            data.append(draw(st.integers(0, 255)))
            continue
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 6))
        if op == 0:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[i] = draw(st.sampled_from([0x00, 0x1F, 0x3F, 0x7F, 0x80, 0x81, 0x84, 0x88, 0xFF]))
        elif op == 2:
            data.insert(i, draw(st.integers(0, 255)))
        elif op == 3:
            del data[i]
        elif op == 4:
            del data[i:]
        elif op == 5:  # repeat a slice: deeper nesting, more elements, longer lines
            n = draw(st.integers(1, 64))
            data[i:i] = bytes(data[i : i + n]) * draw(st.integers(2, 200))
        else:
            j = draw(st.integers(0, len(data) - 1))
            data[i], data[j] = data[j], data[i]
    return Blob(data)


def _bounded(read: Any, data: bytes) -> None:
    """``read(data)`` raises nothing but ClearingError, in time and memory bounds."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        read(data)
    except ClearingError:
        pass
    finally:
        elapsed = time.perf_counter() - t
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < SECONDS, f"{elapsed:.2f} s on {len(data)} bytes"
    assert peak < 64 * len(data) + (64 << 20), f"{peak} bytes allocated on {len(data)} bytes"


def _warm() -> None:
    for seed in BER_SEEDS:
        _ber(seed)  # schemas compiled before the clock runs (the seeds decode: see below)


_QUICK = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    print_blob=True,
    phases=(Phase.explicit, Phase.generate),  # a failure is reported as drawn, unshrunk
)
_LARGE = settings(
    max_examples=int(os.environ.get("CLEARING_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    print_blob=True,
)


@_QUICK
@given(mutated(BER_SEEDS))
def test_ber_decoders_quick(data: bytes) -> None:
    _warm()
    _bounded(_ber, data)


@_QUICK
@given(mutated(CIBER_SEEDS))
def test_ciber_decoder_quick(data: bytes) -> None:
    _bounded(_ciber, data)


@pytest.mark.slow
@_LARGE
@given(mutated(BER_SEEDS))
def test_ber_decoders_large_budget(data: bytes) -> None:
    _warm()
    _bounded(_ber, data)


@pytest.mark.slow
@_LARGE
@given(mutated(CIBER_SEEDS))
def test_ciber_decoder_large_budget(data: bytes) -> None:
    _bounded(_ciber, data)


@pytest.mark.parametrize("seed", range(len(BER_SEEDS)))
def test_the_seeds_are_valid(seed: int) -> None:
    _ber(BER_SEEDS[seed])
