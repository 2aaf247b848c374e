"""``face``: dlib's HOG frontal-face detector with a minimum face size.

The score is the side of the largest detected face as a share of the image's short side (0 when
none is found), so the threshold reads as "reject if a face covers at least this much of the
picture": a tiny bystander in the distance can be allowed while a portrait cannot.

The detector runs on a grayscale working copy whose long side is ``work_size`` (640 px). dlib's
HOG window is 80x80 px, so at 640 px with no upsampling it sees faces down to 80/640 = 12.5% of
the long side; ``upsample=1`` halves that at ~3x the cost. On filterbench/photos (31 faces,
33 without) 640 px / no upsampling finds 30 of 31 with no false hit (the miss is the
photographer's small face in skimage's camera.png).

``detector_threshold`` 0.3: the HOG model also fires on frontal *cat* faces, but with low SVM
scores: on cats-raw.zip the cat-only hits score 0.01-0.29, while every human face found on
filterbench scores at least 0.45 (median ~2) and the people in cats-raw 0.32-0.98. Raising it
trades missed small/profile human faces for fewer pet faces flagged.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, Views
from gantl.errors import require


@dataclass
class FaceConfig:
    enabled: bool = option(True, help="Reject images with a human face.")
    threshold: float = option(0.05, min=0.0, max=1.0,
                              help="Reject when the largest face's side is at least this share of the short side.")
    work_size: int = option(640, min=80, max=4096, help="Long side (px) the detector sees.")
    upsample: int = option(0, min=0, max=2, help="dlib upsampling passes (1 finds smaller faces, ~3x slower).")
    detector_threshold: float = option(0.3, min=-2.0, max=3.0,
                                       help="Minimum dlib SVM score of a detection (cat faces score 0-0.3).")


log = logging.getLogger(__name__)


def frontal_face_detector(dlib: Any) -> Any:
    """dlib's HOG face detector, loaded from a cached copy of its model when one exists.

    ``get_frontal_face_detector()`` rebuilds the model from text embedded in dlib and takes
    0.5-1 s of CPU, paid again by every curation worker; loading the same model from its own
    serialisation takes ~2 ms. The copy lives in ``$GANTL_CACHE_DIR`` (default ``~/.cache/gantl``)
    under a name with dlib's version, and is written atomically; any problem falls back to the
    built-in detector.
    """
    root = os.environ.get("GANTL_CACHE_DIR")
    cache = (Path(root).expanduser() if root else Path.home() / ".cache" / "gantl") / "curate"
    path = cache / f"dlib-{dlib.__version__}-frontal-face.svm"
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except Exception as exc:  # noqa: BLE001 - a damaged cache file is rebuilt below
            log.info("ignoring unreadable %s (%s)", path, exc)
    detector = dlib.get_frontal_face_detector()
    tmp = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
        os.close(fd)
        detector.save(tmp)
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001 - read-only home, full disk: just slower next time
        log.info("cannot cache the face detector in %s (%s)", cache, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return detector


class FaceFilter:
    """Largest-face share from dlib's HOG detector."""

    name = "face"
    direction: Direction = "above"
    description = "largest face side / image short side (0 = no face)"

    def __init__(self, cfg: FaceConfig) -> None:
        dlib = require("dlib", "curate")
        self.threshold = cfg.threshold
        self.work_size = cfg.work_size
        self.upsample = cfg.upsample
        self.detector_threshold = cfg.detector_threshold
        self._detector = frontal_face_detector(dlib)

    def score(self, image: Image.Image | Views) -> FilterResult:
        gray = Views.of(image).gray(self.work_size)
        h, w = gray.shape
        rects, _scores, _kinds = self._detector.run(gray, self.upsample, self.detector_threshold)
        best = 0.0
        boxes = []
        for r in rects:
            x0, y0, x1, y1 = max(0, r.left()), max(0, r.top()), min(w, r.right()), min(h, r.bottom())
            if x1 <= x0 or y1 <= y0:
                continue
            best = max(best, max(x1 - x0, y1 - y0) / min(w, h))
            boxes.append([x0 / w, y0 / h, x1 / w, y1 / h])
        return FilterResult(min(best, 1.0), boxes)
