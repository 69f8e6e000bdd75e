"""Outbound IOT check (payables): what partners charged us for our roamers, against their IOT.

Input: accepted TAP-in / CIBER-in events (:data:`clearing.codecs.events.EVENT_SCHEMA` plus
``file``). Each event is re-rated with our copy of the partner's IOT (direction
``outbound``) at the file's own scale and currency:

* the service comes from the event: MOC voice by the called number's longest prefix
  (moc_local / moc_home / moc_international / moc_destination), SMS-MO (teleservice 22 and
  SMS over IMS), MTC voice, SMS-MT (21), GPRS (volume = incoming + outgoing), VoLTE sessions,
  charged supplementary-service events; a CAMEL invocation fee is checked against the
  ``camel`` row;
* the charged value is the gross charge: chargeType 00 + discount + CAMEL fee; the expected
  value is the re-rated charge (+ the expected CAMEL fee);
* ``|charged - expected|`` above the agreement's ``iot_tolerance`` is a **breach**: a finding
  row with the partner, file, event index, both values, the difference and the IOT row used;
* a breach charged *above* the IOT carries its overcharge in the settlement currency
  (``over_settlement``); :func:`over_threshold` marks the breaches above the configured
  thresholds (absolute, in the settlement currency, or relative, in percent of the expected
  charge): the rating stage holds their events from the payable.

What we owe is converted to the partner's settlement currency with the ``fx`` table (rate
valid on the event's local date, through SDR) and rounded once (half up) to the currency's
minor unit: per event for the event's own ``settlement_amount`` (information), and, for the
money that is settled, once per total by :func:`settlement_totals` (reports/README.md,
Rounding). When it cannot be converted (no FX rate of the event's or the settlement currency,
an unknown currency, no agreement), ``settlement_amount`` is null and ``hold_reason`` says
why: the payable is *held* (never summed as 0; see :mod:`clearing.rating.held`). Events the
IOT does not price (CIBER other charges, CIBER SMS without a called number, refunds,
uncharged SS events) are ``unchecked`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import polars as pl

from clearing.money import convert, convert_expr, minor_units_expr
from clearing.rating._iot import prepare_tariff, rate_usage
from clearing.rating.validity import valid_on_expr

if TYPE_CHECKING:
    from collections.abc import Callable

    from clearing.rating._book import Rates

__all__ = [
    "FINDING_COLUMNS",
    "IotCheck",
    "Thresholds",
    "convert_groups",
    "event_usage",
    "expected_charges",
    "iot_check",
    "over_threshold",
    "settlement_groups",
    "settlement_totals",
]

Thresholds = tuple[Decimal | None, Decimal | None]
"""A partner's IOT breach thresholds: (absolute in settlement currency units, percent); None:
that threshold is off."""

FINDING_COLUMNS: Final = (
    "partner",
    "file",
    "event_index",
    "event_kind",
    "service",
    "local_start",
    "expected",
    "charged",
    "difference",
    "charge_scale",
    "currency",
    "tolerance",
    "iot_key",
    "iot_version",
)


@dataclass(frozen=True)
class IotCheck:
    """The result of :func:`iot_check`.

    Attributes:
        rated: one row per input event: the event's identity, usage, the IOT row used,
            expected / charged / difference, ``breach``, the settlement amount, ``status``
            (checked | unchecked), ``reason`` and ``hold_reason`` (the payable is held).
        findings: the breaches (:data:`FINDING_COLUMNS`).
    """

    rated: pl.DataFrame
    findings: pl.DataFrame


def event_usage(events: pl.DataFrame) -> pl.DataFrame:
    """The engine's usage columns of TAP/CIBER events (``kind``, ``number``, ``usage`` and more)."""
    k = pl.col("event_kind")
    tele = pl.col("tele_service_code")
    ciber_other = (pl.col("source_format") == "ciber") & (
        pl.col("called_number").is_null() & (pl.col("duration").fill_null(0) == 0)
    )
    kind = (
        pl.when(pl.col("refund").fill_null(False))
        .then(None)
        .when(k == "mobileOriginatedCall")
        .then(
            pl.when(tele == "22")
            .then(pl.lit("sms_mo"))
            .when(ciber_other)
            .then(None)
            .otherwise(pl.lit("moc"))
        )
        .when(k == "mobileTerminatedCall")
        .then(pl.when(tele == "21").then(pl.lit("sms_mt")).otherwise(pl.lit("mtc")))
        .when(k == "gprsCall")
        .then(pl.lit("gprs"))
        .when(k == "mobileSession")
        .then(pl.lit("volte"))
        .when(k == "messagingEvent")
        .then(pl.lit("sms_mo"))
        .when((k == "supplServiceEvent") & pl.col("charge").is_not_null())
        .then(pl.lit("ss"))
        .otherwise(None)
    )
    usage = (
        pl.when(pl.col("kind").is_in(("moc", "mtc", "volte")))
        .then(pl.col("duration").fill_null(0))
        .when(pl.col("kind") == "gprs")
        .then(
            pl.col("data_volume_incoming").fill_null(0)
            + pl.col("data_volume_outgoing").fill_null(0)
        )
        .otherwise(pl.lit(1, pl.Int64))
    )
    return events.with_columns(kind.alias("kind")).with_columns(
        pl.col("sender").alias("partner"),
        pl.when(pl.col("kind") == "moc")
        .then(pl.col("called_number"))
        .otherwise(None)
        .alias("number"),
        usage.cast(pl.Int64).alias("usage"),
        pl.col("charge_scale").cast(pl.Int64).alias("scale"),
    )


