"""`gantl eval`: FID, KID, precision/recall, density/coverage, IS, independent critic, classifier
score and memorization of generated images against real ones."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gantl.errors import MetricError

EPILOG = ("Example: gantl eval --metrics fid,kid,pr --real cifar10.zip:train/horse --fake runs/00001-horse/"
          "snapshot-000200.safetensors -n 5000 --json fid.json   |   gantl eval --real horse500.zip --fake "
          "runs/00001-horse (every snapshot, plot vs kimg)")

METRIC_HELP = "fid, kid, pr (precision/recall), dc (density/coverage), is, iw (independent critic), cls, mem"


def _print_table(title: str, results: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, f"{value:.6g}")
    Console().print(table)


def _pick_device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def evaluate(
    real: str = typer.Option(..., "--real", help="Real images: folder, zip or zip:prefix (cifar10.zip:train/horse)."),
    fake: str = typer.Option(..., "--fake", help="Checkpoint (.safetensors), image folder/zip, or a run directory."),
    metrics: str = typer.Option("fid,kid", "--metrics", "-m", help=f"Comma-separated: {METRIC_HELP}."),
    num_gen: int | None = typer.Option(None, "--num-gen", "-n", help="Generated images (default: as many as real)."),
    num_real: int | None = typer.Option(None, "--num-real", help="Real images to use (seeded choice; default all)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the results as JSON here."),
    mode: str = typer.Option("legacy_tensorflow", "--mode", help="FID resize: legacy_tensorflow (papers) or clean."),
    backend: str = typer.Option("auto", "--backend", help="Inception backend: auto, onnx or torchscript."),
    batch: int = typer.Option(50, "--batch", help="Images per batch."),
    device: str = typer.Option("auto", "--device", help="Generator device: auto, cpu, cuda, mps."),
    seed: int = typer.Option(0, "--seed", help="Seed for latents, subsets and the critic."),
    cls_data: str | None = typer.Option(None, "--cls-data", help="Labelled dataset for the classifier score."),
    cls_target: str | None = typer.Option(None, "--cls-target", help="Target class name for the classifier score."),
    iw_steps: int = typer.Option(300, "--iw-steps", help="Training steps of the independent critic."),
    mem_ratio: float = typer.Option(0.5, "--mem-ratio", help="Memorization threshold as a share of the median "
                                                             "real-to-real nearest-neighbour distance."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Where pictures go (memorization pairs)."),
    is_weights: str | None = typer.Option(None, "--is-weights", help="NVIDIA inception-2015-12-05.pt for IS."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute real-image features."),
    extractor: str = typer.Option("inception-v3-fid", "--extractor", help="Feature space for fid/kid/pr/dc/mem."),
) -> None:
    """Evaluate generated images against real ones."""
    from gantl.metrics.api import check_numbers
    from gantl.metrics.api import evaluate as run_evaluate
    from gantl.metrics.registry import get_metric
    from gantl.metrics.runs import SNAPSHOT_GLOB, evaluate_run

    names = [m.strip().lower() for m in metrics.split(",") if m.strip()]
    for name in names:
        get_metric(name)  # fail fast on a typo, before any slow work
    if "cls" in names and not (cls_data and cls_target):
        raise MetricError("--metrics cls needs --cls-data (labelled dataset) and --cls-target (class name)")
    options = {"cls_data": cls_data, "cls_target": cls_target, "iw_steps": iw_steps, "mem_ratio": mem_ratio}
    check_numbers(num_gen=num_gen, num_real=num_real, batch=batch, options=options)  # before any slow work
    fake_path = Path(fake)
    target_dir = out_dir or (json_out.parent if json_out else Path("."))
    kwargs = dict(num_real=num_real, mode=mode, backend=backend, batch=batch, device=_pick_device(device), seed=seed,
                  options=options, is_weights=is_weights, use_cache=not no_cache, extractor=extractor)
    if fake_path.is_dir() and any(fake_path.glob(SNAPSHOT_GLOB)):
        lines = evaluate_run(fake_path, real, names, num_gen, out_dir=out_dir or fake_path,
                             on_result=lambda kimg, snap, res: _print_table(f"{snap.name} (kimg {kimg:g})", res),
                             **kwargs)
        typer.echo(f"wrote {fake_path / 'metrics-eval.jsonl'} and {fake_path / 'metrics-eval.png'}")
        if json_out:
            json_out.write_text(json.dumps(lines, indent=2))
        return
    results = run_evaluate(real, fake, names, num_gen, out_dir=target_dir, **kwargs)
    _print_table(f"{fake} vs {real}", results)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(results, indent=2))
        typer.echo(f"wrote {json_out}")
