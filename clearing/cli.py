"""The `clearing` command line (typer). Commands are thin: parse, call the package, print.

Exit codes: 0 ok, 1 data problem, 2 config problem, 3 transport problem.
"""

from __future__ import annotations

import json
import sys
from datetime import date as Date
from pathlib import Path
from typing import Annotated, Any

import typer

from clearing._cli import fail, parse_date
from clearing.errors import ClearingError

app = typer.Typer(
    name="clearing",
    help="Roaming clearing and settlement: TAP3 / RAP / NRT / CIBER.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
samples_app = typer.Typer(help="Synthetic traffic for demos, tests and benchmarks.")
app.add_typer(samples_app, name="samples")
rap_app = typer.Typer(help="RAP files: answer partners' RAPs with ACKs, record their ACKs.")
app.add_typer(rap_app, name="rap")
seq_app = typer.Typer(help="File sequence control (TD.57 FSN) per partner.")
app.add_typer(seq_app, name="seq")


def _mount() -> None:
    from clearing.transport.cli import app as transport_app

    app.add_typer(transport_app, name="transport", help="Send and fetch files (SFTP / folder).")
    from clearing.rating.cli import app as rating_app

    app.add_typer(rating_app)  # rate, rate what-if, rerate, rates import
    from clearing.pipeline.cli import register

    register(app)  # nightly, monthly, backfill, collect, send, resend, retail
    from clearing.settle.cli import settle_app

    app.add_typer(settle_app, name="settle")  # settle daily, settle monthly


_mount()

WorkdirOpt = Annotated[
    Path,
    typer.Option("--workdir", "-w", help="work folder (clearing.toml, state, lake, out/)"),
]


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="TAP, Notification, RAP, ACK, NRT or CIBER file")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object (summary)")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="the event table as CSV")] = False,
    events: Annotated[bool, typer.Option("--events", help="one JSON line per event")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="raise errors with a traceback")] = False,
) -> None:
    """Summarise a file: kind, version, parties, FSN, event counts, audit totals."""
    from clearing import inspect as inspect_mod

    try:
        data = _read(file)
        if as_csv or events:
            table = inspect_mod.event_table(data, file=file.name)
            if as_csv:
                inspect_mod.write_csv(table, sys.stdout)
            else:
                for row in inspect_mod.event_rows(table):
                    typer.echo(json.dumps(row, ensure_ascii=False))
            return
        summary = inspect_mod.summarize(data, file=file.name)
    except ClearingError as exc:
        fail(exc, debug)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        typer.echo(inspect_mod.render_text(summary))


