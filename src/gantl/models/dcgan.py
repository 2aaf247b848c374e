"""DCGAN (Radford et al. 2016) generator and discriminator, 32 to 256 px.

The layer layout follows the PyTorch DCGAN tutorial so its checkpoints map onto these
networks one to one; only the module names differ (named blocks instead of one flat
``nn.Sequential``), because gantl's transfer methods freeze *blocks* by index.

Generator (``G.blocks`` ordered from the latent side)::

    blocks.0  conv = ConvTranspose2d(z_dim, C0, 4, 1, 0, bias=False), bn, ReLU   -> 4x4
    blocks.i  conv = ConvTranspose2d(C_{i-1}, C_{i-1}/2, 4, 2, 1, bias=False), bn, ReLU
    blocks.-1 conv = ConvTranspose2d(ngf, img_channels, 4, 2, 1, bias=False), Tanh  (no bn)

with ``C0 = ngf * 2**(log2(resolution) - 3)`` (``ngf*8`` at 64 px, exactly the tutorial).

Discriminator (``D.blocks`` ordered from the image side)::

    blocks.0  conv = Conv2d(img_channels, ndf, 4, 2, 1, bias=False), LeakyReLU(0.2)   (no bn)
    blocks.i  conv = Conv2d(C, 2C, 4, 2, 1, bias=False), bn, LeakyReLU(0.2)           -> 4x4
    blocks.-1 conv = Conv2d(ndf * 2**(n-1), 1, 4, 1, 0, bias=False) -> logit (no sigmoid)

Mapping from the tutorial's ``main.N`` keys at 64 px (for the importer): generator
``main.0 -> blocks.0.conv``, ``main.1 -> blocks.0.bn``, ``main.3 -> blocks.1.conv``,
``main.4 -> blocks.1.bn``, ``main.6/7 -> blocks.2.conv/bn``, ``main.9/10 -> blocks.3.conv/bn``,
``main.12 -> blocks.4.conv``; discriminator ``main.0 -> blocks.0.conv``,
``main.2/3 -> blocks.1.conv/bn``, ``main.5/6 -> blocks.2.conv/bn``, ``main.8/9 -> blocks.3.conv/bn``,
``main.11 -> blocks.4.conv``. In general a block with batch norm occupies 3 tutorial slots
(conv, bn, activation) and the first D block 2 (conv, activation). The tutorial's final
``Sigmoid`` has no weights: gantl's D returns logits, which the logistic loss expects.

Conditioning (``c_dim > 0``): the generator's batch norms become *conditional* — the
affine-free normalisation is followed by a per-class gain and bias (``bn.gain``,
``bn.bias`` linear maps of the one-hot label, initialised to the identity transform) —
and the discriminator adds a projection term ``<embed(c), phi(x)>`` (Miyato & Koyama
2018) on the spatially summed features that feed the last layer.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

RESOLUTIONS = (32, 64, 128, 256)


def _check_resolution(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        from gantl.errors import ConfigError

        raise ConfigError(f"DCGAN supports resolutions {RESOLUTIONS}, not {resolution}; "
                          f"pass --resolution 32, 64, 128 or 256")
    return int(math.log2(resolution))


def _init_dcgan_(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """The tutorial's weights_init: conv ~ N(0, 0.02), batch-norm gain ~ N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.02, generator=generator)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            with torch.no_grad():
                m.weight.normal_(1.0, 0.02, generator=generator)
                m.bias.zero_()


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are chosen by the class label (one-hot ``c``).

    ``gain``/``bias`` are bias-free linear maps from the one-hot label, so each class owns
    one row of per-channel scales. Gain is applied as ``1 + c @ gain`` with ``gain``
    initialised at zero, so a fresh layer equals plain batch norm.
    """

    def __init__(self, num_features: int, c_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(c_dim, num_features, bias=False)
        self.bias = nn.Linear(c_dim, num_features, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        gain = 1.0 + self.gain(c)
        return y * gain[:, :, None, None] + self.bias(c)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """Transposed conv, then (conditional) batch norm and ReLU — or Tanh for the output block."""

    def __init__(self, in_ch: int, out_ch: int, *, first: bool, last: bool, c_dim: int) -> None:
        super().__init__()
        stride, padding = (1, 0) if first else (2, 1)
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 4, stride, padding, bias=False)
        self.last = last
        self.conditional = c_dim > 0 and not last
        if not last:
            self.bn = ConditionalBatchNorm2d(out_ch, c_dim) if self.conditional else nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        x = self.conv(x)
        if self.last:
            return torch.tanh(x)
        x = self.bn(x, c) if self.conditional else self.bn(x)
        return torch.relu(x)


class Generator(nn.Module):
    """DCGAN generator: ``G(z, c) -> [N, img_channels, R, R]`` in [-1, 1]."""

    def __init__(self, z_dim: int = 100, c_dim: int = 0, img_resolution: int = 64, img_channels: int = 3,
                 ngf: int = 64) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution)
        self.z_dim, self.c_dim = int(z_dim), int(c_dim)
        self.img_resolution, self.img_channels, self.ngf = int(img_resolution), int(img_channels), int(ngf)
        self.config: dict[str, Any] = dict(z_dim=self.z_dim, c_dim=self.c_dim, img_resolution=self.img_resolution,
                                           img_channels=self.img_channels, ngf=self.ngf)
        n_up = log2 - 2  # stride-2 blocks after the 4x4 projection
        channels = [ngf * 2 ** (n_up - 1 - i) for i in range(n_up)]  # C0 .. ngf
        blocks = [GeneratorBlock(z_dim, channels[0], first=True, last=False, c_dim=c_dim)]
        for i in range(1, n_up):
            blocks.append(GeneratorBlock(channels[i - 1], channels[i], first=False, last=False, c_dim=c_dim))
        blocks.append(GeneratorBlock(channels[-1], img_channels, first=False, last=True, c_dim=c_dim))
        self.blocks = nn.ModuleList(blocks)
        _init_dcgan_(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random") -> torch.Tensor:
        """Generate images. ``truncation_psi`` scales z toward its mean (0); DCGAN has no noise inputs."""
        del noise_mode
        c = _labels(c, z.shape[0], self.c_dim, z)
        x = (z * truncation_psi if truncation_psi != 1 else z).reshape(z.shape[0], self.z_dim, 1, 1)
        for block in self.blocks:
            x = block(x, c)
        return x


class DiscriminatorBlock(nn.Module):
    """Strided conv, then batch norm (not on the first block) and LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, *, first: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False)
        self.first = first
        if not first:
            self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if not self.first:
            x = self.bn(x)
        return nn.functional.leaky_relu(x, 0.2)


