"""CIBER validation (ciber.md §7): the rules of ``specs/ciber/rules.csv`` → findings.

:func:`check_ciber` decodes a CIBER-in file and checks every rule once:

* **batch rules** (scope ``batch``, severity ``fatal``): the header/trailer checks of ciber.md
  §7.1. A batch with a fatal finding is *rejected*: it goes back whole with Original/Return
  Indicator 3 and the Batch Reject Reason Code of its first fatal finding (rule order), and its
  records are not checked one by one.
* **record rules** (scope ``record``, severity ``severe``): the Return Code / Return Reason
  Code / Invalid Field Identifier checks of §7.2. Validation stops at the first error per
  record (rules.csv order), so a record gets at most one severe finding and is returned once.

Record rules run as array operations over each record type's table (a file may hold a million
records); Python only loops over the failing rows to build their findings. Batches with
indicator 3 (a partner rejecting one of *our* batches) are not validated record by record.

Per-partner overrides (``[partners.<SID/BID>.rules]`` in ``clearing.toml``) are looked up by
the batch's sending SID/BID: ``"off"`` drops a rule, ``"warning"`` reports without returning;
``"fatal"``/``"severe"`` keep the rule's own action (a record rule cannot reject a batch, a
batch rule cannot return a single record).

Which findings become which CIBER return is :func:`clearing.returns.ciber.ciber_returns`.

C901: ``_batch_hits`` walks the batch rules of ``specs/ciber/rules.csv`` over each batch's header
and trailer, one check per rule, in the rule table's order.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs.ciber import (
    DETAIL_TYPES,
    Decoded,
    decode,
    layout,
    specs_dir,
)
from clearing.codecs.events import EVENT_SCHEMA
from clearing.errors import DecodeError
from clearing.validate.findings import Finding

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from numpy.typing import NDArray

    from clearing.config import Settings

__all__ = [
    "BATCH_COPY",
    "CLEARINGHOUSE_BIDS",
    "CODE_VALUES",
    "DUPLICATE_KEYS",
    "SEQUENCE_GAP",
    "SEQUENCE_REUSED",
    "CiberChecked",
    "CiberRule",
    "batch_sha256",
    "check_ciber",
    "ciber_rules",
    "rows_by_batch",
    "rule_severity",
]

Severity = Literal["fatal", "severe", "warning"]

#: Sending Clearinghouse BIDs accepted in an 02 header (ciber.md §2, S1).
CLEARINGHOUSE_BIDS = frozenset({"31102", "31103", "26238", "26240", "60059"})


def _span(low: int, high: int, *extra: int) -> frozenset[int]:
    return frozenset((*range(low, high + 1), *extra))


#: Code tables of rule ``ciber.record.code_value`` (ciber.md §2, §5): field → accepted values
#: (integers for N fields, strings for D/X fields as decoded, i.e. without trailing blanks).
#: Call Completion Indicator has its own rule (4/27); Currency Type is checked against the
#: batch header (4/06 field 021).
CODE_VALUES: dict[str, frozenset[int] | frozenset[str]] = {
    "msid_indicator": _span(1, 2),
    "esn_indicator": _span(0, 4),
    "call_direction": _span(1, 9),
    "call_termination_indicator": _span(1, 4),
    "time_zone_indicator": _span(0, 37, 99),
    "daylight_savings_indicator": _span(0, 2),
    "air_rate_period": _span(0, 13),
    "air_multi_rate_period": _span(0, 2),
    "other_charge_no_1_indicator": _span(0, 35),
    "fraud_sub_indicator": _span(0, 2),
    "toll_tariff_descriptor": _span(0, 19),
    "toll_rate_period": _span(0, 9),
    "toll_multi_rate_period": _span(0, 2),
    "toll_rate_class": _span(0, 4),
    "toll_rating_point_length": _span(0, 10),
    "toll_network_carrier_id": frozenset(
        {"00000", "10001", "10002", "10008", "90001", "99001", "99999"}
    ),
    **{f"charge_no_{i}_indicator": _span(0, 35) for i in range(1, 5)},
    **{f"charge_no_{i}_rate_period": _span(0, 13) for i in range(1, 5)},
    **{f"charge_no_{i}_multi_rate_period": _span(0, 2) for i in range(1, 5)},
    **{f"charge_no_{i}_tax_surcharge_indicator": _span(0, 7) for i in range(1, 5)},
    "features_used_after_handoff_indicator": _span(0, 1),
    "occ_interval_indicator": _span(0, 5),
    "record_use_indicator": frozenset("0123456789ABCDEFGHIJKLMN"),
    "translation_code_ii": frozenset({1, 11, 21, 31, 41, 51, 61}),
}
#: Special Features Used: blank, ``0`` (none) or up to five codes 1-9/A-U (ciber.md §5).
_SPECIAL_FEATURES = r"^(|0|[1-9A-U]{1,5})$"

#: The fields that identify a record for rule ``ciber.record.duplicate``: two records of the
#: same type with equal values in all of them are the same event sent twice.
DUPLICATE_KEYS: dict[str, tuple[str, ...]] = {
    "22": ("home_sid_bid", "msid", "serving_sid_bid", "call_date", "air_connect_time",
           "call_direction", "caller_id", "called_number", "air_chargeable_time",
           "total_charges_and_taxes"),
    "32": ("home_sid_bid", "msid", "serving_sid_bid", "call_date", "charge_no_1_connect_time",
           "call_direction", "caller_id", "called_number", "charge_no_1_indicator",
           "total_charges_and_taxes"),
    "42": ("receiving_sid_bid", "msid", "sending_sid_bid", "call_date",
           "charge_no_1_connect_time", "transaction_code_i", "charge_no_1_indicator",
           "total_charges_and_taxes"),
    "52": ("home_sid_bid", "msid", "serving_sid_bid", "occ_start_date", "connect_time",
           "occ_end_date", "occ_charge", "occ_description", "total_charges_and_taxes"),
}  # fmt: skip

# Batch sequence control per sending/receiving SID/BID pair (ciber.md §2): rules that need the
# history of the pair (:mod:`clearing.store.ciber_batches`), so not file-only rules of
# ``specs/ciber/rules.csv``; the validate stage (:mod:`clearing.validate.stage`) raises them.
#: An exact copy of a batch already accepted: ignored (a warning; not paid, not returned).
BATCH_COPY = "ciber.batch.copy"
#: A sequence number already used by an accepted batch with other content: the batch is
#: rejected with Batch Reject Reason Code 08 (batch sequence number invalid, §7.1).
SEQUENCE_REUSED = "ciber.batch.sequence_reused"
#: Sequence numbers skipped before this batch: a warning, and an anomaly of the run.
SEQUENCE_GAP = "ciber.batch.sequence_gap"

# Record-type constants of the rules (ciber.md §4).
_HOME = {
    "22": "home_sid_bid",
    "32": "home_sid_bid",
    "42": "receiving_sid_bid",
    "52": "home_sid_bid",
}
_SERVING = {
    "22": "serving_sid_bid",
    "32": "serving_sid_bid",
    "42": "sending_sid_bid",
    "52": "serving_sid_bid",
}
_EVENT_DATE = {"22": "call_date", "32": "call_date", "42": "call_date", "52": "occ_end_date"}
_FUTURE_DATES = {
    "22": ("call_date",),
    "32": ("call_date",),
    "42": ("call_date",),
    "52": ("record_create_date", "occ_start_date"),
}
# late_days multiples: initial issue (4/10) and returned records (5/13), S1's 30/60 and 60/90
_LATE_FACTOR = {"22": 1, "52": 1, "32": 2, "42": 2}
_RETURN_LATE_FACTOR = {"22": 2, "52": 2, "32": 3, "42": 3}
_CHARGES = {
    "22": ("air_charge", "other_charge_no_1", "toll_charge"),
    "32": ("charge_no_1", "charge_no_2", "charge_no_3", "charge_no_4", "other_charge_no_1"),
    "42": ("charge_no_1", "charge_no_2", "charge_no_3", "charge_no_4", "other_charge_no_1"),
    "52": ("occ_charge", "other_charge_no_1"),
}
_TAXES = ("total_state_province_taxes", "total_local_other_taxes")
# codec findings (clearing.codecs.ciber FINDINGS_SCHEMA) → rule, for detail records
_CODEC_RECORD_RULE = {
    (7, None): "ciber.record.format",
    (6, 21): "ciber.record.currency",
    (18, 46): "ciber.record.return_code_initial",
    (18, 44): "ciber.record.return_code_returned",
}
_EPOCH = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------- the rule table


@dataclass(frozen=True, slots=True)
class CiberRule:
    """One row of ``specs/ciber/rules.csv``.

    Attributes:
        rule: the rule id (``ciber.batch.…``, ``ciber.trailer.…``, ``ciber.record.…``).
        scope: ``"batch"`` (→ batch reject) or ``"record"`` (→ record return).
        return_code: the record Return Code (4, 5 or 6) of a record rule.
        reason_code: the CIBER Record Return Reason Code of a record rule.
        field_id: the Invalid Field Identifier, or None when it is the id of the field in error.
        batch_reject_code: the Batch Reject Reason Code of a batch rule (None: no code, 0).
        severity: ``"fatal"`` (batch) or ``"severe"`` (record), before partner overrides.
        description: what the rule checks.
        order: position in the table: the precedence when several rules fail.
    """

    rule: str
    scope: Literal["batch", "record"]
    return_code: int | None
    reason_code: int | None
    field_id: int | None
    batch_reject_code: int | None
    severity: Severity
    description: str
    order: int

    @property
    def code(self) -> int:
        """The finding code: the batch reject reason (batch) or return reason (record)."""
        value = self.batch_reject_code if self.scope == "batch" else self.reason_code
        return value or 0


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


@cache
def ciber_rules() -> dict[str, CiberRule]:
    """The rules of ``specs/ciber/rules.csv`` by id, in table order."""
    path = specs_dir() / "rules.csv"
    out: dict[str, CiberRule] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            rid, scope, severity = row["rule"], row["scope"], row["severity"]
            expected = {"batch": "fatal", "record": "severe"}.get(scope)
            if expected is None or severity != expected:
                msg = f"{path.name}: rule `{rid}`: scope {scope!r} needs severity {expected!r}"
                raise ValueError(msg)
            rule = CiberRule(
                rule=rid,
                scope=scope,  # type: ignore[arg-type]
                return_code=_int(row["return_code"]),
                reason_code=_int(row["reason_code"]),
                field_id=_int(row["field_id"]),
                batch_reject_code=_int(row["batch_reject_code"]),
                severity=severity,  # type: ignore[arg-type]
                description=row["description"],
                order=i,
            )
            if scope == "record" and (rule.return_code is None or rule.reason_code is None):
                msg = f"{path.name}: record rule `{rid}` needs a return code and a reason code"
                raise ValueError(msg)
            if rid in out:
                msg = f"{path.name}: rule `{rid}` appears twice"
                raise ValueError(msg)
            out[rid] = rule
    missing = {r.rule for r in out.values() if r.scope == "record"} - set(_RECORD_CHECKS)
    if missing:
        msg = f"{path.name}: no check implements {', '.join(sorted(missing))}"
        raise ValueError(msg)
    return out


def _batch_rule_for(code: int) -> str:
    """The first batch rule with this reject reason (the codec's header/trailer findings)."""
    for r in ciber_rules().values():
        if r.scope == "batch" and r.batch_reject_code == code:
            return r.rule
    return f"ciber.batch.reason_{code:02d}"  # pragma: no cover - rules.csv covers the codec


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class CiberChecked:
    """What :func:`check_ciber` found in one CIBER file.

    Attributes:
        file: the file name.
        data: the file's bytes (kept to build returns).
        today: the processing date the rules were checked against.
        decoded: the decoded file, or None when it could not be read.
        events: the normalised event table (``EVENT_SCHEMA``), empty when unreadable.
        findings: every finding, in file order (byte offset), then rule order.
        rejected: per batch (``decoded.batches`` order): True when the batch is rejected.
        reject_reasons: per batch: the Batch Reject Reason Code it is rejected with, or None.
    """

    file: str
    data: bytes
    today: dt.date
    decoded: Decoded | None
    events: pa.Table
    findings: list[Finding]
    rejected: tuple[bool, ...]
    reject_reasons: tuple[int | None, ...]

    @property
    def unreadable(self) -> bool:
        """True when the file could not be decoded at all."""
        return self.decoded is None


# --------------------------------------------------------------------------- context


@dataclass(slots=True)
class _Hit:
    """Rows of one record table failing one rule on one field."""

    rows: NDArray[np.intp]
    context: str
    messages: list[str]


@dataclass(slots=True)
class _Ctx:
    settings: Settings
    today: dt.date
    today_days: int
    decoded: Decoded
    indicator: NDArray[Any]  # per batch: "1", "2", "3"... (object)
    contents: NDArray[np.int64]  # per batch, -1 when unreadable
    late_days: NDArray[np.int64]  # per batch: the sending partner's late_days
    partners: frozenset[str]
    codec_records: pa.Table  # the codec's record findings


def _np(col: pa.ChunkedArray | pa.Array, fill: Any) -> NDArray[Any]:
    return np.asarray(col.fill_null(fill).to_numpy(zero_copy_only=False))


def _days(col: pa.ChunkedArray) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Days since 1970-01-01 of a date32 column, and where it is null."""
    valid = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=np.bool_)
    days = _np(pc.cast(col, pa.int32()), 0).astype(np.int64)
    return days, ~valid


def _date_text(days: int) -> str:
    return (_EPOCH + dt.timedelta(days=int(days))).isoformat()


def _hit(rows: NDArray[Any], context: str, message: Callable[[int], str]) -> _Hit:
    idx = np.asarray(rows, dtype=np.intp)
    return _Hit(idx, context, [message(int(i)) for i in idx])


# --------------------------------------------------------------------------- record checks


def _codec_hits(ctx: _Ctx, rt: str, t: pa.Table, rule: str) -> list[tuple[int, _Hit]]:
    """The codec's findings of ``rule`` on records of type ``rt``, keyed by field position."""
    f = ctx.codec_records
    if f.num_rows == 0:
        return []
    f = f.filter(pc.equal(f.column("record_type"), rt))
    keep = []
    reasons = f.column("return_reason_code").to_pylist()
    fids = f.column("field_id").to_pylist()
    for i, (reason, fid) in enumerate(zip(reasons, fids, strict=True)):
        key = (reason, None) if reason == 7 else (reason, fid)
        if _CODEC_RECORD_RULE.get(key) == rule:
            keep.append(i)
    if not keep:
        return []
    f = f.take(pa.array(keep, type=pa.int64()))
    lines = t.column("line").to_numpy()
    found = f.column("line").to_numpy()
    rows = np.minimum(np.searchsorted(lines, found), max(lines.size - 1, 0))
    here = (lines[rows] == found) if lines.size else np.zeros(found.size, dtype=np.bool_)
    fields = f.column("field").to_pylist()
    messages = f.column("message").to_pylist()
    lay = layout(rt)
    by_field: dict[str, tuple[list[int], list[str]]] = {}
    for r, ok, name, m in zip(rows.tolist(), here.tolist(), fields, messages, strict=True):
        if not ok:  # a record of a batch that is not checked (rejected, indicator 3)
            continue
        rs, ms = by_field.setdefault(name, ([], []))
        rs.append(r)
        ms.append(m)
    return [
        (lay.field(name).start, _Hit(np.asarray(rs, dtype=np.intp), name, ms))
        for name, (rs, ms) in by_field.items()
    ]


def _by_position(hits: Iterable[tuple[int, _Hit]]) -> list[_Hit]:
    return [h for _, h in sorted(hits, key=lambda p: p[0])]


def _check_contents_42(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    if rt != "42":
        return []
    c = ctx.contents[b]
    rows = np.flatnonzero(c != 2)
    return [_hit(rows, "record_type", lambda i: f"type-42 record in a Batch Contents {c[i]} batch")]


def _check_contents_other(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    if rt == "42":
        return []
    c = ctx.contents[b]
    rows = np.flatnonzero((c != 0) & (c != 1))
    return [
        _hit(rows, "record_type", lambda i: f"type-{rt} record in a Batch Contents {c[i]} batch")
    ]


def _check_codec(rule: str) -> Callable[[_Ctx, str, pa.Table, NDArray[np.int64]], list[_Hit]]:
    def check(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
        return _by_position(_codec_hits(ctx, rt, t, rule))

    return check


def _check_field_identifier(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    v = _np(t.column("invalid_field_identifier"), 0)
    rows = np.flatnonzero((v > 215) & (v != 999))
    return [
        _hit(
            rows,
            "invalid_field_identifier",
            lambda i: f"`invalid_field_identifier` {v[i]:03d} is not 000-215 or 999",
        )
    ]


def _check_format(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    hits = _codec_hits(ctx, rt, t, "ciber.record.format")
    lay = layout(rt)
    # mandatory dates that decode to "no date" (000000) without a codec finding
    mandatory: list[tuple[str, NDArray[np.bool_]]] = []
    if rt == "52":
        charged = _np(t.column("occ_charge"), 0) != 0
        mandatory += [("occ_start_date", charged), ("occ_end_date", charged)]
    else:
        mandatory.append(("call_date", np.ones(t.num_rows, dtype=np.bool_)))
    codec_rows = {h.context: set(h.rows.tolist()) for _, h in hits}
    for name, need in mandatory:
        _, null = _days(t.column(name))
        rows = np.flatnonzero(null & need)
        bad = codec_rows.get(name, set())
        rows = np.asarray([r for r in rows.tolist() if r not in bad], dtype=np.intp)
        if rows.size:
            hit = _Hit(rows, name, [f"`{name}` is zero (000000)"] * rows.size)
            hits.append((lay.field(name).start, hit))
    return _by_position(hits)


def _check_code_value(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    lay = layout(rt)
    hits: list[tuple[int, _Hit]] = []
    for name in (*CODE_VALUES, "special_features_used"):
        if name not in lay.by_name:
            continue
        col = t.column(name)
        if name == "special_features_used":
            ok = pc.match_substring_regex(col, _SPECIAL_FEATURES)
            allowed_text = "blank, 0 or up to 5 codes 1-9/A-U"
        else:
            allowed = CODE_VALUES[name]
            value_set = pa.array(sorted(allowed)).cast(col.type)
            ok = pc.is_in(col, value_set=value_set)
            allowed_text = _describe(allowed)
        bad = ~np.asarray(ok.fill_null(True).to_numpy(zero_copy_only=False), dtype=np.bool_)
        rows = np.flatnonzero(bad)
        if rows.size == 0:
            continue
        values = col.take(pa.array(rows)).to_pylist()
        messages = [f"`{name}` {v!r} is not one of {allowed_text}" for v in values]
        hits.append((lay.field(name).start, _Hit(rows.astype(np.intp), name, messages)))
    return _by_position(hits)


def _describe(allowed: frozenset[int] | frozenset[str]) -> str:
    ints = sorted(v for v in allowed if isinstance(v, int))
    if not ints:
        return ", ".join(sorted(str(v) for v in allowed))
    runs: list[str] = []
    start = prev = ints[0]
    for v in [*ints[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(runs)


def _check_call_completion(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    if "call_completion_indicator" not in t.column_names:
        return []
    v = _np(t.column("call_completion_indicator"), 1)
    rows = np.flatnonzero((v < 1) | (v > 3))
    return [
        _hit(
            rows,
            "call_completion_indicator",
            lambda i: f"`call_completion_indicator` {v[i]} is not 1-3",
        )
    ]


def _check_total(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    parts = (*_CHARGES[rt], *_TAXES)
    valid = np.ones(t.num_rows, dtype=np.bool_)
    total = np.zeros(t.num_rows, dtype=np.int64)
    for name in parts:
        col = t.column(name)
        valid &= np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=np.bool_)
        total += _np(col, 0).astype(np.int64)
    given_col = t.column("total_charges_and_taxes")
    valid &= np.asarray(pc.is_valid(given_col).to_numpy(zero_copy_only=False), dtype=np.bool_)
    given = _np(given_col, 0).astype(np.int64)
    rows = np.flatnonzero(valid & (given != total))
    return [
        _hit(
            rows,
            "total_charges_and_taxes",
            lambda i: (
                f"`total_charges_and_taxes` {given[i]} is not the sum of "
                f"{' + '.join(parts)} = {total[i]} (cents)"
            ),
        )
    ]


def _check_charge_indicator(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    lay = layout(rt)
    pairs = [("other_charge_no_1_indicator", "other_charge_no_1")]
    if rt in ("32", "42"):
        pairs += [(f"charge_no_{i}_indicator", f"charge_no_{i}") for i in range(1, 5)]
    hits = []
    for ind_name, charge_name in pairs:
        ind = _np(t.column(ind_name), -1)
        charge = _np(t.column(charge_name), 0)
        rows = np.flatnonzero((ind == 0) & (charge != 0))
        if rows.size:
            messages = [
                f"`{charge_name}` is {charge[i]} cents but `{ind_name}` is 00 (no charge)"
                for i in rows.tolist()
            ]
            hit = _Hit(rows.astype(np.intp), charge_name, messages)
            hits.append((lay.field(charge_name).start, hit))
    return _by_position(hits)


def _check_special_features(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    if rt != "22":
        return []
    sf = t.column("special_features_used").fill_null("")
    hits = []
    for letters, charge_name in (("F", "air_charge"), ("JK", "toll_charge")):
        has = np.zeros(t.num_rows, dtype=np.bool_)
        for letter in letters:
            found = pc.match_substring(sf, letter).to_numpy(zero_copy_only=False)
            has |= np.asarray(found, dtype=np.bool_)
        charge = _np(t.column(charge_name), 0)
        rows = np.flatnonzero(has & (charge != 0))
        messages = [
            f"`{charge_name}` is {charge[i]} cents but `special_features_used` has "
            f"{' or '.join(letters)} (no charge)"
            for i in rows.tolist()
        ]
        hits.append(_Hit(rows.astype(np.intp), charge_name, messages))
    return hits


def _check_occ_date_order(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    if rt != "52":
        return []
    start, start_null = _days(t.column("occ_start_date"))
    end, end_null = _days(t.column("occ_end_date"))
    rows = np.flatnonzero(~start_null & ~end_null & (start > end))
    return [
        _hit(
            rows,
            "occ_start_date",
            lambda i: (
                f"`occ_start_date` {_date_text(start[i])} is after `occ_end_date` "
                f"{_date_text(end[i])}"
            ),
        )
    ]


def _carrier_hits(
    ctx: _Ctx,
    t: pa.Table,
    b: NDArray[np.int64],
    name: str,
    initial_must_be_us: bool,
) -> list[_Hit]:
    col = t.column(name)
    home = ctx.settings.home.sid_bid
    ind = ctx.indicator[b]
    n = t.num_rows
    if home is None:
        is_us = np.zeros(n, dtype=np.bool_)
    else:
        is_us = _np(pc.equal(col, home), False).astype(np.bool_)
    partners = pa.array(sorted(ctx.partners), type=pa.string())
    is_partner = np.asarray(pc.is_in(col, value_set=partners).to_numpy(zero_copy_only=False))
    known = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=np.bool_)
    initial, returned = ind == "1", ind == "2"
    if initial_must_be_us:
        bad = (initial & ~is_us & (home is not None)) | (returned & ~is_partner)
    else:
        bad = (initial & ~is_partner) | (returned & ~is_us & (home is not None))
    rows = np.flatnonzero(known & bad)
    values = col.take(pa.array(rows, type=pa.int64())).to_pylist()
    messages = []
    for i, value in zip(rows.tolist(), values, strict=True):
        if initial_must_be_us == (ind[i] == "1"):
            messages.append(f"`{name}` {value} is not our SID/BID {home}")
        else:
            messages.append(f"`{name}` {value} is not a CIBER partner we have an agreement with")
    return [_Hit(rows.astype(np.intp), name, messages)]


def _check_home_carrier(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    return _carrier_hits(ctx, t, b, _HOME[rt], initial_must_be_us=True)


def _check_serving_carrier(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    return _carrier_hits(ctx, t, b, _SERVING[rt], initial_must_be_us=False)


def _check_future_date(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    hits = []
    for name in _FUTURE_DATES[rt]:
        days, null = _days(t.column(name))
        rows = np.flatnonzero(~null & (days > ctx.today_days))
        messages = [
            f"`{name}` {_date_text(days[i])} is after the processing date {ctx.today.isoformat()}"
            for i in rows.tolist()
        ]
        hits.append(_Hit(rows.astype(np.intp), name, messages))
    return hits


def _age_hits(
    ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64], indicator: str, factor: int
) -> list[_Hit]:
    name = _EVENT_DATE[rt]
    days, null = _days(t.column(name))
    limit = ctx.late_days[b] * factor
    age = ctx.today_days - days
    rows = np.flatnonzero(~null & (ctx.indicator[b] == indicator) & (age > limit))
    what = "initial-issue" if indicator == "1" else "returned"
    return [
        _hit(
            rows,
            name,
            lambda i: (
                f"{what} record: `{name}` {_date_text(days[i])} is {age[i]} days before "
                f"{ctx.today.isoformat()}, more than {limit[i]}"
            ),
        )
    ]


def _check_late(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    return _age_hits(ctx, rt, t, b, "1", _LATE_FACTOR[rt])


def _check_return_late(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    return _age_hits(ctx, rt, t, b, "2", _RETURN_LATE_FACTOR[rt])


def _check_duplicate(ctx: _Ctx, rt: str, t: pa.Table, b: NDArray[np.int64]) -> list[_Hit]:
    # the caller passes only the rows of batches that are checked (see _record_findings)
    keys = DUPLICATE_KEYS[rt]
    frame = pl.from_arrow(t.select(list(keys)))
    assert isinstance(frame, pl.DataFrame)
    first = (
        frame.with_row_index("_row")
        .select(pl.col("_row").first().over(list(keys)))
        .to_series()
        .to_numpy()
    )
    rows = np.flatnonzero(first != np.arange(t.num_rows))
    lines = t.column("line").to_numpy()
    return [
        _hit(
            rows,
            "record",
            lambda i: f"type-{rt} record repeats line {lines[first[i]]} (same {', '.join(keys)})",
        )
    ]


_RECORD_CHECKS: dict[str, Callable[[_Ctx, str, pa.Table, NDArray[np.int64]], list[_Hit]]] = {
    "ciber.record.contents_42": _check_contents_42,
    "ciber.record.contents_other": _check_contents_other,
    "ciber.record.return_code_initial": _check_codec("ciber.record.return_code_initial"),
    "ciber.record.return_code_returned": _check_codec("ciber.record.return_code_returned"),
    "ciber.record.field_identifier": _check_field_identifier,
    "ciber.record.format": _check_format,
    "ciber.record.code_value": _check_code_value,
    "ciber.record.call_completion": _check_call_completion,
    "ciber.record.currency": _check_codec("ciber.record.currency"),
    "ciber.record.total": _check_total,
    "ciber.record.charge_indicator": _check_charge_indicator,
    "ciber.record.special_features": _check_special_features,
    "ciber.record.occ_date_order": _check_occ_date_order,
    "ciber.record.home_carrier": _check_home_carrier,
    "ciber.record.serving_carrier": _check_serving_carrier,
    "ciber.record.future_date": _check_future_date,
    "ciber.record.late": _check_late,
    "ciber.record.return_late": _check_return_late,
    "ciber.record.duplicate": _check_duplicate,
}


# --------------------------------------------------------------------------- batch checks


@dataclass(slots=True)
class _BatchHit:
    batch: int
    rule: str
    context: str
    message: str
    byte_offset: int


def rows_by_batch(decoded: Decoded, types: Sequence[str]) -> dict[int, dict[str, Any]]:
    """The records of ``types`` (a header or a trailer) of every batch, by batch index."""
    out: dict[int, dict[str, Any]] = {}
    for rt in types:
        if rt in decoded.records:
            for row in decoded.records[rt].to_pylist():
                out[row["batch_index"]] = row
    return out


def _batch_hits(decoded: Decoded, settings: Settings, today: dt.date) -> list[_BatchHit]:
    hits: list[_BatchHit] = []
    for f in decoded.findings.filter(
        pc.equal(decoded.findings.column("severity"), "batch")
    ).to_pylist():
        code = f["batch_reject_reason_code"]
        hits.append(
            _BatchHit(
                f["batch_index"],
                _batch_rule_for(code),
                f["field"] or "batch",
                f["message"],
                f["byte_offset"],
            )
        )
    headers = rows_by_batch(decoded, ("01", "02"))
    trailers = rows_by_batch(decoded, ("98", "97"))
    home = settings.home.sid_bid
    # fields the codec found unreadable: their null is not a "zero" value
    bad_fields = {(h.batch, h.context) for h in hits}
    for batch in decoded.batches.to_pylist():
        i = batch["batch_index"]
        h, t = headers[i], trailers[i]

        def add(rule: str, context: str, message: str, rec: dict[str, Any], i: int = i) -> None:
            hits.append(_BatchHit(i, rule, context, message, rec["byte_offset"]))

        created = h["batch_creation_date"]
        if created is not None and created > today:
            add(
                "ciber.batch.future_date",
                "batch_creation_date",
                f"batch created {created.isoformat()}, after the processing date "
                f"{today.isoformat()}",
                h,
            )
        clearing = h["record_type"] == "02"
        sending = "original_serving_sid_bid" if clearing else "sending_sid_bid"
        receiving = "original_home_sid_bid" if clearing else "receiving_sid_bid"
        if h[sending] == "00000":
            add("ciber.batch.sending_sid_bid", sending, f"`{sending}` is 00000", h)
        bid = h.get("sending_clearinghouse_bid")
        if clearing and bid is not None and bid not in CLEARINGHOUSE_BIDS:
            add(
                "ciber.batch.sending_sid_bid",
                "sending_clearinghouse_bid",
                f"`sending_clearinghouse_bid` {bid} is not a known clearinghouse "
                f"({', '.join(sorted(CLEARINGHOUSE_BIDS))})",
                h,
            )
        if h[receiving] == "00000":
            add("ciber.batch.receiving_sid_bid", receiving, f"`{receiving}` is 00000", h)
        elif home is not None and h[receiving] is not None and h[receiving] != home:
            add(
                "ciber.batch.recipient",
                receiving,
                f"batch addressed to {h[receiving]}, not to our SID/BID {home}",
                h,
            )
        ind, reason = h["original_return_indicator"], h["batch_reject_reason_code"]
        if reason is not None and (
            (ind in ("1", "2") and reason != 0) or (ind == "3" and not 1 <= reason <= 42)
        ):
            add(
                "ciber.batch.reject_reason",
                "batch_reject_reason_code",
                f"`batch_reject_reason_code` {reason:02d} with original/return indicator {ind}",
                h,
            )
        period = h["settlement_period"]
        if period is not None and period.day != 15:
            add(
                "ciber.batch.settlement_period",
                "settlement_period",
                f"settlement period {period.isoformat()} is not a 15th",
                h,
            )
        # the codec compares header and trailer only when both hold a date; 000000 ("not
        # assigned") on one side and a date on the other disagree as well
        hp, tp = h["settlement_period"], t["settlement_period"]
        if (hp is None) != (tp is None) and (i, "settlement_period") not in bad_fields:
            add(
                "ciber.trailer.settlement_period",
                "settlement_period",
                f"trailer settlement period {tp or '000000'} differs from the header's "
                f"{hp or '000000'}",
                t,
            )
        contents = h["batch_contents"]
        if contents is not None and contents > 7:
            add("ciber.batch.contents", "batch_contents", f"batch contents {contents} not 0-7", h)
        if t["total_number_of_records"] == 0:
            add(
                "ciber.trailer.record_count",
                "total_number_of_records",
                "trailer counts 0 records (1-9999 expected)",
                t,
            )
        oseq = t.get("original_batch_sequence_number")
        if oseq is not None and not 1 <= oseq <= 999:
            add(
                "ciber.trailer.original_sequence",
                "original_batch_sequence_number",
                f"original batch sequence number {oseq:03d} is not 001-999",
                t,
            )
        if t["original_total_number_of_records"] == 0:
            add(
                "ciber.trailer.original_count",
                "original_total_number_of_records",
                "original total number of records is 0 (1-9999 expected)",
                t,
            )
        for name, rule in (
            ("batch_total_charges_and_taxes_sign", "ciber.trailer.total_sign"),
            ("original_total_charges_and_taxes_sign", "ciber.trailer.original_sign"),
        ):
            if t[name] != "0":
                add(rule, name, f"`{name}` is {t[name]!r}, not '0' outside type-70 batches", t)
    return hits


def batch_sha256(data: bytes, decoded: Decoded, batch_index: int) -> str:
    """The SHA-256 of one batch's lines, header to trailer, as content.

    Line endings and trailing blanks are cut first (a partner's transport may turn CR LF into
    LF, some partners cut the blank reserved tails), so a batch sent again under another file
    name hashes the same.
    """
    header = rows_by_batch(decoded, ("01", "02"))[batch_index]
    trailer = rows_by_batch(decoded, ("98", "97"))[batch_index]
    blob = data[header["byte_offset"] : trailer["byte_offset"] + trailer["byte_length"]]
    lines = (line.rstrip(b"\r").rstrip(b" ") for line in blob.split(b"\n"))
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line + b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------- check_ciber


def _override(settings: Settings, partner: str | None, rule: CiberRule) -> Severity | None:
    """The rule's severity for this partner: None when switched off."""
    o = settings.partner(partner).rules.get(rule.rule)
    if o == "off":
        return None
    if o == "warning":
        return "warning"
    return rule.severity


def rule_severity(settings: Settings, partner: str | None, rule: CiberRule) -> Severity | None:
    """The severity of ``rule`` for ``partner`` after its overrides (None: switched off)."""
    return _override(settings, partner, rule)


def check_ciber(data: bytes, *, file: str, settings: Settings, today: dt.date) -> CiberChecked:
    """Decode a CIBER-in file and check every rule of ``specs/ciber/rules.csv`` once.

    Args:
        data: the file's bytes.
        file: its name (for findings and errors).
        settings: our SID/BID (``home.sid_bid``), the CIBER partners, ``late_days`` and the
            per-partner rule overrides.
        today: the processing date (late and future dates are measured from it).

    A file that cannot be decoded gives one fatal finding (rule ``ciber.file.unreadable``,
    code 0), no events and no batches; it never raises.
    """
    rules = ciber_rules()
    try:
        decoded = decode(data, file=file)
    except DecodeError as exc:
        rule = rules["ciber.file.unreadable"]
        severity = _override(settings, None, rule)
        findings = []
        if severity is not None:
            findings.append(
                Finding(
                    rule=rule.rule,
                    code=rule.code,
                    severity=severity,
                    context=exc.path or "file",
                    message=str(exc),
                    byte_offset=exc.offset,
                )
            )
        return CiberChecked(file, data, today, None, EVENT_SCHEMA.empty_table(), findings, (), ())

    batches = decoded.batches
    nb = batches.num_rows
    senders: list[str | None] = batches.column("sending_sid_bid").to_pylist()

    # batch rules
    seen: set[tuple[int, str, str, int]] = set()
    batch_findings: list[tuple[int, int, Finding]] = []
    reject: list[tuple[int, int] | None] = [None] * nb
    for h in _batch_hits(decoded, settings, today):
        key = (h.batch, h.rule, h.context, h.byte_offset)
        if key in seen:
            continue
        seen.add(key)
        rule = rules.get(h.rule) or CiberRule(
            h.rule, "batch", None, None, None, int(h.rule[-2:]), "fatal", "", len(rules)
        )
        severity = _override(settings, senders[h.batch], rule)
        if severity is None:
            continue
        finding = Finding(
            rule=rule.rule,
            code=rule.code,
            severity=severity,
            context=h.context,
            message=h.message,
            byte_offset=h.byte_offset,
        )
        batch_findings.append((h.byte_offset, rule.order, finding))
        current = reject[h.batch]
        if severity == "fatal" and (current is None or rule.order < current[0]):
            reject[h.batch] = (rule.order, rule.code)
    rejected = tuple(r is not None for r in reject)
    reasons = tuple(None if r is None else r[1] for r in reject)

    # record rules
    indicator = np.asarray(batches.column("original_return_indicator").to_pylist(), dtype=object)
    ctx = _Ctx(
        settings=settings,
        today=today,
        today_days=(today - _EPOCH).days,
        decoded=decoded,
        indicator=indicator,
        contents=_np(batches.column("batch_contents"), -1).astype(np.int64),
        late_days=np.asarray([settings.late_days(s) for s in senders], dtype=np.int64),
        partners=frozenset(c for c, p in settings.partners.items() if p.standard == "ciber"),
        codec_records=decoded.findings.filter(
            pc.equal(decoded.findings.column("severity"), "record")
        ),
    )
    checked_batch = ~np.asarray(rejected, dtype=np.bool_) & (indicator != "3")
    record_findings = _record_findings(ctx, rules, senders, checked_batch)

    findings = [f for *_, f in sorted(batch_findings + record_findings, key=lambda x: x[:2])]
    return CiberChecked(file, data, today, decoded, decoded.events, findings, rejected, reasons)


def _record_findings(
    ctx: _Ctx,
    rules: dict[str, CiberRule],
    senders: list[str | None],
    checked_batch: NDArray[np.bool_],
) -> list[tuple[int, int, Finding]]:
    decoded = ctx.decoded
    record_rules = [r for r in rules.values() if r.scope == "record"]
    # severity code per rule and batch: 0 off, 1 warning, 2 severe
    level = {"warning": 1, "severe": 2, "fatal": 2}
    sev = {
        r.rule: np.asarray(
            [level.get(_override(ctx.settings, s, r) or "", 0) for s in senders], dtype=np.int8
        )
        for r in record_rules
    }
    detail_lines = np.sort(
        np.concatenate(
            [
                decoded.records[rt].column("line").to_numpy()
                for rt in DETAIL_TYPES
                if rt in decoded.records
            ]
            or [np.zeros(0, dtype=np.int64)]
        )
    )
    out: list[tuple[int, int, Finding]] = []
    for rt in DETAIL_TYPES:
        if rt not in decoded.records:
            continue
        full = decoded.records[rt]
        keep = np.flatnonzero(checked_batch[full.column("batch_index").to_numpy()])
        if keep.size == 0:
            continue
        t = full if keep.size == full.num_rows else full.take(pa.array(keep))
        b = t.column("batch_index").to_numpy().astype(np.int64)
        offsets = t.column("byte_offset").to_numpy()
        events = np.searchsorted(detail_lines, t.column("line").to_numpy())
        done = np.zeros(t.num_rows, dtype=np.bool_)
        for rule in record_rules:
            level_row = sev[rule.rule][b]
            if not level_row.any():
                continue
            taken = np.zeros(t.num_rows, dtype=np.bool_)
            for hit in _RECORD_CHECKS[rule.rule](ctx, rt, t, b):
                for row, message in zip(hit.rows.tolist(), hit.messages, strict=True):
                    if done[row] or taken[row] or level_row[row] == 0:
                        continue
                    taken[row] = True
                    severity: Severity = "severe" if level_row[row] == 2 else "warning"
                    finding = Finding(
                        rule=rule.rule,
                        code=rule.code,
                        severity=severity,
                        context=hit.context,
                        message=message,
                        event_index=int(events[row]),
                        byte_offset=int(offsets[row]),
                    )
                    out.append((int(offsets[row]), rule.order, finding))
            done |= taken & (level_row == 2)
    return out
