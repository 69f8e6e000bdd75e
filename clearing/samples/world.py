"""The sample world's reference data and our network's visitor CDRs (inbound roamers).

:func:`write_reference_data` writes the CSV sources of the rates tables for the partners of
:mod:`clearing.samples.tap` (GSM, TAP) and :mod:`clearing.samples.ciber` (CDMA, CIBER) and
imports them to Parquet:

* ``iot`` **outbound** rows reproduce exactly what the partners charge us in their TAP-in /
  CIBER-in (``Partner.tariff``: micro-SDR per minute / message / MiB; voice increments such as
  30/1 or 60/60; data per started KiB; CIBER: cents per started minute, toll on calls home), so
  the IOT check of clean sample files finds no breach.
* ``iot`` **inbound** rows are our prices for their subscribers on our network (reciprocal to
  theirs); FRAF9 and DEUD9 have peak / off-peak / weekend bands on local calls, and every GSM
  partner a ``moc_destination`` band for mainland China (``86``). Hong Kong has no VAT: tax 0.
* ``agreements`` (TAP partners: SDR at the partner's tapDecimalPlaces, local currency HKD;
  CIBER partners: USD / CAD cents), ``imsi_ranges`` (MCC+MNC of each partner) and ``fx``
  (units per SDR, close to the IMF rates of 2025).

:func:`write_visitor_cdrs` writes the mediation export of one processing day: a CSV of calls
and SMS and a Parquet of data sessions, traffic of the day before (~3 % of the day before
that). Planted faults (documented, for the demo): a called number with a letter, a negative
duration, a repeated record id (all three quarantined by the reader) and a visitor whose IMSI
belongs to no partner (left unrated). Same ``(events, seed, day)`` → same bytes.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from clearing.names import CdrName
from clearing.rating import SOURCES, import_rates
from clearing.samples.ciber import CIBER_PARTNERS
from clearing.samples.tap import HOME_COUNTRY_CODE, HOME_TADIG, PARTNERS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from clearing.samples.tap import Partner

__all__ = [
    "CDMA_IMSI_PREFIX",
    "LOCAL_CURRENCY",
    "UTC_OFFSET",
    "cdr_file_names",
    "reference_sources",
    "visitor_cdr_frame",
    "write_reference_data",
    "write_visitor_cdrs",
]

LOCAL_CURRENCY = "HKD"
UTC_OFFSET = "+0800"
CHINA = "86"
# CDMA partners' subscribers (fictional ranges): their home networks are the CIBER partners
CDMA_IMSI_PREFIX = {"04172": "311590", "16425": "302590"}
UNKNOWN_IMSI_PREFIX = "99999"
_INTL = ("61", "971", "34", "39")

# units per SDR (integer, scale), close to the IMF rates of 2025
_FX: tuple[tuple[str, int, int], ...] = (
    ("CAD", 187_650, 5),
    ("CHF", 109_874, 5),
    ("EUR", 117_234, 5),
    ("GBP", 1_021_930, 6),
    ("HKD", 1_062_340, 5),
    ("JPY", 205_117, 3),
    ("SGD", 175_410, 5),
    ("USD", 136_412, 5),
)
_SETTLEMENT = {
    "FRAF9": "EUR",
    "DEUD9": "EUR",
    "GBRG9": "GBP",
    "CHEC9": "EUR",
    "USAU9": "USD",
    "JPNJ9": "USD",
    "SGPS9": "USD",
    "04172": "USD",
    "16425": "USD",
}
_BANDED = ("FRAF9", "DEUD9")

_IOT_HEADER = [
    "partner", "direction", "service", "destination_prefix", "time_band", "weekdays",
    "band_start", "band_end", "unit", "price", "price_scale", "currency", "minimum_units",
    "initial_increment", "subsequent_increment", "tax_rate", "rounding", "valid_from",
    "valid_to", "note",
]  # fmt: skip


def _start(day: date) -> date:
    """First day of the sample world's tariffs: 1 January of the year before ``day``."""
    return date(day.year - 1, 1, 1)


