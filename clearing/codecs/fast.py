"""Fast decoder of TAP call events into a columnar table (Arrow).

asn1tools builds a Python dict for every element, which caps it at ~13k events/s. This decoder
instead parses the BER of *all events of a chunk at once* with numpy: a frontier of open
containers advances one child per round, so the Python interpreter runs once per round, not once
per element. Every element found becomes a row of a node table (tag, offsets, parent, event,
path); columns of the event table are then gathered from the nodes whose path names the field
(the path's type names come from the release's ASN.1 grammar, so unknown tags are reported).

Only the call-event list is decoded this way. The header groups (BatchControlInfo,
AccountingInfo, NetworkInfo, VasInfo up to 3.10, AuditControlInfo...) are small and decoded with
asn1tools, each with the type its release's grammar gives it.

Indefinite lengths (``61 80 … 00 00``, as some partners encode everything) are read by the same
rounds: a lane that meets an indefinite element descends into it and climbs back at its
end-of-contents. Such events' rows are then put in the order, and their new paths interned in
the order, of the pure-Python path (:func:`clearing.codecs.ber.walk`) that reads events with
broken or unusual BER, so that the table and the problems do not depend on which path read an
event; broken events become rows with a *problem* instead of stopping the file. Where events
end in an indefinite-length list is found once per file (:mod:`clearing.codecs.ber` remembers
the ends it reads while the header is sniffed).

Memory: events are processed in chunks (``chunk_events``), so the transient node tables do not
grow with the file; only the output columns do.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from clearing.codecs import asn1
from clearing.codecs.ber import (
    TLV,
    LimitError,
    element_at,
    known_end,
    known_ends,
    read_header,
    tag_key,
    tag_name,
    walk,
)
from clearing.codecs.events import EVENT_SCHEMA
from clearing.codecs.tap3.values import offset_minutes as _offset_minutes
from clearing.codecs.tap3.values import text as _ascii
from clearing.errors import DecodeError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

    from clearing.codecs.grammar import Grammar

__all__ = [
    "MAX_EVENT_DEPTH",
    "MAX_EVENT_ELEMENTS",
    "MAX_SHORT_EVENTS",
    "MIN_EVENT_BYTES",
    "DecodeProblem",
    "TapBatch",
    "decode_tap",
    "decode_tap_chunks",
]

I64 = np.int64
_PAD = 16  # zero bytes appended to a chunk so that header reads never run out of bounds
_MAX_NESTING = 64  # nested indefinite elements BER reading allows (`clearing.codecs.ber`)
_MAX_INDEFINITE = 48  # nested indefinite elements read by lanes (deeper: pure-Python path)
# Limits that keep a hostile file's cost linear in its size (issue 14). TD.57's deepest path
# below a call event (GPRS: gprsServiceUsed, chargeInformationList, chargeInformation,
# chargeDetailList, chargeDetail, ...) is about 10 levels and real events have a few hundred
# elements at most (8 levels, 108 elements in the samples); an event beyond these is no call
# event, and the file is rejected as a whole.
MAX_EVENT_DEPTH = 32  # levels of elements below a call event
MAX_EVENT_ELEMENTS = 4096  # elements in one call event (itself included)
# A call event shorter than this carries none of TD.57's mandatory items (a MOC's IMSI and
# start time alone take more); a few are findings of their events, more make the file fatal,
# so that millions of empty events cannot cost a table row (and findings) per two bytes.
MIN_EVENT_BYTES = 16
MAX_SHORT_EVENTS = 1000

_T_TRANSFER_BATCH = tag_key(1, 1)
_T_EVENT_LIST = tag_key(1, 3)


@dataclass(frozen=True, slots=True)
class DecodeProblem:
    """Something wrong found while decoding, tied to a place in the file."""

    offset: int
    path: str
    message: str
    event_index: int | None = None
    context: str | None = None  # the TD.57 item in error (e.g. ``ChargeType``), when known
    code: int | None = None  # TD.57 error code: 10 syntax, 20 range, 100 inconsistency
    # the event's kind (its CallEventDetail alternative) when the event table cannot tell it:
    # a broken event is an "unknown" row, but its own tag may still be readable
    event_kind: str | None = None


@dataclass
class TapBatch:
    """A TAP TransferBatch decoded by the fast path.

    Attributes:
        info: what the header says (kind, version).
        groups: the header groups as asn1tools values, by member name
            (``batchControlInfo``, ``accountingInfo``, ``networkInfo``, ``auditControlInfo``;
            ``vasInfo`` up to TAP 3.10).
        events: the event table (:data:`~clearing.codecs.events.EVENT_SCHEMA`).
        problems: unknown tags, broken events, bad values: never silently dropped.
        event_list_offset: offset of the CallEventDetailList element (None if absent).
    """

    info: asn1.FileInfo
    groups: dict[str, Any]
    events: pa.Table
    problems: list[DecodeProblem] = field(default_factory=list)
    event_list_offset: int | None = None


# ---------------------------------------------------------------------------------------------
# path interning: each distinct (parent path, tag) gets a small integer id and a grammar meaning


class _Paths:
    """Interns element paths and resolves their ASN.1 type with the grammar."""

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        self.ids: dict[tuple[int, int], int] = {}
        # per path id: type name (None = unknown), parent path, tag key, event kind, label
        self.type_name: list[str | None] = [None]
        self.parent: list[int] = [-1]
        self.key: list[int] = [0]
        self.kind: list[str] = [""]
        self.label: list[str] = ["callEventDetails"]
        self.constructed: list[bool] = [True]
        self.event_types = grammar.children.get("CallEventDetailList", {})
        # the (parent path, key) pairs of `ids`, sorted, and their path ids
        self.combos = np.zeros(0, dtype=I64)
        self.combo_ids = np.zeros(0, dtype=I64)
        # `_path_ids` results: query → (paths looked at, ids found)
        self.found: dict[Any, tuple[int, list[int]]] = {}

    def intern(self, parent: int, key: int) -> int:
        pid = self.ids.get((parent, key))
        if pid is not None:
            return pid
        pid = len(self.type_name)
        self.ids[(parent, key)] = pid
        if parent == 0:
            child = self.event_types.get(key)
            kind = child.name if child else f"unknown{tag_name(key)}"
        else:
            ptype = self.type_name[parent]
            child = self.grammar.child(ptype, key) if ptype else None
            kind = self.kind[parent]
        self.type_name.append(child.type_name if child else None)
        self.constructed.append(child.constructed if child else True)
        self.parent.append(parent)
        self.key.append(key)
        self.kind.append(kind)
        self.label.append(child.name or child.type_name if child else tag_name(key))
        return pid

    def _lookup(self, combo: NDArray[I64]) -> tuple[NDArray[I64], NDArray[np.bool_]]:
        if len(self.combos) != len(self.ids):  # paths were interned since: sort them again
            pairs = sorted((p * (1 << 32) + k, pid) for (p, k), pid in self.ids.items())
            self.combos = np.fromiter((c for c, _ in pairs), dtype=I64, count=len(pairs))
            self.combo_ids = np.fromiter((i for _, i in pairs), dtype=I64, count=len(pairs))
        if not len(self.combos):
            return np.full(len(combo), -1, dtype=I64), np.zeros(len(combo), dtype=np.bool_)
        at = np.minimum(np.searchsorted(self.combos, combo), len(self.combos) - 1)
        hit = self.combos[at] == combo
        return np.where(hit, self.combo_ids[at], -1), hit

    def lookup_many(self, parent_paths: NDArray[I64], keys: NDArray[I64]) -> NDArray[I64]:
        """Path ids of (parent path, key) pairs already interned, -1 for the others."""
        ids, _hit = self._lookup(parent_paths * (1 << 32) + keys)
        return ids

    def intern_many(self, parent_paths: NDArray[I64], keys: NDArray[I64]) -> NDArray[I64]:
        """Path ids of many (parent path, key) pairs; new ones interned in sorted order."""
        combo = parent_paths * (1 << 32) + keys
        out, hit = self._lookup(combo)
        if hit.all():
            return out
        miss = ~hit
        uniq, inverse = np.unique(combo[miss], return_inverse=True)
        in_step = len(self.combos) == len(self.ids)
        ids = np.fromiter(
            (self.intern(int(u >> 32), int(u & 0xFFFFFFFF)) for u in uniq),
            dtype=I64,
            count=len(uniq),
        )
        out[miss] = ids[inverse.reshape(-1)]
        if in_step:
            # merged into the sorted pairs (linear), not sorted again with every round
            at = np.searchsorted(self.combos, uniq)
            self.combos = np.insert(self.combos, at, uniq)
            self.combo_ids = np.insert(self.combo_ids, at, ids)
        return out

    def describe(self, pid: int) -> str:
        parts: list[str] = []
        while pid > 0:
            parts.append(self.label[pid])
            pid = self.parent[pid]
        return ".".join(reversed(parts))


# ---------------------------------------------------------------------------------------------
# node tables


@dataclass
class _Nodes:
    """Flat node table of one chunk (one row per BER element inside the events)."""

    header: NDArray[I64]  # absolute offset of the element
    start: NDArray[I64]  # absolute offset of the content
    length: NDArray[I64]  # content length
    parent: NDArray[I64]  # node index of the parent, -1 for an event
    event: NDArray[I64]  # chunk-local event number
    path: NDArray[I64]
    constructed: NDArray[np.bool_]

    @staticmethod
    def concat(parts: list[_Nodes]) -> _Nodes:
        def cat(name: str) -> Any:
            return np.concatenate([getattr(p, name) for p in parts])

        sizes = [len(p.path) for p in parts]
        shifts = np.repeat(np.cumsum([0, *sizes[:-1]]), sizes)
        parent = cat("parent")
        parent = np.where(parent >= 0, parent + shifts, -1)
        return _Nodes(
            cat("header"),
            cat("start"),
            cat("length"),
            parent,
            cat("event"),
            cat("path"),
            cat("constructed"),
        )


@dataclass
class _Parsed:
    """What :func:`_parse_chunk` read from a chunk of events.

    Attributes:
        nodes: rows of the events read without an indefinite length, in the order of the
            rounds that found them.
        bad: per event, "read it with the pure-Python path" (broken or unusual BER).
        late: per event, "has an indefinite length inside, read here all the same".
        late_nodes: rows of the ``late`` (and not ``bad``) events in the order the pure-Python
            path gives them (by event, then by offset); ``parent`` is an index into them.
            ``path`` is -1 for the rows whose path must still be interned
            (:func:`_resolve_paths`): the pure-Python path interns paths in that order, so the
            ids come out the same.
        late_keys: the tag of each late row.
    """

    nodes: _Nodes
    bad: NDArray[np.bool_]
    late: NDArray[np.bool_]
    late_nodes: _Nodes
    late_keys: NDArray[I64]


def _empty_nodes() -> _Nodes:
    empty = np.zeros(0, dtype=I64)
    return _Nodes(empty, empty, empty, empty, empty, empty, np.zeros(0, np.bool_))


@dataclass
class _Lanes:
    """The open containers of a chunk's rounds, one lane each (see :func:`_parse_chunk`).

    Attributes:
        cur: where the lane's next child starts (relative to the chunk's buffer).
        end: where the lane's container ends.
        par: node index of the container (-1 for an event's virtual container).
        ppath: path id of the container.
        evt: chunk-local event number.
        top: slot (in :class:`_Open`) of the innermost indefinite element open on the lane,
            -1 for none; kept only once ``stacked``.
        sdep: how many indefinite elements are open on the lane; kept only once ``stacked``.
        stacked: a lane has had an indefinite element open.
        depth: depth of the lane's container below its event (-1: the event's virtual one).
    """

    cur: NDArray[I64]
    end: NDArray[I64]
    par: NDArray[I64]
    ppath: NDArray[I64]
    evt: NDArray[I64]
    top: NDArray[I64]
    sdep: NDArray[I64]
    depth: NDArray[I64]
    stacked: bool = False

    @classmethod
    def of_events(cls, ev_start: NDArray[I64], ev_end: NDArray[I64]) -> _Lanes:
        """The events themselves, the first "children" read, from a virtual container each."""
        n_ev = len(ev_start)
        none = np.zeros(0, dtype=I64)
        return cls(
            ev_start.copy(),
            ev_end.copy(),
            np.full(n_ev, -1, dtype=I64),
            np.zeros(n_ev, dtype=I64),
            np.arange(n_ev, dtype=I64),
            none,
            none,
            np.full(n_ev, -1, dtype=I64),
        )

    def keep(self, sel: NDArray[np.bool_]) -> None:
        """Keep the lanes ``sel``."""
        self.cur, self.end, self.par = self.cur[sel], self.end[sel], self.par[sel]
        self.ppath, self.evt, self.depth = self.ppath[sel], self.evt[sel], self.depth[sel]
        if self.stacked:
            self.top, self.sdep = self.top[sel], self.sdep[sel]


@dataclass
class _Open:
    """The indefinite elements open on the lanes: per lane a linked list (``prev``) of slots."""

    node: NDArray[I64]  # the element's node index
    start: NDArray[I64]  # where its content starts (its length is found at its end)
    prev: NDArray[I64]  # the slot of the element open below it on the lane, -1 for none
    path: NDArray[I64]  # its path id
    n: int = 0  # slots used

    @classmethod
    def empty(cls) -> _Open:
        none = np.zeros(0, dtype=I64)
        return cls(none, none, none, none)

    def push(
        self, node: NDArray[I64], start: NDArray[I64], prev: NDArray[I64], path: NDArray[I64]
    ) -> NDArray[I64]:
        """Open elements; their slots."""
        k = len(node)
        if self.n + k > len(self.node):
            grow = max(2 * len(self.node), self.n + k, 1024) - len(self.node)
            self.node = np.concatenate([self.node, np.zeros(grow, I64)])
            self.start = np.concatenate([self.start, np.zeros(grow, I64)])
            self.prev = np.concatenate([self.prev, np.zeros(grow, I64)])
            self.path = np.concatenate([self.path, np.zeros(grow, I64)])
        slots = np.arange(self.n, self.n + k, dtype=I64)
        self.n += k
        self.node[slots] = node
        self.start[slots] = start
        self.prev[slots] = prev
        self.path[slots] = path
        return slots


@dataclass
class _Heads:
    """The header of the child every lane reads in a round (content offsets relative to buf)."""

    cls: NDArray[I64]
    cons: NDArray[np.bool_]
    num: NDArray[I64]
    cstart: NDArray[I64]
    length: NDArray[I64]
    cend: NDArray[I64]
    indef: NDArray[np.bool_]  # indefinite length (``cend`` is then meaningless)
    ok: NDArray[np.bool_]  # a sound header, inside its container and the chunk
    has_indef: bool  # some lane's child is indefinite (and indefinite lengths are read)

    def keep(self, sel: NDArray[np.bool_]) -> None:
        """Keep the lanes ``sel`` (``ok`` is not kept: it is read before)."""
        self.cls, self.cons, self.num = self.cls[sel], self.cons[sel], self.num[sel]
        self.cstart, self.length, self.cend = self.cstart[sel], self.length[sel], self.cend[sel]
        self.indef = self.indef[sel]


def _close_eoc(
    lanes: _Lanes,
    opened: _Open,
    buf: NDArray[np.uint8],
    bad: NDArray[np.bool_],
    fixes: list[tuple[NDArray[I64], NDArray[I64]]],
) -> None:
    """End-of-contents octets close the innermost open element of a lane (maybe several).

    The closed elements' (node, length) go to ``fixes``. Lanes at their container's end are
    dropped; an event whose indefinite element has no end-of-contents before it is ``bad``.
    """
    top, cur, end = lanes.top, lanes.cur, lanes.end
    at = np.flatnonzero(top >= 0)
    while len(at):
        c = cur[at]
        at = at[(c + 2 <= end[at]) & (buf[c] == 0) & (buf[c + 1] == 0)]
        if not len(at):
            break
        t = top[at]
        fixes.append((opened.node[t], cur[at] - opened.start[t]))
        top[at] = opened.prev[t]
        lanes.sdep[at] -= 1
        lanes.depth[at] -= 1
        cur[at] += 2
        at = at[top[at] >= 0]
    finished = cur >= end
    if finished.any():
        bad[lanes.evt[finished & (top >= 0)]] = True  # no end-of-contents before the end
        lanes.keep(~finished & ~bad[lanes.evt])


def _read_headers(buf: NDArray[np.uint8], lanes: _Lanes, *, indefinite: bool, limit: int) -> _Heads:
    """Read the tag and length of the next child of every lane."""
    cur, last = lanes.cur, len(buf) - 1
    b0 = buf[cur].astype(I64)
    cls = b0 >> 6
    cons = (b0 & 0x20) != 0
    num = b0 & 0x1F
    hl = np.ones_like(cur)
    multi = num == 0x1F
    ok = np.ones(len(cur), dtype=np.bool_)
    if multi.any():
        b1 = buf[cur + 1].astype(I64)
        b2 = buf[cur + 2].astype(I64)
        two = multi & ((b1 & 0x80) != 0)
        num = np.where(multi, b1 & 0x7F, num)
        num = np.where(two, ((b1 & 0x7F) << 7) | (b2 & 0x7F), num)
        hl = np.where(multi, 2, hl)
        hl = np.where(two, 3, hl)
        ok &= ~(two & ((b2 & 0x80) != 0))  # tags above 16383 are not TAP tags
    lpos = cur + hl
    lb = buf[lpos].astype(I64)
    long_form = lb >= 0x80
    nlen = np.where(long_form, lb & 0x7F, 0)
    indef = lb == 0x80
    has_indef = bool(indef.any())
    if has_indef:
        if not indefinite:
            ok &= ~indef  # the pure-Python path reads the event
        else:
            ok &= cons | ~indef  # a primitive element cannot be indefinite
            if lanes.stacked:
                ok &= ~indef | (lanes.sdep < _MAX_INDEFINITE)
    ok &= nlen <= 4
    ok &= lanes.depth < MAX_EVENT_DEPTH  # deeper: the pure-Python path refuses the file
    length = np.where(long_form, 0, lb)
    if long_form.any():
        li = np.flatnonzero(long_form)
        at, nl = lpos[li] + 1, nlen[li]
        value = np.zeros(len(li), dtype=I64)
        for i in range(4):
            more = i < nl
            if not more.any():
                break
            bi = buf[np.minimum(at + i, last)].astype(I64)
            value = np.where(more, (value << 8) | bi, value)
        length[li] = value
    cstart = lpos + 1 + nlen
    cend = cstart + length
    ok &= (cend <= lanes.end) & (cend <= limit)
    return _Heads(cls, cons, num, cstart, length, cend, indef, ok, has_indef and indefinite)


def _child_paths(
    paths: _Paths,
    lanes: _Lanes,
    opened: _Open,
    key: NDArray[I64],
    late: NDArray[np.bool_],
    *,
    any_late: bool,
) -> NDArray[I64]:
    """Path ids of the children read; -1 for new paths of late events.

    New paths of late events are interned after the rounds (see :func:`_resolve_paths`); known
    ones have their id whatever the order.
    """
    if not any_late:
        return paths.intern_many(lanes.ppath, key)
    early = ~late[lanes.evt]
    path = np.full(len(lanes.cur), -1, dtype=I64)
    if early.any():
        path[early] = paths.intern_many(lanes.ppath[early], key[early])
    if not early.all():
        lt = np.flatnonzero(~early)
        up = lanes.ppath[lt]
        if lanes.stacked:
            t = lanes.top[lt]
            up = np.where(t >= 0, opened.path[np.maximum(t, 0)], up)
        path[lt] = np.where(up >= 0, paths.lookup_many(np.maximum(up, 0), key[lt]), -1)
    return path


def _push_indefinite(
    lanes: _Lanes, opened: _Open, h: _Heads, ids: NDArray[I64], path: NDArray[I64]
) -> None:
    """An indefinite child: its lane descends into it (it goes on at its content)."""
    push = np.flatnonzero(h.indef)
    if not len(push):
        return
    if not lanes.stacked:
        lanes.stacked = True
        lanes.top = np.full(len(lanes.cur), -1, dtype=I64)
        lanes.sdep = np.zeros(len(lanes.cur), dtype=I64)
    slots = opened.push(ids[push], h.cstart[push], lanes.top[push], path[push])
    lanes.top[push] = slots
    lanes.sdep[push] += 1
    lanes.depth[push] += 1
    h.cend = np.where(h.indef, h.cstart, h.cend)  # where the lane goes on


def _advance(lanes: _Lanes, h: _Heads, ids: NDArray[I64], path: NDArray[I64]) -> None:
    """Move past the children read: keep lanes with more children, open constructed children."""
    if lanes.stacked:
        nxt = (lanes.top >= 0) | (h.cend < lanes.end)
        new = h.cons & ~h.indef & (h.length > 0) if h.has_indef else h.cons & (h.length > 0)
        n_new = int(new.sum())
        lanes.top = np.concatenate([lanes.top[nxt], np.full(n_new, -1, I64)])
        lanes.sdep = np.concatenate([lanes.sdep[nxt], np.zeros(n_new, I64)])
    else:
        nxt = h.cend < lanes.end
        new = h.cons & (h.length > 0)
    lanes.cur = np.concatenate([h.cend[nxt], h.cstart[new]])
    lanes.end = np.concatenate([lanes.end[nxt], h.cend[new]])
    lanes.par = np.concatenate([lanes.par[nxt], ids[new]])
    lanes.ppath = np.concatenate([lanes.ppath[nxt], path[new]])
    lanes.evt = np.concatenate([lanes.evt[nxt], lanes.evt[new]])
    lanes.depth = np.concatenate([lanes.depth[nxt], lanes.depth[new] + 1])


def _parse_chunk(
    buf: NDArray[np.uint8],
    base: int,
    ev_start: NDArray[I64],
    ev_end: NDArray[I64],
    paths: _Paths,
    *,
    indefinite: bool = True,
) -> _Parsed:
    """Vectorised BER parse of the events of a chunk.

    ``buf`` holds the chunk's bytes (plus padding) starting at absolute offset ``base``;
    ``ev_start``/``ev_end`` are the events' element extents relative to ``buf``.

    Lanes are open containers; each round reads one child of every lane. A definite
    constructed child opens a lane of its own. An indefinite one cannot (its parent's next
    child starts after its end-of-contents, not yet found): the lane descends into it,
    keeping the open indefinite elements as a small stack (a linked list in an "open" table),
    and climbs back when it meets their end-of-contents, which also gives their length.

    Events with an indefinite length inside are "late": their rows are set apart and put in
    the order the pure-Python path gives, and their paths are interned after the rounds, so
    that the result does not depend on which path read them. With ``indefinite=False``
    they are flagged ``bad`` instead (the pure-Python path then reads them).
    """
    n_ev = len(ev_start)
    bad = np.zeros(n_ev, dtype=np.bool_)
    late = np.zeros(n_ev, dtype=np.bool_)
    out: dict[str, list[Any]] = {k: [] for k in (*_Nodes.__dataclass_fields__, "key")}
    fixes: list[tuple[NDArray[I64], NDArray[I64]]] = []
    count = 0
    lanes = _Lanes.of_events(ev_start, ev_end)
    opened = _Open.empty()
    any_late = False
    limit = len(buf) - _PAD

    rounds = 0
    while len(lanes.cur):
        rounds += 1
        if rounds > MAX_EVENT_ELEMENTS:
            # an event with more elements than that: the pure-Python path refuses the file
            bad[lanes.evt] = True
            break
        if lanes.stacked:
            _close_eoc(lanes, opened, buf, bad, fixes)
            if not len(lanes.cur):
                break
        h = _read_headers(buf, lanes, indefinite=indefinite, limit=limit)
        if h.has_indef:
            newly = lanes.evt[h.indef & h.ok]
            if len(newly):
                late[newly] = True
                any_late = True
        if not h.ok.all():
            # lanes of bad events are dropped as soon as a lane fails: all others are sound
            bad[lanes.evt[~h.ok]] = True
            sel = ~bad[lanes.evt]
            lanes.keep(sel)
            h.keep(sel)
            if not len(lanes.cur):
                break

        key = (h.cls << 24) | h.num
        path = _child_paths(paths, lanes, opened, key, late, any_late=any_late)
        k = len(lanes.cur)
        ids = np.arange(count, count + k, dtype=I64)
        count += k
        out["header"].append(lanes.cur + base)
        out["start"].append(h.cstart + base)
        out["length"].append(h.length)
        top = lanes.top
        out["parent"].append(
            np.where(top >= 0, opened.node[np.maximum(top, 0)], lanes.par)
            if lanes.stacked
            else lanes.par
        )
        out["event"].append(lanes.evt)
        out["path"].append(path)
        out["constructed"].append(h.cons)
        out["key"].append(key)
        if h.has_indef:
            _push_indefinite(lanes, opened, h, ids, path)
        _advance(lanes, h, ids, path)

    if count == 0:
        return _Parsed(_empty_nodes(), bad, late, _empty_nodes(), np.zeros(0, I64))
    keys = np.concatenate(out.pop("key"))
    nodes = _Nodes(**{k: np.concatenate(v) for k, v in out.items()})
    bad |= np.bincount(nodes.event, minlength=n_ev) > MAX_EVENT_ELEMENTS
    if fixes:
        nodes.length[np.concatenate([i for i, _ in fixes])] = np.concatenate([n for _, n in fixes])
    return _set_apart_late(nodes, keys, bad, late, any_late=any_late)


def _set_apart_late(
    nodes: _Nodes,
    keys: NDArray[I64],
    bad: NDArray[np.bool_],
    late: NDArray[np.bool_],
    *,
    any_late: bool,
) -> _Parsed:
    """The rounds' rows as :class:`_Parsed`: bad events dropped, late ones in offset order."""
    if not any_late:
        if bad.any():
            nodes = _drop_events(nodes, bad)
        return _Parsed(nodes, bad, late, _empty_nodes(), np.zeros(0, I64))
    # a second element in an event's extent: the pure-Python path would read only the first
    roots = np.bincount(nodes.event[nodes.parent < 0], minlength=len(bad))
    bad |= late & (roots > 1)
    is_late = late[nodes.event] & ~bad[nodes.event]
    order = np.flatnonzero(is_late)
    # events lie one after the other in the file: offset order is (event, offset) order
    # (offsets are unique; the rounds' nodes are sorted runs: the merge sort takes them as such)
    order = order[np.argsort(nodes.header[order], kind="stable")]
    late_nodes, late_keys = _take_nodes(nodes, order), keys[order]
    return _Parsed(_drop_events(nodes, bad | late), bad, late, late_nodes, late_keys)


