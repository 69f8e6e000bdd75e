"""The state databases of a work folder: the only code that holds their DDL or opens them.

* :mod:`.schema`: all the DDL, versioned, with numbered migrations;
* :mod:`.db`: :func:`open_store` (``clearing.duckdb``) and :func:`open_ledger` (the fetch
  ledger), one error :class:`~clearing.errors.StoreError`;
* typed methods per table: :mod:`.register` (files, findings, rap_out), :mod:`.sequences`
  (inbound and outbound FSN), :mod:`.returns_in` (partners' RAPs and ACKs), :mod:`.outbox`,
  :mod:`.held` (held records and their release), :mod:`.ledger` (fetched); :mod:`.sent`: what
  is sent (never rewritten, :func:`is_sent`); :mod:`.iot_breaches` (IOT breaches held from the
  payable); :mod:`.fates` (what became of every delivered entry).

Stages receive a :class:`Store` and use its typed methods; none writes SQL against these
tables.
"""

from __future__ import annotations

from clearing.errors import StoreError
from clearing.store.ciber_batches import BatchCheck
from clearing.store.db import (
    Database,
    LedgerStore,
    Store,
    attach_read_only,
    open_ledger,
    open_store,
)
from clearing.store.fates import FATES, EntryFate
from clearing.store.held import HeldRecord
from clearing.store.iot_breaches import BreachStatus, IotBreach
from clearing.store.ledger import FetchedFile
from clearing.store.outbox import OutboxEntry, OutboxState, OutboxVersion, returned_copy
from clearing.store.schema import LEDGER, STATE, Migration, Schema
from clearing.store.sent import SentFile, SentHistory, is_sent, sent_files, sent_partners
from clearing.store.sequences import FileRecord, SequenceCheck, next_fsn

__all__ = [
    "FATES",
    "LEDGER",
    "STATE",
    "BatchCheck",
    "BreachStatus",
    "Database",
    "EntryFate",
    "FetchedFile",
    "FileRecord",
    "HeldRecord",
    "IotBreach",
    "LedgerStore",
    "Migration",
    "OutboxEntry",
    "OutboxState",
    "OutboxVersion",
    "Schema",
    "SentFile",
    "SentHistory",
    "SequenceCheck",
    "Store",
    "StoreError",
    "attach_read_only",
    "is_sent",
    "next_fsn",
    "open_ledger",
    "open_store",
    "returned_copy",
    "sent_files",
    "sent_partners",
]