def _iot_rows(day: date) -> list[dict[str, object]]:
    vf = _start(day).isoformat()
    rows: list[dict[str, object]] = []

    def add(partner: str, direction: str, service: str, price: int, **kw: object) -> None:
        row: dict[str, object] = {
            "partner": partner,
            "direction": direction,
            "service": service,
            "destination_prefix": "",
            "time_band": "all",
            "weekdays": "1234567",
            "band_start": "00:00",
            "band_end": "24:00",
            "unit": 1,
            "price": price,
            "price_scale": 6,
            "currency": "SDR",
            "minimum_units": 0,
            "initial_increment": 1,
            "subsequent_increment": 1,
            "tax_rate": 0,
            "rounding": "half_up",
            "valid_from": vf,
            "valid_to": "",
            "note": "",
        }
        row.update(kw)
        rows.append(row)

    for p in PARTNERS:
        _gsm_rows(p, add)
    for c in CIBER_PARTNERS:
        cur = "USD" if c.currency_type == 1 else "CAD"
        voice: dict[str, object] = {
            "unit": 60,
            "price_scale": 2,
            "currency": cur,
            "minimum_units": 60,
            "initial_increment": 60,
            "subsequent_increment": 60,
        }
        home_call = c.air_cents_per_minute + c.toll_cents_per_minute
        # outbound: what the CDMA partner charges us (air per started minute, toll on calls home)
        out = "outbound"
        add(c.sid_bid, out, "moc_local", c.air_cents_per_minute, destination_prefix="1", **voice)
        add(c.sid_bid, out, "moc_home", home_call, destination_prefix="852", **voice)
        add(c.sid_bid, out, "moc_international", home_call, **voice)
        add(c.sid_bid, out, "mtc", c.air_cents_per_minute, **voice)
        # inbound: what we charge them (reciprocal)
        add(
            c.sid_bid,
            "inbound",
            "moc_local",
            c.air_cents_per_minute,
            destination_prefix="852",
            **voice,
        )
        add(c.sid_bid, "inbound", "moc_home", home_call, destination_prefix="1", **voice)
        add(c.sid_bid, "inbound", "moc_international", home_call, **voice)
        add(c.sid_bid, "inbound", "mtc", c.air_cents_per_minute, **voice)
    return rows


