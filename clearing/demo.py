"""The main job of `make demo`, until the nightly run exists: inspect and validate the inputs.

``python -m clearing.demo SAMPLES_DIR WORK_DIR`` reads every file under ``SAMPLES_DIR`` (TAP,
Notification, RAP, ACK, NRT, CIBER), writes into ``WORK_DIR/inspect/``:

* ``<file>.json`` — the `clearing inspect --json` summary;
* ``<file>.events.parquet`` — the normalised event table (TAP and CIBER files);
* ``<file>.error.txt`` — the one-line reason, for a file that cannot be read (planted faults);

and prints one line per file plus totals. Exit code 0 when it ran (bad input files are the
demo's planted faults, reported, not fatal), 2 when a folder is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from clearing import inspect
from clearing.errors import ClearingError

__all__ = ["main", "run"]

_SKIP_SUFFIXES = {".md", ".txt", ".json", ".csv", ".yaml", ".yml", ".toml"}


def run(samples: Path, work: Path) -> tuple[int, int, int]:
    """Inspect every file under ``samples`` into ``work/inspect``.

    Returns:
        (files, events, files with errors)
    """
    out_dir = work / "inspect"
    files = sorted(
        p
        for p in samples.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in _SKIP_SUFFIXES
    )
    n_events = n_bad = 0
    print(f"{'file':<40} {'kind':<13} {'from':>6} {'to':>6} {'seq':>6} {'events':>7}  status")
    for path in files:
        rel = path.relative_to(samples)
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        try:
            summary = inspect.summarize(data, file=str(rel))
            table = None
            if summary["kind"] in ("tap", "ciber"):
                table = inspect.event_table(data, file=str(rel))
        except ClearingError as exc:
            n_bad += 1
            _write(target.with_name(rel.name + ".error.txt"), f"{exc}\n")
            print(f"{rel!s:<40} {'?':<13} {'':>6} {'':>6} {'':>6} {'':>7}  ERROR {exc}")
            continue
        _write(target.with_name(rel.name + ".json"), json.dumps(summary, indent=2) + "\n")
        if table is not None:
            pq.write_table(table, target.with_name(rel.name + ".events.parquet"))
        events = int(summary.get("event_count") or 0)
        n_events += events
        status = "ok"
        if summary.get("audit_mismatches"):
            status = "audit differs: " + ", ".join(summary["audit_mismatches"])
        if summary.get("returned_records"):
            status = f"{summary['returned_records']} returned record(s)"
        problems = summary.get("header_problems") or []
        if problems:
            status = f"{len(problems)} problem(s): {problems[0]}"
        print(
            f"{rel!s:<40} {summary['kind']:<13} {summary.get('sender') or '-':>6} "
            f"{summary.get('recipient') or '-':>6} "
            f"{summary.get('file_sequence_number') or '-':>6} {events:>7}  {status}"
        )
    print(f"\n{len(files)} file(s), {n_events} event(s), {n_bad} unreadable → {out_dir}/")
    return len(files), n_events, n_bad


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m clearing.demo SAMPLES_DIR WORK_DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m clearing.demo SAMPLES_DIR WORK_DIR", file=sys.stderr)
        return 2
    samples, work = Path(args[0]), Path(args[1])
    if not samples.is_dir():
        print(f"error: `{samples}` is not a folder", file=sys.stderr)
        return 2
    run(samples, work)
    validate(samples, work)
    return 0


_DEMO_DAY = "2026-11-22"


def validate(samples: Path, work: Path) -> None:
    """Validate the sample day in ``work`` as a work folder (config written if missing)."""
    import datetime as dt
    import shutil

    from clearing.config import WorkDir
    from clearing.samples.ciber import CIBER_PARTNERS
    from clearing.samples.tap import PARTNERS
    from clearing.validate.stage import validate_day

    wd = WorkDir(work)
    if not wd.config.exists():
        lines = ['[home]\ntadig = "HKGCL"\nsid_bid = "60099"\n']
        lines += [f"\n[partners.{p.tadig}]\n" for p in PARTNERS]
        lines += [f'\n[partners.{p.sid_bid}]\nstandard = "ciber"\n' for p in CIBER_PARTNERS]
        _write(wd.config, "".join(lines))
    day = dt.date.fromisoformat(_DEMO_DAY)
    folder = work / "work" / _DEMO_DAY / "in"
    folder.mkdir(parents=True, exist_ok=True)
    inputs = []
    for sub in ("tap", "ciber"):
        for p in sorted((samples / sub).glob("*")):
            if p.is_file() and not p.name.startswith("."):
                shutil.copy2(p, folder / p.name)
                inputs.append(folder / p.name)
    result = validate_day(wd, day, inputs)
    print(f"\nvalidate {_DEMO_DAY}:")
    summaries = [f.summary() for f in result.files] + [c.summary() for c in result.ciber]
    for s in summaries:
        bad = [x for x in s["findings"] if x["severity"] != "warning"]
        print(
            f"  {s['file']:<38} {s['outcome']:<10} in {s['counts']['in']:>4}  "
            f"accepted {s['counts']['accepted']:>4}  {len(bad)} fatal/severe finding(s)"
        )
    print(f"  reconciliation: {result.reconciliation()}")
    outs = [p.name for p in result.raps] + [n for c in result.ciber for n in c.returns]
    print(f"  returns written to {work / 'out'}: {', '.join(outs) or 'none'}")


if __name__ == "__main__":
    raise SystemExit(main())