def _take_nodes(nodes: _Nodes, rows: NDArray[I64]) -> _Nodes:
    """The rows ``rows`` (each one's parent among them, or -1), in that order."""
    new_index = np.full(len(nodes.path), -1, dtype=I64)
    new_index[rows] = np.arange(len(rows), dtype=I64)
    parent = nodes.parent[rows]
    parent = np.where(parent >= 0, new_index[np.maximum(parent, 0)], -1)
    return _Nodes(
        nodes.header[rows],
        nodes.start[rows],
        nodes.length[rows],
        parent,
        nodes.event[rows],
        nodes.path[rows],
        nodes.constructed[rows],
    )


_PROVISIONAL = 1 << 28  # provisional path ids, above any real one


def _resolve_paths(
    paths: _Paths, parent: NDArray[I64], key: NDArray[I64], path: NDArray[I64]
) -> NDArray[I64]:
    """Path ids of rows in walk order (``path`` -1 where not yet known), interning new paths.

    New paths are interned in the order of their first row, as interning row by row (what
    the pure-Python path does) would; each row's parent comes before it.
    """
    pid = path.copy()
    todo = np.flatnonzero(pid < 0)
    prov_ids: dict[tuple[int, int], int] = {}
    prov: list[tuple[int, int]] = []
    while len(todo):
        up = parent[todo]
        ppid = np.where(up >= 0, pid[np.maximum(up, 0)], 0)
        ready = ppid >= 0
        idx = todo[ready]
        combo = ppid[ready] * (1 << 32) + key[idx]
        uniq, inverse = np.unique(combo, return_inverse=True)
        ids: list[int] = []
        for u in uniq.tolist():
            pair = (u >> 32, u & 0xFFFFFFFF)
            real = paths.ids.get(pair) if pair[0] < _PROVISIONAL else None
            if real is None:
                real = prov_ids.get(pair)
                if real is None:
                    real = prov_ids[pair] = _PROVISIONAL + len(prov)
                    prov.append(pair)
            ids.append(real)
        pid[idx] = np.asarray(ids, dtype=I64)[inverse.reshape(-1)]
        todo = todo[~ready]
    if prov:
        is_prov = np.flatnonzero(pid >= _PROVISIONAL)
        uniq, first = np.unique(pid[is_prov], return_index=True)
        real_of: dict[int, int] = {}
        for t in uniq[np.argsort(is_prov[first], kind="stable")].tolist():
            parent_id, k = prov[t - _PROVISIONAL]
            real_of[t] = paths.intern(real_of.get(parent_id, parent_id), k)
        lut = np.asarray([real_of[_PROVISIONAL + i] for i in range(len(prov))], dtype=I64)
        pid[is_prov] = lut[pid[is_prov] - _PROVISIONAL]
    return pid


