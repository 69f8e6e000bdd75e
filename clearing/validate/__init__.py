"""Validation: every input file of a processing date → findings, lake rows and register facts.

- :mod:`clearing.validate.tap` — TD.57 checks of one TAP file that need only the file.
- :mod:`clearing.validate.ciber` — CIBER validation: ``specs/ciber/rules.csv`` → findings.
- :mod:`clearing.validate.rules` — the TD.57 rule table and how a finding is made from a rule.
- :mod:`clearing.validate.duplicates` — duplicate call events, within and across files.
- :mod:`clearing.validate.findings` — findings as rows, never exceptions.
- :mod:`clearing.validate.state` — the register, sequences, findings and RAPs in DuckDB.
- :mod:`clearing.validate.stage` — the stage: the day's files → findings, lake rows, returns.
"""

from __future__ import annotations

__all__: list[str] = []
