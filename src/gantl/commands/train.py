"""`gantl train`: train from scratch or adapt a pretrained source.

Options are layered: the defaults of :class:`gantl.training.options.TrainOptions`, then
``--config run.toml`` (e.g. a previous run's config.toml), then the flags given on the
command line, then ``--set key=value`` overrides for anything without its own flag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from gantl.errors import ConfigError

EPILOG = ("Example: gantl train --data horse500.zip --resume cifar9-stylegan2-32 --method freezed:2 --aug ada "
          "--kimg 200   |   gantl train --data faces64.zip --model dcgan --resume faces.safetensors --fresh-d "
          "--kimg 50   |   gantl train --model stylegan2 --cfg cifar --resolution 32 --num-classes 10 "
          "--dry-run --json")


METHOD_HELP = "Transfer method NAME[:ARGS], repeatable or comma-separated."


class TrainCommand(TyperCommand):
    """``gantl train`` whose ``--method`` help lists the registered transfer methods.

    The list comes from :func:`gantl.transfer.base.registered_methods` (each method's own usage and
    help) and is filled in only when help is shown, so other commands do not pay for importing
    torch and the method modules.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from gantl.transfer.base import methods_help

        for param in self.params:
            if param.name == "method":
                param.help = f"{METHOD_HELP} Known: {methods_help()}."
        super().format_help(ctx, formatter)


