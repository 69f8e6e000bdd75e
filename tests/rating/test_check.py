"""The outbound IOT check: hand-worked events of the tiny world, and the sample world's files."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from clearing.codecs import ciber, fast
from clearing.codecs.events import empty_event_table
from clearing.rating._book import Rates
from clearing.rating.check import iot_check, over_threshold
from clearing.samples.ciber import generate_ciber
from clearing.samples.tap import generate_tap
from clearing.samples.world import write_reference_data

if TYPE_CHECKING:
    from pathlib import Path


def events(*rows: dict[str, Any]) -> pl.DataFrame:
    base = pl.from_arrow(empty_event_table())
    assert isinstance(base, pl.DataFrame)
    full = []
    for i, r in enumerate(rows):
        row: dict[str, Any] = dict.fromkeys(base.columns)
        row.update(
            source_format="tap",
            sender="TSTA1",
            recipient="HKGCL",
            file_sequence_number="00042",
            event_index=i,
            byte_offset=0,
            byte_length=0,
            imsi="454990000000001",
            local_start=datetime(2026, 11, 20, 10, 0, 0),
            utc_offset="+0100",
            currency="SDR",
            charge_scale=5,
            tele_service_code="11",
        )
        row.update(r)
        full.append(row)
    df = pl.DataFrame(full, schema=base.schema, orient="row")
    return df.with_columns(pl.lit("CDTSTA1HKGCL00042").alias("file"))


def test_breach_tolerance_camel_discount_and_sdr_to_eur(tiny_rates: Rates) -> None:
    ev = events(
        # e0: 600 s to +44 (moc_international 0.42/min): 4.20 SDR as charged → no breach.
        #     What we owe in EUR: 4.20 × 1.17234 = 4.923828 → 4.92 EUR (one rounding)
        {"event_kind": "mobileOriginatedCall", "called_number": "442079460000", "duration": 600,
         "charge": 420000},
        # e1: 95 s to +33 (moc_local 0.038/min, 30/1): 0.038 × 95 / 60 = 0.060166… → 0.06017.
        #     Charged 0.07000: difference 0.00983 > tolerance 0.001 → a breach
        {"event_kind": "mobileOriginatedCall", "called_number": "33612345678", "duration": 95,
         "charge": 7000},
        # e2: 95 s back home (+852, moc_home 0.038/min): expected 0.06017, charged 0.06100:
        #     difference 0.00083 ≤ 0.001 → within tolerance
        {"event_kind": "mobileOriginatedCall", "called_number": "85291234567", "duration": 95,
         "charge": 6100},
        # e3: 10 MiB of data at 0.0015 SDR/MiB = 0.01500
        {"event_kind": "gprsCall", "tele_service_code": None, "data_volume_incoming": 9_437_184,
         "data_volume_outgoing": 1_048_576, "charge": 1500},
        # e4: MTC 60 s (0.0082/min) = 0.00820 + CAMEL fee 0.01200: gross 0.02020 both sides
        {"event_kind": "mobileTerminatedCall", "duration": 60, "charge": 820, "camel_fee": 1200},
        # e5: SMS-MO 0.0095, 0.0015 discounted: charge 0.008 + discount 0.0015 = 0.0095
        {"event_kind": "mobileOriginatedCall", "tele_service_code": "22", "called_number": "33",
         "duration": 0, "charge": 800, "discount": 150},
        # e6: an uncharged supplementary-service event: not priced
        {"event_kind": "supplServiceEvent", "tele_service_code": None},
    )  # fmt: skip
    result = iot_check(ev, tiny_rates)
    r = result.rated
    assert r["status"].to_list() == ["checked"] * 6 + ["unchecked"]
    assert r["expected"].to_list() == [420000, 6017, 6017, 1500, 2020, 950, None]
    assert r["charged"].to_list() == [420000, 7000, 6100, 1500, 2020, 950, None]
    assert r["breach"].to_list() == [False, True, False, False, False, False, False]
    assert r["service"].to_list()[:6] == [
        "moc_international",
        "moc_local",
        "moc_home",
        "gprs",
        "mtc",
        "sms_mo",
    ]
    assert r["settlement_currency"][0] == "EUR"
    assert (r["settlement_amount"][0], r["settlement_scale"][0]) == (492, 2)
    f = result.findings.row(0, named=True)
    assert result.findings.height == 1
    assert (f["partner"], f["file"], f["event_index"]) == ("TSTA1", "CDTSTA1HKGCL00042", 1)
    assert (f["expected"], f["charged"], f["difference"]) == (6017, 7000, 983)
    assert f["iot_key"] == "TSTA1/outbound/moc_local/33/all@2026-01-01"
    assert f["tolerance"] == "1000e-6"
    assert len(f["iot_version"]) == 16


def test_sample_partners_charge_exactly_their_iot(tmp_path: Path) -> None:
    day = date(2026, 11, 22)
    write_reference_data(tmp_path / "rates", day)
    rates = Rates.load(tmp_path / "rates")
    frames = []
    for path in generate_tap(tmp_path / "in", events=900, seed=5, day=day):
        data = path.read_bytes()
        if data[:1] == b"\x62":  # the Notification
            continue
        batch = fast.decode_tap(data)
        assert batch.problems == []
        frame = pl.from_arrow(batch.events)
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame.with_columns(pl.lit(path.name).alias("file")))
    for path in generate_ciber(tmp_path / "in", seed=5, day=day):
        table = ciber.read(path.read_bytes())
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame.with_columns(pl.lit(path.name).alias("file")))
    ev = pl.concat(frames, how="diagonal_relaxed")
    result = iot_check(ev, rates)
    assert result.findings.height == 0
    checked = result.rated.filter(pl.col("status") == "checked")
    # everything the IOT prices is checked: uncharged SS events, CIBER other charges and
    # CIBER messages (no called number) are the only ones left out
    left_out = result.rated.filter(pl.col("status") != "checked")
    assert set(left_out["event_kind"].to_list()) <= {
        "supplServiceEvent",
        "ciberOtherChargesAndCredits",
        "mobileOriginatedCall",
    }
    assert checked.height > 850
    assert (checked["difference"] == 0).all()
    assert checked["settlement_amount"].null_count() == 0


def test_breaches_over_the_thresholds(tiny_rates: Rates) -> None:
    """MTC 60 s at 0.0082 SDR/min: expected 0.00820 SDR; the settlement currency is EUR
    (1.17234 per SDR), the tolerance 0.001 SDR."""
    mtc = {"event_kind": "mobileTerminatedCall", "duration": 60}
    ev = events(
        {**mtc, "charge": 2**62},  # e0: the overflow-sized charge: far above both thresholds
        {**mtc, "charge": 9020},  # e1: 0.09020 = 11 × 0.0082: exactly 1000 % above, not over
        {**mtc, "charge": 9021},  # e2: 0.08201 above: more than 1000 %
        {**mtc, "charge": 0},  # e3: a breach below the IOT: never held
        {**mtc, "charge": 900},  # e4: within the tolerance: no breach
    )
    rated = iot_check(ev, tiny_rates).rated
    assert rated["breach"].to_list() == [True, True, True, True, False]
    # the overcharge in EUR cents: 0.08200 × 1.17234 = 0.0961… → 0.10; 0.08201 → 0.10
    assert rated["over_settlement"].to_list()[1:] == [10, 10, None, None]
    default = over_threshold(rated, lambda _p: (Decimal(100), Decimal(1000)))
    assert default["over_threshold"].to_list() == [True, False, True, False, False]
    # absolute only, 0.09 EUR: 0.10 is over; percent only, off absolute: e1 is not over
    absolute = over_threshold(rated, lambda _p: (Decimal("0.09"), None))
    assert absolute["over_threshold"].to_list() == [True, True, True, False, False]
    # 0.10 EUR is not above 0.10; both off: nothing is held
    assert over_threshold(rated, lambda _p: (Decimal("0.10"), None))[
        "over_threshold"
    ].to_list() == [True, False, False, False, False]
    assert not over_threshold(rated, lambda _p: (None, None))["over_threshold"].any()
