"""``text``: prominence of legible text, from an offline OCR model (RapidOCR / PP-OCR ONNX).

Text detectors alone fire on any high-contrast stroke (a dark silhouette against a light sky
looks like a glyph to them: the pain point of the study this project grew from). So every box
the detector finds is also *recognised*, and only counts when the recogniser reads at least
``min_chars`` letters or digits from it. The score is

    prominence = sum over counted boxes of (box area / image area) x recognition confidence

i.e. the share of the picture covered by confidently-read text. A small watermark scores
~0.001-0.005, a sign or caption 0.02-0.2, a page of text 0.5.

Texture guard (issue 13: fur, hair, faces and facades were read as text). On the 140 cats-raw
photos the filter flagged, every false alarm was a *two-character* reading, mostly of a whole cat
face or body: "87" (confidence 0.95) over a face box 48% of the image's short side high, "VA",
"ye", "Sy", "60", "p7" (confidence 0.26-0.59), "OO" over a pair of eyes, "XE" on a wallpaper
border (0.09). Real text is read with more letters, with confidence, and in lines much smaller
than a face. So a box counts only if its reading

- has at least ``min_confidence`` (0.3) recognition confidence (texture: 0.09-0.28; filterbench's
  Thai sign, which the Latin/Chinese recogniser reads as "Wi", 0.33),
- has at least two *different* letters or digits (texture repeats a stroke: "OO", "ll", "111"),
- and, when it has at most ``short_chars`` (2) letters or digits, its line is at most
  ``short_max_height`` (15%) of the image's short side high: a two-letter reading as tall as a
  cat's head is a face, not a label, while name tags and jersey numbers stay well below that.

On the 140 cats-raw photos the old rule flagged this removes all 9 false alarms (checked by eye)
and one real, weak reading (a calendar read "E04" at 0.24). No filterbench decision changes.

Each box is recognised on its own (a batch of one): batching pads every crop to the widest crop
of its batch, which costs time and makes a box's reading depend on its neighbours. Only the
``max_boxes`` largest boxes are recognised (they dominate the sum); direction classification is
off (upside-down text is rare in photos).

Speed: detection runs with the long side limited to ``work_size`` (480 px; smaller sizes lose
small captions on filterbench: 416 px misses 3 of the 23 found at 480). It is ~80% of the filter's
cost, so the detector and recogniser run as exactly simplified graphs (``fast_onnx``) in one
onnxruntime thread each, and the input is normalised in float32 in one pass.

Default threshold 0.004: on filterbench/photos it catches 23 of 25 images labelled as having
prominent text with no false hit. The misses: skimage's low-contrast text.png (the detector finds
nothing at 480 px) and df_img53.jpg, whose one large box is read as the single letter "R".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, Views
from gantl.data.filters.fast_onnx import cpu_session
from gantl.errors import require

log = logging.getLogger(__name__)


@dataclass
class TextConfig:
    enabled: bool = option(True, help="Reject images with prominent legible text.")
    threshold: float = option(0.004, min=0.0, max=1.0,
                              help="Reject when confidently-read text covers at least this share of the image.")
    work_size: int = option(480, min=64, max=4096, help="Long side (px) the text detector sees.")
    max_boxes: int = option(8, min=1, max=200, help="Recognise only this many of the largest detected boxes.")
    min_chars: int = option(2, min=1, max=20, help="A box counts only if at least this many letters/digits are read.")
    min_confidence: float = option(0.3, min=0.0, max=1.0,
                                   help="A box counts only if its reading has at least this recognition confidence.")
    short_chars: int = option(2, min=0, max=20,
                              help="Readings with at most this many letters/digits must also pass short_max_height.")
    short_max_height: float = option(0.15, min=0.0, max=1.0,
                                     help="Tallest line (share of the image's short side) a short reading may have.")


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a polygon given as an [N, 2] array."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def count_alnum(text: str) -> int:
    """Letters and digits in any script (CJK characters count; punctuation and symbols do not)."""
    return sum(ch.isalnum() for ch in text)


def line_height(box: np.ndarray) -> float:
    """Height of a 4-point text box: its shorter side (boxes are rotated rectangles)."""
    e1 = float(np.linalg.norm(box[1] - box[0]))
    e2 = float(np.linalg.norm(box[2] - box[1]))
    return min(e1, e2)


def plausible_reading(text: str, conf: float, height_share: float, cfg: TextConfig) -> bool:
    """Whether one recognised box counts as legible text rather than texture read as glyphs (see module doc)."""
    chars = [ch.lower() for ch in text if ch.isalnum()]
    if len(chars) < cfg.min_chars or conf < cfg.min_confidence:
        return False
    if len(set(chars)) < min(2, len(chars)):  # "OO", "lll", "1111": one repeated stroke
        return False
    return not (len(chars) <= cfg.short_chars and height_share > cfg.short_max_height)


def detector_input(bgr: np.ndarray) -> np.ndarray:
    """The DB detector's input: each side rounded to a multiple of 32, scaled to [-1, 1], NCHW float32.

    The same resize and normalisation as PaddleOCR's ``DetResizeForTest``/``NormalizeImage``
    (mean 0.5, std 0.5), computed in float32 in one pass instead of via float64 temporaries.
    """
    cv2 = require("cv2", "curate")
    h, w = bgr.shape[:2]
    size = (max(32, int(round(w / 32) * 32)), max(32, int(round(h / 32) * 32)))
    resized = cv2.resize(bgr, size) if size != (w, h) else bgr
    x = resized.astype(np.float32)
    x *= np.float32(2.0 / 255.0)
    x -= np.float32(1.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _model_paths(rapidocr: Any) -> tuple[Path, Path]:
    """The detector and recogniser ONNX files RapidOCR itself loads (from its bundled config)."""
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import read_yaml

    cfg = read_yaml(DEFAULT_CFG_PATH)
    root = Path(rapidocr.__file__).resolve().parent
    return root / cfg["Det"]["model_path"], root / cfg["Rec"]["model_path"]


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
        self.cfg = cfg
        # RapidOCR supplies the box post-processing, the perspective crops and the CTC decoding;
        # the networks themselves run in our simplified one-thread sessions (see fast_onnx).
        self._ocr = rapidocr.RapidOCR(
            det_limit_side_len=cfg.work_size, det_limit_type="max", use_cls=False,
            intra_op_num_threads=1, inter_op_num_threads=1, print_verbose=False,
        )
        self._det = self._ocr.text_det.infer.session
        try:
            det_path, rec_path = _model_paths(rapidocr)
            self._det = self._ocr.text_det.infer.session = cpu_session(det_path)
            self._ocr.text_rec.session.session = cpu_session(rec_path)
        except Exception as exc:  # noqa: BLE001 - an unknown RapidOCR layout keeps its own sessions
            log.info("text filter uses RapidOCR's own ONNX sessions (%s: %s)", type(exc).__name__, exc)
        self._det_input = self._det.get_inputs()[0].name

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Detected text boxes (4 corner points each, clockwise, inside the image), largest first."""
        h, w = bgr.shape[:2]
        prob = self._det.run(None, {self._det_input: detector_input(bgr)})[0]
        boxes, _scores = self._ocr.text_det.postprocess_op(prob, (h, w))
        if boxes is None or len(boxes) == 0:
            return []
        boxes = self._ocr.text_det.filter_tag_det_res(boxes, (h, w))
        return sorted((np.asarray(b, dtype=np.float32) for b in boxes), key=polygon_area, reverse=True)

    def read(self, bgr: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
        """The ``max_boxes`` largest detected boxes with their recognised text and confidence."""
        boxes = self.detect(bgr)[: self.max_boxes]
        if not boxes:
            return []
        crops = self._ocr.get_crop_img_list(bgr, np.array(boxes))
        out = []
        for box, crop in zip(boxes, crops, strict=True):
            result = self._ocr.text_rec([crop])[0][0]  # one crop per call: no padding to a wider neighbour
            out.append((box.astype(np.float64), str(result[0]), float(result[1])))
        return out

    def score(self, image: Image.Image | Views) -> FilterResult:
        cv2 = require("cv2", "curate")
        bgr = cv2.cvtColor(np.asarray(Views.of(image).rgb(self.work_size)), cv2.COLOR_RGB2BGR)
        h, w = bgr.shape[:2]
        total = 0.0
        out = []
        for box, text, conf in self.read(bgr):
            if not plausible_reading(text, conf, line_height(box) / min(w, h), self.cfg):
                continue
            total += polygon_area(box) / (w * h) * conf
            x0, y0 = box.min(axis=0)
            x1, y1 = box.max(axis=0)
            out.append([max(0.0, x0 / w), max(0.0, y0 / h), min(1.0, x1 / w), min(1.0, y1 / h)])
        return FilterResult(min(total, 1.0), out)
