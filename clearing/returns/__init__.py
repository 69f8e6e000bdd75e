"""Returns: which findings become which RAP / CIBER return; partners' RAPs and ACKs worked.

- :mod:`clearing.returns.incoming` — a partner's RAP (answered with an ACK) or ACK (closes ours).

The RAP and ACK codec (bytes ↔ records) is :mod:`clearing.codecs.rap`.
"""

from __future__ import annotations

__all__: list[str] = []
