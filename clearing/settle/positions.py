"""The net position of a settlement month per partner and currency, for the run summary.

The same figures as the monthly workbook's Summary sheet (what we receive minus what we pay,
in the partner's settlement currency, each total converted once), as plain data: amounts are
:class:`~decimal.Decimal` at the currency's scale, never floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clearing import config

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["net_positions", "positions_of"]


def net_positions(
    workdir: Path, period: str, *, settings: config.Settings | None = None
) -> list[dict[str, Any]]:
    """The net position of ``period`` per partner and settlement currency.

    Returns:
        One dict per partner, in partner order: ``partner``, ``currency``, ``receivable``,
        ``payable``, ``net`` (Decimal, exact at the currency's scale; ``net`` > 0: we
        receive) and ``direction`` (``we receive``, ``we pay``, ``nil``).

    Raises:
        MissingInputError: no processing date of the period was validated and rated.
    """
    from clearing.settle._monthly import Period, _Figures

    settings = settings or config.load(workdir)
    return positions_of(_Figures.read(workdir, Period.parse(period), settings).summary)


def positions_of(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`net_positions` of the monthly figures' summary rows (already read)."""
    return [
        {
            "partner": r["partner"],
            "currency": r["sc"],
            "receivable": _at(r["rec_sc"], r["ss"]),
            "payable": _at(r["pay_sc"], r["ss"]),
            "net": _at(r["net_sc"], r["ss"]),
            "direction": r["direction"],
        }
        for r in summary
    ]


def _at(amount: Decimal, scale: int) -> Decimal:
    """``amount`` written with the currency's ``scale`` decimals (a nil amount is ``0.00``).

    The amounts are exact at that scale already: this changes how they are written, never
    their value.
    """
    written = amount.quantize(Decimal(1).scaleb(-scale))
    if written != amount:
        msg = f"{amount} has more than {scale} decimals"
        raise ValueError(msg)
    return written
