"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Unlike ADA, DiffAugment always augments (no probability), with three cheap differentiable ops applied to
both reals and fakes before D; the gradient flows through them into G. For images in [-1, 1]:

* ``color``: brightness ``+ U(-0.5, 0.5)``; saturation: chroma (deviation from the per-pixel channel
  mean) ``x U(0, 2)``; contrast: deviation from the image mean ``x U(0.5, 1.5)`` — one draw per sample;
* ``translation``: shift by an integer in ``[-s, s]`` per axis, ``s = round(size / 8)``, zeros shifted in;
* ``cutout``: zero a square of half the image size at a random centre (it may hang off the border).

Constants as in the paper's reference implementation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gantl.errors import ConfigError

#: Ops per policy keyword, applied in this order.
POLICY_OPS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def _randint(low: int, high: int, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.randint(low, high, shape, generator=generator, device=gen_device).to(device)


def color(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Random brightness, saturation and contrast, one draw each per sample."""
    n = x.shape[0]
    x = x + (_rand((n, 1, 1, 1), generator, x.device).to(x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand((n, 1, 1, 1), generator, x.device).to(x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (_rand((n, 1, 1, 1), generator, x.device).to(x.dtype) + 0.5) + mean
    return x


def translation(x: Tensor, generator: torch.Generator | None = None, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by a random integer offset per axis; vacated pixels become 0 (zero padding)."""
    n, _, h, w = x.shape
    sx, sy = int(w * ratio + 0.5), int(h * ratio + 0.5)
    shift_x = _randint(-sx, sx + 1, (n, 1, 1), generator, x.device)
    shift_y = _randint(-sy, sy + 1, (n, 1, 1), generator, x.device)
    # Output pixel (i, j) reads source (i - dy, j - dx); sources outside the image read zero.
    rows = torch.arange(h, device=x.device).reshape(1, h, 1) - shift_y
    cols = torch.arange(w, device=x.device).reshape(1, 1, w) - shift_x
    valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).reshape(n, 1, h * w).expand(-1, x.shape[1], -1)
    out = x.reshape(n, x.shape[1], h * w).gather(2, flat).reshape(x.shape)
    return out * valid.unsqueeze(1).to(x.dtype)


def cutout(x: Tensor, generator: torch.Generator | None = None, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero a ``ratio``-sized square per image; its centre is uniform over positions that keep part of it."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    off_y = _randint(0, h + (1 - ch % 2), (n, 1, 1), generator, x.device)
    off_x = _randint(0, w + (1 - cw % 2), (n, 1, 1), generator, x.device)
    rows = torch.arange(h, device=x.device).reshape(1, h, 1)
    cols = torch.arange(w, device=x.device).reshape(1, 1, w)
    # The square spans [off - size // 2, off - size // 2 + size) on each axis.
    in_y = (rows >= off_y - ch // 2) & (rows < off_y - ch // 2 + ch)
    in_x = (cols >= off_x - cw // 2) & (cols < off_x - cw // 2 + cw)
    return x * (~(in_y & in_x)).unsqueeze(1).to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment:
    """Differentiable augmentation with a comma-separated policy, e.g. ``"color,translation,cutout"``.

    ``DiffAugment(policy)(images, generator=None)`` on float ``[N, C, H, W]``; an empty policy is the
    identity. Every sample gets its own random draws; pass a ``torch.Generator`` to make them repeatable.
    """

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        names = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in names if p not in _OPS]
        if unknown:
            raise ConfigError(f"unknown DiffAugment op(s) {unknown}; use a comma list of {', '.join(POLICY_OPS)}")
        self.policy = names

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ConfigError(f"DiffAugment expects float images [N, C, H, W] in [-1, 1], got {got}")
        for name in self.policy:
            images = _OPS[name](images, generator)
        return images

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r})"


__all__ = ["DiffAugment", "color", "translation", "cutout"]
