"""Memorization check: for every generated image, its nearest training image in Inception space.

Distance is **cosine distance** (1 - cosine similarity) between pool3 features: it ignores the
overall feature magnitude, which varies with image contrast, and is what copy-detection work on
GANs commonly uses. A raw distance means little on its own, so the threshold is calibrated on the
real data: ``threshold = ratio * median real-to-real nearest-neighbour distance`` (leave-one-out;
default ratio 0.5). A generated image closer than that to a training image is counted as a likely
copy. Reported: ``mem_share`` (share of such images) and ``mem_ratio`` (median generated-to-real NN
distance over the median real-to-real NN distance; ~1 for healthy samples, near 0 for copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gantl.errors import MetricError


@dataclass
class MemorizationResult:
    share: float
    ratio: float
    threshold: float
    nearest_index: np.ndarray  # per generated image: index of the closest real image
    nearest_distance: np.ndarray


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def memorization(real: np.ndarray, fake: np.ndarray, ratio: float = 0.5) -> MemorizationResult:
    if real.shape[0] < 2 or fake.shape[0] < 1:
        raise MetricError(f"memorization needs at least 2 real and 1 generated image, got {real.shape[0]} and "
                          f"{fake.shape[0]}")
    r, f = _normalise(real), _normalise(fake)
    real_real = 1.0 - r @ r.T
    np.fill_diagonal(real_real, np.inf)
    real_nn = real_real.min(axis=1)
    fake_real = 1.0 - f @ r.T
    nearest = fake_real.argmin(axis=1)
    dist = fake_real[np.arange(f.shape[0]), nearest]
    scale = float(np.median(real_nn))
    threshold = ratio * scale
    return MemorizationResult(share=float((dist < threshold).mean()), ratio=float(np.median(dist) / max(scale, 1e-12)),
                              threshold=threshold, nearest_index=nearest, nearest_distance=dist)


def save_closest_pairs(path: str | Path, fake_images: torch.Tensor, real_images_at, result: MemorizationResult,
                       count: int = 16) -> Path:
    """A PNG with the ``count`` closest (generated | nearest real) pairs, one pair per row."""
    from PIL import Image

    order = np.argsort(result.nearest_distance)[:count]
    rows = []
    for i in order:
        fake = fake_images[int(i)]
        real = real_images_at(int(result.nearest_index[i]))
        if real.shape[-2:] != fake.shape[-2:]:
            resized = torch.nn.functional.interpolate(real[None].float(), size=fake.shape[-2:], mode="area")
            real = resized[0].round().clamp(0, 255).to(torch.uint8)
        rows.append(torch.cat([fake.expand(3, -1, -1), real.expand(3, -1, -1)], dim=2))
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path
