"""Held records: never silently unrated or zero; billed by policy or recycled later.

A visitor's CDR whose partner is known but whose reference data cannot price it (no IOT row,
no time band, no agreement, an IOT row in another currency) is **held**: ``status = "held"``
in ``lake/unrated_visitors``, listed in the store (:class:`clearing.store.held.HeldRecords`),
not billed and not zero. A partner's per-service ``default_rate`` in ``clearing.toml`` bills it
instead, at that price, with a warning (:func:`apply_default_rate`).

A partner event whose payable cannot be converted to the settlement currency (no FX rate, an
unknown currency) is held the same way (``hold_reason`` in ``lake/rated_partner``; the store's
``kind = 'payable'``): never summed as 0.

A later night **recycles** them (:func:`recycle_visitors`, :func:`recycle_payables`): the held
records of earlier dates that price now are *released* on that night, once; their rated rows
join the night's rated rows with ``origin = "recycled"`` and the date of their first rating in
``origin_date``. A date that has recycled releases the same records on a replay, and a record
released on one date is never picked by another. A record held on its first rating stays held
in its own date's rows on a replay of that date (it is billed where it was released).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import polars as pl

from clearing import lake
from clearing.money import round_div_expr
from clearing.rating.check import _to_settlement
from clearing.rating.inbound import rate_visitors
from clearing.store.held import HeldRecord

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal
    from pathlib import Path

    from clearing.config import Settings
    from clearing.rating._book import Rates
    from clearing.store.held import HeldRecords

__all__ = [
    "CDR",
    "HELD",
    "PAYABLE",
    "HeldGroup",
    "PayableRecycle",
    "Recycle",
    "apply_default_rate",
    "group_counts",
    "held_groups",
    "hold_payables",
    "hold_visitors",
    "merge_groups",
    "recycle_payables",
    "recycle_visitors",
]

HELD: Final = "held"
CDR: Final = "cdr"
PAYABLE: Final = "payable"

_RATED: Final = "rated"
_FIX_IOT: Final = "add the IOT row to `rates/sources/iot.csv` and run `clearing rates import`"
_FIX_FX: Final = "add the rate to `rates/sources/fx.csv` and run `clearing rates import`"


@dataclass(frozen=True, slots=True)
class HeldGroup:
    """Records of one partner and service held (or billed at a default rate) on one night."""

    partner: str
    service: str
    count: int
    reason: str

    def message(self, what: str) -> str:
        """The anomaly line: partner, service, count, why and what to do."""
        fix = _FIX_FX if what == PAYABLE else _FIX_IOT
        if what == PAYABLE:
            head = f"payable of {self.count} event(s) of {self.partner} {self.service} held"
            tail = "the next night converts them"
        else:
            head = f"{self.count} record(s) of {self.partner} {self.service} held, not billed"
            tail = (
                "the next night rates them and sends them once in its TAP-out "
                "(or run `clearing rate recycle`)"
            )
        return f"{head}: {self.reason}; {fix}: {tail}"


def _service() -> pl.Expr:
    return pl.coalesce(pl.col("service"), pl.col("record_type"), pl.lit("unknown"))


def holdable() -> pl.Expr:
    """Rows of :func:`rate_visitors` that are held rather than unrated (their partner is known)."""
    return (pl.col("status") == "unrated") & pl.col("partner").is_not_null()


def apply_default_rate(rows: pl.DataFrame, settings: Settings | None) -> tuple[pl.DataFrame, int]:
    """Bill the holdable rows of partners with a ``default_rate`` for their service.

    ``charge = price × usage / unit`` rounded once (half up) to the agreement's scale, in its
    TAP currency; no tax; ``iot_key`` names the policy, ``iot_version`` is ``clearing.toml``
    and ``reason`` keeps why the IOT could not price the record. Rows without an agreement
    (no currency) stay as they are.

    Returns:
        The rows, and how many were billed at a default rate.
    """
    if settings is None or rows.is_empty():
        return rows, 0
    policy = [
        (code, key, rate)
        for code, partner in settings.partners.items()
        for key, rate in partner.default_rate.items()
    ]
    if not policy:
        return rows, 0
    table = pl.DataFrame(
        {
            "_p": [p for p, _k, _r in policy],
            "_key": [k for _p, k, _r in policy],
            "_price": [_price(r.price)[0] for _p, _k, r in policy],
            "_price_scale": [_price(r.price)[1] for _p, _k, r in policy],
            "_unit": [r.unit for _p, _k, r in policy],
        },
        schema={
            "_p": pl.String,
            "_key": pl.String,
            "_price": pl.Int64,
            "_price_scale": pl.Int64,
            "_unit": pl.Int64,
        },
    )
    by_service = table.rename({c: f"{c}_s" for c in ("_price", "_price_scale", "_unit")})
    by_kind = table.rename({c: f"{c}_k" for c in ("_price", "_price_scale", "_unit")})
    joined = (
        rows.with_row_index("_row")
        .join(
            by_service,
            left_on=["partner", "service"],
            right_on=["_p", "_key"],
            how="left",
            maintain_order="left",
        )
        .join(
            by_kind,
            left_on=["partner", "record_type"],
            right_on=["_p", "_key"],
            how="left",
            maintain_order="left",
        )
    )
    price = pl.coalesce("_price_s", "_price_k")
    price_scale = pl.coalesce("_price_scale_s", "_price_scale_k")
    unit = pl.coalesce("_unit_s", "_unit_k")
    use = holdable() & price.is_not_null() & pl.col("currency").is_not_null()
    joined = joined.with_columns(use.fill_null(False).alias("_use"))
    n = int(joined["_use"].sum())
    if not n:
        return rows, 0
    scale = pl.col("charge_scale")
    up = (scale - price_scale).clip(lower_bound=0)
    down = (price_scale - scale).clip(lower_bound=0)
    usage = pl.col("chargeable_units").fill_null(0)
    charge = round_div_expr(
        price.cast(pl.Int128) * usage * pl.lit(10, pl.Int128).pow(up),
        unit.cast(pl.Int128) * pl.lit(10, pl.Int128).pow(down),
        "half_up",
    ).cast(pl.Int64)
    policy_key = pl.format(
        "default_rate {} {}", pl.col("partner"), pl.coalesce("service", "record_type")
    )
    billed = {
        "service": _service(),
        "iot_key": policy_key,
        "iot_version": pl.lit("clearing.toml"),
        "charged_units": usage,
        "price": price,
        "price_scale": price_scale,
        "unit": unit,
        "rounding": pl.lit("half_up"),
        "tax_rate": pl.lit(0, pl.Int64),
        "charge": charge,
        "tax": pl.lit(0, pl.Int64),
        "status": pl.lit(_RATED),
        "reason": pl.format("billed at the default rate of clearing.toml: {}", "reason"),
    }
    out = joined.with_columns(
        pl.when(pl.col("_use")).then(expr).otherwise(pl.col(name)).alias(name)
        for name, expr in billed.items()
    )
    return out.select(rows.columns), n


def _price(value: Decimal) -> tuple[int, int]:
    """``value`` as an integer and a scale (``Decimal("0.25")`` → ``(25, 2)``)."""
    exponent = int(value.normalize().as_tuple().exponent)
    scale = max(-exponent, 0)
    return int(value.scaleb(scale)), scale


def held_groups(rows: pl.DataFrame, reason: str = "reason") -> list[HeldGroup]:
    """Per partner and service: how many rows, and the first reason (sorted)."""
    if rows.is_empty():
        return []
    return merge_groups([group_counts(rows, reason)])


def group_counts(rows: pl.DataFrame, reason: str = "reason") -> pl.DataFrame:
    """:func:`held_groups` of ``rows`` as a frame (``partner``, ``_service``, ``n``, ``why``).

    The frames of parts of some rows give the groups of them all (:func:`merge_groups`).
    """
    return (
        rows.with_columns(_service_of(rows).alias("_service"))
        .group_by("partner", "_service")
        .agg(pl.len().alias("n"), pl.col(reason).sort().first().alias("why"))
    )


def merge_groups(counts: list[pl.DataFrame]) -> list[HeldGroup]:
    """The :class:`HeldGroup` of rows whose parts' :func:`group_counts` are ``counts``."""
    if not counts:
        return []
    grouped = (
        pl.concat(counts)
        .group_by("partner", "_service")
        .agg(pl.col("n").sum(), pl.col("why").sort().first())
        .sort("partner", "_service")
    )
    return [HeldGroup(p, s, int(n), w or "") for p, s, n, w in grouped.rows()]


