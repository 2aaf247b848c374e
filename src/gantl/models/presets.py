"""StyleGAN2 configuration presets: NVIDIA's ``--cfg`` specs plus small CPU presets.

The first six names mean exactly what they mean in stylegan2-ada-pytorch's ``train.py``
(``auto``, ``stylegan2``, ``paper256``, ``paper512``, ``paper1024``, ``cifar``), including the
settings that script layers on top of the spec table: ``z_dim = w_dim = 512``,
``channel_max = 512``, ``channel_base = fmaps * 32768``, ``conv_clamp = 256``, 4 fp16
resolutions (ignored here, gantl runs float32), Adam betas (0, 0.99), lazy regularisation
every 4 (G) / 16 (D) minibatches, and for ``cifar``: no path-length regularisation, no style
mixing and an ``orig`` (non-residual) discriminator.

The ``cpu-*`` presets are gantl's own, sized to train at a useful speed on a 2-core CPU at
32 px (parameter counts at 32 px, RGB, unconditional):

* ``cpu-small``: z = w = 256, channels 128 (64 at 32 px), 2 mapping layers;
  G ≈ 1.31M parameters (synthesis 1.18M), D ≈ 1.15M.
* ``cpu-tiny``:  z = w = 128, channels 64 (32 at 32 px), 2 mapping layers;
  G ≈ 0.33M parameters, D ≈ 0.29M.

(For comparison, ``cifar`` at 32 px is G ≈ 19.9M, D ≈ 20.7M: 512 channels at every resolution.)
Both CPU presets run in float32 without clamping, path-length regularisation off (it costs a
second generator backward pass), style mixing on, a resnet D, batch 32, mbstd group 4, and
NVIDIA's ``auto`` heuristics for gamma (``0.0002 * res**2 / batch``) and EMA (``batch * 10 / 32``).

Use :func:`get_preset` and then ``preset.generator_kwargs(...)`` /
``preset.discriminator_kwargs(...)`` to build networks; the other fields are the training
hyperparameters the training loop reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gantl.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """Architecture and training hyperparameters of one configuration.

    ``batch`` is the total minibatch over ``ref_gpus`` devices (NVIDIA's ``mb``);
    ``mbstd_group`` is the minibatch-stddev group size; ``ema_kimg`` the G_ema half-life in
    thousands of images, ramped up as ``min(ema_kimg, cur_kimg * ema_rampup)`` when
    ``ema_rampup`` is not None.
    """

    name: str
    ref_gpus: int
    kimg: int
    batch: int
    mbstd_group: int
    fmaps: float
    lr: float
    gamma: float
    ema_kimg: float
    ema_rampup: float | None
    map_layers: int
    channel_base: int
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0
    d_architecture: str = "resnet"
    conv_clamp: float | None = 256
    num_fp16_res: int = 4
    betas: tuple[float, float] = (0.0, 0.99)
    G_reg_interval: int = 4
    D_reg_interval: int = 16
    description: str = ""

    @property
    def batch_gpu(self) -> int:
        """Per-device batch (NVIDIA's ``batch_gpu = mb // ref_gpus``)."""
        return max(self.batch // self.ref_gpus, 1)

    def generator_kwargs(self, img_resolution: int, img_channels: int = 3, c_dim: int = 0) -> dict[str, Any]:
        """JSON-able keyword arguments for :class:`gantl.models.stylegan2.Generator`."""
        return dict(
            z_dim=self.z_dim, c_dim=c_dim, w_dim=self.w_dim, img_resolution=img_resolution,
            img_channels=img_channels, mapping_kwargs=dict(num_layers=self.map_layers),
            synthesis_kwargs=dict(channel_base=self.channel_base, channel_max=self.channel_max,
                                  num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp),
        )

    def discriminator_kwargs(self, img_resolution: int, img_channels: int = 3, c_dim: int = 0) -> dict[str, Any]:
        """JSON-able keyword arguments for :class:`gantl.models.stylegan2.Discriminator`."""
        return dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
            architecture=self.d_architecture, channel_base=self.channel_base, channel_max=self.channel_max,
            num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp,
            block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=self.mbstd_group),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["batch_gpu"] = self.batch_gpu
        return d


# NVIDIA's spec table (train.py): ref_gpus, kimg, mb, mbstd, fmaps, lrate, gamma, ema, ramp, map.
_NVIDIA_SPECS: dict[str, tuple[int, int, int, int, float, float, float, float, float | None, int]] = {
    "stylegan2": (8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": (8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": (8, 25000, 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": (8, 25000, 32, 4, 1, 0.002, 2, 10, None, 8),
    "cifar": (2, 100000, 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2),
}

_DESCRIPTIONS = {
    "auto": "NVIDIA's automatic choice from resolution and GPU count (good default for new data)",
    "stylegan2": "original StyleGAN2 config F (FFHQ/LSUN, 8 GPUs)",
    "paper256": "StyleGAN2-ADA paper, 256 px (half channels)",
    "paper512": "StyleGAN2-ADA paper, 512 px",
    "paper1024": "StyleGAN2-ADA paper, 1024 px",
    "cifar": "StyleGAN2-ADA paper, CIFAR-10 32 px (orig D, no style mixing, no path length)",
    "cpu-small": "gantl: ~1.3M-parameter G, ~1.2M D for 32 px on a 2-core CPU",
    "cpu-tiny": "gantl: ~0.3M-parameter G and D for quick CPU experiments and tests",
}

PRESET_NAMES: tuple[str, ...] = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar",
                                 "cpu-small", "cpu-tiny")


def _auto(resolution: int, gpus: int) -> Preset:
    # NVIDIA's heuristics (train.py, cfg == 'auto').
    mb = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    fmaps = 1 if resolution >= 512 else 0.5
    return Preset(
        name="auto", ref_gpus=gpus, kimg=25000, batch=mb, mbstd_group=min(mb // gpus, 4), fmaps=fmaps,
        lr=0.002 if resolution >= 1024 else 0.0025, gamma=0.0002 * resolution**2 / mb, ema_kimg=mb * 10 / 32,
        ema_rampup=0.05, map_layers=2, channel_base=int(fmaps * 32768), description=_DESCRIPTIONS["auto"],
    )


def _cpu(name: str, resolution: int, channel_base: int, channel_max: int, zw: int) -> Preset:
    batch = 32
    return Preset(
        name=name, ref_gpus=1, kimg=1000, batch=batch, mbstd_group=4, fmaps=channel_base / 32768,
        lr=0.0025, gamma=0.0002 * resolution**2 / batch, ema_kimg=batch * 10 / 32, ema_rampup=0.05, map_layers=2,
        channel_base=channel_base, channel_max=channel_max, z_dim=zw, w_dim=zw, style_mixing_prob=0.9,
        pl_weight=0.0, conv_clamp=None, num_fp16_res=0, description=_DESCRIPTIONS[name],
    )


def get_preset(name: str, resolution: int | None = None, gpus: int = 1) -> Preset:
    """The preset ``name``. ``auto`` needs the training ``resolution`` (and uses ``gpus``);
    the ``cpu-*`` presets use ``resolution`` (default 32) only for the R1 gamma heuristic."""
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown StyleGAN2 preset '{name}'; choose one of: {', '.join(PRESET_NAMES)}")
    if gpus < 1:
        raise ConfigError(f"gpus must be >= 1, got {gpus}")
    if name == "auto":
        if resolution is None:
            raise ConfigError("preset 'auto' derives its settings from the resolution: pass resolution=<pixels>")
        return _auto(resolution, gpus)
    if name == "cpu-small":
        return _cpu(name, resolution or 32, channel_base=2048, channel_max=128, zw=256)
    if name == "cpu-tiny":
        return _cpu(name, resolution or 32, channel_base=1024, channel_max=64, zw=128)
    ref_gpus, kimg, mb, mbstd, fmaps, lr, gamma, ema, ramp, map_layers = _NVIDIA_SPECS[name]
    extra: dict[str, Any] = {}
    if name == "cifar":
        extra = dict(style_mixing_prob=0.0, pl_weight=0.0, d_architecture="orig")
    return Preset(
        name=name, ref_gpus=ref_gpus, kimg=kimg, batch=mb, mbstd_group=mbstd, fmaps=fmaps, lr=lr, gamma=gamma,
        ema_kimg=ema, ema_rampup=ramp, map_layers=map_layers, channel_base=int(fmaps * 32768),
        description=_DESCRIPTIONS[name], **extra,
    )


def describe_presets() -> dict[str, str]:
    """Name -> one-line description, for ``--help`` texts and ``gantl models list``."""
    return {name: _DESCRIPTIONS[name] for name in PRESET_NAMES}
