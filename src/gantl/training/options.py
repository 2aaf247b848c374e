"""``gantl train`` options: one dataclass, validated, written into every run dir as config.toml.

Training hyper-parameters left at ``None`` come from the preset (``--cfg``): the
StyleGAN2 presets live in :mod:`gantl.models.presets` (same names and meaning as
stylegan2-ada-pytorch's ``--cfg``); the DCGAN presets are defined here in
:data:`DCGAN_PRESETS`. Anything given explicitly wins over the preset, and the
resolved numbers are logged and stored in the snapshot metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from gantl.config import option
from gantl.errors import ConfigError

MODELS = ("stylegan2", "dcgan", "resnet")
LOSSES = ("auto", "logistic", "hinge")
AUGMENTS = ("none", "ada", "diffaugment")
DEVICES = ("auto", "cpu", "cuda", "mps")
INITS = ("source", "scratch")  # where G / D start when a source is given (TransferGAN, Wang et al. 2018)


@dataclass
class TrainOptions:
    """Everything that defines a training run (TOML keys are these field names)."""

    # data
    data: str | None = option(None, help="Dataset: folder, zip, or zip:member/prefix (e.g. cifar10.zip:train).")
    cond: bool = option(False, help="Train class-conditionally on the dataset's labels.")
    include_classes: list[str] = option(default_factory=list, help="Only these classes of the dataset.")
    exclude_classes: list[str] = option(default_factory=list, help="Drop these classes (e.g. horse).")
    subset: int | None = option(None, min=1, help="Use this many images (seeded choice).")
    xflip: bool = option(False, help="Add mirrored copies of every image.")
    # architecture
    model: str = option("stylegan2", choices=MODELS, help="Network architecture.")
    cfg: str = option("auto", help="Preset: StyleGAN2 (auto, stylegan2, paper256, paper512, paper1024, cifar, "
                                   "cpu-small, cpu-tiny), DCGAN (dcgan, dcgan-small) or ResNet (resnet, "
                                   "resnet-small, resnet-tiny).")
    resolution: int | None = option(None, min=4, help="Image size; defaults to the dataset's.")
    num_classes: int | None = option(None, min=0, help="Label count (c_dim); defaults to the dataset's with --cond.")
    channels: int = option(3, min=1, max=4, help="Image channels.")
    # optimisation
    batch: int | None = option(None, min=1, help="Global batch size (preset's when omitted).")
    glr: float | None = option(None, min=0, help="Generator learning rate.")
    dlr: float | None = option(None, min=0, help="Discriminator learning rate.")
    g_betas: list[float] | None = option(None, help="Generator Adam betas, e.g. 0,0.99.")
    d_betas: list[float] | None = option(None, help="Discriminator Adam betas.")
    gamma: float | None = option(None, min=0, help="R1 regularisation weight (0 disables it).")
    loss: str = option("auto", choices=LOSSES, help="Adversarial loss: logistic (non-saturating) or hinge; "
                                                    "auto: the architecture's (hinge for resnet).")
    d_steps: int | None = option(None, min=1, max=16, help="D updates per G update (n_dis); each D update sees "
                                                           "a new real batch. Preset's when omitted.")
    r1_interval: int = option(16, min=1, help="Lazy R1: apply every N minibatches (loss scaled by N).")
    pl_weight: float | None = option(None, min=0, help="Path-length regularisation weight (StyleGAN2).")
    pl_interval: int = option(4, min=1, help="Lazy path-length regularisation interval.")
    pl_decay: float = option(0.01, min=0, max=1, help="Path-length mean EMA decay.")
    pl_batch_shrink: int = option(2, min=1, help="Path-length batch shrink factor.")
    style_mixing: float | None = option(None, min=0, max=1, help="Style-mixing probability (StyleGAN2).")
    ema_kimg: float | None = option(None, min=0, help="G_ema half-life in thousands of images.")
    ema_rampup: float | None = option(None, min=0, help="G_ema ramp-up (fraction of cur_nimg); none disables.")
    # schedule
    kimg: float = option(1000.0, min=0, help="Training length in thousands of real images shown to D.")
    tick_kimg: float = option(4.0, min=0.001, help="Write one stats.jsonl line every N kimg.")
    snap_kimg: float = option(50.0, min=0, help="Snapshot (checkpoint + fakes grid) every N kimg; 0: only at end.")
    seed: int = option(0, min=0, help="Seed for initialisation, data order and latents.")
    # augmentation
    aug: str = option("none", choices=AUGMENTS, help="Augmentation of every image D sees.")
    aug_pipe: str = option("bgc", help="ADA operations preset (bgc, bg, ...).")
    ada_target: float = option(0.6, min=0, max=1, help="ADA target for E[sign(D(real))].")
    ada_p: float | None = option(None, min=0, max=1, help="Fixed augmentation probability (disables tuning).")
    ada_kimg: float = option(500.0, min=0.001, help="ADA speed: kimg for p to go 0 -> 1.")
    ada_cap: float = option(1.0, min=0, max=1, help="Upper bound for the tuned p.")
    ada_interval: int = option(4, min=1, help="Adjust p every N minibatches.")
    diffaugment: str = option("color,translation,cutout", help="DiffAugment policy.")
    # transfer
    methods: list[str] = option(default_factory=list, help="Transfer methods NAME[:ARGS] (the list: gantl train "
                                                           "--help, from gantl.transfer.base.METHODS).")
    resume: str | None = option(None, help="Source checkpoint or zoo name to start from.")
    allow_partial: bool = option(False, help="Load only the source tensors that fit the target.")
    source_class: str | None = option(None, help="With a class-conditional source and an unconditional target: "
                                                 "the source class to start from (index or name), or auto: the class "
                                                 "whose samples are nearest the target data by FID.")
    fresh_d: bool = option(False, help="Take only G (and G_ema) from the source; D starts from its seeded "
                                       "initialisation (needed for generator-only sources). Same as "
                                       "init_d = scratch.")
    init_g: str = option("source", choices=INITS, help="With a source: G (and G_ema) start from its weights "
                                                       "(source) or from the seeded initialisation (scratch); "
                                                       "TransferGAN's G/D initialisation matrix.")
    init_d: str = option("source", choices=INITS, help="With a source: D starts from its weights (source) or "
                                                       "from the seeded initialisation (scratch, as --fresh-d).")
    # evaluation
    metrics: list[str] = option(default_factory=list, help="Metrics to compute at each snapshot.")
    best_metric: str | None = option(None, help="Keep best.safetensors by this metric (lower is better).")
    metrics_num_gen: int | None = option(None, min=1, help="Generated images per metric (default: dataset size).")
    # machinery
    device: str = option("auto", choices=DEVICES, help="auto picks cuda, then mps, then cpu.")
    workers: int = option(0, min=0, help="Image-decoding threads for datasets too large to cache.")
    threads: int | None = option(None, min=1, help="torch intra-op threads (default: torch's).")
    outdir: str = option("runs", help="Parent folder of run directories.")
    desc: str | None = option(None, help="Extra words for the run directory name.")
    tensorboard: bool = option(True, help="Write TensorBoard scalars to tb/.")
    progress: bool = option(True, help="Show a progress bar.")
    grid_size: int = option(8, min=1, max=32, help="Fakes grid is N x N images.")

    def check(self) -> None:
        if self.kimg <= 0:  # the loop would stop before its first step: exit 0, no snapshot, nothing learnt
            raise ConfigError(f"kimg is {self.kimg:g}, so nothing would train and no snapshot would be written; "
                              "give --kimg > 0 (e.g. --kimg 0.5), or --dry-run to only build the networks")
        for key in ("g_betas", "d_betas"):
            value = getattr(self, key)
            if value is not None and (len(value) != 2 or not all(0 <= b < 1 for b in value)):
                raise ConfigError(f"config key '{key}' needs two numbers in [0, 1), e.g. 0,0.99; got {value}")
        if self.model == "dcgan" and self.cfg == "auto":
            self.cfg = "dcgan"
        if self.model == "dcgan" and self.cfg not in DCGAN_PRESETS:
            raise ConfigError(f"DCGAN presets are {', '.join(DCGAN_PRESETS)}, not '{self.cfg}'; pass --cfg dcgan")
        if self.model == "resnet" and self.cfg == "auto":
            self.cfg = "resnet"
        if self.model == "resnet" and self.cfg not in RESNET_PRESETS:
            raise ConfigError(f"ResNet presets are {', '.join(RESNET_PRESETS)}, not '{self.cfg}'; "
                              f"pass --cfg resnet-small")
        if (self.init_g == "scratch" or self.init_d == "scratch") and not self.resume:
            raise ConfigError("--init-g/--init-d scratch choose which network leaves a source's weights, so they "
                              "need --resume SOURCE; without a source both start from scratch anyway")
        if self.fresh_d or self.init_d == "scratch":  # --fresh-d is the D column of the initialisation matrix
            self.fresh_d, self.init_d = True, "scratch"
        if self.fresh_d and not self.resume:
            raise ConfigError("--fresh-d keeps a source's G and starts D fresh, so it needs --resume SOURCE; "
                              "without a source D (and G) start fresh anyway: drop --fresh-d")
        if self.best_metric and self.best_metric not in self.metrics:
            raise ConfigError(f"best_metric '{self.best_metric}' must also be in metrics; add --metrics "
                              f"{self.best_metric}")


@dataclass(frozen=True)
class Hyper:
    """The resolved numbers a run trains with (preset + explicit options)."""

    G_kwargs: dict
    D_kwargs: dict
    batch: int
    glr: float
    dlr: float
    g_betas: tuple[float, float]
    d_betas: tuple[float, float]
    gamma: float
    pl_weight: float
    style_mixing: float
    ema_kimg: float
    ema_rampup: float | None
    g_reg_interval: int | None
    d_reg_interval: int | None
    loss: str = "logistic"
    d_steps: int = 1


# DCGAN presets: Radford et al.'s optimiser (Adam 2e-4, beta1 0.5, batch 128) and no R1 or EMA
# by default; "dcgan-small" halves the width so a CPU trains it at useful speed.
DCGAN_PRESETS: dict[str, dict] = {
    "dcgan": dict(ngf=64, ndf=64, z_dim=100, batch=128, lr=2e-4, betas=(0.5, 0.999), gamma=0.0, ema_kimg=0.0,
                  ema_rampup=None),
    "dcgan-small": dict(ngf=32, ndf=32, z_dim=100, batch=64, lr=2e-4, betas=(0.5, 0.999), gamma=0.0,
                        ema_kimg=0.0, ema_rampup=None),
}


# ResNet (SNGAN-style) presets. "resnet" is SNGAN's CIFAR model (G 4.3M, D 1.06M parameters:
# ch_g 256, ch_d 128, hinge loss, spectral norm in D, Adam betas (0, 0.9)); the smaller ones keep
# the design and narrow the convolutions so a CPU trains them. One D step per G step with a
# two-time-scale learning rate (D faster, Heusel et al. 2017) instead of SNGAN's five D steps:
# on a CPU every D step costs as much wall time as the images it sees. G_ema as in StyleGAN2.
RESNET_PRESETS: dict[str, dict] = {
    "resnet": dict(ch_g=256, ch_d=128, z_dim=128, batch=64, glr=2e-4, dlr=2e-4, betas=(0.0, 0.9), gamma=0.0,
                   ema_kimg=10.0, ema_rampup=0.05, d_steps=5),
    "resnet-small": dict(ch_g=128, ch_d=128, z_dim=128, batch=64, glr=2e-4, dlr=4e-4, betas=(0.0, 0.9),
                         gamma=0.0, ema_kimg=10.0, ema_rampup=0.05, d_steps=1),
    "resnet-tiny": dict(ch_g=64, ch_d=64, z_dim=128, batch=64, glr=2e-4, dlr=4e-4, betas=(0.0, 0.9), gamma=0.0,
                        ema_kimg=10.0, ema_rampup=0.05, d_steps=1),
}

# The adversarial loss each architecture was published with.
DEFAULT_LOSS = {"stylegan2": "logistic", "dcgan": "logistic", "resnet": "hinge"}


def _pick(explicit, preset):
    return preset if explicit is None else explicit


def resolve_hyper(opts: TrainOptions, *, resolution: int, c_dim: int, channels: int) -> Hyper:
    """Merge the preset named by ``opts.cfg`` with the explicitly given options."""
    if opts.model == "dcgan":
        p = DCGAN_PRESETS[opts.cfg]
        return _family_hyper(opts, p, dict(z_dim=p["z_dim"], ngf=p["ngf"]), dict(ndf=p["ndf"]),
                             resolution=resolution, c_dim=c_dim, channels=channels)
    if opts.model == "resnet":
        p = RESNET_PRESETS[opts.cfg]
        return _family_hyper(opts, p, dict(z_dim=p["z_dim"], ch=p["ch_g"]), dict(ch=p["ch_d"]),
                             resolution=resolution, c_dim=c_dim, channels=channels)
    from gantl.models import presets

    return presets_to_hyper(presets, opts, resolution=resolution, c_dim=c_dim, channels=channels)


def presets_to_hyper(presets, opts: TrainOptions, *, resolution: int, c_dim: int, channels: int) -> Hyper:
    """StyleGAN2: the preset (``gantl.models.presets``) with explicit options on top.

    As in stylegan2-ada-pytorch, G uses lazy regularisation every ``G_reg_interval``
    minibatches (its Adam lr/betas are adjusted for it even when path length is off) and
    D every ``r1_interval`` (the preset's ``D_reg_interval``, 16, unless changed).
    """
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    p = presets.get_preset(opts.cfg, resolution=resolution, gpus=world)
    G_kwargs = p.generator_kwargs(resolution, channels, c_dim)
    D_kwargs = p.discriminator_kwargs(resolution, channels, c_dim)
    batch = _pick(opts.batch, p.batch)
    gamma = _pick(opts.gamma, p.gamma)
    return Hyper(
        G_kwargs=G_kwargs, D_kwargs=D_kwargs, batch=batch, glr=_pick(opts.glr, p.lr), dlr=_pick(opts.dlr, p.lr),
        g_betas=tuple(_pick(opts.g_betas, p.betas)), d_betas=tuple(_pick(opts.d_betas, p.betas)),
        gamma=gamma, pl_weight=_pick(opts.pl_weight, p.pl_weight),
        style_mixing=_pick(opts.style_mixing, p.style_mixing_prob),
        ema_kimg=_pick(opts.ema_kimg, p.ema_kimg), ema_rampup=_pick(opts.ema_rampup, p.ema_rampup),
        g_reg_interval=opts.pl_interval if p.G_reg_interval else None,
        d_reg_interval=opts.r1_interval if gamma > 0 else None,
        loss=_loss(opts), d_steps=_pick(opts.d_steps, 1))


def _family_hyper(opts: TrainOptions, p: dict, g_arch: dict, d_arch: dict, *, resolution: int, c_dim: int,
                  channels: int) -> Hyper:
    """A DCGAN/ResNet preset (``p``: batch, lr or glr/dlr, betas, gamma, EMA, optional d_steps) with
    explicit options on top; neither family has path length, style mixing or lazy G regularisation."""
    data = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels)
    gamma = _pick(opts.gamma, p["gamma"])
    return Hyper(
        G_kwargs=dict(**data, **g_arch), D_kwargs=dict(**data, **d_arch), batch=_pick(opts.batch, p["batch"]),
        glr=_pick(opts.glr, p.get("glr", p.get("lr"))), dlr=_pick(opts.dlr, p.get("dlr", p.get("lr"))),
        g_betas=tuple(_pick(opts.g_betas, p["betas"])), d_betas=tuple(_pick(opts.d_betas, p["betas"])),
        gamma=gamma, pl_weight=0.0, style_mixing=0.0,
        ema_kimg=_pick(opts.ema_kimg, p["ema_kimg"]), ema_rampup=_pick(opts.ema_rampup, p["ema_rampup"]),
        g_reg_interval=None, d_reg_interval=opts.r1_interval if gamma > 0 else None,
        loss=_loss(opts), d_steps=_pick(opts.d_steps, p.get("d_steps", 1)))


def _loss(opts: TrainOptions) -> str:
    """The adversarial loss: explicit, else the architecture's published one."""
    return DEFAULT_LOSS[opts.model] if opts.loss == "auto" else opts.loss
