"""Curation filters: the filterbench acceptance numbers (issue 5) plus synthetic unit checks."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from gantl.data.filters import FiltersConfig, Scorer
from gantl.data.filters.base import fails, working_copy
from gantl.data.filters.blur import BlurConfig, BlurFilter
from gantl.data.filters.duplicate import DuplicateConfig, DuplicateFilter, distance_matrix, hamming, phash_pair
from gantl.data.filters.fmt import FormatConfig, FormatError, decode
from gantl.data.filters.grayscale import GrayscaleConfig, GrayscaleFilter
from gantl.data.filters.text import TextConfig, count_alnum, line_height, plausible_reading, polygon_area

# ----------------------------------------------------------------------------- filterbench fixtures


@pytest.fixture(scope="module")
def bench(shared_datasets: Path) -> Path:
    root = shared_datasets / "filterbench"
    if not root.is_dir():
        pytest.skip(f"{root} is missing")
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        return {r["file"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def photo_scores(bench: Path) -> dict[str, dict]:
    """Every filter on the 64 labelled photos (the slow detectors run only here)."""
    scorer = Scorer(FiltersConfig(), 256)
    t0 = time.perf_counter()
    labels = _rows(bench / "photos" / "labels.csv")
    out = {f: scorer.score_bytes((bench / "photos" / f).read_bytes()) for f in labels}
    print(f"scored {len(out)} photos with all filters in {time.perf_counter() - t0:.1f}s")
    return out


@pytest.fixture(scope="module")
def variant_scores(bench: Path) -> dict[str, dict]:
    """Cheap filters (blur, grayscale, hashes) on the edited variants and their source photos."""
    cfg = FiltersConfig()
    cfg.text.enabled = False
    cfg.face.enabled = False
    scorer = Scorer(cfg, 256)
    out = {}
    for sub in ("variants", "photos"):
        for path in sorted((bench / sub).iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                out[f"{sub}/{path.name}"] = scorer.score_bytes(path.read_bytes())
    return out


# ----------------------------------------------------------------------------- acceptance (issue 5)


def test_face_recall_and_false_hits_on_filterbench(bench: Path, photo_scores: dict) -> None:
    labels = _rows(bench / "photos" / "labels.csv")
    th = FiltersConfig().face.threshold
    pos = [f for f, r in labels.items() if r["has_face"] == "1"]
    neg = [f for f, r in labels.items() if r["has_face"] == "0"]
    hits = [f for f in pos if fails(photo_scores[f]["face"], th, "above")]
    false_hits = [f for f in neg if fails(photo_scores[f]["face"], th, "above")]
    recall = len(hits) / len(pos)
    print(f"face recall {recall:.3f} ({len(hits)}/{len(pos)}), false hits {false_hits}")
    assert len(pos) == 31 and len(neg) == 33
    assert recall >= 0.9
    assert len(false_hits) <= 1
    assert all(photo_scores[f].get("face_boxes") for f in hits)  # boxes kept for the report


def test_text_recall_and_false_hits_on_filterbench(bench: Path, photo_scores: dict) -> None:
    labels = _rows(bench / "photos" / "labels.csv")
    th = FiltersConfig().text.threshold
    pos = [f for f, r in labels.items() if r["has_text"] == "1"]
    neg = [f for f, r in labels.items() if r["has_text"] == "0"]
    hits = [f for f in pos if fails(photo_scores[f]["text"], th, "above")]
    false_hits = [f for f in neg if fails(photo_scores[f]["text"], th, "above")]
    recall = len(hits) / len(pos)
    print(f"text recall {recall:.3f} ({len(hits)}/{len(pos)}), false hits {false_hits}")
    assert len(hits) >= 23  # issue 13: the texture guard keeps filterbench's recall
    assert not false_hits
    # the dark-silhouette case that fooled the seed study's detector stays clean
    assert photo_scores["sk_horse.png"]["text"] < th


def test_grayscale_catches_every_gray_variant_and_no_colour_original(bench: Path, variant_scores: dict) -> None:
    variants = _rows(bench / "variants" / "variants.csv")
    th = FiltersConfig().grayscale.threshold
    gray = [f for f, r in variants.items() if r["kind"] == "gray" and r["param"] == "1"]
    sources = {variants[f]["source_file"] for f in gray}
    assert len(gray) == 8
    for f in gray:
        assert fails(variant_scores[f"variants/{f}"]["grayscale"], th, "below"), f
    originals = [f for f, r in variants.items() if r["param"] == "0"]
    for f in originals:
        assert not fails(variant_scores[f"variants/{f}"]["grayscale"], th, "below"), f
    for src in sources:  # the colour photos themselves
        assert not fails(variant_scores[f"photos/{src}"]["grayscale"], th, "below"), src
    # documented choice: sepia is a colour image and is kept
    for f in (f for f, r in variants.items() if r["param"] == "sepia"):
        assert not fails(variant_scores[f"variants/{f}"]["grayscale"], th, "below"), f


def test_blur_catches_every_sigma3_variant_and_keeps_every_original(bench: Path, variant_scores: dict) -> None:
    variants = _rows(bench / "variants" / "variants.csv")
    th = FiltersConfig().blur.threshold
    blurred = [f for f, r in variants.items() if r["kind"] == "blur" and r["param"] == "3"]
    originals = [f for f, r in variants.items() if r["kind"] == "blur" and r["param"] == "0"]
    assert len(blurred) == len(originals) == 16
    worst_blurred = max(variant_scores[f"variants/{f}"]["blur"] for f in blurred)
    least_sharp = min(variant_scores[f"variants/{f}"]["blur"] for f in originals)
    print(f"blur: sigma-3 max {worst_blurred:.3f}, originals min {least_sharp:.3f}, threshold {th}")
    assert worst_blurred < th <= least_sharp
    labels = _rows(bench / "photos" / "labels.csv")
    colour_photos = [f for f in labels if f != "sk_clock_motion.png"]  # the one naturally motion-blurred photo
    assert all(not fails(variant_scores[f"photos/{f}"]["blur"], th, "below") for f in colour_photos)
    assert fails(variant_scores["photos/sk_clock_motion.png"]["blur"], th, "below")


def test_duplicates_found_with_no_false_pair(bench: Path, variant_scores: dict) -> None:
    variants = _rows(bench / "variants" / "variants.csv")
    files = [f for f in variant_scores if f.startswith("photos/")]
    files += [f"variants/{f}" for f, r in variants.items() if r["kind"] == "dup"]

    def source(f: str) -> str:
        return variants[f[9:]]["source_file"] if f.startswith("variants/") else f[7:]

    rows = [variant_scores[f] for f in files]
    dup = DuplicateFilter(DuplicateConfig())
    decision = dup.decide([(r["phash"], r["phash_mirror"]) for r in rows], [True] * len(rows),
                          [r["blur"] for r in rows], [r["width"] * r["height"] for r in rows])
    caught = {files[i]: files[j] for i, j in enumerate(decision.duplicate_of) if j is not None}
    # no false pair: every rejected copy points at a copy of the same photo
    assert all(source(a) == source(b) for a, b in caught.items()), caught
    # every half / q30 / bright / flip copy is grouped with its original (one of the group is kept)
    kept_of = {}
    for f in files:
        kept_of[f] = caught.get(f, f)
    for f, r in variants.items():
        if r["kind"] == "dup" and r["param"] in ("half", "q30", "bright", "flip"):
            assert kept_of[f"variants/{f}"] == kept_of[f"photos/{r['source_file']}"], f
    # the half-size copy is never the one kept; in most groups the full-size original is
    for f, r in variants.items():
        if r["param"] == "half":
            assert f"variants/{f}" in caught, f
    originals_kept = sum(f"photos/{r['source_file']}" not in caught for r in variants.values() if r["kind"] == "dup")
    assert originals_kept >= 0.75 * sum(r["kind"] == "dup" for r in variants.values())
    # no two different photos are paired
    assert not any(a.startswith("photos/") and caught[a].startswith("photos/") for a in caught)


def test_corrupt_files_are_kept_or_rejected_for_format(bench: Path) -> None:
    scorer = Scorer(FiltersConfig(), 64)
    results = {}
    for path in sorted((bench / "corrupt").iterdir()):
        if path.suffix == ".md":
            continue
        results[path.name] = scorer.score_bytes(path.read_bytes())  # never raises
    for name in ("ok.jpg", "ok.png", "ok.webp", "rgba.png"):
        assert "error" not in results[name], (name, results[name])
        assert results[name]["width"] == 600
    for name in ("garbage.jpg", "html.jpg", "trunc.jpg", "trunc.png", "trunc.webp", "gif.gif"):
        assert results[name].get("error"), name
    assert "truncated" in results["trunc.jpg"]["error"]
    assert "not an accepted format" in results["gif.gif"]["error"]


# ----------------------------------------------------------------------------- unit checks


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _flat_art(size: int = 128) -> Image.Image:
    """Flat-shaded shapes with antialiased edges (drawn at 4x, box-reduced): few edges, no texture."""
    big = Image.new("RGB", (4 * size, 4 * size), (240, 220, 180))
    d = ImageDraw.Draw(big)
    d.ellipse([60, 80, 300, 330], fill=(200, 60, 40), outline=(30, 30, 30), width=8)
    d.polygon([(250, 40), (480, 200), (330, 460)], fill=(40, 120, 200))
    d.rectangle([100, 380, 420, 450], fill=(90, 170, 80))
    return big.resize((size, size), Image.Resampling.BOX)


def test_blur_keeps_sharp_subject_on_smooth_background() -> None:
    """A small sharp subject on a flat background passes; the same image defocused does not."""
    photo = Image.new("RGB", (512, 512), (128, 128, 128))
    photo.paste(_flat_art(160), (180, 180))
    f = BlurFilter(BlurConfig())
    assert f.score(photo).score > f.threshold > f.score(photo.filter(ImageFilter.GaussianBlur(3))).score
    # heavy defocus leaves no gradient above min_gradient: the lower edge levels still judge it
    assert f.score(photo.filter(ImageFilter.GaussianBlur(8))).score < f.threshold


@pytest.mark.parametrize("size", [64, 128, 200])
def test_flat_art_is_sharp_at_its_own_size_and_blurred_copies_are_not(size: int) -> None:
    """Issue 13: small flat-shaded art used to be upscaled to 512 px and called blurry (52% of a set)."""
    f = BlurFilter(BlurConfig())
    art = _flat_art(size)
    assert f.score(art).score > 1.3 * f.threshold  # a margin, not a coin flip
    assert f.score(art.filter(ImageFilter.GaussianBlur(2))).score < f.threshold
    # the old measure (Laplacian variance after upscaling to 512 px) failed exactly this image
    up = np.asarray(art.convert("L").resize((512, 512), Image.Resampling.BICUBIC), np.float32)
    import cv2

    assert float(cv2.Laplacian(up, cv2.CV_32F, ksize=1).var()) < 60


def test_motion_blur_in_one_direction_is_caught_at_any_angle() -> None:
    """Camera shake widens only the edges across it; the least sharp direction decides."""
    import cv2

    art = np.asarray(_flat_art(384), np.float32)
    f = BlurFilter(BlurConfig())
    assert f.score(Image.fromarray(art.astype(np.uint8))).score > f.threshold
    for angle in (0, 30, 90, 135):
        k = np.zeros((15, 15), np.float32)
        k[7, :] = 1.0
        k = cv2.warpAffine(k, cv2.getRotationMatrix2D((7, 7), angle, 1.0), (15, 15))
        moved = np.clip(cv2.filter2D(art, -1, k / k.sum()), 0, 255).astype(np.uint8)
        assert f.score(Image.fromarray(moved)).score < f.threshold, angle


def test_blur_score_is_contrast_free_and_blank_images_have_no_sharp_region() -> None:
    """Edge width, not edge strength: a faint sharp edge is as sharp as a strong one."""
    from gantl.data.filters.blur import NO_EDGES

    f = BlurFilter(BlurConfig())
    strong, faint = (_flat_art(128), Image.blend(_flat_art(128), Image.new("RGB", (128, 128), (128, 128, 128)), 0.7))
    assert abs(f.score(strong).score - f.score(faint).score) < 0.25 * f.score(strong).score
    assert f.score(Image.new("RGB", (100, 80), (30, 60, 90))).score == NO_EDGES < f.threshold
    # a 4 px image (fewer pixels than min_edges) does not crash either
    assert f.score(Image.new("RGB", (4, 4), (0, 0, 0))).score == NO_EDGES


def test_grayscale_score_sees_gray_stored_as_rgb_and_a_small_colour_patch() -> None:
    f = GrayscaleFilter(GrayscaleConfig())
    rng = np.random.default_rng(1)
    gray = np.repeat(rng.integers(0, 256, (200, 200, 1), dtype=np.uint8), 3, axis=2)
    assert f.score(Image.fromarray(gray)).score < 0.5
    patch = gray.copy()
    patch[:30, :30] = (220, 30, 30)  # ~2% red: still a colour image
    assert f.score(Image.fromarray(patch)).score > f.threshold


def test_decode_handles_modes_orientation_and_bombs() -> None:
    cfg = FormatConfig()
    # 16-bit grayscale PNG keeps its contrast
    arr16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    dec = decode(_png(Image.fromarray(arr16)), cfg)
    px = np.asarray(dec.image)
    assert dec.image.mode == "RGB" and px.min() == 0 and px.max() == 255
    # palette PNG with a transparent index composites onto white
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    assert np.asarray(decode(_png(pal), cfg).image)[0, 0].tolist() == [255, 255, 255]
    # CMYK JPEG becomes RGB
    assert decode(_jpeg(Image.new("CMYK", (20, 10), (0, 255, 255, 0))), cfg).image.mode == "RGB"
    # EXIF orientation 6 (rotate 90) swaps width and height
    exif = Image.Exif()
    exif[0x0112] = 6
    dec = decode(_jpeg(Image.new("RGB", (40, 20), "red"), exif=exif), cfg)
    assert (dec.width, dec.height) == (20, 40) and dec.image.size == (20, 40)
    # decompression bomb: a claimed size over the limit is refused before decoding
    with pytest.raises(FormatError, match="bomb"):
        decode(_png(Image.new("L", (200, 200))), FormatConfig(max_pixels=1000))
    # JPEG draft decoding never goes below what the caller needs
    dec = decode(_jpeg(Image.new("RGB", (2000, 1000), "blue")), cfg, need_short=256, need_long=640)
    assert (dec.width, dec.height) == (2000, 1000)
    assert min(dec.image.size) >= 256 and max(dec.image.size) >= 640 and dec.image.size[0] < 2000


def test_duplicate_keeper_prefers_clean_then_sharp_then_large() -> None:
    rng = np.random.default_rng(2)
    base = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).resize((256, 256))
    other = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).resize((256, 256))
    h = [phash_pair(base), phash_pair(base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), phash_pair(other)]
    assert distance_matrix([int(x[0], 16) for x in h], [int(x[1], 16) for x in h])[0, 1] == 0  # mirror match
    dup = DuplicateFilter(DuplicateConfig())
    d = dup.decide(h, [True] * 3, [10.0, 50.0, 1.0], [100, 100, 1])
    assert d.duplicate_of == [1, None, None]  # the much sharper copy is kept; the unrelated image untouched
    d = dup.decide(h, [True] * 3, [40.0, 50.0, 1.0], [400, 100, 1])
    assert d.duplicate_of == [None, 0, None]  # about as sharp: the larger copy wins
    d = dup.decide(h, [True, False, True], [10.0, 50.0, 1.0], [100, 100, 1])
    assert d.duplicate_of == [None, 0, None]  # a copy rejected by another filter is not the keeper
    no_mirror = DuplicateFilter(DuplicateConfig(mirror=False)).decide(h, [True] * 3, [1.0] * 3, [1] * 3)
    assert no_mirror.duplicate_of == [None, None, None]
    assert hamming(h[0], h[1]) == 0 and hamming(h[0], h[1], mirror=False) > 8


def test_text_helpers() -> None:
    assert polygon_area(np.array([[0, 0], [4, 0], [4, 2], [0, 2]], float)) == 8.0
    assert count_alnum("O") == 1 and count_alnum("®") == 0 and count_alnum("愚园路") == 3
    assert line_height(np.array([[0, 0], [40, 0], [40, 10], [0, 10]], float)) == 10.0


def test_plausible_reading_rejects_texture_readings() -> None:
    """The readings cats-raw's fur and faces produced fail; real labels of the same length pass."""
    cfg = TextConfig()
    assert not plausible_reading("87", 0.95, 0.48, cfg)  # a cat's face read as a number
    assert not plausible_reading("OO", 0.77, 0.06, cfg)  # a pair of eyes
    assert not plausible_reading("XE", 0.09, 0.05, cfg)  # low confidence (a wallpaper border)
    assert not plausible_reading("lll", 0.99, 0.05, cfg)  # one stroke repeated
    assert plausible_reading("AR", 0.99, 0.07, cfg)  # a short label at label size
    assert plausible_reading("LUNA", 0.99, 0.30, cfg)  # a long word may be large
    assert plausible_reading("愚园路", 1.0, 0.20, cfg)


