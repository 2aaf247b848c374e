"""``blur``: the sharpest tile's variance of the Laplacian at a fixed working size.

Why tiles: a global Laplacian variance averages a sharp subject with its smooth background, so
a perfectly focused cat on a plain wall scores as "blurry". Splitting the image into a grid and
taking the highest tile variance asks "is anything in focus?", which is what matters for a GAN
training set (shallow depth of field is fine; camera shake or a soft upscale is not).

Why a fixed working size: the Laplacian responds to detail per pixel, so the same photo scores
higher when it is downscaled. Resizing every image so its long side is ``work_size`` (512 px,
the scale at which filterbench's blur sigmas are defined) makes one threshold fit all sizes.
Small images are upscaled to the working size, which lowers their score: a 100 px image is
soft at 512 px, and rightly so.

Default threshold 60: on filterbench every Gaussian sigma-3 variant scores below 16 and every
untouched original above 780, and the only naturally motion-blurred photo (skimage's
clock_motion) scores 22 (see tests/data/test_filters.py). 60 leaves ~4x margin to the sigma-3
copies and ~13x to the originals; sigma-1.5 copies (visibly soft) score 19-144, so most are
rejected too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, Views
from gantl.errors import require


@dataclass
class BlurConfig:
    enabled: bool = option(True, help="Reject images with no sharp region.")
    threshold: float = option(60.0, min=0.0, help="Minimum Laplacian variance of the sharpest tile.")
    work_size: int = option(512, min=64, max=4096, help="Long side (px) the image is resized to before scoring.")
    grid: int = option(4, min=1, max=16, help="Tiles per side; the score is the sharpest tile's variance.")


def tile_laplacian_variance(gray: np.ndarray, grid: int) -> np.ndarray:
    """Variance of the 3x3 Laplacian in each cell of a ``grid`` x ``grid`` partition."""
    cv2 = require("cv2", "curate")
    lap = cv2.Laplacian(np.asarray(gray, dtype=np.float32), cv2.CV_32F, ksize=1)
    h, w = lap.shape
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    out = np.zeros((grid, grid), dtype=np.float64)
    for i in range(grid):
        for j in range(grid):
            cell = lap[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
            if cell.size:  # OpenCV accumulates in float64 and is ~3x faster than ndarray.var() here
                out[i, j] = float(cv2.meanStdDev(cell)[1][0, 0]) ** 2
    return out


def resize_gray(gray: np.ndarray, long_side: int) -> np.ndarray:
    """Resize a uint8 luma array so its long side is exactly ``long_side``: box-filtered down, bicubic up.

    Pillow's filters on purpose: the threshold was calibrated with them, and OpenCV's differ
    enough to matter (its area filter halves the score of a 640 -> 512 px reduction; its
    bicubic kernel, a = -0.75, raises upscaled scores by ~8%).
    """
    h, w = gray.shape
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return gray
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(gray, "L").resize(size, resample))


class BlurFilter:
    """Sharpness = max over tiles of Var(Laplacian) at a fixed working size."""

    name = "blur"
    direction: Direction = "below"
    description = "sharpest tile's Laplacian variance at the working size (higher = sharper)"

    def __init__(self, cfg: BlurConfig) -> None:
        self.threshold = cfg.threshold
        self.work_size = cfg.work_size
        self.grid = cfg.grid

    def score(self, image: Image.Image | Views) -> FilterResult:
        # Luma first, then one resize of a single channel: a third of the work of resizing RGB,
        # and the same score to within 3% (luma is linear in RGB up to rounding).
        gray = resize_gray(Views.of(image).gray(), self.work_size)
        return FilterResult(float(tile_laplacian_variance(gray, self.grid).max()))