def _to_settlement(
    ev: pl.DataFrame,
    rates: Rates,
    amount: str,
    scale: str,
    currency: str,
    *,
    into: str = "settlement_amount",
    versions: str | None = "fx_versions",
    hold_reason: str | None = "hold_reason",
) -> pl.DataFrame:
    """Add the converted amount and the columns that explain it.

    ``into``: the amount at ``settlement_scale`` (one rounding); ``versions``: the FX rows
    used; ``hold_reason``: why the amount cannot be converted. None: that column is left out.
    """
    days = ev.select(pl.col("local_start").dt.date().alias("day")).unique()
    fx = (
        days.join(rates.fx, how="cross")
        .filter(valid_on_expr("day"))
        .select("day", "currency", "rate", "rate_scale", "version")
    )
    sdr = days.select(
        "day",
        pl.lit("SDR").alias("currency"),
        pl.lit(1, pl.Int64).alias("rate"),
        pl.lit(0, pl.Int64).alias("rate_scale"),
        pl.lit("-").alias("version"),
    )
    fx = pl.concat([fx, sdr])
    src = fx.rename({"currency": "_c", "rate": "_r1", "rate_scale": "_s1", "version": "_v1"})
    dst = fx.rename({"currency": "_d", "rate": "_r2", "rate_scale": "_s2", "version": "_v2"})
    out = (
        ev.with_columns(pl.col("local_start").dt.date().alias("day"))
        .join(src, left_on=["day", currency], right_on=["day", "_c"], how="left")
        .join(dst, left_on=["day", "settlement_currency"], right_on=["day", "_d"], how="left")
    )
    # amount/10^a units of C; C per SDR = r1/10^s1; S per SDR = r2/10^s2; target 10^-m units of S
    value = convert_expr(
        pl.col(amount),
        pl.col(scale),
        pl.col("_r1"),
        pl.col("_s1"),
        pl.col("_r2"),
        pl.col("_s2"),
        pl.col("settlement_scale"),
    ).cast(pl.Int64)
    day = pl.col("day").dt.to_string("%Y-%m-%d")
    hold = (
        pl.when(pl.col(amount).is_null())
        .then(None)
        .when(pl.col("settlement_currency").is_null())
        .then(pl.format("no agreement with {} valid on {}: no settlement currency", "partner", day))
        .when(pl.col("_r1").is_null() & pl.col(currency).is_null())
        .then(pl.format("no currency on the event: no FX rate valid on {}", day))
        .when(pl.col("_r1").is_null())
        .then(pl.format("no FX rate for {} valid on {} (unknown currency?)", currency, day))
        .when(pl.col("_r2").is_null())
        .then(pl.format("no FX rate for {} valid on {}", "settlement_currency", day))
    )
    return out.with_columns(
        pl.when(
            pl.col("_r1").is_not_null() & pl.col("_r2").is_not_null() & pl.col(amount).is_not_null()
        )
        .then(value)
        .alias(into),
        pl.concat_str([pl.col("_v1"), pl.col("_v2")], separator="/").alias(versions or "_vs"),
        hold.alias(hold_reason or "_hold"),
    ).drop(
        "day",
        "_r1",
        "_s1",
        "_v1",
        "_r2",
        "_s2",
        "_v2",
        *([] if versions else ["_vs"]),
        *([] if hold_reason else ["_hold"]),
    )


