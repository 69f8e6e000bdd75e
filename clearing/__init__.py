"""clearing: batch roaming clearing and settlement (TAP3/RAP/NRT/CIBER)."""

from __future__ import annotations

from clearing.errors import ClearingError, ConfigError, DecodeError, EncodeError

__version__ = "0.1.0"

__all__ = ["ClearingError", "ConfigError", "DecodeError", "EncodeError", "__version__"]