def _drop_events(nodes: _Nodes, bad: NDArray[np.bool_]) -> _Nodes:
    keep = ~bad[nodes.event]
    new_index = np.cumsum(keep) - 1
    parent = nodes.parent[keep]
    parent = np.where(parent >= 0, new_index[np.maximum(parent, 0)], -1)
    return _Nodes(
        nodes.header[keep],
        nodes.start[keep],
        nodes.length[keep],
        parent,
        nodes.event[keep],
        nodes.path[keep],
        nodes.constructed[keep],
    )


def _slow_event(data: bytes, pos: int, end: int, local_event: int, paths: _Paths) -> _Nodes:
    """Pure-Python node rows of one event (indefinite lengths allowed). Raises DecodeError."""
    root = element_at(data, pos, end)
    rows = walk(data, root, max_depth=MAX_EVENT_DEPTH, max_elements=MAX_EVENT_ELEMENTS)
    n = len(rows)
    header = np.empty(n, I64)
    start = np.empty(n, I64)
    length = np.empty(n, I64)
    parent = np.empty(n, I64)
    path = np.empty(n, I64)
    cons = np.empty(n, np.bool_)
    stack: list[int] = []  # node index at each depth
    for i, (depth, tlv) in enumerate(rows):
        del stack[depth:]
        p = stack[-1] if stack else -1
        header[i] = tlv.offset
        start[i] = tlv.content_start
        length[i] = tlv.content_end - tlv.content_start
        parent[i] = p
        path[i] = paths.intern(int(path[p]) if p >= 0 else 0, tlv.key)
        cons[i] = tlv.constructed
        stack.append(i)
    return _Nodes(header, start, length, parent, np.full(n, local_event, I64), path, cons)


