"""`gantl data build|inspect`: curation (intake, filters, crop/resize, dataset zip, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gantl.config import apply_overrides, load_toml

app = typer.Typer(help="Curate images into a training dataset.", no_args_is_help=True,
                  epilog="Example: gantl data build photos/ --size 64 --out cats64.zip   |   "
                         "gantl data inspect photos/ --manifest scores.csv --report scores.html")

SOURCE_HELP = "Folder, .zip (or data.zip:sub/folder), .txt of URLs, #hashtag or @profile."


def _config(size: Optional[int], config: Optional[Path], overrides: list[str], workers: Optional[int],
            no: dict[str, bool], thresholds: dict[str, Optional[float]], labels: bool, crop: Optional[str]):
    """Defaults <- TOML file <- explicit flags <- --set key=value (last wins)."""
    from gantl.data.curate import CurateConfig

    cfg = load_toml(CurateConfig, config) if config else CurateConfig()
    flags: dict[str, object] = {}
    if size is not None:
        flags["size"] = size
    if workers is not None:
        flags["workers"] = workers
    for name, off in no.items():
        if off:
            flags[f"filters.{name}.enabled"] = False
    for name, value in thresholds.items():
        if value is not None:
            flags[f"filters.{name}.threshold"] = value
    if labels:
        flags["prepare.labels"] = True
    if crop:
        flags["prepare.crop"] = crop
    cfg = apply_overrides(cfg, flags)
    return apply_overrides(cfg, list(overrides))


def _run(source: str, out: Optional[Path], manifest: Path, report: Optional[Path], cfg, progress: bool) -> None:
    from gantl.data.curate import curate, summary_json

    result = curate(source, cfg, manifest=manifest, out=out, report=report, progress=progress)
    c = result.counts
    typer.echo(f"{c['kept']} kept, {c['rejected']} rejected of {c['total']}: "
               + ", ".join(f"{k} {v}" for k, v in c.items() if k not in ("total", "kept", "rejected") and v))
    if result.output:
        typer.echo(f"dataset: {result.output}")
    typer.echo(f"manifest: {result.manifest}")
    if result.report:
        typer.echo(f"report: {result.report}")
    typer.echo(summary_json(result))


# The same filter switches on both commands; typer needs them spelled out as parameters.
_NO = {n: typer.Option(False, f"--no-{n}", help=f"Switch the {n} filter off.")
       for n in ("resolution", "blur", "grayscale", "text", "face", "duplicate")}
_TH = {n: typer.Option(None, f"--{n}-threshold", help=f"Threshold of the {n} filter (see the report).")
       for n in ("resolution", "blur", "grayscale", "text", "face", "duplicate")}


@app.command("build", epilog="Example: gantl data build ../shared/datasets/cats-raw.zip --size 64 --out cats64.zip "
                             "--no-face --blur-threshold 0.5")
def build(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    size: Optional[int] = typer.Option(None, "--size", help="Output side in px (default 256)."),
    out: Path = typer.Option(..., "--out", help="Dataset to write: a .zip (StyleGAN2-ADA layout) or a folder."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Scores CSV (default: <out>-manifest.csv); "
                                            "re-running with it skips files already scored."),
    report: Optional[Path] = typer.Option(None, "--report", help="HTML report (default: <out>-report.html)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
    labels: bool = typer.Option(False, "--labels", help="Label images by their first sub-folder."),
    crop: Optional[str] = typer.Option(None, "--crop", help="center (default) or subject."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with curation settings."),
    overrides: list[str] = typer.Option([], "--set", help="Override any setting: --set filters.blur.threshold=0.5."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: one per core)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    no_resolution: bool = _NO["resolution"], no_blur: bool = _NO["blur"], no_grayscale: bool = _NO["grayscale"],
    no_text: bool = _NO["text"], no_face: bool = _NO["face"], no_duplicate: bool = _NO["duplicate"],
    resolution_threshold: Optional[float] = _TH["resolution"], blur_threshold: Optional[float] = _TH["blur"],
    grayscale_threshold: Optional[float] = _TH["grayscale"], text_threshold: Optional[float] = _TH["text"],
    face_threshold: Optional[float] = _TH["face"], duplicate_threshold: Optional[float] = _TH["duplicate"],
) -> None:
    """Score, filter, crop and resize images into a StyleGAN-compatible dataset with a report."""
    from gantl.data.curate import default_paths

    cfg = _config(size, config, overrides, workers,
                  dict(resolution=no_resolution, blur=no_blur, grayscale=no_grayscale, text=no_text, face=no_face,
                       duplicate=no_duplicate),
                  dict(resolution=resolution_threshold, blur=blur_threshold, grayscale=grayscale_threshold,
                       text=text_threshold, face=face_threshold, duplicate=duplicate_threshold), labels, crop)
    default_manifest, default_report = default_paths(out)
    _run(source, out, manifest or default_manifest, None if no_report else (report or default_report), cfg,
         not quiet)


@app.command("inspect", epilog="Example: gantl data inspect photos/ --size 256 --manifest scores.csv "
                               "--report scores.html")
def inspect(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    size: Optional[int] = typer.Option(None, "--size", help="Target side in px the resolution filter uses (256)."),
    manifest: Path = typer.Option(..., "--manifest", help="Scores CSV to write (re-used on the next run)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write an HTML report here."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with curation settings."),
    overrides: list[str] = typer.Option([], "--set", help="Override any setting: --set filters.blur.threshold=0.5."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: one per core)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    no_resolution: bool = _NO["resolution"], no_blur: bool = _NO["blur"], no_grayscale: bool = _NO["grayscale"],
    no_text: bool = _NO["text"], no_face: bool = _NO["face"], no_duplicate: bool = _NO["duplicate"],
    resolution_threshold: Optional[float] = _TH["resolution"], blur_threshold: Optional[float] = _TH["blur"],
    grayscale_threshold: Optional[float] = _TH["grayscale"], text_threshold: Optional[float] = _TH["text"],
    face_threshold: Optional[float] = _TH["face"], duplicate_threshold: Optional[float] = _TH["duplicate"],
) -> None:
    """Score every image with every filter without writing a dataset."""
    cfg = _config(size, config, overrides, workers,
                  dict(resolution=no_resolution, blur=no_blur, grayscale=no_grayscale, text=no_text, face=no_face,
                       duplicate=no_duplicate),
                  dict(resolution=resolution_threshold, blur=blur_threshold, grayscale=grayscale_threshold,
                       text=text_threshold, face=face_threshold, duplicate=duplicate_threshold), False, None)
    _run(source, None, manifest, report, cfg, not quiet)
