"""On-disk cache of real-image features, keyed by what determines them, never by a dataset's name.

The key is a sha256 over: the dataset's content hash (sha256 of its files), the extractor's
``cache_key()`` (network file hash, resize mode), the number of images, the selection seed and
x-flip. Renaming or moving a dataset still hits; changing one pixel of one file misses. Entries are
``.npz`` files written atomically (temp file + rename), so an interrupted run never leaves a
half-written entry that a later run would trust.

Below the user's cache sits a read-only layer shipped with gantl (:mod:`gantl.metrics.bundled_stats`):
features of standard reference sets, found under the same content-derived key, so they are used
only for byte-identical images and never for a dataset that merely has the same name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from gantl.metrics.inception import cache_dir

CACHE_VERSION = 1


def cache_key(content_hash: str, extractor_key: dict, count: int, seed: int, xflip: bool,
              dataset_size: int | None = None) -> str:
    """The entry's key. When all ``dataset_size`` images are used the selection seed cannot matter,
    so it is left out (normalised to 0): every seed then shares one entry."""
    if dataset_size is not None and count >= dataset_size:
        seed = 0
    blob = json.dumps({"v": CACHE_VERSION, "content": content_hash, "extractor": extractor_key, "count": int(count),
                       "seed": int(seed), "xflip": bool(xflip)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_path(key: str) -> Path:
    return cache_dir() / "stats" / f"{key[:32]}.npz"


def load(key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``: the user's cache first, then gantl's bundled references."""
    path = entry_path(key)
    if not path.is_file():
        from gantl.metrics import bundled_stats

        return bundled_stats.load(key)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None  # unreadable entry: recompute and overwrite


def save(key: str, arrays: dict[str, np.ndarray]) -> Path:
    path = entry_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path
