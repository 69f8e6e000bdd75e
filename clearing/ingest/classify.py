"""Classify an entry a partner sent us: TAP, CIBER, RAP or ACK — or why it cannot be taken.

Names are checked once, here, with :mod:`clearing.names` (ASCII only, full match): a name
with a non-ASCII digit (``CDFRAF9HKGCL١٢٣٤٥``), a trailing newline or any other text is not a
partner file name. :func:`classify` says what an entry of ``inbox/`` is, or what is wrong with
it (a :class:`Verdict` with a reason and a hint, for the claim to quarantine it);
:func:`input_kind` is its kind alone.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from clearing.codecs.ciber import looks_like_ciber
from clearing.names import (
    AckName,
    CiberName,
    CiberReturnName,
    RapName,
    TapName,
    printable_name,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["INPUT_KINDS", "Verdict", "classify", "input_kind", "name_kind", "name_sender"]

#: The kinds of partner file, in the order the claim step counts them.
INPUT_KINDS: Final = ("tap", "ciber", "rap", "ack")

#: An NRTRDE file (``NR`` + sender + recipient + sequence): not for clearing.
_NRTRDE = re.compile(r"NR[A-Z0-9]{5}[A-Z0-9]{5}[0-9]{5}", re.ASCII)

_NAMES = (
    "TAP `CD`/`TD` + sender + recipient + FSN, RAP `RC`/`RT`..., ACK `AC`/`AT`..., "
    "CIBER `CIBER_<from>_<to>_<yyyymmdd>_<seq>.dat`"
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an entry is: its kind, or why it cannot be taken (``kind`` None).

    Attributes:
        kind: ``tap`` | ``ciber`` | ``rap`` | ``ack``; None when the entry is not one.
        reason: what is wrong with it (empty for a partner file).
        hint: what to do about it.
        sender: the sender its name claims (TADIG or SID/BID), when the name says one.
    """

    kind: str | None
    reason: str = ""
    hint: str = ""
    sender: str | None = None


def name_kind(name: str) -> tuple[str, str] | None:
    """(kind, sender) of a partner file name (full match, ASCII only), else None."""
    for kind, parser in (("tap", TapName), ("rap", RapName), ("ack", AckName)):
        parsed = parser.parse(name)
        if parsed is not None:
            return kind, parsed.sender
    ciber = CiberName.parse(name) or CiberReturnName.parse(name)
    if ciber is not None:
        return "ciber", ciber.sender
    return None


def name_sender(name: str) -> str | None:
    """The sender a partner file name claims (TADIG / SID/BID), or None."""
    got = name_kind(name)
    return got[1] if got else None


def _not_a_file(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link, not a file: links in inbox/ are not followed"
    if stat.S_ISDIR(mode):
        return "a directory, not a file: nothing inside it was read"
    return "not a regular file (a FIFO, socket or device)"


def classify(path: Path) -> Verdict:
    """What the entry ``path`` is, or why it is not a partner file we can process.

    By name first (:mod:`clearing.names`), then by its bytes: an empty file, a file that
    cannot be read and a CIBER-named file whose bytes are not CIBER records are not taken.
    """
    name = path.name
    shown = printable_name(name)
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return Verdict(None, f"cannot be examined: {exc.strerror or exc}", "look at it by hand")
    if not stat.S_ISREG(mode):
        return Verdict(
            None,
            _not_a_file(mode),
            "put partner files into inbox/ as plain files; remove this entry from failed/ "
            "once looked at",
        )
    if not (name.isascii() and name.isprintable()):
        return Verdict(
            None,
            f"`{shown}` is not a partner file name: partner file names are ASCII letters, "
            "digits and `_.` (a non-ASCII digit such as `\\u0661` is not a digit here)",
            "ask the sender to send it again under its TD.57 / CIBER name",
        )
    got = name_kind(name)
    if got is None:
        if _NRTRDE.fullmatch(name):
            return Verdict(
                None,
                "NRTRDE is not processed by clearing; it belongs to the fraud (NRTRDE) system",
                "deliver NRTRDE files to the fraud system, and narrow the partner's file "
                "pattern in [transport.partners.<code>] so that collect leaves them",
            )
        return Verdict(
            None,
            f"`{shown}` is not a partner file name ({_NAMES})",
            "find out who put it there; a partner file sent under another name is sent "
            "again under its proper name",
        )
    kind, sender = got
    size = path.stat().st_size
    if size == 0:
        return Verdict(
            None,
            "empty file (0 bytes)",
            f"ask {sender} to send `{name}` again",
            sender,
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        return Verdict(
            None,
            f"cannot be read: {exc.strerror or exc}",
            "give the clearing user read access, then move it back into inbox/",
            sender,
        )
    if kind == "ciber" and not looks_like_ciber(head):
        return Verdict(
            None,
            "named as a CIBER file but its bytes are not CIBER records",
            f"ask {sender} to send `{name}` again as CIBER 2.5",
            sender,
        )
    return Verdict(kind, sender=sender)


def input_kind(path: Path) -> str | None:
    """``tap`` | ``ciber`` | ``rap`` | ``ack`` for a file a partner sent us, else ``None``."""
    if path.name.startswith("."):
        return None
    return classify(path).kind
