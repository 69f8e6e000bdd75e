"""The main job of `make demo`: inspect the sample files, then run the nightly on them.

``python -m clearing.demo SAMPLES_DIR WORK_DIR`` reads every file under ``SAMPLES_DIR`` (TAP,
Notification, RAP, ACK, NRT, CIBER), writes into ``WORK_DIR/inspect/``:

* ``<file>.json`` — the `clearing inspect --json` summary;
* ``<file>.events.parquet`` — the normalised event table (TAP and CIBER files);
* ``<file>.error.txt`` — the one-line reason, for a file that cannot be read (planted faults);

and prints one line per file plus totals. Then it makes ``WORK_DIR`` a work folder of the
sample world (:func:`prepare`) and runs ``clearing nightly`` for the sample day 2026-11-22,
printing the stages and the run summary. Exit code 0 when it ran (bad input files and records
are the demo's planted faults, reported, not fatal), 2 when a folder is missing or the config
is wrong, 3 for a transport problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from clearing import inspect
from clearing._io import write_atomic
from clearing.config import CONFIG_NAME
from clearing.errors import ClearingError
from clearing.names import CiberName, TapName

__all__ = ["main", "run"]

_SKIP_SUFFIXES = {".md", ".txt", ".json", ".csv", ".yaml", ".yml", ".toml", ".parquet"}


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
    write_atomic(path, text)


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
    code = nightly(samples, work)
    if code == 1:
        print(
            "exit code 1: the data problems above are the samples' planted faults "
            "(data_samples/README.md); the run itself went through"
        )
        return 0
    return code


_DEMO_DAY = "2026-11-22"
_ROOT = Path(__file__).resolve().parents[1]


def prepare(samples: Path, work: Path) -> None:
    """Make ``work`` a work folder of the sample world (first time only).

    ``clearing.toml`` of the sample world (a folder transport per partner), the reference data
    of the repository's ``rates/`` (sources copied, then imported), the partners' files of
    ``samples/tap`` and ``samples/ciber`` put in their exchange folders (the nightly collects
    them from there), and our network's CDR export ``samples/cdr`` in ``inbox/cdr``.
    """
    import shutil

    from clearing.rating import import_rates
    from clearing.samples.workdir import REMOTE_IN, config_text, make_exchange

    if (work / CONFIG_NAME).exists():
        return
    sources = work / "rates" / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    for src in sorted((_ROOT / "rates" / "sources").glob("*.csv")):
        shutil.copy2(src, sources / src.name)
    import_rates(work / "rates")
    for sub in ("tap", "ciber"):
        for p in sorted((samples / sub).glob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            parsed = TapName.parse(p.name) or CiberName.parse(p.name)
            if parsed is not None:
                partner = parsed.sender
            else:
                continue  # not a partner file name (e.g. a damaged sample): inspected only
            target = work / "exchange" / partner / REMOTE_IN / p.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
    make_exchange(work)
    cdr = work / "inbox" / "cdr"
    cdr.mkdir(parents=True, exist_ok=True)
    for p in sorted((samples / "cdr").glob("CDR_*")):
        shutil.copy2(p, cdr / p.name)
    _write(work / CONFIG_NAME, config_text())


def nightly(samples: Path, work: Path) -> int:
    """Run the nightly of the sample day in ``work``; print the run summary; its exit code."""
    import datetime as dt

    from clearing.pipeline import run_nightly
    from clearing.pipeline.runlog import ConsoleLog
    from clearing.pipeline.summary import summary_of, write_summaries

    prepare(samples, work)
    print(f"\nclearing nightly --workdir {work} --date {_DEMO_DAY}")
    run = run_nightly(work, dt.date.fromisoformat(_DEMO_DAY), log=ConsoleLog(sys.stdout))
    text, _ = write_summaries(run, summary_of(run))
    print(text)
    return run.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
