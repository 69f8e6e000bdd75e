"""Rating: reference data, wholesale IOT rating of visitors, the IOT check of TAP-in, re-rating.

Public API (the nightly calls the first two):

* :func:`rate_day` — the rating of a processing date (CDRs → rated Parquet; IOT check of the
  day's accepted TAP-in / CIBER-in); :mod:`clearing.outbound` writes TAP-out from the Parquet.
* :func:`import_rates` — reference-data CSV sources → hive-partitioned Parquet (any table with a
  schema in ``specs/rates``); :func:`read_table`, :func:`duckdb_view` to read them back. Each
  import that changes the content is kept as a version (:mod:`clearing.rating.versions`);
  :mod:`clearing.rating.explain` shows the tariff rows behind a rated row's ``iot_version``.
* :func:`rate_visitors`, :func:`iot_check`, :func:`what_if`, :func:`rerate` — the parts.
* :func:`read_cdrs` — the mediation CDR reader (findings and quarantine, never a crash).

Retail rating per sub-number lives in :mod:`clearing.rating.retail` (imported on its own).
"""

from __future__ import annotations

from clearing.rating._book import Rates
from clearing.rating._refdata import (
    SOURCES,
    ImportedTable,
    check_reference,
    duckdb_view,
    fx_problems,
    import_rates,
    read_table,
)
from clearing.rating.cdr import CdrRead, read_cdrs
from clearing.rating.check import IotCheck, iot_check
from clearing.rating.inbound import rate_visitors
from clearing.rating.rerate import Rerate, rerate
from clearing.rating.run import RateSummary, rate_day
from clearing.rating.whatif import WhatIf, what_if

__all__ = [
    "SOURCES",
    "CdrRead",
    "ImportedTable",
    "IotCheck",
    "RateSummary",
    "Rates",
    "Rerate",
    "WhatIf",
    "check_reference",
    "duckdb_view",
    "fx_problems",
    "import_rates",
    "iot_check",
    "rate_day",
    "rate_visitors",
    "read_cdrs",
    "read_table",
    "rerate",
    "what_if",
]
