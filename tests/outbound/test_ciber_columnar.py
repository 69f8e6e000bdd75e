"""The columnar CIBER-out writer gives the bytes (and batch numbers) of ``ciber.write``.

:func:`clearing.outbound._ciber_out.write_columnar` formats every type-22 field as a polars
column; :func:`clearing.codecs.ciber.write` is the codec's per-event writer. For the CIBER-out
event table of rated visitor calls both must write the same batches, and for anything the
codec would refuse or read differently the columnar writer must step aside (return None).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from clearing.codecs import ciber
from clearing.errors import EncodeError
from clearing.outbound._ciber_out import EVENT_COLUMNS, write_columnar

DAY = date(2026, 11, 24)
SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "sender": pl.String,
    "recipient": pl.String,
    "serving_network": pl.String,
    "event_index": pl.Int64,
    "event_kind": pl.String,
    "imsi": pl.String,
    "msisdn": pl.String,
    "called_number": pl.String,
    "calling_number": pl.String,
    "local_start": pl.Datetime("us"),
    "currency": pl.String,
    "charge": pl.Int64,
    "charge_airtime": pl.Int64,
    "charge_toll": pl.Int64,
    "tax": pl.Int64,
    "air_chargeable_time": pl.Int64,
    "air_elapsed_time": pl.Int64,
}


def _digits(rng: np.random.Generator, lo: int, hi: int) -> str:
    return "".join(rng.choice(list("0123456789"), int(rng.integers(lo, hi + 1))))


def events(n: int, seed: int, *, currencies: tuple[Any, ...] = ("USD",)) -> pl.DataFrame:
    """``n`` CIBER-out events as ``clearing.outbound.run._ciber_events`` makes them."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 23)
    rows = []
    for i in range(n):
        mo = bool(rng.random() < 0.6)
        charge = int(rng.choice([0, int(rng.integers(1, 10**6)), 99_999_999], p=[0.2, 0.79, 0.01]))
        duration = None if rng.random() < 0.1 else int(rng.integers(0, 600_000))
        rows.append(
            {
                "sender": "60099",
                "recipient": "01234",
                "serving_network": "60099",
                "event_index": i,
                "event_kind": "mobileOriginatedCall" if mo else "mobileTerminatedCall",
                "imsi": _digits(rng, 6, 15),
                "msisdn": None if rng.random() < 0.2 else _digits(rng, 5, 15),
                "called_number": None if rng.random() < 0.3 else _digits(rng, 1, 15),
                "calling_number": None if rng.random() < 0.5 else _digits(rng, 1, 15),
                "local_start": None
                if rng.random() < 0.02
                else t0 + timedelta(seconds=int(rng.integers(0, 3 * 86400))),
                "currency": currencies[int(rng.integers(0, len(currencies)))],
                "charge": charge,
                "charge_airtime": charge,
                "charge_toll": 0,
                "tax": 0 if rng.random() < 0.7 else int(rng.integers(0, 10**5)),
                "air_chargeable_time": duration,
                "air_elapsed_time": duration,
            }
        )
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def _reference(ev: pl.DataFrame, sequences: dict[tuple[str, str], int]) -> bytes:
    return ciber.write(ev.to_arrow(), creation_date=DAY, sequences=sequences)


@pytest.mark.parametrize(
    ("n", "previous", "currencies"),
    [
        (1, None, ("USD",)),
        (500, 7, ("USD", None, "", "CAD")),
        (20_500, 998, ("USD",)),  # three batches, the numbers wrap 999 → 001
    ],
)
def test_columnar_batches_are_the_codecs(
    n: int, previous: int | None, currencies: tuple[Any, ...]
) -> None:
    ev = events(n, n, currencies=currencies)
    start = {} if previous is None else {("60099", "01234"): previous}
    ref_seq, fast_seq = dict(start), dict(start)
    ref = _reference(ev, ref_seq)
    fast = write_columnar(ev, creation_date=DAY, sequences=fast_seq)
    assert fast is not None
    assert fast == ref
    assert fast_seq == ref_seq
    # and the codec reads it back
    assert ciber.read(fast).num_rows == n


def test_only_the_columns_the_writer_knows() -> None:
    # the layout fields the table overrides are the ones the writer handles as overrides
    assert set(ciber.layout("22").by_name) & EVENT_COLUMNS == {
        "air_chargeable_time",
        "air_elapsed_time",
        "called_number",
    }
    ev = events(5, 1).with_columns(pl.lit("1").alias("esn"))
    assert write_columnar(ev, creation_date=DAY, sequences={}) is None


@pytest.mark.parametrize(
    "change",
    [
        {"charge": -1},  # negative money
        {"tax": -5},
        {"msisdn": ""},  # not digits
        {"called_number": "12345678901234567"},  # too long
        {"calling_number": "12a"},
        {"imsi": None},  # no MSID
        {"currency": "EUR"},  # no CIBER currency code
        {"air_elapsed_time": 600_000},  # more than 9999:59
        {"event_kind": "gprsCall"},
        {"local_start": datetime(2080, 1, 1)},  # beyond the two-digit years
    ],
)
def test_what_the_codec_refuses_is_left_to_it(change: dict[str, Any]) -> None:
    ev = events(20, 2)
    ((name, value),) = change.items()
    ev = ev.with_columns(
        pl.when(pl.col("event_index") == 3)
        .then(pl.lit(value, dtype=SCHEMA[name]))
        .otherwise(pl.col(name))
        .alias(name)
    )
    seq = {("60099", "01234"): 5}
    assert write_columnar(ev, creation_date=DAY, sequences=seq) is None
    assert seq == {("60099", "01234"): 5}
    with pytest.raises(EncodeError):
        _reference(ev, {})
