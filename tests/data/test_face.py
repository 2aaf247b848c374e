"""The MTCNN face detector (issue 13): strict weights, fixed outputs, faces found where HOG missed them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantl.data.filters.face import FaceConfig, FaceFilter
from gantl.data.filters.mtcnn import MTCNN, WEIGHTS, MTCNNNets, load_nets, nms, square


@pytest.fixture(scope="module")
def nets() -> MTCNNNets:
    return load_nets()


@pytest.fixture(scope="module")
def face_filter() -> FaceFilter:
    return FaceFilter(FaceConfig(detector="mtcnn"))


@pytest.fixture(scope="module")
def photos(shared_datasets: Path) -> Path:
    root = shared_datasets / "filterbench" / "photos"
    if not root.is_dir():
        pytest.skip(f"{root} is missing")
    return root


def test_weights_ship_with_the_package_and_load_strictly(nets: MTCNNNets, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 3_000_000
    tensors = load_file(str(WEIGHTS))
    assert set(tensors) == set(nets.state_dict())  # every parameter, nothing extra
    assert sum(v.numel() for v in tensors.values()) == 495_850
    del tensors["onet.dense6_3.bias"]
    save_file(tensors, str(tmp_path / "partial.safetensors"))
    with pytest.raises(RuntimeError, match="Missing key"):
        load_nets(tmp_path / "partial.safetensors")
    with pytest.raises(FileNotFoundError, match="convert_mtcnn_weights"):
        load_nets(tmp_path / "absent.safetensors")


def test_network_outputs_on_a_fixed_input_are_fixed(nets: MTCNNNets) -> None:
    """Same input, same numbers: twice in a row and against values recorded from these weights."""
    g = torch.Generator().manual_seed(0)
    x48 = torch.rand(2, 3, 48, 48, generator=g) * 2 - 1
    with torch.inference_mode():
        p = nets.pnet(x48)
        r = nets.rnet(x48[:, :, ::2, ::2].contiguous())
        o = nets.onet(x48)
        again = nets.onet(x48)
    assert p[0].shape == (2, 4, 19, 19) and p[1].shape == (2, 19, 19)
    assert r[0].shape == (2, 4) and o[1].shape == (2, 10)
    assert all(torch.equal(a, b) for a, b in zip(o, again, strict=True))
    got = [float(p[1].sum()), float(r[1].sum()), float(o[2].sum()), float(o[0].abs().sum())]
    np.testing.assert_allclose(got, REFERENCE, rtol=1e-4, atol=1e-7)


#: ``test_network_outputs_on_a_fixed_input_are_fixed``'s sums as first computed from the shipped weights.
REFERENCE = [6.238676, 0.01960622, 0.00029167, 0.6418794]


def test_nms_and_square() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]  # box 1 overlaps box 0 by IoU 0.68
    assert nms(boxes, scores, 0.5, use_min=True).tolist() == [3, 2]  # box 0 holds box 3 entirely
    assert square(np.array([[0, 0, 4, 2]], np.float32)).tolist() == [[0, -1, 4, 3]]


def test_finds_faces_in_filterbench_portraits(photos: Path, face_filter: FaceFilter) -> None:
    two = face_filter.score(Image.open(photos / "fr_two_people.jpg").convert("RGB"))
    assert len(two.boxes) == 2 and two.score > 0.2
    astronaut = Image.open(photos / "sk_astronaut.png").convert("RGB")
    res = face_filter.score(astronaut)
    assert len(res.boxes) == 1 and 0.15 < res.score < 0.3
    x0, y0, x1, y1 = res.boxes[0]
    assert 0.35 < (x0 + x1) / 2 < 0.6 and 0.1 < (y0 + y1) / 2 < 0.35  # her face, upper middle
    gray = face_filter.score(astronaut.convert("L"))  # grayscale works (replicated to 3 channels)
    assert len(gray.boxes) == 1 and gray.score == pytest.approx(res.score, abs=0.03)
    hog = FaceFilter(FaceConfig(detector="hog")).score(astronaut)  # the fast path still works
    assert len(hog.boxes) == 1


def test_finds_a_small_pasted_face_and_nothing_on_a_cat_or_plain_image(photos: Path,
                                                                      face_filter: FaceFilter) -> None:
    astronaut = Image.open(photos / "sk_astronaut.png").convert("RGB")
    head = astronaut.crop((170, 20, 330, 220)).resize((48, 60), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(0)
    canvas = Image.fromarray((rng.normal(120, 25, (480, 640, 3)).clip(0, 255)).astype(np.uint8))
    canvas.paste(head, (400, 300))
    res = face_filter.score(canvas)
    assert len(res.boxes) == 1 and 0.05 < res.score < 0.15  # a ~40 px face in a 480 px high scene
    assert 0.6 < res.boxes[0][0] < 0.7
    assert face_filter.score(Image.open(photos / "sk_chelsea.png").convert("RGB")).score == 0.0
    assert face_filter.score(Image.new("RGB", (320, 240), (200, 180, 160))).score == 0.0


def test_detect_checks_its_input() -> None:
    det = MTCNN()
    assert det.detect(np.zeros((40, 40), np.uint8)) == []  # 2-D gray accepted
    with pytest.raises(ValueError, match="uint8 RGB"):
        det.detect(np.zeros((40, 40, 3), np.float32))
    with pytest.raises(ValueError, match="factor"):
        MTCNN(factor=1.0)