#: cats-raw photos the v3 text filter flagged, checked by eye (the issue-13 dev set's "hard" kind).
CATS_TEXTURE = ("b/Cat102.jpg", "b/Cat185.jpg", "b/Cat537.jpg", "a/cat.147.jpg", "a/cat.82.jpg", "a/cat.835.jpg",
                "a/cat.968.jpg", "a/cat.509.jpg", "a/cat.337.jpg")
CATS_TEXT = ("a/cat.187.jpg", "a/cat.679.jpg", "a/cat.27.jpg", "a/cat.166.jpg", "b/Cat921.jpg")


def test_text_filter_ignores_fur_and_faces_but_reads_labels(shared_datasets: Path) -> None:
    """Issue 13: fur, cat faces and eyes read as two-letter words were rejected as text."""
    import zipfile

    path = shared_datasets / "cats-raw.zip"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    cfg = FiltersConfig()
    cfg.blur.enabled = cfg.face.enabled = cfg.grayscale.enabled = False
    scorer = Scorer(cfg, 256)
    th = cfg.text.threshold
    with zipfile.ZipFile(path) as zf:
        texture = {n: scorer.score_bytes(zf.read(n))["text"] for n in CATS_TEXTURE}
        text = {n: scorer.score_bytes(zf.read(n))["text"] for n in CATS_TEXT}
    assert not [n for n, v in texture.items() if fails(v, th, "above")], texture
    assert all(fails(v, th, "above") for v in text.values()), text


