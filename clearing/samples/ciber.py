"""Synthetic CIBER-in traffic: what North-American CDMA partners send us about our roamers.

We are the home carrier of the roamers; CIBER names us by a SID/BID, :data:`HOME_SID_BID`
(fictional). Two CDMA partners serve them and send one file a day each:

* ``04172`` "Verde Wireless" (US, USD, CR LF): two batches a day — air-and-toll calls (22)
  plus a daily roaming access fee (52), then SMS/data charges (32). **Planted fault:** one
  type-22 record has a letter in its Air Charge (a record return 4/07, field 026).
* ``16425`` "Nordlys Mobile" (Canada, CAD, LF, reserved tails cut off as some partners do):
  one batch of calls a day. **Planted fault:** the trailer's batch total is 1.00 CAD more
  than the sum of its records (a batch reject, reason 26).

Subscribers are the TAP world's (:func:`clearing.samples.tap.home_subscribers`): IMSI
``45499…`` (MSID indicator 1), MSISDN ``852…``. Money is integer cents: air time per
started minute, toll per started minute, state and local tax rounded half up.

Batch sequence numbers run per (sending, receiving) pair, one or two a day from a
per-partner base, wrapping 999 → 001. File name: ``CIBER_<sending>_<receiving>_<YYYYMMDD>
_<first batch sequence>.dat``. Same ``(seed, day)`` → same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from clearing.codecs.ciber import encode_batch
from clearing.money import round_div
from clearing.names import CiberName
from clearing.samples.tap import home_subscribers

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CIBER_PARTNERS", "HOME_SID_BID", "CiberPartner", "ciber_file_name", "generate_ciber"]

HOME_SID_BID = "60099"


@dataclass(frozen=True, slots=True)
class CiberPartner:
    """A CDMA partner (serving carrier) sending us CIBER-in."""

    sid_bid: str
    name: str
    currency_type: int  # CIBER currency code: 01 USD, 02 CAD
    state: str
    places: tuple[str, ...]
    air_cents_per_minute: int
    toll_cents_per_minute: int
    state_tax_ppm: int  # parts per million
    local_tax_ppm: int
    batches_per_day: int
    seq_base: int
    line_ending: bytes
    cut_tails: bool


CIBER_PARTNERS = (
    CiberPartner("04172", "Verde Wireless", 1, "AL", ("BIRMINGHAM", "MOBILE", "HUNTSVILLE"),
                 45, 20, 40_000, 22_500, 2, 300, b"\r\n", False),
    CiberPartner("16425", "Nordlys Mobile", 2, "BC", ("VANCOUVER", "VICTORIA", "KELOWNA"),
                 60, 35, 70_000, 50_000, 1, 700, b"\n", True),
)  # fmt: skip


def _seq(partner: CiberPartner, day: date, n: int) -> int:
    days = (day - date(2026, 1, 1)).days
    return (partner.seq_base + days * partner.batches_per_day + n) % 999 + 1


def ciber_file_name(partner: CiberPartner, day: date) -> str:
    """``CIBER_<sending>_<receiving>_<YYYYMMDD>_<first batch sequence>.dat``."""
    first = _seq(partner, day, 0)
    return str(CiberName(partner.sid_bid, HOME_SID_BID, day, first))


class _Partner:
    def __init__(self, partner: CiberPartner, seed: int, day: date) -> None:
        self.p = partner
        self.day = day
        self.rng = random.Random(f"ciber:{seed}:{day.isoformat()}:{partner.sid_bid}")
        self.roamers = random.Random(f"ciber-roamers:{partner.sid_bid}").sample(
            home_subscribers(), 12
        )

    def _common(self, seq: int) -> dict[str, Any]:
        imsi, msisdn = self.rng.choice(self.roamers)
        return {
            "home_sid_bid": HOME_SID_BID,
            "msid_indicator": 1,
            "msid": imsi,
            "mdn": msisdn,
            "esn_indicator": 3,
            "esn": f"{self.rng.randrange(10**14):014d}",
            "serving_sid_bid": self.p.sid_bid,
            "currency_type": self.p.currency_type,
            "original_batch_sequence_number": seq,
            "initial_cell_site": f"C{self.rng.randrange(1, 400):04d}",
            "time_zone_indicator": 99,
            "serving_place": self.rng.choice(self.p.places),
            "serving_state_province": self.p.state,
            "serving_country": "USA" if self.p.currency_type == 1 else "CAN",
        }

    def _taxes(self, amount: int) -> tuple[int, int]:
        return (
            round_div(amount * self.p.state_tax_ppm, 10**6),
            round_div(amount * self.p.local_tax_ppm, 10**6),
        )

    def call(self, seq: int) -> tuple[str, dict[str, Any]]:
        start = datetime.combine(self.day - timedelta(days=1), time()) + timedelta(
            seconds=self.rng.randrange(86400)
        )
        seconds = self.rng.randrange(5, 1800)
        minutes = -(-seconds // 60)
        mo = self.rng.random() < 0.6
        international = mo and self.rng.random() < 0.3
        air = minutes * self.p.air_cents_per_minute
        toll = minutes * self.p.toll_cents_per_minute if international else 0
        state, local = self._taxes(air + toll)
        values = self._common(seq)
        home = values["mdn"]
        other = f"1{self.rng.randrange(200, 999)}{self.rng.randrange(10**7):07d}"
        dialled = f"852{self.rng.randrange(10**8):08d}" if international else other
        values.update(
            total_charges_and_taxes=air + toll + state + local,
            total_state_province_taxes=state,
            total_local_other_taxes=local,
            call_date=start.date(),
            call_direction=1 if mo else 2,
            call_completion_indicator=2,
            call_termination_indicator=2,
            caller_id=home if mo else other,
            called_number=dialled if mo else home,
            air_connect_time=start.time(),
            air_chargeable_time=minutes * 60,
            air_elapsed_time=seconds,
            air_rate_period=1,
            air_multi_rate_period=1,
            air_charge=air,
            special_features_used="0",
            called_place="HONG KONG" if international else ("INCOMING" if not mo else "LOCAL"),
            called_country="HKG" if international else values["serving_country"],
            toll_connect_time=start.time() if international else None,
            toll_chargeable_time=minutes * 60 if international else 0,
            toll_elapsed_time=seconds if international else 0,
            toll_tariff_descriptor=1 if international else 0,
            toll_rate_period=1 if international else 0,
            toll_rate_class=1 if international else 0,
            toll_charge=toll,
            toll_state_province_taxes=state if international else 0,
            toll_local_taxes=local if international else 0,
            toll_network_carrier_id="10001" if international else "99001",
        )
        return "22", values

    def daily_fee(self, seq: int) -> tuple[str, dict[str, Any]]:
        fee = 299 if self.p.currency_type == 1 else 399
        state, local = self._taxes(fee)
        values = self._common(seq)
        values.update(
            total_charges_and_taxes=fee + state + local,
            total_state_province_taxes=state,
            total_local_other_taxes=local,
            occ_start_date=self.day - timedelta(days=1),
            occ_end_date=self.day - timedelta(days=1),
            occ_interval_indicator=1,
            occ_charge=fee,
            occ_description="DAILY ROAMING ACCESS FEE",
            record_use_indicator="1",
            record_create_date=self.day,
        )
        return "52", values

    def message(self, seq: int) -> tuple[str, dict[str, Any]]:
        start = datetime.combine(self.day - timedelta(days=1), time()) + timedelta(
            seconds=self.rng.randrange(86400)
        )
        charge = 15 if self.rng.random() < 0.7 else 10 * self.rng.randrange(1, 30)
        state, local = self._taxes(charge)
        values = self._common(seq)
        values.update(
            total_charges_and_taxes=charge + state + local,
            total_state_province_taxes=state,
            total_local_other_taxes=local,
            call_date=start.date(),
            call_direction=1,
            call_completion_indicator=2,
            call_termination_indicator=2,
            charge_no_1_indicator=15,
            charge_no_1_connect_time=start.time(),
            charge_no_1_tax_surcharge_indicator=3,
            charge_no_1=charge,
            special_features_used="0",
        )
        return "32", values


def _plant_air_charge_letter(batch: bytes, line_ending: bytes) -> bytes:
    """Put a letter in the Air Charge (positions 234-243) of the first type-22 record."""
    lines = batch.split(line_ending)
    for i, line in enumerate(lines):
        if line.startswith(b"22"):
            lines[i] = line[:239] + b"O" + line[240:]
            break
    return line_ending.join(lines)


def _plant_trailer_total(batch: bytes, line_ending: bytes, cents: int) -> bytes:
    """Add ``cents`` to the trailer's Batch Total Charges and Taxes (positions 26-37)."""
    lines = batch.split(line_ending)
    trailer = lines[-2]
    total = int(trailer[25:37]) + cents
    lines[-2] = trailer[:25] + f"{total:012d}".encode() + trailer[37:]
    return line_ending.join(lines)


