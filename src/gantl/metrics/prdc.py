"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both estimate each distribution's support by k-nearest-neighbour balls around its samples in
feature space (Euclidean). Precision: share of generated samples inside some real ball; recall:
share of real samples inside some generated ball; density: how many real balls contain a generated
sample, averaged and divided by k (can exceed 1); coverage: share of real samples whose ball holds
at least one generated sample. Defaults follow the papers: k=3 for PR, k=5 for DC. The conventions
(strict ``<``, the k-th neighbour excluding the point itself) match the reference ``prdc`` package.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from gantl.errors import MetricError


def _check(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(real.shape[0], fake.shape[0]) <= k:
        raise MetricError(f"k-NN metrics with k={k} need more than {k} real and generated samples, "
                          f"got {real.shape[0]} and {fake.shape[0]}")
    return real, fake


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    dist = cdist(x, x)
    return np.partition(dist, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    real, fake = _check(real, fake, k)
    cross = cdist(real, fake)
    precision = (cross < knn_radii(real, k)[:, None]).any(axis=0).mean()
    recall = (cross < knn_radii(fake, k)[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    real, fake = _check(real, fake, k)
    cross = cdist(real, fake)
    radii = knn_radii(real, k)
    density = (cross < radii[:, None]).sum(axis=0).mean() / k
    coverage = (cross.min(axis=1) < radii).mean()
    return float(density), float(coverage)