def expected_charges(usage: pl.DataFrame, rates: Rates) -> pl.DataFrame:
    """Re-rate usage rows with the outbound IOT: what the partner should have charged.

    ``usage`` needs ``row_id``, ``partner``, ``kind``, ``number``, ``local_start``, ``usage``,
    ``scale``, ``currency`` and ``camel_fee`` (null: no CAMEL invocation). Returns per row:
    ``service``, ``iot_key``, ``iot_version``, ``charged_units``, ``expected_charge``,
    ``expected_camel`` and the reasons when a value cannot be priced.
    """
    days = sorted(set(usage["local_start"].dt.date().drop_nulls().to_list()))
    tariff = prepare_tariff(rates.iot, "outbound", days)
    cols = ["row_id", "partner", "kind", "number", "local_start", "usage", "scale", "currency"]
    main = rate_usage(usage.select(cols), tariff)
    camel_in = usage.filter(pl.col("camel_fee").is_not_null()).select(
        "row_id",
        "partner",
        pl.lit("camel").alias("kind"),
        pl.lit(None, pl.String).alias("number"),
        "local_start",
        pl.lit(1, pl.Int64).alias("usage"),
        "scale",
        "currency",
    )
    camel = rate_usage(camel_in, tariff).select(
        "row_id",
        pl.col("charge").alias("expected_camel"),
        pl.col("reason").alias("camel_reason"),
    )
    return main.select(
        "row_id",
        "service",
        "iot_key",
        "iot_version",
        "charged_units",
        pl.col("charge").alias("expected_charge"),
        pl.col("reason").alias("_reason"),
    ).join(camel, on="row_id", how="left", maintain_order="left")


