"""ResNet GAN (SNGAN / GP-GAN style) generator and discriminator, 32 to 256 px.

This is the residual architecture of Miyato et al. 2018 (SNGAN, CIFAR-10 variant) and of the
GP-GAN/ResNet sources that Zhao, Cong & Carin 2020 (AdaFM) transfer from:

Generator (``G.blocks`` ordered from the latent side)::

    blocks.0   input:  Linear(z_dim, 4*4*C)                                         -> 4x4
    blocks.i   GBlock: BN, ReLU, up x2 (nearest), conv3x3, BN, ReLU, conv3x3
                       + shortcut: up x2, conv1x1                                  -> 2x
    blocks.-1  output: BN, ReLU, conv3x3 -> img_channels, tanh

Discriminator (``D.blocks`` ordered from the image side; spectral normalisation on every
weight layer, which is what keeps this D Lipschitz without a gradient penalty)::

    blocks.0   DBlockFirst: conv3x3, ReLU, conv3x3, avgpool2 + shortcut avgpool2, conv1x1
    blocks.i   DBlock:      ReLU, conv3x3, ReLU, conv3x3, [avgpool2] + shortcut [conv1x1, avgpool2]
    blocks.-1  output: ReLU, global *sum* pooling, Linear -> 1 logit
                       + projection <embed(c), h> when conditional (Miyato & Koyama 2018)

D downsamples to 8x8 and then runs two blocks at 8x8, as the SNGAN CIFAR model does
(32 px: 32 -> 16 -> 8 -> 8 -> 8). Widths are constant (``ch_g`` in G, ``ch_d`` in D): SNGAN's
CIFAR model is ``ch_g=256, ch_d=128``.

Conditioning (``c_dim > 0``): G's batch norms become *class-conditional* (per-class gain and
bias, :class:`gantl.models.dcgan.ConditionalBatchNorm2d`, identity at initialisation) and D adds
the projection term. :func:`gantl.transfer.conditional.conditional_from_unconditional` copies an
unconditional network's batch-norm affine parameters into every class row (TransferGAN's
unconditional -> conditional transfer).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from gantl.models.dcgan import ConditionalBatchNorm2d, _labels

RESOLUTIONS = (32, 64, 128, 256)


def _log2(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        from gantl.errors import ConfigError

        raise ConfigError(f"the ResNet GAN supports resolutions {RESOLUTIONS}, not {resolution}; "
                          f"pass --resolution 32, 64, 128 or 256")
    return int(math.log2(resolution))


def _xavier_(module: nn.Module, gain: float) -> None:
    """SNGAN's initialisation: Xavier-uniform weights (gain sqrt(2) on residual convs), zero bias."""
    nn.init.xavier_uniform_(module.weight, gain)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


class _Norm(nn.Module):
    """Batch norm, class-conditional when ``c_dim > 0`` (same call signature either way)."""

    def __init__(self, channels: int, c_dim: int) -> None:
        super().__init__()
        self.conditional = c_dim > 0
        self.bn = ConditionalBatchNorm2d(channels, c_dim) if self.conditional else nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.bn(x, c) if self.conditional else self.bn(x)


