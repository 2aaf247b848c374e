"""The curation pipeline end to end: dataset zip/folder, labels, manifest, cache/resume, CLI, config."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from gantl.commands.data import app
from gantl.data.curate import CurateConfig, curate, read_manifest, write_manifest
from gantl.data.prepare import crop_box, square_resize
from gantl.errors import DatasetError


def _photo(seed: int, size: tuple[int, int] = (160, 120), gray: bool = False) -> Image.Image:
    """A 'photo' with sharp random structure (passes blur) and colour (passes grayscale).

    4 px blocks with hard edges: sharp at any size (blur judges the image at its own scale).
    """
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.NEAREST)
    return img.convert("L").convert("RGB") if gray else img


def _save(img: Image.Image, path: Path, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for i in range(3):
        _save(_photo(i), root / "cat" / f"c{i}.png")
        _save(_photo(10 + i), root / "dog" / f"d{i}.png")
    _save(_photo(0).transpose(Image.Transpose.FLIP_LEFT_RIGHT), root / "cat" / "c0_mirror.png")  # duplicate
    _save(_photo(20, gray=True), root / "dog" / "gray.png")  # grayscale
    _save(_photo(21).filter(ImageFilter.GaussianBlur(6)), root / "dog" / "soft.png")  # blur
    _save(_photo(22, size=(40, 30)), root / "dog" / "tiny.png")  # resolution
    _save(_photo(23, size=(40, 30), gray=True).filter(ImageFilter.GaussianBlur(6)), root / "dog" / "bad.png")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # format
    return root


def _cfg(**kw) -> CurateConfig:
    cfg = CurateConfig(size=64, workers=1)
    cfg.filters.text.enabled = False  # no text or faces in synthetic images; the detectors are tested elsewhere
    cfg.filters.face.enabled = False
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_build_zip_with_labels_manifest_and_every_reason(folder: Path, tmp_path: Path) -> None:
    cfg = _cfg()
    cfg.prepare.labels = True
    res = curate(str(folder), cfg, manifest=tmp_path / "m.csv", out=tmp_path / "out.zip", progress=False)
    rows = {r["file"]: r for r in res.rows}
    assert len(rows) == 12  # one row per input, the broken one included
    assert rows["dog/broken.jpg"]["reasons"] == "format" and rows["dog/broken.jpg"]["kept"] == 0
    assert rows["dog/gray.png"]["reasons"] == "grayscale"
    assert rows["dog/soft.png"]["reasons"] == "blur"
    # a small sharp image is too small, not blurry: blur never upscales (issue 13, blur.py)
    assert rows["dog/tiny.png"]["reasons"] == "resolution"
    assert rows["dog/bad.png"]["reasons"] == "resolution;blur;grayscale"  # all reasons, not only the first
    dup = [f for f in ("cat/c0.png", "cat/c0_mirror.png") if rows[f]["reasons"] == "duplicate"]
    assert len(dup) == 1 and rows[dup[0]]["duplicate_of"] in ("cat/c0.png", "cat/c0_mirror.png")
    kept = sorted(f for f, r in rows.items() if r["kept"])
    assert len(kept) == 6 and res.counts["kept"] == 6 and res.counts["total"] == 12
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        meta = json.loads(zf.read("dataset.json"))
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
        assert len(pngs) == 6
        for name in pngs:
            im = Image.open(io.BytesIO(zf.read(name)))
            assert im.size == (64, 64) and im.mode == "RGB"
    assert meta["class_names"] == ["cat", "dog"]
    labels = dict(meta["labels"])
    assert sorted(labels) == pngs
    for name, label in labels.items():
        assert name.startswith(meta["class_names"][label] + "/")
    # manifest on disk: header, one row per input, output names for kept rows
    with (tmp_path / "m.csv").open() as fh:
        disk = list(csv.DictReader(fh))
    assert len(disk) == 12
    assert {"file", "kept", "reasons", "resolution", "blur", "grayscale", "text", "face", "duplicate"} <= set(disk[0])
    assert {r["output"] for r in disk if r["kept"] == "1"} == set(pngs)


def test_dataset_loads_with_the_project_dataset_class(folder: Path, tmp_path: Path) -> None:
    from gantl.data import dataset  # a plain import: a broken module must fail here, not skip
    cfg = _cfg()
    cfg.prepare.labels = True
    curate(str(folder), cfg, manifest=tmp_path / "m.csv", out=tmp_path / "out.zip", progress=False)
    ds = dataset.ImageDataset(tmp_path / "out.zip")
    assert len(ds) == 6 and ds.resolution == 64 and ds.c_dim == 2
    img, label = ds[0]
    assert tuple(img.shape) == (3, 64, 64) and float(label.sum()) == 1.0


def test_rerun_reuses_scores_and_rethresholds_instantly(folder: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    first = curate(str(folder), _cfg(), manifest=manifest, progress=False)
    assert first.scored == 12
    cfg = _cfg()
    cfg.filters.blur.threshold = 0.0  # nothing is blurry any more
    cfg.filters.grayscale.enabled = False
    second = curate(str(folder), cfg, manifest=manifest, progress=False)
    assert second.scored == 0  # every row came from the manifest
    rows = {r["file"]: r for r in second.rows}
    assert rows["dog/soft.png"]["kept"] == 1 and rows["dog/gray.png"]["kept"] == 1
    assert rows["dog/bad.png"]["reasons"] == "resolution" and rows["dog/tiny.png"]["reasons"] == "resolution"
    # a changed file is scored again; a changed *scoring* setting re-scores everything
    _save(_photo(99), folder / "dog" / "soft.png")
    assert curate(str(folder), cfg, manifest=manifest, progress=False).scored == 1
    cfg.filters.blur.scale = 1.5
    assert curate(str(folder), cfg, manifest=manifest, progress=False).scored == 12


def test_interrupted_run_resumes_from_partial_manifest(folder: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    curate(str(folder), _cfg(), manifest=manifest, progress=False)
    rows = read_manifest(manifest)
    write_manifest(rows[:5], manifest)  # what a run killed after five images leaves behind
    again = curate(str(folder), _cfg(), manifest=manifest, progress=False)
    assert again.scored == 7
    assert len(read_manifest(manifest)) == 12


def test_parallel_workers_match_inline(folder: Path, tmp_path: Path) -> None:
    inline = curate(str(folder), _cfg(), manifest=tmp_path / "a.csv", progress=False)
    par = curate(str(folder), _cfg(workers=2), manifest=tmp_path / "b.csv", out=tmp_path / "o", progress=False)
    a = {r["file"]: (r["reasons"], r.get("blur")) for r in inline.rows}
    b = {r["file"]: (r["reasons"], r.get("blur")) for r in par.rows}
    assert a == b
    assert sorted(p.name for p in (tmp_path / "o").iterdir())[-1] == "img00000005.png"
    assert json.loads((tmp_path / "o" / "dataset.json").read_text())["labels"] is None


def test_automatic_workers_stay_inline_for_small_inputs(folder: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """workers = 0 spawns no process for a dozen files (start-up would cost more than it saves) ..."""
    import gantl.data.curate as curate_module

    spawned: list[int] = []

    class Counting:
        def __init__(self, real) -> None:
            self.real = real

        def Pool(self, n, **kw):  # noqa: N802 - mirrors multiprocessing's name
            spawned.append(n)
            return self.real.Pool(n, **kw)

    real_get_context = curate_module.mp.get_context
    monkeypatch.setattr(curate_module.mp, "get_context", lambda kind: Counting(real_get_context(kind)))
    auto = curate(str(folder), _cfg(workers=0), manifest=tmp_path / "a.csv", out=tmp_path / "o.zip", progress=False)
    assert spawned == [] and auto.counts["kept"] == 6
    # ... while an explicit number is used as given, and larger inputs get up to one worker per core
    curate(str(folder), _cfg(workers=2), manifest=tmp_path / "b.csv", progress=False)
    assert spawned == [2]
    monkeypatch.setattr(curate_module.os, "cpu_count", lambda: 4)
    count = curate_module.worker_count
    assert [count(0, n, "scoring") for n in (1, 12, 24, 25, 48, 49, 5000)] == [1, 1, 1, 2, 2, 3, 4]
    assert [count(0, n, "writing") for n in (12, 200, 201, 5000)] == [1, 1, 2, 4]
    assert count(3, 12, "scoring") == 3 and count(8, 2, "writing") == 2


def test_refuses_to_overwrite_a_foreign_folder(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a gantl dataset"):
        curate(str(folder), _cfg(), manifest=tmp_path / "m.csv", out=folder, progress=False)
    assert (folder / "cat" / "c0.png").is_file()


def test_everything_rejected_is_a_clear_error(folder: Path, tmp_path: Path) -> None:
    cfg = _cfg()
    cfg.filters.blur.threshold = 1e9
    with pytest.raises(DatasetError, match="every image was rejected"):
        curate(str(folder), cfg, manifest=tmp_path / "m.csv", out=tmp_path / "o.zip", progress=False)


def test_cli_flags_config_and_set_overrides(folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    toml = tmp_path / "curate.toml"
    toml.write_text("size = 48\nworkers = 1\n[filters.text]\nenabled = false\n[filters.face]\nenabled = false\n"
                    "[filters.grayscale]\nthreshold = 0.0\n")
    out = tmp_path / "ds.zip"
    res = runner.invoke(app, ["build", str(folder), "--out", str(out), "--config", str(toml), "--blur-threshold",
                              "0", "--set", "filters.duplicate.enabled=false", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ds-manifest.csv").is_file() and (tmp_path / "ds-report.html").is_file()
    rows = {r["file"]: r for r in read_manifest(tmp_path / "ds-manifest.csv")}
    assert rows["dog/soft.png"]["kept"] == 1 and rows["dog/gray.png"]["kept"] == 1
    assert rows["cat/c0_mirror.png"]["kept"] == 1 and "duplicate" not in rows["cat/c0.png"]
    with zipfile.ZipFile(out) as zf:
        assert Image.open(io.BytesIO(zf.read("img00000000.png"))).size == (48, 48)
    assert '"kept": 9' in res.output
    # inspect writes a manifest and no dataset; --no-* switches a filter off
    res = runner.invoke(app, ["inspect", str(folder), "--size", "64", "--manifest", str(tmp_path / "i.csv"),
                              "--workers", "1", "--no-text", "--no-face", "--no-blur", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = {r["file"]: r for r in read_manifest(tmp_path / "i.csv")}
    assert "blur" not in rows["dog/soft.png"] and rows["dog/soft.png"]["kept"] == 1
    # a bad key is a one-line config error
    res = runner.invoke(app, ["inspect", str(folder), "--manifest", str(tmp_path / "x.csv"), "--set",
                              "filters.blurr.threshold=3"])
    assert res.exit_code != 0 and "unknown config key 'filters.blurr'" in str(res.exception)


def test_crop_modes() -> None:
    img = Image.new("RGB", (300, 100), (128, 128, 128))
    assert crop_box(img, "center") == (100, 0, 200, 100)
    detail = np.asarray(img).copy()
    detail[:, 220:290] = np.random.default_rng(0).integers(0, 256, (100, 70, 3))
    busy = Image.fromarray(detail)
    left, _, right, _ = crop_box(busy, "subject")
    assert right - left == 100 and left >= 185  # the window moved onto the detailed region
    assert crop_box(img, "subject") == (100, 0, 200, 100)  # nothing to follow: centre
    tall = square_resize(Image.new("RGB", (50, 200), "red"), 32)
    assert tall.size == (32, 32)


def test_all_rejected_still_writes_report_and_full_manifest(folder: Path, tmp_path: Path) -> None:
    """Issue 14: the error said "see the report" but none was written, and the manifest kept the
    scoring pass's provisional rows (kept 0, empty reasons)."""
    cfg = _cfg()
    cfg.filters.blur.threshold = 1e9  # nothing is sharp enough
    with pytest.raises(DatasetError) as err:
        curate(str(folder), cfg, manifest=tmp_path / "m.csv", out=tmp_path / "out.zip",
               report=tmp_path / "r.html", progress=False)
    assert "every image was rejected" in str(err.value) and str(tmp_path / "r.html") in str(err.value)
    assert (tmp_path / "r.html").stat().st_size > 1000 and not (tmp_path / "out.zip").exists()
    rows = read_manifest(tmp_path / "m.csv")
    assert len(rows) == 12 and all(r["kept"] == 0 and r["reasons"] for r in rows)
