"""``clearing rap ack FILE``: answer a partner's RAP with an ACK, or record its ACK of ours."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clearing.cli._common import (
    DebugOpt,
    OptionalDateOpt,
    OptionalWorkDirOpt,
    day_or_today,
    examples,
    handles_errors,
    read_input,
)

__all__ = ["ack", "app"]

app = typer.Typer(help="RAP files: answer partners' RAPs with ACKs, record their ACKs.")


@app.command(
    "ack",
    epilog=examples(
        "clearing rap ack RCFRAF9HKGCL00001 -w /srv/clearing",
        "clearing rap ack RCFRAF9HKGCL00001 --out /tmp/ack",
    ),
)
@handles_errors
def ack(
    file: Annotated[Path, typer.Argument(help="a partner's RAP file (or their ACK of ours)")],
    workdir: OptionalWorkDirOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="where to write the ACK")] = None,
    date: OptionalDateOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Answer a partner's RAP with an ACK, or record a partner's ACK of one of our RAPs.

    A partner's RAP is answered with an Acknowledgement (into --out; default
    `WORKDIR/out/ack/`, or the current folder without a work folder) and, with a work
    folder, its returns are recorded (`clearing returns list`).
    """
    from clearing.config import WorkDir
    from clearing.returns.incoming import receive
    from clearing.validate.state import State

    data = read_input(file)
    wd = WorkDir(workdir) if workdir else None
    out_dir = out or (wd.out / "ack" if wd else Path.cwd())
    state = State(wd.db) if wd else None
    try:
        got = receive(data, file=file.name, out_dir=out_dir, day=day_or_today(date), state=state)
    finally:
        if state is not None:
            state.close()
    if got.kind == "ack":
        typer.echo(f"ACK from {got.sender}: our RAP {got.rap_fsn:05d} to it is acknowledged")
        return
    typer.echo(
        f"RAP {got.rap_fsn:05d} from {got.sender}: {got.fatal} fatal, {got.severe} severe, "
        f"{got.missing} missing, {got.stop} stop; ACK written to {got.ack_file}"
    )
    for m in got.mismatches:
        typer.echo(f"  audit mismatch: {m}")