def _cut_tails(batch: bytes, line_ending: bytes) -> bytes:
    return line_ending.join(line.rstrip(b" ") for line in batch.split(line_ending))


def generate_ciber(out: Path, *, seed: int, day: date) -> list[Path]:
    """Write one CIBER-in file per CDMA partner for ``day`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for partner in CIBER_PARTNERS:
        gen = _Partner(partner, seed, day)
        batches: list[bytes] = []
        for n in range(partner.batches_per_day):
            seq = _seq(partner, day, n)
            if n == 0:
                details = [gen.call(seq) for _ in range(gen.rng.randrange(4, 7))]
                if partner.batches_per_day > 1:
                    details.append(gen.daily_fee(seq))
            else:
                details = [gen.message(seq) for _ in range(gen.rng.randrange(2, 4))]
            batch = encode_batch(
                details,
                creation_date=day,
                batch_sequence_number=seq,
                sending_sid_bid=partner.sid_bid,
                receiving_sid_bid=HOME_SID_BID,
                currency_type=partner.currency_type,
                line_ending=partner.line_ending,
            )
            if partner.sid_bid == "04172" and n == 0:
                batch = _plant_air_charge_letter(batch, partner.line_ending)
            if partner.sid_bid == "16425":
                batch = _plant_trailer_total(batch, partner.line_ending, 100)
            if partner.cut_tails:
                batch = _cut_tails(batch, partner.line_ending)
            batches.append(batch)
        path = out / ciber_file_name(partner, day)
        path.write_bytes(b"".join(batches))
        written.append(path)
    return written