# ---------------------------------------------------------------------------------------------
# value decoders (vectorised over nodes)


def _gather(buf: NDArray[np.uint8], base: int, start: NDArray[I64], width: int) -> NDArray[I64]:
    idx = (start - base)[:, None] + np.arange(width, dtype=I64)[None, :]
    np.minimum(idx, len(buf) - 1, out=idx)
    out: NDArray[I64] = buf[idx].astype(I64)
    return out


def _ints(
    buf: NDArray[np.uint8], base: int, start: NDArray[I64], length: NDArray[I64]
) -> tuple[NDArray[I64], NDArray[np.bool_]]:
    """BER INTEGER contents (1–8 bytes, two's complement) → int64, plus a validity mask."""
    if not len(start):
        return np.zeros(0, I64), np.zeros(0, np.bool_)
    valid = (length >= 1) & (length <= 8)
    ln = np.clip(length, 1, 8)
    width = int(ln.max())  # bytes past the longest value change nothing
    raw = _gather(buf, base, start, width).astype(np.uint64)
    val = raw[:, 0].copy()
    for j in range(1, width):
        take = j < ln
        val = np.where(take, (val << np.uint64(8)) | raw[:, j], val)
    neg = (raw[:, 0] & np.uint64(0x80)) != 0
    shift = (np.uint64(8) * ln.astype(np.uint64)) % np.uint64(64)
    ext = np.where(neg & (ln < 8), (np.uint64(0xFFFFFFFFFFFFFFFF) << shift), np.uint64(0))
    out = (val | ext).view(I64)
    return out, valid


_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _span_index(start: NDArray[I64], counts: NDArray[I64]) -> NDArray[I64]:
    total = int(counts.sum())
    offs = np.cumsum(counts) - counts
    return np.arange(total, dtype=I64) - np.repeat(offs, counts) + np.repeat(start, counts)


def _strings(
    buf: NDArray[np.uint8], base: int, start: NDArray[I64], length: NDArray[I64]
) -> pa.Array:
    """Octet-string contents → Arrow strings (ASCII; other bytes decoded with replacement)."""
    idx = _span_index(start - base, length)
    chars = buf[idx]
    if len(chars) and int(chars.max()) >= 0x80:
        py = [
            bytes(buf[s - base : s - base + n]).decode("latin-1")
            for s, n in zip(start.tolist(), length.tolist(), strict=True)
        ]
        return pa.array(py, pa.string())
    offsets = np.concatenate([[0], np.cumsum(length)]).astype(np.int32)
    return pa.StringArray.from_buffers(len(start), pa.py_buffer(offsets), pa.py_buffer(chars))


def _bcd(buf: NDArray[np.uint8], base: int, start: NDArray[I64], length: NDArray[I64]) -> pa.Array:
    """TAP BCDString → digits (first digit in the high nibble; a final F is a filler)."""
    if not int(length.sum()):
        return pa.array([""] * len(start), pa.string())
    idx = _span_index(start - base, length)
    octets = buf[idx]
    nib = np.empty(2 * len(octets), dtype=np.uint8)
    nib[0::2] = octets >> 4
    nib[1::2] = octets & 0x0F
    ends = 2 * np.cumsum(length) - 1  # index of each element's last nibble
    keep = np.ones(len(nib), dtype=np.bool_)
    has = length > 0
    last = ends[has]
    keep[last[nib[last] == 0x0F]] = False
    counts = 2 * length - np.where(has, ~keep[np.maximum(ends, 0)], False).astype(I64)
    chars = _HEX[nib[keep]]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.StringArray.from_buffers(len(start), pa.py_buffer(offsets), pa.py_buffer(chars))


def _days_from_civil(y: NDArray[I64], m: NDArray[I64], d: NDArray[I64]) -> NDArray[I64]:
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: NDArray[I64] = era * 146097 + doe - 719468
    return days


