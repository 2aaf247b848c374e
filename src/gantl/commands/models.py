"""`gantl models list|info|import|inspect`: sources and checkpoints."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="List, import and inspect pretrained sources and checkpoints.", no_args_is_help=True,
                  epilog="Example: gantl models list   |   gantl models import network-snapshot.pkl   |   "
                         "gantl models inspect runs/00003-horse/snapshot-000200.safetensors")


@app.command("inspect", epilog="Example: gantl models inspect runs/00003-horse/snapshot-000200.safetensors")
def inspect(
    path: str = typer.Argument(..., help="A gantl or plain .safetensors, an NVIDIA .pkl, or a .pt/.pth file."),
    as_json: bool = typer.Option(False, "--json", help="Print the description as JSON instead of tables."),
    tensors: bool = typer.Option(True, "--tensors/--no-tensors", help="List every tensor (name, shape, dtype)."),
) -> None:
    """Print the networks, tensor names, shapes, dtypes and metadata a checkpoint holds.

    Pickles are read with gantl's restricted unpickler: one that asks to run code is refused
    with a one-line error, and nothing in it is executed.
    """
    from gantl.checkpoints.inspect import describe, render

    desc = describe(path)
    if as_json:
        if not tensors:
            desc = _without_tensor_lists(desc)
        typer.echo(json.dumps(desc, indent=2, sort_keys=False, default=str))
    else:
        render(desc, show_tensors=tensors)


def _without_tensor_lists(desc: dict) -> dict:
    out = {k: v for k, v in desc.items() if k != "tensors"}
    if "networks" in out:
        out["networks"] = [{k: v for k, v in n.items() if k != "tensors"} for n in out["networks"]]
    return out


# The zoo commands live in zoo_commands.py (sources helper); registered here so `gantl models` has them all.
from gantl.commands import zoo_commands  # noqa: E402

app.command("list", epilog=zoo_commands.LIST_EPILOG)(zoo_commands.models_list)
app.command("info", epilog=zoo_commands.INFO_EPILOG)(zoo_commands.models_info)
app.command("import", epilog=zoo_commands.IMPORT_EPILOG)(zoo_commands.models_import)


@app.command("rank", epilog="Example: gantl models rank --data horse500.zip cifar9-stylegan2-32 cifar9-dcgan-32 "
                            "--metric fid,kid -n 500")
def rank(
    sources: list[str] = typer.Argument(..., help="Candidate sources: zoo names or .safetensors paths."),
    data: str = typer.Option(..., "--data", help="Target images: folder, zip or zip:prefix."),
    metric: str = typer.Option("fid", "--metric", help="Comma-separated; the first (fid, kid or iw) ranks."),
    num_gen: int | None = typer.Option(None, "--num-gen", "-n", help="Samples per source (default: as many as "
                                                                     "target images)."),
    num_real: int | None = typer.Option(None, "--num-real", help="Target images to use (default all)."),
    seed: int = typer.Option(0, "--seed", help="Seed for latents and subsets."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
) -> None:
    """Rank sources for a target by the distance of their samples to it (TransferGAN's source choice)."""
    from gantl.training.loop import pick_device
    from gantl.transfer.rank import rank_sources

    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    rows = rank_sources(data, sources, metrics, num_gen=num_gen, num_real=num_real, seed=seed,
                        device=pick_device(device), progress=not as_json)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    keys = [k for k in rows[0] if k not in ("rank", "source", "path")]
    table = Table(title=f"sources ranked by {keys[0]} against {data} (lower is nearer)")
    for col in ("rank", "source", *keys):
        table.add_column(col, justify="right" if col != "source" else "left")
    for row in rows:
        table.add_row(str(row["rank"]), row["source"], *(f"{row[k]:.4g}" for k in keys))
    Console().print(table)
