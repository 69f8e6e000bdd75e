"""The TD.57 rule table (``specs/td57/rules.csv``) and how a finding is made from a rule.

Each rule is a row: id, TD.57 context, error code, severity, the TAP releases it applies to, the
group a fatal error returns, and the path of the item in error (ASN.1 type names, turned into
the RAP ErrorContext of APPLICATION tag numbers). A rule id may have several rows for different
releases (e.g. a duplicate RecEntityInfo is a warning up to 3.10, fatal from 3.11).

Per-partner overrides (``[partners.X.rules]`` in ``clearing.toml``) change a rule's severity or
switch it off; they are applied here, once, so no check needs to know about them.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clearing.codecs import asn1
from clearing.errors import ConfigError
from clearing.validate.findings import (
    BULK_SCHEMA,
    SEVERITIES,
    Finding,
    PathItem,
    Severity,
    path_array,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from clearing.codecs.grammar import Grammar

__all__ = ["Rule", "RuleSet", "load_rules", "rules_for"]

_APPLICATION = 1


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the rule table."""

    rule: str
    context: str
    code: int
    severity: Severity
    releases: frozenset[int]
    group: str | None
    path: tuple[str, ...]
    description: str


def _releases(text: str, where: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(";"):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            msg = f"{where}: releases `{text}` is not like `9-12` or `11`"
            raise ConfigError(msg) from None
        out.update(range(a, b + 1))
    return frozenset(out)


@functools.cache
def load_rules(standard: str = "td57") -> tuple[Rule, ...]:
    """Read ``specs/<standard>/rules.csv`` (cached)."""
    path = asn1.specs_dir().parent / standard / "rules.csv"
    rules: list[Rule] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}:{line}"
            if row["severity"] not in SEVERITIES:
                msg = f"{where}: severity `{row['severity']}` is not one of {SEVERITIES}"
                raise ConfigError(msg)
            rules.append(
                Rule(
                    rule=row["rule"],
                    context=row["context"],
                    code=int(row["code"]),
                    severity=cast("Severity", row["severity"]),
                    releases=_releases(row["releases"], where),
                    group=row["group"] or None,
                    path=tuple(p for p in row["path"].split("/") if p),
                    description=row["description"],
                )
            )
    return tuple(rules)


@functools.cache
def _type_tags(release: int) -> dict[str, int]:
    """ASN.1 type name → APPLICATION tag number, for the release's grammar."""
    g: Grammar = asn1.grammar("tap", release)
    out: dict[str, int] = {}
    for key, root in g.roots.items():
        out[root.type_name] = key & 0xFFFFFF
    for kids in g.children.values():
        for key, child in kids.items():
            if key >> 24 == _APPLICATION:
                out.setdefault(child.type_name, key & 0xFFFFFF)
    return out


# groups of an MOC / MTC / GPRS call that charge something besides the call itself (CAMEL,
# supplementary services, VAS up to 3.10), so repeat the items of its ChargeInformation: the
# route to such an item goes through them only when nothing else leads to it
_DETOURS = frozenset({"CamelServiceUsed", "SupplServiceUsedList", "ValueAddedServiceUsedList"})


@functools.cache
def _event_paths(release: int, event_type: str, target: str) -> tuple[str, ...]:
    """Type names from an event type down to the first ``target`` inside it (breadth first).

    The shortest route that avoids :data:`_DETOURS` wins, so that e.g. an MOC's TaxCode is
    placed under BasicServiceUsed/ChargeInformation (the call's own charge, which the checks
    read), not under CamelServiceUsed, which is nearer.
    """
    return (
        _shortest(release, event_type, target, _DETOURS)
        or _shortest(release, event_type, target, frozenset())
        or (event_type,)
    )


def _shortest(
    release: int, event_type: str, target: str, avoid: frozenset[str]
) -> tuple[str, ...] | None:
    g = asn1.grammar("tap", release)
    todo: list[tuple[str, ...]] = [(event_type,)]
    seen = {event_type, *avoid}
    while todo:
        nxt: list[tuple[str, ...]] = []
        for path in todo:
            for child in g.children.get(path[-1], {}).values():
                if child.type_name == target:
                    return (*path, target)
                if child.type_name not in seen:
                    seen.add(child.type_name)
                    nxt.append((*path, child.type_name))
        todo = nxt
    return None