def _timestamps(
    buf: NDArray[np.uint8], base: int, start: NDArray[I64], length: NDArray[I64]
) -> tuple[NDArray[I64], NDArray[np.bool_]]:
    """``CCYYMMDDhhmmss`` → seconds since the epoch (naive), plus a validity mask."""
    dig = _gather(buf, base, start, 14) - 48
    valid = (length == 14) & ((dig >= 0) & (dig <= 9)).all(axis=1)
    w = dig.clip(0, 9)
    y = w[:, 0] * 1000 + w[:, 1] * 100 + w[:, 2] * 10 + w[:, 3]
    mo = w[:, 4] * 10 + w[:, 5]
    d = w[:, 6] * 10 + w[:, 7]
    h = w[:, 8] * 10 + w[:, 9]
    mi = w[:, 10] * 10 + w[:, 11]
    s = w[:, 12] * 10 + w[:, 13]
    mdays = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=I64)
    valid &= (mo >= 1) & (mo <= 12) & (d >= 1) & (h <= 23) & (mi <= 59) & (s <= 59)
    valid &= d <= mdays[np.clip(mo - 1, 0, 11)]
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    valid &= ~((mo == 2) & (d == 29) & ~leap)
    secs = _days_from_civil(y, np.clip(mo, 1, 12), d) * 86400 + h * 3600 + mi * 60 + s
    return secs, valid


# ---------------------------------------------------------------------------------------------
# field specifications: which node (by type name, parent type name) feeds which column


def _path_ids(
    paths: _Paths, wanted: set[str], parents: set[str] | None = None, kind: str | None = None
) -> list[int]:
    # paths are only ever added: the ids found so far stay right, only new paths are looked at
    memo_key = (frozenset(wanted), frozenset(parents) if parents is not None else None, kind)
    done, out = paths.found.get(memo_key, (0, []))
    if done == len(paths.type_name):
        return out
    out = list(out)
    for pid in range(done, len(paths.type_name)):
        t = paths.type_name[pid]
        if t in wanted and (kind is None or paths.kind[pid] == kind):
            pt = paths.type_name[paths.parent[pid]] if pid > 0 else None
            if parents is None or pt in parents:
                out.append(pid)
    paths.found[memo_key] = (len(paths.type_name), out)
    return out


_FIRST_INT = {
    "duration": ({"TotalCallEventDuration"}, None),
    "rec_entity_code": ({"RecEntityCode"}, None),
    "location_area": ({"LocationArea"}, None),
    "cell_id": ({"CellId"}, None),
    "exchange_rate_code": ({"ExchangeRateCode"}, None),
    "call_type_level1": ({"CallTypeLevel1"}, None),
    "call_type_level2": ({"CallTypeLevel2"}, None),
    "call_type_level3": ({"CallTypeLevel3"}, None),
    "tax_code": ({"TaxCode"}, None),
    "cause_for_term": ({"CauseForTerm"}, None),
    "charging_id": ({"ChargingId"}, None),
    "discount_code": ({"DiscountCode"}, None),
}
_SUM_INT = {
    "data_volume_incoming": {"DataVolumeIncoming"},
    "data_volume_outgoing": {"DataVolumeOutgoing"},
    "tax": {"TaxValue"},
    "discount": {"Discount"},
    "camel_fee": {"CamelInvocationFee"},
    "taxable_amount": {"TaxableAmount"},
}
_COUNT = {
    "tax_items": {"TaxInformation"},
    "charge_items": {"ChargeInformation", "SessionChargeInformation"},
}
_FIRST_BCD = {
    "imsi": {"Imsi"},
    "msisdn": {"Msisdn"},
    "called_number": {"CalledNumber"},
    "calling_number": {"CallingNumber"},
}
_FIRST_STR = {
    "dialled_digits": {"DialledDigits"},
    "tele_service_code": {"TeleServiceCode"},
    "bearer_service_code": {"BearerServiceCode"},
    "supplementary_service_code": {"SupplServiceCode"},
    "apn_ni": {"AccessPointNameNI"},
    "apn_oi": {"AccessPointNameOI"},
    "serving_network": {"ServingNetwork"},
    "charged_item": {"ChargedItem"},
    "partial_type": {"PartialTypeIndicator"},
    "rap_file_sequence_number": {"RapFileSequenceNumber"},
}
_CHARGE_TYPES = np.array([0, 1, 2, 3, 4, 21, 50], dtype=I64)
# the event's start: the first of these DateTime elements, by event kind
_START_STAMPS = {
    "CallEventStartTimeStamp",
    "ServiceStartTimestamp",
    "DepositTimeStamp",
    "OrderPlacedTimeStamp",
    "LCSRequestTimestamp",
}
_SUPPL_START = "ChargingTimeStamp"  # supplServiceEvent carries its time in supplServiceUsed


def _first_per_event(idx: NDArray[I64], nodes: _Nodes) -> tuple[NDArray[I64], NDArray[I64]]:
    """(event numbers, node indices) of the first of ``idx`` (by file offset) in each event."""
    if not len(idx):
        return np.zeros(0, I64), np.zeros(0, I64)
    # events are contiguous in the file, so file order is also event order
    idx = idx[np.argsort(nodes.header[idx], kind="stable")]  # runs of sorted offsets
    ev = nodes.event[idx]
    first = np.concatenate([[True], ev[1:] != ev[:-1]])
    return ev[first], idx[first]


def _column_int(n_ev: int, ev: NDArray[I64], vals: NDArray[I64]) -> pa.Array:
    out = np.zeros(n_ev, dtype=I64)
    mask = np.ones(n_ev, dtype=np.bool_)
    out[ev] = vals
    mask[ev] = False
    return pa.array(out, pa.int64(), mask=mask)


def _scatter_strings(n_ev: int, ev: NDArray[I64], values: pa.Array) -> pa.Array:
    pos = np.full(n_ev, -1, dtype=I64)
    pos[ev] = np.arange(len(ev), dtype=I64)
    if not len(ev):
        return pa.nulls(n_ev, pa.string())
    return values.take(pa.array(pos, pa.int64(), mask=pos < 0))


@dataclass
class _Context:
    """File-level facts the event columns need."""

    sender: str | None
    recipient: str | None
    fsn: str | None
    currency: str
    scale: int | None
    utc_offsets: dict[int, str]
    rec_entities: dict[int, str]


def _columns(
    buf: NDArray[np.uint8],
    base: int,
    nodes: _Nodes,
    n_ev: int,
    paths: _Paths,
    ctx: _Context,
    problems: list[DecodeProblem],
    first_index: int,
) -> dict[str, pa.Array]:
    cols: dict[str, pa.Array] = {}
    f = _Fields.of(buf, base, nodes, n_ev, paths, problems, first_index)
    select, report_invalid = f.select, f.report_invalid
    _plain_columns(f, cols)
    _charge_columns(f, cols)

    # start time: the first start-stamp DateTime, its LocalTimeStamp and UtcTimeOffsetCode
    stamp = np.concatenate(
        [
            select(_START_STAMPS),
            select({_SUPPL_START}, {"SupplServiceUsed"}, "supplServiceEvent"),
        ]
    )
    _ev, sidx = _first_per_event(stamp, nodes)
    chosen = np.zeros(len(nodes.path), dtype=np.bool_)
    chosen[sidx] = True
    lidx = select({"LocalTimeStamp"})
    lidx = lidx[chosen[nodes.parent[lidx]] & (nodes.parent[lidx] >= 0)]
    oidx = select({"UtcTimeOffsetCode"})
    oidx = oidx[chosen[nodes.parent[oidx]] & (nodes.parent[oidx] >= 0)]
    secs, ok = _timestamps(buf, base, nodes.start[lidx], nodes.length[lidx])
    report_invalid(lidx[~ok], "`local_start`: not a valid CCYYMMDDhhmmss timestamp", 10)
    lev = nodes.event[lidx]
    local = np.zeros(n_ev, dtype=I64)
    has_local = np.zeros(n_ev, dtype=np.bool_)
    local[lev[ok]] = secs[ok]
    has_local[lev[ok]] = True
    codes, cok = _ints(buf, base, nodes.start[oidx], nodes.length[oidx])
    code_by_event = np.full(n_ev, -1, dtype=I64)
    has_code = np.zeros(n_ev, dtype=np.bool_)
    code_node = np.zeros(n_ev, dtype=I64)
    code_by_event[nodes.event[oidx[cok]]] = codes[cok]
    has_code[nodes.event[oidx[cok]]] = True
    code_node[nodes.event[oidx[cok]]] = oidx[cok]
    table_codes = np.array(sorted(ctx.utc_offsets), dtype=I64)
    minutes_tab = {c: _offset_minutes(t) for c, t in ctx.utc_offsets.items()}
    off_min = np.zeros(n_ev, dtype=I64)
    has_off = np.zeros(n_ev, dtype=np.bool_)
    known = has_code & np.isin(code_by_event, table_codes)  # no table: no code is known
    for c in np.unique(code_by_event[known]).tolist():
        mins = minutes_tab[c]
        if mins is None:
            continue
        at = known & (code_by_event == c)
        off_min[at] = mins
        has_off[at] = True
    # a code that no UtcTimeOffsetInfo defines, also when the table (or NetworkInfo) is missing:
    # the code is there but undefined (TD.57 UtcTimeOffsetCode 100), not missing
    for e in np.flatnonzero(has_code & ~known).tolist():
        node = int(code_node[e])
        problems.append(
            DecodeProblem(
                int(nodes.header[node]),
                paths.describe(int(nodes.path[node])),
                f"utcTimeOffsetCode {int(code_by_event[e])} is not in NetworkInfo",
                first_index + e,
                "UtcTimeOffsetCode",
                100,
            )
        )
    off_txt = [
        ctx.utc_offsets.get(c) if h else None
        for c, h in zip(code_by_event.tolist(), has_code.tolist(), strict=True)
    ]
    cols["local_start"] = pa.array(local, pa.timestamp("s"), mask=~has_local)

    # the first ChargeDetailTimeStamp (TD.57: the event may not start after it)
    _dev, didx = _first_per_event(select({"ChargeDetailTimeStamp"}), nodes)
    dchosen = np.zeros(len(nodes.path), dtype=np.bool_)
    dchosen[didx] = True
    dl = select({"LocalTimeStamp"})
    dl = dl[(nodes.parent[dl] >= 0) & dchosen[np.maximum(nodes.parent[dl], 0)]]
    dsecs, dok = _timestamps(buf, base, nodes.start[dl], nodes.length[dl])
    dl_ev = nodes.event[dl]
    detail = np.zeros(n_ev, dtype=I64)
    has_detail = np.zeros(n_ev, dtype=np.bool_)
    detail[dl_ev[dok]] = dsecs[dok]
    has_detail[dl_ev[dok]] = True
    cols["charge_detail_local"] = pa.array(detail, pa.timestamp("s"), mask=~has_detail)
    cols["utc_offset"] = pa.array(off_txt, pa.string())
    utc_ok = has_local & has_off
    cols["start_utc"] = pa.array(local - off_min * 60, pa.timestamp("s", tz="UTC"), mask=~utc_ok)

    # recording entity id from the NetworkInfo table
    rec = cols["rec_entity_code"]
    cols["rec_entity_id"] = pa.array(
        [ctx.rec_entities.get(c) if c is not None else None for c in rec.to_pylist()], pa.string()
    )
    return cols