def train(
    data: str | None = typer.Option(None, "--data", help="Dataset folder or zip (zip:member/prefix for a part)."),
    model: str | None = typer.Option(None, "--model", help="Architecture: stylegan2, dcgan or resnet."),
    cfg: str | None = typer.Option(None, "--cfg", help="Preset (auto, cifar, cpu-small, cpu-tiny, ...; dcgan, "
                                                       "dcgan-small; resnet, resnet-small, resnet-tiny)."),
    resolution: int | None = typer.Option(None, "--resolution", help="Image size (default: the dataset's)."),
    num_classes: int | None = typer.Option(None, "--num-classes", help="Number of classes (c_dim)."),
    cond: bool | None = typer.Option(None, "--cond/--no-cond", help="Train on the dataset's labels."),
    exclude_class: list[str] | None = typer.Option(None, "--exclude-class", help="Drop a class (repeatable)."),
    include_class: list[str] | None = typer.Option(None, "--include-class", help="Keep only these classes."),
    subset: int | None = typer.Option(None, "--subset", help="Use this many images (seeded choice)."),
    xflip: bool | None = typer.Option(None, "--xflip/--no-xflip", help="Add mirrored copies."),
    batch: int | None = typer.Option(None, "--batch", help="Global batch size."),
    glr: float | None = typer.Option(None, "--glr", help="Generator learning rate."),
    dlr: float | None = typer.Option(None, "--dlr", help="Discriminator learning rate."),
    gamma: float | None = typer.Option(None, "--gamma", help="R1 weight (0 disables)."),
    loss: str | None = typer.Option(None, "--loss", help="Adversarial loss: auto, logistic or hinge."),
    d_steps: int | None = typer.Option(None, "--d-steps", help="D updates per G update (n_dis)."),
    ema_kimg: float | None = typer.Option(None, "--ema", help="G_ema half-life in kimg."),
    kimg: float | None = typer.Option(None, "--kimg", help="Training length in kimg."),
    tick_kimg: float | None = typer.Option(None, "--tick", help="kimg between stats lines."),
    snap_kimg: float | None = typer.Option(None, "--snap", help="kimg between snapshots."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    aug: str | None = typer.Option(None, "--aug", help="none, ada or diffaugment."),
    ada_target: float | None = typer.Option(None, "--target", help="ADA target."),
    ada_p: float | None = typer.Option(None, "--p", help="Fixed augmentation probability."),
    ada_cap: float | None = typer.Option(None, "--ada-cap", help="Upper bound for the tuned p."),
    method: list[str] | None = typer.Option(None, "--method", help=METHOD_HELP),
    resume: str | None = typer.Option(None, "--resume", help="Source checkpoint or zoo name."),
    allow_partial: bool | None = typer.Option(None, "--allow-partial", help="Load only the fitting layers."),
    source_class: str | None = typer.Option(None, "--source-class", help="Conditional source, unconditional "
                                                                         "target: start from this source class "
                                                                         "(index or name) or auto (nearest by FID)."),
    fresh_d: bool | None = typer.Option(None, "--fresh-d", help="Take only G/G_ema from --resume; D starts from "
                                                                "its seeded init (for generator-only sources)."),
    init_g: str | None = typer.Option(None, "--init-g", help="With --resume: G starts from the source (default) "
                                                             "or scratch (TransferGAN's G/D matrix)."),
    init_d: str | None = typer.Option(None, "--init-d", help="With --resume: D starts from the source (default) "
                                                             "or scratch (= --fresh-d)."),
    metric: list[str] | None = typer.Option(None, "--metric", help="Metric at each snapshot (repeatable)."),
    best_metric: str | None = typer.Option(None, "--best-metric", help="Keep best.safetensors by this metric."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
    workers: int | None = typer.Option(None, "--workers", help="Image-decoding threads."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    outdir: str | None = typer.Option(None, "--outdir", help="Parent folder of run dirs (default runs)."),
    desc: str | None = typer.Option(None, "--desc", help="Extra words for the run dir name."),
    config: Path | None = typer.Option(None, "--config", help="TOML file of options (e.g. a run's config.toml)."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override any option: key=value (repeatable)."),
    resume_run: Path | None = typer.Option(None, "--resume-run", help="Continue a run dir from its last snapshot."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build the networks, print them, do not train."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: print names and shapes as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Train a GAN, optionally transferring from a pretrained source."""
    from gantl.config import apply_overrides, from_dict, load_toml
    from gantl.training.options import TrainOptions

    flags: dict[str, Any] = dict(
        data=data, model=model, cfg=cfg, resolution=resolution, num_classes=num_classes, cond=cond,
        exclude_classes=exclude_class or None, include_classes=include_class or None, subset=subset, xflip=xflip,
        batch=batch, glr=glr, dlr=dlr, gamma=gamma, loss=loss, d_steps=d_steps, ema_kimg=ema_kimg, kimg=kimg,
        tick_kimg=tick_kimg,
        snap_kimg=snap_kimg, seed=seed, aug=aug, ada_target=ada_target, ada_p=ada_p, ada_cap=ada_cap,
        methods=_split(method), resume=resume, allow_partial=allow_partial, fresh_d=fresh_d, init_g=init_g,
        init_d=init_d,
        source_class=source_class,
        metrics=_split(metric),
        best_metric=best_metric, device=device, workers=workers, threads=threads, outdir=outdir, desc=desc,
        progress=False if no_progress else None)
    flags = {k: v for k, v in flags.items() if v is not None}

    if resume_run is not None:
        from gantl.training.loop import resume_run as do_resume

        extra = [f"{k}={_as_text(v)}" for k, v in flags.items()] + list(set_ or [])
        run_dir = do_resume(resume_run, extra)
        if run_dir is not None:
            typer.echo(f"run continued in {run_dir}")
        return

    if config is not None:
        opts = load_toml(TrainOptions, config)
        opts = apply_overrides(opts, flags) if flags else opts
    else:
        opts = from_dict(TrainOptions, flags)
    if set_:
        opts = apply_overrides(opts, list(set_))
    if opts.resume:
        opts = _adopt_source_choices(opts, flags, set_ or [], config is not None)

    if dry_run:
        _dry_run(opts, as_json)
        return
    from gantl.training.loop import train as do_train

    run_dir = do_train(opts)
    if run_dir is not None:
        typer.echo(f"run written to {run_dir}")


def _adopt_source_choices(opts: Any, flags: dict[str, Any], set_: list[str], from_config: bool) -> Any:
    """With ``--resume SRC``, train the source's architecture and preset unless told otherwise.

    Only options the user gave (flags, ``--set``) count as choices; a given one that contradicts the
    source is an error naming both values. A ``--config`` file (e.g. a run's config.toml, which
    records the resolved model and cfg) is taken as given.
    """
    from gantl.config import apply_overrides
    from gantl.transfer.source import check_choices_against_source

    given = {k: flags.get(k) for k in ("model", "cfg") if flags.get(k) is not None}
    for item in set_:
        key, _, value = item.partition("=")
        if key.strip() in ("model", "cfg"):
            given[key.strip()] = value.strip()
    if from_config:
        given.setdefault("model", opts.model)
        given.setdefault("cfg", opts.cfg)
    adopt = check_choices_against_source(opts.resume, given)
    return apply_overrides(opts, adopt) if adopt else opts


def _split(values: list[str] | None) -> list[str] | None:
    """``--method a --method b,c`` -> [a, b, c]."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _as_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _dry_run(opts: Any, as_json: bool) -> None:
    from gantl.training.loop import build_setup, count_parameters, describe_networks

    need_dataset = opts.resolution is None
    if need_dataset and opts.data is None:
        raise ConfigError("--dry-run needs --data, or --resolution (and --num-classes) to describe the networks")
    setup = build_setup(opts, need_dataset=need_dataset)
    if as_json:
        typer.echo(json.dumps(describe_networks(setup)))
        return
    from rich.console import Console

    console = Console()
    for key, net in (("G", setup.G), ("D", setup.D)):
        console.print(f"[bold]{key}[/bold] ({type(net).__module__}.{type(net).__name__})")
        console.print(str(net))
        trainable, frozen = count_parameters(net)
        console.print(f"{key}: {trainable + frozen:,} parameters, {trainable:,} trainable, {frozen:,} frozen")
    h = setup.hyper
    console.print(f"batch {h.batch}, G lr {h.glr:g}, D lr {h.dlr:g}, gamma {h.gamma:g}, {h.loss} loss, "
                  f"{h.d_steps} D step(s) per G step, ema {h.ema_kimg:g} kimg, "
                  f"methods {', '.join(opts.methods) or 'none'}")
