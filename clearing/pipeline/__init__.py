"""Running the pipeline: the nightly run of a date, the monthly close, backfills.

See :mod:`clearing.pipeline.nightly` for the stages, :mod:`clearing.pipeline.run` for the run
manifest, :mod:`clearing.pipeline.lock` for the one-run-per-work-folder lock.
"""

from __future__ import annotations

from clearing.pipeline.monthly import run_monthly
from clearing.pipeline.nightly import NightlyOptions, claim_inputs, run_backfill, run_nightly
from clearing.pipeline.run import Run

__all__ = ["NightlyOptions", "Run", "claim_inputs", "run_backfill", "run_monthly", "run_nightly"]
