"""Square crop, Lanczos resize, and the dataset writers (folder or StyleGAN2-ADA zip).

The zip layout is what NVIDIA's ``dataset_tool.py`` writes and ``training/dataset.py`` reads:
PNG files plus a ``dataset.json`` whose ``labels`` is ``[[relative_path, class_index], ...]``
(or ``null`` without labels). We also store ``class_names`` there (ignored by NVIDIA's loader)
so class indices can be turned back into names. With labels, images go to ``<class>/`` folders;
without, they sit at the top level.
"""

from __future__ import annotations

import io
import json
import posixpath
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gantl.config import option
from gantl.errors import DatasetError


@dataclass
class PrepareConfig:
    crop: str = option("center", choices=("center", "subject"),
                       help="Square crop: the centre, or the window with the most edge detail (subject-aware).")
    labels: bool = option(False, help="Label images by their first sub-folder (written to dataset.json).")
    compress_level: int = option(6, min=0, max=9, help="PNG compression level of written images.")


def crop_box(image: Image.Image, mode: str = "center") -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) to keep: centred, or on the most detailed region.

    ``subject`` slides the square along the long side and picks the position holding the most
    gradient energy (sum of |dx| + |dy| on a small grayscale copy). Subjects are usually in focus
    and backgrounds smooth, so this follows the subject without a detector; on a uniform image it
    falls back to the centre.
    """
    w, h = image.size
    side = min(w, h)
    if w == h:
        return 0, 0, w, h
    center = ((w - side) // 2, (h - side) // 2)
    if mode == "center":
        return center[0], center[1], center[0] + side, center[1] + side
    scale = 128 / max(w, h)
    small = np.asarray(image.convert("L").resize((max(2, round(w * scale)), max(2, round(h * scale)))),
                       dtype=np.float32)
    energy = np.zeros_like(small)
    energy[:, 1:] += np.abs(np.diff(small, axis=1))
    energy[1:, :] += np.abs(np.diff(small, axis=0))
    profile = energy.sum(axis=0 if w > h else 1)
    win = max(1, min(len(profile), round(side * scale)))
    sums = np.convolve(profile, np.ones(win), mode="valid")
    if sums.max() <= 1.05 * sums.min():  # no clear subject: keep the centre
        return center[0], center[1], center[0] + side, center[1] + side
    offset = int(round(int(np.argmax(sums)) / scale))
    offset = min(max(0, offset), (w if w > h else h) - side)
    return (offset, 0, offset + side, side) if w > h else (0, offset, side, offset + side)


def square_resize(image: Image.Image, size: int, mode: str = "center") -> Image.Image:
    """Crop to a square and resize to ``size`` x ``size`` with Lanczos."""
    box = crop_box(image, mode)
    return image.resize((size, size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def encode_png(image: Image.Image, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


class DatasetWriter:
    """Writes PNGs and ``dataset.json`` to a folder or a ``.zip`` (chosen by the output's suffix).

    Files go to a temporary name first and are moved into place on ``close``, so an interrupted
    build never leaves a half-written dataset that looks complete.
    """

    def __init__(self, out: str | Path, *, overwrite: bool = True) -> None:
        self.out = Path(out)
        self.is_zip = self.out.suffix.lower() == ".zip"
        if self.out.exists() and not overwrite:
            raise DatasetError(f"'{self.out}' already exists; remove it or choose another --out")
        check_output(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.with_name(self.out.name + ".partial")
        if self.tmp.exists():
            shutil.rmtree(self.tmp) if self.tmp.is_dir() else self.tmp.unlink()
        self._zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED) if self.is_zip else None
        if not self.is_zip:
            self.tmp.mkdir(parents=True)
        self.labels: list[list] = []
        self.count = 0

    def add(self, name: str, png: bytes, label: int | None = None) -> None:
        """Store one image under the relative ``name``; a name that could escape ``--out`` is refused.

        Callers build names with :func:`output_name`, which already sanitises the class; checking
        here too means no future caller can write ``../x.png`` or ``/x.png`` into a folder or zip.
        """
        check_member_name(name)
        if self._zip is not None:
            self._zip.writestr(name, png)  # PNG is already deflated; storing avoids a second pass
        else:
            path = self.tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        if label is not None:
            self.labels.append([name, int(label)])
        self.count += 1

    def close(self, class_names: list[str] | None = None) -> Path:
        meta = {"labels": self.labels if class_names else None}
        if class_names:
            meta["class_names"] = class_names
        text = json.dumps(meta, indent=1)
        if self._zip is not None:
            self._zip.writestr("dataset.json", text)
            self._zip.close()
        else:
            (self.tmp / "dataset.json").write_text(text, encoding="utf-8")
        if self.out.exists():
            shutil.rmtree(self.out) if self.out.is_dir() else self.out.unlink()
        self.tmp.replace(self.out)
        return self.out


def check_output(out: Path) -> None:
    """Refuse an output we would have to delete but did not write (e.g. ``--out .`` or the source)."""
    if out.is_dir() and any(out.iterdir()) and not (out / "dataset.json").is_file():
        raise DatasetError(f"'{out}' is a non-empty folder that is not a gantl dataset; choose a new --out")
    if out.is_file() and out.suffix.lower() != ".zip":
        raise DatasetError(f"'{out}' is an existing file; --out must be a .zip or a folder")


def check_member_name(name: str) -> str:
    """Refuse a dataset member name that is absolute, climbs (``..``) or has empty/``.`` parts.

    Dataset zips are unpacked by other tools (NVIDIA's loader, ``unzip``); a member named
    ``../x.png`` or ``/x.png`` would write outside wherever they are unpacked (zip slip), and in a
    folder dataset it would write outside ``--out``. Returns the name unchanged when it is safe.
    """
    parts = name.split("/")
    if (not name or "\\" in name or "\0" in name or any(p in ("", ".", "..") for p in parts)
            or posixpath.isabs(name) or (len(parts[0]) == 2 and parts[0][1] == ":")):
        raise DatasetError(f"refusing to write dataset member {name!r}: names must be relative paths without "
                           "'..', '.' or empty parts; rename the source file or folder")
    return name


def safe_relpath(file: str) -> str:
    """A source item's path made safe to build output names from: relative, normalised, no ``..``.

    Zip members and other untrusted names can be ``../../evil.png``, ``/abs/path.png`` or
    ``good/../../../x.png``. We normalise as an extractor would (backslashes to ``/``, ``a/../b`` to
    ``b``), then drop whatever still points above the root (leading ``/``, ``..`` and drive letters
    such as ``C:``), so the result always lies inside the output: ``../../evil.png`` -> ``evil.png``,
    ``/abs/path.png`` -> ``abs/path.png``, ``good/../../../x.png`` -> ``x.png``.
    """
    norm = posixpath.normpath(file.replace("\\", "/").replace("\0", ""))
    parts = [p for p in norm.split("/") if p not in ("", ".", "..")]
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":  # a Windows drive, "C:"
        parts = parts[1:]
    return "/".join(parts)


def output_name(index: int, label_name: str | None) -> str:
    """``img00000012.png`` (or ``<class>/img00000012.png`` with labels), as dataset_tool names them."""
    name = f"img{index:08d}.png"
    if label_name is None:
        return name
    if label_name in ("", ".", "..") or "/" in label_name or "\\" in label_name:
        raise DatasetError(f"class name {label_name!r} cannot be a folder name; rename the source's sub-folder")
    return check_member_name(f"{label_name}/{name}")


def class_of(file: str) -> str | None:
    """The first folder of a relative path (its class), or None for a top-level file.

    The path is sanitised first (:func:`safe_relpath`), so a class is never ``""`` or ``".."``:
    ``/abs/x.png`` is class ``abs`` and ``../../x.png`` is a top-level file.
    """
    parts = safe_relpath(file).split("/")
    return parts[0] if len(parts) > 1 else None
