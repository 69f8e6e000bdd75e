"""Synthetic TAP 3.12 TAP-in traffic: what our partners send us about our outbound roamers.

We are the HPMN ``HKGCL`` (a fictional Hong Kong operator, IMSI range MCC 454 / MNC 99,
MSISDNs +852 5xxx xxxx). Six GSM partners (fictional TADIG codes in real countries, with
their real currencies) send one TransferBatch each per processing day; a seventh partner
has no traffic and sends a Notification.

Every file has the bytes of the project's own encoder (:func:`clearing.codecs.asn1.encode`),
two partners' files re-encoded with indefinite lengths (:mod:`clearing.codecs.indefinite`), as
some real partners do; they are written by :mod:`clearing.samples.encoder`, which writes those
bytes directly, indefinite lengths included, several times faster. Money is integers only:
IOT prices are micro-SDR per unit, charges are SDR scaled by the partner's
``tapDecimalPlaces``, tax values are ``charge × taxRate / 10**7`` rounded half up, and
the AuditControlInfo is the exact sum of what was written (TD.57 §4.6 of the reference).

Determinism: every random draw comes from ``random.Random`` seeded with the seed, the day
and the partner; nothing reads the clock. Same ``(events, seed, day)`` → same bytes.
"""

from __future__ import annotations

import gc
import random
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Literal

from clearing.codecs import asn1
from clearing.codecs.indefinite import to_indefinite
from clearing.codecs.tap3.values import bcd, local_stamp, require_offset_minutes
from clearing.errors import ConfigError
from clearing.money import round_div, tax_value
from clearing.names import TapName
from clearing.samples.encoder import encoder

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from clearing.codecs.ber import TLV

__all__ = [
    "HOME_MCC_MNC",
    "HOME_TADIG",
    "LATE_DAYS",
    "LOCAL_NUMBER_SHARE",
    "LOCAL_ROAMING_SHARE",
    "PARTNERS",
    "Partner",
    "Tariff",
    "build_file",
    "encode_file",
    "file_name",
    "file_sequence_number",
    "generate_tap",
    "home_subscribers",
    "split_events",
]

HOME_TADIG = "HKGCL"
HOME_MCC_MNC = "45499"
HOME_COUNTRY_CODE = "852"
HOME_SUBSCRIBERS = 240
#: Of the events of a card with a local number in the partner's country, the share on it.
LOCAL_NUMBER_SHARE = 0.7
#: Of a partner's events, the share of the cards with a local number in its country (they
#: live there, in part).
LOCAL_ROAMING_SHARE = 0.35
LATE_DAYS = 30
"""The late-record limit of every sample partner (the ``late_days`` default of the config)."""

Encoding = Literal["definite", "indefinite-some", "indefinite-all"]


@dataclass(frozen=True, slots=True)
class Tariff:
    """A partner's IOT, in micro-SDR (10**-6 SDR) per unit; increments in seconds.

    ``voice_min``/``voice_step``: e.g. 30/1 = first 30 s charged, then per second.
    """

    moc_local: int  # per minute, call within the visited country
    moc_home: int  # per minute, call back to the home country
    moc_intl: int  # per minute, call to a third country
    mtc: int  # per minute
    sms_mo: int  # per message
    data_mb: int  # per MiB, charged per started KiB
    volte: int  # per minute (mobileSession)
    sms_ims: int  # per message (messagingEvent)
    ss: int  # per supplementary-service action that is charged
    camel_fee: int  # per CAMEL invocation
    voice_min: int
    voice_step: int


@dataclass(frozen=True, slots=True)
class Partner:
    """One roaming partner (VPMN) sending us TAP-in."""

    tadig: str
    country: str
    mcc_mnc: str
    country_code: str  # E.164 prefix
    national_mobile: str  # E.164 prefix of the partner's mobile numbers
    number_length: int  # digits of a full E.164 mobile number
    currency: str  # ISO 4217 local currency
    # (exchangeRateCode, numberOfDecimalPlaces, exchangeRate): local units per SDR
    rates: tuple[tuple[int, int, int], ...]
    tap_decimal_places: int
    utc_offsets: tuple[str, ...]  # UtcTimeOffsetCode i+1 → offset
    vat_rate: str | None  # TaxRate, 7 digits with 5 implied decimals
    tax_code: int
    discount_rate: int | None  # DiscountRate, percent with 2 implied decimals
    discount_share: float
    camel_share: float
    volte: bool
    tariff: Tariff
    weight: int  # share of the day's events
    fsn_base: int
    encoding: Encoding
    msc_gt: str  # E.164 prefix of the MSC global titles
    ip_prefix: str  # first two octets of SGSN/GGSN/P-GW addresses
    notification_only: bool = False


def _t(
    moc_local: int,
    moc_home: int,
    moc_intl: int,
    mtc: int,
    sms_mo: int,
    data_mb: int,
    volte: int,
    camel_fee: int,
    voice: tuple[int, int],
) -> Tariff:
    return Tariff(
        moc_local=moc_local,
        moc_home=moc_home,
        moc_intl=moc_intl,
        mtc=mtc,
        sms_mo=sms_mo,
        data_mb=data_mb,
        volte=volte,
        sms_ims=sms_mo,
        ss=sms_mo * 2,
        camel_fee=camel_fee,
        voice_min=voice[0],
        voice_step=voice[1],
    )


