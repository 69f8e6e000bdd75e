"""Returns: which findings become which RAP / CIBER return; partners' RAPs and ACKs worked.

- :mod:`clearing.returns.rap` — findings → RAP return details and header; the day's RAPs.
- :mod:`clearing.returns.ciber` — findings → CIBER record returns and batch rejects, named.
- :mod:`clearing.returns.writer` — the policy as validate's ``ReturnWriter``
  (:data:`~clearing.returns.writer.WRITER`) and :func:`validate_and_return`.
- :mod:`clearing.returns.stage` — the stages: ``validate`` (with its returns) and ``receive``.
- :mod:`clearing.returns.incoming` — a partner's RAP (answered with an ACK) or ACK (closes ours).

The RAP and ACK codec (bytes ↔ records) is :mod:`clearing.codecs.rap`.
"""

from __future__ import annotations

from clearing.returns.writer import WRITER, validate_and_return

__all__ = ["WRITER", "validate_and_return"]
