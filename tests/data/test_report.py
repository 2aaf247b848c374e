"""The HTML curation report: self-contained, one section per filter, boxes drawn, thresholds marked."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from gantl.data.curate import CurateConfig, curate


@pytest.fixture(scope="module")
def report(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    photos = shared_datasets / "filterbench" / "photos"
    if not photos.is_dir():
        pytest.skip(f"{photos} is missing")
    src = tmp_path_factory.mktemp("src")
    for name in ("fr_two_people.jpg", "eo_japanese.jpg", "sk_chelsea.png", "sk_coffee.png", "sk_camera.png"):
        shutil.copy(photos / name, src / name)
    Image.open(photos / "sk_coffee.png").filter(ImageFilter.GaussianBlur(4)).save(src / "coffee_soft.png")
    Image.open(photos / "sk_coffee.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "coffee_flip.png")
    (src / "broken.jpg").write_bytes(b"<html>not an image</html>")
    out = tmp_path_factory.mktemp("out")
    res = curate(str(src), CurateConfig(size=128, workers=1), manifest=out / "m.csv", out=out / "d.zip",
                 report=out / "r.html", progress=False)
    return (out / "r.html").read_text(encoding="utf-8"), res


def test_report_is_self_contained(report) -> None:
    text, _ = report
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    # nothing is fetched from elsewhere: every src is an inline data URI, no stylesheet/script links
    assert all(s.startswith("data:image/") for s in re.findall(r'src="([^"]*)"', text))
    assert "<link" not in text and "<script" not in text
    assert not re.search(r'(href|src)="https?:|url\(https?:', text)


def test_report_has_counts_sections_histograms_and_near_threshold_strips(report) -> None:
    text, res = report
    counts = res.counts
    assert f"<b>{counts['kept']}</b> kept, <b>{counts['rejected']}</b> rejected" in text
    for name in ("resolution", "blur", "grayscale", "text", "face", "duplicate"):
        assert f'<section id="{name}">' in text
        assert f"filters.{name}.threshold" in text  # how to change it
    assert text.count("<svg") == 6  # one histogram per filter
    assert "threshold 0.65" in text and "threshold 0.004" in text
    assert text.count("closest to the threshold") >= 10
    assert "not an image Pillow can identify" in text  # the broken file is listed with its reason
    assert "best copy" in text  # the flipped coffee is grouped with its original


def _thumb_of(text: str, file: str) -> Image.Image:
    m = re.search(r'<figure[^>]*title="' + re.escape(file) + r'"><img src="data:image/jpeg;base64,([^"]+)"', text)
    assert m, file
    return Image.open(io.BytesIO(base64.b64decode(m.group(1)))).convert("RGB")


def test_face_and_text_boxes_are_drawn(report) -> None:
    text, res = report
    rows = {r["file"]: r for r in res.rows}
    assert "face" in rows["fr_two_people.jpg"]["reasons"] and "text" in rows["eo_japanese.jpg"]["reasons"]
    face = np.asarray(_thumb_of(text, "fr_two_people.jpg")).astype(int)
    red = (face[..., 0] > 200) & (face[..., 1] < 90) & (face[..., 2] < 90)
    assert red.sum() > 40  # the red face rectangles
    sign = np.asarray(_thumb_of(text, "eo_japanese.jpg")).astype(int)
    blue = (sign[..., 2] > 200) & (sign[..., 0] < 90) & (sign[..., 1] > 100)
    assert blue.sum() > 40  # the blue text rectangles
    plain = np.asarray(_thumb_of(text, "coffee_soft.png")).astype(int)
    assert ((plain[..., 0] > 200) & (plain[..., 1] < 60) & (plain[..., 2] < 60)).sum() < 5