# Exchange rates: local currency per SDR, close to the IMF rates of 2025.
PARTNERS: tuple[Partner, ...] = (
    Partner(
        tadig="FRAF9",
        country="FRA",
        mcc_mnc="20899",
        country_code="33",
        national_mobile="336",
        number_length=11,
        currency="EUR",
        rates=((1, 5, 117234), (2, 5, 117510)),
        tap_decimal_places=5,
        utc_offsets=("+0100",),
        vat_rate="2000000",
        tax_code=1,
        discount_rate=None,
        discount_share=0.0,
        camel_share=0.10,
        volte=True,
        tariff=_t(38_000, 38_000, 420_000, 8_200, 9_500, 1_500, 38_000, 12_000, (30, 1)),
        weight=24,
        fsn_base=1180,
        encoding="definite",
        msc_gt="3360800",
        ip_prefix="193.253",
    ),
    Partner(
        tadig="DEUD9",
        country="DEU",
        mcc_mnc="26299",
        country_code="49",
        national_mobile="4917",
        number_length=13,
        currency="EUR",
        rates=((1, 5, 117234),),
        tap_decimal_places=3,
        utc_offsets=("+0100",),
        vat_rate="1900000",
        tax_code=7,
        discount_rate=1250,
        discount_share=0.2,
        camel_share=0.0,
        volte=True,
        tariff=_t(36_000, 36_000, 390_000, 8_000, 9_000, 1_400, 36_000, 0, (30, 1)),
        weight=20,
        fsn_base=412,
        encoding="definite",
        msc_gt="4917200",
        ip_prefix="80.187",
    ),
    Partner(
        tadig="GBRG9",
        country="GBR",
        mcc_mnc="23499",
        country_code="44",
        national_mobile="447",
        number_length=12,
        currency="GBP",
        rates=((1, 6, 1021930), (2, 6, 1019875)),
        tap_decimal_places=6,
        utc_offsets=("+0000",),
        vat_rate="2000000",
        tax_code=3,
        discount_rate=None,
        discount_share=0.0,
        camel_share=0.05,
        volte=False,
        tariff=_t(60_000, 75_000, 450_000, 11_000, 14_000, 2_600, 60_000, 15_000, (30, 1)),
        weight=14,
        fsn_base=27,
        encoding="definite",
        msc_gt="4477200",
        ip_prefix="212.183",
    ),
    Partner(
        tadig="CHEC9",
        country="CHE",
        mcc_mnc="22899",
        country_code="41",
        national_mobile="417",
        number_length=11,
        currency="CHF",
        rates=((1, 5, 109874),),
        tap_decimal_places=5,
        utc_offsets=("+0100",),
        vat_rate="0810000",
        tax_code=2,
        discount_rate=800,
        discount_share=0.1,
        camel_share=0.0,
        volte=False,
        tariff=_t(120_000, 150_000, 600_000, 45_000, 50_000, 9_000, 120_000, 0, (60, 1)),
        weight=10,
        fsn_base=3305,
        encoding="definite",
        msc_gt="4179499",
        ip_prefix="138.188",
    ),
    Partner(
        tadig="USAU9",
        country="USA",
        mcc_mnc="310990",
        country_code="1",
        national_mobile="1",
        number_length=11,
        currency="USD",
        rates=((1, 5, 136412), (2, 6, 1362870)),
        tap_decimal_places=6,
        utc_offsets=("-0500", "-0600", "-0700", "-0800"),
        vat_rate=None,
        tax_code=0,
        discount_rate=None,
        discount_share=0.0,
        camel_share=0.15,
        volte=True,
        tariff=_t(80_000, 80_000, 600_000, 20_000, 30_000, 5_000, 80_000, 20_000, (60, 60)),
        weight=20,
        fsn_base=86,
        encoding="indefinite-some",
        msc_gt="1312555",
        ip_prefix="166.137",
    ),
    Partner(
        tadig="JPNJ9",
        country="JPN",
        mcc_mnc="44099",
        country_code="81",
        national_mobile="8190",
        number_length=12,
        currency="JPY",
        rates=((1, 3, 205117),),
        tap_decimal_places=3,
        utc_offsets=("+0900",),
        vat_rate="1000000",
        tax_code=10,
        discount_rate=None,
        discount_share=0.0,
        camel_share=0.0,
        volte=False,
        tariff=_t(150_000, 180_000, 700_000, 60_000, 60_000, 12_000, 150_000, 0, (30, 30)),
        weight=12,
        fsn_base=9940,
        encoding="indefinite-all",
        msc_gt="8190100",
        ip_prefix="126.200",
    ),
    Partner(
        tadig="SGPS9",
        country="SGP",
        mcc_mnc="52599",
        country_code="65",
        national_mobile="658",
        number_length=10,
        currency="SGD",
        rates=((1, 5, 175410),),
        tap_decimal_places=5,
        utc_offsets=("+0800",),
        vat_rate=None,
        tax_code=0,
        discount_rate=None,
        discount_share=0.0,
        camel_share=0.0,
        volte=False,
        tariff=_t(90_000, 90_000, 500_000, 30_000, 30_000, 6_000, 90_000, 0, (60, 1)),
        weight=0,
        fsn_base=640,
        encoding="definite",
        msc_gt="6596100",
        ip_prefix="202.65",
        notification_only=True,
    ),
)

_APNS = ("internet", "internet", "internet", "mms.hkgcl", "wap.hkgcl", "iot.hkgcl", "corp.vpn")
_APN_OI = "mnc099.mcc454.gprs"
_DIGIT = "0123456789"


def home_subscribers(n: int = HOME_SUBSCRIBERS) -> list[tuple[str, str]]:
    """Our subscribers who roam (IMSI, primary MSISDN), the same for every seed and day.

    IMSI ``45499`` + 10 digits; MSISDN ``852`` + an 8-digit number starting with 5 to 9.
    """
    rng = random.Random("hkgcl-subscribers")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    i = 0
    while len(out) < n:
        i += 1
        msin = f"{1_000_000 + i * 7919:010d}"
        msisdn = f"{HOME_COUNTRY_CODE}{rng.choice('56789')}{rng.randrange(10**7):07d}"
        if msisdn in seen:
            continue
        seen.add(msisdn)
        out.append((HOME_MCC_MNC + msin, msisdn))
    return out