@app.command()
def validate(
    file: Annotated[
        Path | None, typer.Argument(help="one TAP/Notification file (omit: a whole date)")
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", "-w", help="work folder: its config, sequence state, lake"),
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="processing date YYYY-MM-DD")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    rap_dir: Annotated[
        Path | None, typer.Option("--rap-dir", help="write the RAP for FILE here (if any)")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Validate TAP files (TD.57): fatal / severe / warning findings, and the RAP to return.

    With FILE: that file, against the work folder's history when --workdir is given (nothing
    is recorded). Without FILE: every input of --date in the work folder, recorded (the
    nightly's validate stage). Exit code 1 when a file is fatally rejected.
    """
    try:
        if file is None:
            if workdir is None:
                typer.echo("error: give a FILE, or --workdir and --date", err=True)
                raise typer.Exit(2)
            _validate_day(workdir, _day(date), as_json)
            return
        _validate_file(file, workdir, _day(date), as_json, rap_dir)
    except ClearingError as exc:
        fail(exc, debug)


def _day(text: str | None) -> Date:
    return Date.today() if text is None else parse_date(text)


def _validate_file(
    file: Path, workdir: Path | None, day: Date, as_json: bool, rap_dir: Path | None
) -> None:
    from clearing import config
    from clearing.codecs.rap import rap_file_name, write_rap
    from clearing.returns.rap import rap_header, rap_items
    from clearing.validate.stage import validate_one
    from clearing.validate.state import State
    from clearing.validate.tap import parse_tap_name

    data = _read(file)
    from clearing.codecs.ciber import looks_like_ciber

    if looks_like_ciber(data[:64]):
        _validate_ciber_file(file, data, workdir, day, as_json)
        return
    state = None
    if workdir is not None:
        wd = config.WorkDir(workdir)
        settings = wd.settings()
        if wd.db.exists():
            state = State(wd.db, read_only=True)
    else:
        # no work folder: we are whoever the file is addressed to
        from clearing.validate.tap import check_tap

        named = parse_tap_name(file.name)
        probe = config.Settings(home=config.Home(tadig="XXXXX"))
        home = named[2] if named else check_tap(data, file=file.name, settings=probe).recipient
        ok = home is not None and len(home) == 5 and home.isalnum()
        settings = config.Settings(home=config.Home(tadig=home if ok and home else "XXXXX"))
    try:
        r = validate_one(
            data,
            file=file.name,
            settings=settings,
            day=day,
            state=state,
            lake=config.WorkDir(workdir).lake if workdir else None,
            con=state.con if state else None,
        )
        items = rap_items(r)
        if rap_dir is not None and items and r.checked.sender:
            rap_fsn = state.next_rap_fsn(day, r.checked.sender, r.checked.test) if state else 1
            header = rap_header(settings, r.checked.sender, r.checked.test, rap_fsn, day, r.checked)
            rap_dir.mkdir(parents=True, exist_ok=True)
            path = rap_dir / rap_file_name(header)
            path.write_bytes(write_rap(header, items))
            r.rap_file = str(path)
    finally:
        if state is not None:
            state.close()
    summary = r.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        typer.echo(_render_validation(summary))
    if r.fatal:
        raise typer.Exit(1)


def _validate_ciber_file(
    file: Path, data: bytes, workdir: Path | None, day: Date, as_json: bool
) -> None:
    from clearing import config
    from clearing.validate.stage import validate_ciber_file

    if workdir is not None:
        settings = config.WorkDir(workdir).settings()
    else:
        settings = config.Settings(
            home=config.Home(
                tadig="XXXXX", sid_bid=file.name[12:17] if file.name[12:17].isdigit() else None
            )
        )
    r, _checked = validate_ciber_file(data, file=file.name, settings=settings, day=day)
    summary = r.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        typer.echo(_render_validation(summary))
    if r.fatal:
        raise typer.Exit(1)


def _render_validation(s: dict[str, Any]) -> str:
    c = s["counts"]
    verdict = "FATAL: whole file returned" if s["fatal"] else s["outcome"]
    if s["outcome"] == "copy":
        verdict = f"copy of {s['copy_of']}: ignored"
    lines = [
        f"{s['file']}  {s['kind']}  {s['sender']} -> {s['recipient']}  "
        f"FSN {s['file_sequence_number']}  {verdict}",
        f"  events {c['in']} = accepted {c['accepted']} + returned {c['returned']} + "
        f"duplicate {c['duplicate']} + late {c['late']} + quarantined {c['quarantined']}",
    ]
    for f in s["findings"]:
        where = "file" if f["event_index"] is None else f"event {f['event_index']}"
        lines.append(
            f"  {f['severity']:<7} {f['context']} {f['code']} ({f['rule']}) {where}: {f['message']}"
        )
    if s.get("rap_file"):
        lines.append(f"  RAP: {s['rap_file']}")
    return "\n".join(lines)


def _validate_day(workdir: Path, day: Date, as_json: bool) -> None:
    from clearing import config
    from clearing.returns import validate_and_return

    wd = config.WorkDir(workdir)
    inputs = _day_inputs(wd, day)
    result = validate_and_return(wd, day, inputs)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "date": day.isoformat(),
                    "files": [f.summary() for f in result.files]
                    + [c.summary() for c in result.ciber],
                    "raps": [p.name for p in result.raps],
                    "reconciliation": result.reconciliation(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for f in result.files:
            typer.echo(_render_validation(f.summary()))
        for c in result.ciber:
            typer.echo(_render_validation(c.summary()))
        typer.echo(f"RAP files: {', '.join(p.name for p in result.raps) or 'none'}")
        typer.echo(f"reconciliation: {result.reconciliation()}")
    if any(f.fatal for f in result.files) or any(c.fatal for c in result.ciber):
        raise typer.Exit(1)


def _day_inputs(wd: Any, day: Date) -> list[Path]:
    """TAP and CIBER inputs of ``day``: ``work/<day>/in/`` (claimed from ``inbox/`` once)."""
    from clearing.pipeline.nightly import claim_inputs, input_kind

    return [p for p in claim_inputs(wd, day) if input_kind(p) in ("tap", "ciber")]


@rap_app.command("ack")
def rap_ack(
    file: Annotated[Path, typer.Argument(help="a partner's RAP file (or their ACK of ours)")],
    workdir: Annotated[Path | None, typer.Option("--workdir", "-w")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="where to write the ACK")] = None,
    date: Annotated[str | None, typer.Option("--date")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Answer a partner's RAP with an Acknowledgement (and record its returns), or record
    a partner's ACK of one of our RAPs."""
    from clearing.config import WorkDir
    from clearing.returns.incoming import receive
    from clearing.validate.state import State

    try:
        data = _read(file)
        wd = WorkDir(workdir) if workdir else None
        out_dir = out or (wd.out / "ack" if wd else Path.cwd())
        state = State(wd.db) if wd else None
        try:
            got = receive(data, file=file.name, out_dir=out_dir, day=_day(date), state=state)
        finally:
            if state is not None:
                state.close()
    except ClearingError as exc:
        fail(exc, debug)
    if got.kind == "ack":
        typer.echo(f"ACK from {got.sender}: our RAP {got.rap_fsn:05d} to it is acknowledged")
        return
    typer.echo(
        f"RAP {got.rap_fsn:05d} from {got.sender}: {got.fatal} fatal, {got.severe} severe, "
        f"{got.missing} missing, {got.stop} stop; ACK written to {got.ack_file}"
    )
    for m in got.mismatches:
        typer.echo(f"  audit mismatch: {m}")


@seq_app.command("status")
def seq_status(
    workdir: WorkdirOpt,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Per partner stream: last FSN, files processed, fatal, copies, gaps, RAPs, ACKs owed."""
    from clearing.config import WorkDir
    from clearing.errors import ConfigError
    from clearing.validate.state import State

    try:
        wd = WorkDir(workdir)
        if not wd.db.exists():
            msg = f"no state in `{workdir}` yet: run `clearing validate --workdir {workdir}`"
            raise ConfigError(msg)
        with State(wd.db, read_only=True) as state:
            rows = state.sequence_status()
    except ClearingError as exc:
        fail(exc, debug)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(
        f"{'sender':<7}{'test':<6}{'last FSN':<10}{'last date':<12}{'files':>6}{'fatal':>6}"
        f"{'copies':>7}{'gaps':>6}{'RAP FSN':>9}{'ACKs owed':>10}"
    )
    for r in rows:
        typer.echo(
            f"{r['sender']:<7}{'T' if r['test'] else 'live':<6}{r['last_fsn'] or '-':<10}"
            f"{r['last_date'] or '-':<12}{r['processed']:>6}{r['fatal']:>6}{r['copies']:>7}"
            f"{r['gaps']:>6}{r['last_rap_fsn'] or '-':>9}{r['acks_owed']:>10}"
        )


def _read(file: Path) -> bytes:
    from clearing.errors import ConfigError

    try:
        return file.read_bytes()
    except OSError as exc:
        msg = f"cannot read `{file}`: {exc.strerror}"
        raise ConfigError(msg) from None


@samples_app.command("generate")
def samples_generate(
    out: Annotated[Path, typer.Option("--out", help="new work folder to write the world into")],
    events: Annotated[
        int,
        typer.Option("--events", help="usage records of the day: half TAP-in, half visitor CDRs"),
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same bytes)")] = 1,
    date: Annotated[str | None, typer.Option("--date", help="processing date YYYY-MM-DD")] = None,
    files_only: Annotated[
        bool,
        typer.Option("--files-only", help="only the partners' TAP-in and CIBER-in files, in OUT"),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Write a synthetic world into a new work folder, ready for `clearing nightly`: config,
    reference data (IOTs, agreements, FX, subscribers with sub-numbers), partners' TAP-in and
    CIBER-in files (in their exchange folders) and our network's visitor CDRs."""
    from clearing.samples import generate
    from clearing.samples.workdir import generate_world

    try:
        day = Date.fromisoformat(date) if date else Date(2026, 11, 22)
        if files_only:
            written = generate(out, events=events, seed=seed, day=day)
        else:
            written = generate_world(out, day=day, events=events, seed=seed).paths
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ClearingError as exc:
        fail(exc, debug)
    for path in written:
        typer.echo(str(path))


EXIT_INTERNAL = 4
"""Exit code of a crash (a bug): not a data (1), config (2) or transport (3) problem."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `clearing` console script.

    An unexpected exception (a bug, not bad input) prints its traceback and exits 4, so that a
    scheduler never mistakes a crash for a data problem (exit 1).
    """
    try:
        return app(args=argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            "error: internal error (exit 4): please report it with the traceback above",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_INTERNAL) from None


if __name__ == "__main__":  # pragma: no cover
    main()
