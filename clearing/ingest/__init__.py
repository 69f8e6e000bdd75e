"""The ingest stage: partners' files in, each with a fate.

* :func:`collect_partners` — fetch every configured partner's new files into ``inbox/``
  (SFTP or folder: the connections are handed in by the run, :class:`Sources`); the
  nightly's ``collect`` step and the ``clearing collect`` verb;
* :func:`claim_inputs` — the day's inputs: ``inbox/`` → ``work/<D>/in.partial/`` →
  ``work/<D>/in/`` (atomic renames; a dry-run mode says what a claim would take);
* :func:`quarantine`, :func:`record_fate`, :func:`day_fates` — every delivered entry's fate
  (:mod:`.fates`): processed, copy ignored, returned, quarantined into ``failed/<D>/`` with a
  reason file, or refused on the server;
* :func:`input_kind` — which kind of partner file a path is (``tap``, ``ciber``, ``rap``,
  ``ack``).
"""

from __future__ import annotations

from clearing.ingest.claim import claim_inputs, is_claimed
from clearing.ingest.classify import INPUT_KINDS, input_kind
from clearing.ingest.collect import Collected, FetchLedger, Sources, collect_partners
from clearing.ingest.fates import FATES, Fate, day_fates, quarantine, record_fate, record_fates

__all__ = [
    "FATES",
    "INPUT_KINDS",
    "Collected",
    "Fate",
    "FetchLedger",
    "Sources",
    "claim_inputs",
    "collect_partners",
    "day_fates",
    "input_kind",
    "is_claimed",
    "quarantine",
    "record_fate",
    "record_fates",
]
