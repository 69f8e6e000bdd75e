"""``clearing samples generate`` / ``deliver``: a synthetic world (one day or several)."""

from __future__ import annotations

from datetime import date
from pathlib import Path  # noqa: TC003 (typer reads the annotations at run time)
from typing import Annotated

import typer

from clearing.cli._common import (
    DateOpt,
    DebugOpt,
    OptionalDateOpt,
    WorkDirOpt,
    examples,
    handles_errors,
    parse_date,
)
from clearing.errors import ConfigError

__all__ = ["app", "deliver", "generate"]

app = typer.Typer(help="Synthetic traffic for demos, tests and benchmarks.")

DEFAULT_DAY = date(2026, 11, 22)
"""The processing date of a generated world when --date is left out."""


@app.command(
    "generate",
    epilog=examples(
        "clearing samples generate --out /tmp/w --events 2000",
        "clearing samples generate --out /tmp/w --date 2026-11-20 --days 5 --seed 7",
        "clearing samples generate --out /tmp/files --files-only",
    ),
)
@handles_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="new work folder to write the world into")],
    events: Annotated[
        int,
        typer.Option("--events", help="usage records of the day: half TAP-in, half visitor CDRs"),
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same bytes)")] = 1,
    date: OptionalDateOpt = None,
    files_only: Annotated[
        bool,
        typer.Option("--files-only", help="only the partners' TAP-in and CIBER-in files, in OUT"),
    ] = False,
    days: Annotated[
        int,
        typer.Option(
            "--days",
            help="processing days D … D+K-1 (N records each); day D delivered, "
            "the others kept in `OUT/samples/<D>/` for `samples deliver`",
        ),
    ] = 1,
    debug: DebugOpt = False,
) -> None:
    """Write a synthetic world into a new work folder, ready for `clearing nightly`.

    Config, reference data (IOTs, agreements, FX, subscribers with sub-numbers), partners' TAP-in
    and CIBER-in files (in their exchange folders) and our network's visitor CDRs. With --days K,
    the days after the first are kept in `OUT/samples/<D>/` until `clearing samples deliver`.
    --date defaults to 2026-11-22.
    """
    from clearing.samples import generate as generate_files
    from clearing.samples.workdir import generate_world

    day = parse_date(date) if date else DEFAULT_DAY
    try:
        if files_only and days != 1:
            msg = "--days needs a whole world: leave out --files-only"
            raise ConfigError(msg)
        if files_only:
            written = generate_files(out, events=events, seed=seed, day=day)
        else:
            written = generate_world(out, day=day, events=events, seed=seed, days=days).paths
    except ValueError as exc:  # a world that cannot be made (e.g. too few events)
        msg = str(exc)
        raise ConfigError(msg) from None
    for path in written:
        typer.echo(str(path))


@app.command(
    "deliver",
    epilog=examples(
        "clearing samples deliver -w /tmp/w --date 2026-11-21",
        "clearing nightly -w /tmp/w --date 2026-11-21",
    ),
)
@handles_errors
def deliver(
    workdir: WorkDirOpt,
    date: DateOpt,
    debug: DebugOpt = False,
) -> None:
    """Put one day of a multi-day sample world in place: partners' files, then our CDRs.

    Day D's partner files go to `exchange/<P>/to_hkgcl/` (where `collect` fetches them) and
    its visitor CDRs to `inbox/cdr/`. Delivering a day again writes the same bytes. On the
    days that answer the nights before (a corrected resend's RAP FSN, a partner's RAP about
    our TAP-out, the tariff change), what cannot be done yet is skipped with a note on stderr.
    """
    from clearing.samples.workdir import deliver_day

    notes: list[str] = []
    for path in deliver_day(workdir, parse_date(date), notes):
        typer.echo(str(path))
    for note in notes:
        typer.echo(f"note: {note}", err=True)