# ----------------------------------------------------------------------------- speed-ups must not change answers


def test_edge_ratio_quantile_matches_numpy() -> None:
    """The partition-based quantile and the four directions equal a plain numpy computation."""
    import cv2

    from gantl.data.filters.blur import DIRECTIONS, edge_ratios

    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (101, 77)).astype(np.uint8)
    got = edge_ratios(gray, 2.0, 0.9, 4.0, 20)
    g = gray.astype(np.float32)
    c0 = cv2.GaussianBlur(g, (0, 0), 2.0)
    for k, value in zip(DIRECTIONS, got, strict=True):
        c = np.abs(cv2.filter2D(c0, cv2.CV_32F, k))
        f = np.abs(cv2.filter2D(g, cv2.CV_32F, k))
        r = np.sort(f[c > 4.0] / c[c > 4.0])
        assert value == pytest.approx(r[int(0.9 * (len(r) - 1))], rel=1e-6)


def test_shared_views_give_the_same_scores_as_separate_copies() -> None:
    """Scoring through one shared Views equals scoring each filter on the plain image."""
    from gantl.data.filters import Views

    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((800, 600), Image.Resampling.BICUBIC)
    views = Views(img)
    for flt in (BlurFilter(BlurConfig()), GrayscaleFilter(GrayscaleConfig())):
        assert flt.score(views).score == flt.score(img).score
    assert phash_pair(views) == phash_pair(img)
    assert views.gray(640) is views.gray(640)  # made once
    assert views.rgb(5000) is img and views.gray(900) is views.gray()  # at or above full size: the image itself


