"""`gantl models list|info|import|inspect`: sources and checkpoints."""

from __future__ import annotations

import typer

from gantl.errors import NotImplementedFeatureError

app = typer.Typer(help="List, import and inspect pretrained sources and checkpoints.", no_args_is_help=True)


@app.command("inspect", epilog="Example: gantl models inspect runs/00003-horse/snapshot-000200.safetensors")
def inspect(path: str = typer.Argument(..., help="A gantl .safetensors, NVIDIA .pkl or .pt file.")) -> None:
    """Print the networks, tensor names, shapes, dtypes and metadata a checkpoint holds."""
    raise NotImplementedFeatureError("`gantl models inspect` is not built yet (issue 2)")
