"""The columnar TAP-out writer gives the bytes of the per-event asn1tools reference.

:func:`clearing.outbound.tap.encode_transfer_batch` writes the call events with the columnar
BER writer (:mod:`clearing.codecs.ber_write`); :func:`encode_transfer_batch_reference` is the
former encoder, one asn1tools value per event. Both must write the same file for the same rows,
for every shape of event: each record type, every optional element present and absent, tax,
odd and even digit strings, integers of every width and sign, lengths in every BER form.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asn1tools
import numpy as np
import polars as pl
import pytest
from asn1tools.codecs import ber as asn1_ber

from clearing.codecs import ber_write as ber
from clearing.outbound import tap
from clearing.outbound.tap import TapHeader, encode_transfer_batch, encode_transfer_batch_reference
from clearing.rating.cdr import empty_records
from clearing.rating.inbound import RATED_VISITOR_COLUMNS

ROOT = Path(__file__).parents[2]
HEADER = TapHeader(
    sender="HKGCL",
    recipient="TSTA1",
    fsn=7,
    test=False,
    processing_date=date(2026, 11, 24),
    utc_offset="+0800",
    local_currency="HKD",
    tap_currency="SDR",
    tap_decimal_places=5,
    exchange_rate=1062340,
    exchange_rate_decimals=5,
)
EDGE_INTS = [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 2**23, 2**31 - 1, 2**40, 2**62]
EDGE_INTS += [2**63 - 1, -1, -128, -129, -32768, -32769, -(2**40), -(2**63)]


def _digits(rng: np.random.Generator, lo: int, hi: int, alphabet: str = "0123456789") -> str:
    return "".join(rng.choice(list(alphabet), int(rng.integers(lo, hi + 1))))


def _maybe(rng: np.random.Generator, value: Any, p_null: float = 0.3) -> Any:
    return None if rng.random() < p_null else value


def _int(rng: np.random.Generator, hi: int = 10**6) -> int:
    if rng.random() < 0.2:
        return int(rng.choice(EDGE_INTS))
    return int(rng.integers(0, hi))


def rated_rows(n: int, seed: int) -> pl.DataFrame:
    """``n`` rated rows of every shape TAP-out meets (and some it should never meet)."""
    rng = np.random.default_rng(seed)
    names = [*empty_records().columns, *RATED_VISITOR_COLUMNS]
    services: dict[str, list[str | None]] = {
        "moc": ["moc_local", "moc_home", "moc_international", "moc_destination", None, "x"],
        "mtc": ["mtc"],
        "sms_mo": ["sms_mo"],
        "sms_mt": ["sms_mt"],
        "gprs": ["gprs"],
    }
    rows = []
    t0 = datetime(2026, 11, 23)
    for i in range(n):
        kind = str(rng.choice(list(services)))
        charge = _int(rng) if rng.random() < 0.9 else 0
        tax_rate = int(rng.choice([0, 0, 2000000, 500000, 10000000]))
        row: dict[str, Any] = dict.fromkeys(names)
        row.update(
            record_id=f"R{int(rng.integers(0, n // 2 + 1)):05d}",  # ties: record id repeats
            record_type=kind,
            imsi=_digits(rng, 6, 15),
            msisdn=_maybe(rng, _digits(rng, 5, 15)),
            imei=_maybe(rng, _digits(rng, 14, 16)),
            called_number=_maybe(rng, _digits(rng, 1, 20, "0123456789abcdefABCDEF")),
            calling_number=_maybe(rng, _digits(rng, 1, 20)),
            start_time=t0 + timedelta(seconds=int(rng.integers(0, 3 * 86400))),
            utc_offset=str(rng.choice(["+0800", "-0500", "+0000", "+0545"])),
            duration=_maybe(rng, _int(rng, 7200)),
            volume_up=_maybe(rng, _int(rng, 10**9)),
            volume_down=_maybe(rng, _int(rng, 10**9)),
            apn=_maybe(rng, "internet." + "x" * int(rng.choice([1, 40, 150, 300]))),
            rec_entity_type=str(rng.choice(list(tap.REC_ENTITY_TYPES))),
            rec_entity_id=f"8529010{int(rng.integers(0, 5)):04d}",
            location_area=_maybe(rng, _int(rng, 65536)),
            cell_id=_maybe(rng, _int(rng, 268435456)),
            charging_id=_maybe(rng, _int(rng, 2**32)),
            cause_for_term=_maybe(rng, _int(rng, 256), 0.6),
            file=str(rng.choice(["a.csv", "b.parquet"])),
            line=i + 2,
            partner="TSTA1",
            service=str(rng.choice(np.array(services[kind], dtype=object)))
            if kind == "moc"
            else services[kind][0],
            chargeable_units=_int(rng),
            charged_units=_int(rng),
            tax_rate=_maybe(rng, tax_rate, 0.1),
            charge=charge,
            tax=_int(rng) if tax_rate else _maybe(rng, 0),
            status="rated",
        )
        if rng.random() < 0.05:
            row["msisdn"] = ""  # empty: absent, as null
        rows.append(row)
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **empty_records().schema,
        **dict.fromkeys(RATED_VISITOR_COLUMNS, pl.String),
    }
    for c in ("chargeable_units", "charged_units", "tax_rate", "charge", "tax"):
        schema[c] = pl.Int64
    return pl.DataFrame(rows, schema=schema, orient="row")


@pytest.fixture(scope="module")
def tap_spec() -> Any:
    return asn1tools.compile_files([str(ROOT / "specs" / "asn1" / "TAP-0312.asn")], "ber")


def _no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: Any) -> Any:
        raise AssertionError("the columnar writer fell back to the reference")

    monkeypatch.setattr(tap, "encode_transfer_batch_reference", fail)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columnar_file_is_the_reference_file(
    seed: int, tap_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rated_rows(1500, seed)
    ref, ref_totals = encode_transfer_batch_reference(rows, HEADER)
    _no_fallback(monkeypatch)
    fast, fast_totals = encode_transfer_batch(rows, HEADER)
    assert fast_totals == ref_totals
    assert fast == ref
    # and an independent decoder reads it whole
    kind, batch = tap_spec.decode("DataInterChange", fast)
    assert kind == "transferBatch"
    assert len(batch["callEventDetails"]) == rows.height == fast_totals.events


def test_every_event_shape_alone_and_in_any_order() -> None:
    rows = rated_rows(300, 9)
    for kind in ("moc", "mtc", "sms_mo", "sms_mt", "gprs"):
        part = rows.filter(pl.col("record_type") == kind)
        assert encode_transfer_batch(part, HEADER) == encode_transfer_batch_reference(part, HEADER)
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=4)
    assert encode_transfer_batch(shuffled, HEADER)[0] == encode_transfer_batch(rows, HEADER)[0]


def test_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rated_rows(200, 5)
    ref = encode_transfer_batch_reference(rows, HEADER)
    _no_fallback(monkeypatch)
    for chunk in (1, 7, 64):
        monkeypatch.setattr(tap, "_CHUNK", chunk)
        assert encode_transfer_batch(rows, HEADER) == ref


def test_one_event() -> None:
    rows = rated_rows(1, 11)
    assert encode_transfer_batch(rows, HEADER) == encode_transfer_batch_reference(rows, HEADER)


def test_rows_the_columnar_writer_leaves_to_the_reference() -> None:
    rows = rated_rows(50, 12)
    # not BCD: the reference decides (bytes.fromhex refuses it)
    odd = rows.with_columns(pl.lit("12 4+").alias("msisdn"))
    with pytest.raises(ValueError, match="non-hexadecimal"):
        encode_transfer_batch_reference(odd, HEADER)
    with pytest.raises(ValueError, match="non-hexadecimal"):
        encode_transfer_batch(odd, HEADER)
    # a missing IMSI: the reference's error, not a file
    no_imsi = rows.with_columns(pl.lit(None, pl.String).alias("imsi"))
    with pytest.raises(TypeError):
        encode_transfer_batch(no_imsi, HEADER)


def test_ber_integers_and_lengths_are_asn1tools() -> None:
    values = [*EDGE_INTS, *(v + d for v in EDGE_INTS for d in (-1, 1) if -(2**63) < v + d < 2**63)]
    col = ber.int_col(np.array(values, dtype=np.int64))
    for i, v in enumerate(values):
        got = bytes(col.data[i, col.data.shape[1] - col.length[i] :])
        assert got == asn1_ber.encode_signed_integer(v), v
    for length in (0, 1, 127, 128, 255, 256, 65535, 65536, 2**24 - 1, 2**24):
        assert ber.length_octets(length) == bytes(asn1_ber.encode_length_definite(length))
    for number in (1, 30, 31, 127, 128, 427, 16383, 16384):
        for constructed in (False, True):
            flags = asn1_ber.Class.APPLICATION | (
                asn1_ber.Encoding.CONSTRUCTED if constructed else asn1_ber.Encoding.PRIMITIVE
            )
            want = bytes(asn1_ber.encode_tag(number, flags))
            assert ber.app_tag(number, constructed=constructed) == want


@pytest.mark.parametrize("test_data", [False, True])
@pytest.mark.parametrize("currency", ["SDR", "USD"])
def test_headers_and_notifications_are_the_reference(
    test_data: bool, currency: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    header = replace(HEADER, test=test_data, tap_currency=currency, fsn=99999, exchange_rate=7)
    assert tap.encode_notification(header) == tap.encode_notification_reference(header)
    rows = rated_rows(40, 13)
    ref = encode_transfer_batch_reference(rows, header)
    _no_fallback(monkeypatch)
    assert encode_transfer_batch(rows, header) == ref
