"""CIBER-out detail records written a column at a time (polars), for the rated visitor calls.

:func:`clearing.codecs.ciber.write` builds one dict per event and formats every field in Python
(~50 µs a record). The CIBER-out table of :func:`clearing.outbound.run._ciber_events` has a
fixed set of columns, so each type-22 field is one polars expression over all rows instead:
the same values as ``ciber.write``'s ``_event_values`` (defaults, the event's columns named like
a layout field winning), formatted by the same rules, joined into lines. Batches (one per
sender, recipient and currency, at most ``MAX_RECORDS`` records, numbered per sender/recipient
pair) and their header and trailer records are made as ``ciber.write`` makes them, with
:func:`clearing.codecs.ciber.encode_record`.

Anything ``ciber.write`` would refuse or treat specially (a negative charge, a value too long or
not digits, an unknown currency, another event kind or column) makes
:func:`write_columnar` return None: the caller then uses ``ciber.write`` itself, which decides.
``tests/outbound/test_ciber_columnar.py`` compares the two.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from clearing.codecs import ciber
from clearing.codecs.ciber import CURRENCY_CODE_BY_ISO, MAX_RECORDS, YEAR_PIVOT

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, MutableMapping
    from pathlib import Path

__all__ = ["EVENT_COLUMNS", "write_columnar", "write_columnar_to"]

#: The columns of the CIBER-out event table this writer takes (no other).
EVENT_COLUMNS: Final = frozenset(
    {
        "sender",
        "recipient",
        "serving_network",
        "event_index",
        "event_kind",
        "imsi",
        "msisdn",
        "called_number",
        "calling_number",
        "local_start",
        "currency",
        "charge",
        "charge_airtime",
        "charge_toll",
        "tax",
        "air_chargeable_time",
        "air_elapsed_time",
    }
)
_KINDS: Final = ("mobileOriginatedCall", "mobileTerminatedCall")
# what ciber.write's defaults for a type-22 record are (_DETAIL_DEFAULTS)
_DEFAULTS: Final[dict[str, Any]] = {
    "special_features_used": "0",
    "call_completion_indicator": 2,
    "call_termination_indicator": 2,
    "time_zone_indicator": 99,
    "toll_network_carrier_id": "00000",
}
_DIGITS: Final = r"^[0-9]+$"
_PRINTABLE: Final = r"^[ -~]*$"
#: Formatted batches held in memory before they go on to a temporary file (per file).
_SPOOL: Final = 16 << 20


def _values() -> dict[str, pl.Expr]:
    """The type-22 field values of each event (``ciber._writer._event_values``), as columns."""
    charge = pl.col("charge").fill_null(0)
    tax = pl.col("tax").fill_null(0)
    toll = pl.col("charge_toll").fill_null(0)
    air = pl.coalesce(pl.col("charge_airtime"), charge - toll)
    other = charge - toll - air
    mo = pl.col("event_kind") == "mobileOriginatedCall"
    msisdn = pl.col("msisdn")
    calling = pl.when(pl.col("calling_number").str.len_bytes() > 0).then(pl.col("calling_number"))
    values: dict[str, pl.Expr] = {k: pl.lit(v) for k, v in _DEFAULTS.items()}
    values |= {
        "home_sid_bid": pl.col("recipient"),
        "serving_sid_bid": pl.when(pl.col("serving_network").str.len_bytes() > 0)
        .then(pl.col("serving_network"))
        .otherwise(pl.col("sender")),
        "mdn": msisdn,
        "total_charges_and_taxes": charge + tax,
        "total_state_province_taxes": tax,
        "currency_type": pl.col("_currency_type"),
        "original_batch_sequence_number": pl.col("_seq"),
        "msid_indicator": pl.lit(1),
        "msid": pl.col("imsi"),
        "call_date": pl.col("local_start"),
        "air_connect_time": pl.col("local_start"),
        # no `duration` column: the event's air times are its own columns
        "air_chargeable_time": pl.col("air_chargeable_time"),
        "air_elapsed_time": pl.col("air_elapsed_time"),
        "call_direction": pl.when(mo).then(pl.lit(1)).otherwise(pl.lit(2)),
        "caller_id": pl.coalesce(calling, pl.when(mo).then(msisdn)),
        "called_number": pl.col("called_number"),
        "air_charge": air,
        "toll_charge": toll,
        "other_charge_no_1_indicator": pl.when(other != 0).then(pl.lit(1)).otherwise(pl.lit(0)),
        "other_charge_no_1": other,
    }
    return values


def _field(f: ciber.Field, value: pl.Expr | None) -> tuple[pl.Expr, pl.Expr]:
    """``(text, bad)``: the field's text (``_encode_field``) and the rows it cannot take."""
    n, fmt = f.length, f.format
    no = pl.lit(False)
    if fmt in ("N", "money"):
        v = pl.lit(0, pl.Int64) if value is None else value.cast(pl.Int64).fill_null(0)
        text = v.cast(pl.String)
        return text.str.zfill(n), (v < 0) | (text.str.len_chars() > n)
    if fmt in ("D", "number"):
        if value is None:
            return pl.lit("0" * n), no
        s = value.cast(pl.String)
        bad = s.is_not_null() & (~s.str.contains(_DIGITS) | (s.str.len_chars() > n))
        s = s.fill_null("")
        padded = s.str.pad_end(n, "0") if fmt == "number" or n >= 15 else s.str.zfill(n)
        return padded, bad
    if fmt == "X":
        if value is None:
            return pl.lit(" " * n), no
        s = value.cast(pl.String)
        bad = s.is_not_null() & (~s.str.contains(_PRINTABLE) | (s.str.len_chars() > n))
        return s.fill_null("").str.pad_end(n, " "), bad
    if fmt in ("date", "time"):
        if value is None:
            return pl.lit("0" * 6), no
        text = value.dt.strftime("%y%m%d" if fmt == "date" else "%H%M%S").fill_null("000000")
        if fmt == "time":
            return text, no
        low = 1900 + YEAR_PIVOT
        year = value.dt.year()
        return text, value.is_not_null() & ((year < low) | (year >= low + 100))
    if fmt == "duration":
        v = pl.lit(0, pl.Int64) if value is None else value.cast(pl.Int64).fill_null(0)
        text = (v // 60).cast(pl.String).str.zfill(4) + (v % 60).cast(pl.String).str.zfill(2)
        return text, (v < 0) | (v >= 10000 * 60)
    return pl.lit(" " * n), no  # filler


def _detail_lines(events: pl.DataFrame) -> pl.Series | None:
    """The type-22 lines of ``events`` (with ``_seq`` and ``_currency_type``), or None."""
    lay = ciber.layout("22")
    values = _values()
    owners = {f.length_field: f.name for f in lay.fields if f.length_field}
    texts: list[pl.Expr] = []
    bads: list[pl.Expr] = []
    for f in lay.fields:
        if f.name == "record_type":
            texts.append(pl.lit("22"))
            continue
        value = values.get(f.name)
        if f.format == "N" and value is None and f.name in owners:
            # the length of a number field (ciber.encode_record): of its text, "" when absent
            owned = values.get(owners[f.name])
            if owned is not None:
                value = owned.cast(pl.String).fill_null("").str.len_chars()
            else:
                value = pl.lit(0)
        text, bad = _field(f, value)
        texts.append(text)
        bads.append(bad)
    out = events.select(
        pl.concat_str(texts).alias("line"), pl.any_horizontal(bads).any().alias("bad")
    )
    if out["bad"].any():
        return None
    lines = out["line"]
    if lines.str.len_bytes().ne(lay.length).any():
        return None
    return lines


def _refused(events: pl.DataFrame) -> bool:
    """What ``ciber.write`` refuses or would read differently from :func:`_values`."""
    text_empty = [
        pl.col(c).is_null() | (pl.col(c) == "")
        for c in ("sender", "recipient", "imsi", "event_kind")
    ]
    return bool(
        events.select(
            pl.any_horizontal(text_empty).any()
            | ~pl.col("event_kind").is_in(_KINDS).all()
            | (pl.col("charge").fill_null(0) < 0).any()
            | (pl.col("tax").fill_null(0) < 0).any()
            | pl.col("_currency_type").is_null().any()
            | (pl.col("called_number") == "").any()
        ).item()
    )


def write_columnar(
    events: pl.DataFrame,
    *,
    creation_date: dt.date,
    sequences: MutableMapping[tuple[str, str], int],
) -> bytes | None:
    """``ciber.write(events, creation_date=…, sequences=…)`` for a CIBER-out event table.

    ``events`` has exactly the :data:`EVENT_COLUMNS`. ``sequences`` is updated as
    ``ciber.write`` updates it, only when the bytes are returned. None: the table holds
    something this writer leaves to ``ciber.write`` (``sequences`` untouched).
    """
    out: list[bytes] = []
    if not write_columnar_to(
        events, creation_date=creation_date, sequences=sequences, write=out.append
    ):
        return None
    return b"".join(out)


def write_columnar_to(
    events: pl.DataFrame,
    *,
    creation_date: dt.date,
    sequences: MutableMapping[tuple[str, str], int],
    write: Callable[[bytes], object],
    spool_dir: Path | None = None,
) -> bool:
    """:func:`write_columnar`, its bytes given to ``write`` one batch at a time (not held whole).

    The batches are formatted one at a time into a temporary file (in ``spool_dir``; in
    memory up to ``_SPOOL`` bytes), then, all of them taken, given to ``write``: one call per
    batch (header, detail and trailer records), so a piece is a CIBER file of one batch.
    False: the table holds something left to ``ciber.write`` (nothing written, ``sequences``
    untouched).
    """
    if set(events.columns) != EVENT_COLUMNS or events.height == 0:
        return False
    codes = dict(CURRENCY_CODE_BY_ISO)
    currency = pl.col("currency")
    ev = events.with_columns(
        pl.when(currency.str.len_bytes() > 0).then(currency).otherwise(pl.lit("USD")).alias("_iso"),
    ).with_columns(
        pl.col("_iso")
        .replace_strict(codes, default=None, return_dtype=pl.Int64)
        .alias("_currency_type")
    )
    if _refused(ev):
        return False
    # batches: per (sender, recipient, currency) in sorted order, every MAX_RECORDS events
    keys = ev.select("sender", "recipient", "_iso").unique().sort("sender", "recipient", "_iso")
    seqs = dict(sequences)
    sizes: list[int] = []
    with tempfile.SpooledTemporaryFile(
        max_size=_SPOOL, dir=None if spool_dir is None else str(spool_dir)
    ) as spool:
        for sender, recipient, iso in keys.rows():
            group = ev.filter(
                (pl.col("sender") == sender)
                & (pl.col("recipient") == recipient)
                & (pl.col("_iso") == iso)
            )
            for lo in range(0, group.height, MAX_RECORDS):
                seq = ciber.next_sequence(seqs.get((sender, recipient)))
                seqs[(sender, recipient)] = seq
                part = group.slice(lo, MAX_RECORDS).with_columns(
                    pl.lit(seq, pl.Int64).alias("_seq")
                )
                batch = _batch(part, (sender, recipient, iso), seq, creation_date)
                if batch is None:
                    return False
                sizes.append(spool.write(batch))
            del group
        spool.seek(0)
        for size in sizes:
            write(spool.read(size))
    sequences.clear()
    sequences.update(seqs)
    return True


def _batch(
    part: pl.DataFrame, key: tuple[str, str, str], seq: int, creation_date: dt.date
) -> bytes | None:
    """One batch's records (header, details, trailer), or None (left to ``ciber.write``)."""
    sender, recipient, iso = key
    lines = _detail_lines(part)
    if lines is None:
        return None
    count = part.height
    total = int(
        part.select(
            (pl.col("charge").fill_null(0) + pl.col("tax").fill_null(0)).cast(pl.Int128).sum()
        ).item()
    )
    common = {
        "batch_creation_date": creation_date,
        "batch_sequence_number": seq,
        "sending_sid_bid": sender,
        "receiving_sid_bid": recipient,
        "settlement_period": None,
        "clearinghouse_id": 0,
        "currency_type": CURRENCY_CODE_BY_ISO[iso],
    }
    header = ciber.encode_record(
        "01",
        {
            **common,
            "record_release_number": 25,
            "original_return_indicator": "1",
            "batch_reject_reason_code": 0,
            "batch_contents": 1,
            "local_carrier_reserved": "",
        },
    )
    trailer = ciber.encode_record(
        "98",
        {
            **common,
            "total_number_of_records": count,
            "batch_total_charges_and_taxes": total,
            "batch_total_charges_and_taxes_sign": "0",
            "original_total_charges_and_taxes_sign": "0",
            "original_total_number_of_records": count,
            "original_total_charges_and_taxes": total,
        },
    )
    details = "\r\n".join(lines.to_list()).encode("ascii")
    return header + b"\r\n" + details + b"\r\n" + trailer + b"\r\n"