def test_detector_input_matches_rapidocr_preprocessing() -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    from gantl.data.filters.text import detector_input

    rng = np.random.default_rng(5)
    for h, w in ((360, 480), (203, 17), (480, 480)):
        bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = DetPreProcess(960, "max", [0.5] * 3, [0.5] * 3)(bgr)  # ratio 1 below 960 px: rounding only
        ours = detector_input(bgr)
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def _toy_model(b_before_padded_conv: float):
    """A small PP-LCNet-like graph exercising every rewrite, built with onnx.helper."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(6)

    def const(name: str, value) -> object:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.float32),
                                                                                     name))

    nodes = [
        const("w1", rng.normal(size=(8, 3, 3, 3))), const("b1", rng.normal(size=8)),
        const("a1", [1.7]), const("s1", [0.3]), const("three", 3.0), const("zero", 0.0), const("six", 6.0),
        const("a2", [0.6]), const("s2", [b_before_padded_conv]), const("w2", rng.normal(size=(8, 8, 3, 3))),
        const("a3", [1.3]), const("s3", [-0.2]), const("w3", rng.normal(size=(4, 8, 1, 1))),
        const("b3", rng.normal(size=4)),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["a1", "c1"], ["m1"]), helper.make_node("Add", ["m1", "s1"], ["z"]),
        helper.make_node("Add", ["z", "three"], ["z3"]), helper.make_node("Clip", ["z3", "zero", "six"], ["cl"]),
        helper.make_node("Mul", ["z", "cl"], ["zc"]), helper.make_node("Div", ["zc", "six"], ["hs"]),
        helper.make_node("Mul", ["a2", "hs"], ["m2"]), helper.make_node("Add", ["m2", "s2"], ["y2"]),
        helper.make_node("Conv", ["y2", "w2"], ["c2"], pads=[1, 1, 1, 1], group=1),  # padded: folds only if b == 0
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Mul", ["r2", "a3"], ["m3"]), helper.make_node("Add", ["m3", "s3"], ["y3"]),
        helper.make_node("Conv", ["y3", "w3", "b3"], ["out"]),  # 1x1, no padding: always folds
    ]
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 24])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 20, 24])])
    return onnx, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)


@pytest.mark.parametrize("shift", [0.25, 0.0])
def test_graph_simplification_is_exact_on_a_toy_model(shift: float) -> None:
    ort = pytest.importorskip("onnxruntime")
    from gantl.data.filters.fast_onnx import simplify

    onnx, model = _toy_model(shift)
    original = model.SerializeToString()
    simple, counts = simplify(model)
    onnx.checker.check_model(simple)
    # Conv->Mul->Add folded; the 1x1 conv absorbs the affine before it; the padded 3x3 conv only when the
    # shift is 0, otherwise that affine becomes a 1x1 depthwise conv
    assert counts == {"affine_after_conv": 1, "affine_before_conv": 2 if shift == 0.0 else 1, "hardswish": 1,
                      "affine_to_depthwise": 0 if shift == 0.0 else 1}
    ops = [n.op_type for n in simple.graph.node]
    assert "HardSwish" in ops and "Clip" not in ops and "Div" not in ops
    assert ops.count("Mul") + ops.count("Add") == 0
    assert ops.count("Conv") == (3 if shift == 0.0 else 4)
    x = np.random.default_rng(7).normal(size=(1, 3, 20, 24)).astype(np.float32)
    run = [ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for m in (original, simple.SerializeToString())]
    # float32 rounding only: the differences stay within a few ulps of the output's scale
    np.testing.assert_allclose(run[1], run[0], rtol=1e-5, atol=2e-6 * float(np.abs(run[0]).max()))


def test_bundled_ocr_models_simplify_exactly_and_get_smaller() -> None:
    """The real PP-OCRv4 detector and recogniser: same outputs after simplification, fewer nodes."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("rapidocr_onnxruntime")
    import rapidocr_onnxruntime

    from gantl.data.filters.fast_onnx import cpu_session, simplify
    from gantl.data.filters.text import _model_paths

    det_path, rec_path = _model_paths(rapidocr_onnxruntime)
    rng = np.random.default_rng(8)
    for path, shape, opset in ((det_path, (1, 3, 96, 128), 14), (rec_path, (1, 3, 48, 320), 12)):
        before = len([n for n in onnx.load(str(path)).graph.node if n.op_type != "Constant"])
        simple, counts = simplify(onnx.load(str(path)))
        assert min(counts.values()) >= 10 and len(simple.graph.node) < 0.7 * before
        assert simple.opset_import[0].version == opset  # the recogniser's Squeeze keeps it at 12
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        fast, plain = cpu_session(path), cpu_session(path, optimize_graph=False)
        opts = fast.get_session_options()  # one thread: curation parallelises across processes, never inside one
        assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
        a, b = plain.run(None, {"x": x})[0], fast.run(None, {"x": x})[0]
        np.testing.assert_allclose(b, a, atol=2e-4)
        if path == rec_path:  # the decoded characters are the same
            assert (a.argmax(-1) == b.argmax(-1)).all()