def iot_check(events: pl.DataFrame, rates: Rates) -> IotCheck:
    """Check accepted TAP-in / CIBER-in events against the partners' outbound IOT."""
    ev = event_usage(events).with_row_index("row_id")
    if "file" not in ev.columns:
        ev = ev.with_columns(pl.lit(None, pl.String).alias("file"))
    days = sorted(set(ev["local_start"].dt.date().drop_nulls().to_list()))
    expected_rows = expected_charges(ev, rates)
    agreements = (
        pl.DataFrame({"day": days}, schema={"day": pl.Date})
        .join(rates.agreements, how="cross")
        .filter(valid_on_expr("day"))
        .select(
            "day",
            "partner",
            "iot_tolerance",
            "iot_tolerance_scale",
            "settlement_currency",
        )
    )
    out = (
        ev.select(
            "row_id",
            "file",
            "source_format",
            "partner",
            "file_sequence_number",
            "event_index",
            "event_kind",
            "imsi",
            "msisdn",
            "called_number",
            "local_start",
            "kind",
            "number",
            "usage",
            "currency",
            pl.col("scale").alias("charge_scale"),
            "charge",
            "discount",
            "camel_fee",
            "tax",
        )
        .join(expected_rows, on="row_id", how="left", maintain_order="left")
        .with_columns(pl.col("local_start").dt.date().alias("day"))
        .join(agreements, on=["day", "partner"], how="left", maintain_order="left")
        .drop("day")
    )
    has_camel = pl.col("camel_fee").is_not_null()
    expected = pl.col("expected_charge") + pl.when(has_camel).then(
        pl.col("expected_camel")
    ).otherwise(0)
    charged = (
        pl.col("charge").fill_null(0)
        + pl.col("discount").fill_null(0)
        + pl.col("camel_fee").fill_null(0)
    )
    reason = (
        pl.when(pl.col("kind").is_null())
        .then(pl.lit("not priced by the IOT (refund, other charge or uncharged event)"))
        .when(pl.col("iot_tolerance").is_null())
        .then(pl.format("no agreement with {} valid on the event date", pl.col("partner")))
        .when(pl.col("expected_charge").is_null())
        .then(pl.col("_reason"))
        .when(has_camel & pl.col("expected_camel").is_null())
        .then(pl.concat_str([pl.lit("CAMEL fee: "), pl.col("camel_reason")]))
    )
    out = out.with_columns(reason.alias("reason")).with_columns(
        pl.when(pl.col("reason").is_null())
        .then(pl.lit("checked"))
        .otherwise(pl.lit("unchecked"))
        .alias("status")
    )
    checked = pl.col("status") == "checked"
    out = out.with_columns(
        pl.when(checked).then(expected).alias("expected"),
        pl.when(checked).then(charged).alias("charged"),
    ).with_columns((pl.col("charged") - pl.col("expected")).alias("difference"))
    # |difference| / 10^scale > tolerance / 10^tolerance_scale, in integers
    lhs = pl.col("difference").abs().cast(pl.Int128) * pl.lit(10, pl.Int128).pow(
        pl.col("iot_tolerance_scale")
    )
    rhs = pl.col("iot_tolerance").cast(pl.Int128) * pl.lit(10, pl.Int128).pow(
        pl.col("charge_scale")
    )
    out = out.with_columns((checked & (lhs > rhs)).fill_null(False).alias("breach"))
    out = out.with_columns(
        (pl.col("charge").fill_null(0) + pl.col("camel_fee").fill_null(0)).alias("payable"),
        minor_units_expr(pl.col("settlement_currency")).alias("settlement_scale"),
    )
    out = _to_settlement(out, rates, "payable", "charge_scale", "currency")
    # what a breach charged above the IOT, in the settlement currency (for the thresholds)
    over = pl.when(pl.col("breach") & (pl.col("difference") > 0)).then(pl.col("difference"))
    out = _to_settlement(
        out.with_columns(over.alias("_over")),
        rates,
        "_over",
        "charge_scale",
        "currency",
        into="over_settlement",
        versions=None,
        hold_reason=None,
    ).drop("_over")
    tolerance_text = pl.format("{}e-{}", pl.col("iot_tolerance"), pl.col("iot_tolerance_scale"))
    rated = out.drop("row_id", "_reason", "camel_reason").sort(
        "file", "event_index", nulls_last=True, maintain_order=True
    )
    findings = rated.filter(pl.col("breach")).with_columns(tolerance_text.alias("tolerance"))
    findings = findings.select(FINDING_COLUMNS)
    return IotCheck(rated, findings)


def over_threshold(rated: pl.DataFrame, thresholds: Callable[[str], Thresholds]) -> pl.DataFrame:
    """Add ``over_threshold``: the breach charged above the IOT beyond a partner's threshold.

    ``rated`` is :attr:`IotCheck.rated`; ``thresholds(partner)`` gives the partner's
    (absolute, percent) thresholds (None: off). A breach is over when its overcharge
    ``over_settlement`` (settlement currency, minor units) is above the absolute threshold, or
    when ``difference / expected`` is above the percent (an expected charge of 0 and a
    positive difference: always). Integers only (the thresholds as exact fractions).
    """
    partners = sorted(p for p in rated["partner"].unique().to_list() if p is not None)
    rows: dict[str, list[object]] = {"partner": [], "_an": [], "_ad": [], "_pn": [], "_pd": []}
    for code in partners:
        absolute, percent = thresholds(code)
        an, ad = absolute.as_integer_ratio() if absolute is not None else (None, None)
        pn, pd = percent.as_integer_ratio() if percent is not None else (None, None)
        for key, value in zip(
            ("partner", "_an", "_ad", "_pn", "_pd"), (code, an, ad, pn, pd), strict=False
        ):
            rows[key].append(value)
    limits = pl.DataFrame(
        rows,
        schema={"partner": pl.String, **dict.fromkeys(("_an", "_ad", "_pn", "_pd"), pl.Int128)},
    )
    wide = pl.Int128
    ten = pl.lit(10, wide)
    over = pl.col("over_settlement").cast(wide)
    above_abs = over * pl.col("_ad") > pl.col("_an") * ten.pow(pl.col("settlement_scale"))
    diff, expected = pl.col("difference").cast(wide), pl.col("expected").cast(wide)
    above_pct = diff * 100 * pl.col("_pd") > pl.col("_pn") * expected
    is_over = (
        pl.col("breach")
        & (pl.col("difference") > 0)
        & (above_abs.fill_null(False) | above_pct.fill_null(False))
    )
    return (
        rated.join(limits, on="partner", how="left", maintain_order="left")
        .with_columns(is_over.fill_null(False).alias("over_threshold"))
        .drop("_an", "_ad", "_pn", "_pd")
    )


