"""The transport's ledger error (the ledgers themselves are :mod:`clearing.store`'s tables)."""

from __future__ import annotations

from clearing.errors import ClearingError

__all__ = ["LedgerError"]


class LedgerError(ClearingError):
    """A ledger (outbox or fetch ledger) cannot do what was asked.

    A ledger that cannot be opened is a :class:`~clearing.errors.StoreError`.
    """
