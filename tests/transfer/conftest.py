"""A tiny labelled image folder (2 classes x 32 images, 32 px) for fast training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_tiny_dataset(root: Path, per_class: int = 32, res: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("a", "b")):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = (rng.random((res, res, 3)) * 255).astype(np.uint8)
            img[: res // 2] = 40 + 160 * k  # the classes differ in their top half
            Image.fromarray(img).save(root / cls / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")
