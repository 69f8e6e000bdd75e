"""Outbound files: TAP-out and Notifications (GSM partners), CIBER-out (CDMA partners).

* :func:`write_day` — the outbound stage: the day's files from the rated rows in the lake;
  :func:`write_outbound` — the same from rated visitor rows in memory.
* :func:`encode_transfer_batch`, :func:`encode_notification`, :func:`tap_file_name` — TAP 3.12.
* :class:`Sequences` — FSNs and CIBER batch numbers in ``clearing.duckdb`` (``outbound_*``).
"""

from __future__ import annotations

from clearing.outbound.run import OutboundFile, write_day, write_outbound
from clearing.outbound.sequences import FileRecord, Sequences, next_fsn
from clearing.outbound.tap import (
    TapHeader,
    TapTotals,
    encode_notification,
    encode_transfer_batch,
    tap_file_name,
)

__all__ = [
    "FileRecord",
    "OutboundFile",
    "Sequences",
    "TapHeader",
    "TapTotals",
    "encode_notification",
    "encode_transfer_batch",
    "next_fsn",
    "tap_file_name",
    "write_day",
    "write_outbound",
]