@functools.cache
def _event_path(
    release: int, event_kind: str, target: str | None
) -> tuple[tuple[PathItem, ...], int | None, tuple[PathItem, ...]]:
    """An event's path to ``target`` (None: the event itself) but for the event's occurrence.

    (the items above the event, the event's tag — None when the grammar has none — and the
    items below it, each with occurrence 1 and its level): a finding's path is these with the
    event's item, ``PathItem(tag, event_index + 1, 3)``, between them.
    """
    tags = _type_tags(release)
    etype = _event_type(release, event_kind) or "CallEventDetail"
    inner = _event_paths(release, etype, target) if target is not None else (etype,)
    names = ("TransferBatch", "CallEventDetailList", *inner)
    items = [(level, tags[n]) for level, n in enumerate(names, start=1) if n in tags]
    event = next((tag for level, tag in items if level == 3), None)
    return (
        tuple(PathItem(tag, 1, level) for level, tag in items if level < 3),
        event,
        tuple(PathItem(tag, 1, level) for level, tag in items if level > 3),
    )


@functools.cache
def _event_type(release: int, kind: str) -> str | None:
    g = asn1.grammar("tap", release)
    for child in g.children.get("CallEventDetailList", {}).values():
        if child.name == kind:
            return child.type_name
    return None


