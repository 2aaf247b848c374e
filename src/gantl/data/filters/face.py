"""``face``: the share of the picture the largest human face covers, from MTCNN (default) or dlib's HOG.

The score is the side of the largest detected face as a share of the image's short side (0 when
none is found), so the threshold reads as "reject if a face covers at least this much of the
picture": a tiny bystander in the distance can be allowed while a portrait cannot.

``detector = "mtcnn"`` (issue 13; ``mtcnn.py``, weights shipped in the package): a CNN cascade that
also finds three-quarter views, grayscale photos, tightly cropped and small faces, which HOG's one
frontal template misses, and whose probability separates cat faces from human ones. The pyramid
starts at faces of ``min_face`` x the short side (at least P-Net's 12 px), so the work spent does not
grow with the image: faces smaller than the threshold cannot change a decision anyway. A detection
counts from ``min_prob`` (O-Net's face probability). Grayscale images are replicated to 3 channels.
On the issue-13 development set (``benchmarks/build_filter_devset.py``, 942 face-labelled images)
``min_prob`` 0.95 gives recall 0.982 at precision 0.997 (HOG: 0.712 at 1.0; its one false alarm is
an enlarged CIFAR dog at 0.97); 0.9 also lets a cat face (0.93) and a motorcycle (0.91) through,
0.98 loses 15% of the tight LFW crops.

``detector = "hog"``, the fast path: dlib's HOG frontal-face detector on a grayscale working copy
whose long side is ``work_size`` (640 px). dlib's HOG window is 80x80 px, so at 640 px with no
upsampling it sees faces down to 80/640 = 12.5% of the long side; ``upsample=1`` halves that at
~3x the cost. On filterbench/photos (31 faces, 33 without) 640 px / no upsampling finds 30 of 31
with no false hit (the miss is the photographer's small face in skimage's camera.png).
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

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.data.filters.base import Direction, FilterResult, Views
from gantl.errors import require


@dataclass
class FaceConfig:
    enabled: bool = option(True, help="Reject images with a human face.")
    threshold: float = option(0.05, min=0.0, max=1.0,
                              help="Reject when the largest face's side is at least this share of the short side.")
    detector: str = option("mtcnn", choices=("mtcnn", "hog"),
                           help="mtcnn: CNN cascade (poses, gray, crops, small faces); hog: dlib, frontal, faster.")
    work_size: int = option(640, min=80, max=4096, help="Long side (px) the detector sees.")
    min_face: float = option(0.04, min=0.0, max=1.0,
                             help="mtcnn: smallest face searched, as a share of the short side (keep <= threshold).")
    min_prob: float = option(0.95, min=0.0, max=1.0,
                             help="mtcnn: minimum face probability of a detection (cat faces reach 0.7-0.93).")
    upsample: int = option(0, min=0, max=2, help="hog: dlib upsampling passes (1 finds smaller faces, ~3x slower).")
    detector_threshold: float = option(0.3, min=-2.0, max=3.0,
                                       help="hog: minimum dlib SVM score of a detection (cat faces score 0-0.3).")


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
    """Largest-face share from MTCNN or dlib's HOG detector (``FaceConfig.detector``)."""

    name = "face"
    direction: Direction = "above"
    description = "largest face side / image short side (0 = no face)"

    def __init__(self, cfg: FaceConfig) -> None:
        self.threshold = cfg.threshold
        self.detector = cfg.detector
        self.work_size = cfg.work_size
        self.upsample = cfg.upsample
        self.detector_threshold = cfg.detector_threshold
        self.min_face = cfg.min_face
        self.min_prob = cfg.min_prob
        if cfg.detector == "mtcnn":
            from gantl.data.filters.mtcnn import MTCNN

            self._mtcnn = MTCNN(thresholds=(0.6, 0.7, min(0.7, cfg.min_prob)))
        elif cfg.detector == "hog":
            self._detector = frontal_face_detector(require("dlib", "curate"))
        else:
            raise ValueError(f"unknown face detector {cfg.detector!r}; use 'mtcnn' or 'hog'")

    def faces(self, image: Image.Image | Views) -> tuple[list[tuple[float, float, float, float]], int, int]:
        """Face boxes in pixels of the working copy, and that copy's width and height."""
        views = Views.of(image)
        if self.detector == "hog":
            gray = views.gray(self.work_size)
            h, w = gray.shape
            rects, _scores, _kinds = self._detector.run(gray, self.upsample, self.detector_threshold)
            return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects], w, h
        rgb = np.asarray(views.rgb(self.work_size))
        h, w = rgb.shape[:2]
        found = self._mtcnn.detect(rgb, min_face=max(12.0, self.min_face * min(w, h)))
        return [d.box for d in found if d.prob >= self.min_prob], w, h

    def score(self, image: Image.Image | Views) -> FilterResult:
        rects, w, h = self.faces(image)
        best = 0.0
        boxes = []
        for left, top, right, bottom in rects:
            x0, y0, x1, y1 = max(0.0, left), max(0.0, top), min(w, right), min(h, bottom)
            if x1 <= x0 or y1 <= y0:
                continue
            best = max(best, max(x1 - x0, y1 - y0) / min(w, h))
            boxes.append([x0 / w, y0 / h, x1 / w, y1 / h])
        return FilterResult(min(best, 1.0), boxes)
