"""``resolution``: both sides at least a share of the target size.

The score is ``min(width, height) / target_size`` of the original file. A square crop keeps the
short side, so the short side decides how much the crop is upscaled; with the default 0.8 an
image may be enlarged by at most 1.25x, which Lanczos does without visible softening.
"""

from __future__ import annotations

from dataclasses import dataclass

from gantl.config import option
from gantl.data.filters.base import Direction


@dataclass
class ResolutionConfig:
    enabled: bool = option(True, help="Reject images smaller than min_share of the target size.")
    threshold: float = option(0.8, min=0.0, max=10.0,
                              help="Minimum short side as a share of --size (0.8: at most 1.25x upscaling).")


class ResolutionFilter:
    """Scores the short side of the original image relative to the target size."""

    name = "resolution"
    direction: Direction = "below"
    description = "short side of the original / target size"

    def __init__(self, cfg: ResolutionConfig, target_size: int) -> None:
        self.threshold = cfg.threshold
        self.target_size = target_size

    def score_size(self, width: int, height: int) -> float:
        """Resolution score from the original pixel size (no decode needed)."""
        return min(width, height) / float(self.target_size)
