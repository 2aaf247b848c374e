"""`gantl experiment run|report`: grids of runs and the tables/plots they produce."""

from __future__ import annotations

import typer

from gantl.errors import NotImplementedFeatureError

app = typer.Typer(help="Run grids of transfer experiments and report them.", no_args_is_help=True)


@app.command("run", epilog="Example: gantl experiment run grid.toml")
def run(grid: str = typer.Argument(..., help="TOML file describing the grid.")) -> None:
    """Run every (method x source x size x augmentation) cell of a grid, resumably."""
    raise NotImplementedFeatureError("`gantl experiment run` is not built yet; no experiment was run")


@app.command("report", epilog="Example: gantl experiment report runs/experiments/horse-grid")
def report(path: str = typer.Argument(..., help="Experiment directory.")) -> None:
    """Write tables (md/csv), plots and an HTML report for an experiment."""
    raise NotImplementedFeatureError("`gantl experiment report` is not built yet; nothing was written")
