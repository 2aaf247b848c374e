"""Fréchet Inception Distance between two Gaussians fitted to feature sets (Heusel et al. 2017).

``FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` in float64. The matrix square root
is the fragile part: with fewer samples than feature dimensions the covariances are singular, and
``sqrtm`` can return non-finite values or a complex result with numerical noise in the imaginary
part. Safeguards (as in pytorch-fid): retry with ``eps * I`` added to both covariances when the
result is not finite, drop imaginary parts that are numerical noise, and refuse (MetricError) when
the imaginary part is large, because then the number would be meaningless.

Speed: ``sqrtm`` of a 2048x2048 matrix takes 40–80 s on a 2-core CPU, which dominated short
evaluations. Only ``tr (S_r S_g)^(1/2)`` is needed, i.e. the sum of the square roots of the
eigenvalues of ``S_r S_g`` (real and >= 0: the product is similar to a PSD matrix). When one set
has ``n`` < D samples, ``S_g = X^T X / (n-1)`` with centred ``X`` [n, D], and ``S_r X^T X`` has the
same non-zero eigenvalues as ``X S_r X^T`` [n, n] (AB and BA share them). So
:func:`fid_from_features` takes the exact trace from an n x n symmetric eigenproblem (as in
Mathiasen & Hvilshøj, "Backpropagating through FID", 2020) — the same number, to float64
round-off, in well under a second. With both sets at least D large it uses ``sqrtm``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from gantl.errors import MetricError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (float64) of ``[N, D]`` features."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise MetricError(f"FID needs at least 2 feature vectors shaped [N, D], got {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6, imag_tol: float = 1e-3) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError(f"FID statistics differ in shape: {mu1.shape} vs {mu2.shape}; were they computed "
                          f"with the same feature extractor?")
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: product of covariances is singular; adding {eps} to the diagonal", stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean, _ = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset), disp=False)
    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(covmean.imag))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=imag_tol):
            raise MetricError(f"FID: the matrix square root has a large imaginary component ({largest:.3g}); "
                              f"use more samples (at least the feature dimension is safest)")
        covmean = covmean.real
    value = diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(value)


def trace_sqrt_product_lowrank(sigma: np.ndarray, features: np.ndarray) -> float:
    """``tr (sigma @ cov(features))^(1/2)`` exactly, through the [n, n] matrix ``X sigma X^T / (n-1)``."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    small = (x @ sigma @ x.T) / (x.shape[0] - 1)
    eig = np.linalg.eigvalsh((small + small.T) / 2)
    scale = max(float(eig.max(initial=0.0)), 1e-300)
    if eig.min(initial=0.0) < -1e-6 * scale:
        raise MetricError(f"FID: the covariance product has a clearly negative eigenvalue ({eig.min():.3g}); "
                          f"are the features finite?")
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets ``[N, D]`` (exact low-rank path when one set has fewer than D rows)."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    mu1, sigma1 = feature_stats(real)
    mu2, sigma2 = feature_stats(fake)
    if mu1.shape != mu2.shape:
        raise MetricError(f"FID statistics differ in shape: {mu1.shape} vs {mu2.shape}; were they computed "
                          f"with the same feature extractor?")
    dim = mu1.shape[0]
    if min(real.shape[0], fake.shape[0]) >= dim:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    if fake.shape[0] <= real.shape[0]:
        tr_covmean = trace_sqrt_product_lowrank(sigma1, fake)
    else:
        tr_covmean = trace_sqrt_product_lowrank(sigma2, real)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