def _service_of(rows: pl.DataFrame) -> pl.Expr:
    for kind in ("record_type", "kind", "event_kind"):
        if kind in rows.columns:
            return pl.coalesce(pl.col("service"), pl.col(kind), pl.lit("unknown"))
    return pl.coalesce(pl.col("service"), pl.lit("unknown"))


def hold_visitors(
    rows: pl.DataFrame,
    day: date,
    held: HeldRecords | None,
    before: list[HeldRecord] | None = None,
) -> pl.DataFrame:
    """Mark the day's held rows (``status = "held"``) and list them in the store.

    Rows held on an earlier run of ``day`` stay held whatever they rate to now: they are (or
    will be) billed on the night that releases them. ``before``: those records (None: the
    store's, as this run starts; a day rated in chunks reads them once, before its first).
    """
    if before is None:
        before = held.of_origin(CDR, day) if held is not None else []
    hold = holdable()
    if before:
        keys = pl.DataFrame(
            {"file": [r.file for r in before], "line": [r.position for r in before]},
            schema={"file": pl.String, "line": pl.Int64},
        ).with_columns(pl.lit(True).alias("_was"))
        why = pl.DataFrame(
            {
                "file": [r.file for r in before],
                "line": [r.position for r in before],
                "_why": [r.reason for r in before],
            },
            schema={"file": pl.String, "line": pl.Int64, "_why": pl.String},
        )
        rows = (
            rows.join(keys, on=["file", "line"], how="left", maintain_order="left")
            .join(why, on=["file", "line"], how="left", maintain_order="left")
            .with_columns(
                pl.when(pl.col("_was").fill_null(False) & (pl.col("status") == _RATED))
                .then(pl.format("held on its first rating: {}", "_why"))
                .otherwise(pl.col("reason"))
                .alias("reason")
            )
        )
        hold = hold | pl.col("_was").fill_null(False)
    rows = rows.with_columns(
        pl.when(hold).then(pl.lit(HELD)).otherwise(pl.col("status")).alias("status")
    )
    rows = rows.drop([c for c in ("_was", "_why") if c in rows.columns])
    if held is not None:
        new = rows.filter(pl.col("status") == HELD)
        held.hold(
            HeldRecord(CDR, day, f, int(line), rid, p, s, why or "not rated")
            for f, line, rid, p, s, why in new.select(
                "file", "line", "record_id", "partner", _service_of(new), "reason"
            ).rows()
        )
    return rows