@dataclass
class _Fields:
    """The nodes of a chunk grouped by path once: a field is then a few slices, not a scan."""

    buf: NDArray[np.uint8]
    base: int
    nodes: _Nodes
    n_ev: int
    paths: _Paths
    problems: list[DecodeProblem]
    first_index: int
    order: NDArray[I64]  # node indices sorted by path
    bounds: NDArray[I64]  # per path id, where its nodes start in ``order``

    @classmethod
    def of(
        cls,
        buf: NDArray[np.uint8],
        base: int,
        nodes: _Nodes,
        n_ev: int,
        paths: _Paths,
        problems: list[DecodeProblem],
        first_index: int,
    ) -> _Fields:
        # path ids are few: as 16-bit numbers the stable sort is a radix sort (2.5× faster)
        ids = nodes.path.astype(np.int16) if len(paths.type_name) < 1 << 15 else nodes.path
        order = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(nodes.path[order], np.arange(len(paths.type_name) + 1))
        return cls(buf, base, nodes, n_ev, paths, problems, first_index, order, bounds)

    def select(
        self, wanted: set[str], parents: set[str] | None = None, kind: str | None = None
    ) -> NDArray[I64]:
        """The nodes of the types ``wanted`` (under ``parents``, in events of ``kind``)."""
        pids = _path_ids(self.paths, wanted, parents, kind)
        if not pids:
            return np.zeros(0, I64)
        order, bounds = self.order, self.bounds
        return np.concatenate([order[bounds[p] : bounds[p + 1]] for p in pids])

    def report_invalid(self, where: NDArray[I64], what: str, code: int) -> None:
        """A problem (TD.57 ``code``) for each of the nodes ``where``."""
        nodes, paths = self.nodes, self.paths
        # every event in error is reported: each one must be returned (no cap)
        for i in where.tolist():
            pid = int(nodes.path[i])
            self.problems.append(
                DecodeProblem(
                    int(nodes.header[i]),
                    paths.describe(pid),
                    what,
                    self.first_index + int(nodes.event[i]),
                    paths.type_name[pid],
                    code,
                )
            )


_I64_MAX = (1 << 63) - 1


def _event_sums(
    n_ev: int, events: NDArray[I64], vals: NDArray[I64]
) -> tuple[NDArray[I64], NDArray[np.bool_]]:
    """Per-event sums of ``vals`` and where a sum does not fit int64 (never wrapped).

    Values are at most 8 bytes each; only when one is beyond 2^53 can a few of them overflow
    int64, and only then are the sums taken again in Python integers (rare, exact).
    """
    total = np.zeros(n_ev, dtype=I64)
    over = np.zeros(n_ev, dtype=np.bool_)
    big = np.abs(vals.astype(np.float64)) >= 2.0**53
    if not big.any():
        np.add.at(total, events, vals)
        return total, over
    exact: dict[int, int] = {}
    for e, v in zip(events.tolist(), vals.tolist(), strict=True):
        exact[e] = exact.get(e, 0) + v
    for e, v in exact.items():
        if -_I64_MAX - 1 <= v <= _I64_MAX:
            total[e] = v
        else:
            over[e] = True
    return total, over


def _plain_columns(f: _Fields, cols: dict[str, pa.Array]) -> None:
    """The columns of the field tables: first value, sum, count, BCD and text per event."""
    buf, base, nodes, n_ev = f.buf, f.base, f.nodes, f.n_ev
    select, report_invalid = f.select, f.report_invalid
    for name, (types, parents) in _FIRST_INT.items():
        ev, idx = _first_per_event(select(types, parents), nodes)
        vals, ok = _ints(buf, base, nodes.start[idx], nodes.length[idx])
        report_invalid(idx[~ok], f"`{name}`: INTEGER longer than 8 bytes", 10)
        cols[name] = _column_int(n_ev, ev[ok], vals[ok])

    for name, types in _SUM_INT.items():
        idx = select(types)
        vals, ok = _ints(buf, base, nodes.start[idx], nodes.length[idx])
        report_invalid(idx[~ok], f"`{name}`: INTEGER longer than 8 bytes", 10)
        idx, vals = idx[ok], vals[ok]
        # TD.57 value ranges: amounts and volumes are never negative (refunds are flagged)
        report_invalid(idx[vals < 0], f"`{name}`: value out of range (negative)", 20)
        total, over = _event_sums(n_ev, nodes.event[idx], vals)
        _report_overflow(f, idx, over, name)
        present = np.zeros(n_ev, dtype=np.bool_)
        present[nodes.event[idx]] = True
        cols[name] = pa.array(total, pa.int64(), mask=~present | over)

    for name, types in _COUNT.items():
        idx = select(types)
        counts = np.bincount(nodes.event[idx], minlength=n_ev).astype(I64)
        cols[name] = pa.array(counts, pa.int64())

    for name, types in _FIRST_BCD.items():
        ev, idx = _first_per_event(select(types), nodes)
        cols[name] = _scatter_strings(
            n_ev, ev, _bcd(buf, base, nodes.start[idx], nodes.length[idx])
        )

    for name, types in _FIRST_STR.items():
        ev, idx = _first_per_event(select(types), nodes)
        vals = _strings(buf, base, nodes.start[idx], nodes.length[idx])
        cols[name] = _scatter_strings(n_ev, ev, vals)


def _report_overflow(f: _Fields, idx: NDArray[I64], over: NDArray[np.bool_], name: str) -> None:
    """A range problem (20) on the first node of each event whose ``name`` sum overflows."""
    if not over.any():
        return
    ev = f.nodes.event[idx]
    hit = over[ev]
    _, first = np.unique(ev[hit], return_index=True)
    f.report_invalid(idx[hit][first], f"`{name}`: the event's values sum beyond int64", 20)


