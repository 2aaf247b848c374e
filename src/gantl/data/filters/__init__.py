"""Curation filters: one module per reason, and the per-image scorer that runs them together.

``score_bytes`` is what each worker process runs on each file: decode (the ``format`` check),
then every enabled per-image filter, plus the perceptual hashes the set-level ``duplicate``
filter needs later. It returns a flat dict (a manifest row without the decision), so scores can
be cached and re-thresholded without running any detector again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gantl.config import option, to_dict
from gantl.data.filters.base import REASONS, Filter, FilterResult, Views, fails, working_copy
from gantl.data.filters.blur import BlurConfig, BlurFilter
from gantl.data.filters.duplicate import DuplicateConfig, DuplicateFilter, phash_pair
from gantl.data.filters.face import FaceConfig, FaceFilter
from gantl.data.filters.fmt import FormatConfig, FormatError, decode
from gantl.data.filters.grayscale import GrayscaleConfig, GrayscaleFilter
from gantl.data.filters.resolution import ResolutionConfig, ResolutionFilter
from gantl.data.filters.text import TextConfig, TextFilter

__all__ = ["REASONS", "SCORE_COLUMNS", "Filter", "FilterResult", "FiltersConfig", "Scorer", "Threshold", "Views",
           "fails", "thresholds"]

#: Bump when a code change alters any score, so cached manifest rows are re-scored.
#: 3: blur resizes luma with OpenCV; text recognises each box alone.
#: 4: blur is edge sharpness (1 / edge width) at the image's own scale, not a Laplacian variance at 512 px;
#:    text counts only plausible readings (confidence, distinct characters, short readings not face-sized).
SCORER_VERSION = 4
#: Manifest columns holding a filter score, in report order.
SCORE_COLUMNS = ("resolution", "blur", "grayscale", "text", "face", "duplicate")
#: Per-image filters run in the workers (resolution needs no pixels, duplicate needs all images).
PIXEL_FILTERS = ("blur", "grayscale", "text", "face")


@dataclass
class FiltersConfig:
    format: FormatConfig = option(default_factory=FormatConfig, help="Decoding and accepted formats.")
    resolution: ResolutionConfig = option(default_factory=ResolutionConfig, help="Minimum size.")
    blur: BlurConfig = option(default_factory=BlurConfig, help="Sharpness.")
    grayscale: GrayscaleConfig = option(default_factory=GrayscaleConfig, help="Colourfulness.")
    text: TextConfig = option(default_factory=TextConfig, help="Legible text.")
    face: FaceConfig = option(default_factory=FaceConfig, help="Human faces.")
    duplicate: DuplicateConfig = option(default_factory=DuplicateConfig, help="Near-duplicates.")

    def scoring_fingerprint(self) -> str:
        """Hash of every setting that changes a *score* (not a threshold, not on/off): the cache key's version part.

        Switching a filter on is handled by the cache check (a row lacking that score is re-scored).
        """
        d = to_dict(self)
        keep = {"version": SCORER_VERSION, "format": d["format"]}
        for name in PIXEL_FILTERS:
            keep[name] = {k: v for k, v in d[name].items() if k not in ("threshold", "enabled")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


class Scorer:
    """Builds the enabled detectors once (per process) and scores raw file bytes."""

    def __init__(self, cfg: FiltersConfig, target_size: int) -> None:
        self.cfg = cfg
        self.target_size = target_size
        self.fingerprint = cfg.scoring_fingerprint()
        self.filters: dict[str, Any] = {}
        if cfg.blur.enabled:
            self.filters["blur"] = BlurFilter(cfg.blur)
        if cfg.grayscale.enabled:
            self.filters["grayscale"] = GrayscaleFilter(cfg.grayscale)
        if cfg.text.enabled:
            self.filters["text"] = TextFilter(cfg.text)
        if cfg.face.enabled:
            self.filters["face"] = FaceFilter(cfg.face)
        work = [cfg.blur.work_size, cfg.grayscale.work_size, cfg.text.work_size, cfg.face.work_size]
        self.need_long = max(w for name, w in zip(PIXEL_FILTERS, work, strict=True) if name in self.filters) \
            if self.filters else 0

    def score_bytes(self, data: bytes) -> dict[str, Any]:
        """Decode and score one file; never raises for a bad image (the error goes in the row)."""
        row: dict[str, Any] = {"scorer": self.fingerprint}
        try:
            # Scores depend only on the working sizes, not on the target size, so one scoring pass
            # serves every --size (the resolution score is computed from width/height at decision time).
            dec = decode(data, self.cfg.format, need_long=self.need_long)
        except FormatError as exc:
            row["error"] = str(exc)
            return row
        row.update(width=dec.width, height=dec.height, format=dec.format, notes="; ".join(dec.notes))
        # One shared copy at the largest working size; each smaller copy a filter asks for is made
        # from it once and shared (Views), e.g. the 640 px luma serves both face and blur.
        base = Views(working_copy(dec.image, self.need_long) if self.need_long else dec.image)
        for name, flt in self.filters.items():
            result: FilterResult = flt.score(base)
            row[name] = round(result.score, 6)
            if result.boxes:
                row[f"{name}_boxes"] = json.dumps([[round(v, 4) for v in b] for b in result.boxes])
        if self.cfg.duplicate.enabled:
            row["phash"], row["phash_mirror"] = phash_pair(base)
        return row


@dataclass
class Threshold:
    """What the decision step and the report need to know about one enabled filter."""

    name: str
    threshold: float
    direction: str  # "below" rejects low scores, "above" rejects high ones
    description: str

    def fails(self, score: float | None) -> bool:
        return fails(score, self.threshold, self.direction)  # type: ignore[arg-type]


_CLASSES = {"resolution": ResolutionFilter, "blur": BlurFilter, "grayscale": GrayscaleFilter,
            "text": TextFilter, "face": FaceFilter, "duplicate": DuplicateFilter}


def thresholds(cfg: FiltersConfig) -> dict[str, Threshold]:
    """The enabled filters' thresholds (no detector is loaded), in report order."""
    out: dict[str, Threshold] = {}
    for name in SCORE_COLUMNS:
        sub = getattr(cfg, name)
        if sub.enabled:
            cls = _CLASSES[name]
            out[name] = Threshold(name, float(sub.threshold), cls.direction, cls.description)
    return out
