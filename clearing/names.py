"""Every partner file name: parse and build, in one place (TD.57, CIBER, our CDR export).

=====================  ==============================================  =====================
name                   pattern                                         example
=====================  ==============================================  =====================
TAP / Notification     ``CD|TD`` + sender + recipient + FSN (5)        ``CDFRAF9HKGCL01506``
RAP                    ``RC|RT`` + sender + recipient + RAP FSN (5)    ``RCHKGCLFRAF900001``
ACK                    ``AC|AT`` + sender + recipient + RAP FSN (5)    ``ACFRAF9HKGCL00001``
CIBER                  ``CIBER_<from>_<to>_<yyyymmdd>_<seq>.dat``      ``CIBER_04172_60099_
                                                                       20261122_951.dat``
CIBER return           ``CIBER_<from>_<to>_<yyyymmdd>_<seq>_RET.dat``  (from: us)
CDR export             ``CDR_<TADIG>_<yyyymmdd>_<nnn>.csv|parquet``    ``CDR_HKGCL_20261122_
                                                                       001.csv``
=====================  ==============================================  =====================

TADIG codes are 5 of ``A-Z0-9``, CIBER SID/BIDs 5 digits, every number ASCII digits. Each
``parse`` is a full match (no trailing text, no lowercase, no non-ASCII digit such as ``'١'``)
and returns ``None`` for a name of another kind, so callers can ask "is this a RAP?"; ``str()``
builds the name back (``parse(str(x)) == x``).

**Sequence successors** (one rule): a TAP/RAP FSN runs 00001-99999 and wraps to 1
(:func:`next_fsn`); a CIBER batch sequence runs 001-999 and wraps to 1
(:func:`next_ciber_sequence`); nothing before means 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = [
    "CIBER_SEQUENCE_MAX",
    "FSN_MAX",
    "STORED_NAME_MAX",
    "AckName",
    "CdrName",
    "CiberName",
    "CiberReturnName",
    "RapName",
    "TapName",
    "next_ciber_sequence",
    "next_fsn",
    "printable_name",
    "stored_name",
]

FSN_MAX = 99_999
CIBER_SEQUENCE_MAX = 999

_TADIG = "[A-Z0-9]{5}"
_TAP = re.compile(rf"([CT])D({_TADIG})({_TADIG})([0-9]{{5}})", re.ASCII)
_RAP = re.compile(rf"R([CT])({_TADIG})({_TADIG})([0-9]{{5}})", re.ASCII)
_ACK = re.compile(rf"A([CT])({_TADIG})({_TADIG})([0-9]{{5}})", re.ASCII)
_CIBER = re.compile(r"CIBER_([0-9]{5})_([0-9]{5})_([0-9]{8})_([0-9]{3})(_RET)?\.dat", re.ASCII)
_CDR = re.compile(rf"CDR_({_TADIG})_([0-9]{{8}})_([0-9]{{3}})\.(csv|parquet)", re.ASCII)


#: The longest name :func:`stored_name` gives (room for ``.reason.txt`` under 255 bytes).
STORED_NAME_MAX = 200


def printable_name(name: str) -> str:
    r"""``name`` itself when it is printable ASCII, else with every other character escaped.

    A name as the file system gave it may hold non-ASCII letters or digits (``'١'``), control
    characters (a newline) or undecodable bytes (surrogate escapes): the escaped form
    (``CDFRAF9HKGCL`` then ``\u0661`` escapes) can be logged, stored and compared safely.
    """
    if name.isascii() and name.isprintable():
        return name
    return name.encode("unicode_escape").decode("ascii").replace("/", "\\x2f")


def stored_name(name: str) -> str:
    """A safe local file name for an entry named ``name`` (quarantine, reason files).

    Printable ASCII without ``/`` and at most :data:`STORED_NAME_MAX` characters: the name
    itself; otherwise its :func:`printable_name`, cut, with the first 12 hex digits of the
    SHA-256 of the original name so two long names never share a stored name.
    """
    import hashlib

    safe = printable_name(name).replace("/", "_")
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe == name and len(safe) <= STORED_NAME_MAX:
        return safe
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{safe[: STORED_NAME_MAX - 13]}~{digest}"


def _successor(last: int | None, top: int) -> int:
    return 1 if not last else last % top + 1


def next_fsn(last: int | None) -> int:
    """The FSN after ``last``: 1 first (``None`` or 0), then +1, 99999 wraps to 1 (TD.57)."""
    return _successor(last, FSN_MAX)


def next_ciber_sequence(last: int | None) -> int:
    """The CIBER batch sequence after ``last``: 1 first, then +1, 999 wraps to 1."""
    return _successor(last, CIBER_SEQUENCE_MAX)


def _exchange(pattern: re.Pattern[str], name: str) -> tuple[bool, str, str, int] | None:
    """(test, sender, recipient, number) of a TD.57 name, or None."""
    m = pattern.fullmatch(name)
    if m is None:
        return None
    return m.group(1) == "T", m.group(2), m.group(3), int(m.group(4))


def _day(text: str) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class TapName:
    """A TAP TransferBatch or Notification: ``CD``/``TD`` + sender + recipient + FSN."""

    test: bool
    sender: str
    recipient: str
    fsn: int

    @classmethod
    def parse(cls, name: str) -> TapName | None:
        """The parts of ``name``, or None when it is not a TAP name."""
        return cls(*parts) if (parts := _exchange(_TAP, name)) else None

    def __str__(self) -> str:
        return f"{'T' if self.test else 'C'}D{self.sender}{self.recipient}{self.fsn:05d}"


@dataclass(frozen=True, slots=True)
class RapName:
    """A RAP file: ``RC``/``RT`` + sender + recipient + RAP FSN."""

    test: bool
    sender: str
    recipient: str
    fsn: int

    @classmethod
    def parse(cls, name: str) -> RapName | None:
        """The parts of ``name``, or None when it is not a RAP name."""
        return cls(*parts) if (parts := _exchange(_RAP, name)) else None

    def __str__(self) -> str:
        return f"R{'T' if self.test else 'C'}{self.sender}{self.recipient}{self.fsn:05d}"


@dataclass(frozen=True, slots=True)
class AckName:
    """An acknowledgement of a RAP: ``AC``/``AT`` + sender + recipient + RAP FSN."""

    test: bool
    sender: str
    recipient: str
    fsn: int

    @classmethod
    def parse(cls, name: str) -> AckName | None:
        """The parts of ``name``, or None when it is not an ACK name."""
        return cls(*parts) if (parts := _exchange(_ACK, name)) else None

    def __str__(self) -> str:
        return f"A{'T' if self.test else 'C'}{self.sender}{self.recipient}{self.fsn:05d}"


@dataclass(frozen=True, slots=True)
class CiberName:
    """A CIBER file: ``CIBER_<from>_<to>_<yyyymmdd>_<seq>.dat`` (SID/BIDs, first sequence)."""

    sender: str
    recipient: str
    day: date
    sequence: int

    @classmethod
    def parse(cls, name: str) -> CiberName | None:
        """The parts of ``name``, or None when it is not a CIBER file name (or is a return)."""
        m = _CIBER.fullmatch(name)
        if m is None or m.group(5) or (day := _day(m.group(3))) is None:
            return None
        return cls(m.group(1), m.group(2), day, int(m.group(4)))

    def __str__(self) -> str:
        return f"CIBER_{self.sender}_{self.recipient}_{self.day:%Y%m%d}_{self.sequence:03d}.dat"


@dataclass(frozen=True, slots=True)
class CiberReturnName:
    """A CIBER return file: ``CIBER_<from>_<to>_<yyyymmdd>_<seq>_RET.dat`` (from: us)."""

    sender: str
    recipient: str
    day: date
    sequence: int

    @classmethod
    def parse(cls, name: str) -> CiberReturnName | None:
        """The parts of ``name``, or None when it is not a CIBER return name."""
        m = _CIBER.fullmatch(name)
        if m is None or not m.group(5) or (day := _day(m.group(3))) is None:
            return None
        return cls(m.group(1), m.group(2), day, int(m.group(4)))

    def __str__(self) -> str:
        return f"CIBER_{self.sender}_{self.recipient}_{self.day:%Y%m%d}_{self.sequence:03d}_RET.dat"


@dataclass(frozen=True, slots=True)
class CdrName:
    """A mediation CDR export: ``CDR_<TADIG>_<yyyymmdd>_<nnn>.csv|parquet``."""

    tadig: str
    day: date
    number: int
    suffix: str  # csv | parquet

    @classmethod
    def parse(cls, name: str) -> CdrName | None:
        """The parts of ``name``, or None when it is not a CDR export name."""
        m = _CDR.fullmatch(name)
        if m is None or (day := _day(m.group(2))) is None:
            return None
        return cls(m.group(1), day, int(m.group(3)), m.group(4))

    def __str__(self) -> str:
        return f"CDR_{self.tadig}_{self.day:%Y%m%d}_{self.number:03d}.{self.suffix}"
