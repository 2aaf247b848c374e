"""Building blocks of the ADA pipe: mirror padding, resampling kernels, the image-filter bank, noise, cutout."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gantl.augment import AugmentPipe, imgfilter, resample


def test_mirror_pad_matches_torch_reflect_and_extends_beyond_it() -> None:
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    assert torch.equal(resample.mirror_pad(x, 3, 2, 4, 1), F.pad(x, (3, 2, 4, 1), mode="reflect"))
    # Beyond size - 1 (where torch refuses), reflecting again is the same as padding twice.
    twice = F.pad(F.pad(x, (6, 6, 4, 4), mode="reflect"), (6, 6, 4, 4), mode="reflect")
    assert torch.equal(resample.mirror_pad(x, 12, 12, 8, 8), twice)


def test_resampling_kernels_are_normalised_symmetric_lowpasses() -> None:
    up = resample.upsample_kernels()
    down = resample.downsample_kernel()
    assert torch.allclose(up.sum(dim=1), torch.ones(2, dtype=up.dtype))
    assert torch.allclose(up[0], up[1].flip(0))  # the two phases mirror each other
    assert torch.allclose(down.sum(), torch.tensor(1.0, dtype=down.dtype)) and torch.allclose(down, down.flip(0))
    assert len(down) == 12  # same length as the paper's sym6 filter
    # Decimation response: ~1 at DC, strongly attenuated above the output Nyquist (0.25 cycles / 2x sample).
    s = torch.arange(len(down), dtype=down.dtype)

    def gain(f: float) -> float:
        return float(torch.abs((down * torch.exp(-2j * math.pi * f * s)).sum()))

    assert gain(0.05) > 0.98 and gain(0.375) < 0.05 and gain(0.5) < 0.05


def test_filter_bank_sums_to_identity_and_splits_octaves() -> None:
    bank = imgfilter.filter_bank()
    delta = torch.zeros(bank.shape[1], dtype=bank.dtype)
    delta[bank.shape[1] // 2] = 1
    assert torch.allclose(bank.sum(dim=0), delta, atol=1e-12)
    n = torch.arange(bank.shape[1], dtype=bank.dtype)

    def response(band: int, f: float) -> float:
        return float(torch.abs((bank[band] * torch.exp(-2j * math.pi * f * n)).sum()))

    # Each band passes the middle of its octave and blocks the others' middles (33 taps leave soft
    # transitions at the lowest octaves: band 1 peaks at ~0.83 and band 0 leaks ~0.11 into it).
    centres = [0.0, 0.09, 0.18, 0.4]  # cycles/pixel: inside [0,1/16], [1/16,1/8], [1/8,1/4], [1/4,1/2]
    for band, f in enumerate(centres):
        assert response(band, f) > 0.8, (band, f)
        for other, g in enumerate(centres):
            if other != band:
                assert response(band, g) < 0.12, (band, other)


def test_imgfilter_with_unit_gains_is_identity_and_changes_spectrum_otherwise() -> None:
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    unit = imgfilter.band_gains_to_filter(torch.ones(4, 4))
    assert torch.allclose(imgfilter.apply_separable(x, unit), x, atol=1e-6)
    # Killing everything but the lowest band leaves a (nearly) smooth image.
    lowpass = imgfilter.band_gains_to_filter(torch.tensor([[1.0, 0, 0, 0]]).expand(4, 4))
    y = imgfilter.apply_separable(x, lowpass)
    assert y.diff(dim=-1).abs().mean() < 0.2 * x.diff(dim=-1).abs().mean()


def test_noise_std_and_cutout_area() -> None:
    n = 4000
    pipe = AugmentPipe(noise=1, cutout=1, p=1.0, noise_std=0.1)
    gen = torch.Generator().manual_seed(0)
    x = torch.ones(n, 1, 8, 8)
    params = pipe.sample_params(n, 8, 8, generator=gen)
    y = pipe.apply(x, params, generator=gen)
    sigma = params.values["noise"]
    # sigma = |N(0, 0.1)| has mean 0.1 * sqrt(2 / pi).
    assert abs(sigma.mean().item() - 0.1 * math.sqrt(2 / math.pi)) < 0.003
    # Cutout zeroes a square of half the side (a quarter of the area) when its centre is far from borders.
    centre = params.cutout_center
    inner = ((centre - 0.5).abs() < 0.25 - 1 / 8).all(dim=1)
    zero_fraction = (y[inner] == 0).float().mean(dim=(1, 2, 3))
    assert torch.allclose(zero_fraction, torch.full_like(zero_fraction, 0.25))
    kept = y[inner][y[inner] != 0] - 1  # the surviving pixels carry the noise
    assert abs(kept.std().item() - math.sqrt((sigma[inner] ** 2).mean().item())) < 0.01