def _gsm_rows(p: Partner, add: object) -> None:
    t = p.tariff
    voice: dict[str, object] = {
        "unit": 60,
        "minimum_units": t.voice_min,
        "initial_increment": t.voice_min,
        "subsequent_increment": t.voice_step,
    }
    data: dict[str, object] = {
        "unit": 1_048_576,
        "initial_increment": 1024,
        "subsequent_increment": 1024,
    }
    tax = int(p.vat_rate) if p.vat_rate else 0
    assert callable(add)
    # outbound: exactly what the partner's TAP-in charges (clearing.samples.tap)
    o = {"tax_rate": tax}
    add(
        p.tadig,
        "outbound",
        "moc_local",
        t.moc_local,
        destination_prefix=p.country_code,
        **voice,
        **o,
    )
    add(
        p.tadig,
        "outbound",
        "moc_home",
        t.moc_home,
        destination_prefix=HOME_COUNTRY_CODE,
        **voice,
        **o,
    )
    add(p.tadig, "outbound", "moc_international", t.moc_intl, **voice, **o)
    add(p.tadig, "outbound", "mtc", t.mtc, **voice, **o)
    add(p.tadig, "outbound", "volte", t.volte, **voice, **o)
    add(p.tadig, "outbound", "sms_mo", t.sms_mo, **o)
    add(p.tadig, "outbound", "sms_mt", 0, **o)
    add(p.tadig, "outbound", "gprs", t.data_mb, **data, **o)
    add(p.tadig, "outbound", "ss", t.ss, **o)
    add(p.tadig, "outbound", "camel", t.camel_fee, **o)
    # inbound: our prices for their subscribers in Hong Kong (reciprocal; no VAT here)
    i = "inbound"
    if p.tadig in _BANDED:
        add(
            p.tadig,
            i,
            "moc_local",
            t.moc_local,
            destination_prefix=HOME_COUNTRY_CODE,
            time_band="peak",
            weekdays="12345",
            band_start="08:00",
            band_end="20:00",
            **voice,
        )
        add(
            p.tadig,
            i,
            "moc_local",
            t.moc_local * 3 // 4,
            destination_prefix=HOME_COUNTRY_CODE,
            time_band="offpeak",
            weekdays="12345",
            band_start="20:00",
            band_end="08:00",
            **voice,
        )
        add(
            p.tadig,
            i,
            "moc_local",
            t.moc_local // 2,
            destination_prefix=HOME_COUNTRY_CODE,
            time_band="weekend",
            weekdays="67",
            **voice,
        )
    else:
        add(p.tadig, i, "moc_local", t.moc_local, destination_prefix=HOME_COUNTRY_CODE, **voice)
    add(p.tadig, i, "moc_home", t.moc_home, destination_prefix=p.country_code, **voice)
    add(p.tadig, i, "moc_international", t.moc_intl, **voice)
    add(
        p.tadig,
        i,
        "moc_destination",
        t.moc_intl * 3 // 5,
        destination_prefix=CHINA,
        **voice,
        note="mainland China",
    )
    add(p.tadig, i, "mtc", t.mtc, **voice)
    add(p.tadig, i, "sms_mo", t.sms_mo)
    add(p.tadig, i, "sms_mt", 0)
    add(p.tadig, i, "gprs", t.data_mb, **data)  # fmt: skip


