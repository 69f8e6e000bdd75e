"""CIBER-specific decode errors (all are :class:`clearing.errors.DecodeError`)."""

from __future__ import annotations

from clearing.errors import DecodeError

__all__ = ["CiberDecodeError", "CiberStructureError", "UnsupportedRecordTypeError"]


class CiberDecodeError(DecodeError):
    """A CIBER file could not be decoded (``path`` names batch, line and field)."""


class CiberStructureError(CiberDecodeError):
    """Lines do not form batches: header/details/trailer out of order, lines too short."""


class UnsupportedRecordTypeError(CiberDecodeError):
    """A CIBER 2.0 (X0) or type-70 record: recognised but not read by this codec."""
