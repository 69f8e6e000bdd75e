"""The returns of a validated day: the RAP / CIBER-return policy handed to validate.

:data:`WRITER` is the :class:`~clearing.validate.stage.ReturnWriter` that
:func:`~clearing.validate.stage.validate_day` calls where the day's returns are written (the
RAPs after the TAP files, each CIBER file's returns after its rows); validate decides nothing
about returns itself and does not import this package. :func:`validate_and_return` is the
validate stage with its returns, as the nightly and ``clearing validate --date`` run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearing.returns.ciber import write_ciber_returns
from clearing.returns.rap import write_raps
from clearing.validate.stage import validate_day

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence
    from pathlib import Path

    from clearing.config import Settings, WorkDir
    from clearing.store import Store
    from clearing.validate.ciber import CiberChecked
    from clearing.validate.stage import CiberResult, FileResult, ValidateResult

__all__ = ["WRITER", "Returns", "validate_and_return"]


class Returns:
    """The returns policy as validate's ``ReturnWriter``: RAPs and CIBER returns."""

    def tap_returns(
        self,
        workdir: WorkDir,
        day: dt.date,
        results: Sequence[FileResult],
        state: Store,
        settings: Settings,
    ) -> list[Path]:
        """The day's RAPs (:func:`clearing.returns.rap.write_raps`).

        Returns:
            The RAP files written, in the order written.
        """
        return write_raps(workdir, day, results, state, settings)

    def ciber_returns(
        self,
        workdir: WorkDir,
        checked: CiberChecked,
        result: CiberResult,
        settings: Settings,
        sequence: int,
    ) -> None:
        """One file's CIBER returns (:func:`clearing.returns.ciber.write_ciber_returns`)."""
        write_ciber_returns(workdir, checked, result, settings, sequence)


WRITER = Returns()
"""The returns policy of the nightly."""


def validate_and_return(workdir: WorkDir, day: dt.date, inputs: Sequence[Path]) -> ValidateResult:
    """Validate the TAP and CIBER files of ``day`` and write their RAPs and CIBER returns.

    Args:
        workdir: the work folder.
        day: the processing date.
        inputs: the day's TAP and CIBER files.

    Returns:
        The validation result, with the RAPs written and each CIBER file's returns.
    """
    return validate_day(workdir, day, inputs, returns=WRITER)
