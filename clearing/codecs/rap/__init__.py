"""RAP 1.5 (GSMA TD.32): return batches and Acknowledgements, bytes ↔ records.

- :mod:`.records` — the records (:class:`RapHeader`, the return items, :class:`RapFile`),
  the ErrorContext path (:class:`PathItem`) and the field formats.
- :func:`write_rap` / :func:`rap_file_name` — a RAP ReturnBatch for a partner's TAP file.
- :func:`read_rap` — a partner's RAP about our TAP-out.
- :func:`write_ack` / :func:`read_ack` / :func:`ack_for` / :func:`ack_file_name` — ACK.

Which findings become which return is not decided here but in :mod:`clearing.returns`.
"""

from __future__ import annotations

from clearing.codecs.rap.ack import Ack, ack_file_name, ack_for, read_ack, write_ack
from clearing.codecs.rap.read import read_rap
from clearing.codecs.rap.records import (
    FATAL_GROUPS,
    AuditMismatch,
    ErrorDetail,
    FatalGroup,
    FatalItem,
    MissingItem,
    PathItem,
    RapFile,
    RapHeader,
    RapItem,
    ReturnedEvent,
    SevereItem,
    StopItem,
)
from clearing.codecs.rap.write import rap_file_name, write_rap

__all__ = [
    "FATAL_GROUPS",
    "Ack",
    "AuditMismatch",
    "ErrorDetail",
    "FatalGroup",
    "FatalItem",
    "MissingItem",
    "PathItem",
    "RapFile",
    "RapHeader",
    "RapItem",
    "ReturnedEvent",
    "SevereItem",
    "StopItem",
    "ack_file_name",
    "ack_for",
    "rap_file_name",
    "read_ack",
    "read_rap",
    "write_ack",
    "write_rap",
]
