"""`gantl demo`: the main job on a built-in default (what `make demo` runs)."""

from __future__ import annotations

import typer

EPILOG = "Example: gantl demo   (writes demo-output/report.html, report.md and results.json)"


def demo(
    out: str = typer.Option("demo-output", "--out", help="Folder for the report, results.json and the runs."),
    budget_kimg: float = typer.Option(None, "--kimg", min=0.01,
                                      help="Training budget per run in kimg (default: the measured recipe's, "
                                           "which fits 15 minutes on 2 CPU cores)."),
    cifar10: str = typer.Option(None, "--cifar10", help="Path to cifar10.zip (default: ../shared/datasets/, "
                                "else download the official release once)."),
    num_real: int = typer.Option(None, "--num-real", min=0,
                                 help="Real horses for FID/KID (default: all 5,000, whose features ship "
                                      "with gantl for ../shared's CIFAR-10)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the horse sample, training and evaluation."),
    source: str = typer.Option(None, "--source", help="Zoo name or checkpoint to transfer from (default: "
                               "cifar9-stylegan2-32-cond, class deer)."),
    source_class: str = typer.Option(None, "--source-class", help="Class of a conditional source to start from: "
                                     "index, name or auto (nearest to the horses by FID)."),
) -> None:
    """Curate 500 CIFAR-10 horses, train from scratch and by transfer for the same budget, and compare them."""
    from gantl.demo import DemoConfig, run_demo

    cfg = DemoConfig(out=out, seed=seed, cifar10=cifar10)
    if budget_kimg is not None:
        cfg.budget_kimg = budget_kimg
    if source is not None:
        cfg.source = source
    if source_class is not None:
        cfg.source_class = source_class
    if num_real is not None:
        cfg.num_real = num_real or None
    run_demo(cfg)
