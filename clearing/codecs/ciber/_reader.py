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
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs.ciber._codes import (
    BATCH_REJECT_REASONS,
    CURRENCY_BY_CODE,
    EVENT_KIND_BY_DIRECTION,
    EVENT_KIND_BY_TYPE,
    UNSUPPORTED_TYPES,
    YEAR_PIVOT,
)
from clearing.codecs.ciber._errors import (
    CiberDecodeError,
    CiberStructureError,
    UnsupportedRecordTypeError,
)
from clearing.codecs.ciber._fields import Columns, Piece, decode_piece, part_name, plan_for
from clearing.codecs.ciber._layouts import DETAIL_TYPES, HEADER_TYPES, TRAILER_TYPES, layout
from clearing.codecs.events import EVENT_SCHEMA

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from clearing.codecs.ciber._layouts import Field, Layout

__all__ = ["FINDINGS_SCHEMA", "Decoded", "decode", "read"]

_SCAN_CHUNK = 1 << 23
_PIECE_ROWS = 16384
_THREADS = 2

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("severity", pa.string(), nullable=False),  # "batch" | "record"
        pa.field("batch_index", pa.int64()),
        pa.field("line", pa.int64(), nullable=False),  # 1-based line number in the file
        pa.field("byte_offset", pa.int64(), nullable=False),
        pa.field("record_type", pa.string(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("field_id", pa.int64()),  # CIBER Invalid Field Identifier (record findings)
        pa.field("return_code", pa.int64()),  # suggested record Return Code
        pa.field("return_reason_code", pa.int64()),
        pa.field("batch_reject_reason_code", pa.int64()),  # suggested batch reject reason
        pa.field("message", pa.string(), nullable=False),
    ]
)

# Header/trailer field → batch reject reason when it is malformed (ciber.md §7.1).
_HEADER_REJECT = {
    "batch_creation_date": 2,
    "sending_sid_bid": 4,
    "sending_clearinghouse_bid": 4,
    "receiving_sid_bid": 5,
    "original_home_sid_bid": 5,
    "original_serving_sid_bid": 4,
    "record_release_number": 6,
    "currency_type": 7,
    "batch_sequence_number": 8,
    "batch_reject_reason_code": 9,
    "original_return_indicator": 10,
    "clearinghouse_id": 11,
    "settlement_period": 12,
    "batch_contents": 15,
}
_TRAILER_REJECT = {
    "batch_creation_date": 22,
    "sending_sid_bid": 23,
    "sending_clearinghouse_bid": 23,
    "receiving_sid_bid": 5,
    "original_serving_sid_bid": 5,
    "original_home_sid_bid": 5,
    "total_number_of_records": 25,
    "batch_total_charges_and_taxes": 26,
    "settlement_period": 27,
    "currency_type": 28,
    "batch_sequence_number": 29,
    "clearinghouse_id": 30,
    "original_batch_sequence_number": 32,
    "original_batch_creation_date": 33,
    "original_total_number_of_records": 34,
    "original_total_charges_and_taxes": 35,
}
# Header field ↔ trailer field that must agree, and the reject reason when they do not.
_AGREE = (
    ("batch_creation_date", "batch_creation_date", 22),
    ("batch_sequence_number", "batch_sequence_number", 29),
    ("sending_sid_bid", "sending_sid_bid", 23),
    ("receiving_sid_bid", "receiving_sid_bid", 5),
    ("sending_clearinghouse_bid", "sending_clearinghouse_bid", 23),
    ("original_serving_sid_bid", "original_serving_sid_bid", 23),
    ("original_home_sid_bid", "original_home_sid_bid", 5),
    ("settlement_period", "settlement_period", 27),
    ("clearinghouse_id", "clearinghouse_id", 30),
    ("currency_type", "currency_type", 28),
)


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


@dataclass(slots=True)
class _Lines:
    starts: NDArray[np.int64]
    lens: NDArray[np.int64]
    numbers: NDArray[np.int64]  # 1-based line numbers (empty lines are skipped)
    codes: NDArray[np.int64]  # record type as an integer


