"""Returns: RAP 1.5 return batches (fatal, severe, missing, stop) and RAP Acknowledgements.

- :func:`write_rap` / :func:`read_rap` / :func:`rap_file_name` — RAP ReturnBatch (TD.32).
- :func:`write_ack` / :func:`ack_for` / :func:`read_ack` / :func:`ack_file_name` — ACK.
"""

from __future__ import annotations

from clearing.returns.ack import Ack, ack_file_name, ack_for, read_ack, write_ack
from clearing.returns.rap import (
    FATAL_GROUPS,
    AuditMismatch,
    ErrorDetail,
    FatalGroup,
    FatalItem,
    MissingItem,
    RapFile,
    RapHeader,
    RapItem,
    ReturnedEvent,
    SevereItem,
    StopItem,
    rap_file_name,
    read_rap,
    write_rap,
)

__all__ = [
    "FATAL_GROUPS",
    "Ack",
    "AuditMismatch",
    "ErrorDetail",
    "FatalGroup",
    "FatalItem",
    "MissingItem",
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
