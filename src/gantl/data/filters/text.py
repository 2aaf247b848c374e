"""``text``: prominence of legible text, from an offline OCR model (RapidOCR / PP-OCR ONNX).

Text detectors alone fire on any high-contrast stroke (a dark silhouette against a light sky
looks like a glyph to them: the pain point of the study this project grew from). So every box
the detector finds is also *recognised*, and only counts when the recogniser reads at least
``min_chars`` letters or digits from it. The score is

    prominence = sum over counted boxes of (box area / image area) x recognition confidence

i.e. the share of the picture covered by confidently-read text. A small watermark scores
~0.001-0.005, a sign or caption 0.02-0.2, a page of text 0.5.

Speed: detection runs with the long side limited to ``work_size`` (480 px) and only the
``max_boxes`` largest boxes are recognised (they dominate the sum). Direction classification
is off (upside-down text is rare in photos).

Default threshold 0.004: on filterbench/photos it catches 23 of 25 images labelled as having
prominent text with no false hit (misses: Thai script, which the bundled Chinese/English
recogniser cannot read, and skimage's low-contrast text.png).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, working_copy
from gantl.errors import require


@dataclass
class TextConfig:
    enabled: bool = option(True, help="Reject images with prominent legible text.")
    threshold: float = option(0.004, min=0.0, max=1.0,
                              help="Reject when confidently-read text covers at least this share of the image.")
    work_size: int = option(480, min=64, max=4096, help="Long side (px) the text detector sees.")
    max_boxes: int = option(8, min=1, max=200, help="Recognise only this many of the largest detected boxes.")
    min_chars: int = option(2, min=1, max=20, help="A box counts only if at least this many letters/digits are read.")


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a polygon given as an [N, 2] array."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def count_alnum(text: str) -> int:
    """Letters and digits in any script (CJK characters count; punctuation and symbols do not)."""
    return sum(ch.isalnum() for ch in text)


class TextFilter:
    """Text prominence = sum(area share x recognition confidence) over legible boxes."""

    name = "text"
    direction: Direction = "above"
    description = "share of the image covered by legible text, weighted by OCR confidence"

    def __init__(self, cfg: TextConfig) -> None:
        rapidocr = require("rapidocr_onnxruntime", "curate")
        self.threshold = cfg.threshold
        self.work_size = cfg.work_size
        self.max_boxes = cfg.max_boxes
        self.min_chars = cfg.min_chars
        # One ONNX thread per process: curation parallelises across processes instead.
        self._ocr = rapidocr.RapidOCR(
            det_limit_side_len=cfg.work_size, det_limit_type="max", use_cls=False,
            intra_op_num_threads=1, inter_op_num_threads=1, print_verbose=False,
        )

    def read(self, bgr: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
        """Detected boxes (largest first, at most ``max_boxes``) with recognised text and confidence."""
        boxes, _elapsed = self._ocr.text_det(bgr)
        if boxes is None or len(boxes) == 0:
            return []
        boxes = sorted(boxes, key=polygon_area, reverse=True)[: self.max_boxes]
        crops = self._ocr.get_crop_img_list(bgr, np.array(boxes))
        recs, _elapsed = self._ocr.text_rec(crops)
        return [(np.asarray(b, dtype=np.float64), str(r[0]), float(r[1])) for b, r in zip(boxes, recs, strict=True)]

    def score(self, image: Image.Image) -> FilterResult:
        small = working_copy(image, self.work_size).convert("RGB")
        bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        h, w = bgr.shape[:2]
        total = 0.0
        out = []
        for box, text, conf in self.read(bgr):
            if count_alnum(text) < self.min_chars:
                continue
            total += polygon_area(box) / (w * h) * conf
            x0, y0 = box.min(axis=0)
            x1, y1 = box.max(axis=0)
            out.append([max(0.0, x0 / w), max(0.0, y0 / h), min(1.0, x1 / w), min(1.0, y1 / h)])
        return FilterResult(min(total, 1.0), out)
