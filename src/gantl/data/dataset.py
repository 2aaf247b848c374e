"""A torch ``Dataset`` over a folder, a zip, or a folder inside a zip (``cifar10.zip:train/horse``).

Why it looks like this:

* **Same items everywhere.** Files are sorted by their path relative to the source root, and a
  ``subset`` is chosen by ranking each path with a seeded hash, so the same seed picks the same
  images whatever order the disk or zip lists them in (and adding unrelated files later does not
  reshuffle the choice).
* **Broken files never crash, never vanish.** Selected files are opened and fully decoded once at
  construction (``verify="full"``) so a truncated JPEG is reported up front: it is counted, listed
  in one warning and exposed in ``ds.skipped``. With ``verify="header"`` only headers are read at
  construction, and a file that fails later in ``__getitem__`` is still reported and replaced by the
  next valid item (deterministically), never raised into the training loop. The default,
  ``verify="auto"``, decodes everything up to 60,000 files and 512 MiB (every curated training set,
  all of CIFAR-10) and checks headers only beyond that, keeping the scan to seconds.
* **Caches key on content, not names.** ``content_hash()`` is a sha256 over the sorted
  (relative path, file sha256) pairs of the selected files.
* **Zip handles survive DataLoader workers.** The zip is opened lazily per process, so forked or
  spawned workers never share one file offset.

Labels come from a StyleGAN2-ADA ``dataset.json`` at the source root (``{"labels": [["rel/path.png",
int], ...]}``, optionally ``"class_names": [...]``) or, failing that, from class subfolders (the first
path component below the root) when there are at least two of them and every image sits in one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gantl.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"})
_OTHER_IMAGE_EXTENSIONS = frozenset({".gif", ".heic", ".heif", ".avif", ".jfif", ".svg", ".ico", ".jp2"})
VERIFY_MODES = ("auto", "full", "header")
# verify="auto" decodes every image while the selection is at most this many files and bytes (CIFAR-10's
# 50k train images: ~17 CPU-s on one core), and checks headers only beyond (e.g. 70k FFHQ PNGs).
AUTO_FULL_FILES = 60_000
AUTO_FULL_BYTES = 512 * 2**20
_SHOW_PROGRESS_ABOVE = 2000  # files; smaller scans finish before a bar would help
_MAX_LISTED = 20  # skipped files named in the one warning


# --------------------------------------------------------------------------------------------- source


@dataclass(frozen=True)
class DataSource:
    """Where images live: a folder, a zip file, or a member prefix inside a zip."""

    path: Path
    prefix: str = ""  # inside a zip, without leading/trailing slashes; "" = whole archive
    is_zip: bool = False  # decided once by parse_source (no stat per image read)

    def display(self, rel: str = "") -> str:
        """A path a user can find: ``/a/b/x.png`` or ``data.zip:train/x.png``."""
        if self.is_zip:
            inner = "/".join(p for p in (self.prefix, rel) if p)
            return f"{self.path}:{inner}" if inner else str(self.path)
        return str(self.path / rel) if rel else str(self.path)

    @property
    def name(self) -> str:
        """A short name for run directories: ``cifar10-train-horse``."""
        stem = self.path.stem if self.is_zip else self.path.name
        parts = [stem, *[p for p in self.prefix.split("/") if p]]
        return "-".join(parts)


def parse_source(source: str | os.PathLike[str]) -> DataSource:
    """Split ``"a.zip:train/horse"`` into the zip path and member prefix; check it exists.

    A path that exists as given wins (so odd folder names with colons still work); otherwise the
    text is split at the last ``.zip:``.
    """
    text = os.fspath(source)
    direct = Path(text).expanduser()
    if direct.is_dir():
        return DataSource(direct)
    if direct.is_file():
        if not zipfile.is_zipfile(direct):
            raise DatasetError(f"{direct} is neither a folder nor a zip file; give a folder of images or a .zip")
        return DataSource(direct, is_zip=True)
    cut = text.lower().rfind(".zip:")
    if cut >= 0:
        archive = Path(text[: cut + 4]).expanduser()
        prefix = text[cut + 5 :].replace("\\", "/").strip("/")
        if not archive.is_file():
            raise DatasetError(f"dataset zip {archive} not found; check the path")
        if not zipfile.is_zipfile(archive):
            raise DatasetError(f"{archive} is not a readable zip file; rebuild it with `gantl data build`")
        return DataSource(archive, prefix, is_zip=True)
    raise DatasetError(
        f"dataset source '{text}' not found; give a folder, a .zip, or a member path like data.zip:train/horse"
    )


class _Reader:
    """Lists and reads files of a :class:`DataSource`; zip handles are opened lazily per process."""

    def __init__(self, source: DataSource) -> None:
        self.source = source
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"], state["_zip_pid"] = None, -1
        return state

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            # After a fork the parent's handle shares a file offset with ours: never reuse it.
            self._zip = zipfile.ZipFile(self.source.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _member(self, rel: str) -> str:
        return f"{self.source.prefix}/{rel}" if self.source.prefix else rel

    def list(self) -> list[str]:
        """All file paths relative to the source root, with forward slashes, hidden files dropped."""
        if self.source.is_zip:
            lead = f"{self.source.prefix}/" if self.source.prefix else ""
            rels = [
                name[len(lead) :]
                for name in self._archive().namelist()
                if name.startswith(lead) and not name.endswith("/")
            ]
        else:
            rels = []
            root = self.source.path
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not _hidden(d)]
                base = Path(dirpath).relative_to(root).as_posix()
                rels.extend(f if base == "." else f"{base}/{f}" for f in filenames)
        return sorted(r for r in rels if not any(_hidden(part) for part in r.split("/")))

    def total_size(self, rels: Sequence[str]) -> int:
        """Sum of the files' (uncompressed) sizes, from the zip directory or ``stat``, without reading them."""
        if self.source.is_zip:
            archive = self._archive()
            return sum(archive.getinfo(self._member(r)).file_size for r in rels)
        return sum((self.source.path / r).stat().st_size for r in rels)

    def read(self, rel: str) -> bytes:
        if self.source.is_zip:
            return self._archive().read(self._member(rel))
        return (self.source.path / rel).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _is_image(rel: str) -> bool:
    return os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS


# --------------------------------------------------------------------------------------------- decode


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode image bytes into a uint8 HWC RGB array (3 channels always).

    Grey images are replicated, transparent ones are composited on white (what a viewer shows),
    16-bit ones are scaled to 8 bits. Raises whatever Pillow raises on broken data.
    """
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im).astype(np.int64)
            scale = 257 if arr.max(initial=0) > 255 else 1
            grey = np.clip(arr // scale, 0, 255).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        if im.mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im, dtype=np.uint8)


def _header_size(data: bytes, full: bool) -> tuple[int, int]:
    """(width, height) of an image; with ``full`` the whole file is decoded to prove it is intact."""
    with Image.open(io.BytesIO(data)) as im:
        if full:
            im.load()
        return im.size


def _subset_rank(seed: int, rel: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{rel}".encode()).digest()


# --------------------------------------------------------------------------------------------- labels


@dataclass
class _Labels:
    """Per-file labels before filtering: class indices (categorical) or raw vectors."""

    class_names: list[str] | None  # categorical labels when not None
    by_file: dict[str, int] | None = None
    vectors: dict[str, list[float]] | None = None
    origin: str = ""


def _read_dataset_json(reader: _Reader, rels: Sequence[str]) -> _Labels | None:
    if "dataset.json" not in rels:
        return None
    where = reader.source.display("dataset.json")
    try:
        meta = json.loads(reader.read("dataset.json"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where} is not valid JSON ({exc}); fix or delete it") from None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if labels is None:  # an explicit "labels": null means unlabelled, even if there are subfolders
        return _Labels(class_names=None, origin="dataset.json")
    if not isinstance(labels, list) or not all(isinstance(x, list) and len(x) == 2 for x in labels):
        raise DatasetError(f"{where}: 'labels' must be a list of [\"path\", label] pairs (StyleGAN2-ADA format)")
    pairs = {str(path).replace("\\", "/"): value for path, value in labels}
    values = list(pairs.values())
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if any(v < 0 for v in values):
            raise DatasetError(f"{where}: class labels must be integers >= 0")
        names = meta.get("class_names")
        count = max(values, default=-1) + 1
        if names is not None:
            if not isinstance(names, list) or len(names) < count:
                raise DatasetError(f"{where}: 'class_names' must list at least {count} names, one per label index")
            names = [str(n) for n in names]
        else:
            names = [str(i) for i in range(count)]
        return _Labels(class_names=names, by_file=pairs, origin="dataset.json")
    if all(isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            raise DatasetError(f"{where}: label vectors have different lengths {sorted(lengths)}")
        return _Labels(class_names=None, vectors={k: [float(x) for x in v] for k, v in pairs.items()},
                       origin="dataset.json")
    raise DatasetError(f"{where}: labels must all be integers (classes) or all be lists of numbers")


def _folder_labels(rels: Sequence[str]) -> _Labels | None:
    if not rels or any("/" not in r for r in rels):
        return None
    names = sorted({r.split("/", 1)[0] for r in rels})
    if len(names) < 2:
        return None
    index = {n: i for i, n in enumerate(names)}
    return _Labels(class_names=names, by_file={r: index[r.split("/", 1)[0]] for r in rels}, origin="subfolders")


# --------------------------------------------------------------------------------------------- dataset


class ImageDataset(torch.utils.data.Dataset):
    """Images as uint8 CHW RGB tensors with float32 one-hot labels.

    ``ds[i] -> (image uint8 [3, H, W], label float32 [c_dim])``; with ``xflip`` the second half of
    the indices are the mirrored images. See the module docstring for the rules.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        resolution: int | None = None,
        use_labels: bool = True,
        include_classes: Iterable[str] | None = None,
        exclude_classes: Iterable[str] | None = None,
        xflip: bool = False,
        subset: int | None = None,
        seed: int = 0,
        verify: str = "auto",
        progress: bool = True,
        keep_decoded_bytes: int = 0,
    ) -> None:
        if verify not in VERIFY_MODES:
            raise DatasetError(f"verify must be one of {', '.join(VERIFY_MODES)}, not '{verify}'")
        if subset is not None and subset < 1:
            raise DatasetError(f"subset must be a positive number of images, not {subset}")
        if resolution is not None and resolution < 1:
            raise DatasetError(f"resolution must be a positive number of pixels, not {resolution}")
        self.source = parse_source(source)
        self.xflip = bool(xflip)
        self.seed = int(seed)
        self._reader = _Reader(self.source)
        self.skipped: list[tuple[str, str]] = []
        self._bad: set[int] = set()
        # Pixels the full check decoded anyway, kept (up to keep_decoded_bytes) so that training's
        # in-memory cache does not decode every file a second time; each is handed out once.
        self._decoded: dict[str, np.ndarray] = {}
        self._keep_decoded_bytes = int(keep_decoded_bytes)

        all_rels = self._reader.list()
        rels = [r for r in all_rels if _is_image(r)]
        others = [r for r in all_rels if not _is_image(r) and r != "dataset.json"]
        unsupported = [r for r in others if os.path.splitext(r)[1].lower() in _OTHER_IMAGE_EXTENSIONS]
        if unsupported:
            message = (f"{self.source.display()}: ignored {len(unsupported)} image(s) in formats gantl does not "
                       f"train on (e.g. {unsupported[0]}); convert them with `gantl data build`")
            log.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        if len(others) > len(unsupported):
            log.info("%s: ignored %d non-image files", self.source.display(), len(others) - len(unsupported))
        if not rels:
            raise DatasetError(self._empty_message(all_rels))

        labels = _read_dataset_json(self._reader, all_rels) or _folder_labels(rels)
        rels, label_rows, self.class_names, self.label_origin = self._apply_labels(
            rels, labels, use_labels, include_classes, exclude_classes
        )

        if verify == "auto":
            share = 1.0 if subset is None else subset / len(rels)
            nbytes = self._reader.total_size(rels) * share
            verify = "full" if len(rels) * share <= AUTO_FULL_FILES and nbytes <= AUTO_FULL_BYTES else "header"
        self.verify = verify  # what was done: "full" or "header"
        self.paths, self._labels, sizes, digests = self._scan(rels, label_rows, subset, verify == "full", progress)
        if self.skipped:
            self._warn_skipped(self.skipped)
        self.resolution = self._check_resolution(self.paths, sizes, resolution)
        self.num_channels = 3
        self.c_dim = int(self._labels.shape[1])
        self._content_hash = _combine_digests(self.paths, digests)

    # ---- construction helpers

    def _empty_message(self, all_rels: Sequence[str]) -> str:
        where = self.source.display()
        if all_rels:
            return (f"no images in {where} (found {len(all_rels)} other files); supported: "
                    f"{', '.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}")
        if self.source.is_zip and self.source.prefix:
            with zipfile.ZipFile(self.source.path) as zf:
                tops = sorted({n.split("/", 1)[0] for n in zf.namelist() if "/" in n})
            return f"nothing under '{self.source.prefix}' in {self.source.path}; top-level folders: {', '.join(tops)}"
        return f"no files in {where}; point gantl at a folder or zip of images"

    def _apply_labels(
        self,
        rels: list[str],
        labels: _Labels | None,
        use_labels: bool,
        include: Iterable[str] | None,
        exclude: Iterable[str] | None,
    ) -> tuple[list[str], dict[str, np.ndarray], list[str], str]:
        include = None if include is None else [str(c) for c in include]
        exclude = None if exclude is None else [str(c) for c in exclude]
        where = self.source.display()
        if labels is not None and labels.by_file is not None:
            missing = [r for r in rels if r not in labels.by_file]
            if missing:
                raise DatasetError(f"{where}: dataset.json has no label for '{missing[0]}' "
                                   f"({len(missing)} files unlabelled); add labels or remove the files")
        filtering = include is not None or exclude is not None
        if filtering:
            if labels is None or labels.class_names is None:
                raise DatasetError(f"{where} has no classes to include/exclude (need class subfolders or "
                                   f"integer labels in dataset.json); drop the class filter")
            known = labels.class_names
            for name in [*(include or []), *(exclude or [])]:
                if name not in known:
                    raise DatasetError(f"unknown class '{name}' in {where}; known classes: {', '.join(known)}")
            kept = [c for c in known if (include is None or c in include) and (exclude is None or c not in exclude)]
            if not kept:
                raise DatasetError(f"the class filter leaves no classes in {where}; known classes: {', '.join(known)}")
            keep_idx = {known.index(c) for c in kept}
            assert labels.by_file is not None
            rels = [r for r in rels if labels.by_file[r] in keep_idx]
            if not rels:
                raise DatasetError(f"no images of classes {', '.join(kept)} in {where}")
        else:
            kept = list(labels.class_names) if labels is not None and labels.class_names is not None else []

        rows: dict[str, np.ndarray] = {}
        if not use_labels or labels is None:
            return rels, rows, kept, ""
        if labels.vectors is not None:
            for r in rels:
                if r not in labels.vectors:
                    raise DatasetError(f"{where}: dataset.json has no label for '{r}'; add it or remove the file")
                rows[r] = np.asarray(labels.vectors[r], dtype=np.float32)
            return rels, rows, [], labels.origin
        if len(kept) < 2:  # one class carries no information; train unconditionally
            return rels, rows, kept, ""
        assert labels.class_names is not None and labels.by_file is not None
        remap = {labels.class_names.index(c): i for i, c in enumerate(kept)}
        eye = np.eye(len(kept), dtype=np.float32)
        for r in rels:
            rows[r] = eye[remap[labels.by_file[r]]]
        return rels, rows, kept, labels.origin

    def _scan(
        self,
        rels: list[str],
        label_rows: dict[str, np.ndarray],
        subset: int | None,
        full: bool,
        progress: bool,
    ) -> tuple[list[str], np.ndarray, list[tuple[int, int]], list[bytes]]:
        """Read (and decode) candidates once; collect sizes, digests and failures."""
        if subset is not None:
            if subset > len(rels):
                raise DatasetError(f"subset={subset} but {self.source.display()} has only {len(rels)} images "
                                   f"(after class filters); lower subset or omit it")
            order = sorted(rels, key=lambda r: _subset_rank(self.seed, r))
            want = subset
        else:
            order, want = rels, len(rels)

        kept: list[tuple[str, tuple[int, int], bytes]] = []
        show = progress and len(order) > _SHOW_PROGRESS_ABOVE
        from gantl.progress import track

        keep_budget = self._keep_decoded_bytes
        keeping = full and keep_budget > 0
        for rel in track(order, f"checking {len(order)} images", enabled=show):
            if len(kept) >= want:
                break
            try:
                data = self._reader.read(rel)
                pixels = self._decode_to_keep(data) if keeping else None
                if pixels is None:
                    size = _header_size(data, full)
                else:
                    size = (pixels.shape[1], pixels.shape[0])
                    keep_budget -= pixels.nbytes
                    if keep_budget >= 0:
                        self._decoded[rel] = pixels
                    else:  # too many to hold: keep none, training streams from the files
                        self._decoded.clear()
                        keeping = False
            except Exception as exc:  # noqa: BLE001 - any decoder failure means "broken file"
                self.skipped.append((self.source.display(rel), _reason(exc)))
                continue
            kept.append((rel, size, hashlib.sha256(data).digest()))
        for rel in set(self._decoded) - {k[0] for k in kept}:  # decoded past the subset's end
            del self._decoded[rel]
        if subset is not None and len(kept) < subset:
            raise DatasetError(f"subset={subset} but only {len(kept)} of the images in {self.source.display()} "
                               f"decode; lower subset or replace the broken files")
        if not kept:
            raise DatasetError(f"none of the {len(order)} images in {self.source.display()} could be decoded "
                               f"(first: {self.skipped[0][0]}: {self.skipped[0][1]})")
        kept.sort(key=lambda item: item[0])
        paths = [k[0] for k in kept]
        c_dim = len(next(iter(label_rows.values()))) if label_rows else 0
        labels = np.zeros((len(paths), c_dim), dtype=np.float32)
        if c_dim:
            for i, rel in enumerate(paths):
                labels[i] = label_rows[rel]
        return paths, labels, [k[1] for k in kept], [k[2] for k in kept]

    @staticmethod
    def _decode_to_keep(data: bytes) -> np.ndarray | None:
        """The training pixels of ``data``, or None where only the plain check can decide (a file
        Pillow loads but ``decode_rgb`` cannot convert is judged, as always, when it is used)."""
        try:
            return decode_rgb(data)
        except Exception:  # noqa: BLE001 - the caller's _header_size check reports real breakage
            return None

    def _check_resolution(self, paths: list[str], sizes: list[tuple[int, int]], resolution: int | None) -> int:
        """Every image must be square and the same size (``resolution`` if given, else the first one's)."""
        if resolution is not None:
            want, basis = resolution, f"resolution={resolution} was asked for"
        else:
            want, basis = sizes[0][0], f"like the first image {paths[0]}"
        for rel, (w, h) in zip(paths, sizes, strict=True):
            if w == h == want:
                continue
            if w != h and resolution is None:
                problem = "not square"
                side = resolution or 2 ** int(np.log2(min(w, h)))
            else:
                problem = f"but the dataset's images are {want}x{want} ({basis})"
                side = want
            raise DatasetError(
                f"{self.source.display(rel)} is {w}x{h}, {problem}; run `gantl data build "
                f"{self.source.display()} --size {side} --out data{side}.zip` to crop and resize"
            )
        return int(want)

    def _warn_skipped(self, skipped: Sequence[tuple[str, str]]) -> None:
        listed = "; ".join(f"{p} ({r})" for p, r in skipped[:_MAX_LISTED])
        more = f"; and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
        message = f"skipped {len(skipped)} image(s) that failed to decode in {self.source.display()}: {listed}{more}"
        log.warning(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    # ---- public API

    @property
    def name(self) -> str:
        """Short dataset name for run directories (``cifar10-train-horse``)."""
        return self.source.name

    @property
    def num_images(self) -> int:
        """Distinct image files (``len(ds)`` counts mirrored copies too)."""
        return len(self.paths)

    @property
    def labels(self) -> np.ndarray:
        """Float32 [num_images, c_dim] label matrix in path order (no x-flip duplication)."""
        return self._labels

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_decoded"] = {}  # a copy for another process decodes from the files
        return state

    def content_hash(self) -> str:
        """sha256 hex over the sorted (relative path, file sha256) pairs of the selected files."""
        return self._content_hash

    def __len__(self) -> int:
        return len(self.paths) * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.paths)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        flip = index >= n
        base = index - n if flip else index
        image, base = self._load_valid(base)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if flip:
            tensor = tensor.flip(-1)
        return tensor, torch.from_numpy(self._labels[base].copy())

    def load_image(self, i: int) -> np.ndarray:
        """Decode file ``paths[i]`` into uint8 HWC RGB; raises on failure (no fallback)."""
        image = self._decoded.pop(self.paths[i], None)
        if image is None:
            image = decode_rgb(self._reader.read(self.paths[i]))
        if image.shape[:2] != (self.resolution, self.resolution):
            raise OSError(f"decoded size {image.shape[1]}x{image.shape[0]} differs from {self.resolution}")
        return image

    def _load_valid(self, base: int) -> tuple[np.ndarray, int]:
        """The image at ``base`` or, if it fails to decode, the next valid one (reported once)."""
        n = len(self.paths)
        for step in range(n):
            i = (base + step) % n
            if i in self._bad:
                continue
            try:
                return self.load_image(i), i
            except Exception as exc:  # noqa: BLE001 - a broken file must not stop training
                self._bad.add(i)
                entry = (self.source.display(self.paths[i]), _reason(exc))
                self.skipped.append(entry)
                self._warn_skipped([entry])
        raise DatasetError(f"no image in {self.source.display()} can be decoded any more; check the files")

    def summary(self) -> dict:
        """What the dataset holds, for `gantl data inspect`, logs and run metadata."""
        return {
            "source": self.source.display(),
            "name": self.name,
            "images": self.num_images,
            "items": len(self),
            "resolution": self.resolution,
            "channels": self.num_channels,
            "c_dim": self.c_dim,
            "class_names": list(self.class_names),
            "labels_from": self.label_origin or None,
            "xflip": self.xflip,
            "verify": self.verify,
            "skipped": len(self.skipped),
            "content_hash": self.content_hash(),
        }

    def close(self) -> None:
        self._reader.close()

    def __repr__(self) -> str:
        return (f"ImageDataset({self.source.display()!r}, images={self.num_images}, resolution={self.resolution}, "
                f"c_dim={self.c_dim}, xflip={self.xflip}, skipped={len(self.skipped)})")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _combine_digests(paths: Sequence[str], digests: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for rel, digest in sorted(zip(paths, digests, strict=True)):
        h.update(rel.encode("utf-8"))
        h.update(b"\0")
        h.update(digest)
    return h.hexdigest()


def load_all(ds: ImageDataset, *, progress: bool = True) -> torch.Tensor:
    """Every item of ``ds`` (x-flipped copies included) stacked into one uint8 [N, 3, H, W] tensor.

    Each file is decoded once; its mirrored copy is made by flipping, not by decoding again.
    """
    from gantl.progress import track

    n = ds.num_images
    out = torch.empty((len(ds), ds.num_channels, ds.resolution, ds.resolution), dtype=torch.uint8)
    for i in track(range(n), "loading images", enabled=progress and n > _SHOW_PROGRESS_ABOVE):
        out[i] = ds[i][0]
    if ds.xflip:
        out[n:] = out[:n].flip(-1)
    kept = getattr(ds, "_decoded", None)  # duck-typed datasets (in-memory stand-ins) hold none
    if kept:
        kept.clear()  # anything left belonged to files that failed later checks
    return out


def load_labels(ds: ImageDataset) -> torch.Tensor:
    """Every item's label (x-flipped copies included) as float32 [N, c_dim]."""
    labels = torch.from_numpy(ds.labels.copy())
    return torch.cat([labels, labels]) if ds.xflip else labels
