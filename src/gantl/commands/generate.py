"""`gantl generate`: samples, truncation, interpolation, style mixing and synthetic datasets.

The work is in :mod:`gantl.generate`; this module parses the flags, picks the one operation asked
for and prints what was written plus any one-line note (e.g. that an architecture has no w space).
"""

from __future__ import annotations

import typer

from gantl.errors import ConfigError

EPILOG = ("Example: gantl generate runs/00001-horse --seeds 0-63 --out samples/   |   gantl generate "
          "cifar9-stylegan2-32 --interpolate 3,7 --steps 16 --out interp/   |   gantl generate cifar9-stylegan2-32 "
          "--style-mix --seeds 0-3 --out mix/   |   gantl generate cifar9-stylegan2-32 --export-dataset 500 "
          "--out synth.zip")


def generate(
    source: str = typer.Argument(..., help="Checkpoint (.safetensors), run dir (best.safetensors, else the newest "
                                           "snapshot) or zoo name."),
    seeds: str = typer.Option("0-63", "--seeds", help="Seeds: 0-63, 1,5,9 or 0-3,10 (one latent per seed). "
                                                      "With --style-mix: the rows."),
    out: str = typer.Option("out", "--out", help="Output folder; with --export-dataset a .zip (or folder)."),
    trunc: float = typer.Option(1.0, "--trunc", help="Truncation psi (1 = none, 0 = the average image)."),
    cls: str | None = typer.Option(None, "--class", help="Class name or index for a conditional model."),
    interpolate: str | None = typer.Option(None, "--interpolate", help="Interpolate between two seeds: A,B."),
    steps: int = typer.Option(16, "--steps", help="Frames of --interpolate (both ends included)."),
    style_mix: bool = typer.Option(False, "--style-mix", help="Style-mixing grid: --seeds rows x --mix-seeds "
                                                               "columns."),
    mix_seeds: str = typer.Option("100-104", "--mix-seeds", help="Column seeds of --style-mix."),
    mix_layers: str | None = typer.Option(None, "--mix-layers", help="Layers taken from the column seed, e.g. "
                                                                     "0-3 (default: the coarse half)."),
    export_dataset: int | None = typer.Option(None, "--export-dataset", help="Write N images (seeds from the first "
                                                                             "of --seeds on) as a dataset."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="Per-layer noise: const, random or none."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    batch: int = typer.Option(32, "--batch", help="Images per forward pass."),
) -> None:
    """Generate images from a checkpoint (G_ema): per-seed PNGs and a grid, or one special output."""
    from gantl import generate as gen_mod
    from gantl.training.loop import pick_device

    modes = [name for name, on in (("--interpolate", interpolate is not None), ("--style-mix", style_mix),
                                   ("--export-dataset", export_dataset is not None)) if on]
    if len(modes) > 1:
        raise ConfigError(f"{' and '.join(modes)} write different outputs; run one per command")
    if batch < 1:
        raise ConfigError(f"--batch {batch} must be at least 1")
    g = gen_mod.load_generator(source, pick_device(device))
    info = gen_mod.describe(g)
    typer.echo(f"{info['checkpoint']} ({info['network']}, {info['arch']}, {info['resolution']} px"
               + (f", {info['c_dim']} classes" if info["c_dim"] else "") + ")")
    seed_list = gen_mod.parse_seeds(seeds)
    if interpolate is not None:
        pair = gen_mod.parse_seeds(interpolate)
        if len(pair) != 2 or "-" in interpolate:
            raise ConfigError(f"--interpolate '{interpolate}' must name two seeds: A,B (e.g. 3,7)")
        result = gen_mod.interpolate(g, pair[0], pair[1], steps, out, psi=trunc, cls=cls, noise_mode=noise_mode)
    elif style_mix:
        layers = gen_mod.parse_seeds(mix_layers) if mix_layers is not None else None
        result = gen_mod.style_mix(g, seed_list, gen_mod.parse_seeds(mix_seeds), out, layers=layers, psi=trunc,
                                   cls=cls, noise_mode=noise_mode)
    elif export_dataset is not None:
        result = gen_mod.export_dataset(g, export_dataset, out, first_seed=seed_list[0], psi=trunc, cls=cls,
                                        noise_mode=noise_mode, batch=batch)
    else:
        result = gen_mod.generate_images(g, seed_list, out, psi=trunc, cls=cls, noise_mode=noise_mode, batch=batch)
    for note in result.notes:
        typer.echo(note)
    shown = result.grid or (result.files[-1] if result.files else None)
    typer.echo(f"wrote {len(result.files)} file(s)" + (f"; see {shown}" if shown else ""))
