"""The ingest stage: partners' files in, each with a fate.

* :func:`collect_partners` — fetch every configured partner's new files into ``inbox/``
  (SFTP or folder: the connections are handed in by the run, :class:`Sources`); the
  nightly's ``collect`` step and the ``clearing collect`` verb;
* :func:`claim_inputs` — the day's inputs: ``inbox/`` → ``work/<D>/in.partial/`` →
  ``work/<D>/in/`` (atomic renames; a dry-run mode says what a claim would take);
* :func:`quarantine`, :func:`record_fate`, :func:`day_fates` — every delivered entry's fate
  (:mod:`.fates`): processed, copy ignored, returned, quarantined into ``failed/<D>/`` with a
  reason file, or refused on the server;
* :func:`classify` — what an entry of ``inbox/`` is, or why it is quarantined;
  :func:`delivered_by` — the channel that delivered a file (the fetch ledger);
* :func:`input_kind` — which kind of partner file a path is (``tap``, ``ciber``, ``rap``,
  ``ack``).
"""

from __future__ import annotations

from clearing.ingest.claim import (
    Waiting,
    claim_inputs,
    delivered_by,
    delivery_channels,
    is_claimed,
    waiting,
)
from clearing.ingest.classify import (
    INPUT_KINDS,
    Verdict,
    classify,
    input_kind,
    name_kind,
    name_sender,
)
from clearing.ingest.collect import Collected, FetchLedger, Sources, collect_partners
from clearing.ingest.fates import (
    FATES,
    Fate,
    day_fates,
    first_reported,
    quarantine,
    record_fate,
    record_fates,
    refused_since,
)

__all__ = [
    "FATES",
    "INPUT_KINDS",
    "Collected",
    "Fate",
    "FetchLedger",
    "Sources",
    "Verdict",
    "Waiting",
    "claim_inputs",
    "classify",
    "collect_partners",
    "day_fates",
    "delivered_by",
    "delivery_channels",
    "first_reported",
    "input_kind",
    "is_claimed",
    "name_kind",
    "name_sender",
    "quarantine",
    "record_fate",
    "record_fates",
    "refused_since",
    "waiting",
]
