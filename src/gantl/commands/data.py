"""`gantl data build|inspect`: curation (intake, filters, crop/resize, dataset zip, report)."""

from __future__ import annotations

import typer

from gantl.errors import NotImplementedFeatureError

app = typer.Typer(help="Curate images into a training dataset.", no_args_is_help=True)


@app.command("build", epilog="Example: gantl data build ../shared/datasets/cats-raw.zip --size 64 --out cats64.zip")
def build(source: str = typer.Argument(..., help="Folder, zip, URL list (.txt) or #hashtag.")) -> None:
    """Score, filter, crop and resize images into a StyleGAN-compatible dataset with a report."""
    raise NotImplementedFeatureError("`gantl data build` is not built yet (issue 5); nothing was written")


@app.command("inspect", epilog="Example: gantl data inspect photos/ --size 256 --manifest scores.csv")
def inspect(source: str = typer.Argument(..., help="Folder, zip, URL list (.txt) or #hashtag.")) -> None:
    """Score every image with every filter without writing a dataset."""
    raise NotImplementedFeatureError("`gantl data inspect` is not built yet (issue 5); nothing was written")