class DiscriminatorOutput(nn.Module):
    """The 4x4 valid conv to one logit, plus the projection term when conditional."""

    def __init__(self, in_ch: int, c_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 1, 4, 1, 0, bias=False)
        self.c_dim = c_dim
        if c_dim > 0:
            self.embed = nn.Linear(c_dim, in_ch, bias=False)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x).flatten(1)
        if self.c_dim > 0:
            out = out + (self.embed(c) * x.sum(dim=(2, 3))).sum(dim=1, keepdim=True)
        return out


class Discriminator(nn.Module):
    """DCGAN discriminator: ``D(img, c) -> [N, 1]`` logits."""

    def __init__(self, c_dim: int = 0, img_resolution: int = 64, img_channels: int = 3, ndf: int = 64) -> None:
        super().__init__()
        log2 = _check_resolution(img_resolution)
        self.c_dim, self.img_resolution = int(c_dim), int(img_resolution)
        self.img_channels, self.ndf = int(img_channels), int(ndf)
        self.config: dict[str, Any] = dict(c_dim=self.c_dim, img_resolution=self.img_resolution,
                                           img_channels=self.img_channels, ndf=self.ndf)
        n_down = log2 - 2  # stride-2 blocks down to 4x4
        blocks: list[nn.Module] = [DiscriminatorBlock(img_channels, ndf, first=True)]
        ch = ndf
        for _ in range(1, n_down):
            blocks.append(DiscriminatorBlock(ch, ch * 2, first=False))
            ch *= 2
        blocks.append(DiscriminatorOutput(ch, c_dim))
        self.blocks = nn.ModuleList(blocks)
        _init_dcgan_(self)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = _labels(c, img.shape[0], self.c_dim, img)
        x = img
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1](x, c)


def _labels(c: torch.Tensor | None, n: int, c_dim: int, like: torch.Tensor) -> torch.Tensor | None:
    """Validate the one-hot label tensor; None for unconditional networks."""
    if c_dim == 0:
        return None
    if c is None or c.shape != (n, c_dim):
        got = None if c is None else tuple(c.shape)
        raise ValueError(f"conditional network needs labels of shape ({n}, {c_dim}), got {got}")
    return c.to(dtype=like.dtype)
