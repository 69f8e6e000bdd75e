"""TAP 3 (GSMA TD.57): encoding (:mod:`.encode`) and the primitive values (:mod:`.values`)."""

from __future__ import annotations

__all__: list[str] = []
