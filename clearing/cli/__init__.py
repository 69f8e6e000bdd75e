"""The `clearing` command line (typer). Commands are thin: parse, call the package, print.

One module per verb group, each with its own ``app``, mounted below with ``add_typer`` (a
group under its name; the top-level verbs of a module merged into ``clearing``):

* :mod:`~clearing.cli.run` — ``nightly``, ``monthly``, ``backfill``;
* :mod:`~clearing.cli.stages` — one verb per stage: ``collect``, ``send``, ``resend``,
  ``retail``, ``receive``, ``outbox``, ``rate`` and ``settle daily|monthly`` (``validate``
  of a date is in :mod:`~clearing.cli.validate`);
* :mod:`~clearing.cli.inspect`, :mod:`~clearing.cli.validate`, :mod:`~clearing.cli.samples`,
  :mod:`~clearing.cli.rap`, :mod:`~clearing.cli.seq`, :mod:`~clearing.cli.transport`
  (``transport status``), :mod:`~clearing.cli.rates` (``rerate``, ``rate what-if``,
  ``rates import``), :mod:`~clearing.cli.history` (``rate explain``, ``rates versions``),
  :mod:`~clearing.cli.held` (``rate recycle``), :mod:`~clearing.cli.iot`
  (``iot list|accept|dispute``), :mod:`~clearing.cli.find` (``find``),
  :mod:`~clearing.cli.retail` (``retail explain``, ``retail statement``),
  :mod:`~clearing.cli.stats` (``stats``).

``clearing -v`` / ``-q`` (before the verb) set how much goes to stderr; ``--json`` (a verb's
option) puts every line on stdout as JSON (:mod:`clearing.log`).

Options and the error handler are shared (:mod:`clearing.cli._common`). Exit codes
(:class:`clearing.errors.ExitCode`): 0 ok, 1 data problem, 2 config problem, 3 transport
problem, 4 a crash (a bug).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from clearing.cli import (
    archive,
    backup,
    find,
    held,
    history,
    inspect,
    iot,
    rap,
    rates,
    retail,
    returns,
    run,
    samples,
    seq,
    stages,
    stats,
    transport,
    validate,
)
from clearing.cli._common import examples
from clearing.errors import ExitCode

__all__ = ["app", "main"]

app = typer.Typer(
    name="clearing",
    help="Roaming clearing and settlement: TAP3 / RAP / NRT / CIBER.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help texts are Markdown: paragraphs reflow, examples don't
    add_completion=False,
    epilog=examples(
        "clearing samples generate --out /tmp/w --events 2000",
        "clearing nightly -w /tmp/w --date 2026-11-22",
        "clearing monthly -w /tmp/w --period 2026-11",
        "clearing nightly --help",
    )
    + "\n\nThe work folder is `--workdir` / `-w` or the `CLEARING_WORKDIR` environment variable."
    " Exit code: 0 ok, 1 data, 2 config, 3 transport, 4 crash.",
)


def _version(value: bool) -> None:
    if value:
        from clearing import __version__

        typer.echo(f"clearing {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="print the version and exit",
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="say more on stderr: debug lines too (the default shows progress and the "
            "transport's fetched / sent lines)",
        ),
    ] = 0,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="say only problems on stderr (no progress lines)"),
    ] = False,
) -> None:
    """Roaming clearing and settlement: TAP3 / RAP / NRT / CIBER."""
    from clearing import log

    log.configure(json_lines=False, verbosity=-1 if quiet else verbose)


app.add_typer(run.app)  # nightly, monthly, backfill
app.add_typer(stages.app)  # collect, send, resend, receive, outbox
stages.retail_app.add_typer(retail.explain_app)  # retail explain
stages.retail_app.add_typer(retail.statement_app)  # retail statement
app.add_typer(stages.retail_app, name="retail")  # retail (the stage), retail explain
app.add_typer(inspect.app)  # inspect
app.add_typer(validate.app)  # validate
app.add_typer(samples.app, name="samples")
app.add_typer(rap.app, name="rap")
app.add_typer(returns.app, name="returns")
app.add_typer(seq.app, name="seq")
app.add_typer(transport.app, name="transport")
app.add_typer(rates.app)  # rerate
stages.rate_app.add_typer(rates.what_if_app)  # rate what-if
stages.rate_app.add_typer(history.explain_app)  # rate explain
stages.rate_app.add_typer(held.app)  # rate recycle
app.add_typer(stages.rate_app, name="rate")
app.add_typer(rates.rates_app, name="rates")
rates.rates_app.add_typer(history.versions_app)  # rates versions, rates list-versions
app.add_typer(stages.settle_app, name="settle")
app.add_typer(iot.app, name="iot")  # iot list, accept, dispute
app.add_typer(backup.app)  # backup, restore
app.add_typer(archive.app)  # archive
app.add_typer(find.app)  # find
app.add_typer(stats.app)  # stats


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `clearing` console script.

    An unexpected exception (a bug, not bad input) prints its traceback and exits 4, so that a
    scheduler never mistakes a crash for a data problem (exit 1); under ``--json`` it is one
    JSON line on stdout (``level`` ``crash``, the traceback in it).
    """
    from clearing import log

    try:
        return app(args=argv, prog_name="clearing")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception:
        message = "internal error (exit 4): please report it with the traceback"
        if log.json_mode():
            log.emit("crash", message, event="error", name="cli", exc_info=True, exit_code=4)
        else:
            import traceback

            traceback.print_exc()
            print(f"error: {message} above", file=sys.stderr)
        raise SystemExit(ExitCode.INTERNAL) from None
