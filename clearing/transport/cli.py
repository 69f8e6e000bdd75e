"""`clearing transport …`: send the outbox, resend a file, collect inbound files.

A typer sub-app, thin: it reads ``WORKDIR/clearing.toml`` ([transport] section), opens the
outbox (``WORKDIR/clearing.duckdb``) or the fetch ledger (``WORKDIR/fetch_ledger.duckdb``) and
calls the package. Errors print one line and exit with the error's code (3 for transport).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from clearing.config import WorkDir
from clearing.errors import ClearingError, TransportError
from clearing.transport._collect import FetchLedger, collect
from clearing.transport.outbox import Outbox
from clearing.transport.settings import load_transport_settings

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["app"]

T = TypeVar("T")

app = typer.Typer(
    name="transport",
    help="Send our files to partners and collect theirs (SFTP or folder).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

Workdir = Annotated[
    Path,
    typer.Option("--workdir", help="work folder: clearing.toml, clearing.duckdb, inbox/"),
]
Debug = Annotated[bool, typer.Option("--debug", help="raise errors with a traceback")]


def _guard(debug: bool, action: Callable[[], T]) -> T:
    try:
        return action()
    except ClearingError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None


@app.command()
def send(workdir: Workdir, debug: Debug = False) -> None:
    """Send every due outbox file (generated or failed) to its partner."""

    def run() -> None:
        settings = load_transport_settings(workdir)
        outbox = Outbox(WorkDir(workdir).db)
        report = outbox.send_due(lambda partner: settings.transport_for(partner, workdir))
        for name in report.sent:
            typer.echo(f"sent {name}")
        for name, error in report.failed:
            typer.echo(f"not sent {name}: {error}", err=True)
        if not report.ok:
            msg = (
                f"{len(report.failed)} of {len(report.sent) + len(report.failed)} due files "
                "not sent (see above); they stay due and the next `send` tries them again"
            )
            raise TransportError(msg)
        if not report.sent:
            typer.echo("nothing due")

    _guard(debug, run)


@app.command()
def resend(
    file: Annotated[str, typer.Argument(help="outbox file name (or its path)")],
    workdir: Workdir,
    debug: Debug = False,
) -> None:
    """Send one outbox file again, with exactly the bytes registered for it."""

    def run() -> None:
        settings = load_transport_settings(workdir)
        outbox = Outbox(WorkDir(workdir).db)
        name = Path(file).name
        entry = outbox.get(name)
        with settings.transport_for(entry.partner, workdir) as transport:
            outbox.resend(name, transport)
        typer.echo(f"sent {name} again to {entry.partner} ({transport.where})")

    _guard(debug, run)


@app.command("collect")
def collect_command(
    workdir: Workdir,
    partner: Annotated[
        list[str] | None, typer.Option("--partner", help="only these partners (repeatable)")
    ] = None,
    debug: Debug = False,
) -> None:
    """Fetch new inbound files of every configured partner into WORKDIR/inbox."""

    def run() -> None:
        settings = load_transport_settings(workdir)
        names = partner or sorted(settings.partners)
        ledger = FetchLedger(workdir)
        errors: list[str] = []
        for code in names:
            cfg = settings.partner(code)
            try:
                with settings.transport_for(code, workdir) as transport:
                    paths = collect(code, transport, cfg.pattern, WorkDir(workdir).inbox, ledger)
            except TransportError as exc:
                typer.echo(f"not collected from {code}: {exc}", err=True)
                errors.append(code)
                continue
            for path in paths:
                typer.echo(f"fetched {path}")
        if errors:
            msg = (
                f"collect failed for {', '.join(errors)} (see above); files already fetched "
                "are kept, and the next `collect` fetches the rest"
            )
            raise TransportError(msg)

    _guard(debug, run)


@app.command()
def status(workdir: Workdir, debug: Debug = False) -> None:
    """List the outbox: name, partner, kind, state, attempts, sent at, last error."""

    def run() -> None:
        for e in Outbox(WorkDir(workdir).db).entries():
            sent = e.sent_at.isoformat(timespec="seconds") if e.sent_at else "-"
            line = f"{e.name}\t{e.partner}\t{e.kind}\t{e.state}\t{e.attempts}\t{sent}"
            typer.echo(line + (f"\t{e.last_error}" if e.last_error else ""))

    _guard(debug, run)
