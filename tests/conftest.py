"""Shared fixtures: the read-only real datasets beside the project, and CPU thread limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
