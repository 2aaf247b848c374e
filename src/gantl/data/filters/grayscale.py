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
from gantl.data.filters.base import Direction, FilterResult, working_copy
from gantl.errors import require


@dataclass
class GrayscaleConfig:
    enabled: bool = option(True, help="Reject images without colour (also gray stored as RGB).")
    threshold: float = option(4.0, min=0.0, help="Minimum 99th-percentile LAB chroma; sepia (~25) passes.")
    work_size: int = option(256, min=32, max=4096, help="Long side (px) the image is reduced to before scoring.")
    percentile: float = option(99.0, min=50.0, max=100.0, help="Chroma percentile used as the score.")


def lab_chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel CIELAB chroma of a uint8 RGB array (D65, OpenCV's float conversion)."""
    cv2 = require("cv2", "curate")
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return np.hypot(lab[..., 1], lab[..., 2])


class GrayscaleFilter:
    """Colourfulness = a high percentile of LAB chroma."""

    name = "grayscale"
    direction: Direction = "below"
    description = "99th percentile of LAB chroma (0 = gray; sepia ~ 25)"

    def __init__(self, cfg: GrayscaleConfig) -> None:
        self.threshold = cfg.threshold
        self.work_size = cfg.work_size
        self.percentile = cfg.percentile

    def score(self, image: Image.Image) -> FilterResult:
        small = working_copy(image, self.work_size).convert("RGB")
        chroma = lab_chroma(np.asarray(small))
        return FilterResult(float(np.percentile(chroma, self.percentile)))
