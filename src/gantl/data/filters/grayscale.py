"""``grayscale``: the 99th percentile of CIELAB chroma.

A grayscale photo saved as RGB has three equal channels, so a check on the file's mode misses
it. Chroma ``sqrt(a*^2 + b*^2)`` in CIELAB measures colourfulness in perceptual units; gray
pixels sit near 0 (JPEG adds 1-3 units of noise). The 99th percentile ignores that noise and a
few stray colour pixels while still seeing a small colourful region (a red ball on gray is
colour).

Documented choices: sepia and other tinted monochrome images are *kept* (their chroma is
~24-30: they are colour images to a GAN, and a user who wants them out raises the threshold).
Images desaturated to 15% of their saturation (chroma ~6-13) are kept too. Default threshold 4:
on filterbench every fully gray variant scores below 0.2 and every colour photo above 9, so 4
leaves a wide margin on both sides while still catching gray scans with a faint tint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, Views
from gantl.errors import require


@dataclass
class GrayscaleConfig:
    enabled: bool = option(True, help="Reject images without colour (also gray stored as RGB).")
    threshold: float = option(4.0, min=0.0, help="Minimum 99th-percentile LAB chroma; sepia (~25) passes.")
    work_size: int = option(256, min=32, max=4096, help="Long side (px) the image is reduced to before scoring.")
    percentile: float = option(99.0, min=50.0, max=100.0, help="Chroma percentile used as the score.")


def lab_chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel CIELAB chroma of a uint8 RGB array (D65, OpenCV's float conversion), as float32."""
    cv2 = require("cv2", "curate")
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    _, a, b = cv2.split(lab)
    return cv2.magnitude(a, b)


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation) by one partial sort: ~3x faster on 50k values."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        raise ValueError("percentile of an empty array")
    pos = (flat.size - 1) * q / 100.0
    lo = int(np.floor(pos))
    hi = min(lo + 1, flat.size - 1)
    part = np.partition(flat, lo)
    low = float(part[lo])
    high = float(part[lo + 1:].min()) if hi > lo else low
    return low + (high - low) * (pos - lo)


class GrayscaleFilter:
    """Colourfulness = a high percentile of LAB chroma."""

    name = "grayscale"
    direction: Direction = "below"
    description = "99th percentile of LAB chroma (0 = gray; sepia ~ 25)"

    def __init__(self, cfg: GrayscaleConfig) -> None:
        self.threshold = cfg.threshold
        self.work_size = cfg.work_size
        self.percentile = cfg.percentile

    def score(self, image: Image.Image | Views) -> FilterResult:
        chroma = lab_chroma(np.asarray(Views.of(image).rgb(self.work_size)))
        return FilterResult(percentile(chroma, self.percentile))