def test_cached_face_detector_finds_the_same_faces(bench: Path, tmp_path: Path, monkeypatch) -> None:
    dlib = pytest.importorskip("dlib")
    from gantl.data.filters.face import frontal_face_detector

    monkeypatch.setenv("GANTL_CACHE_DIR", str(tmp_path))
    built = frontal_face_detector(dlib)  # builds and writes the cache
    assert (tmp_path / "curate" / f"dlib-{dlib.__version__}-frontal-face.svm").is_file()
    loaded = frontal_face_detector(dlib)  # reads it back
    gray = np.asarray(Image.open(bench / "photos" / "fr_two_people.jpg").convert("L"))
    a, b = built.run(gray, 0, 0.0), loaded.run(gray, 0, 0.0)
    assert len(a[0]) >= 2
    assert [str(r) for r in a[0]] == [str(r) for r in b[0]] and a[1] == b[1]
    (tmp_path / "curate" / f"dlib-{dlib.__version__}-frontal-face.svm").write_bytes(b"garbage")
    assert len(frontal_face_detector(dlib).run(gray, 0, 0.0)[0]) == len(a[0])  # a damaged cache is rebuilt


def test_fast_percentile_and_phash_match_their_references() -> None:
    import imagehash
    from PIL import ImageOps

    from gantl.data.filters.grayscale import percentile

    rng = np.random.default_rng(9)
    for n in (1, 2, 7, 1000):
        v = rng.random(n).astype(np.float32)
        for q in (0.0, 50.0, 99.0, 100.0):
            assert percentile(v, q) == pytest.approx(float(np.percentile(v, q)), rel=1e-6)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(8, 60, 2))
        size = tuple(int(v) for v in rng.integers(40, 700, 2))
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).resize(size)
        gray = working_copy(img, 128).convert("L")  # what imagehash sees
        assert phash_pair(img) == (str(imagehash.phash(gray)), str(imagehash.phash(ImageOps.mirror(gray))))
