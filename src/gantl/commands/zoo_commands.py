"""`gantl models list | info NAME | import FILE`: the model zoo from the command line.

Plain functions so ``gantl.commands.models`` can register them with one line each; they
print with rich and raise ``GantlError`` subclasses for anything a user can fix.
"""

from __future__ import annotations

from pathlib import Path

import typer

LIST_EPILOG = "Example: gantl models list"
INFO_EPILOG = "Example: gantl models info cifar9-stylegan2-32"
IMPORT_EPILOG = "Example: gantl models import ~/Downloads/afhqcat.pkl --out afhqcat.safetensors"


def _fid_text(fid: dict | None) -> str:
    if not fid or fid.get("value") is None:
        return "–"
    return f"{fid['value']:.2f}" + (f" ({fid['metric']})" if fid.get("metric") else "")


def models_list() -> None:
    """List the named sources: bundled with gantl, or downloaded and cached on first use."""
    from rich.console import Console
    from rich.table import Table

    from gantl.checkpoints import zoo

    table = Table(title="gantl model zoo", show_lines=False)
    table.add_column("name", no_wrap=True)
    for col in ("arch", "res", "trained on", "kimg", "FID", "where"):
        table.add_column(col, overflow="fold")
    for s in zoo.list_sources():
        where = "bundled" if s.bundled else "download"
        trained_on = s.training_data.split(" (")[0]  # details are in `gantl models info`
        table.add_row(s.name, s.arch, str(s.resolution), trained_on,
                      "–" if s.kimg is None else f"{s.kimg:g}", _fid_text(s.fid), where)
    console = Console()
    console.print(table)
    console.print(f"Cache for downloads and conversions: {zoo.cache_dir()} (set GANTL_CACHE_DIR to move it). "
                  "Use a name with `gantl train --resume NAME`.")


def models_info(name: str = typer.Argument(..., help="A zoo name from `gantl models list`.")) -> None:
    """Show everything known about one source: data, training, FID, licence, sha256, model card."""
    from rich.console import Console
    from rich.markdown import Markdown

    from gantl.checkpoints import zoo

    s = zoo.get_source(name)
    console = Console()
    rows = [
        ("name", s.name), ("description", s.description), ("architecture", s.arch),
        ("resolution", f"{s.resolution} px"), ("classes (c_dim)", str(s.c_dim) if s.c_dim else "unconditional"),
        ("training data", s.training_data), ("kimg", "–" if s.kimg is None else f"{s.kimg:g}"),
        ("FID", _fid_text(s.fid) + (f" — {s.fid.get('against', '')}" if s.fid and s.fid.get("against") else "")),
        ("licence", s.licence), ("format", s.format), ("location", s.location()),
        ("sha256", s.sha256 or "not published; recorded on first download and checked afterwards"),
    ]
    if s.size_bytes:
        rows.append(("size", f"{s.size_bytes / 1e6:.1f} MB"))
    if s.config:
        rows.append(("config", ", ".join(f"{k}={v}" for k, v in s.config.items())))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"[bold]{key.ljust(width)}[/bold]  {value}", highlight=False, soft_wrap=True)
    card = zoo.card_text(s)
    if card:
        console.rule("model card")
        console.print(Markdown(card))


def models_import(
    file: Path = typer.Argument(..., help="An NVIDIA stylegan2-ada .pkl or a DCGAN-tutorial .pth/.pt file."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write the gantl .safetensors "
                             "(default: next to FILE with that suffix)."),
) -> None:
    """Convert a foreign checkpoint into a gantl .safetensors file (no code from the file runs)."""
    from gantl.checkpoints.importers import import_any
    from gantl.checkpoints.zoo import sha256_file
    from gantl.errors import ConfigError

    if not file.is_file():
        raise ConfigError(f"'{file}' does not exist; pass the path of a .pkl or .pth file")
    out = out or file.with_suffix(".safetensors")
    if out.resolve() == file.resolve():
        raise ConfigError(f"'{file}' is already a .safetensors file; nothing to import")
    path = import_any(file, out)
    from gantl.checkpoints.format import load_checkpoint

    ckpt = load_checkpoint(path)
    nets = ", ".join(f"{n} ({len(t)} tensors)" for n, t in ckpt.tensors.items())
    typer.echo(f"wrote {path} from {file.name} (sha256 {sha256_file(file)[:12]}…): {nets}")
    arch = next(iter(ckpt.metadata.get("networks", {}).values()), {}).get("arch", "stylegan2")
    fresh = "" if "D" in ckpt.tensors else " --fresh-d"
    typer.echo(f"train from it with: gantl train --model {arch} --resume {path} --data YOUR_DATA.zip{fresh}")
    if fresh:
        typer.echo("note: the file has no discriminator, so --fresh-d trains a new D against the imported G")
