"""Fixtures for the metrics tests: a private cache dir, a cheap feature extractor and tiny datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantl.metrics import features


@pytest.fixture(scope="session", autouse=True)
def metrics_cache_dir(tmp_path_factory) -> Path:
    """Every test writes converted models, statistics and classifiers under a temporary cache dir."""
    path = tmp_path_factory.mktemp("gantl-cache")
    old = os.environ.get("GANTL_CACHE_DIR")
    os.environ["GANTL_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("GANTL_CACHE_DIR", None)
    else:
        os.environ["GANTL_CACHE_DIR"] = old


class PixelExtractor:
    """A cheap, deterministic stand-in for Inception (4x4 average-pooled pixels, 48-d) that counts
    how many images it saw, so tests can tell a cache hit from a recomputation."""

    name = "test-pixels"
    outputs = ("features",)
    calls = 0
    images = 0

    def cache_key(self) -> dict:
        return {"extractor": self.name, "version": 1}

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        type(self).calls += 1
        type(self).images += images.shape[0]
        x = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255.0, 4)
        return {"features": x.flatten(1).numpy().astype(np.float32)}


@pytest.fixture
def pixel_extractor():
    features.register_extractor(PixelExtractor.name, PixelExtractor)
    PixelExtractor.calls = PixelExtractor.images = 0
    return PixelExtractor


def write_images(folder: Path, count: int, seed: int, size: int = 16, tint: tuple[int, int, int] | None = None,
                 subfolder: str = "") -> Path:
    """Random PNG images (optionally biased towards a colour) in ``folder/subfolder``."""
    rng = np.random.default_rng(seed)
    out = folder / subfolder if subfolder else folder
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = rng.integers(0, 256, (size, size, 3))
        if tint is not None:
            img = (img * 0.3 + np.array(tint) * 0.7)
        Image.fromarray(img.astype(np.uint8)).save(out / f"{i:04d}.png")
    return folder


@pytest.fixture
def make_images():
    """``make_images(folder, count, seed, size=16, tint=None, subfolder="")`` writes random PNGs."""
    return write_images
