"""Issue 14, the corpus test: one bad delivery never stops the night.

Every hostile case of :mod:`tests.hostile.corpus` is dropped beside the good files of a sample
world, and the night is run once (:mod:`tests.hostile.conftest`). What it must show, each
compared with the same night of an untouched copy of the world (never with the run under test):

* it ends, within 3 × the clean night's wall time + 2 minutes, with exit code 1 (anomalies):
  not 0, not 2/3/4;
* every good output is the clean night's: the same bytes of every file in ``out/`` and of
  what was sent, the same lake rows, the same money and record identity in the manifest, the
  same workbook figures — but for what the hostile entries add on purpose (our fatal / severe
  RAP to FRAF9, CIBER returns to 04172 for its hostile files, their findings and rows);
* every hostile entry has exactly one fate in the manifest's ``entries``, the one the design
  gives it, with a reason; the quarantined ones are in ``failed/<D>/`` with a reason file;
* nothing is left in ``inbox/``; no local file is read through a symlink out of the exchange;
* a rerun of the night converges (same outputs, same exit code, one fate per entry);
* the next night runs as the clean world's next night: the same outputs and fates, plus
  only a ``refused`` again for the entries that are still on the server and cannot be fetched.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearing.names import printable_name

from .conftest import DAY, NEXT, snapshot
from .corpus import SECRET_MARK, secret_bytes

if TYPE_CHECKING:
    from .conftest import Nights, Run
    from .corpus import HostileCase

# what the hostile entries may add to the outputs, on purpose
TOUCHED = {"FRAF9", "04172"}  # the channels whose files reach the register (returned/processed)
ALLOWED_NEW = (
    re.compile(r"(out/rap|exchange/FRAF9/from_hkgcl)/R[CT]HKGCLFRAF9[0-9]{5}"),
    re.compile(r"(out/ciber_returns|exchange/04172/from_hkgcl)/CIBER_60099_04172_[0-9]{8}_[0-9]{3}_RET\.dat"),
)  # fmt: skip
WORKBOOK_SHEETS_EXACT = (
    "Outbound reconciliation",
    "CDR reconciliation",
    "IOT check",
    "IOT breaches",
    "Re-rate deltas",
    "Returns",
    "RAP received",
)
WORKBOOK_SHEETS_PER_FILE = ("File register", "Reconciliation")
WORKBOOK_SHEETS_PER_PARTNER = ("Sequences", "Validation", "Reconciliation by partner", "RAP")
WALL_CLOCK_COLUMNS = {"Received / sent (UTC)", "Age (h)", "Events over limit"}
"""File register columns that read the clock (when a file was received or sent)."""
PARTNERS_SHEET_COLUMNS = (
    "Partner",
    "Accepted",
    "Accepted charge in (SDR)",
    "Files out",
    "Events out",
    "Charge out (SDR)",
    "IOT breaches",
)


# ---------------------------------------------------------------------------------------------
# helpers


def _names(nights: Nights) -> set[str]:
    """The hostile entries' names as the manifest lists them (escaped when not printable)."""
    return {printable_name(c.name) for c in nights.cases}


def _hostile_in_name(text: str, nights: Nights) -> bool:
    return any(c.name in text or printable_name(c.name) in text for c in nights.cases)


def _allowed_new(rel: str) -> bool:
    return any(p.fullmatch(rel) for p in ALLOWED_NEW)


def _sent_and_out(root: Path) -> dict[str, bytes]:
    """``out/`` and what was put in the partners' ``from_hkgcl`` folders."""
    files = snapshot(root, ("out",))
    for folder in sorted((root / "exchange").glob("*/from_hkgcl")):
        files.update(snapshot(root, (str(folder.relative_to(root)),)))
    return files


def _table(data: bytes) -> pa.Table:
    return pq.read_table(BytesIO(data))


def _rows(table: pa.Table) -> Counter[tuple[Any, ...]]:
    cols = [table.column(n).to_pylist() for n in table.column_names]
    return Counter(tuple(repr(v) for v in row) for row in zip(*cols, strict=True))


