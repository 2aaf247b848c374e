"""DiffAugment: shapes, determinism, the paper's ranges, zero-padded translation, cutout size, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gantl.augment import DiffAugment
from gantl.augment import diffaugment as da
from gantl.errors import ConfigError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 8, size: int = 32) -> torch.Tensor:
    return torch.rand((n, 3, size, size), generator=_gen(0)) * 2 - 1


def test_shapes_and_determinism() -> None:
    x = _images()
    aug = DiffAugment("color,translation,cutout")
    y = aug(x, generator=_gen(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y, aug(x, generator=_gen(1)))
    assert not torch.equal(y, aug(x, generator=_gen(2)))
    assert bool(((y - x).abs().flatten(1).amax(dim=1) > 0).all())  # every sample augmented


def test_empty_policy_is_identity_and_unknown_ops_are_rejected() -> None:
    x = _images()
    assert torch.equal(DiffAugment("")(x), x)
    with pytest.raises(ConfigError, match="unknown DiffAugment"):
        DiffAugment("color,rotate")
    with pytest.raises(ConfigError, match=r"\[N, C, H, W\]"):
        DiffAugment()(torch.zeros(3, 8, 8))


def test_translation_shifts_with_zero_padding_within_one_eighth() -> None:
    x = _images(n=64) + 3.0  # no zeros in the input, so zeros in the output are padding
    y = da.translation(x, generator=_gen(3))
    size, max_shift = 32, 4  # round(32 / 8)
    padded = F.pad(x, (max_shift,) * 4)  # zero padding: the independent reference
    seen = set()
    for i in range(64):
        found = [
            (dx, dy)
            for dy in range(-max_shift, max_shift + 1)
            for dx in range(-max_shift, max_shift + 1)
            if torch.equal(
                y[i], padded[i, :, max_shift - dy : max_shift - dy + size, max_shift - dx : max_shift - dx + size]
            )
        ]
        assert len(found) == 1, i  # exactly one shift explains the output
        seen.add(found[0])
    assert len(seen) > 30  # per-sample shifts covering the range
    assert {dx for dx, _ in seen} == set(range(-max_shift, max_shift + 1))


def test_cutout_zeroes_a_half_size_square_possibly_clipped() -> None:
    x = torch.ones(200, 3, 32, 32)
    y = da.cutout(x, generator=_gen(4))
    holes = y[:, 0] == 0
    assert torch.equal(y[:, 0:1].expand_as(y), y)  # same hole in every channel
    full = 0
    for hole in holes:
        rows, cols = hole.any(dim=1).nonzero().flatten(), hole.any(dim=0).nonzero().flatten()
        assert hole.sum() == len(rows) * len(cols)  # an axis-aligned rectangle
        assert 1 <= len(rows) <= 16 and 1 <= len(cols) <= 16
        full += int(len(rows) == 16 and len(cols) == 16)
    # Centres are uniform over 0..32 per axis and the square is fully inside for 17 of those 33 values.
    assert abs(full / 200 - (17 / 33) ** 2) < 0.09


def test_color_ranges_match_the_paper() -> None:
    # On a grey image saturation and contrast have nothing to act on, so the output is x + U(-0.5, 0.5).
    x = torch.full((4000, 3, 4, 4), 0.2)
    offsets = (da.color(x, generator=_gen(5)) - x)[:, 0, 0, 0]
    assert offsets.min() >= -0.5 and offsets.max() <= 0.5
    assert abs(offsets.mean().item()) < 0.02 and abs(offsets.std().item() - 1 / math.sqrt(12)) < 0.01
    # Contrast: the deviation from the image mean is scaled by U(0.5, 1.5) (single channel: no saturation).
    g = torch.zeros(4000, 1, 2, 2)
    g[:, :, 0, 0], g[:, :, 1, 1] = 1.0, -1.0
    y = da.color(g, generator=_gen(6))
    scale = (y[:, 0, 0, 0] - y[:, 0, 1, 1]) / 2
    assert scale.min() >= 0.5 and scale.max() <= 1.5 and abs(scale.mean().item() - 1.0) < 0.02
    # Saturation: chroma scaled by U(0, 2), contrast then scales by U(0.5, 1.5): overall in [0, 3], mean 1.
    c = torch.zeros(4000, 3, 1, 1)
    c[:, 0], c[:, 1] = 0.5, -0.5
    y = da.color(c, generator=_gen(7))
    chroma = (y[:, 0] - y[:, 1]).flatten() / 1.0
    assert chroma.min() >= 0 and chroma.max() <= 3 and abs(chroma.mean().item() - 1.0) < 0.05


def test_gradients_flow_through_every_op() -> None:
    x = _images().requires_grad_()
    y = DiffAugment()(x, generator=_gen(8))
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and bool((x.grad.flatten(1).abs().sum(dim=1) > 0).all())