def _charge_columns(f: _Fields, cols: dict[str, pa.Array]) -> None:
    """``charge``, ``charge_airtime``, ``charge_toll`` (by chargeType) and ``refund``."""
    buf, base, nodes, n_ev, paths = f.buf, f.base, f.nodes, f.n_ev, f.paths
    select, report_invalid = f.select, f.report_invalid
    # charges: ChargeDetail{chargeType, charge}; messagingEvent carries `charge` directly (type 00)
    cidx = select({"ChargeType"})
    ctype_txt = _gather(buf, base, nodes.start[cidx], 2)
    digits = (ctype_txt[:, :2] >= 48) & (ctype_txt[:, :2] <= 57)
    ctype_ok = (nodes.length[cidx] == 2) & digits.all(axis=1)
    ctype_num = np.where(ctype_ok, (ctype_txt[:, 0] - 48) * 10 + (ctype_txt[:, 1] - 48), -1)
    report_invalid(cidx[~ctype_ok], "`chargeType`: not two digits", 10)
    report_invalid(
        cidx[ctype_ok & ~np.isin(ctype_num, _CHARGE_TYPES)],
        "`chargeType`: value out of range (allowed 00-04, 21, 50)",
        20,
    )
    type_of_parent = np.full(len(nodes.path) + 1, -2, dtype=I64)  # -2: no ChargeType sibling
    type_of_parent[nodes.parent[cidx]] = ctype_num
    gidx = select({"Charge"})
    gvals, gok = _ints(buf, base, nodes.start[gidx], nodes.length[gidx])
    report_invalid(gidx[~gok], "`charge`: INTEGER longer than 8 bytes", 10)
    gidx, gvals = gidx[gok], gvals[gok]
    report_invalid(gidx[gvals < 0], "`charge`: value out of range (negative)", 20)
    gparent = nodes.parent[gidx]
    gtype = np.where(gparent >= 0, type_of_parent[np.maximum(gparent, 0)], -2)
    direct = np.isin(nodes.path[gidx], _path_ids(paths, {"Charge"}, {"MessagingEvent"}))
    gtype = np.where(direct, 0, gtype)
    for name, code in (("charge", 0), ("charge_airtime", 1), ("charge_toll", 3)):
        sel = gtype == code
        total, over = _event_sums(n_ev, nodes.event[gidx[sel]], gvals[sel])
        _report_overflow(f, gidx[sel], over, name)
        present = np.zeros(n_ev, dtype=np.bool_)
        present[nodes.event[gidx[sel]]] = True
        cols[name] = pa.array(total, pa.int64(), mask=~present | over)

    # refund flag: a ChargeRefundIndicator with value 1 anywhere in the event
    ridx = select({"ChargeRefundIndicator"})
    rvals, rok = _ints(buf, base, nodes.start[ridx], nodes.length[ridx])
    refund = np.zeros(n_ev, dtype=np.bool_)
    refund[nodes.event[ridx[rok & (rvals == 1)]]] = True
    cols["refund"] = pa.array(refund)


# ---------------------------------------------------------------------------------------------
# the file


def _decode_group(spec: Any, type_name: str, data: bytes, tlv: TLV, path: str) -> Any:
    import asn1tools

    try:
        return spec.decode(type_name, data[tlv.offset : tlv.end])
    except (asn1tools.Error, ValueError, IndexError, KeyError, TypeError) as exc:
        reason, _offset, _where = asn1.asn1_error_parts(exc)
        msg = f"cannot decode `{type_name}`: {reason}"
        raise DecodeError(msg, offset=tlv.offset, path=path) from None


def decode_tap(
    data: bytes,
    *,
    file: str | None = None,
    chunk_events: int = 4096,
    info: asn1.FileInfo | None = None,
) -> TapBatch:
    """Decode a TAP TransferBatch (any supported release) into an event table.

    Args:
        data: the whole file.
        file: file name, for messages.
        chunk_events: events parsed together; bounds the transient memory.
        info: the header as :func:`clearing.codecs.asn1.sniff` read it (e.g. leniently, for
            validation); sniffed here when None.

    Raises:
        DecodeError: the file is not a TransferBatch, its structure above the events is
            broken, or bytes trail the top-level element. Problems inside single events are
            returned in ``problems`` instead.
    """
    batch, chunks = decode_tap_chunks(data, file=file, chunk_events=chunk_events, info=info)
    tables = list(chunks)
    batch.events = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    return batch


def decode_tap_chunks(
    data: bytes,
    *,
    file: str | None = None,
    chunk_events: int = 4096,
    info: asn1.FileInfo | None = None,
    indefinite: bool = True,
) -> tuple[TapBatch, Iterator[pa.Table]]:
    """:func:`decode_tap` a chunk of events at a time: the header, and the events' tables.

    The header groups are decoded and the event list split into events (a list that cannot
    be split rejects the file here, as :func:`decode_tap` does) before this returns; the
    returned batch has no events. The iterator yields the tables of ``chunk_events`` events
    each, in order (``event_index`` counts on across them), and adds the problems of each
    chunk's events to the batch's ``problems`` as it goes: a file's whole event table need
    never be held.

    ``indefinite=False`` reads events with an indefinite length inside with the pure-Python
    path (the reference the vectorised reading is tested against).

    Raises:
        DecodeError: as :func:`decode_tap` (from this call; the chunks raise it only for an
            event beyond the limits of a call event, which rejects the file too).
    """
    try:
        batch, starts, ends, ctx, paths = _open_tap(data, info)
    except DecodeError as exc:
        raise exc.with_file(file) if file else exc from None

    def chunks() -> Iterator[pa.Table]:
        try:
            for lo in range(0, len(starts), chunk_events):
                yield _decode_chunk(
                    data,
                    starts[lo : lo + chunk_events].tolist(),
                    ends[lo : lo + chunk_events].tolist(),
                    lo,
                    paths,
                    ctx,
                    batch.problems,
                    indefinite=indefinite,
                )
        except DecodeError as exc:
            raise exc.with_file(file) if file else exc from None

    return batch, chunks()


def _decode_tap(
    data: bytes, chunk_events: int, info: asn1.FileInfo | None, *, indefinite: bool = True
) -> TapBatch:
    """See :func:`decode_tap` (``indefinite``: see :func:`decode_tap_chunks`)."""
    batch, chunks = decode_tap_chunks(
        data, chunk_events=chunk_events, info=info, indefinite=indefinite
    )
    tables = list(chunks)
    batch.events = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    return batch


def _open_tap(
    data: bytes, info: asn1.FileInfo | None
) -> tuple[TapBatch, NDArray[I64], NDArray[I64], _Context, _Paths]:
    """The header of a TransferBatch, and where its events start and end."""
    if info is None:
        info = asn1.sniff(data)
    if info.kind != "tap":
        msg = f"expected a TAP TransferBatch, found {info.kind}"
        raise DecodeError(msg, offset=0, hint="use `clearing inspect` to see what it is")
    if info.length != len(data):
        raise asn1.trailing_error(data, info.length)
    spec = asn1.spec("tap", info.tap_release)
    g = asn1.grammar("tap", info.tap_release)
    problems: list[DecodeProblem] = []

    key, _cons, pos, length = read_header(data, 0)
    stop = len(data) - 2 if length is None else pos + length
    groups: dict[str, Any] = {}
    event_list: tuple[int, int, int | None] | None = None
    while pos < stop:
        key, _cons, cstart, clen = read_header(data, pos, stop)
        if key == _T_EVENT_LIST:
            event_list = (pos, cstart, clen)
            pos = cstart + clen if clen is not None else _event_list_end(data, pos, cstart, stop)
            continue
        tlv = element_at(data, pos, stop)
        meaning = g.child("TransferBatch", key)
        if meaning is None or not meaning.name:
            problems.append(
                DecodeProblem(pos, "transferBatch", f"unknown tag {tag_name(key)} in TransferBatch")
            )
        else:
            name, type_name = meaning.name, meaning.type_name
            groups[name] = _decode_group(spec, type_name, data, tlv, f"transferBatch.{name}")
        pos = tlv.end

    ctx = _context(groups, info)
    paths = _Paths(g)
    starts = ends = np.zeros(0, dtype=I64)
    if event_list is not None:
        _offset, cstart, clen = event_list
        starts, ends = _event_extents(data, cstart, clen, stop, problems)
    batch = TapBatch(
        info,
        groups,
        EVENT_SCHEMA.empty_table(),
        problems,
        event_list[0] if event_list else None,
    )
    return batch, starts, ends, ctx, paths


def _event_list_end(data: bytes, pos: int, cstart: int, stop: int) -> int:
    """End of the indefinite-length CallEventDetailList at ``pos``.

    Read as one element (the events' ends are then remembered for :func:`_event_extents`);
    where that fails, event by event, for the error the file has always been rejected with.
    """
    known = known_end(data, pos, stop)
    if known is not None:
        return known
    try:
        return element_at(data, pos, stop).end
    except DecodeError:
        return _skip_events_indefinite(data, cstart, stop)


def _skip_events_indefinite(data: bytes, cstart: int, stop: int) -> int:
    p = cstart
    while p < stop:
        if data[p] == 0 and p + 1 < stop and data[p + 1] == 0:
            return p + 2
        _key, _c, s, n = read_header(data, p, stop)
        p = element_at(data, p, stop).end if n is None else s + n
    msg = "CallEventDetailList has no end-of-contents"
    raise DecodeError(msg, offset=cstart)