def file_sequence_number(partner: Partner, day: date) -> int:
    """The FSN a partner's daily file has on ``day`` (one file a day, so +1 per day)."""
    return (partner.fsn_base + (day - date(2026, 1, 1)).days) % 99999 + 1


def file_name(partner: Partner, day: date, *, test: bool = False) -> str:
    """``CD<sender><recipient><FSN>`` (``TD`` for test data)."""
    return str(TapName(test, partner.tadig, HOME_TADIG, file_sequence_number(partner, day)))


def split_events(events: int) -> dict[str, int]:
    """Deterministic split of ``events`` over the partners (largest remainder on weights)."""
    active = [p for p in PARTNERS if not p.notification_only]
    total = sum(p.weight for p in active)
    base = {p.tadig: events * p.weight // total for p in active}
    rest = events - sum(base.values())
    order = sorted(active, key=lambda p: (-(events * p.weight % total), p.tadig))
    for p in order[:rest]:
        base[p.tadig] += 1
    return base


# ---------------------------------------------------------------------------------------------
# money


def _money(micro_sdr_num: int, den: int, dp: int) -> int:
    """``micro_sdr_num / den`` micro-SDR as an integer scaled by ``10**dp``, rounded once."""
    return round_div(micro_sdr_num * 10**dp, den * 10**6)


# ---------------------------------------------------------------------------------------------
# one file


@dataclass(slots=True)
class _Totals:
    charge: int = 0
    tax: int = 0
    discount: int = 0
    count: int = 0
    # (UTC seconds from 0001-01-01, local stamp, offset)
    earliest: tuple[int, bytes, bytes] | None = None
    latest: tuple[int, bytes, bytes] | None = None


class _FileBuilder:
    def __init__(self, partner: Partner, day: date, seed: int, late_share: float = 0.0) -> None:
        self.p = partner
        self.day = day
        self.rng = random.Random(f"tap:{seed}:{day.isoformat()}:{partner.tadig}")
        # late records draw from a stream of their own: without them the file is unchanged
        self.late_share = late_share
        self.late_rng = random.Random(f"late:{seed}:{day.isoformat()}:{partner.tadig}")
        # rng.randrange(n) and rng.choice(seq) draw rng._randbelow(n) and rng._randbelow(len(seq)),
        # which draws getrandbits(n.bit_length()) until below n (CPython): called directly, the
        # same draws in a fraction of the time
        self.below: Callable[[int], int] = self.rng._randbelow  # type: ignore[attr-defined]
        self.bits = self.rng.getrandbits
        self.totals = _Totals()
        self.dp = partner.tap_decimal_places
        self.subs = home_subscribers()
        # a partner sees a stable part of our roamers: a few dozen of them, and the cards with
        # a local number in its country (that is where they roam); a call made or received on
        # that number carries it (`msisdn` attribution), the others the primary number
        from clearing.samples.subscribers import card_numbers  # (it imports this module)

        self.cards = card_numbers()
        here = f"local:{partner.tadig[:3]}"
        self.local = {imsi: c[here] for imsi, c in self.cards.items() if here in c}
        pick = random.Random(f"roamers:{partner.tadig}")
        self.roamers = pick.sample(self.subs, 40)
        self.local_roamers = [s for s in self.subs if s[0] in self.local]
        self.roamers += [s for s in self.local_roamers if s not in self.roamers]
        self.imeis = {imsi: self._imei(pick) for imsi, _ in self.roamers}
        self.rec = self._rec_entities()
        # per event: the offsets (as written, and in seconds), the traffic days, the local
        # stamps written so far (by local seconds), the event kinds and their weights
        self.rate_codes = [c for c, _, _ in partner.rates]
        self.vat_rate = 0 if partner.vat_rate is None else int(partner.vat_rate)
        self.offsets = [off.encode() for off in partner.utc_offsets]
        self.offset_seconds = [require_offset_minutes(off) * 60 for off in partner.utc_offsets]
        traffic = day - timedelta(days=1)
        self.traffic_days = (traffic.toordinal(), traffic.toordinal() - 1)
        self.stamps: dict[int, bytes] = {}
        self.bcds: dict[str, bytes] = {}
        self.imei_bcds: dict[bytes, bytes] = {}
        self.days: dict[int, bytes] = {}
        # (functions of the builder, not bound methods: no reference cycle)
        kinds: list[Callable[[_FileBuilder], tuple[str, Any]]] = [
            lambda b: b.moc(sms=False),
            lambda b: b.moc(sms=True),
            lambda b: b.mtc(sms=False),
            lambda b: b.mtc(sms=True),
            _FileBuilder.gprs,
            _FileBuilder.suppl,
        ]
        weights = [26, 8, 15, 5, 40, 2]
        if partner.volte:
            kinds += [_FileBuilder.messaging, _FileBuilder.session]
            weights += [3, 5]
        # random.choices(kinds, weights) drawn as it draws: one random() into the running sums
        self.kinds = kinds
        self.kind_sums = list(accumulate(weights))
        self.kind_total = self.kind_sums[-1] + 0.0

    # -- static tables ------------------------------------------------------------------------

    @staticmethod
    def _imei(rng: random.Random) -> str:
        tac = rng.choice(("35391110", "35328211", "35847631", "86891504", "35455711"))
        return f"{tac}{rng.randrange(10**6):06d}0"  # 15 digits, spare check digit

    def _rec_entities(self) -> dict[str, list[tuple[int, int, str]]]:
        p = self.p
        msc = [(i, 1, f"{p.msc_gt}{i:03d}") for i in (1, 2, 3)]
        sgsn = [(10 + i, 4, f"{p.ip_prefix}.{16 + i}.{10 + i}") for i in (1, 2)]
        ggsn = [(20, 3, f"{p.ip_prefix}.32.1")]
        out = {"msc": msc, "sgsn": sgsn, "ggsn": ggsn}
        if p.volte:
            out["pgw"] = [(30, 7, f"{p.ip_prefix}.48.1")]
            out["pcscf"] = [(31, 9, f"pcscf01.ims.mnc{p.mcc_mnc[3:]:0>3}.mcc{p.mcc_mnc[:3]}")]
        return out

    def network_info(self) -> dict[str, Any]:
        rec = [
            {"recEntityCode": code, "recEntityType": typ, "recEntityId": ident.encode()}
            for group in self.rec.values()
            for code, typ, ident in group
        ]
        utc = [
            {"utcTimeOffsetCode": i + 1, "utcTimeOffset": off.encode()}
            for i, off in enumerate(self.p.utc_offsets)
        ]
        return {"utcTimeOffsetInfo": utc, "recEntityInfo": rec}

    def accounting_info(self) -> dict[str, Any]:
        p = self.p
        acc: dict[str, Any] = {}
        if p.vat_rate is not None:
            acc["taxation"] = [
                {"taxCode": p.tax_code, "taxType": b"01", "taxRate": p.vat_rate.encode()}
            ]
        if p.discount_rate is not None:
            acc["discounting"] = [
                {"discountCode": 1, "discountApplied": ("discountRate", p.discount_rate)}
            ]
        acc["localCurrency"] = p.currency.encode()
        acc["currencyConversionInfo"] = [
            {"exchangeRateCode": c, "numberOfDecimalPlaces": n, "exchangeRate": r}
            for c, n, r in p.rates
        ]
        acc["tapDecimalPlaces"] = p.tap_decimal_places
        return acc

    def _batch_times(self) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]:
        off = self.p.utc_offsets[0]
        cut = datetime(self.day.year, self.day.month, self.day.day)
        created = cut + timedelta(hours=1, minutes=self.rng.randrange(5, 50))
        available = created + timedelta(minutes=self.rng.randrange(2, 20))

        def dtl(t: datetime) -> dict[str, bytes]:
            return {"localTimeStamp": local_stamp(t), "utcTimeOffset": off.encode()}

        return dtl(created), dtl(cut), dtl(available)

    def batch_control(self) -> dict[str, Any]:
        created, cut, available = self._batch_times()
        return {
            "sender": self.p.tadig.encode(),
            "recipient": HOME_TADIG.encode(),
            "fileSequenceNumber": f"{file_sequence_number(self.p, self.day):05d}".encode(),
            "fileCreationTimeStamp": created,
            "transferCutOffTimeStamp": cut,
            "fileAvailableTimeStamp": available,
            "specificationVersionNumber": 3,
            "releaseVersionNumber": 12,
        }

    def notification(self) -> tuple[str, Any]:
        created, cut, available = self._batch_times()
        return (
            "notification",
            {
                "sender": self.p.tadig.encode(),
                "recipient": HOME_TADIG.encode(),
                "fileSequenceNumber": f"{file_sequence_number(self.p, self.day):05d}".encode(),
                "fileCreationTimeStamp": created,
                "fileAvailableTimeStamp": available,
                "transferCutOffTimeStamp": cut,
                "specificationVersionNumber": 3,
                "releaseVersionNumber": 12,
            },
        )

    # -- per event helpers --------------------------------------------------------------------

    def _start(self) -> tuple[int, int]:
        """A local start time on the traffic day (the day before ``day``), and its offset code.

        The time is in seconds from 0001-01-01 00:00 local time (see :meth:`_stamp`).
        """
        rng = self.rng
        below = self.below
        code = 1 + (rng.randrange(len(self.p.utc_offsets)) if len(self.p.utc_offsets) > 1 else 0)
        # late records from the day before
        day = self.traffic_days[1] if rng.random() < 0.04 else self.traffic_days[0]
        # busier during the day: hour from a triangular-ish distribution
        hour = min(23, max(0, int(rng.triangular(0, 24, 14))))
        seconds = hour * 3600 + below(3600)
        if self.late_share and self.late_rng.random() < self.late_share:
            # older than the late-record limit: 31 to 40 days before the traffic day
            day -= LATE_DAYS + 1 + self.late_rng.randrange(10)
        return day * 86400 + seconds, code

    def _stamp(self, t: int) -> bytes:
        """The LocalTimeStamp of :meth:`_start`'s local time ``t`` (cached)."""
        stamp = self.stamps.get(t)
        if stamp is None:
            day, seconds = divmod(t, 86400)
            prefix = self.days.get(day)
            if prefix is None:
                prefix = self.days[day] = date.fromordinal(day).strftime("%Y%m%d").encode()
            hour, rest = divmod(seconds, 3600)
            stamp = self.stamps[t] = b"%s%02d%02d%02d" % (prefix, hour, *divmod(rest, 60))
        return stamp

    def _dt(self, t: int, code: int) -> dict[str, Any]:
        stamp = self._stamp(t)
        utc = t - self.offset_seconds[code - 1]
        tot = self.totals
        if tot.earliest is None or utc < tot.earliest[0]:
            tot.earliest = (utc, stamp, self.offsets[code - 1])
        if tot.latest is None or utc > tot.latest[0]:
            tot.latest = (utc, stamp, self.offsets[code - 1])
        return {"localTimeStamp": stamp, "utcTimeOffsetCode": code}

    def _pick(self) -> tuple[str, str]:
        """A roamer's IMSI and the number on the event.

        Its local number here if it has one (most of the time), else its primary number.
        """
        if self.local_roamers and self.rng.random() < LOCAL_ROAMING_SHARE:
            imsi, number = self.local_roamers[self.below(len(self.local_roamers))]
        else:
            imsi, number = self.roamers[self.below(len(self.roamers))]
        if imsi in self.local and self.rng.random() < LOCAL_NUMBER_SHARE:
            number = self.local[imsi]
        return imsi, number

    def _subscriber(
        self, *, msisdn: bool = True, picked: tuple[str, str] | None = None
    ) -> tuple[str, Any]:
        imsi, number = picked or self._pick()
        sub: dict[str, bytes] = {"imsi": self._bcd(imsi)}
        if msisdn:
            sub["msisdn"] = self._bcd(number)
        return ("simChargeableSubscriber", sub)

    def _bcd(self, digits: str) -> bytes:
        """:func:`bcd` of our subscribers' IMSIs and numbers (a few hundred: kept)."""
        out = self.bcds.get(digits)
        if out is None:
            out = self.bcds[digits] = bcd(digits)
        return out

    def _imsi_msisdn(self) -> tuple[str, str]:
        return self.roamers[self.below(len(self.roamers))]

    def _rate_code(self) -> int:
        codes = self.rate_codes
        if len(codes) == 1:
            return codes[0]
        return codes[0] if self.rng.random() < 0.7 else codes[1]

    def _taxes(self, amount: int) -> list[dict[str, Any]] | None:
        if self.p.vat_rate is None or amount == 0:
            return None
        value = tax_value(amount, self.vat_rate)
        self.totals.tax += value
        return [{"taxCode": self.p.tax_code, "taxValue": value, "taxableAmount": amount}]

    def _discount(self, gross: int) -> tuple[int, dict[str, Any] | None]:
        p = self.p
        if p.discount_rate is None or gross == 0 or self.rng.random() >= p.discount_share:
            return gross, None
        value = round_div(gross * p.discount_rate, 10_000)
        self.totals.discount += value
        info = {"discountCode": 1, "discount": value, "discountableAmount": gross}
        return gross - value, info

    def _charge_info(
        self,
        item: bytes,
        gross: int,
        *,
        level: tuple[int, int, int],
        units: tuple[int, int] | None,
        toll: int = 0,
        discountable: bool = True,
    ) -> dict[str, Any]:
        """A ChargeInformation whose chargeType 00 charge is ``gross`` (less any discount)."""
        net, discount = self._discount(gross) if discountable else (gross, None)
        self.totals.charge += net
        total: dict[str, Any] = {"chargeType": b"00", "charge": net}
        if units is not None:
            total["chargeableUnits"], total["chargedUnits"] = units
        details = [total]
        if toll:
            details.append({"chargeType": b"01", "charge": net - min(toll, net)})
            details.append({"chargeType": b"03", "charge": min(toll, net)})
        info: dict[str, Any] = {
            "chargedItem": item,
            "exchangeRateCode": self._rate_code(),
            "callTypeGroup": {
                "callTypeLevel1": level[0],
                "callTypeLevel2": level[1],
                "callTypeLevel3": level[2],
            },
            "chargeDetailList": details,
        }
        taxes = self._taxes(net)
        if taxes is not None:
            info["taxInformation"] = taxes
        if discount is not None:
            info["discountInformation"] = discount
        return info

    def _camel(self) -> dict[str, Any] | None:
        p = self.p
        if p.camel_share == 0 or self.rng.random() >= p.camel_share:
            return None
        fee = _money(p.tariff.camel_fee, 1, self.dp)
        self.totals.charge += fee
        camel: dict[str, Any] = {
            "camelServiceLevel": 0,
            "camelServiceKey": self.rng.choice((11, 12, 100)),
            "defaultCallHandling": 0,
            "exchangeRateCode": self._rate_code(),
        }
        taxes = self._taxes(fee)
        if taxes is not None:
            camel["taxInformation"] = taxes
        camel["camelInvocationFee"] = fee
        return camel

    def _location(self) -> dict[str, Any]:
        code = self.rec["msc"][self.below(len(self.rec["msc"]))][0]
        return {
            "networkLocation": {
                "recEntityCode": code,
                "locationArea": 1000 + self.below(59000),
                "cellId": 1 + self.below(65534),
            }
        }

    def _voice_units(self, duration: int) -> int:
        t = self.p.tariff
        charged = max(duration, t.voice_min)
        over = charged - t.voice_min
        if over % t.voice_step:
            charged += t.voice_step - over % t.voice_step
        return charged

    def _local_number(self) -> str:
        p = self.p
        if p.country == "USA":
            area = self.rng.choice(("212", "310", "415", "646", "702"))
            prefix = f"1{area}"
        else:
            prefix = p.national_mobile
        rest = p.number_length - len(prefix)
        return prefix + self._digits(rest)

    def _digits(self, count: int) -> str:
        """``count`` random digits, as ``rng.randrange(10)`` draws each: 4 bits, below 10."""
        bits = self.bits
        out = []
        for _ in range(count):
            r = bits(4)
            while r >= 10:
                r = bits(4)
            out.append(_DIGIT[r])
        return "".join(out)

    def _destination(self, imsi: str) -> tuple[str, tuple[int, int, int], int]:
        """(called E.164 number, call type levels, price per minute) of a call by ``imsi``.

        A card with a virtual number mostly calls its country (dialled with its
        selection code).
        """
        r = self.rng.random()
        t = self.p.tariff
        code = self.cards.get(imsi, {}).get("selection_code")
        if code is not None and r < 0.8:
            number = code[1:] + self._digits(9)
            return number, (2, 2, 0), t.moc_intl
        r = self.rng.random()
        if r < 0.45:
            return self._local_number(), (1, 1, 0), t.moc_local
        if r < 0.85:
            _, msisdn = self._imsi_msisdn()
            return msisdn[:5] + f"{self.below(10**6):06d}", (2, 1, 0), t.moc_home
        cc = self.rng.choice(("86", "61", "971", "34", "39"))
        number = cc + self._digits(9)
        return number, (2, 2, 0), t.moc_intl

    def _dialled(self, number: str) -> bytes:
        p = self.p
        if number.startswith(p.country_code) and self.rng.random() < 0.5:
            national = number[len(p.country_code) :]
            return (("1" if p.country == "USA" else "0") + national).encode()
        return ("+" + number).encode()

    # -- event kinds ----------------------------------------------------------------------------

    def moc(self, *, sms: bool) -> tuple[str, Any]:
        rng = self.rng
        t = self.p.tariff
        start, code = self._start()
        picked = self._pick()
        number, level, price = self._destination(picked[0])
        if sms:
            duration, units, gross, service, toll = (
                0,
                (1, 1),
                _money(t.sms_mo, 1, self.dp),
                b"22",
                0,
            )
        else:
            duration = int(rng.expovariate(1 / 140)) + 3
            charged = self._voice_units(duration)
            units = (duration, charged)
            gross = _money(price * charged, 60, self.dp)
            service = b"11"
            toll = gross - _money(t.moc_local * charged, 60, self.dp) if level[0] == 2 else 0
        basic: dict[str, Any] = {
            "chargeableSubscriber": self._subscriber(picked=picked),
            "destination": {"calledNumber": bcd(number), "dialledDigits": self._dialled(number)},
            "callEventStartTimeStamp": self._dt(start, code),
            "totalCallEventDuration": duration,
        }
        if not sms and rng.random() < 0.1:
            basic["causeForTerm"] = rng.choice((1, 3, 4))
        call: dict[str, Any] = {
            "basicCallInformation": basic,
            "locationInformation": self._location(),
        }
        if rng.random() < 0.8:
            imsi = basic["chargeableSubscriber"][1]["imsi"]
            call["equipmentIdentifier"] = ("imei", self._imei_for(imsi))
        info = self._charge_info(b"D", gross, level=level, units=units, toll=toll)
        call["basicServiceUsedList"] = [
            {
                "basicService": {"serviceCode": ("teleServiceCode", service)},
                "chargingTimeStamp": self._dt(start, code),
                "chargeInformationList": [info],
            }
        ]
        camel = self._camel()
        if camel is not None:
            call["camelServiceUsed"] = camel
        return ("mobileOriginatedCall", call)

    def _imei_for(self, imsi_bcd: bytes) -> bytes:
        out = self.imei_bcds.get(imsi_bcd)
        if out is None:
            imsi = imsi_bcd.hex().rstrip("f")
            out = self.imei_bcds[imsi_bcd] = bcd(self.imeis[imsi])
        return out

    def mtc(self, *, sms: bool) -> tuple[str, Any]:
        rng = self.rng
        below = self.below
        t = self.p.tariff
        start, code = self._start()
        if rng.random() < 0.7:
            caller = self._imsi_msisdn()[1][:5] + f"{below(10**6):06d}"
        else:
            caller = self._local_number()
        if sms:
            duration, units, gross, service = 0, (1, 1), 0, b"21"
        else:
            duration = int(rng.expovariate(1 / 180)) + 2
            charged = self._voice_units(duration)
            units = (duration, charged)
            gross = _money(t.mtc * charged, 60, self.dp)
            service = b"11"
        basic: dict[str, Any] = {
            "chargeableSubscriber": self._subscriber(),
            "callOriginator": {"callingNumber": bcd(caller)},
            "callEventStartTimeStamp": self._dt(start, code),
            "totalCallEventDuration": duration,
        }
        call: dict[str, Any] = {
            "basicCallInformation": basic,
            "locationInformation": self._location(),
        }
        info = self._charge_info(b"D", gross, level=(0, 0, 0), units=units)
        call["basicServiceUsedList"] = [
            {
                "basicService": {"serviceCode": ("teleServiceCode", service)},
                "chargeInformationList": [info],
            }
        ]
        camel = self._camel()
        if camel is not None:
            call["camelServiceUsed"] = camel
        return ("mobileTerminatedCall", call)

    def gprs(self) -> tuple[str, Any]:
        rng = self.rng
        below = self.below
        t = self.p.tariff
        start, code = self._start()
        r = rng.random()
        if r < 0.03:  # a long tethering session: more than 4 GiB
            down = 2**32 + below(2 * 2**32)
            duration = 20_000 + below(66_000)
        elif r < 0.25:
            down = int(rng.expovariate(1 / 300_000_000))
            duration = 600 + below(19_400)
        else:
            down = int(rng.expovariate(1 / 8_000_000))
            duration = 5 + below(3595)
        up = down // (6 + below(14)) + below(2_000)
        volume = up + down
        charged = -(-volume // 1024) * 1024
        gross = _money(t.data_mb * charged, 2**20, self.dp)
        picked = self._pick()
        # a card with a data number uses its APN most of the time
        own = self.cards.get(picked[0], {}).get("apn")
        apn = own if own is not None and rng.random() < 0.9 else _APNS[below(len(_APNS))]
        sgsn = self.rec["sgsn"][below(len(self.rec["sgsn"]))][0]
        ggsn = self.rec["ggsn"][0][0]
        home_routed = apn != "internet" or rng.random() < 0.7
        subscriber = self._subscriber(msisdn=rng.random() < 0.85, picked=picked)
        pdp = f"10.{below(256)}.{below(256)}.{1 + below(254)}"
        basic: dict[str, Any] = {
            "gprsChargeableSubscriber": {
                "chargeableSubscriber": subscriber,
                "pdpAddress": pdp.encode(),
            },
            "gprsDestination": {
                "accessPointNameNI": apn.encode(),
                "accessPointNameOI": _APN_OI.encode(),
            },
            "callEventStartTimeStamp": self._dt(start, code),
            "totalCallEventDuration": duration,
            "causeForTerm": rng.choice((0, 0, 0, 4, 5)),
            "chargingId": 1 + below(2**32 - 1),
        }
        if basic["causeForTerm"] == 0:
            # TD.57: CauseForTerm is only present when the session did not end normally
            del basic["causeForTerm"]
        if duration > 3600 and rng.random() < 0.5:
            basic["partialTypeIndicator"] = rng.choice((b"F", b"I", b"L"))
            basic["pDPContextStartTimestamp"] = self._dt(start, code)
        recs = [sgsn] if home_routed else [sgsn, ggsn]
        call: dict[str, Any] = {
            "gprsBasicCallInformation": basic,
            "gprsLocationInformation": {
                "gprsNetworkLocation": {
                    "recEntity": recs,
                    "locationArea": 1000 + below(59000),
                    "cellId": 1 + below(65534),
                }
            },
        }
        if rng.random() < 0.6:
            call["equipmentIdentifier"] = ("imei", self._imei_for(subscriber[1]["imsi"]))
        level = (10, 0, 0) if home_routed else (11, 0, 0)
        call["gprsServiceUsed"] = {
            "dataVolumeIncoming": down,
            "dataVolumeOutgoing": up,
            "chargeInformationList": [
                self._charge_info(b"X", gross, level=level, units=(volume, charged))
            ],
        }
        camel = self._camel()
        if camel is not None:
            call["camelServiceUsed"] = camel
        return ("gprsCall", call)

    def suppl(self) -> tuple[str, Any]:
        rng = self.rng
        start, code = self._start()
        ss_code, action = rng.choice(
            ((b"21", 1), (b"21", 4), (b"29", 1), (b"2A", 2), (b"41", 2), (b"42", 3))
        )
        used: dict[str, Any] = {
            "supplServiceCode": ss_code,
            "supplServiceActionCode": action,
            "chargingTimeStamp": self._dt(start, code),
        }
        if action == 1:  # registration is charged
            gross = _money(self.p.tariff.ss, 1, self.dp)
            used["chargeInformation"] = self._charge_info(
                b"E", gross, level=(0, 0, 0), units=(1, 1)
            )
        return (
            "supplServiceEvent",
            {
                "chargeableSubscriber": self._subscriber(),
                "locationInformation": self._location(),
                "supplServiceUsed": used,
            },
        )

    def _ims_party(self) -> dict[str, Any]:
        imsi, msisdn = self._imsi_msisdn()
        return {
            "imsi": self._bcd(imsi),
            "msisdn": self._bcd(msisdn),
            "publicUserId": f"sip:+{msisdn}@ims.mnc099.mcc454.3gppnetwork.org".encode(),
        }

    def messaging(self) -> tuple[str, Any]:
        below = self.below
        start, code = self._start()
        gross = _money(self.p.tariff.sms_ims, 1, self.dp)
        net = gross  # MessagingEvent carries no discount
        self.totals.charge += net
        event: dict[str, Any] = {
            "messagingEventService": 1,
            "chargedParty": self._ims_party(),
            "eventReference": f"{self.p.tadig}-SMS-{below(16**10):010x}".encode(),
            "recEntityCodeList": [self.rec["pcscf"][0][0]],
            "serviceStartTimestamp": self._dt(start, code),
            "nonChargedParty": {"nonChargedPartyNumber": bcd(self._local_number())},
            "exchangeRateCode": self._rate_code(),
            "callTypeGroup": {"callTypeLevel1": 1, "callTypeLevel2": 1, "callTypeLevel3": 0},
            "charge": net,
        }
        taxes = self._taxes(net)
        if taxes is not None:
            event["taxInformationList"] = taxes
        return ("messagingEvent", event)

    def session(self) -> tuple[str, Any]:
        rng = self.rng
        below = self.below
        start, code = self._start()
        duration = int(rng.expovariate(1 / 200)) + 4
        charged = self._voice_units(duration)
        number, level, _price = self._destination("")
        gross = _money(self.p.tariff.volte * charged, 60, self.dp)
        # SessionChargeInformation has no DiscountInformation: never discounted
        info = self._charge_info(
            b"D", gross, level=level, units=(duration, charged), discountable=False
        )
        if "taxInformation" in info:
            info["taxInformationList"] = info.pop("taxInformation")
        event: dict[str, Any] = {
            "mobileSessionService": 1,
            "chargedParty": self._ims_party(),
            "eventReference": f"{self.p.tadig}-VOLTE-{below(16**10):010x}".encode(),
            "recEntityCodeList": [self.rec["pcscf"][0][0], self.rec["pgw"][0][0]],
            "serviceStartTimestamp": self._dt(start, code),
            "totalCallEventDuration": duration,
            "requestedDestination": {"requestedNumber": bcd(number)},
            "sessionChargeInfoList": [info],
        }
        return ("mobileSession", event)

    # -- the whole batch ------------------------------------------------------------------------

    def event(self) -> tuple[str, Any]:
        # MOC, MOC SMS, MTC, MTC SMS, GPRS, supplementary service at 26:8:15:5:40:2, and with
        # VoLTE messaging events and sessions at 3:5 (as random.choices draws them)
        sums = self.kind_sums
        pick = bisect_right(sums, self.rng.random() * self.kind_total, 0, len(sums) - 1)
        return self.kinds[pick](self)

    def transfer_batch(self, count: int, *, audit_error: int = 0) -> tuple[str, Any]:
        # generate, then order by start time (as a partner's mediation would write them)
        drawn: list[tuple[bytes, int, tuple[str, Any]]] = []
        for _ in range(count):
            ev = self.event()
            drawn.append((_event_stamp(ev), len(drawn), ev))
        drawn.sort()  # by stamp, then order drawn (unique: the events are never compared)
        events = [ev for _, _, ev in drawn]
        tot = self.totals
        tot.count = len(events)
        audit: dict[str, Any] = {}
        if tot.earliest is not None and tot.latest is not None:
            audit["earliestCallTimeStamp"] = {
                "localTimeStamp": tot.earliest[1],
                "utcTimeOffset": tot.earliest[2],
            }
            audit["latestCallTimeStamp"] = {
                "localTimeStamp": tot.latest[1],
                "utcTimeOffset": tot.latest[2],
            }
        audit["totalCharge"] = tot.charge + audit_error  # ≠ 0: a fatal error (TD.57 100)
        audit["totalTaxValue"] = tot.tax
        audit["totalDiscountValue"] = tot.discount
        audit["callEventDetailsCount"] = tot.count
        batch = {
            "batchControlInfo": self.batch_control(),
            "accountingInfo": self.accounting_info(),
            "networkInfo": self.network_info(),
            "callEventDetails": events,
            "auditControlInfo": audit,
        }
        return ("transferBatch", batch)


def _event_stamp(event: tuple[str, Any]) -> bytes:
    kind, body = event
    if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
        stamp: bytes = body["basicCallInformation"]["callEventStartTimeStamp"]["localTimeStamp"]
    elif kind == "gprsCall":
        stamp = body["gprsBasicCallInformation"]["callEventStartTimeStamp"]["localTimeStamp"]
    elif kind == "supplServiceEvent":
        stamp = body["supplServiceUsed"]["chargingTimeStamp"]["localTimeStamp"]
    else:
        stamp = body["serviceStartTimestamp"]["localTimeStamp"]
    return stamp


def _indefinite_some(depth: int, _tlv: TLV) -> bool:
    # TransferBatch, its groups, and every CallEventDetail; inner structures stay definite
    return depth <= 2


def _fast_encode(partner: Partner, value: tuple[str, Any]) -> bytes:
    """:func:`_encode` of the generator's own values, by :mod:`clearing.samples.encoder`."""
    if value[0] == "transferBatch":
        compiled = asn1.spec("tap").types["TransferBatch"]
    else:
        compiled = asn1.spec("notification").types["Notification"]
    write = encoder(compiled, partner.encoding)
    if write is None:  # a type the fast writer does not know: asn1tools
        return _encode(partner, value)
    try:
        return write(value[1])
    except ValueError:  # an unknown CHOICE alternative: asn1tools tells what is wrong
        return _encode(partner, value)


def _encode(partner: Partner, value: tuple[str, Any]) -> bytes:
    kind: asn1.Kind = "tap" if value[0] == "transferBatch" else "notification"
    data = asn1.encode(kind, value)
    if partner.encoding == "indefinite-some":
        return to_indefinite(data, select=_indefinite_some)
    if partner.encoding == "indefinite-all":
        return to_indefinite(data)
    return data


def build_file(
    partner: Partner,
    *,
    events: int,
    seed: int,
    day: date,
    late_share: float = 0.0,
    audit_error: int = 0,
) -> tuple[str, bytes]:
    """One partner's file for ``day``: (file name, bytes). No events → a Notification.

    Args:
        partner: the sending partner.
        events: call events in the file.
        seed: random seed.
        day: the processing date the file is made for.
        late_share: the share of events (drawn from a random stream of their own, so 0 leaves
            the file as it always was) that start 31 to 40 days before the traffic day: older
            than the late-record limit (:data:`LATE_DAYS`).
        audit_error: added to the AuditControlInfo's totalCharge (≠ 0: a fatal error).
    """
    with _collector_paused():
        data = _build(partner, events, seed, day, late_share, audit_error)
    return file_name(partner, day), data


def _build(
    partner: Partner, events: int, seed: int, day: date, late_share: float, audit_error: int
) -> bytes:
    builder = _FileBuilder(partner, day, seed, late_share)
    if events == 0:
        value = builder.notification()
    else:
        value = builder.transfer_batch(events, audit_error=audit_error)
    return _fast_encode(partner, value)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (the state before is restored after).

    A file's event values are trees of dicts without cycles, freed by reference counting; with
    hundreds of thousands of them alive, the collector's passes over them took about half of
    the generator's time and never found anything to free. (They are freed before the
    collector is back: else its first pass would walk them all.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def encode_file(partner: Partner, value: tuple[str, Any]) -> bytes:
    """A TAP value (asn1tools form) encoded as ``partner``'s system encodes its files."""
    return _encode(partner, value)


def generate_tap(
    out: Path, *, events: int, seed: int, day: date, late_share: float = 0.0
) -> list[Path]:
    """Write the day's TAP-in files (one per partner) into ``out``; return their paths.

    ``events`` call events are split over the six partners with traffic; a partner that
    gets none (and ``SGPS9`` always) sends a Notification instead. ``late_share``: see
    :func:`build_file`.

    Raises:
        ConfigError: ``events`` is negative.
    """
    if events < 0:
        msg = f"--events must be 0 or more, not {events}"
        raise ConfigError(msg)
    out.mkdir(parents=True, exist_ok=True)
    split = split_events(events)
    written: list[Path] = []
    for partner in PARTNERS:
        name, data = build_file(
            partner, events=split.get(partner.tadig, 0), seed=seed, day=day, late_share=late_share
        )
        path = out / name
        path.write_bytes(data)
        written.append(path)
    return written
