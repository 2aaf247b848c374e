"""Reference features shipped with gantl, so standard evaluations need no hour-long first pass.

Why: on a 2-core CPU the Inception pass runs at ~5 img/s, so the 5,000 CIFAR-10 training horses
the demo measures against cost ~17 minutes before any GAN is trained. Like clean-fid's and
NVIDIA's precomputed statistics, gantl ships those features once, computed by gantl's own
pipeline. Unlike a table keyed by a dataset's *name*, an entry here is found under the same
content-derived key as the user's cache (:func:`gantl.metrics.stats_cache.cache_key`: sha256 of
the image bytes, network weights, resize mode, count, selection), so it is used only for
byte-identical images; any other copy of "CIFAR-10" simply misses and is computed.

Storage: features are quantised per dimension to uint16 between that dimension's minimum and
maximum (``x = offset + q * scale``), which bounds the error by ``scale / 2`` (< 1e-4 for Inception
pool3 features, the same tolerance the ONNX backend is held to) at half the size of float32.
Each file carries a JSON description of what it holds and how it was made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

BUNDLED_DIR = Path(__file__).resolve().parent / "refstats"
_Q_MAX = 65535


def entry_path(key: str, root: Path | None = None) -> Path:
    return (root or BUNDLED_DIR) / f"{key[:32]}.npz"


def quantize(values: np.ndarray) -> dict[str, np.ndarray]:
    """uint16 codes plus per-column offset and scale; max error ``scale / 2`` per column."""
    values = np.asarray(values, dtype=np.float64)
    lo = values.min(axis=0)
    span = values.max(axis=0) - lo
    scale = np.where(span > 0, span / _Q_MAX, 1.0)
    codes = np.clip(np.rint((values - lo) / scale), 0, _Q_MAX).astype(np.uint16)
    return {"codes": codes, "offset": lo.astype(np.float64), "scale": scale.astype(np.float64)}


def dequantize(codes: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (offset + codes.astype(np.float64) * scale).astype(np.float32)


def save(key: str, arrays: dict[str, np.ndarray], description: dict, root: Path | None = None) -> Path:
    """Write a bundled entry (a maintainer step: see ``benchmarks/bundle_reference_stats.py``)."""
    out: dict[str, np.ndarray] = {"description": np.array(json.dumps(description, sort_keys=True))}
    for name, values in arrays.items():
        for part, data in quantize(values).items():
            out[f"{name}.{part}"] = data
    path = entry_path(key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, **out)
    os.replace(tmp, path)
    return path


def load(key: str, root: Path | None = None) -> dict[str, np.ndarray] | None:
    """The dequantised arrays bundled under ``key``, or None when gantl ships none for it."""
    path = entry_path(key, root)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        names = sorted({f.rsplit(".", 1)[0] for f in data.files if f.endswith(".codes")})
        return {name: dequantize(data[f"{name}.codes"], data[f"{name}.offset"], data[f"{name}.scale"])
                for name in names}


def describe(key: str, root: Path | None = None) -> dict | None:
    """The JSON description stored with a bundled entry (what, how many, how it was made)."""
    path = entry_path(key, root)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["description"]))


def available(root: Path | None = None) -> list[dict]:
    """Descriptions of every bundled entry (for ``gantl models``-style listings and the docs)."""
    base = root or BUNDLED_DIR
    return [describe(p.stem, base) or {} for p in sorted(base.glob("*.npz"))] if base.is_dir() else []
