"""The validate stage: every file of a processing date → findings, lake rows, the returns.

For each TAP file (in FSN order per partner): file-only TD.57 checks (:mod:`.tap`), sequence
control against the register (copies ignored, reused FSN fatal 201, gaps → warning 200 and a
MissingReturn, RAP FSN expected / unexpected), duplicates against the lake (:mod:`.duplicates`),
then the record identity ``in = accepted + returned + duplicate + late (+ quarantined)``.
Which findings become which RAP / CIBER return is not decided here: the caller passes a
:class:`ReturnWriter` (:mod:`clearing.returns`), called at the point of the day where the
returns are written (one RAP per partner and date; CIBER returns per file).

Idempotent: a re-run of a date deletes the date's rows first and writes the same bytes again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import shutil
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clearing import lake as lakes
from clearing._io import ROW_GROUP, row_groups
from clearing._memory import release_duckdb, release_memory, spill_past
from clearing.codecs import ber
from clearing.codecs.ciber import decode as decode_ciber
from clearing.codecs.ciber import looks_like_ciber
from clearing.codecs.facts import ciber_facts, tap_header_facts
from clearing.config import environment
from clearing.environment import validate_piece_events
from clearing.errors import ClearingError
from clearing.identity import Identity
from clearing.ingest import Fate, delivery_channels, name_kind, quarantine, record_fates
from clearing.store import Store, open_store
from clearing.validate.duplicates import (
    CIBER_KEY,
    HARD_KEY,
    duplicate_rows,
    find_ciber_duplicates,
    hash_keys,
    index_accepted,
    index_history,
)
from clearing.validate.findings import (
    BULK_SCHEMA,
    FINDINGS_SCHEMA,
    REGISTER_FINDINGS_SCHEMA,
    SEVERITIES,
    Finding,
    finding_rows,
    findings_table,
)
from clearing.validate.rules import RuleSet, rules_for
from clearing.validate.tap import PIECE_EVENTS, TapChecked, check_tap, parse_tap_name

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator, Sequence

    from clearing.codecs.ciber import Decoded
    from clearing.codecs.facts import TapHeaderFacts
    from clearing.config import Settings, WorkDir
    from clearing.validate.ciber import CiberChecked

__all__ = [
    "LAKE_SCHEMA",
    "RAP_COLUMNS",
    "CiberResult",
    "FileResult",
    "ReturnWriter",
    "ValidateResult",
    "validate_ciber_file",
    "validate_day",
    "validate_one",
]

LAKE_SCHEMA = lakes.EVENTS_IN_SCHEMA


def finding_dicts(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """Findings as JSON objects (``clearing validate --json``), fatal first, by event."""
    return [
        {
            "severity": f.severity,
            "code": f.code,
            "context": f.context,
            "rule": f.rule,
            "event_index": f.event_index,
            "message": f.message,
            "path": [[p.item_id, p.occurrence, p.level] for p in f.path],
        }
        for f in sorted(
            findings,
            key=lambda f: (
                SEVERITIES.index(f.severity),
                -1 if f.event_index is None else f.event_index,
                f.rule,
            ),
        )
    ]


@dataclass
class FileResult:
    """One input file after validation."""

    checked: TapChecked
    outcome: str  # processed | fatal | copy
    findings: list[Finding]
    status: list[str] = field(default_factory=list)  # per event
    copy_of: str | None = None
    missing: tuple[int, int] | None = None
    rap_file: str | None = None
    # the hard-key hashes of the events looked up (written to the key index, then dropped)
    keys: pa.Table | None = None
    # the file's number of events, once its event table is shrunk for the returns
    events: int | None = None
    # warnings made in bulk, as rows of BULK_SCHEMA (a dense day's duplicate suspects)
    bulk: pa.Table | None = None

    @property
    def file(self) -> str:
        """The input file's name."""
        return self.checked.file

    @property
    def fatal(self) -> bool:
        """Whether a finding rejects the whole file."""
        return any(f.severity == "fatal" for f in self.findings)

    def every_finding(self) -> list[Finding]:
        """:attr:`findings` and the warnings made in bulk (:attr:`bulk`), as objects."""
        return finding_rows(self.findings, self.bulk)

    def counts(self) -> dict[str, int]:
        """The file's event identity counts (none for an ignored copy)."""
        # an ignored copy brings nothing in: its events were counted with the original
        n = self.checked.event_count if self.events is None else self.events
        n = 0 if self.outcome == "copy" else n
        return Identity.of(n, self.status).as_dict()

    def findings_table(self, *, structured: bool = False) -> pa.Table:
        """The file's findings as a findings table (``structured``: with paths)."""
        c = self.checked
        return findings_table(
            self.findings,
            file=c.file,
            source_format="tap",
            sender=c.sender,
            recipient=c.recipient,
            file_sequence_number=c.fsn,
            file_sha256=c.sha256,
            structured=structured,
            bulk=self.bulk,
        )

    def summary(self) -> dict[str, Any]:
        """The file's entry in the validate report and the run manifest."""
        c = self.checked
        return {
            "file": c.file,
            "kind": c.kind,
            "sender": c.sender,
            "recipient": c.recipient,
            "file_sequence_number": c.fsn,
            "test": c.test,
            "outcome": self.outcome,
            "copy_of": self.copy_of,
            "fatal": self.fatal,
            "counts": self.counts(),
            "rap_file": self.rap_file,
            "findings": finding_dicts(self.every_finding()),
        }


@dataclass
class ValidateResult:
    """All files of a processing date."""

    day: dt.date
    files: list[FileResult]
    raps: list[Path]
    ciber: list[CiberResult] = field(default_factory=list)
    quarantined: list[Fate] = field(default_factory=list)  # set aside: nothing of them used
    fates: list[Fate] = field(default_factory=list)  # every input's fate (stage validate)

    def reconciliation(self) -> dict[str, int]:
        """The day's event identity over all TAP and CIBER files (copies left out)."""
        total = Identity()
        for f in self.files:
            if f.outcome == "copy":
                continue
            total += Identity.from_dict(f.counts())
        for c in self.ciber:
            total += Identity.from_dict(c.counts())
        return total.as_dict()


def _stream_of(c: TapChecked) -> tuple[str, str, bool]:
    return c.sender or "", c.recipient or "", c.test


