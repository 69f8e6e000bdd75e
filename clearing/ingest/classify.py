"""Classify a file a partner sent us: TAP, CIBER, RAP or ACK (by name, CIBER by its bytes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from clearing.codecs.ciber import looks_like_ciber
from clearing.names import AckName, RapName, TapName

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["INPUT_KINDS", "input_kind"]

#: The kinds of partner file, in the order the claim step counts them.
INPUT_KINDS: Final = ("tap", "ciber", "rap", "ack")


def input_kind(path: Path) -> str | None:
    """``tap`` | ``ciber`` | ``rap`` | ``ack`` for a file a partner sent us, else ``None``."""
    if not path.is_file() or path.name.startswith("."):
        return None
    if TapName.parse(path.name):
        return "tap"
    if RapName.parse(path.name):
        return "rap"
    if AckName.parse(path.name):
        return "ack"
    with path.open("rb") as fh:
        head = fh.read(64)
    return "ciber" if looks_like_ciber(head) else None