def _event_extents(
    data: bytes, cstart: int, clen: int | None, stop: int, problems: list[DecodeProblem]
) -> tuple[NDArray[I64], NDArray[I64]]:
    """Start/end offsets of every event (one Python step per event; indefinite resolved)."""
    starts = array("q")  # 8 bytes an event (a list of ints takes 36)
    ends = array("q")
    end = stop if clen is None else cstart + clen
    known = known_ends(data)  # ends of indefinite events found while sniffing
    short = 0
    p = cstart
    while p < end:
        # inlined fast path: APPLICATION tag of 1 or 3 bytes, definite length of 1–3 bytes
        b0 = data[p]
        if clen is None and b0 == 0 and p + 1 < end and data[p + 1] == 0:
            break
        q = p + 1 if b0 & 0x1F != 0x1F else (p + 2 if data[p + 1] < 0x80 else p + 3)
        lb = data[q] if q < end else 0x80
        if lb < 0x80:
            e = q + 1 + lb
        elif 0x81 <= lb <= 0x83:
            n = lb - 0x80
            e = q + 1 + n + int.from_bytes(data[q + 1 : q + 1 + n], "big")
        else:
            hit = known.get(p)
            if hit is not None and hit[0] <= end and hit[1] <= _MAX_NESTING:
                e = hit[0]  # what element_at would give (see `known_end`)
            else:
                e = _slow_extent(data, p, end, len(starts))
        if e > end:
            e = _slow_extent(data, p, end, len(starts))
        if e - p < MIN_EVENT_BYTES:
            short += 1
            if short > MAX_SHORT_EVENTS:
                _too_many_short(p, len(starts))
        starts.append(p)
        ends.append(e)
        p = e
    return np.frombuffer(starts, dtype=I64), np.frombuffer(ends, dtype=I64)


def _too_many_short(offset: int, index: int) -> None:
    msg = (
        f"more than {MAX_SHORT_EVENTS} call events of under {MIN_EVENT_BYTES} bytes "
        f"(one too many at event {index})"
    )
    raise DecodeError(
        msg,
        offset=offset,
        path=f"transferBatch.callEventDetails[{index}]",
        hint="an event that short carries none of TD.57's mandatory items; the file is "
        "damaged or hostile and is rejected as a whole (fatal RAP); ask the sender for a "
        "clean file",
    )


def _slow_extent(data: bytes, p: int, end: int, index: int) -> int:
    try:
        e = element_at(data, p, end).end
    except DecodeError as exc:
        msg = f"broken call event: {exc.reason}"
        raise DecodeError(
            msg,
            offset=exc.offset,
            path=f"transferBatch.callEventDetails[{index}]",
            hint="the event list cannot be split into events; the file must be rejected",
        ) from None
    return e


def _context(groups: dict[str, Any], info: asn1.FileInfo) -> _Context:
    bci = groups.get("batchControlInfo") or {}
    acc = groups.get("accountingInfo") or {}
    net = groups.get("networkInfo") or {}
    utc = {
        int(x["utcTimeOffsetCode"]): _ascii(x["utcTimeOffset"]) or ""
        for x in net.get("utcTimeOffsetInfo", [])
        if "utcTimeOffsetCode" in x and "utcTimeOffset" in x
    }
    rec = {
        int(x["recEntityCode"]): _ascii(x.get("recEntityId")) or ""
        for x in net.get("recEntityInfo", [])
        if "recEntityCode" in x
    }
    return _Context(
        sender=_ascii(bci.get("sender")),
        recipient=_ascii(bci.get("recipient")),
        fsn=_ascii(bci.get("fileSequenceNumber")),
        currency=_ascii(acc.get("tapCurrency")) or "SDR",
        scale=acc.get("tapDecimalPlaces"),
        utc_offsets=utc,
        rec_entities=rec,
    )


def _decode_chunk(
    data: bytes,
    starts: list[int],
    ends: list[int],
    first_index: int,
    paths: _Paths,
    ctx: _Context,
    problems: list[DecodeProblem],
    *,
    indefinite: bool = True,
) -> pa.Table:
    base = starts[0]
    top = ends[-1]
    buf = np.frombuffer(data[base:top] + bytes(_PAD), dtype=np.uint8)
    ev_start = np.asarray(starts, dtype=I64) - base
    ev_end = np.asarray(ends, dtype=I64) - base
    parsed = _parse_chunk(buf, base, ev_start, ev_end, paths, indefinite=indefinite)
    bad, late = parsed.bad, parsed.late & ~parsed.bad
    late_events = parsed.late_nodes.event
    parts = [parsed.nodes]
    run: list[int] = []  # late events not yet added: their paths are interned together

    def add_run() -> None:
        lo, hi = np.searchsorted(late_events, [run[0], run[-1] + 1])
        if lo == 0 and hi == len(late_events):
            run_nodes, keys = parsed.late_nodes, parsed.late_keys
        else:
            rows = np.arange(lo, hi, dtype=I64)
            run_nodes, keys = _take_nodes(parsed.late_nodes, rows), parsed.late_keys[rows]
        if (run_nodes.path < 0).any():
            run_nodes.path = _resolve_paths(paths, run_nodes.parent, keys, run_nodes.path)
        parts.append(run_nodes)
        run.clear()

    # in event order, as the pure-Python path used to read every one of them
    for e in np.flatnonzero(bad | late).tolist():
        if late[e]:
            run.append(e)
            continue
        if run:
            add_run()
        try:
            parts.append(_slow_event(data, starts[e], ends[e], e, paths))
        except LimitError as exc:
            msg = f"call event {first_index + e}: {exc.reason}"
            raise DecodeError(
                msg,
                offset=exc.offset,
                path=f"transferBatch.callEventDetails[{first_index + e}]",
                hint=f"no TAP call event is nested over {MAX_EVENT_DEPTH} levels deep or has "
                f"over {MAX_EVENT_ELEMENTS} elements; the file is damaged or hostile and is "
                "rejected as a whole (fatal RAP); ask the sender for a clean file",
            ) from None
        except DecodeError as exc:
            problems.append(
                DecodeProblem(
                    exc.offset if exc.offset is not None else starts[e],
                    f"callEventDetails[{first_index + e}]",
                    f"broken BER inside the event: {exc.reason}",
                    first_index + e,
                    "CallEventDetail",
                    10,
                    _event_kind(data, starts[e], ends[e], paths),
                )
            )
    if run:
        add_run()
    nodes = _Nodes.concat(parts) if len(parts) > 1 else parts[0]
    n_ev = len(starts)
    _check_tags(nodes, paths, first_index, problems)
    cols = _columns(buf, base, nodes, n_ev, paths, ctx, problems, first_index)

    roots = nodes.parent < 0
    kinds: list[str] = ["unknown"] * n_ev
    for e, pid in zip(nodes.event[roots].tolist(), nodes.path[roots].tolist(), strict=True):
        kinds[e] = paths.kind[pid]
    starts_a = np.asarray(starts, dtype=I64)
    n = n_ev
    base_cols: dict[str, pa.Array] = {
        "source_format": pa.array(["tap"] * n, pa.string()),
        "sender": pa.array([ctx.sender] * n, pa.string()),
        "recipient": pa.array([ctx.recipient] * n, pa.string()),
        "file_sequence_number": pa.array([ctx.fsn] * n, pa.string()),
        "event_index": pa.array(np.arange(first_index, first_index + n, dtype=I64)),
        "event_kind": pa.array(kinds, pa.string()),
        "byte_offset": pa.array(starts_a),
        "byte_length": pa.array(np.asarray(ends, dtype=I64) - starts_a),
        "currency": pa.array([ctx.currency] * n, pa.string()),
        "charge_scale": pa.array([ctx.scale] * n, pa.int8()),
    }
    base_cols.update(cols)
    return pa.table([base_cols[f.name] for f in EVENT_SCHEMA], schema=EVENT_SCHEMA)


def _event_kind(data: bytes, start: int, end: int, paths: _Paths) -> str | None:
    """The kind of an event from its own tag (None when even that is unreadable)."""
    try:
        key, _cons, _pos, _length = read_header(data, start, end)
    except DecodeError:
        return None
    return paths.kind[paths.intern(0, key)]


def _check_tags(
    nodes: _Nodes, paths: _Paths, first_index: int, problems: list[DecodeProblem]
) -> None:
    """Report elements whose tag the release does not define, or of the wrong form."""
    known = np.array([t is not None for t in paths.type_name], dtype=np.bool_)
    form = np.array(paths.constructed, dtype=np.bool_)
    node_known = known[nodes.path]
    parent_known = np.where(nodes.parent >= 0, node_known[np.maximum(nodes.parent, 0)], True)
    unknown = np.flatnonzero(~node_known & parent_known)
    wrong_form = np.flatnonzero(node_known & (nodes.constructed != form[nodes.path]))
    for i in unknown.tolist():
        pid = int(nodes.path[i])
        parent = paths.parent[pid]
        inside = paths.type_name[parent] if parent > 0 else "CallEventDetailList"
        problems.append(
            DecodeProblem(
                int(nodes.header[i]),
                paths.describe(parent) if parent > 0 else "callEventDetails",
                f"unknown tag {tag_name(paths.key[pid])} inside `{inside}`",
                first_index + int(nodes.event[i]),
                inside,
                10,
            )
        )
    for i in wrong_form.tolist():
        pid = int(nodes.path[i])
        problems.append(
            DecodeProblem(
                int(nodes.header[i]),
                paths.describe(pid),
                f"`{paths.type_name[pid]}` has the wrong form (constructed/primitive)",
                first_index + int(nodes.event[i]),
                paths.type_name[pid],
                10,
            )
        )