def validate_one(
    data: bytes,
    *,
    file: str,
    settings: Settings,
    day: dt.date,
    state: Store | None = None,
    lake: Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    checked: TapChecked | None = None,
    same_run: bool = False,
    keys: pa.Table | None = None,
) -> FileResult:
    """Validate one TAP / Notification file: file-only rules, then history when given.

    ``checked``: the file-only result of :func:`check_tap` when already computed (the day
    stage runs those in parallel worker processes). ``same_run``: the lake's key index of
    ``day`` holds the files accepted earlier in this run (the nightly), so they are history too.
    ``keys``: the columns of the file's events the duplicate search reads (:data:`KEY_COLUMNS`)
    when ``checked`` holds no events (they were streamed to a sink).
    """
    if checked is None:
        checked = check_tap(data, file=file, settings=settings)
    findings = list(checked.findings)
    rs = rules_for(checked.release, settings.partner(checked.sender).rules)
    result = FileResult(checked=checked, outcome="processed", findings=findings)
    if state is not None and _check_sequence(state, checked, day, rs, result):
        return result
    if result.fatal:
        result.outcome = "fatal"
        result.status = ["returned"] * checked.event_count
        return result
    ev = checked.events if keys is None else keys
    severe_events = {f.event_index for f in findings if f.severity == "severe"}
    late = {f.event_index for f in findings if f.rule == "event.start.late"}
    if lake is not None and con is not None and ev.num_rows:
        # the key columns only: the duplicate search reads nothing else (a whole-table copy
        # of a big file is hundreds of MB)
        candidates = ev.select(["event_index", *HARD_KEY])
        if severe_events - {None}:
            candidates = candidates.filter(
                pa.array(~np.isin(np.arange(ev.num_rows), sorted(severe_events - {None})))
            )
        part = settings.partner(checked.sender)
        window = part.duplicate_window_days or settings.validation.duplicate_window_days
        result.keys = hash_keys(con, candidates)
        found = duplicate_rows(
            con,
            candidates,
            file=file,
            lake=lake,
            day=day,
            window_days=window,
            soft_seconds=settings.validation.soft_duplicate_seconds,
            same_run=same_run,
            keyed=result.keys,
        )
        result.bulk = _duplicate_findings(
            findings, found, ev, rs, file=file, seconds=settings.validation.soft_duplicate_seconds
        )
    dup = {f.event_index for f in findings if f.rule == "event.duplicate"}
    returned = {
        f.event_index for f in findings if f.severity == "severe" and f.event_index is not None
    }
    # a "late" or "duplicate" finding switched to a warning by an override is accepted
    status = np.full(ev.num_rows, "accepted", dtype=object)
    status[sorted(returned)] = "returned"
    status[sorted(returned & dup)] = "duplicate"
    status[sorted(returned & late)] = "late"
    result.status = status.tolist()
    return result


def _duplicate_findings(
    findings: list[Finding],
    found: pa.Table,
    ev: pa.Table,
    rs: RuleSet,
    *,
    file: str,
    seconds: int,
) -> pa.Table | None:
    """The findings of the duplicates ``found`` (:func:`duplicate_rows`) of a file's events.

    A hard duplicate is a :class:`Finding` added to ``findings`` (it is returned). The soft
    suspects are warnings: returned as one table of findings (:meth:`RuleSet.make_many`; a
    dense day has a million of them), or, when an override makes them more than a warning,
    added as findings too.
    """

    def where(of_file: str) -> str:
        return "earlier in this file" if of_file == file else f"in `{of_file}`"

    hard = found.filter(found.column("hard"))
    soft = found.filter(pc.invert(found.column("hard")))
    kinds = ev.column("event_kind")
    for i, of_file, of_index, kind in zip(
        hard.column("event_index").to_pylist(),
        hard.column("of_file").to_pylist(),
        hard.column("of_index").to_pylist(),
        kinds.take(hard.column("event_index")).to_pylist(),
        strict=True,
    ):
        _add(
            findings,
            rs.make(
                "event.duplicate",
                f"same as event {of_index} {where(of_file)}",
                event_index=i,
                event_kind=kind,
            ),
        )
    if soft.num_rows == 0:
        return None
    index, soft_kinds = soft.column("event_index"), kinds.take(soft.column("event_index"))
    of_file = soft.column("of_file")
    places = pc.if_else(
        pc.equal(of_file, file),
        "earlier in this file",
        pc.binary_join_element_wise("in `", of_file, "`", ""),
    )
    messages = pc.binary_join_element_wise(
        "close to event ",
        soft.column("of_index").cast(pa.string()),
        " ",
        places,
        f" (±{seconds} s)",
        "",
    )
    if rs.severity("event.duplicate_suspect") == "warning":
        return rs.make_many("event.duplicate_suspect", messages, index, soft_kinds)
    for i, message, kind in zip(
        index.to_pylist(), messages.to_pylist(), soft_kinds.to_pylist(), strict=True
    ):
        _add(
            findings,
            rs.make("event.duplicate_suspect", message, event_index=i, event_kind=kind),
        )
    return None


def _check_sequence(
    state: Store, checked: TapChecked, day: dt.date, rs: RuleSet, result: FileResult
) -> bool:
    """The FSN checks against the register: gap, reuse, RAP FSN; True when the file is a copy.

    An identical copy of a file already processed is ignored: ``result`` becomes a ``copy``
    with no findings. Otherwise the sequence findings are added to ``result.findings``.
    """
    fsn = int(checked.fsn) if checked.fsn and checked.fsn.isdigit() else None
    if fsn is None or not checked.sender or not checked.recipient:
        return False
    seq = state.inbound.check(
        day,
        sender=checked.sender,
        recipient=checked.recipient,
        test=checked.test,
        fsn=fsn,
        sha256=checked.sha256,
    )
    if seq.copy_of is not None:
        # an identical copy of a file already processed: ignored, logged, nothing returned
        result.outcome, result.copy_of, result.findings = "copy", seq.copy_of, []
        return True
    if seq.reused is not None:
        _add(
            result.findings,
            rs.make(
                "fsn.reused",
                f"FSN {checked.fsn} was processed in `{seq.reused}` with other content",
            ),
        )
    if seq.missing is not None:
        a, b = seq.missing
        result.missing = seq.missing
        gap = rs.make(
            "fsn.gap",
            f"FSN {checked.fsn} but {seq.expected:05d} expected: {a:05d}-{b:05d} missing",
        )
        if gap is not None:
            gap = replace(gap, expected_fsn=seq.expected, gap_start=a, gap_end=b)
        _add(result.findings, gap)
    if seq.previously_fatal and checked.rap_fsn is None:
        _add(
            result.findings,
            rs.make("bci.rap_fsn_expected", f"FSN {checked.fsn} was rejected as fatal"),
        )
    if not seq.previously_fatal and checked.rap_fsn is not None:
        _add(
            result.findings,
            rs.make(
                "bci.rap_fsn_unexpected",
                f"RapFileSequenceNumber {checked.rap_fsn} but FSN {checked.fsn} was never rejected",
            ),
        )
    return False


def _add(findings: list[Finding], f: Finding | None) -> None:
    if f is not None:
        findings.append(f)


RAP_COLUMNS = ("byte_offset", "byte_length", "charge", "camel_fee", "tax", "refund")
"""The event columns the returns read (:func:`clearing.returns.rap.rap_items`): the rest is
dropped once the file's rows are in the lake."""


