"""Read CIBER 2.5 files into the normalised event table, a batch table and findings.

The whole file is handled with array operations: one pass finds the line ends (and any byte
that is not printable ASCII), record types are read for all lines at once, and the records of
each type are decoded field by field over every line of that type (see ``_fields``). Python
loops run per *batch* (header/trailer agreement) and per run of equally long lines, never per
record.

Problems are of two kinds:

* the file is not CIBER 2.5 batches (bad bytes, unknown/CIBER 2.0 record types, lines shorter
  than their fixed part, header/detail/trailer out of order): :class:`CiberDecodeError`;
* a field holds a bad value, or a trailer disagrees with its header or details: a *finding*
  row (with the CIBER return code / batch reject reason it calls for); the value is null.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs.ciber._batches import batch_table, detail_checks
from clearing.codecs.ciber._codes import YEAR_PIVOT
from clearing.codecs.ciber._errors import CiberDecodeError, CiberStructureError
from clearing.codecs.ciber._events import event_table
from clearing.codecs.ciber._fields import (
    PIECE_ROWS,
    THREADS,
    Columns,
    Piece,
    decode_piece,
    part_name,
    plan_for,
)
from clearing.codecs.ciber._findings import (
    FINDINGS_SCHEMA,
    HEADER_REJECT,
    TRAILER_REJECT,
    Findings,
)
from clearing.codecs.ciber._layouts import DETAIL_TYPES, HEADER_TYPES, TRAILER_TYPES, layout
from clearing.codecs.ciber._lines import Lines, err, split_lines, structure

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from clearing.codecs.ciber._layouts import Field, Layout

__all__ = ["FINDINGS_SCHEMA", "Decoded", "decode", "read"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """Everything read from one CIBER file.

    Attributes:
        events: the normalised event table (:data:`clearing.codecs.events.EVENT_SCHEMA`),
            one row per detail record, in file order.
        batches: one row per batch (header, trailer and what the details add up to).
        records: per record type (``"01"``, ``"22"``...), every field of every record of that
            type, plus ``line``, ``byte_offset``, ``byte_length`` and ``batch_index``.
        findings: bad field values and failed batch checks (:data:`FINDINGS_SCHEMA`).
    """

    events: pa.Table
    batches: pa.Table
    records: dict[str, pa.Table]
    findings: pa.Table


def read(data: bytes, *, file: str | None = None, strict: bool = False) -> pa.Table:
    """Decode a CIBER file into the normalised event table.

    Args:
        data: the file's bytes.
        file: the file name, for error messages.
        strict: raise :class:`CiberDecodeError` on the first finding instead of returning
            rows with null values.
    """
    decoded = decode(data, file=file)
    if strict and decoded.findings.num_rows:
        first = decoded.findings.slice(0, 1).to_pylist()[0]
        where = f"line {first['line']}"
        if first["field"]:
            where += f" field {first['field']}"
        raise CiberDecodeError(first["message"], file=file, offset=first["byte_offset"], path=where)
    return decoded.events


def decode(data: bytes, *, file: str | None = None) -> Decoded:
    """Decode a CIBER 2.5 file: events, batches, raw records and findings."""
    buf = np.frombuffer(data, dtype=np.uint8)
    lines = split_lines(buf, file)
    header_idx, trailer_idx, batch_of_line = structure(lines, file)
    findings = Findings()
    records: dict[str, pa.Table] = {}
    for rt in (*HEADER_TYPES, *TRAILER_TYPES, *DETAIL_TYPES):
        idx = np.flatnonzero(lines.codes == int(rt))
        if idx.size == 0:
            continue
        records[rt] = _decode_type(data, buf, layout(rt), idx, lines, batch_of_line, file, findings)
    batches = batch_table(records, lines, header_idx, trailer_idx, findings)
    detail_checks(records, batches, findings)
    events = event_table(records, batches, lines)
    return Decoded(events, batches, records, findings.table())


# --------------------------------------------------------------------------- records


def _pieces(
    data: bytes,
    buf: NDArray[np.uint8],
    lay: Layout,
    starts: NDArray[np.int64],
    lens: NDArray[np.int64],
) -> list[Piece]:
    full = np.flatnonzero(lens >= lay.length)
    short = np.flatnonzero(lens < lay.length)
    contiguous = short.size == 0
    pieces: list[Piece] = []
    fs = starts[full]
    m = fs.size
    d = np.diff(fs)
    change = np.flatnonzero(d[1:] != d[:-1]) + 1
    j = 0
    while j < m:
        if j == m - 1:
            k, stride = j, lay.length
        else:
            pos = int(np.searchsorted(change, j, side="right"))
            k = int(change[pos]) if pos < change.size else m - 1
            stride = int(d[j])
        for a in range(j, k + 1, PIECE_ROWS):
            b = min(a + PIECE_ROWS, k + 1)
            dest: slice | NDArray[np.intp] = slice(a, b) if contiguous else full[a:b]
            pieces.append(Piece(data, int(fs[a]), stride, b - a, dest))
        j = k + 1
    if short.size:
        # truncated blank tails: copy those lines into a blank-padded block (ciber.md §2)
        block = np.full((short.size, lay.length), 32, dtype=np.uint8)
        for r, i in enumerate(short.tolist()):
            s, n = int(starts[i]), int(lens[i])
            block[r, :n] = buf[s : s + n]
        pieces.append(Piece(block, 0, lay.length, short.size, short))
    return pieces


def _decode_type(
    data: bytes,
    buf: NDArray[np.uint8],
    lay: Layout,
    idx: NDArray[np.intp],
    lines: Lines,
    batch_of_line: NDArray[np.int64],
    file: str | None,
    findings: Findings,
) -> pa.Table:
    starts, lens, numbers = lines.starts[idx], lines.lens[idx], lines.numbers[idx]
    too_long = np.flatnonzero(lens > lay.length)
    framing = lay.record_type in (*HEADER_TYPES, *TRAILER_TYPES)
    for bad, than, hint in (
        # any record shorter than its fixed part; a header or trailer longer than its layout
        (
            np.flatnonzero(lens < lay.min_length),
            f"shorter than the {lay.min_length} of its fixed part",
            "only the blank reserved tail may be cut",
        ),
        (
            too_long if framing else too_long[:0],
            f"longer than the {lay.length} of its layout",
            "nothing may follow it on its line",
        ),
    ):
        if bad.size:
            i = int(bad[0])
            raise err(
                CiberStructureError,
                f"type-{lay.record_type} record is {int(lens[i])} characters, {than}",
                file,
                int(starts[i]),
                int(numbers[i]),
                f"a type-{lay.record_type} record is {lay.length} characters; {hint}",
            )
    if too_long.size:  # a detail record: returned (format), its batch goes on
        last = lay.fields[-1]
        findings.add(
            severity="record",
            batch_index=batch_of_line[idx][too_long],
            line=numbers[too_long],
            byte_offset=starts[too_long],
            record_type=lay.record_type,
            field=last.name,
            field_id=None,
            return_code=4,
            return_reason_code=7,
            batch_reject_reason_code=None,
            message=[
                f"the record is {int(n)} characters, longer than the {lay.length} of a "
                f"type-{lay.record_type} record: the partner resends it without the extra "
                "characters"
                for n in lens[too_long].tolist()
            ],
        )
    plan = plan_for(lay)
    cols = Columns.empty(plan, idx.size)
    pieces = _pieces(data, buf, lay, starts, lens)
    if idx.size > 4 * PIECE_ROWS and len(pieces) > 1:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda p: decode_piece(p, plan, cols), pieces))
    else:
        for p in pieces:
            decode_piece(p, plan, cols)
    batch = batch_of_line[idx]
    arrays, names = _columns_to_arrow(lay, cols, starts, numbers, batch, findings)
    arrays += [pa.array(numbers), pa.array(starts), pa.array(lens), pa.array(batch)]
    names += ["line", "byte_offset", "byte_length", "batch_index"]
    return pa.Table.from_arrays(arrays, names=names)


def _mask(null: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
    return null if null.any() else None


_OFFSETS: dict[tuple[int, int], pa.Buffer] = {}


def _fixed_offsets(n: int, k: int) -> pa.Buffer:
    # the offsets of n strings of k characters; kept for the next field of the same width
    key = (n, k)
    if key not in _OFFSETS:
        if len(_OFFSETS) > 8:
            _OFFSETS.clear()
        _OFFSETS[key] = pa.py_buffer(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return _OFFSETS[key]


def _strings(
    raw: NDArray[np.uint8], lengths: NDArray[np.int64] | None, null: NDArray[np.bool_] | None
) -> pa.Array:
    """Strings from ``n`` fixed-width rows, each cut to ``lengths`` when given."""
    n, k = raw.shape
    if n * k >= 2**31:  # pragma: no cover - a 2 GB column; CIBER files are far smaller
        msg = "a CIBER text column over 2 GB"
        raise CiberDecodeError(msg, hint="split the file into smaller files")
    if lengths is None:
        data = np.ascontiguousarray(raw).reshape(-1)
        offsets = _fixed_offsets(n, k)
    else:
        cut = np.arange(k, dtype=np.int8) < lengths.astype(np.int8)[:, None]
        data = raw[cut]
        off = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lengths, out=off[1:])
        offsets = pa.py_buffer(off)
    validity = None
    null_count = 0
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
        null_count = int(null.sum())
    return pa.Array.from_buffers(
        pa.string(), n, [validity, offsets, pa.py_buffer(data)], null_count=null_count
    )


def _days_from_civil(
    y: NDArray[np.int64], m: NDArray[np.int64], d: NDArray[np.int64]
) -> NDArray[np.int64]:
    # H. Hinnant's days_from_civil, vectorised (proleptic Gregorian, days since 1970-01-01)
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: NDArray[np.int64] = era * 146097 + doe - 719468
    return days


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_EPOCH_YEAR = 1900  # two-digit years decode to 1900-2099 whatever the pivot
# days since 1970-01-01 of the first of each month from January 1900: dates cost one lookup
_MONTH_START = _days_from_civil(
    np.repeat(np.arange(_EPOCH_YEAR, _EPOCH_YEAR + 200), 12),
    np.tile(np.arange(1, 13), 200),
    np.ones(200 * 12, dtype=np.int64),
)


def _columns_to_arrow(
    lay: Layout,
    cols: Columns,
    starts: NDArray[np.int64],
    numbers: NDArray[np.int64],
    batch: NDArray[np.int64],
    findings: Findings,
) -> tuple[list[pa.Array], list[str]]:
    n = cols.n
    no_bad = np.zeros(n, dtype=np.bool_)
    is_hdr = lay.record_type in HEADER_TYPES
    is_trl = lay.record_type in TRAILER_TYPES

    def finding(rows: NDArray[np.bool_], name: str, field_id: int | None, message: str) -> None:
        where = np.flatnonzero(rows)
        if where.size == 0:
            return
        reject = None
        if is_hdr:
            reject = HEADER_REJECT.get(name)
        elif is_trl:
            reject = TRAILER_REJECT.get(name)
        detail = not (is_hdr or is_trl)
        findings.add(
            severity="record" if detail else "batch",
            batch_index=batch[where],
            line=numbers[where],
            byte_offset=starts[where],
            record_type=lay.record_type,
            field=name,
            field_id=field_id,
            return_code=4 if detail else None,
            return_reason_code=7 if detail else None,
            batch_reject_reason_code=reject,
            message=message,
        )

    def convert(f: Field) -> pa.Array:
        bad = cols.bad_digits.get(f.name, no_bad)
        if f.name in cols.bad_digits:
            finding(bad, f.name, f.field_id, f"`{f.name}` is not {f.length} digits")
        fmt = f.format
        if fmt in ("N", "money"):
            arr = pa.array(cols.ints[f.name], mask=bad if bad.any() else None)
        elif fmt == "date":
            yy, mm, dd = (cols.ints.pop(part_name(f.name, p)) for p in ("yy", "mm", "dd"))
            year = np.where(yy < YEAR_PIVOT, 2000, 1900) + yy
            mm_ok = (mm >= 1) & (mm <= 12)
            mm_i = np.where(mm_ok, mm, 1)
            leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
            dim = _DAYS_IN_MONTH[mm_i] + ((mm == 2) & leap)
            ok = mm_ok & (dd >= 1) & (dd <= dim)
            zero = (yy == 0) & (mm == 0) & (dd == 0)
            finding(~ok & ~zero & ~bad, f.name, f.field_id, f"`{f.name}` is not a YYMMDD date")
            days = _MONTH_START[(year - _EPOCH_YEAR) * 12 + mm_i - 1] + np.where(ok, dd, 1) - 1
            arr = pa.array(days.astype(np.int32), type=pa.date32(), mask=_mask(~ok | bad))
        elif fmt == "time":
            hh, mi, ss = (cols.ints.pop(part_name(f.name, p)) for p in ("hh", "mi", "ss"))
            ok = (hh < 24) & (mi < 60) & (ss < 60)
            finding(~ok & ~bad, f.name, f.field_id, f"`{f.name}` is not an HHMMSS time")
            secs = hh.astype(np.int32) * 3600 + mi.astype(np.int32) * 60 + ss
            arr = pa.array(secs, type=pa.time32("s"), mask=_mask(~ok | bad))
        elif fmt == "duration":
            mmmm, ss = (cols.ints.pop(part_name(f.name, p)) for p in ("mmmm", "ss"))
            ok = ss < 60
            finding(~ok & ~bad, f.name, f.field_id, f"`{f.name}` is not an MMMMSS duration")
            secs32 = mmmm.astype(np.int32) * 60 + ss
            arr = pa.array(secs32, type=pa.int32(), mask=_mask(~ok | bad))
        elif fmt == "D":
            arr = _strings(cols.texts[f.name], None, bad if bad.any() else None)
        elif fmt == "X":
            arr = pc.ascii_rtrim(_strings(cols.texts.pop(f.name), None, None), characters=" ")
        else:  # number: cut by its length field
            assert f.length_field is not None
            lf = lay.field(f.length_field)
            length = cols.ints[f.length_field].astype(np.int64)
            len_bad = cols.bad_digits.get(f.length_field, no_bad)
            too_long = (length > f.length) & ~len_bad
            finding(
                too_long,
                lf.name,
                lf.field_id,
                f"`{lf.name}` is more than the {f.length} digits of `{f.name}`",
            )
            null = bad | len_bad | too_long | (length == 0)
            cut = np.where(null, 0, length)
            arr = _strings(cols.texts.pop(f.name), cut, null)
        return arr

    fields = lay.data_fields
    if n > 4 * PIECE_ROWS:  # Arrow kernels and large NumPy operations release the GIL
        with ThreadPoolExecutor(THREADS) as pool:
            arrays = list(pool.map(convert, fields))
    else:
        arrays = [convert(f) for f in fields]
    return arrays, [f.name for f in fields]