class GInput(nn.Module):
    """z -> a 4x4 feature map (one linear layer)."""

    def __init__(self, z_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.fc = nn.Linear(z_dim, 16 * channels)
        _xavier_(self.fc, 1.0)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        del c
        return self.fc(z).reshape(z.shape[0], self.channels, 4, 4)


class GBlock(nn.Module):
    """Pre-activation residual up-sampling block."""

    def __init__(self, in_ch: int, out_ch: int, c_dim: int) -> None:
        super().__init__()
        self.norm1 = _Norm(in_ch, c_dim)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.norm2 = _Norm(out_ch, c_dim)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, 1, 0)
        for conv in (self.conv1, self.conv2):
            _xavier_(conv, math.sqrt(2))
        _xavier_(self.skip, 1.0)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(self.norm1(x, c))
        h = self.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(F.relu(self.norm2(h, c)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class GOutput(nn.Module):
    """BN, ReLU, conv3x3 to image channels, tanh."""

    def __init__(self, in_ch: int, img_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, img_channels, 3, 1, 1)
        _xavier_(self.conv, 1.0)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        del c
        return torch.tanh(self.conv(F.relu(self.bn(x))))


class Generator(nn.Module):
    """ResNet generator: ``G(z, c) -> [N, img_channels, R, R]`` in [-1, 1]."""

    def __init__(self, z_dim: int = 128, c_dim: int = 0, img_resolution: int = 32, img_channels: int = 3,
                 ch: int = 256) -> None:
        super().__init__()
        log2 = _log2(img_resolution)
        self.z_dim, self.c_dim = int(z_dim), int(c_dim)
        self.img_resolution, self.img_channels, self.ch = int(img_resolution), int(img_channels), int(ch)
        self.config: dict[str, Any] = dict(z_dim=self.z_dim, c_dim=self.c_dim, img_resolution=self.img_resolution,
                                           img_channels=self.img_channels, ch=self.ch)
        blocks: list[nn.Module] = [GInput(self.z_dim, self.ch)]
        blocks += [GBlock(self.ch, self.ch, self.c_dim) for _ in range(log2 - 2)]
        blocks.append(GOutput(self.ch, self.img_channels))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random") -> torch.Tensor:
        """Generate images. ``truncation_psi`` scales z toward its mean (0); there are no noise inputs."""
        del noise_mode
        c = _labels(c, z.shape[0], self.c_dim, z)
        x = z * truncation_psi if truncation_psi != 1 else z
        for block in self.blocks:
            x = block(x, c)
        return x


class DBlockFirst(nn.Module):
    """The first D block: no pre-activation on the raw image (SNGAN's 'optimized' block)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(out_ch, out_ch, 3, 1, 1))
        self.skip = spectral_norm(nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.skip(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    """Pre-activation residual block, optionally down-sampling by average pooling."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = spectral_norm(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(out_ch, out_ch, 3, 1, 1))
        self.learn_skip = down or in_ch != out_ch
        if self.learn_skip:
            self.skip = spectral_norm(nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = self.skip(x) if self.learn_skip else x
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class DOutput(nn.Module):
    """ReLU, global sum pooling, linear logit, plus the projection term when conditional."""

    def __init__(self, in_ch: int, c_dim: int) -> None:
        super().__init__()
        self.fc = spectral_norm(nn.Linear(in_ch, 1))
        self.c_dim = c_dim
        if c_dim > 0:
            self.embed = spectral_norm(nn.Linear(c_dim, in_ch, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(x).sum(dim=(2, 3))
        out = self.fc(h)
        if self.c_dim > 0:
            out = out + (self.embed(c) * h).sum(dim=1, keepdim=True)
        return out


class Discriminator(nn.Module):
    """Spectrally normalised ResNet discriminator: ``D(img, c) -> [N, 1]`` logits."""

    def __init__(self, c_dim: int = 0, img_resolution: int = 32, img_channels: int = 3, ch: int = 128) -> None:
        super().__init__()
        log2 = _log2(img_resolution)
        self.c_dim, self.img_resolution = int(c_dim), int(img_resolution)
        self.img_channels, self.ch = int(img_channels), int(ch)
        self.config: dict[str, Any] = dict(c_dim=self.c_dim, img_resolution=self.img_resolution,
                                           img_channels=self.img_channels, ch=self.ch)
        blocks: list[nn.Module] = [DBlockFirst(self.img_channels, self.ch)]
        blocks += [DBlock(self.ch, self.ch, down=True) for _ in range(log2 - 4)]  # down to 8x8
        blocks += [DBlock(self.ch, self.ch, down=False) for _ in range(2)]
        blocks.append(DOutput(self.ch, self.c_dim))
        self.blocks = nn.ModuleList(blocks)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    residual_conv = isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
                    nn.init.xavier_uniform_(m.parametrizations.weight.original,
                                            math.sqrt(2) if residual_conv else 1.0)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = _labels(c, img.shape[0], self.c_dim, img)
        x = img
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1](x, c)