def _keep_for_returns(r: FileResult, spool: _Spool | None = None) -> None:
    """Shrink a processed file to what its RAP items read: the returned events only.

    The day's loop keeps every file's result until the RAPs are written; with the whole file
    (its bytes and event table) that is the day's TAP in memory. After this ``events`` holds
    the RAP columns of the events a severe finding returns, ``event_index`` their position
    in the file, and ``data`` only their bytes (``byte_offset`` points into it); ``group_bytes``
    keeps the header groups a fatal return echoes.
    """
    c = r.checked
    r.events = c.event_count
    returned = sorted(
        {f.event_index for f in r.findings if f.severity == "severe" and f.event_index is not None}
    )
    if r.outcome == "copy" or r.fatal or not c.event_count:
        returned = []
    source = c.events if spool is None else spool.columns(list(RAP_COLUMNS)) if returned else None
    if source is None or not returned:
        source = pa.table({n: pa.array([], c.events.schema.field(n).type) for n in RAP_COLUMNS})
    ev = source.select(list(RAP_COLUMNS)).take(pa.array(returned, pa.int64()))
    offsets = ev.column("byte_offset").to_pylist()
    lengths = ev.column("byte_length").to_pylist()
    if spool is not None:
        blobs = spool.event_bytes(offsets, lengths)
    else:
        blobs = [c.data[o : o + n] for o, n in zip(offsets, lengths, strict=True)]
    at = np.cumsum([0, *lengths[:-1]], dtype=np.int64) if blobs else np.zeros(0, np.int64)
    ev = ev.set_column(0, "byte_offset", pa.array(at, ev.schema.field("byte_offset").type))
    c.events = ev.append_column("event_index", pa.array(returned, pa.int64()))
    c.data = b"".join(blobs)
    c.group_bytes = {k: v for k, v in c.group_bytes.items() if k != "transferBatch"}


def _tap_order(path: Path) -> tuple[str, str, int, str]:
    named = parse_tap_name(path.name)
    if named:
        return (named[1], "T" if named[0] else "C", int(named[3]), path.name)
    return ("~", "", 0, path.name)


def workers() -> int:
    """Worker processes for the file-only checks: ``$CLEARING_WORKERS``, else the CPUs."""
    return environment().workers


def _check_path(path: str, settings: Settings) -> TapChecked:
    try:
        return check_tap(Path(path).read_bytes(), file=Path(path).name, settings=settings)
    finally:
        ber.forget()  # the worker's next file is decoded without this one's bytes beside it


INDEX_COLUMNS = sorted({*HARD_KEY, *CIBER_KEY, "file", "event_index", "source_format"})
"""The columns of an accepted event the key index reads (:func:`index_accepted`)."""

KEY_COLUMNS = sorted({*INDEX_COLUMNS, "event_kind"} - {"file"})
"""The columns of a streamed file's events held while it is validated: the duplicate search's
and the key index's (:func:`validate_one` ``keys``)."""


