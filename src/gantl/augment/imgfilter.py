"""ADA's image-space filtering op: amplify or attenuate four frequency bands per sample.

The bank splits a 1-D signal into octave bands [0, 1/16], [1/16, 1/8], [1/8, 1/4], [1/4, 1/2] cycles/pixel
with Kaiser-windowed sinc low-passes; the bands are differences of low-passes, so they sum to a unit
impulse exactly and un-amplified images pass unchanged. (The paper builds its bank from the ``sym2``
wavelet instead; any bank with this octave split serves the same purpose.) The per-sample 1-D filter is
applied along x and then y with reflection padding, as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gantl.augment.resample import mirror_pad

#: Half length of the band filters (33 taps): long enough for a clean 1/16 cycles/pixel cut-off.
BANK_RADIUS = 16
#: Relative power of the four bands in natural images that ADA assumes when renormalising gains.
EXPECTED_BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def _lowpass(cutoff: float, radius: int, beta: float = 6.0) -> Tensor:
    """Kaiser-windowed sinc low-pass with ``cutoff`` in cycles/pixel, normalised to unit DC gain."""
    n = torch.arange(-radius, radius + 1, dtype=torch.float64)
    h = 2 * cutoff * torch.sinc(2 * cutoff * n)
    window = torch.special.i0(beta * torch.sqrt(1 - (n / (radius + 1)) ** 2)) / torch.special.i0(
        torch.tensor(beta, dtype=torch.float64)
    )
    h = h * window
    return h / h.sum()


def filter_bank(radius: int = BANK_RADIUS) -> Tensor:
    """``[4, 2*radius+1]`` octave band-pass filters, lowest band first; rows sum to a unit impulse."""
    delta = torch.zeros(2 * radius + 1, dtype=torch.float64)
    delta[radius] = 1
    lp = [_lowpass(c, radius) for c in (1 / 16, 1 / 8, 1 / 4)]
    return torch.stack([lp[0], lp[1] - lp[0], lp[2] - lp[1], delta - lp[2]])


def band_gains_to_filter(gains: Tensor, radius: int = BANK_RADIUS) -> Tensor:
    """Per-sample 1-D filters ``[N, 2r+1]`` from band gains ``[N, 4]``."""
    return gains.to(torch.float64) @ filter_bank(radius).to(gains.device)


def apply_separable(images: Tensor, filters: Tensor) -> Tensor:
    """Filter each image along x then y with its own odd-length 1-D filter, reflecting at the border."""
    n, c, h, w = images.shape
    r = (filters.shape[1] - 1) // 2
    x = mirror_pad(images, r, r, r, r).reshape(1, n * c, h + 2 * r, w + 2 * r)
    k = filters.to(images.dtype).repeat_interleave(c, dim=0)  # [N*C, 2r+1]
    x = F.conv2d(x, k.reshape(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, k.reshape(n * c, 1, -1, 1), groups=n * c)
    return x.reshape(n, c, h, w)


def normalise_gains(gains: Tensor) -> Tensor:
    """Rescale gains so that the expected image power is unchanged (ADA's assumption on band powers)."""
    power = torch.tensor(EXPECTED_BAND_POWER, dtype=gains.dtype, device=gains.device)
    return gains / torch.sqrt((power * gains.square()).sum(dim=1, keepdim=True))


__all__ = ["filter_bank", "band_gains_to_filter", "apply_separable", "normalise_gains"]
