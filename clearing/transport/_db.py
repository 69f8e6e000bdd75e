"""The transport's ledger error, re-exported (it is :class:`clearing.errors.LedgerError`)."""

from __future__ import annotations

from clearing.errors import LedgerError

__all__ = ["LedgerError"]
