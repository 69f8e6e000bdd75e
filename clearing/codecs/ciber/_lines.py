"""Split a CIBER file into lines and batches, with array operations over the whole file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clearing.codecs.ciber._codes import UNSUPPORTED_TYPES
from clearing.codecs.ciber._errors import (
    CiberDecodeError,
    CiberStructureError,
    UnsupportedRecordTypeError,
)
from clearing.codecs.ciber._fields import THREADS

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Lines", "err", "split_lines", "structure"]

_SCAN_CHUNK = 1 << 23


@dataclass(slots=True)
class Lines:
    """Every non-blank line of a file."""

    starts: NDArray[np.int64]
    lens: NDArray[np.int64]
    numbers: NDArray[np.int64]  # 1-based line numbers (empty lines are skipped)
    codes: NDArray[np.int64]  # record type as an integer


def err(
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


def split_lines(buf: NDArray[np.uint8], file: str | None) -> Lines:
    n = buf.size
    if n == 0:
        msg = "empty file"
        raise CiberStructureError(msg, file=file, hint="a CIBER file holds batches")
    if n > _SCAN_CHUNK:
        with ThreadPoolExecutor(THREADS) as pool:
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
        raise err(
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
        msg = "no records"
        raise CiberStructureError(msg, file=file, hint="the file holds only blank lines")
    short = np.flatnonzero(lens < 2)
    if short.size:
        i = int(short[0])
        raise err(
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
            raise err(
                UnsupportedRecordTypeError,
                reason,
                file,
                int(starts[i]),
                int(numbers[i]),
                "CIBER 2.0 was withdrawn in March 2006; ask the "
                "partner to resend the batch as CIBER 2.5 (types 22/32/42/52)",
            )
        raise err(
            CiberStructureError,
            f"unknown record type `{text}`",
            file,
            int(starts[i]),
            int(numbers[i]),
            "CIBER 2.5 files hold record types 01/02, 22/32/42/52 and 98/97",
        )
    return Lines(starts, lens, numbers, codes.astype(np.int64))


def structure(
    lines: Lines, file: str | None
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
                raise err(
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
                raise err(
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
                raise err(
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
        raise err(
            CiberStructureError,
            "batch has no trailer",
            file,
            int(lines.starts[h]),
            int(lines.numbers[h]),
            "the file is truncated or the trailer is missing",
        )
    if not headers:
        raise err(
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
            raise err(
                CiberStructureError,
                "detail record outside a batch",
                file,
                int(lines.starts[i]),
                int(lines.numbers[i]),
                "detail records belong between a batch header and its trailer",
            )
    return h_arr, t_arr, batch_of_line.astype(np.int64)
