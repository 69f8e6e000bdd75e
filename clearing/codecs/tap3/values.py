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
- BCDString: :func:`bcd`;
- TD.57 syntax of header items, each the one owner of its check (validate and inspect ask it):
  :func:`tadig_problem` (Sender, Recipient), :func:`sequence_problem` (FileSequenceNumber,
  RapFileSequenceNumber), :func:`stamp_problem` (a DateTimeLong).
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
    "sequence_problem",
    "stamp_parts",
    "stamp_problem",
    "stamp_text",
    "stamp_time",
    "string",
    "tadig_problem",
    "text",
]

UTC_OFFSET = re.compile(r"^(-1[0-3]|-0[0-9]|\+0[0-9]|\+1[0-4])(00|15|30|45)$")
"""A valid UtcTimeOffset (TD.57): -1300..+1400 in quarter hours."""

_LOCAL_STAMP = "%Y%m%d%H%M%S"
_TADIG = re.compile(r"^[A-Z0-9]{5}$")
_SEQUENCE = re.compile(r"^[0-9]{5}$")
_DIGITS14 = re.compile(r"^[0-9]{14}$")
_HHMM = re.compile(r"^[+-][0-9]{4}$")


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

    Valid (:func:`stamp_problem` finds nothing): a 14-digit local stamp that is a date and time,
    and a :data:`UTC_OFFSET`.
    """
    if not isinstance(value, dict):
        return None, False
    local = string(value.get("localTimeStamp")) or ""
    try:
        t = datetime.strptime(local, _LOCAL_STAMP)
    except ValueError:
        return None, False
    return t, stamp_problem(value) is None


def stamp_problem(value: Any) -> str | None:
    """What breaks TD.57's syntax of a DateTimeLong (None: nothing).

    The local time must be 14 digits ``CCYYMMDDhhmmss`` that make a date and time; the UTC
    offset ``+hhmm`` / ``-hhmm`` within -1300..+1400 in quarter hours (:data:`UTC_OFFSET`).
    """
    if not isinstance(value, dict):
        return "not a localTimeStamp and utcTimeOffset group"
    local = string(value.get("localTimeStamp"))
    offset = string(value.get("utcTimeOffset"))
    if local is None:
        return "localTimeStamp is missing"
    if not _DIGITS14.match(local):
        return f"localTimeStamp `{local}` is not 14 digits (CCYYMMDDhhmmss)"
    try:
        datetime.strptime(local, _LOCAL_STAMP)
    except ValueError:
        return f"localTimeStamp `{local}` is not a date and time (CCYYMMDDhhmmss)"
    if offset is None:
        return "utcTimeOffset is missing"
    if not _HHMM.match(offset):
        return f"utcTimeOffset `{offset}` is not +hhmm or -hhmm"
    if not UTC_OFFSET.match(offset):
        return f"utcTimeOffset `{offset}` is outside -1300..+1400 in quarter hours"
    return None


def tadig_problem(value: str) -> str | None:
    """What breaks TD.57's syntax of a Sender or Recipient (None: nothing).

    A TADIG code is 5 characters, capital letters or digits (e.g. ``FRAF9``).
    """
    if _TADIG.match(value):
        return None
    if len(value) != 5:
        return f"`{value}` is {len(value)} characters, not a 5-character TADIG code"
    return f"`{value}` is not a TADIG code (5 capital letters or digits)"


def sequence_problem(value: str) -> str | None:
    """What breaks TD.57's syntax of a (RAP) FileSequenceNumber: 5 digits (None: nothing)."""
    if _SEQUENCE.match(value):
        return None
    return f"`{value}` is not 5 digits"


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
