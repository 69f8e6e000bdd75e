"""``clearing transport status``: the outbox, file by file.

Sending, resending and collecting are the stage verbs ``clearing send``, ``clearing resend``
and ``clearing collect`` (:mod:`clearing.cli.stages`).
"""

from __future__ import annotations

import typer

from clearing.cli._common import (
    DebugOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    reads_workdir,
)

__all__ = ["app", "status"]

app = typer.Typer(
    help="The outbox: what we send to partners (SFTP / folder) and its state.",
    no_args_is_help=True,
)


@app.command(
    epilog=examples(
        "clearing transport status -w /srv/clearing",
        "clearing transport status -w /srv/clearing | grep -v sent",
    ),
)
@handles_errors
@reads_workdir
def status(workdir: WorkDirOpt, debug: DebugOpt = False) -> None:
    """List the outbox: name, partner, kind, state, attempts, sent at, last error.

    One line per file, the fields separated by tabs. Sending is `clearing send` (every due
    file) and `clearing resend FILE`.
    """
    from clearing.config import WorkDir
    from clearing.transport.outbox import Outbox

    for e in Outbox(WorkDir(workdir).db).entries():
        sent = e.sent_at.isoformat(timespec="seconds") if e.sent_at else "-"
        line = f"{e.name}\t{e.partner}\t{e.kind}\t{e.state}\t{e.attempts}\t{sent}"
        typer.echo(line + (f"\t{e.last_error}" if e.last_error else ""))