@dataclass
class Recycle:
    """What a night's recycling of held visitor records did.

    Attributes:
        rated: the released records' rated rows (``origin = "recycled"``).
        still_held: records the night may release that still do not price.
        missing: records released on this date before that do not price any more.
    """

    rated: pl.DataFrame
    released: list[HeldRecord] = field(default_factory=list)
    still_held: int = 0
    missing: int = 0


def recycle_visitors(
    root: Path,
    day: date,
    held: HeldRecords,
    rates: Rates,
    settings: Settings | None,
    columns: list[str],
) -> Recycle:
    """Rate the held records ``day`` may release; release those that price now.

    Args:
        root: the lake.
        day: the processing date (the night that sends them).
        held: the store's held records.
        rates: the reference data of tonight.
        settings: ``clearing.toml`` (its ``default_rate`` policies), or None.
        columns: the mediation record columns (the rated rows' columns come after them).

    Returns:
        The released records' rated rows (empty frame when none) and the counts.
    """
    fixed = held.recycled(CDR, day)
    candidates = held.candidates(CDR, day)
    if not candidates:
        if not fixed:
            held.release(CDR, day, [])
        return Recycle(pl.DataFrame())
    source = _held_rows(root, lake.UNRATED_VISITORS, candidates, "line")
    ok = pl.DataFrame()
    released_keys: set[tuple[object, ...]] = set()
    if source.height:
        rated = rate_visitors(source.select(columns), rates)
        rated, _n = apply_default_rate(rated, settings)
        rated = rated.with_columns(
            pl.lit("recycled").alias("origin"), source["_origin"].alias("origin_date")
        )
        ok = rated.filter(pl.col("status") == _RATED)
        released_keys = set(ok.select("origin_date", "file", "line").rows())
    released = [r for r in candidates if (r.origin_date, r.file, r.position) in released_keys]
    held.release(CDR, day, released)
    left = len(candidates) - len(released)
    return Recycle(
        ok,
        released,
        still_held=0 if fixed else left,
        missing=left if fixed else 0,
    )