class RuleSet:
    """The rules of one TAP release, with one partner's overrides applied."""

    def __init__(
        self, release: int | None, overrides: Mapping[str, str] | None = None, *, standard: str
    ) -> None:
        self.release = release or 12
        self.standard = standard
        known = {r.rule for r in load_rules(standard)}
        for rule_id in overrides or {}:
            if rule_id not in known:
                msg = f"rule override `{rule_id}` names no rule of specs/{standard}/rules.csv"
                raise ConfigError(msg)
        self.rules: dict[str, Rule] = {}
        for r in load_rules(standard):
            if self.release in r.releases or standard != "td57":
                self.rules[r.rule] = r
        self.overrides = dict(overrides or {})
        # a Notification carries the batch control items itself (RAP notificationError)
        self.notification = False

    def active(self, rule_id: str) -> bool:
        """Whether the rule applies (known for this release and not switched off)."""
        return rule_id in self.rules and self.overrides.get(rule_id) != "off"

    def make(
        self,
        rule_id: str,
        message: str,
        *,
        event_index: int | None = None,
        event_kind: str | None = None,
        occurrence: int = 1,
        byte_offset: int | None = None,
        item_offset: int | None = None,
    ) -> Finding | None:
        """A finding for ``rule_id`` (None when the rule is off or not in this release)."""
        if not self.active(rule_id):
            return None
        r = self.rules[rule_id]
        if self.notification and r.group == "batchControlInfo":
            r = replace(r, group="notification", path=("Notification", *r.path[2:]))
        severity = cast("Severity", self.overrides.get(rule_id, r.severity))
        return Finding(
            rule=r.rule,
            code=r.code,
            severity=severity,
            context=r.context,
            message=message,
            event_index=event_index,
            group=r.group,
            path=self._path(r, event_index, event_kind, occurrence),
            item_offset=item_offset,
            byte_offset=byte_offset,
        )

    def severity(self, rule_id: str) -> Severity | None:
        """The severity a finding of ``rule_id`` gets (None when the rule is off)."""
        if not self.active(rule_id):
            return None
        return cast("Severity", self.overrides.get(rule_id, self.rules[rule_id].severity))

    def make_many(
        self,
        rule_id: str,
        messages: pa.Array | pa.ChunkedArray,
        event_index: pa.Array | pa.ChunkedArray,
        event_kind: pa.Array | pa.ChunkedArray,
    ) -> pa.Table | None:
        """Findings of ``rule_id`` for many events at once, as rows of :data:`BULK_SCHEMA`.

        The row ``i`` is what :meth:`make` gives for ``messages[i]``, ``event_index[i]``
        and ``event_kind[i]``; None when the rule is off or not in this release. (A dense day
        has a million duplicate suspects: a :class:`Finding` each costs seconds.)
        """
        if not self.active(rule_id):
            return None
        r = self.rules[rule_id]
        if self.notification and r.group == "batchControlInfo":
            r = replace(r, group="notification", path=("Notification", *r.path[2:]))
        messages, event_index, event_kind = (
            a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
            for a in (messages, event_index, event_kind)
        )
        n = len(event_index)
        index = event_index.cast(pa.int64())
        columns: dict[str, Any] = {
            "event_index": index,
            "rule": pa.repeat(pa.scalar(r.rule), n),
            "code": pa.repeat(pa.scalar(r.code, pa.int32()), n),
            "severity": pa.repeat(pa.scalar(self.severity(rule_id)), n),
            "context": pa.repeat(pa.scalar(r.context), n),
            "group": pa.repeat(pa.scalar(r.group, pa.string()), n),
            "message": messages.cast(pa.string()),
            "path": self._event_paths(r, index, event_kind),
            "item_offset": pa.nulls(n, pa.int64()),
            "byte_offset": pa.nulls(n, pa.int64()),
        }
        return pa.table([columns[f.name] for f in BULK_SCHEMA], schema=BULK_SCHEMA)

    def _event_paths(self, r: Rule, index: pa.Array, event_kind: pa.Array) -> pa.ListArray:
        """The ``path`` of :meth:`_path` for each event (``index``, ``event_kind``) at once.

        An event's path is its kind's items with the event's own item (occurrence: its
        position + 1) among them: each kind's template, taken per row, the events' items set.
        """
        n = len(index)
        if self.standard != "td57":
            return path_array([], [], [], np.zeros(n + 1, np.int32))
        encoded = pc.dictionary_encode(pc.fill_null(event_kind.cast(pa.string()), ""))
        kinds = encoded.dictionary.to_pylist()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
        target = r.path[0] if r.path else None
        templates = []
        for kind in kinds:
            before, tag, after = _event_path(self.release, kind, target)
            items = [*before, *([PathItem(tag, 0, 3)] if tag is not None else []), *after]
            templates.append((items, len(before) if tag is not None else -1))
        width = max((len(t) for t, _ in templates), default=0)
        ids = np.zeros((len(kinds), width), np.int64)
        occ = np.zeros((len(kinds), width), np.int64)
        lev = np.zeros((len(kinds), width), np.int64)
        for k, (items, _) in enumerate(templates):
            for j, p in enumerate(items):
                ids[k, j], occ[k, j], lev[k, j] = p.item_id, p.occurrence, p.level
        lengths = np.array([len(t) for t, _ in templates], np.int64)[codes]
        at = np.array([e for _, e in templates], np.int64)[codes]
        rows_occ = occ[codes]
        mine = at >= 0
        rows_occ[np.flatnonzero(mine), at[mine]] = index.to_numpy(zero_copy_only=False)[mine] + 1
        keep = np.arange(width)[None, :] < lengths[:, None]
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return path_array(ids[codes][keep], rows_occ[keep], lev[codes][keep], offsets)

    def _path(
        self, r: Rule, event_index: int | None, event_kind: str | None, occurrence: int
    ) -> tuple[PathItem, ...]:
        if self.standard != "td57":
            return ()
        tags = _type_tags(self.release)
        if event_index is None:
            names = r.path
            occ = [1] * len(names)
            # the entry of a list (e.g. the n-th Taxation) carries the occurrence
            for i in range(1, len(names)):
                if names[i - 1].endswith("List"):
                    occ[i] = occurrence
        else:
            # the same for every event of a kind but the event's occurrence: built once
            before, tag, after = _event_path(
                self.release, event_kind or "", r.path[0] if r.path else None
            )
            if tag is None:
                return (*before, *after)
            return (*before, PathItem(tag, event_index + 1, 3), *after)
        return tuple(
            PathItem(tags.get(n, 0), o, level)
            for level, (n, o) in enumerate(zip(names, occ, strict=True), start=1)
            if n in tags
        )


def rules_for(
    release: int | None, overrides: Mapping[str, str] | None = None, *, standard: str = "td57"
) -> RuleSet:
    """The rule set of a TAP release (``standard="td57"``) with a partner's overrides."""
    return RuleSet(release, overrides, standard=standard)


def application_tag(release: int, type_name: str) -> int | None:
    """The APPLICATION tag number of an ASN.1 type of the release (None: untagged/unknown)."""
    return _type_tags(release).get(type_name)
