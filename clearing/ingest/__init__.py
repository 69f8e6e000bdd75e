"""The ingest stage: partners' files in, each with a fate.

* :func:`collect_partners` — fetch every configured partner's new files into ``inbox/``
  (SFTP or folder: the connections are handed in by the run, :class:`Sources`); the
  nightly's ``collect`` step and the ``clearing collect`` verb;
* :func:`claim_inputs` — the day's inputs: ``inbox/`` → ``work/<D>/in.partial/`` →
  ``work/<D>/in/`` (atomic renames; a dry-run mode says what a claim would take);
* :func:`input_kind` — which kind of partner file a path is (``tap``, ``ciber``, ``rap``,
  ``ack``).
"""

from __future__ import annotations

from clearing.ingest.claim import claim_inputs, is_claimed
from clearing.ingest.classify import INPUT_KINDS, input_kind
from clearing.ingest.collect import Collected, FetchLedger, Sources, collect_partners

__all__ = [
    "INPUT_KINDS",
    "Collected",
    "FetchLedger",
    "Sources",
    "claim_inputs",
    "collect_partners",
    "input_kind",
    "is_claimed",
]
