"""`gantl experiment run|report`: grids of runs and the tables/plots they produce.

The work is in :mod:`gantl.experiments` (grid.py: the file and its checks; runner.py: training and
evaluating the runs, resumably; report.py: tables, plots and the HTML page).
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Run grids of transfer experiments and report them.", no_args_is_help=True,
                  epilog="Example: gantl experiment run experiments/f3_augmentation.toml --out runs/f3   |   "
                         "gantl experiment report runs/f3")


@app.command("run", epilog="Example: gantl experiment run experiments/f3_augmentation.toml --out runs/f3 --jobs 2"
                            "   |   on 8 GPUs, 2 runs at once of 4 processes each: gantl experiment run "
                            "experiments/f3_augmentation.toml --out runs/f3 --nproc-per-run 4 --jobs 2")
def run(
    grid: Path = typer.Argument(..., help="TOML file: [base] train options, [grid] option -> values, seeds = [...], "
                                          "[eval] metrics/num_gen/real."),
    out: Path = typer.Option(..., "--out", help="Experiment folder; one run dir per cell x seed goes in it."),
    jobs: int = typer.Option(1, "--jobs", help="Runs at once (separate processes)."),
    nproc_per_run: int = typer.Option(1, "--nproc-per-run",
                                      help="Train each run data-parallel as a torchrun group of this many processes "
                                           "(one GPU each; gloo on CPU). 1: in this process."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the report when all runs are done."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Train and evaluate every cell x seed of a grid; re-running skips finished runs and resumes the rest."""
    from gantl.experiments.runner import run_experiment

    run_experiment(grid, out, jobs=jobs, nproc_per_run=nproc_per_run, progress=not no_progress, echo=typer.echo)
    if report:
        from gantl.experiments.report import write_report

        files = write_report(out)
        typer.echo(f"report: {files.html}")


@app.command("report", epilog="Example: gantl experiment report runs/f3")
def report(path: Path = typer.Argument(..., help="Experiment folder (the --out of experiment run).")) -> None:
    """Write results.csv/.md (one row per run), per-cell mean ± std, plots and report.html."""
    from gantl.experiments.report import write_report

    files = write_report(path)
    typer.echo(f"wrote {files.csv}, {files.md}, {len(files.plots)} plot(s) and {files.html}")