def _csv(header: list[str], rows: Sequence[Mapping[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def reference_sources(day: date) -> dict[str, str]:
    """The CSV text of each rates source of the sample world (table → text)."""
    vf = _start(day).isoformat()
    agreements: list[dict[str, object]] = []
    for p in PARTNERS:
        agreements.append(
            {
                "partner": p.tadig,
                "name": f"{p.country} {p.tadig[3:]}",
                "standard": "tap",
                "tap_currency": "SDR",
                "tap_decimal_places": p.tap_decimal_places,
                "local_currency": LOCAL_CURRENCY,
                "iot_tolerance": 1000,
                "iot_tolerance_scale": 6,
                "late_days": 30,
                "duplicate_window_days": 80,
                "settlement_currency": _SETTLEMENT[p.tadig],
                "file_type": "live",
                "valid_from": vf,
                "valid_to": "",
            }
        )
    for c in CIBER_PARTNERS:
        agreements.append(
            {
                "partner": c.sid_bid,
                "name": c.name,
                "standard": "ciber",
                "tap_currency": "USD" if c.currency_type == 1 else "CAD",
                "tap_decimal_places": 2,
                "local_currency": "USD" if c.currency_type == 1 else "CAD",
                "iot_tolerance": 10_000,
                "iot_tolerance_scale": 6,
                "late_days": 30,
                "duplicate_window_days": 80,
                "settlement_currency": _SETTLEMENT[c.sid_bid],
                "file_type": "live",
                "valid_from": vf,
                "valid_to": "",
            }
        )
    ranges = [
        {"imsi_prefix": p.mcc_mnc, "partner": p.tadig, "valid_from": vf, "valid_to": "",
         "note": p.country}
        for p in PARTNERS
    ] + [
        {"imsi_prefix": CDMA_IMSI_PREFIX[c.sid_bid], "partner": c.sid_bid, "valid_from": vf,
         "valid_to": "", "note": c.name}
        for c in CIBER_PARTNERS
    ]  # fmt: skip
    fx = [
        {"currency": cur, "valid_from": vf, "valid_to": "", "rate": rate, "rate_scale": scale,
         "source": "IMF SDR valuation (synthetic, close to 2025)"}
        for cur, rate, scale in _FX
    ]  # fmt: skip
    agreement_cols = list(agreements[0])
    return {
        "agreements": _csv(agreement_cols, agreements),
        "fx": _csv(list(fx[0]), fx),
        "imsi_ranges": _csv(list(ranges[0]), ranges),
        "iot": _csv(_IOT_HEADER, _iot_rows(day)),
    }


def write_reference_data(rates_dir: Path, day: date) -> list[Path]:
    """Write the sample world's rates sources for ``day`` and import them; return the paths.

    The sources go to ``rates_dir/sources/<table>.csv`` (``agreements``, ``fx``,
    ``imsi_ranges``, ``iot``); the Parquet to ``rates_dir/<table>/…``. Other tables' sources
    already in the folder (e.g. ``subscribers``) are imported too.
    """
    src = rates_dir / SOURCES
    src.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for table, text in reference_sources(day).items():
        path = src / f"{table}.csv"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    # the import time of the world's reference-data version is its day (same seed, same bytes)
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for imported in import_rates(rates_dir, imported_at=at):
        written += sorted(imported.path.glob("**/*.parquet"))
    return written


# ---------------------------------------------------------------------------------------------
# visitor CDRs


def cdr_file_names(day: date) -> tuple[str, str]:
    """The mediation export of processing date ``day``: (calls and SMS CSV, data Parquet)."""
    return str(CdrName(HOME_TADIG, day, 1, "csv")), str(CdrName(HOME_TADIG, day, 2, "parquet"))


def _digits(rng: np.random.Generator, n: int, width: int) -> pl.Series:
    return pl.Series(rng.integers(0, 10**width, n, dtype=np.int64)).cast(pl.String).str.zfill(width)


def _pick(values: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(pl.Series(idx))


def visitor_cdr_frame(events: int, *, seed: int, day: date, faults: bool = True) -> pl.DataFrame:
    """The visitors' records of processing date ``day`` as a typed table (before any file).

    Columns are those of ``specs/mediation/cdr.csv`` with ``start_time`` a datetime; rows are
    in start-time order. Vectorised (numpy), so a million rows take about a second.
    """
    rng = np.random.default_rng([seed, day.toordinal(), 6])
    gsm = [p for p in PARTNERS if p.weight]
    weights = np.array([p.weight for p in gsm] + [3, 2], dtype=np.float64)
    codes = [p.tadig for p in gsm] + [c.sid_bid for c in CIBER_PARTNERS]
    prefixes = [p.mcc_mnc for p in gsm] + [CDMA_IMSI_PREFIX[c.sid_bid] for c in CIBER_PARTNERS]
    homes = [p.country_code for p in gsm] + ["1", "1"]
    mobiles = [p.national_mobile for p in gsm] + ["1415", "1604"]
    lengths = [p.number_length for p in gsm] + [11, 11]
    cdma = np.array([False] * len(gsm) + [True, True])
    n = events
    who = rng.choice(len(codes), size=n, p=weights / weights.sum())
    # 30 visitors per partner, the same every day: IMSI = prefix + MSIN (15 digits in all),
    # MSISDN = the partner's mobile prefix + digits to the partner's number length
    visitor = rng.integers(0, 30, n)
    partners = pl.DataFrame(
        {
            "who": np.arange(len(codes)),
            "prefix": prefixes,
            "mobile": mobiles,
            "length": lengths,
        }
    )
    ids = pl.DataFrame({"who": who, "visitor": visitor}).join(
        partners, on="who", how="left", maintain_order="left"
    )
    ids = ids.select(
        (
            pl.col("prefix")
            + (pl.col("visitor") * 7919 + pl.col("who") * 104729 + 1000)
            .cast(pl.String)
            .str.zfill(10)
            .str.slice(0, 15 - pl.col("prefix").str.len_chars())
        ).alias("imsi"),
        (
            pl.col("mobile")
            + (pl.col("visitor") * 1_000_003 + pl.col("who") * 7)
            .cast(pl.String)
            .str.zfill(12)
            .str.slice(0, pl.col("length") - pl.col("mobile").str.len_chars())
        ).alias("msisdn"),
    )
    imsi, msisdn = ids["imsi"], ids["msisdn"]
    # record types: CDMA visitors make and receive calls only (CIBER is voice)
    rtype = rng.choice(5, size=n, p=[0.30, 0.20, 0.10, 0.05, 0.35])
    is_cdma = cdma[who]
    rtype = np.where(is_cdma, rtype % 2, rtype)
    types = _pick(["moc", "mtc", "sms_mo", "sms_mt", "gprs"], rtype)
    # start: traffic day = the day before, ~3 % the day before that; busier in the afternoon
    traffic = datetime(day.year, day.month, day.day) - timedelta(days=1)
    late = rng.random(n) < 0.03
    hours = np.clip(rng.triangular(0, 15, 24, n).astype(np.int64), 0, 23)
    secs = hours * 3600 + rng.integers(0, 3600, n) - late * 86400
    start = pl.Series(
        (np.datetime64(traffic, "s") + secs.astype("timedelta64[s]")).astype("datetime64[us]")
    )
    # called numbers: Hong Kong (local), the visitor's home, mainland China, a third country
    dest = rng.choice(4, size=n, p=[0.5, 0.25, 0.1, 0.15])
    hk = HOME_COUNTRY_CODE + _pick(list("56789"), rng.integers(0, 5, n)) + _digits(rng, n, 7)
    home_no = _pick(homes, who) + _digits(rng, n, 9)
    china = CHINA + "1" + _digits(rng, n, 9)
    third = _pick(list(_INTL), rng.integers(0, len(_INTL), n)) + _digits(rng, n, 9)
    called = pl.select(
        pl.when(pl.Series(dest == 0)).then(hk)
        .when(pl.Series(dest == 1)).then(home_no)
        .when(pl.Series(dest == 2)).then(china)
        .otherwise(third)
    ).to_series()  # fmt: skip
    is_voice = rtype <= 1
    is_gprs = rtype == 4
    duration = np.where(
        is_voice,
        rng.exponential(140, n).astype(np.int64) + 3,
        np.where(is_gprs, rng.integers(5, 3600, n), 0),
    )
    down = (rng.exponential(6_000_000, n)).astype(np.int64)
    up = down // rng.integers(6, 20, n) + rng.integers(0, 2000, n)
    msc = _pick([f"8529010000{i}" for i in (1, 2, 3)], rng.integers(0, 3, n))
    sgsn = _pick([f"203.0.113.{i}" for i in (11, 12)], rng.integers(0, 2, n))
    mo = (rtype == 0) | (rtype == 2)
    mt = (rtype == 1) | (rtype == 3)
    caller = HOME_COUNTRY_CODE + "2" + _digits(rng, n, 7)
    stamp = day.strftime("%Y%m%d")
    df = pl.DataFrame(
        {
            "record_id": pl.Series(np.arange(n)).cast(pl.String).str.zfill(7),
            "record_type": types,
            "imsi": imsi,
            "msisdn": msisdn,
            "imei": "3539111" + _digits(rng, n, 8),
            "called_number": pl.select(pl.when(pl.Series(mo)).then(called)).to_series(),
            "calling_number": pl.select(pl.when(pl.Series(mt)).then(caller)).to_series(),
            "start_time": start,
            "utc_offset": pl.Series([UTC_OFFSET] * n, dtype=pl.String),
            "duration": pl.select(
                pl.when(pl.Series(is_voice | is_gprs)).then(pl.Series(duration))
            ).to_series(),
            "volume_up": pl.select(pl.when(pl.Series(is_gprs)).then(pl.Series(up))).to_series(),
            "volume_down": pl.select(pl.when(pl.Series(is_gprs)).then(pl.Series(down))).to_series(),
            "apn": pl.select(pl.when(pl.Series(is_gprs)).then(pl.lit("internet"))).to_series(),
            "rec_entity_type": pl.select(
                pl.when(pl.Series(is_gprs)).then(pl.lit("sgsn")).otherwise(pl.lit("msc"))
            ).to_series(),
            "rec_entity_id": pl.select(
                pl.when(pl.Series(is_gprs)).then(sgsn).otherwise(msc)
            ).to_series(),
            "location_area": pl.Series(rng.integers(1000, 60000, n)),
            "cell_id": pl.Series(rng.integers(1, 65535, n)),
            "charging_id": pl.select(
                pl.when(pl.Series(is_gprs)).then(pl.Series(rng.integers(1, 2**32, n)))
            ).to_series(),
            "cause_for_term": pl.Series([None] * n, dtype=pl.Int64),
        }
    )
    df = df.with_columns(
        pl.col("calling_number").cast(pl.String), pl.col("apn").cast(pl.String)
    ).sort("start_time", "record_id", maintain_order=True)
    df = df.with_columns((f"{HOME_TADIG}-{stamp}-" + pl.col("record_id")).alias("record_id"))
    if faults and n >= 50:
        df = _plant(df)
    return df


def _plant(df: pl.DataFrame) -> pl.DataFrame:
    """A visitor from no partner's IMSI range (the 3rd data session): rated ``unrated``."""
    row = [i for i, t in enumerate(df["record_type"].to_list()) if t == "gprs"][2]
    imsi = UNKNOWN_IMSI_PREFIX + "0000012345"
    idx = pl.int_range(pl.len())
    return df.with_columns(
        pl.when(idx == row).then(pl.lit(imsi)).otherwise(pl.col("imsi")).alias("imsi")
    )


def _plant_text(text: pl.DataFrame) -> pl.DataFrame:
    """The reader's planted faults, three bad CDR rows.

    A letter in the called number of the 4th MOC, a negative duration on the 6th MTC, and the
    31st row repeating the 30th row's record id.
    """
    types = text["record_type"].to_list()
    moc = [i for i, t in enumerate(types) if t == "moc"][3]
    mtc = [i for i, t in enumerate(types) if t == "mtc"][5]
    idx = pl.int_range(pl.len())
    number = pl.col("called_number")
    return text.with_columns(
        pl.when(idx == moc).then(number.str.slice(0, 4) + "O" + number.str.slice(5))
        .otherwise(number).alias("called_number"),
        pl.when(idx == mtc).then(pl.lit("-5")).otherwise(pl.col("duration")).alias("duration"),
        pl.when(idx == 30).then(pl.col("record_id").shift(1)).otherwise(pl.col("record_id"))
        .alias("record_id"),
    )  # fmt: skip


def write_visitor_cdrs(out_dir: Path, *, events: int, seed: int, day: date) -> list[Path]:
    """Write the mediation export of processing date ``day`` into ``out_dir``; return the paths.

    Two files (:func:`cdr_file_names`): calls and SMS as CSV, data sessions as Parquet. With
    50 events or more, faults are planted (module docstring).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    df = visitor_cdr_frame(events, seed=seed, day=day)
    text = df.with_columns(
        pl.col("start_time").dt.strftime("%Y-%m-%dT%H:%M:%S"),
        pl.all().exclude("start_time").cast(pl.String),
    )
    csv_name, pq_name = cdr_file_names(day)
    calls = text.filter(pl.col("record_type") != "gprs")
    if events >= 50:
        calls = _plant_text(calls)
    data = df.filter(pl.col("record_type") == "gprs")
    csv_path = out_dir / csv_name
    csv_path.write_text(calls.write_csv(null_value="", line_terminator="\n"), encoding="utf-8")
    pq_path = out_dir / pq_name
    pq.write_table(data.to_arrow(), pq_path, compression="zstd")
    return [csv_path, pq_path]
