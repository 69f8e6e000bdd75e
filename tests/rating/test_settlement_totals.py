"""What we owe is converted to the settlement currency once per total (issue 13, item 8)."""

from __future__ import annotations

import polars as pl

from clearing.rating.check import settlement_totals

# 1 SDR = 1.2 EUR (rate 12, scale 1); a USD row to show that rate pairs are converted apart
FX = pl.DataFrame(
    {"version": ["eur1", "usd1"], "rate": [12, 14], "rate_scale": [1, 1]},
)


def _rated(rows: list[tuple[str, str, int, int, str, int | None]]) -> pl.DataFrame:
    """(partner, currency, scale, payable, fx_versions, per-event settlement amount) rows."""
    return pl.DataFrame(
        {
            "partner": [r[0] for r in rows],
            "currency": [r[1] for r in rows],
            "charge_scale": [r[2] for r in rows],
            "payable": [r[3] for r in rows],
            "fx_versions": [r[4] for r in rows],
            "settlement_amount": [r[5] for r in rows],
            "settlement_currency": ["EUR"] * len(rows),
            "settlement_scale": [2] * len(rows),
        }
    )


def test_three_events_drift_when_rounded_one_by_one() -> None:
    # three events of 0.00375 SDR: 0.0045 EUR each → 0.00 EUR each (half up), 0.00 summed;
    # their total 0.01125 SDR = 0.0135 EUR → 0.01 EUR, rounded once
    rated = _rated([("FRAF9", "SDR", 5, 375, "-/eur1", 0)] * 3)
    assert settlement_totals(rated, FX) == [("FRAF9", "EUR", 2, 1, 0)]


def test_each_rate_pair_is_one_conversion_and_refunds_count_negative() -> None:
    rated = _rated(
        [
            # 0.125 SDR + 0.125 SDR = 0.25 SDR = 0.30 EUR (each alone: 0.15 EUR)
            ("DEUD9", "SDR", 3, 125, "-/eur1", 15),
            ("DEUD9", "SDR", 3, 125, "-/eur1", 15),
            # a refund of 0.005 USD: 0.005 / 1.4 × 1.2 = -0.0042857 EUR → -0.00 EUR
            ("DEUD9", "USD", 3, -5, "usd1/eur1", 0),
            # 1.00 USD: 1 / 1.4 × 1.2 = 0.857142… → 0.86 EUR
            ("DEUD9", "USD", 2, 100, "usd1/eur1", 86),
            # no settlement amount (no rate): left out, as before
            ("DEUD9", "SDR", 3, 999, "-/eur1", None),
        ]
    )
    assert settlement_totals(rated, FX) == [("DEUD9", "EUR", 2, 30 + 0 + 86, 15 + 15 + 0 + 86)]