class _Findings:
    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []

    def add(self, **cols: Any) -> None:
        self.parts.append(cols)

    def table(self) -> pa.Table:
        if not self.parts:
            return FINDINGS_SCHEMA.empty_table()
        tables = []
        for part in self.parts:
            n = len(part["line"])
            arrays = []
            for f in FINDINGS_SCHEMA:
                v = part.get(f.name)
                if v is None or isinstance(v, (str, int)):
                    arrays.append(pa.array([v] * n, type=f.type))
                else:
                    arrays.append(pa.array(v, type=f.type))
            tables.append(pa.Table.from_arrays(arrays, schema=FINDINGS_SCHEMA))
        out = pa.concat_tables(tables)
        return out.sort_by([("line", "ascending")])


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
    lines = _split_lines(buf, file)
    header_idx, trailer_idx, batch_of_line = _structure(lines, file)
    findings = _Findings()
    records: dict[str, pa.Table] = {}
    for rt in (*HEADER_TYPES, *TRAILER_TYPES, *DETAIL_TYPES):
        idx = np.flatnonzero(lines.codes == int(rt))
        if idx.size == 0:
            continue
        records[rt] = _decode_type(data, buf, layout(rt), idx, lines, batch_of_line, file, findings)
    batches = _batches(records, lines, header_idx, trailer_idx, findings)
    _detail_checks(records, batches, findings)
    events = _events(records, batches, lines)
    return Decoded(events, batches, records, findings.table())


# ----------------------------------------------------------------------------- lines


def _err(
    cls: type[CiberDecodeError],
    reason: str,
    file: str | None,
    offset: int,
    line: int,
    hint: str,
) -> CiberDecodeError:
    return cls(reason, file=file, offset=offset, path=f"line {line}", hint=hint)


def _scan(buf: NDArray[np.uint8], start: int) -> NDArray[np.intp]:
    chunk = buf[start : start + _SCAN_CHUNK]
    # one signed comparison finds CR, LF, every control byte and every byte >= 0x80
    return np.flatnonzero(chunk.view(np.int8) < 0x20) + start


