"""The `clearing` command line (typer). Commands are thin: parse, call the package, print.

Exit codes: 0 ok, 1 data problem, 2 config problem, 3 transport problem.
"""

from __future__ import annotations

import json
import sys
from datetime import date as Date
from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import Annotated, Any

import typer

from clearing.errors import ClearingError

app = typer.Typer(
    name="clearing",
    help="Roaming clearing and settlement: TAP3 / RAP / NRT / CIBER.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
samples_app = typer.Typer(help="Synthetic traffic for demos, tests and benchmarks.")
app.add_typer(samples_app, name="samples")


def _fail(exc: ClearingError, debug: bool) -> None:
    if debug:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


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
        _fail(exc, debug)
        return
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        typer.echo(inspect_mod.render_text(summary))


def _read(file: Path) -> bytes:
    from clearing.errors import ConfigError

    try:
        return file.read_bytes()
    except OSError as exc:
        msg = f"cannot read `{file}`: {exc.strerror}"
        raise ConfigError(msg) from None


@samples_app.command("generate")
def samples_generate(
    out: Annotated[Path, typer.Option("--out", help="folder to write into")],
    events: Annotated[int, typer.Option("--events", help="call events in all TAP-in files")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same bytes)")] = 1,
    date: Annotated[str | None, typer.Option("--date", help="processing date YYYY-MM-DD")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Write a synthetic world: TAP-in files from several partners (and CIBER-in batches)."""
    from clearing.samples import generate

    try:
        day = Date.fromisoformat(date) if date else Date(2026, 11, 22)
        written = generate(out, events=events, seed=seed, day=day)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ClearingError as exc:
        _fail(exc, debug)
        return
    for path in written:
        typer.echo(str(path))


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `clearing` console script."""
    return app(args=argv)


if __name__ == "__main__":  # pragma: no cover
    main()