def hold_payables(
    rated: pl.DataFrame,
    day: date,
    held: HeldRecords | None,
    before: list[HeldRecord] | None = None,
) -> pl.DataFrame:
    """Hold the payables that cannot be converted; keep held those held on an earlier run.

    ``rated`` is :func:`clearing.rating.check.iot_check`'s ``rated`` frame; ``before``: the
    payables held on an earlier run (None: the store's, as this run starts).
    """
    if before is None:
        before = held.of_origin(PAYABLE, day) if held is not None else []
    if before:
        was = pl.DataFrame(
            {
                "file": [r.file for r in before],
                "event_index": [r.position for r in before],
                "_why": [r.reason for r in before],
            },
            schema={"file": pl.String, "event_index": pl.Int64, "_why": pl.String},
        )
        rated = (
            rated.join(was, on=["file", "event_index"], how="left", maintain_order="left")
            .with_columns(
                pl.when(pl.col("_why").is_not_null() & pl.col("hold_reason").is_null())
                .then(pl.format("held on its first rating: {}", "_why"))
                .otherwise(pl.col("hold_reason"))
                .alias("hold_reason")
            )
            .with_columns(
                pl.when(pl.col("hold_reason").is_null())
                .then(pl.col("settlement_amount"))
                .alias("settlement_amount")
            )
            .drop("_why")
        )
    if held is not None:
        new = rated.filter(pl.col("hold_reason").is_not_null())
        held.hold(
            HeldRecord(PAYABLE, day, f or "", int(i), None, p, s, why)
            for f, i, p, s, why in new.select(
                "file", "event_index", "partner", _service_of(new), "hold_reason"
            ).rows()
        )
    return rated


@dataclass
class PayableRecycle:
    """What a night's recycling of held payables did.

    Attributes:
        payable: per (partner, settlement currency, scale): the released amounts.
        released: the records released.
        missing: records released on this date before that do not convert any more.
    """

    payable: list[tuple[str, str, int, int]] = field(default_factory=list)
    released: list[HeldRecord] = field(default_factory=list)
    missing: int = 0


def recycle_payables(root: Path, day: date, held: HeldRecords, rates: Rates) -> PayableRecycle:
    """Convert the held payables ``day`` may release; release those that convert now."""
    fixed = held.recycled(PAYABLE, day)
    candidates = held.candidates(PAYABLE, day)
    if not candidates:
        if not fixed:
            held.release(PAYABLE, day, [])
        return PayableRecycle()
    source = _held_rows(root, lake.RATED_PARTNER, candidates, "event_index")
    if not source.height:
        held.release(PAYABLE, day, [])
        return PayableRecycle(missing=len(candidates) if fixed else 0)
    again = _to_settlement(
        source.drop("settlement_amount", "fx_versions", "hold_reason"),
        rates,
        "payable",
        "charge_scale",
        "currency",
    )
    ok = again.filter(pl.col("hold_reason").is_null() & pl.col("settlement_amount").is_not_null())
    keys = set(ok.select("_origin", "file", "event_index").rows())
    released = [r for r in candidates if (r.origin_date, r.file, r.position) in keys]
    held.release(PAYABLE, day, released)
    sums = (
        ok.group_by("partner", "settlement_currency", "settlement_scale")
        .agg(pl.col("settlement_amount").sum())
        .sort("partner", "settlement_currency")
        .rows()
    )
    return PayableRecycle(
        [(p, c, int(s), int(a)) for p, c, s, a in sums],
        released,
        missing=len(candidates) - len(released) if fixed else 0,
    )


def _held_rows(
    root: Path, ds: lake.Dataset, records: list[HeldRecord], position: str
) -> pl.DataFrame:
    """The rows of ``records`` in ``ds`` (their origin dates' partitions), with ``_origin``."""
    keys = pl.DataFrame(
        {
            "_origin": [r.origin_date for r in records],
            "file": [r.file for r in records],
            position: [r.position for r in records],
        },
        schema={"_origin": pl.Date, "file": pl.String, position: pl.Int64},
    )
    frames = []
    for d in sorted({r.origin_date for r in records}):
        for f in lake.files(root, ds, [d]):
            part = pl.read_parquet(f, hive_partitioning=False)
            frames.append(part.with_columns(pl.lit(d, pl.Date).alias("_origin")))
    if not frames:
        return pl.DataFrame(schema=keys.schema)
    rows = pl.concat(frames, how="diagonal_relaxed")
    return rows.join(keys, on=["_origin", "file", position], how="semi", maintain_order="left")