# the record type of a line from its first two bytes read as a little-endian word; -1 if unknown
_TYPE_CODE = np.full(1 << 16, -1, dtype=np.int16)
for _code in (1, 2, 97, 98, 22, 32, 42, 52):
    _TYPE_CODE[(48 + _code // 10) | ((48 + _code % 10) << 8)] = _code


def _split_lines(buf: NDArray[np.uint8], file: str | None) -> _Lines:
    n = buf.size
    if n == 0:
        raise CiberStructureError("empty file", file=file, hint="a CIBER file holds batches")
    if n > _SCAN_CHUNK:
        with ThreadPoolExecutor(_THREADS) as pool:
            special = np.concatenate(
                list(pool.map(lambda s: _scan(buf, s), range(0, n, _SCAN_CHUNK)))
            )
    else:
        special = _scan(buf, 0)
    values = buf[special]
    is_lf = values == 10
    lf = special[is_lf]
    if (
        lf.size * 2 == special.size
        and special.size
        and (values[::2] == 13).all()
        and (is_lf[1::2].all() and (special[1::2] - special[::2] == 1).all())
    ):
        other = special[:0]  # the usual CR LF file: nothing else to look at
    else:
        cr = special[values == 13]
        other = special[~is_lf & (values != 13)]
        if cr.size:
            lone = cr[(cr + 1 >= n) | (buf[np.minimum(cr + 1, n - 1)] != 10)]
            if lone.size:
                other = np.sort(np.concatenate([other, lone[:1]]))
    if other.size:
        pos = int(other[0])
        line = int(np.searchsorted(lf, pos, side="right")) + 1
        reason = f"byte 0x{int(buf[pos]):02x} is not printable ASCII"
        raise _err(
            CiberStructureError,
            reason,
            file,
            pos,
            line,
            "CIBER records are ASCII text, one per line (LF or CR LF)",
        )
    starts = np.empty(lf.size + 1, dtype=np.int64)
    starts[0] = 0
    np.add(lf, 1, out=starts[1:])
    ends = np.empty(lf.size + 1, dtype=np.int64)
    ends[:-1] = lf
    ends[-1] = n
    numbers = np.arange(1, starts.size + 1, dtype=np.int64)
    has_cr = buf[np.maximum(ends - 1, 0)] == 13
    has_cr &= ends > starts
    lens = ends - starts
    lens -= has_cr
    if starts[-1] == n:  # the file ends with a line terminator
        starts, lens, numbers = starts[:-1], lens[:-1], numbers[:-1]
    if not lens.all():  # blank lines are skipped
        keep = lens > 0
        starts, lens, numbers = starts[keep], lens[keep], numbers[keep]
    if starts.size == 0:
        raise CiberStructureError("no records", file=file, hint="the file holds only blank lines")
    short = np.flatnonzero(lens < 2)
    if short.size:
        i = int(short[0])
        raise _err(
            CiberStructureError,
            "line too short to hold a record type",
            file,
            int(starts[i]),
            int(numbers[i]),
            "every CIBER record starts with a 2-digit record type",
        )
    # record type: both characters at once, as one little-endian 16-bit word per line
    word = np.ndarray((buf.size - 1,), dtype="<u2", buffer=buf, offset=0, strides=(1,))
    pair = word[starts]
    codes = _TYPE_CODE[pair]
    if (codes < 0).any():
        known = codes >= 0
        i = int(np.flatnonzero(~known)[0])
        text = bytes(buf[starts[i] : starts[i] + 2]).decode("ascii")
        if text in UNSUPPORTED_TYPES:
            reason = f"record type `{text}` ({UNSUPPORTED_TYPES[text]}) is not supported"
            raise _err(
                UnsupportedRecordTypeError,
                reason,
                file,
                int(starts[i]),
                int(numbers[i]),
                "CIBER 2.0 was withdrawn in March 2006; ask the "
                "partner to resend the batch as CIBER 2.5 (types 22/32/42/52)",
            )
        raise _err(
            CiberStructureError,
            f"unknown record type `{text}`",
            file,
            int(starts[i]),
            int(numbers[i]),
            "CIBER 2.5 files hold record types 01/02, 22/32/42/52 and 98/97",
        )
    return _Lines(starts, lens, numbers, codes.astype(np.int64))


def _structure(
    lines: _Lines, file: str | None
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]:
    codes = lines.codes
    is_h = (codes == 1) | (codes == 2)
    is_t = (codes == 97) | (codes == 98)
    marks = np.flatnonzero(is_h | is_t)
    headers: list[int] = []
    trailers: list[int] = []
    for i in marks.tolist():
        if is_h[i]:
            if len(headers) > len(trailers):
                prev = int(lines.numbers[headers[-1]])
                raise _err(
                    CiberStructureError,
                    f"batch header before the trailer of the batch opened at line {prev}",
                    file,
                    int(lines.starts[i]),
                    int(lines.numbers[i]),
                    "each batch is header, details, trailer",
                )
            headers.append(i)
        else:
            if len(headers) == len(trailers):
                raise _err(
                    CiberStructureError,
                    "batch trailer without a header",
                    file,
                    int(lines.starts[i]),
                    int(lines.numbers[i]),
                    "each batch is header, details, trailer",
                )
            h = headers[-1]
            if (codes[h] == 1) != (codes[i] == 98):
                reason = f"type-{codes[h]:02d} header closed by a type-{codes[i]:02d} trailer"
                raise _err(
                    CiberStructureError,
                    reason,
                    file,
                    int(lines.starts[i]),
                    int(lines.numbers[i]),
                    "01 pairs with 98, 02 with 97",
                )
            trailers.append(i)
    if len(headers) > len(trailers):
        h = headers[-1]
        raise _err(
            CiberStructureError,
            "batch has no trailer",
            file,
            int(lines.starts[h]),
            int(lines.numbers[h]),
            "the file is truncated or the trailer is missing",
        )
    if not headers:
        raise _err(
            CiberStructureError,
            "no batch header",
            file,
            0,
            int(lines.numbers[0]),
            "a batch starts with a type-01 or type-02 header",
        )
    h_arr = np.asarray(headers, dtype=np.intp)
    t_arr = np.asarray(trailers, dtype=np.intp)
    batch_of_line = np.cumsum(is_h) - 1
    details = np.flatnonzero(~(is_h | is_t))
    if details.size:
        b = batch_of_line[details]
        outside = (b < 0) | (details > t_arr[np.maximum(b, 0)])
        if outside.any():
            i = int(details[np.flatnonzero(outside)[0]])
            raise _err(
                CiberStructureError,
                "detail record outside a batch",
                file,
                int(lines.starts[i]),
                int(lines.numbers[i]),
                "detail records belong between a batch header and its trailer",
            )
    return h_arr, t_arr, batch_of_line.astype(np.int64)


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
        for a in range(j, k + 1, _PIECE_ROWS):
            b = min(a + _PIECE_ROWS, k + 1)
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
    lines: _Lines,
    batch_of_line: NDArray[np.int64],
    file: str | None,
    findings: _Findings,
) -> pa.Table:
    starts, lens, numbers = lines.starts[idx], lines.lens[idx], lines.numbers[idx]
    too_short = np.flatnonzero(lens < lay.min_length)
    if too_short.size:
        i = int(too_short[0])
        reason = (
            f"type-{lay.record_type} record is {int(lens[i])} characters, shorter than the "
            f"{lay.min_length} of its fixed part"
        )
        raise _err(
            CiberStructureError,
            reason,
            file,
            int(starts[i]),
            int(numbers[i]),
            f"a type-{lay.record_type} record is {lay.length} characters; only the "
            "blank reserved tail may be cut",
        )
    plan = plan_for(lay)
    cols = Columns.empty(plan, idx.size)
    pieces = _pieces(data, buf, lay, starts, lens)
    if idx.size > 4 * _PIECE_ROWS and len(pieces) > 1:
        with ThreadPoolExecutor(_THREADS) as pool:
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
    findings: _Findings,
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
            reject = _HEADER_REJECT.get(name)
        elif is_trl:
            reject = _TRAILER_REJECT.get(name)
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
    if n > 4 * _PIECE_ROWS:  # Arrow kernels and large NumPy operations release the GIL
        with ThreadPoolExecutor(_THREADS) as pool:
            arrays = list(pool.map(convert, fields))
    else:
        arrays = [convert(f) for f in fields]
    return arrays, [f.name for f in fields]


# --------------------------------------------------------------------------- batches


def _batches(
    records: dict[str, pa.Table],
    lines: _Lines,
    header_idx: NDArray[np.intp],
    trailer_idx: NDArray[np.intp],
    findings: _Findings,
) -> pa.Table:
    by_line: dict[int, dict[str, Any]] = {}
    for rt in (*HEADER_TYPES, *TRAILER_TYPES):
        if rt in records:
            for row in records[rt].to_pylist():
                by_line[row["line"]] = row
    nb = header_idx.size
    counts = {rt: np.zeros(nb, dtype=np.int64) for rt in DETAIL_TYPES}
    totals = np.zeros(nb, dtype=np.int64)
    returned = np.zeros(nb, dtype=np.int64)
    for rt in DETAIL_TYPES:
        if rt not in records:
            continue
        t = records[rt]
        b = t.column("batch_index").to_numpy()
        counts[rt] = np.bincount(b, minlength=nb).astype(np.int64)
        tot = t.column("total_charges_and_taxes").fill_null(0).to_numpy()
        np.add.at(totals, b, tot)
        rc = t.column("return_code").fill_null(0).to_numpy()
        returned += np.bincount(b[rc != 0], minlength=nb)
    rows: list[dict[str, Any]] = []
    for i in range(nb):
        h = by_line[int(lines.numbers[header_idx[i]])]
        t = by_line[int(lines.numbers[trailer_idx[i]])]
        clearing_hdr = h["record_type"] == "02"
        detail_count = int(sum(int(counts[rt][i]) for rt in DETAIL_TYPES))
        cur = h["currency_type"]
        row = {
            "batch_index": i,
            "header_line": h["line"],
            "trailer_line": t["line"],
            "header_record_type": h["record_type"],
            "trailer_record_type": t["record_type"],
            "batch_creation_date": h["batch_creation_date"],
            "batch_sequence_number": h["batch_sequence_number"],
            "sending_sid_bid": h["original_serving_sid_bid" if clearing_hdr else "sending_sid_bid"],
            "receiving_sid_bid": h[
                "original_home_sid_bid" if clearing_hdr else "receiving_sid_bid"
            ],
            "sending_clearinghouse_bid": h.get("sending_clearinghouse_bid"),
            "record_release_number": h["record_release_number"],
            "original_return_indicator": h["original_return_indicator"],
            "currency_type": cur,
            "currency": None if cur is None else CURRENCY_BY_CODE.get(cur, f"CIBER-{cur:02d}"),
            "settlement_period": h["settlement_period"],
            "clearinghouse_id": h["clearinghouse_id"],
            "batch_reject_reason_code": h["batch_reject_reason_code"],
            "batch_contents": h["batch_contents"],
            "local_carrier_reserved": h.get("local_carrier_reserved"),
            "total_number_of_records": t["total_number_of_records"],
            "batch_total_charges_and_taxes": t["batch_total_charges_and_taxes"],
            "original_total_number_of_records": t["original_total_number_of_records"],
            "original_total_charges_and_taxes": t["original_total_charges_and_taxes"],
            "detail_count": detail_count,
            "detail_total_charges_and_taxes": int(totals[i]),
            "returned_records": int(returned[i]),
            **{f"count_{rt}": int(counts[rt][i]) for rt in DETAIL_TYPES},
        }
        rows.append(row)
        _batch_checks(i, h, t, row, findings)
    return pa.Table.from_pylist(rows, schema=_BATCH_SCHEMA)


_BATCH_SCHEMA = pa.schema(
    [
        ("batch_index", pa.int64()),
        ("header_line", pa.int64()),
        ("trailer_line", pa.int64()),
        ("header_record_type", pa.string()),
        ("trailer_record_type", pa.string()),
        ("batch_creation_date", pa.date32()),
        ("batch_sequence_number", pa.int64()),
        ("sending_sid_bid", pa.string()),
        ("receiving_sid_bid", pa.string()),
        ("sending_clearinghouse_bid", pa.string()),
        ("record_release_number", pa.int64()),
        ("original_return_indicator", pa.string()),
        ("currency_type", pa.int64()),
        ("currency", pa.string()),
        ("settlement_period", pa.date32()),
        ("clearinghouse_id", pa.int64()),
        ("batch_reject_reason_code", pa.int64()),
        ("batch_contents", pa.int64()),
        ("local_carrier_reserved", pa.string()),
        ("total_number_of_records", pa.int64()),
        ("batch_total_charges_and_taxes", pa.int64()),
        ("original_total_number_of_records", pa.int64()),
        ("original_total_charges_and_taxes", pa.int64()),
        ("detail_count", pa.int64()),
        ("detail_total_charges_and_taxes", pa.int64()),
        ("returned_records", pa.int64()),
        *((f"count_{rt}", pa.int64()) for rt in DETAIL_TYPES),
    ]
)


def _batch_checks(
    i: int, h: dict[str, Any], t: dict[str, Any], row: dict[str, Any], findings: _Findings
) -> None:
    def add(rec: dict[str, Any], field: str | None, code: int, message: str) -> None:
        findings.add(
            severity="batch",
            batch_index=[i],
            line=[rec["line"]],
            byte_offset=[rec["byte_offset"]],
            record_type=rec["record_type"],
            field=field,
            batch_reject_reason_code=code,
            message=message,
        )

    for hf, tf, code in _AGREE:
        if hf in h and tf in t and h[hf] is not None and t[tf] is not None and h[hf] != t[tf]:
            add(t, tf, code, f"trailer `{tf}` {t[tf]} differs from the header's {h[hf]}")
    count = t["total_number_of_records"]
    if count is not None and count != row["detail_count"]:
        add(
            t,
            "total_number_of_records",
            25,
            f"trailer counts {count} records, the batch holds {row['detail_count']}",
        )
    total = t["batch_total_charges_and_taxes"]
    if total is not None and total != row["detail_total_charges_and_taxes"]:
        add(
            t,
            "batch_total_charges_and_taxes",
            26,
            f"trailer total {total} differs from the sum of the details, "
            f"{row['detail_total_charges_and_taxes']} (cents)",
        )
    seq = h["batch_sequence_number"]
    if seq is not None and not 1 <= seq <= 999:
        add(h, "batch_sequence_number", 8, BATCH_REJECT_REASONS[8])
    if h["record_release_number"] not in (None, 2, 25):
        add(h, "record_release_number", 6, BATCH_REJECT_REASONS[6])
    if h["original_return_indicator"] not in ("1", "2", "3"):
        add(h, "original_return_indicator", 10, BATCH_REJECT_REASONS[10])
    cur = h["currency_type"]
    if cur is not None and not 1 <= cur <= 98:
        add(h, "currency_type", 7, BATCH_REJECT_REASONS[7])
    ch = h["clearinghouse_id"]
    if ch is not None and ch > 5:
        add(h, "clearinghouse_id", 11, BATCH_REJECT_REASONS[11])


def _detail_checks(records: dict[str, pa.Table], batches: pa.Table, findings: _Findings) -> None:
    """Record-level checks that need the batch: currency and return-code consistency."""
    cur_b = batches.column("currency_type").fill_null(-1).to_numpy()
    ind_b = np.asarray(batches.column("original_return_indicator").to_pylist(), dtype=object)
    for rt in DETAIL_TYPES:
        if rt not in records:
            continue
        t = records[rt]
        b = t.column("batch_index").to_numpy()
        cur = t.column("currency_type").fill_null(-1).to_numpy()
        rc = t.column("return_code").fill_null(-1).to_numpy()
        checks = (
            (
                (cur != cur_b[b]) & (cur >= 0) & (cur_b[b] >= 0),
                "currency_type",
                21,
                6,
                "`currency_type` differs from the batch header's",
            ),
            (
                (ind_b[b] == "1") & (rc > 0),
                "return_code",
                46,
                18,
                "non-zero `return_code` in an initial-issue batch",
            ),
            (
                (ind_b[b] == "2") & (rc == 0),
                "return_code",
                44,
                18,
                "zero `return_code` in a batch of returned records",
            ),
        )
        for mask, field, fid, reason, message in checks:
            where = np.flatnonzero(np.asarray(mask, dtype=np.bool_))
            if where.size == 0:
                continue
            findings.add(
                severity="record",
                batch_index=b[where],
                line=t.column("line").to_numpy()[where],
                byte_offset=t.column("byte_offset").to_numpy()[where],
                record_type=rt,
                field=field,
                field_id=fid,
                return_code=4,
                return_reason_code=reason,
                message=message,
            )


# ---------------------------------------------------------------------------- events


def _events(records: dict[str, pa.Table], batches: pa.Table, lines: _Lines) -> pa.Table:
    detail_rank = np.cumsum(np.isin(lines.codes, [22, 32, 42, 52])) - 1
    parts: list[pa.Table] = []
    seq_text = pa.array(
        [
            None if s is None else f"{s:03d}"
            for s in batches.column("batch_sequence_number").to_pylist()
        ],
        type=pa.string(),
    )
    for rt in DETAIL_TYPES:
        if rt not in records:
            continue
        t = records[rt]
        parts.append(_events_of(rt, t, batches, seq_text, lines, detail_rank))
    if not parts:
        return EVENT_SCHEMA.empty_table()
    events = pa.concat_tables(parts)
    if len(parts) == 1:
        return events
    return events.take(pc.sort_indices(events.column("event_index")))


def _s(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return pc.cast(arr, pa.string())


def _lookup(values: pa.Array | pa.ChunkedArray | list[Any], index: NDArray[Any]) -> pa.Array:
    """``values[index]`` for a short list of values and a long numpy index."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif isinstance(values, list):
        values = pa.array(values)
    return values.take(pa.array(index))


def _events_of(
    rt: str,
    t: pa.Table,
    batches: pa.Table,
    seq_text: pa.Array,
    lines: _Lines,
    detail_rank: NDArray[np.int64],
) -> pa.Table:
    n = t.num_rows
    b = t.column("batch_index").to_numpy()
    line_pos = np.searchsorted(lines.numbers, t.column("line").to_numpy())
    null_s = pa.scalar(None, pa.string())

    def col(name: str) -> pa.ChunkedArray:
        return t.column(name)

    def kinds() -> pa.Array:
        names = [EVENT_KIND_BY_TYPE[rt], *EVENT_KIND_BY_DIRECTION.values()]
        idx = np.zeros(n, dtype=np.int32)
        if rt in ("22", "32"):
            direction = col("call_direction").fill_null(0).to_numpy()
            for j, code in enumerate(EVENT_KIND_BY_DIRECTION, start=1):
                idx[direction == code] = j
        return _lookup(names, idx)

    zeros = np.zeros(n, dtype=np.int32)
    if rt == "52":
        date, time = col("occ_start_date"), col("connect_time")
    elif rt == "22":
        date, time = col("call_date"), col("air_connect_time")
    else:
        date, time = col("call_date"), col("charge_no_1_connect_time")

    def local_start() -> Any:
        secs = pc.add(
            pc.multiply(pc.cast(pc.cast(date, pa.int32()), pa.int64()), 86400),
            pc.cast(pc.cast(time, pa.int32()), pa.int64()),
        )
        return pc.cast(secs, pa.timestamp("s"))

    if rt == "22":
        duration: Any = col("air_chargeable_time")
    elif rt in ("32", "42"):
        duration = col("charge_no_1_chargeable_time")
    else:
        duration = None
    tax = pc.add(col("total_state_province_taxes"), col("total_local_other_taxes"))
    names = t.column_names
    has_numbers = "called_number" in names
    serving = col("sending_sid_bid") if rt == "42" else col("serving_sid_bid")
    mo = "call_direction" in names and has_numbers

    def imsi() -> Any:
        return pc.if_else(pc.equal(col("msid_indicator"), 1), _s(col("msid")), null_s)

    def dialled() -> Any:
        return pc.if_else(pc.equal(col("call_direction"), 1), _s(col("called_number")), null_s)

    cols: dict[str, Any] = {
        "source_format": lambda: _lookup(["ciber"], zeros),
        "sender": lambda: _lookup(batches.column("sending_sid_bid"), b),
        "recipient": lambda: _lookup(batches.column("receiving_sid_bid"), b),
        "file_sequence_number": lambda: _lookup(seq_text, b),
        "event_index": lambda: pa.array(detail_rank[line_pos]),
        "event_kind": kinds,
        "byte_offset": col("byte_offset"),
        "byte_length": col("byte_length"),
        "imsi": imsi if "msid_indicator" in names else None,
        "msisdn": col("mdn"),
        "called_number": col("called_number") if has_numbers else None,
        "calling_number": col("caller_id") if has_numbers else None,
        "dialled_digits": dialled if mo else None,
        "local_start": local_start,
        "duration": duration,
        # CIBER 22 is voice (ciber.md §3, S4): TD.57 teleservice 11, telephony
        "tele_service_code": (lambda: _lookup(["11"], zeros)) if rt == "22" else None,
        "serving_network": serving,
        "currency": lambda: _lookup(batches.column("currency"), b),
        "charge_scale": lambda: pa.array(np.full(n, 2, dtype=np.int8)),
        "charge": lambda: pc.subtract(col("total_charges_and_taxes"), tax),
        "charge_airtime": col("air_charge") if rt == "22" else None,
        "charge_toll": col("toll_charge") if rt == "22" else None,
        "tax": tax,
    }
    # one zero-filled buffer (lazily mapped by calloc) backs every all-null column
    zero = pa.py_buffer(np.zeros(n + 1, dtype=np.int64))

    def build(f: pa.Field) -> pa.Array:
        v = cols.get(f.name)
        if v is None:
            if pa.types.is_string(f.type):
                buffers = [zero, zero, pa.py_buffer(b"")]
            else:
                buffers = [zero, zero]
            return pa.Array.from_buffers(f.type, n, buffers, null_count=n)
        if callable(v):
            v = v()
        v = pc.cast(v, f.type)
        return v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v

    if n > 4 * _PIECE_ROWS:  # Arrow compute releases the GIL
        with ThreadPoolExecutor(_THREADS) as pool:
            arrays = list(pool.map(build, EVENT_SCHEMA))
    else:
        arrays = [build(f) for f in EVENT_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
