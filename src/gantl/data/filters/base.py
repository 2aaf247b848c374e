"""The Filter protocol shared by every curation filter.

A filter turns one decoded image into a number (its *score*), compares that number to a
threshold and, when the image fails, names a *reason*. Keeping score and decision apart is
what makes thresholds tunable after the fact: the manifest stores every score, so changing
``--blur-threshold`` re-decides instantly without re-running any detector, and the report can
show where each image sits relative to the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from PIL import Image

#: Every reason a filter can give, in the order the manifest and report list them.
REASONS = ("format", "resolution", "blur", "grayscale", "text", "face", "duplicate")

#: Direction of a threshold: ``"below"`` rejects scores under it, ``"above"`` rejects scores at or over it.
Direction = Literal["below", "above"]


@dataclass
class FilterResult:
    """One filter's verdict input for one image.

    ``boxes`` are regions the filter found (faces, text lines) as ``[x0, y0, x1, y1]`` in
    fractions of the image width/height, so the report can draw them on any thumbnail size.
    """

    score: float
    boxes: list[list[float]] = field(default_factory=list)


def fails(score: float | None, threshold: float, direction: Direction) -> bool:
    """Whether ``score`` is on the reject side of ``threshold`` (a missing score never fails)."""
    if score is None or score != score:  # None or NaN: the filter did not run on this image
        return False
    return score < threshold if direction == "below" else score >= threshold


@runtime_checkable
class Filter(Protocol):
    """A per-image filter: ``score`` an RGB image, then ``fails(score, threshold, direction)``.

    ``name`` is also the reject reason. ``threshold`` and ``direction`` describe the decision so
    the report can draw it; ``description`` says in words what the score measures.
    """

    name: str
    threshold: float
    direction: Direction
    description: str

    def score(self, image: Image.Image) -> FilterResult:
        """Score a decoded RGB image (EXIF orientation applied, transparency composited)."""
        ...


def working_copy(image: Image.Image, long_side: int, *, upscale: bool = False) -> Image.Image:
    """Resize so the longer side is ``long_side`` (box-filtered; never upscales unless asked).

    Detectors run at a bounded working size so their cost does not depend on the camera: a
    3,072 px photo and a 640 px one take the same time, and a threshold means the same thing.
    """
    w, h = image.size
    scale = long_side / max(w, h)
    if scale >= 1 and not upscale:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale > 1:
        return image.resize(size, Image.Resampling.BILINEAR)
    # reducing_gap: a fast integer box-reduce first, then a bilinear finish (antialiased, cheap)
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
