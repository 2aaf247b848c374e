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

import numpy as np
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

    def score(self, image: Image.Image | Views) -> FilterResult:
        """Score a decoded RGB image (EXIF orientation applied, transparency composited), or shared ``Views`` of one."""
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


class Views:
    """One decoded image plus the reduced copies the filters ask for, each made once and shared.

    Five per-image filters look at the same picture at four working sizes (face 640, blur 512,
    text 480, grayscale 256, pHash 128). Resizing and converting once per size instead of once per
    filter, and handing out numpy arrays that need no further copy, saves several milliseconds
    per image, which is a tenth of the per-image budget on a 2-core machine. Every copy is made
    from ``image`` exactly as each filter used to make it, so scores do not depend on which
    filters ran or in which order.
    """

    def __init__(self, image: Image.Image) -> None:
        self.image = image if image.mode == "RGB" else image.convert("RGB")
        self._rgb: dict[int, Image.Image] = {}
        self._gray: dict[int, np.ndarray] = {}

    @classmethod
    def of(cls, image: Image.Image | Views) -> Views:
        """``image`` itself when it already is a ``Views``, else a new one around it."""
        return image if isinstance(image, Views) else cls(image)

    def _key(self, long_side: int | None) -> int:
        """0 stands for the full image: any size at least its long side gives the image itself."""
        return 0 if long_side is None or long_side >= max(self.image.size) else long_side

    def rgb(self, long_side: int | None = None) -> Image.Image:
        """RGB copy whose long side is at most ``long_side`` (``working_copy``: never upscaled; None = full size)."""
        key = self._key(long_side)
        out = self._rgb.get(key)
        if out is None:
            out = self._rgb[key] = working_copy(self.image, key) if key else self.image
        return out

    def gray(self, long_side: int | None = None) -> np.ndarray:
        """ITU-R 601 luma of ``rgb(long_side)`` (Pillow's ``"L"``) as a contiguous ``[H, W]`` uint8 array."""
        key = self._key(long_side)
        out = self._gray.get(key)
        if out is None:
            out = self._gray[key] = np.ascontiguousarray(np.asarray(self.rgb(key or None).convert("L")))
        return out
