"""``blur``: how wide the image's sharpest edges are, at the image's own scale (never upscaled).

Why not the Laplacian variance (the score up to scorer version 3): it measures *how much* fine
detail there is, not *how sharp* the detail is. Flat-shaded art, icons, cartoons and smooth skin
have few edges, so they scored like blurred photos (issue 13: 52% of a set of sharp 128 px
artworks were rejected), and upscaling small images to a 512 px working size made it worse.

The measure here is contrast-free and counts no edges: it asks how wide the edges are. For a
step edge blurred by a Gaussian of width ``b``, the peak of its derivative is proportional to
contrast / ``b``. Blurring the image once more with a known ``s`` (``scale``, 2 px) and taking
the ratio of the two peaks cancels the contrast:

    R = |d I| / |d (G_s * I)| = sqrt(b^2 + s^2) / b      so      b = s / sqrt(R^2 - 1)

(the "re-blur" idea of Zhuo & Sim, *Defocus map estimation from a single image*, Pattern
Recognition 2011, and Hu & de Haan's re-blurring sharpness metrics). A 1-pixel antialiased edge
of a flat icon gives R ~ 2-4, a sigma-3 defocus R ~ 1.2, whatever the contrast or the number of
edges. Only pixels where the re-blurred gradient exceeds ``min_gradient`` grey levels/px are
used (edges, not flat areas or sensor noise), and of those the ``quantile`` (0.9) of R: "are the
sharpest edges sharp?", so a focused subject in front of a soft background passes (the reason
the old score took the sharpest tile).

Motion blur widens only edges across the motion; edges along it stay sharp. So R is measured
for four derivative directions (0, 45, 90, 135 degrees) and the *least sharp* direction decides:
camera shake at any angle is caught, while a photo with sharp detail everywhere is sharp in
every direction. A direction with fewer than ``min_edges`` edge pixels is skipped. When no
direction has enough, the edge level is lowered (``min_gradient`` / 4, then / 16): a heavily
defocused photo has no gradient of 4 grey levels/px left, yet its remaining gentle edges are still
measurably wide, so it is still judged (and rejected). An image with no edge even at the
lowest level (a blank field, a smooth gradient) has no sharp region at all and scores
``NO_EDGES`` = 0, i.e. it is rejected as before (it carries nothing a GAN could learn).

Scale: a photo larger than ``work_size`` (512 px long side, the scale at which filterbench's
blur sigmas are defined) is box-reduced to it first, since a GAN trained at <= 512 px sees the
image at that scale or smaller; a smaller image is judged as it is, never upscaled (an upscale
would make every small image look soft; the ``resolution`` filter owns size).

Score = sharpness = 1 / b in 1/px (higher = sharper, so the duplicate keeper can prefer the
sharper copy). Default threshold 0.65 (reject when the sharpest edges are wider than ~1.5 px),
tuned on the issue-13 development set (benchmarks/build_filter_devset.py, 799 images): it rejects
none of 150 theme icons, 100 flat-shaded 128 px artworks and 183 photos reduced to 128-200 px (the
lowest of those scores ~0.79, an 18% margin), 93 of 95 Gaussian-defocused (sigma 2-4 px) and 75
of 88 linear-motion-blurred (9-21 px) photos, and 1 of 183 sharp photos: recall 0.92, precision
0.99 (the Laplacian-variance score: 0.77 and 0.32, rejecting 100 icons and 99 artworks). On
filterbench every sigma-3 copy scores <= 0.48 and every original >= 0.82; the motion-blurred
clock scores 0.50. Cost ~3.5 ms per 512 px image on one core (the old score ~3.3 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, Views
from gantl.errors import require

#: Score of an image with no edge at all (a blank field): nothing in it is sharp, so it fails any threshold.
NO_EDGES = 0.0
#: Largest reported sharpness (an edge 0.1 px wide); R near 1 would otherwise divide by ~0.
MAX_SHARPNESS = 10.0

_D = np.array([[-0.5, 0.0, 0.5]], np.float32)
_DIAG = np.array([[-0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]], np.float32) / np.float32(np.sqrt(2.0))
#: Central differences along x, y and both diagonals (the diagonal step is sqrt(2) px long).
DIRECTIONS = (_D, _D.T.copy(), _DIAG, _DIAG[:, ::-1].copy())


@dataclass
class BlurConfig:
    enabled: bool = option(True, help="Reject images whose sharpest edges are blurred (defocus, camera shake).")
    threshold: float = option(0.65, min=0.0,
                              help="Minimum edge sharpness, 1 / edge width in px (0.65 = edges up to 1.54 px wide).")
    work_size: int = option(512, min=64, max=4096,
                            help="Long side (px) larger images are reduced to before scoring; smaller ones are never "
                                 "upscaled.")
    scale: float = option(2.0, min=0.5, max=8.0, help="Sigma (px) of the re-blur the edges are compared with.")
    quantile: float = option(0.9, min=0.5, max=1.0,
                             help="Which quantile of the edge pixels' sharpness counts (0.9: the sharpest tenth).")
    min_gradient: float = option(4.0, min=0.1, max=100.0,
                                 help="Re-blurred gradient (grey levels/px) a pixel needs to count as an edge.")
    min_edges: int = option(20, min=1, max=100000, help="Edge pixels a direction needs to be judged.")


def edge_ratios(gray: np.ndarray, scale: float, quantile: float, min_gradient: float,
                min_edges: int) -> list[float]:
    """Per direction, the ``quantile`` of |gradient| / |re-blurred gradient| over edge pixels (NaN: too few edges)."""
    cv2 = require("cv2", "curate")
    g = np.asarray(gray, dtype=np.float32)
    coarse = cv2.GaussianBlur(g, (0, 0), scale)
    out = []
    for k in DIRECTIONS:
        c = np.abs(cv2.filter2D(coarse, cv2.CV_32F, k))
        edge = c > min_gradient
        n = int(np.count_nonzero(edge))
        if n < min_edges:
            out.append(float("nan"))
            continue
        f = np.abs(cv2.filter2D(g, cv2.CV_32F, k))
        r = f[edge] / c[edge]
        i = min(n - 1, int(quantile * (n - 1)))
        out.append(float(np.partition(r, i)[i]))  # the quantile without a full sort
    return out


def sharpness_from_ratio(ratio: float, scale: float) -> float:
    """1 / edge width for a re-blur ratio ``R``: ``b = scale / sqrt(R^2 - 1)``, capped at ``MAX_SHARPNESS``."""
    if ratio != ratio:  # NaN: nothing to judge
        return NO_EDGES
    excess = ratio * ratio - 1.0
    if excess <= 0.0:
        return 0.0
    return min(MAX_SHARPNESS, float(np.sqrt(excess)) / scale)


class BlurFilter:
    """Sharpness = 1 / width of the sharpest edges in the least sharp direction, at native or reduced scale."""

    name = "blur"
    direction: Direction = "below"
    description = "edge sharpness, 1 / edge width in px, at the image's own scale (higher = sharper)"

    def __init__(self, cfg: BlurConfig) -> None:
        self.threshold = cfg.threshold
        self.work_size = cfg.work_size
        self.scale = cfg.scale
        self.quantile = cfg.quantile
        self.min_gradient = cfg.min_gradient
        self.min_edges = cfg.min_edges

    def score(self, image: Image.Image | Views) -> FilterResult:
        gray = Views.of(image).gray(self.work_size)  # reduced when larger, never upscaled
        for level in (self.min_gradient, self.min_gradient / 4, self.min_gradient / 16):
            ratios = [r for r in edge_ratios(gray, self.scale, self.quantile, level, self.min_edges) if r == r]
            if ratios:
                return FilterResult(sharpness_from_ratio(min(ratios), self.scale))
        return FilterResult(NO_EDGES)
