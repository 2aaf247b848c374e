"""The ``gantl`` command line: a thin typer app that assembles the per-area commands.

Each area's commands live in ``gantl.commands.<area>`` so that modules stay small and
independent; this file only wires them together and turns ``GantlError`` into one
line on stderr plus a non-zero exit (the traceback only with ``--debug``).
"""

from __future__ import annotations

import logging
import sys
import traceback

import typer

from gantl import __version__
from gantl.commands import data, demo, evaluate, experiment, generate, models, train
from gantl.errors import GantlError

app = typer.Typer(
    name="gantl",
    help="Curate a few hundred images, adapt a pretrained GAN to them, and measure whether it worked.",
    epilog="Example: gantl data build photos/ --size 64 --out cats64.zip && gantl train --data cats64.zip",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gantl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more detail."),
) -> None:
    """gantl: transfer learning for GANs on small datasets."""
    _state["debug"] = debug
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    from gantl import warnings_once

    warnings_once.install()  # Python warnings as one log line each, not twice with a source line


app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(experiment.app, name="experiment")
app.command("train", epilog=train.EPILOG, cls=train.TrainCommand)(train.train)
app.command("eval", epilog=evaluate.EPILOG)(evaluate.evaluate)
app.command("generate", epilog=generate.EPILOG)(generate.generate)
app.command("demo", epilog=demo.EPILOG)(demo.demo)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    if argv is not None:
        sys.argv = ["gantl", *argv]
    try:
        app()
    except GantlError as exc:
        if _state["debug"] or "--debug" in sys.argv:
            traceback.print_exc()
        typer.secho(f"error: {exc.message}", err=True, fg="red")
        sys.exit(exc.exit_code)
    except OSError as exc:  # disk full / permission lost in any command: one line, not a traceback
        from gantl.rundir import storage_error

        error = storage_error(exc, None)
        if error is None or _state["debug"] or "--debug" in sys.argv:
            raise
        typer.secho(f"error: {error.message}", err=True, fg="red")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