def _sheets(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    wb = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
    try:
        return {
            ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets
        }
    finally:
        wb.close()


def _table_rows(rows: list[tuple[Any, ...]]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """(header, data rows) of a sheet: the header is the 4th row (title, subtitle, blank).

    Totals rows are left out: the hostile entries' own rows count in them.
    """
    data = [r for r in rows[4:] if any(v is not None for v in r) and r[0] != "Total"]
    return rows[3], data


def _compare_workbooks(clean: bytes, hostile: bytes) -> list[str]:
    problems: list[str] = []
    a, b = _sheets(clean), _sheets(hostile)
    for title in WORKBOOK_SHEETS_EXACT:
        if a.get(title) != b.get(title):
            problems.append(f"workbook sheet `{title}` differs")
    ha, ra = _table_rows(a["Partners"])
    _hb, rb = _table_rows(b["Partners"])
    cols = [ha.index(c) for c in PARTNERS_SHEET_COLUMNS]
    if [[r[i] for i in cols] for r in ra] != [[r[i] for i in cols] for r in rb]:
        problems.append("workbook sheet `Partners`: accepted / outbound figures differ")
    for title in (*WORKBOOK_SHEETS_PER_FILE, *WORKBOOK_SHEETS_PER_PARTNER):
        head, rows = _table_rows(a[title])
        _, got = _table_rows(b[title])
        keep_cols = [i for i, h in enumerate(head) if h not in WALL_CLOCK_COLUMNS]
        rows = [tuple(r[i] for i in keep_cols) for r in rows]
        got = [tuple(r[i] for i in keep_cols) for r in got]
        head = tuple(head[i] for i in keep_cols)
        partner = head.index("Partner") if "Partner" in head else None
        keep = [
            r
            for r in rows
            if title in WORKBOOK_SHEETS_PER_FILE or partner is None or r[partner] not in TOUCHED
        ]
        missing = Counter(keep) - Counter(got)
        if missing:
            problems.append(
                f"workbook sheet `{title}`: clean rows missing or changed: {list(missing)[:3]}"
            )
    return problems


def _compare_outputs(nights: Nights) -> list[str]:
    """The differences of the clean and the hostile copy that no hostile entry explains."""
    problems: list[str] = []
    clean, hostile = _sent_and_out(nights.clean_root), _sent_and_out(nights.hostile_root)
    for rel, data in clean.items():
        if rel not in hostile:
            problems.append(f"`{rel}` of the clean night is missing")
        elif rel.endswith(".xlsx"):
            problems += _compare_workbooks(data, hostile[rel])
        elif hostile[rel] != data and not _allowed_new(rel):
            problems.append(f"`{rel}` differs from the clean night's")
    for rel in sorted(set(hostile) - set(clean)):
        if not _allowed_new(rel):
            problems.append(
                f"`{rel}` is new (not the clean night's, not a return of a hostile entry)"
            )
    # the lake: the same rows for every good file; new partitions only of hostile entries
    lake_a, lake_b = (
        snapshot(nights.clean_root, ("lake",)),
        snapshot(nights.hostile_root, ("lake",)),
    )
    names = _names(nights)
    for rel, data in lake_a.items():
        if rel not in lake_b:
            problems.append(f"lake `{rel}` is missing")
            continue
        if rel.startswith("lake/_rated_with/"):  # what rated the day's files: the same
            a, b = json.loads(data), json.loads(lake_b[rel])
            if set(a["files"]) != set(b["files"]) or a["references"] != b["references"]:
                problems.append(f"lake `{rel}`: other files or references than the clean's")
            continue
        ta, tb = _table(data), _table(lake_b[rel])
        if "/findings/" in rel:
            tb = tb.filter(pa.array([f not in names for f in tb.column("file").to_pylist()]))
        if _rows(ta) != _rows(tb):
            problems.append(f"lake `{rel}` holds other rows than the clean night's")
    for rel in sorted(set(lake_b) - set(lake_a)):
        stem = Path(rel).name.removesuffix(".parquet")
        # a hostile entry's own rows, or the empty key-index file of one with nothing accepted
        marker = (
            rel.startswith("lake/keys_in/")
            and "/start=none/" in rel
            and _table(lake_b[rel]).num_rows == 0
        )
        if not ((rel.startswith("lake/events_in/") or marker) and stem in names):
            problems.append(f"lake `{rel}` is new (not the clean night's, not a hostile entry's)")
    return problems


def _manifest_figures(run: Run) -> tuple[Any, dict[str, int]]:
    assert run.manifest is not None, run.describe()
    rec = dict(run.manifest["reconciliation"])
    rec["in - returned"] = rec.pop("in") - rec.pop("returned")
    return run.manifest["money"], rec


def _by_name(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        out.setdefault(e["name"], []).append(e)
    return out


def _case_problems(case: HostileCase, found: list[dict[str, Any]], root: Path) -> list[str]:
    if len(found) != 1:
        return [f"{case.key} `{case.name[:40]}`: {len(found)} fates, not one: {found}"]
    e = found[0]
    out: list[str] = []
    if e["fate"] not in case.fates:
        out.append(f"{case.key}: fate {e['fate']!r}, expected {' or '.join(case.fates)} ({e})")
    if e.get("partner") != case.channel:
        out.append(f"{case.key}: partner {e.get('partner')!r}, delivered by {case.channel!r}")
    if e["fate"] != "processed" and not (e.get("reason") or "").strip():
        out.append(f"{case.key}: {e['fate']} without a reason")
    if e["fate"] == "quarantined":
        path = e.get("path") or ""
        where = root / path
        if not path.startswith(f"failed/{DAY.isoformat()}/") or not where.is_file():
            out.append(f"{case.key}: quarantined at `{path}`, not a file in failed/{DAY}/")
        else:
            reason = where.with_name(where.name + ".reason.txt")
            if not reason.is_file() or not reason.read_text(encoding="utf-8").strip():
                out.append(f"{case.key}: no reason file beside `{path}`")
    return out


# six nights of a sample world in subprocesses: about 1 minute on an idle machine
pytestmark = pytest.mark.slow

# ---------------------------------------------------------------------------------------------
# the night


def test_the_hostile_night_ends_within_bounds_with_anomalies(nights: Nights) -> None:
    assert nights.hostile.returncode is not None, (
        f"the hostile night did not end within {nights.limit_s:.0f} s "
        f"(3 × the clean night's {nights.clean.seconds:.1f} s + 120 s): {nights.hostile.describe()}"
    )
    assert nights.hostile.returncode == 1, nights.hostile.describe()
    assert nights.hostile.manifest is not None
    assert nights.hostile.manifest["status"] == "data"


def test_every_hostile_entry_has_one_fate_with_a_reason(nights: Nights) -> None:
    entries = _by_name(nights.hostile.entries)
    problems = [
        p
        for c in nights.cases
        for p in _case_problems(c, entries.get(printable_name(c.name), []), nights.hostile_root)
    ]
    assert not problems, "\n".join(problems)


def test_the_good_files_have_the_clean_nights_fates(nights: Nights) -> None:
    clean = _by_name(nights.clean.entries)
    hostile = _by_name(nights.hostile.entries)
    assert clean, "the clean night lists no entries (manifest `entries`)"
    for name, got in clean.items():
        assert [e["fate"] for e in hostile.get(name, [])] == [e["fate"] for e in got], name
    extra = set(hostile) - set(clean) - _names(nights)
    assert not extra, f"entries of neither night: {sorted(extra)}"


def test_the_good_outputs_are_the_clean_nights(nights: Nights) -> None:
    assert nights.hostile.manifest is not None, nights.hostile.describe()
    problems = _compare_outputs(nights)
    money_a, rec_a = _manifest_figures(nights.clean)
    money_b, rec_b = _manifest_figures(nights.hostile)
    if money_a != money_b:
        problems.append(f"manifest money differs: {money_a} vs {money_b}")
    if rec_a != rec_b:
        problems.append(f"manifest record identity differs: {rec_a} vs {rec_b}")
    assert rec_b["difference"] == 0
    assert not problems, "\n".join(problems)


def test_what_the_hostile_entries_add_is_their_returns(nights: Nights) -> None:
    """The RAP to FRAF9 returns the five files of its channel that reach the register."""
    hostile = _sent_and_out(nights.hostile_root)
    raps = sorted(r for r in hostile if r.startswith("out/rap/RCHKGCLFRAF9"))
    assert raps, "no RAP to FRAF9 for its fatal files"
    for rel in raps:
        assert hostile.get(f"exchange/FRAF9/from_hkgcl/{Path(rel).name}") == hostile[rel]
    assert nights.hostile.manifest is not None
    by_name = _by_name(nights.hostile.entries)
    returned = [c for c in nights.cases if c.channel == "FRAF9" and c.fate == "returned"]
    for c in returned:
        (e,) = by_name.get(printable_name(c.name), [{}])
        assert e.get("fate") == "returned", (c.key, e)


def test_nothing_is_left_in_the_inbox(nights: Nights) -> None:
    left = set(snapshot(nights.hostile_root, ("inbox",))) - set(
        snapshot(nights.clean_root, ("inbox",))
    )
    assert not left, f"left in inbox/: {sorted(left)}"


def test_no_local_file_is_read_through_a_symlink(nights: Nights) -> None:
    secret = secret_bytes(14)
    assert nights.secret.read_bytes() == secret
    everything = snapshot(nights.hostile_root, ("",))  # the whole work folder, links not followed
    found = [rel for rel, data in everything.items() if SECRET_MARK in data]
    assert not found, f"the local secret was read into {found}"


def _cell_changes(nights: Nights, changed: list[str]) -> list[tuple[Any, ...]]:
    """The first cells that differ in the changed workbooks (what to look at when it fails)."""
    out: list[tuple[Any, ...]] = []
    for rel in changed:
        a, b = nights.after_first.get(rel), nights.after_rerun.get(rel)
        if not rel.endswith(".xlsx") or a is None or b is None:
            continue
        sa, sb = _sheets(a), _sheets(b)
        for title in sorted(set(sa) | set(sb)):
            ra, rb = sa.get(title, []), sb.get(title, [])
            for i in range(max(len(ra), len(rb))):
                x = ra[i] if i < len(ra) else None
                y = rb[i] if i < len(rb) else None
                if x != y:
                    out.append((rel, title, i + 1, x, y))
    return out[:12]


def test_a_rerun_of_the_night_converges(nights: Nights) -> None:
    assert nights.rerun.returncode == nights.hostile.returncode, nights.rerun.describe()
    changed = sorted(
        rel
        for rel in set(nights.after_first) | set(nights.after_rerun)
        if nights.after_first.get(rel) != nights.after_rerun.get(rel)
    )
    assert not changed, f"the rerun changed {changed}: {_cell_changes(nights, changed)}"
    first = sorted((e["name"], e["fate"]) for e in nights.hostile.entries)
    again = sorted((e["name"], e["fate"]) for e in nights.rerun.entries)
    assert again == first
    assert len({n for n, _ in again}) == len(again), "an entry has two fates"
    con = duckdb.connect(str(nights.hostile_root / "clearing.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "entry_fates" in tables, "no entry_fates table in the state"
        twice = con.execute(
            "SELECT count(*) FROM (SELECT name, partner FROM entry_fates "
            "WHERE processing_date = ? GROUP BY name, partner HAVING count(*) > 1)",
            [DAY],
        ).fetchone()
    finally:
        con.close()
    assert twice == (0,)


def test_the_next_night_runs_as_the_clean_worlds(nights: Nights) -> None:
    assert all(r.returncode == 0 for r in nights.delivered), [
        r.describe() for r in nights.delivered
    ]
    clean, hostile = nights.clean_next, nights.hostile_next
    assert clean is not None
    assert hostile is not None
    assert hostile.returncode is not None, hostile.describe()
    refused = {printable_name(c.name): c for c in nights.cases if c.fate == "refused"}
    # the entries still on the server that cannot be fetched are listed as refused again, but
    # were reported the night before: no new anomaly, the exit code is the clean night's
    assert hostile.returncode == clean.returncode, hostile.describe()
    a, b = _by_name(clean.entries), _by_name(hostile.entries)
    for name, got in a.items():
        assert [e["fate"] for e in b.get(name, [])] == [e["fate"] for e in got], name
    for name in set(b) - set(a):
        assert name in refused, f"{name} has a fate on the next night: {b[name]}"
        assert [e["fate"] for e in b[name]] == ["refused"], b[name]
    problems = _compare_outputs(nights)
    money_a, rec_a = _manifest_figures(clean)
    money_b, rec_b = _manifest_figures(hostile)
    if money_a != money_b:
        problems.append(f"next night: manifest money differs: {money_a} vs {money_b}")
    if rec_a != rec_b:
        problems.append(f"next night: record identity differs: {rec_a} vs {rec_b}")
    assert not problems, "\n".join(problems)
    assert not list((nights.hostile_root / "failed").glob(f"{NEXT.isoformat()}/*")), (
        "the next night quarantined again"
    )


def test_every_case_of_the_issue_is_in_the_corpus(nights: Nights) -> None:
    keys = {c.key for c in nights.cases}
    assert keys >= {
        "foreign_name", "unicode_digits", "long_name", "symlink_loop", "symlink_out",
        "empty_tap", "garbage_tap", "garbage_ciber", "unknown_name", "nrtrde", "header_sender",
        "huge_volume_tap", "nested_tap", "empty_events_tap", "rap_garbage", "long_ciber_record",
        "unreadable_ciber", "directory", "inbox_unknown", "inbox_header_sender",
    }  # fmt: skip
    assert len({c.name for c in nights.cases}) == len(nights.cases)
    assert all(
        f in ("quarantined", "refused", "returned", "processed")
        for c in nights.cases
        for f in c.fates
    )