class _Spool:
    """A streamed TAP file's events on disk (a :class:`~clearing.validate.tap.EventSink`).

    Each piece is a row group of a Parquet file in ``folder``; only its :data:`KEY_COLUMNS`
    stay in memory. The lake's rows are then made piece by piece from the file. Once decoded,
    the file's bytes are not held either (:meth:`let_go`): its header facts are kept, and the
    bytes of the events it returns are read back from ``source`` (:meth:`event_bytes`).
    """

    def __init__(self, folder: Path, source: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.source = source
        self.path = folder / f"{source.name}.events.parquet"
        self.facts: TapHeaderFacts | None = None
        self._writer: pq.ParquetWriter | None = None
        self._keys: list[pa.Table] = []

    def let_go(self, checked: TapChecked) -> None:
        """Drop the decoded file's bytes from ``checked`` (and the decoder's memo of them).

        A big file's bytes (up to 308 MB at 10M records a night) were held through its
        duplicate search, lake rows and key index, beside everything those hold.
        """
        self.facts = tap_header_facts(checked.data)
        checked.data = b""
        checked.group_bytes = {k: v for k, v in checked.group_bytes.items() if k != "transferBatch"}
        ber.forget()

    def event_bytes(self, offsets: Sequence[int], lengths: Sequence[int]) -> list[bytes]:
        """The bytes of the file's events at ``offsets`` (in order), read back from the file.

        Raises:
            ClearingError: the file is shorter than an event's end (it changed on disk while
                it was validated).
        """
        out: list[bytes] = []
        with self.source.open("rb") as fh:
            for at, n in zip(offsets, lengths, strict=True):
                fh.seek(at)
                blob = fh.read(n)
                if len(blob) != n:
                    msg = (
                        f"{self.source}: {n} bytes expected at offset {at}, {len(blob)} read: "
                        "the file changed on disk while it was validated; validate the date again"
                    )
                    raise ClearingError(msg)
                out.append(blob)
        return out

    def add(self, events: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, events.schema, compression="lz4")
        self._writer.write_table(events, row_group_size=max(1, events.num_rows))
        # the key columns' buffers only: the piece's other columns are freed
        self._keys.append(events.select(KEY_COLUMNS))

    def clear(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self._keys = []

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def keys(self) -> pa.Table:
        """The file's events' :data:`KEY_COLUMNS`."""
        return pa.concat_tables(self._keys) if self._keys else pa.table({})

    def pieces(self) -> Iterator[pa.Table]:
        """The file's event tables, piece by piece, in order."""
        self.close()
        f = pq.ParquetFile(self.path)
        for i in range(f.num_row_groups):
            yield f.read_row_group(i)

    def columns(self, names: list[str]) -> pa.Table:
        """The file's events' ``names`` columns."""
        self.close()
        return pq.read_table(self.path, columns=names)


class _DayFindings:
    """The day's findings, file by file: into the register at once, the lake's file at the end.

    A dense day has over a million duplicate suspects: as one table (and its copies in the
    register's insert) that is a gigabyte held at the end of the stage. Each file's rows go
    to the register when the file is validated and are appended to an Arrow stream in
    ``folder``; the lake's file is written from it a row group at a time (:meth:`write`).
    The files' warnings made in bulk wait on the disk too (:meth:`set_aside`), mapped back at
    the end (:meth:`map_back`): only a report that lists them reads them.
    """

    def __init__(self, folder: Path, state: Store, day: dt.date) -> None:
        self._folder, self._state, self._day = folder, state, day
        self._path = folder / f"{day.isoformat()}.findings.arrows"
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._bulk_path = folder / f"{day.isoformat()}.bulk.arrow"
        self._bulk: pa.ipc.RecordBatchFileWriter | None = None
        self._bulk_rows = 0
        self._set_aside: list[tuple[FileResult, int, int]] = []

    def __enter__(self) -> _DayFindings:
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the stream and remove it (written to the lake by then, or the run failed)."""
        for writer in (self._writer, self._bulk):
            if writer is not None:
                writer.close()
        self._writer = self._bulk = None
        self._path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._bulk_path.unlink(missing_ok=True)

    def add(self, table: pa.Table) -> None:
        """Record ``table`` (:data:`REGISTER_FINDINGS_SCHEMA`) in the register and the stream."""
        self._state.register.record_findings(self._day, table)
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._writer = pa.ipc.new_stream(str(self._path), REGISTER_FINDINGS_SCHEMA)
        self._writer.write_table(table, max_chunksize=ROW_GROUP)

    def set_aside(self, r: FileResult) -> None:
        """Move ``r``'s warnings made in bulk to the disk (:meth:`map_back` maps them back)."""
        if r.bulk is None or r.bulk.num_rows == 0:
            return
        if self._bulk is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._bulk = pa.ipc.new_file(str(self._bulk_path), BULK_SCHEMA)
        self._bulk.write_table(r.bulk, max_chunksize=ROW_GROUP)
        self._set_aside.append((r, self._bulk_rows, r.bulk.num_rows))
        self._bulk_rows += r.bulk.num_rows
        r.bulk = None

    def map_back(self) -> None:
        """Give each file set aside its warnings made in bulk again, mapped from the disk.

        Their pages are read (and held) only when a report lists them.
        """
        if self._bulk is None:
            return
        self._bulk.close()
        self._bulk = None
        table = pa.ipc.open_file(pa.memory_map(str(self._bulk_path))).read_all()
        # the mapping stays readable once the name is gone (POSIX); where it cannot be
        # removed now, the next run's clean-up of the folder does it
        with contextlib.suppress(OSError):
            self._bulk_path.unlink()
        for r, start, n in self._set_aside:
            r.bulk = table.slice(start, n)
        self._set_aside = []

    def write(self, lake: Path) -> None:
        """Write the lake's findings file of the day from the stream (:data:`FINDINGS_SCHEMA`)."""
        if self._writer is None:
            lakes.write(lake, lakes.FINDINGS, self._day, FINDINGS_SCHEMA.empty_table())
            return
        self._writer.close()
        self._writer = None
        with pa.OSFile(str(self._path)) as fh:
            batches = (b.select(FINDINGS_SCHEMA.names) for b in pa.ipc.open_stream(fh))
            lakes.write_pieces(
                lake, lakes.FINDINGS, self._day, row_groups(batches, FINDINGS_SCHEMA)
            )


def _spool_folder(workdir: WorkDir) -> Path:
    """Where streamed files' pieces are spooled while validated."""
    return workdir.root / "tmp" / "events"


def _streams(path: Path, settings: Settings) -> int | None:
    """The piece size (events) ``path`` is streamed in, None when it is held whole.

    A file whose decoded events (about :data:`DECODED_PER_BYTE` × its size) would take over a
    quarter of ``[performance] memory_mb`` is streamed: the duplicate search's DuckDB has
    another quarter, the lake writes and the day's results the rest.
    """
    forced = validate_piece_events()
    if forced is not None:
        return forced
    held = path.stat().st_size * DECODED_PER_BYTE
    return PIECE_EVENTS if held > settings.performance.memory_mb * 2**20 // 4 else None


DECODED_PER_BYTE = 4
"""Memory a TAP file takes while it is checked, per byte of the file: its bytes, its event
table (~1.6×) and the decoder's transient arrays (measured: a 60 MB file of 240 000 events
added 181 MB to the process over its bytes)."""


def _checked(files: Sequence[Path], settings: Settings) -> Iterator[TapChecked | None]:
    """The file-only checks of ``files`` in order: from worker processes when it pays.

    Decoding and the file-only rules of one file do not depend on any other file, so they
    run in parallel (a process pool, ``spawn``: no forked DuckDB handles); what depends on
    history (sequence control, duplicates) stays in this process, in file order. Files too
    big for several to be held at once within ``[performance] memory_mb`` are checked here,
    one at a time (10M records a night: 6 GB in three processes against 2-3 GB in one).
    """
    env = environment()
    n = min(env.workers, len(files))
    sizes = [p.stat().st_size for p in files]
    # a file being checked or waiting holds about DECODED_PER_BYTE × its size; with n workers
    # up to 2n + 1 files are (n in the workers, n waiting, one validated): the pool only when
    # that fits in half the memory budget (the other half: the duplicate search, the lake)
    held = (2 * n + 1) * max(sizes, default=0) * DECODED_PER_BYTE
    budget = settings.performance.memory_mb * 2**20 // 2
    if n < 2 or sum(sizes) < env.parallel_min_bytes or held > budget:
        yield from (None for _ in files)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        # at most `n` files ahead of the one being consumed: results wait in this process's
        # memory, so a day of many big files does not pile up (Executor.map submits all)
        pending: deque[Future[TapChecked]] = deque()
        queue = iter(files)
        for path in itertools.islice(queue, n):
            pending.append(pool.submit(_check_path, str(path), settings))
        while pending:
            done = pending.popleft().result()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append(pool.submit(_check_path, str(nxt), settings))
            yield done


class ReturnWriter(Protocol):
    """What :func:`validate_day` calls to write the day's returns (:mod:`clearing.returns`)."""

    def tap_returns(
        self,
        workdir: WorkDir,
        day: dt.date,
        results: Sequence[FileResult],
        state: Store,
        settings: Settings,
    ) -> list[Path]:
        """Write the RAPs of the day's TAP files, record them; set each file's ``rap_file``.

        Returns:
            The RAP files written, in the order written.
        """
        ...

    def ciber_returns(
        self,
        workdir: WorkDir,
        checked: CiberChecked,
        result: CiberResult,
        settings: Settings,
        sequence: int,
    ) -> None:
        """Write the CIBER returns of one validated CIBER file; add their names to ``result``."""
        ...


def _validate_file(
    workdir: WorkDir,
    day: dt.date,
    path: Path,
    data: bytes,
    checked: TapChecked,
    spool: _Spool | None,
    state: Store,
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    duck_mb: int,
) -> FileResult:
    """Validate one checked TAP file of the day: its lake rows, keys and register row.

    ``spool``: where its events were streamed (``checked`` then holds none).
    """
    r = validate_one(
        data,
        file=path.name,
        settings=settings,
        day=day,
        state=state,
        lake=workdir.lake,
        con=con,
        checked=checked,
        same_run=True,
        keys=spool.keys() if spool is not None else None,
    )
    # the duplicate search's blocks go back before the lake rows are made
    release_duckdb(con, duck_mb)
    release_memory()
    c = r.checked
    if r.outcome != "copy" and c.event_count:
        partner = c.sender or "unknown"
        status = pa.array(r.status, pa.string())
        if spool is None:
            table = _lake_table(c, status)
            lakes.write(
                workdir.lake, lakes.EVENTS_IN, day, table, partner=partner, source=path.name
            )
            # the index's columns only: a filtered copy of the whole table is as big again
            accepted = table.select(INDEX_COLUMNS)
            del table
        else:
            lakes.write_pieces(
                workdir.lake,
                lakes.EVENTS_IN,
                day,
                _lake_pieces(spool.pieces(), c.file, status),
                partner=partner,
                source=path.name,
            )
            keys = spool.keys()
            accepted = keys.append_column("file", pa.array([c.file] * keys.num_rows, pa.string()))
            accepted = accepted.select(INDEX_COLUMNS)
        # (none filtered out when every event is accepted, as on most files)
        is_accepted = pc.equal(status, "accepted")
        if not pc.all(is_accepted).as_py():
            accepted = accepted.filter(is_accepted)
        # then its keys: a later file of this run finds them
        index_accepted(
            con, workdir.lake, day, accepted, partner=partner, source=path.name, hashed=r.keys
        )
        del accepted
    r.keys = None  # the hashes are in the index now (or there was nothing to index)
    state.register.record_file(day, _file_row(r, spool))
    # the file's rows are in the lake now: keep only what its RAP items need, so that
    # the day's files do not pile up in memory until the returns are written
    _keep_for_returns(r, spool)
    return r


def _lake_pieces(pieces: Iterator[pa.Table], file: str, status: pa.Array) -> Iterator[pa.Table]:
    """The lake rows of a streamed file's pieces: each with its ``file`` and ``status``."""
    at = 0
    for piece in pieces:
        n = piece.num_rows
        yield piece.append_column("file", pa.array([file] * n, pa.string())).append_column(
            "status", status.slice(at, n)
        )
        at += n


def validate_day(
    workdir: WorkDir,
    day: dt.date,
    inputs: Sequence[Path],
    returns: ReturnWriter | None = None,
    *,
    settings: Settings | None = None,
) -> ValidateResult:
    """Validate the TAP and CIBER files of ``day``: findings, lake rows, and the returns.

    Args:
        workdir: the work folder (state, lake, ``out/``).
        day: the processing date.
        inputs: the day's TAP and CIBER files.
        returns: writes the RAPs / CIBER returns (:data:`clearing.returns.WRITER`); without it
            none are written and ``ValidateResult.raps`` is empty.
        settings: the loaded ``clearing.toml`` (read when not given).

    Returns:
        Every file's result, the RAPs written and the CIBER results.
    """
    settings = settings or workdir.settings()
    ciber_inputs = [p for p in inputs if _is_ciber(p)]
    files = sorted((p for p in inputs if p not in ciber_inputs), key=_tap_order)
    results: list[FileResult] = []
    written: list[Path] = []
    provenance = _Provenance(workdir, settings)
    with (
        open_store(workdir.db) as state,
        duckdb.connect() as con,
        _DayFindings(_spool_folder(workdir), state, day) as found,
    ):
        # a big file's duplicate search spills to disk past a quarter of the memory budget
        # (the file's bytes and decoded events take about as much again)
        duck_mb = settings.performance.memory_mb // 4
        spill_past(con, workdir.root / "tmp" / "validate", duck_mb)
        state.register.forget(day)
        # pieces a killed run left behind (the run holds the work folder's lock: none is ours)
        shutil.rmtree(_spool_folder(workdir), ignore_errors=True)
        # a re-run rewrites the date's lake partition from scratch
        for ds in (lakes.EVENTS_IN, lakes.KEYS_IN, lakes.KEYS_CIBER):
            lakes.clear(workdir.lake, ds, day)
        # a work folder of a release before the key indexes: index its window first
        index_history(con, workdir.lake, day, settings.largest_duplicate_window_days())
        for path, pre in zip(files, _checked(files, settings), strict=True):
            data = pre.data if pre is not None else path.read_bytes()
            piece = None if pre is not None else _streams(path, settings)
            spool = None if piece is None else _Spool(_spool_folder(workdir), path)
            try:
                checked = pre or check_tap(
                    data,
                    file=path.name,
                    settings=settings,
                    sink=spool,
                    piece_events=piece or PIECE_EVENTS,
                )
                header = {checked.header_sender} if checked.header_sender else set()
                if provenance.refuses(path, checked.sha256, header):
                    continue  # no lake rows, no RAP, no FSN consumed
                if spool is not None:
                    spool.let_go(checked)
                    data = b""
                r = _validate_file(
                    workdir, day, path, data, checked, spool, state, con, settings, duck_mb
                )
            finally:
                if spool is not None:
                    spool.clear()
                # the decoder remembers the ends of a file's indefinite-length elements, and
                # so its bytes: not beside the next file's (a 10M night: up to 308 MB)
                ber.forget()
            if r.outcome != "copy":
                # the register keeps the structured FSN fields; the lake dataset its own schema
                found.add(r.findings_table(structured=True))
                found.set_aside(r)
            results.append(r)
            del data, checked
            # what the file's decoding and duplicate search freed goes back before the next
            # file (else the next file's peak adds up with this one's leftovers)
            release_duckdb(con, duck_mb)
            release_memory()
        # the returns (RAPs), written by the caller's policy: one per partner and day
        if returns is not None:
            written = returns.tap_returns(workdir, day, results, state, settings)
        for r in results:
            if r.rap_file:
                state.register.set_rap_file(day, r.file, r.rap_file)
        ciber = _ciber_day(workdir, day, ciber_inputs, settings, state, con, returns, provenance)
        for c in ciber:
            found.add(
                findings_table(c.findings, file=c.file, source_format="ciber", structured=True)
            )
        found.write(workdir.lake)
        found.map_back()
    # the fates, once the state is closed: a copy of each file set aside into failed/<D>/
    # (the claimed input stays, so a re-run of the date decides the same)
    set_aside = [
        quarantine(
            workdir,
            day,
            path,
            partner=channel,
            reason=reason,
            hint=hint,
            stage="validate",
            keep=True,
        )
        for path, channel, reason, hint in provenance.set_aside
    ]
    fates = [
        *(_tap_fate(workdir, day, r, inputs, provenance) for r in results),
        *(_ciber_fate(workdir, day, c, inputs, provenance) for c in ciber),
        *set_aside,
    ]
    record_fates(workdir, day, "validate", fates)
    return ValidateResult(
        day=day,
        files=results,
        raps=written,
        ciber=ciber,
        quarantined=set_aside,
        fates=fates,
    )


def _is_ciber(path: Path) -> bool:
    """A CIBER input: by its name; a file of no partner name by its first bytes."""
    kind = name_kind(path.name)
    if kind is not None:
        return kind[0] == "ciber"
    with path.open("rb") as fh:
        return looks_like_ciber(fh.read(64))


class _Provenance:
    """Whose file is it: the sender of its name, of its header and the channel that brought it.

    The three must agree (a file an operator dropped into ``inbox/`` has no channel: name and
    header only), and the sender must be a configured partner (an empty ``[partners]`` table
    has none: it fails closed). A file that fails is set aside (:attr:`set_aside`) and nothing
    of it is used.
    """

    def __init__(self, workdir: WorkDir, settings: Settings) -> None:
        self.settings = settings
        self.channels = delivery_channels(workdir)
        self.set_aside: list[tuple[Path, str | None, str, str]] = []

    def channel(self, path: Path, sha256: str) -> str | None:
        """The partner whose channel delivered these bytes under this name (None: no channel)."""
        return self.channels.get((path.name, sha256))

    def refuses(self, path: Path, sha256: str, header: set[str]) -> bool:
        """Whether the file is set aside: its name, header and channel disagree on its sender."""
        channel = self.channel(path, sha256)
        kind = name_kind(path.name)
        named = kind[1] if kind else None
        by = f"delivered by {channel}'s channel" if channel else "dropped into inbox/"
        problem: tuple[str, str] | None = None
        if named is None:
            # not a partner file name (a direct call on a file of any name; the claim of a
            # night quarantines those): no sender to compare
            return False
        if channel is not None and channel != named:
            problem = (
                f"delivered by {channel}'s channel, claims {named}",
                f"ask {channel} why it sent a file of {named}; {named}'s files come through "
                f"{named}'s own channel",
            )
        elif other := sorted(header - {named}):
            problem = (
                f"{by}, named as {named}'s but its header sender is {', '.join(other)}",
                f"ask {named} to send it again with the header matching its name",
            )
        elif named not in self.settings.partners:
            problem = (
                f"{named} is not a configured partner ({by}; no [partners.{named}] in "
                "clearing.toml)",
                f"if {named} is a partner, add it to clearing.toml and put the file back into "
                "inbox/; otherwise find out who sent it",
            )
        if problem is None:
            return False
        self.set_aside.append((path, channel, *problem))
        return True


def _where(workdir: WorkDir, name: str, inputs: Sequence[Path]) -> str | None:
    for p in inputs:
        if p.name == name:
            try:
                return p.resolve().relative_to(workdir.root.resolve()).as_posix()
            except ValueError:
                return str(p)
    return None


def _tap_fate(
    workdir: WorkDir, day: dt.date, r: FileResult, inputs: Sequence[Path], prov: _Provenance
) -> Fate:
    c = r.checked
    where = _where(workdir, r.file, inputs)
    channel = prov.channels.get((r.file, c.sha256))
    if r.outcome == "copy":
        return Fate(
            r.file, channel, "copy_ignored", "validate", f"a copy of `{r.copy_of}`", "", where
        )
    if r.fatal:
        first = next(f for f in r.findings if f.severity == "fatal")
        reason = f"fatal {first.rule}: {first.message}"
        return Fate(r.file, channel, "returned", "validate", reason, "", where)
    return Fate(r.file, channel, "processed", "validate", "", "", where)


def _ciber_fate(
    workdir: WorkDir, day: dt.date, c: CiberResult, inputs: Sequence[Path], prov: _Provenance
) -> Fate:
    where = _where(workdir, c.file, inputs)
    channel = prov.channels.get((c.file, c.sha256))
    if c.batches and c.copies == c.batches:
        return Fate(c.file, channel, "copy_ignored", "validate", "every batch a copy", "", where)
    if c.batches and c.rejected == c.batches:
        return Fate(c.file, channel, "returned", "validate", "every batch rejected", "", where)
    return Fate(c.file, channel, "processed", "validate", "", "", where)


def _lake_table(c: TapChecked, status: pa.Array) -> pa.Table:
    n = c.events.num_rows
    return c.events.append_column("file", pa.array([c.file] * n, pa.string())).append_column(
        "status", status
    )


def _file_row(r: FileResult, spool: _Spool | None = None) -> dict[str, Any]:
    c = r.checked
    counts = r.counts()
    totals = c.totals
    # the header as declared (settle reads it from here); a streamed file's, read at decoding
    facts = spool.facts if spool is not None else tap_header_facts(c.data)
    return {
        "file": c.file,
        "sha256": c.sha256,
        "format": c.kind,
        "sender": c.sender,
        "recipient": c.recipient,
        "fsn": c.fsn,
        "test": c.test,
        "rap_fsn": c.rap_fsn,
        "outcome": r.outcome,
        "copy_of": r.copy_of,
        "events": counts["in"],
        "accepted": counts["accepted"],
        "returned": counts["returned"],
        "duplicate": counts["duplicate"],
        "late": counts["late"],
        "quarantined": counts["quarantined"],
        "charge": totals.get("charge", 0),
        "charge_scale": c.tap_decimal_places,
        "currency": c.tap_currency or ("SDR" if c.kind == "tap" else None),
        "audit_charge": facts.total_charge if facts is not None else None,
        "findings": len(r.findings) + (r.bulk.num_rows if r.bulk is not None else 0),
        "rap_file": None,
        **_header_columns(facts),
        **({k: totals.get(k, 0) for k in _RECOMPUTED} if c.kind == "tap" else {}),
    }


def _header_columns(facts: TapHeaderFacts | None) -> dict[str, Any]:
    """The register's header columns of a TAP file or Notification (None: header unreadable)."""
    if facts is None:
        return {"header_kind": None}
    return {
        "header_kind": facts.kind,
        "file_available": facts.file_available,
        "file_created": facts.file_created,
        "tap_currency": facts.tap_currency,
        "tap_decimal_places": facts.tap_decimal_places,
        "audit_tax": facts.total_tax,
        "audit_discount": facts.total_discount,
        "audit_events": facts.event_count,
    }


_RECOMPUTED = ("recomputed_charge", "recomputed_tax", "recomputed_discount")
"""The audit totals of a TransferBatch recomputed from its decoded events (refunds apart):
``recomputed_charge`` is Σ charge + CAMEL fee, ``recomputed_tax`` Σ tax,
``recomputed_discount`` Σ discount (fixed discounts of the accounting group not counted);
summed by :func:`check_tap` (``TapChecked.totals``)."""


@dataclass
class CiberResult:
    """One CIBER input file after validation (record returns and batch rejects)."""

    file: str
    findings: list[Finding]
    status: list[str]
    events: pa.Table
    outcome: str
    returns: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # batch sequence gaps (anomalies)
    sha256: str = ""
    batches: int = 0  # batches in the file
    copies: int = 0  # batches that are copies of batches accepted before
    rejected: int = 0  # batches rejected whole
    batch_outcomes: dict[int, str] = field(default_factory=dict)  # batch sequence control

    @property
    def fatal(self) -> bool:
        """Whether a finding rejects the whole file."""
        return any(f.severity == "fatal" for f in self.findings)

    def counts(self) -> dict[str, int]:
        """The file's event identity counts."""
        return Identity.of(self.events.num_rows, self.status).as_dict()

    def parties(self) -> tuple[str | None, str | None, list[str]]:
        """Sender and recipient (when every record names the same) and the batch numbers.

        A CIBER file has no one sender / recipient / FSN of its own: its batches carry them.
        The batch sequence numbers are in file order; an unreadable file has none of them.
        """
        names = self.events.column_names
        if "sender" not in names:
            return None, None, []
        sides = []
        for column in ("sender", "recipient"):
            values = set(self.events.column(column).drop_null().to_pylist())
            sides.append(values.pop() if len(values) == 1 else None)
        batches = self.events.column("file_sequence_number").drop_null().to_pylist()
        return sides[0], sides[1], list(dict.fromkeys(str(b) for b in batches))

    def summary(self) -> dict[str, Any]:
        """The file's entry in the validate report and the run manifest."""
        sender, recipient, batches = self.parties()
        return {
            "file": self.file,
            "kind": "ciber",
            "sender": sender,
            "recipient": recipient,
            "batches": batches,
            "file_sequence_number": None,
            "test": False,
            "outcome": self.outcome,
            "copy_of": None,
            "fatal": self.fatal,
            "counts": self.counts(),
            "rap_file": ", ".join(self.returns) or None,
            "findings": finding_dicts(self.findings),
        }


def validate_ciber_file(
    data: bytes, *, file: str, settings: Settings, day: dt.date
) -> tuple[CiberResult, Any]:
    """CIBER rules (ciber.md §7) → findings and per-record status."""
    from clearing.validate.ciber import check_ciber
    from clearing.validate.ciber_clock import with_utc_start

    checked = check_ciber(data, file=file, settings=settings, today=day)
    # a UTC start from the partner's offset or the records' time zone codes (ciber_clock)
    ev = with_utc_start(checked.events, checked.decoded, settings)
    n = ev.num_rows
    status = ["accepted"] * n
    if checked.decoded is not None and n:
        seqs = checked.decoded.batches.column("batch_sequence_number").to_pylist()
        rejected = {f"{s:03d}" for s, r in zip(seqs, checked.rejected, strict=True) if r and s}
        fsn = ev.column("file_sequence_number").to_pylist()
        for i in range(n):
            if fsn[i] in rejected:
                status[i] = "returned"
    for f in checked.findings:
        if f.severity == "severe" and f.event_index is not None and f.event_index < n:
            kind = {10: "late", 11: "duplicate"}.get(f.code, "returned")
            if status[f.event_index] == "accepted":
                status[f.event_index] = kind
    outcome = "fatal" if checked.unreadable else "processed"
    return CiberResult(file, list(checked.findings), status, ev, outcome), checked


def _ciber_day(
    workdir: WorkDir,
    day: dt.date,
    inputs: Sequence[Path],
    settings: Settings,
    state: Store,
    con: duckdb.DuckDBPyConnection,
    returns: ReturnWriter | None,
    provenance: _Provenance | None = None,
) -> list[CiberResult]:
    out: list[CiberResult] = []
    for path in sorted(inputs):
        data = path.read_bytes()
        r, checked = validate_ciber_file(data, file=path.name, settings=settings, day=day)
        r.sha256 = hashlib.sha256(data).hexdigest()
        if provenance is not None and _ciber_set_aside(provenance, path, r, checked):
            continue  # no lake rows, no return, no batch sequence consumed
        _ciber_sequences(state, day, checked, r, settings)
        if checked.decoded is not None:
            r.batches = checked.decoded.batches.num_rows
            done = r.batch_outcomes
            r.rejected = sum(
                1
                for i, whole in enumerate(checked.rejected)
                if done.get(i) != "copy" and (whole or done.get(i) == "reused")
            )
            r.copies = sum(1 for o in done.values() if o == "copy")
        _ciber_duplicates(workdir, day, r, settings, con)
        if r.events.num_rows:
            sender = r.events.column("sender")[0].as_py() or "unknown"
            table = r.events.append_column(
                "file", pa.array([path.name] * r.events.num_rows, pa.string())
            ).append_column("status", pa.array(r.status, pa.string()))
            lakes.write(workdir.lake, lakes.EVENTS_IN, day, table, partner=sender, source=path.name)
            accepted = table.filter(pc.equal(table.column("status"), "accepted"))
            index_accepted(con, workdir.lake, day, accepted, partner=sender, source=path.name)
        if returns is not None:
            returns.ciber_returns(workdir, checked, r, settings, len(out) + 1)
            for name in r.returns:  # the facts of each return as written
                blob = (workdir.out / "ciber_returns" / name).read_bytes()
                state.register.record_ciber_return(day, _ciber_return_row(name, path.name, blob))
        counts = r.counts()
        state.register.record_file(
            day,
            {
                "file": path.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "format": "ciber",
                "outcome": r.outcome,
                "events": counts["in"],
                "accepted": counts["accepted"],
                "returned": counts["returned"],
                "duplicate": counts["duplicate"],
                "late": counts["late"],
                "quarantined": counts["quarantined"],
                "findings": len(r.findings),
                "rap_file": ", ".join(r.returns) or None,
                **_ciber_columns(data, checked.decoded),
            },
        )
        out.append(r)
    return out


def _ciber_set_aside(
    provenance: _Provenance, path: Path, result: CiberResult, checked: CiberChecked
) -> bool:
    """Whether a CIBER file is set aside: unreadable, or not its name's sender's batches.

    A file that cannot be decoded has no batch to return (``ciber.file.unreadable``): it is
    quarantined for an analyst. The sending SID/BID of every batch header must be the
    ``<from>`` of the file name (and of the channel that delivered it).
    """
    decoded = checked.decoded
    if decoded is None:
        first = next(iter(result.findings), None)
        why = first.message if first is not None else "the file cannot be decoded"
        kind = name_kind(path.name)
        sender = kind[1] if kind else "the sender"
        provenance.set_aside.append(
            (
                path,
                provenance.channel(path, result.sha256),
                f"not CIBER 2.5 batches, no batch can be read, so nothing can be returned: {why}",
                f"ask {sender} to send `{path.name}` again; an analyst can read it in failed/",
            )
        )
        return True
    senders = {s for s in decoded.batches.column("sending_sid_bid").to_pylist() if s}
    return provenance.refuses(path, result.sha256, senders)


def _event_batches(checked: CiberChecked) -> np.ndarray[Any, Any]:
    """The batch index of every event of a decoded CIBER file (by byte offset)."""
    from clearing.validate.ciber import rows_by_batch

    assert checked.decoded is not None
    headers = rows_by_batch(checked.decoded, ("01", "02"))
    starts = np.asarray([headers[i]["byte_offset"] for i in sorted(headers)], dtype=np.int64)
    offsets = checked.events.column("byte_offset").to_numpy()
    found: np.ndarray[Any, Any] = np.searchsorted(starts, offsets, side="right") - 1
    return found


def _ciber_sequences(
    state: Store, day: dt.date, checked: CiberChecked, result: CiberResult, settings: Settings
) -> None:
    """Batch sequence control per sending → receiving SID/BID pair (ciber.md §2).

    Every batch of an initial issue or of returned records (indicator 1 or 2) is compared with
    the accepted batches of its pair (:meth:`clearing.store.ciber_batches.CiberBatches.check`)
    and recorded: an exact copy is ignored (its records ``duplicate``, its findings dropped, a
    warning: nothing paid, nothing returned); a reused sequence with other content is rejected
    whole (Batch Reject Reason Code 08, its records ``returned``); a gap is a warning and an
    anomaly of the run (``result.gaps``).
    """
    from clearing.validate.ciber import (
        BATCH_COPY,
        SEQUENCE_GAP,
        SEQUENCE_REUSED,
        batch_sha256,
        rows_by_batch,
    )

    decoded = checked.decoded
    if decoded is None:
        return
    ev_batch = _event_batches(checked)
    trailers = rows_by_batch(decoded, ("98", "97"))
    headers = rows_by_batch(decoded, ("01", "02"))
    for b in decoded.batches.to_pylist():
        i, seq = b["batch_index"], b["batch_sequence_number"]
        sender, recipient = b["sending_sid_bid"], b["receiving_sid_bid"]
        if not seq or not sender or not recipient or b["original_return_indicator"] not in "12":
            continue
        start = headers[i]["byte_offset"]
        end = trailers[i]["byte_offset"] + trailers[i]["byte_length"]
        rows = np.flatnonzero(ev_batch == i).tolist()
        sha = batch_sha256(checked.data, decoded, i)
        check = state.ciber_batches.check(
            day,
            sender=sender,
            recipient=recipient,
            sequence=seq,
            sha256=sha,
            window_days=settings.duplicate_window_days(sender),
        )
        pair = f"{sender} → {recipient}"
        outcome = "rejected" if checked.rejected[i] else "accepted"
        of = check.copy_of or check.reused
        if check.copy_of is not None:
            outcome = "copy"
            mine = set(rows)
            result.findings = [
                f
                for f in result.findings
                if f.event_index not in mine
                and not (
                    f.event_index is None
                    and f.byte_offset is not None
                    and start <= f.byte_offset < end
                )
            ]
            for e in rows:
                result.status[e] = "duplicate"
            message = (
                f"batch {seq:03d} of {pair} is a copy of the batch accepted in "
                f"`{check.copy_of[0]}` ({check.copy_of[1]}): ignored, not paid, not returned"
            )
            result.findings.append(
                Finding(
                    BATCH_COPY, 0, "warning", "batch_sequence_number", message, byte_offset=start
                )
            )
        elif check.reused is not None:
            outcome = "reused"
            for e in rows:
                result.status[e] = "returned"
            message = (
                f"batch sequence {seq:03d} of {pair} was used by the batch accepted in "
                f"`{check.reused[0]}` ({check.reused[1]}) with other content: rejected (08)"
            )
            result.findings.append(
                Finding(
                    SEQUENCE_REUSED, 8, "fatal", "batch_sequence_number", message, byte_offset=start
                )
            )
        elif check.missing is not None:
            a, z = check.missing
            missing = f"{a:03d}" if a == z else f"{a:03d}-{z:03d}"
            message = (
                f"batch sequence {seq:03d} of {pair} but {check.expected:03d} expected: "
                f"{missing} missing"
            )
            result.findings.append(
                Finding(
                    SEQUENCE_GAP, 0, "warning", "batch_sequence_number", message, byte_offset=start
                )
            )
            result.gaps.append(message)
        result.batch_outcomes[i] = outcome
        state.ciber_batches.record(
            day,
            {
                "file": result.file,
                "batch_index": i,
                "sender": sender,
                "recipient": recipient,
                "sequence": seq,
                "original_return_indicator": b["original_return_indicator"],
                "sha256": sha,
                "records": len(rows),
                "outcome": outcome,
                "copy_of": of[0] if of else None,
                "copy_of_date": of[1] if of else None,
            },
        )


def _ciber_duplicates(
    workdir: WorkDir,
    day: dt.date,
    result: CiberResult,
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Records of ``result`` already accepted in another file: returned as duplicates.

    Another file of the day, or of another date within the window: a severe
    ``ciber.record.duplicate`` finding (4/11, field 042) and status ``duplicate``.
    """
    from clearing.validate.ciber import ciber_rules, rule_severity

    ev = result.events
    candidates = [i for i, s in enumerate(result.status) if s == "accepted"]
    if not candidates:
        return
    senders = ev.column("sender").to_pylist()
    first = next((s for s in senders if s), None)
    rule = ciber_rules()["ciber.record.duplicate"]
    offsets = ev.column("byte_offset").to_pylist()
    for d in find_ciber_duplicates(
        con,
        ev,
        candidates,
        lake=workdir.lake,
        day=day,
        window_days=settings.duplicate_window_days(first),
    ):
        severity = rule_severity(settings, senders[d.event_index], rule)
        if severity is None:
            continue
        message = (
            f"repeats record {d.of_index} of `{d.of_file}` (processed {d.of_date}): "
            f"same {', '.join(CIBER_KEY)}"
        )
        result.findings.append(
            Finding(
                rule.rule,
                rule.code,
                severity,
                "record",
                message,
                event_index=d.event_index,
                byte_offset=offsets[d.event_index],
            )
        )
        if severity != "warning":
            result.status[d.event_index] = "duplicate"


def _ciber_columns(data: bytes, decoded: Decoded | None) -> dict[str, Any]:
    """The register's facts of a CIBER input: parties, batch totals, records' charge, currency."""
    if decoded is None or not (data[:1].isdigit() and looks_like_ciber(data)):
        return {"header_kind": None}
    facts = ciber_facts(decoded)
    return {
        "header_kind": "ciber",
        "sender": facts.sender,
        "recipient": facts.recipient,
        "charge": facts.charge,
        "charge_scale": 2,
        "currency": facts.currency,
        "file_created": facts.created,
        "audit_charge": facts.total,
        "recomputed_charge": facts.detail_total,
    }


def _ciber_return_row(name: str, input_file: str, blob: bytes) -> dict[str, Any]:
    """The ``ciber_returns_out`` row of a CIBER return we wrote (its totals as written)."""
    row: dict[str, Any] = {
        "file": name,
        "input_file": input_file,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    try:
        facts = ciber_facts(decode_ciber(blob, file=name))
    except ClearingError:
        return row
    return row | {
        "events": facts.events,
        "currency": facts.currency,
        "audit_charge": facts.total,
        "recomputed_charge": facts.detail_total,
    }
