"""The sample generator's BER writer writes the bytes of asn1tools (and of to_indefinite)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from clearing.codecs import asn1
from clearing.samples import tap
from clearing.samples.encoder import encoder

DAY = date(2026, 11, 22)


@pytest.mark.parametrize("partner", tap.PARTNERS, ids=lambda p: f"{p.tadig}-{p.encoding}")
def test_same_bytes_as_asn1tools(partner: tap.Partner) -> None:
    builder = tap._FileBuilder(partner, DAY, 3, late_share=0.05)
    value = builder.notification() if partner.notification_only else builder.transfer_batch(400)
    # the reference: asn1tools, then the indefinite-length re-encoding
    assert tap._fast_encode(partner, value) == tap._encode(partner, value)


@pytest.mark.parametrize("mode", ["definite", "indefinite-some", "indefinite-all"])
def test_notification_and_every_mode(mode: tap.Encoding) -> None:
    partner = next(p for p in tap.PARTNERS if p.notification_only)
    value = tap._FileBuilder(partner, DAY, 1).notification()
    write = encoder(asn1.spec("notification").types["Notification"], mode)
    assert write is not None
    assert write(value[1]) == tap._encode(replace(partner, encoding=mode), value)


@pytest.mark.parametrize("size", [127, 128, 255, 256, 70_000])
@pytest.mark.parametrize("mode", ["definite", "indefinite-some"])
def test_long_octets_and_lengths(size: int, mode: tap.Encoding) -> None:
    partner = replace(next(p for p in tap.PARTNERS if p.notification_only), encoding=mode)
    value = tap._FileBuilder(partner, DAY, 1).notification()
    value[1]["sender"] = b"X" * size  # long forms of the length, in the element and around it
    assert tap._fast_encode(partner, value) == tap._encode(partner, value)


def test_a_value_the_writer_cannot_take_is_asn1tools_error() -> None:
    partner = tap.PARTNERS[0]
    builder = tap._FileBuilder(partner, DAY, 1)
    kind, batch = builder.transfer_batch(3)
    batch["callEventDetails"][0] = ("noSuchEvent", {})
    with pytest.raises(Exception, match="noSuchEvent"):
        tap._fast_encode(partner, (kind, batch))
