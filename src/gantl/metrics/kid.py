"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial
kernel ``k(x, y) = (x·y / d + 1)^3``, averaged over random subsets (StyleGAN2-ADA's defaults:
100 subsets of 1,000). Unlike FID it is unbiased, so it is comparable across sample sizes; that is
why it suits a few hundred images. With fewer samples than the subset size the subset shrinks (with
a warning) instead of crashing (torch-fidelity #45).
"""

from __future__ import annotations

import warnings

import numpy as np

from gantl.errors import MetricError


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between two equally sized samples under the cubic polynomial kernel."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> float:
    """Mean unbiased MMD² over ``num_subsets`` random subsets (drawn without replacement)."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricError(f"KID needs two feature sets [N, D] with the same D, got {real.shape} and {fake.shape}")
    m = min(real.shape[0], fake.shape[0], subset_size)
    if m < 2:
        raise MetricError(f"KID needs at least 2 real and 2 generated images, got {real.shape[0]} and {fake.shape[0]}")
    if m < subset_size:
        warnings.warn(f"KID: only {min(real.shape[0], fake.shape[0])} samples; subset size shrinks from "
                      f"{subset_size} to {m}", stacklevel=2)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        xs = real[rng.choice(real.shape[0], m, replace=False)]
        ys = fake[rng.choice(fake.shape[0], m, replace=False)]
        total += polynomial_mmd2(xs, ys)
    return total / num_subsets