def settlement_totals(
    rated: pl.DataFrame, fx: pl.DataFrame
) -> list[tuple[str, str, int, int, int]]:
    """What we owe per partner and settlement currency, converted once per total.

    The events' ``payable`` amounts (as invoiced, in the file's currency and scale) are summed
    per partner, currency, scale and pair of fx rows used (``fx_versions``); each sum is
    converted to the settlement currency and rounded once; a partner's total is the sum of
    those. Events without a ``settlement_amount`` (no rate) are left out, as before.

    Args:
        rated: :func:`iot_check`'s ``rated`` rows.
        fx: the ``fx`` reference table (``version``, ``rate``, ``rate_scale``).

    Returns:
        ``(partner, settlement currency, settlement scale, amount converted once, sum of the
        per-event amounts)`` by partner; the difference of the last two is the per-event
        rounding that a sum of rounded amounts would have carried.
    """
    return convert_groups(settlement_groups(rated), fx)


_GROUP_KEYS: Final = [
    "partner",
    "currency",
    "charge_scale",
    "settlement_currency",
    "settlement_scale",
    "fx_versions",
]


def settlement_groups(rated: pl.DataFrame, *more: pl.DataFrame) -> pl.DataFrame:
    """The sums :func:`settlement_totals` converts: per partner, currency, scale, fx rows.

    ``rated``: :func:`iot_check`'s ``rated`` rows; or, with ``more``, frames of this
    function's own output (the sums of parts of some rows, summed again).
    """
    if more:
        return (
            pl.concat([rated, *more])
            .group_by(_GROUP_KEYS)
            .agg(pl.col("payable").sum(), pl.col("each").sum())
            .sort(_GROUP_KEYS)
        )
    return (
        rated.filter(pl.col("settlement_amount").is_not_null())
        .group_by(_GROUP_KEYS)
        .agg(
            pl.col("payable").cast(pl.Int128).sum().alias("payable"),
            pl.col("settlement_amount").cast(pl.Int128).sum().alias("each"),
        )
        .sort(_GROUP_KEYS)
    )


def convert_groups(groups: pl.DataFrame, fx: pl.DataFrame) -> list[tuple[str, str, int, int, int]]:
    """:func:`settlement_totals` of the sums ``groups`` (:func:`settlement_groups`)."""
    by_version = {
        str(v): (int(r), int(s))
        for v, r, s in fx.select("version", "rate", "rate_scale").iter_rows()
    }
    by_version["-"] = (1, 0)  # SDR
    totals: dict[tuple[str, str, int], list[int]] = {}
    for partner, _cur, scale, sc, ss, versions, payable, each in groups.iter_rows():
        v_src, v_dst = str(versions).split("/")
        r_src, s_src = by_version[v_src]
        r_dst, s_dst = by_version[v_dst]
        once = convert(int(payable), int(scale), r_src, s_src, r_dst, s_dst, int(ss))
        t = totals.setdefault((str(partner), str(sc), int(ss)), [0, 0])
        t[0] += once
        t[1] += int(each)
    return [(p, c, s, t[0], t[1]) for (p, c, s), t in sorted(totals.items())]
