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
