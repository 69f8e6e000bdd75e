"""Classify a file a partner sent us: TAP, CIBER, RAP or ACK (by name, CIBER by its bytes)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["INPUT_KINDS", "input_kind"]

#: The kinds of partner file, in the order the claim step counts them.
INPUT_KINDS: Final = ("tap", "ciber", "rap", "ack")

_RAP_NAME = re.compile(r"^R[CT][A-Z0-9]{5}[A-Z0-9]{5}[0-9]{5}$")
_ACK_NAME = re.compile(r"^A[CT][A-Z0-9]{5}[A-Z0-9]{5}[0-9]{5}$")


def input_kind(path: Path) -> str | None:
    """``tap`` | ``ciber`` | ``rap`` | ``ack`` for a file a partner sent us, else ``None``."""
    from clearing.codecs.ciber import looks_like_ciber
    from clearing.validate.tap import parse_tap_name

    if not path.is_file() or path.name.startswith("."):
        return None
    if parse_tap_name(path.name):
        return "tap"
    if _RAP_NAME.match(path.name):
        return "rap"
    if _ACK_NAME.match(path.name):
        return "ack"
    with path.open("rb") as fh:
        head = fh.read(64)
    return "ciber" if looks_like_ciber(head) else None
