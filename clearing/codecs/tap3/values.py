"""TAP primitive values: the one owner of how TAP octets, time stamps, offsets and digits read.

asn1tools gives OCTET STRING / IA5String members as ``bytes`` (or ``str``); TAP texts are read
as Latin-1 so that every byte maps to one character (a wrong byte stays visible, never raises).

- texts: :func:`text` (display: anything to text), :func:`string` (checks: only octets or text),
  :func:`latin1` (octets that must be there);
- DateTimeLong (``localTimeStamp`` ``CCYYMMDDhhmmss`` + ``utcTimeOffset`` ``±hhmm``):
  :func:`stamp_text`, :func:`stamp_parts`, :func:`stamp_time` to read, :func:`local_stamp` and
  :func:`date_time_long` to write;
- UtcTimeOffset: :data:`UTC_OFFSET` (the TD.57 valid range), :func:`offset_minutes`,
  :func:`require_offset_minutes`;
- BCDString: :func:`bcd`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

__all__ = [
    "UTC_OFFSET",
    "bcd",
    "date_time_long",
    "latin1",
    "local_stamp",
    "offset_minutes",
    "require_offset_minutes",
    "stamp_parts",
    "stamp_text",
    "stamp_time",
    "string",
    "text",
]

UTC_OFFSET = re.compile(r"^(-1[0-3]|-0[0-9]|\+0[0-9]|\+1[0-4])(00|15|30|45)$")
"""A valid UtcTimeOffset (TD.57): -1300..+1400 in quarter hours."""

_LOCAL_STAMP = "%Y%m%d%H%M%S"


def text(value: Any) -> str | None:
    """A value as text: octets read as Latin-1, None kept, anything else ``str()``."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return str(value)


def string(value: Any) -> str | None:
    """Octets (Latin-1) or text as text; anything else (absent, a number...) is None."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def latin1(raw: Any) -> str:
    """Octets (bytes-like) read as Latin-1."""
    return bytes(raw).decode("latin-1")


def stamp_text(value: Any) -> str | None:
    """A DateTimeLong / DateTime value as ``CCYYMMDDhhmmss±hhmm`` text (None: not a group)."""
    if not isinstance(value, dict):
        return None
    local = text(value.get("localTimeStamp")) or ""
    off = value.get("utcTimeOffset", value.get("utcTimeOffsetCode"))
    return f"{local}{text(off) or ''}"


def stamp_parts(value: Any) -> tuple[str | None, str | None]:
    """A DateTimeLong value as ``(local stamp, UTC offset)`` texts."""
    if not isinstance(value, dict):
        return None, None
    return text(value.get("localTimeStamp")), text(value.get("utcTimeOffset"))


def stamp_time(value: Any) -> tuple[datetime | None, bool]:
    """``(local time, valid)`` of a DateTimeLong value.

    Valid: a 14-digit local stamp that is a date and time, and a :data:`UTC_OFFSET`.
    """
    if not isinstance(value, dict):
        return None, False
    local = string(value.get("localTimeStamp")) or ""
    offset = string(value.get("utcTimeOffset")) or ""
    try:
        t = datetime.strptime(local, _LOCAL_STAMP)
    except ValueError:
        return None, False
    return t, bool(UTC_OFFSET.match(offset)) and len(local) == 14


def local_stamp(t: datetime) -> bytes:
    """A LocalTimeStamp: ``CCYYMMDDhhmmss`` octets."""
    return t.strftime(_LOCAL_STAMP).encode()


def date_time_long(local: str, offset: str) -> dict[str, bytes]:
    """A DateTimeLong value (asn1tools' form) of a local stamp and its ``±hhmm`` offset."""
    return {"localTimeStamp": local.encode("ascii"), "utcTimeOffset": offset.encode("ascii")}


def offset_minutes(offset: str) -> int | None:
    """Minutes east of UTC of a ``±hhmm`` offset; None when it is not of that form."""
    if len(offset) != 5 or offset[0] not in "+-" or not all(c in "0123456789" for c in offset[1:]):
        return None
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    return -minutes if offset[0] == "-" else minutes


def require_offset_minutes(offset: str) -> int:
    """:func:`offset_minutes` of an offset that must be ``±hhmm`` (what we write).

    Raises:
        ValueError: the offset is not ``±hhmm``.
    """
    minutes = offset_minutes(offset)
    if minutes is None:
        msg = f"UTC offset {offset!r} is not +hhmm / -hhmm"
        raise ValueError(msg)
    return minutes


def bcd(digits: str) -> bytes:
    """TAP BCDString: first digit in the high nibble, odd lengths padded with ``F``."""
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)
