"""ImageDataset over folders, zips and zip members: labels, filters, subsets, hashes, broken files."""

from __future__ import annotations

import io
import json
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gantl.data.dataset as dataset_module
from gantl.data.dataset import ImageDataset, load_all, load_labels, parse_source
from gantl.errors import DatasetError

CLASSES = ("cat", "dog", "horse")
PER_CLASS = 4


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _random_rgb(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def cifar_files(cifar10_zip: Path) -> dict[str, bytes]:
    """A few real CIFAR-10 test JPEGs: ``{"<class>/<name>.jpg": bytes}``."""
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(cifar10_zip) as zf:
        names = sorted(zf.namelist())
        for cls in CLASSES:
            members = [n for n in names if n.startswith(f"test/{cls}/") and n.endswith(".jpg")][:PER_CLASS]
            for m in members:
                out[f"{cls}/{m.rsplit('/', 1)[1]}"] = zf.read(m)
    assert len(out) == len(CLASSES) * PER_CLASS
    return out


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _write_zip(path: Path, files: dict[str, bytes], prefix: str = "", order=None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for rel in order or files:
            zf.writestr(f"{prefix}{rel}", files[rel])
    return path


def test_folder_of_pngs_round_trips_pixels_and_converts_modes(tmp_path: Path):
    rng = np.random.default_rng(0)
    rgb = _random_rgb(rng)
    grey = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    rgba = np.dstack([_random_rgb(rng), np.zeros((32, 32), np.uint8)])
    rgba[:16, :, 3] = 255  # top half opaque, bottom half fully transparent
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "a.png").write_bytes(_png(rgb))
    (tmp_path / "nested" / "b.png").write_bytes(_png(grey))
    (tmp_path / "nested" / "deeper" / "c.png").write_bytes(_png(rgba))
    (tmp_path / "notes.txt").write_text("not an image")

    ds = ImageDataset(tmp_path)
    assert ds.paths == ["a.png", "nested/b.png", "nested/deeper/c.png"]
    assert (len(ds), ds.resolution, ds.num_channels, ds.c_dim) == (3, 32, 3, 0)  # one top folder: no labels
    img, label = ds[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 32, 32) and label.shape == (0,)
    assert torch.equal(img, torch.from_numpy(rgb).permute(2, 0, 1))
    grey_img = ds[1][0]
    assert all(torch.equal(grey_img[c], torch.from_numpy(grey)) for c in range(3))
    rgba_img = ds[2][0]
    assert torch.equal(rgba_img[:, :16], torch.from_numpy(rgba[:16, :, :3]).permute(2, 0, 1))
    assert bool((rgba_img[:, 16:] == 255).all())  # transparent pixels composited on white
    assert load_all(ds, progress=False).shape == (3, 3, 32, 32)


def test_zip_with_class_subfolders_matches_folder(tmp_path: Path, cifar_files: dict[str, bytes]):
    folder = ImageDataset(_write_folder(tmp_path / "f", cifar_files))
    archive = ImageDataset(_write_zip(tmp_path / "d.zip", cifar_files))
    assert folder.class_names == archive.class_names == list(CLASSES)
    assert folder.label_origin == "subfolders" and folder.c_dim == 3
    assert folder.paths == archive.paths == sorted(cifar_files)
    assert folder.content_hash() == archive.content_hash()
    for i, rel in enumerate(folder.paths):
        img_f, lab_f = folder[i]
        img_z, lab_z = archive[i]
        assert torch.equal(img_f, img_z) and torch.equal(lab_f, lab_z)
        expected = np.array(Image.open(io.BytesIO(cifar_files[rel])).convert("RGB"))
        assert torch.equal(img_z, torch.from_numpy(expected).permute(2, 0, 1))
        assert lab_z.tolist() == [float(c == rel.split("/")[0]) for c in CLASSES]
    assert load_labels(archive).sum(0).tolist() == [PER_CLASS] * 3
    # no labels asked for: same images, c_dim 0
    assert ImageDataset(tmp_path / "d.zip", use_labels=False).c_dim == 0


def test_content_hash_tracks_bytes_and_names(tmp_path: Path, cifar_files: dict[str, bytes]):
    base = ImageDataset(_write_zip(tmp_path / "a.zip", cifar_files)).content_hash()
    changed = dict(cifar_files)
    first = sorted(changed)[0]
    img = np.asarray(Image.open(io.BytesIO(changed[first])).convert("RGB")).copy()
    img[0, 0, 0] ^= 1
    changed[first] = _png(img)
    assert ImageDataset(_write_zip(tmp_path / "b.zip", changed)).content_hash() != base
    renamed = {k.replace("cat/", "kitten/"): v for k, v in cifar_files.items()}
    assert ImageDataset(_write_zip(tmp_path / "c.zip", renamed)).content_hash() != base
    reordered = list(reversed(list(cifar_files)))
    assert ImageDataset(_write_zip(tmp_path / "d.zip", cifar_files, order=reordered)).content_hash() == base


def test_zip_member_prefix_with_dataset_json_labels(tmp_path: Path, cifar_files: dict[str, bytes]):
    flat = {f"img{i:03d}.jpg": data for i, data in enumerate(cifar_files.values())}
    classes = {f"img{i:03d}.jpg": i % 2 for i in range(len(flat))}
    files = dict(flat)
    files["dataset.json"] = json.dumps(
        {"labels": [[k, v] for k, v in classes.items()], "class_names": ["even", "odd"]}).encode()
    path = _write_zip(tmp_path / "x.zip", {f"part/{k}": v for k, v in files.items()})
    with zipfile.ZipFile(path, "a") as zf:  # outside the prefix: must be ignored
        zf.writestr("unrelated/zzz.jpg", next(iter(cifar_files.values())))

    ds = ImageDataset(f"{path}:part")
    assert ds.label_origin == "dataset.json" and ds.class_names == ["even", "odd"] and ds.c_dim == 2
    assert ds.paths == sorted(flat) and ds.name == "x-part"
    for i, rel in enumerate(ds.paths):
        assert int(ds[i][1].argmax()) == classes[rel]
    odd = ImageDataset(f"{path}:part", exclude_classes=["even"])
    assert odd.num_images == len(flat) // 2 and odd.c_dim == 0  # one class left: unconditional
    # a file without a label is an error that names it
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("part/zz_unlabelled.jpg", next(iter(cifar_files.values())))
    with pytest.raises(DatasetError, match="no label for 'zz_unlabelled.jpg'"):
        ImageDataset(f"{path}:part")


def test_include_exclude_classes_and_unknown_class(tmp_path: Path, cifar_files: dict[str, bytes]):
    path = _write_zip(tmp_path / "d.zip", {f"train/{k}": v for k, v in cifar_files.items()})
    no_horse = ImageDataset(f"{path}:train", exclude_classes=["horse"])
    assert no_horse.class_names == ["cat", "dog"] and no_horse.num_images == 2 * PER_CLASS
    assert not any(p.startswith("horse/") for p in no_horse.paths)
    assert load_labels(no_horse).sum(0).tolist() == [PER_CLASS, PER_CLASS]
    only = ImageDataset(f"{path}:train", include_classes=["dog", "horse"])
    assert only.class_names == ["dog", "horse"] and {p.split("/")[0] for p in only.paths} == {"dog", "horse"}
    with pytest.raises(DatasetError, match=r"unknown class 'zebra'.*known classes: cat, dog, horse"):
        ImageDataset(f"{path}:train", exclude_classes=["zebra"])
    horses = ImageDataset(f"{path}:train/horse")
    assert horses.num_images == PER_CLASS and horses.c_dim == 0
    with pytest.raises(DatasetError, match="no classes to include/exclude"):
        ImageDataset(f"{path}:train/horse", exclude_classes=["horse"])


def test_real_cifar_test_split_without_horse(cifar10_zip: Path):
    ds = ImageDataset(f"{cifar10_zip}:test", exclude_classes=["horse"], progress=False)
    assert ds.num_images == 9000 and ds.c_dim == 9 and "horse" not in ds.class_names
    assert ds.resolution == 32 and not ds.skipped
    assert load_labels(ds).sum(0).tolist() == [1000.0] * 9


@pytest.mark.slow
def test_real_cifar_train_split_without_horse(cifar10_zip: Path):
    ds = ImageDataset(f"{cifar10_zip}:train", exclude_classes=["horse"], progress=False)
    assert ds.num_images == 45000 and ds.c_dim == 9 and "horse" not in ds.class_names and not ds.skipped
    assert load_labels(ds).sum(0).tolist() == [5000.0] * 9
    assert not any(p.startswith("horse/") for p in ds.paths)


def test_subset_is_deterministic_whatever_the_file_order(tmp_path: Path):
    rng = np.random.default_rng(1)
    files = {f"{i:03d}.png": _png(_random_rgb(rng, 8)) for i in range(40)}
    names = list(files)
    a = _write_zip(tmp_path / "a.zip", files, order=names)
    b = _write_zip(tmp_path / "b.zip", files, order=list(rng.permutation(names)))
    picks = ImageDataset(a, subset=10, seed=3).paths
    assert len(picks) == 10 and picks == sorted(picks)
    assert ImageDataset(b, subset=10, seed=3).paths == picks
    assert ImageDataset(_write_folder(tmp_path / "f", files), subset=10, seed=3).paths == picks
    assert ImageDataset(a, subset=10, seed=4).paths != picks
    assert set(ImageDataset(a, subset=5, seed=3).paths) <= set(picks)  # nested: smaller subsets are prefixes
    with pytest.raises(DatasetError, match="subset=41 but .* only 40 images"):
        ImageDataset(a, subset=41)


def test_corrupt_files_are_reported_and_skipped(tmp_path: Path, shared_datasets: Path):
    corrupt = shared_datasets / "filterbench" / "corrupt"
    broken = ["bitrot.jpg", "garbage.jpg", "html.jpg", "trunc.jpg", "trunc.png", "trunc.webp"]
    rng = np.random.default_rng(2)
    for i in range(5):
        (tmp_path / f"good{i}.png").write_bytes(_png(_random_rgb(rng)))
    for name in [*broken, "gif.gif"]:
        shutil.copy(corrupt / name, tmp_path / name)
    with pytest.warns(UserWarning) as caught:
        ds = ImageDataset(tmp_path)
    messages = [str(w.message) for w in caught]
    assert any("skipped 6 image" in m for m in messages)
    assert any("ignored 1 image(s) in formats gantl does not train on (e.g. gif.gif)" in m for m in messages)
    assert len(ds) == 5 and ds.paths == [f"good{i}.png" for i in range(5)]
    assert sorted(Path(p).name for p, _ in ds.skipped) == broken
    assert all(reason for _, reason in ds.skipped)
    assert [ds[i][0].shape for i in range(5)] == [(3, 32, 32)] * 5


def test_header_mode_skips_files_that_break_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(3)
    images = [_random_rgb(rng) for _ in range(4)]
    for i, img in enumerate(images):
        (tmp_path / f"{i}.png").write_bytes(_png(img))
    (tmp_path / "1.png").write_bytes(_png(images[1])[:-200])  # header intact, pixel data cut off
    with pytest.warns(UserWarning, match="skipped 1 image"):
        assert ImageDataset(tmp_path).verify == "full"  # small datasets are fully decoded up front
    monkeypatch.setattr(dataset_module, "AUTO_FULL_FILES", 3)  # "auto" checks only headers above the limits
    ds = ImageDataset(tmp_path)
    assert ds.verify == "header" and len(ds) == 4 and not ds.skipped
    monkeypatch.setattr(dataset_module, "AUTO_FULL_FILES", 100)
    monkeypatch.setattr(dataset_module, "AUTO_FULL_BYTES", 1000)  # ... and above the byte budget
    assert ImageDataset(tmp_path).verify == "header"
    with pytest.warns(UserWarning, match=r"1\.png"):
        img, _ = ds[1]
    assert torch.equal(img, torch.from_numpy(images[2]).permute(2, 0, 1))  # deterministic replacement: next item
    assert len(ds.skipped) == 1 and ds.skipped[0][0].endswith("1.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not on every access
        assert torch.equal(ds[1][0], img)


def test_wrong_resolution_names_the_file(tmp_path: Path):
    rng = np.random.default_rng(4)
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(_random_rgb(rng, 32)))
    (tmp_path / "2b_big.png").write_bytes(_png(_random_rgb(rng, 64)))
    with pytest.raises(DatasetError, match=r"2b_big\.png is 64x64, but the dataset's images are 32x32.*data build"):
        ImageDataset(tmp_path)
    (tmp_path / "2b_big.png").unlink()
    with pytest.raises(DatasetError, match=r"0\.png is 32x32, but the dataset's images are 64x64 \(resolution=64"):
        ImageDataset(tmp_path, resolution=64)
    assert ImageDataset(tmp_path, resolution=32).resolution == 32
    Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(tmp_path / "3.png")
    with pytest.raises(DatasetError, match=r"3\.png is 48x32, not square"):
        ImageDataset(tmp_path)


def test_xflip_doubles_with_mirrored_second_half(tmp_path: Path, cifar_files: dict[str, bytes]):
    ds = ImageDataset(_write_zip(tmp_path / "d.zip", cifar_files), xflip=True)
    n = ds.num_images
    assert len(ds) == 2 * n
    for i in (0, n - 1):
        img, lab = ds[i]
        flipped, lab2 = ds[n + i]
        assert torch.equal(flipped, img.flip(-1)) and torch.equal(lab, lab2)
    assert not torch.equal(ds[0][0], ds[n][0])
    assert load_all(ds, progress=False).shape == (2 * n, 3, 32, 32) and load_labels(ds).shape == (2 * n, 3)


def test_zip_dataset_in_dataloader_workers(tmp_path: Path, cifar_files: dict[str, bytes]):
    ds = ImageDataset(_write_zip(tmp_path / "d.zip", cifar_files))
    ds[0]  # open the zip in the parent first: workers must not reuse its handle
    serial = torch.stack([ds[i][0] for i in range(len(ds))])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    parallel = torch.cat([batch[0] for batch in loader])
    assert torch.equal(parallel, serial)


def test_parse_source_and_missing_sources(tmp_path: Path):
    archive = _write_zip(tmp_path / "d.zip", {"a/b/x.png": _png(np.zeros((4, 4, 3), np.uint8))})
    src = parse_source(f"{archive}:a/b/")
    assert src.path == archive and src.prefix == "a/b" and src.is_zip
    assert parse_source(archive).prefix == "" and parse_source(tmp_path).path == tmp_path
    with pytest.raises(DatasetError, match="not found"):
        parse_source(tmp_path / "nope")
    with pytest.raises(DatasetError, match="nope.zip not found"):
        parse_source(f"{tmp_path}/nope.zip:train")
    with pytest.raises(DatasetError, match="nothing under 'zz' .*top-level folders: a"):
        ImageDataset(f"{archive}:zz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no files"):
        ImageDataset(tmp_path / "empty")


def test_explicit_null_labels_win_over_subfolders(tmp_path: Path, cifar_files: dict[str, bytes]):
    files = dict(cifar_files, **{"dataset.json": json.dumps({"labels": None}).encode()})
    ds = ImageDataset(_write_zip(tmp_path / "d.zip", files))
    assert ds.c_dim == 0 and ds.num_images == len(cifar_files) and ds.class_names == []
    with pytest.raises(DatasetError, match="no classes to include/exclude"):
        ImageDataset(tmp_path / "d.zip", exclude_classes=["cat"])


def test_kept_pixels_spare_a_second_decode_and_change_nothing(tmp_path: Path, shared_datasets: Path,
                                                               cifar_files: dict[str, bytes],
                                                               monkeypatch: pytest.MonkeyPatch):
    """Training keeps what the start-up check decoded: load_all then reads no file again, and its
    result, the kept list, the skipped list and the content hash equal those of a dataset without it."""
    root = _write_folder(tmp_path / "data", cifar_files)
    shutil.copy(shared_datasets / "filterbench" / "corrupt" / "trunc.png", root / "cat" / "trunc.png")
    rng = np.random.default_rng(5)
    (root / "dog" / "grey.png").write_bytes(_png(rng.integers(0, 256, (32, 32), dtype=np.uint8)))  # mode L
    with pytest.warns(UserWarning, match="skipped 1 image"):
        plain = ImageDataset(root, xflip=True)
    with pytest.warns(UserWarning, match="skipped 1 image"):
        kept = ImageDataset(root, xflip=True, keep_decoded_bytes=10**9)
    assert len(kept._decoded) == kept.num_images == 13
    assert kept.paths == plain.paths and kept.skipped == plain.skipped
    assert kept.content_hash() == plain.content_hash()

    reads: list[str] = []
    original = type(kept._reader).read
    monkeypatch.setattr(type(kept._reader), "read", lambda self, rel: reads.append(rel) or original(self, rel))
    images = load_all(kept, progress=False)
    assert reads == [] and kept._decoded == {}  # nothing decoded twice, nothing held afterwards
    assert torch.equal(images, load_all(plain, progress=False))
    assert len(reads) == 13  # (the plain dataset decodes every file again)
    assert torch.equal(kept[3][0], plain[3][0])  # later single reads decode from the file as before

    # a budget smaller than the set keeps nothing (no half-filled cache); a subset keeps only itself
    small = ImageDataset(root, keep_decoded_bytes=32 * 32 * 3 * 5)
    assert small._decoded == {}
    sub = ImageDataset(root, subset=4, keep_decoded_bytes=10**9)
    assert sorted(sub._decoded) == sub.paths and len(sub.paths) == 4
    import pickle

    assert pickle.loads(pickle.dumps(sub))._decoded == {}  # copies for other processes carry no pixels


def test_load_all_takes_any_dataset_shaped_object():
    """The batch stream also caches in-memory stand-ins (benchmarks, callers' own datasets), which
    have no kept pixels to release."""

    class InMemory:
        num_images, num_channels, resolution, xflip = 3, 3, 4, True

        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.full((3, 4, 4), i, dtype=torch.uint8), torch.zeros(0)

    images = load_all(InMemory(), progress=False)
    assert images.shape == (6, 3, 4, 4) and images[:3, 0, 0, 0].tolist() == [0, 1, 2]
