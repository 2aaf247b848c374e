"""Independent Wasserstein critic, classifier score and memorization on small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gantl.errors import MetricError
from gantl.metrics import classifier as cls_mod
from gantl.metrics.iw_critic import CriticSettings, independent_critic
from gantl.metrics.memorization import memorization, save_closest_pairs


def _blobs(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """Smooth random 16x16 images; ``shift`` brightens them (a different distribution)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=16, mode="bilinear", align_corners=False)
    return ((x * 0.6 + shift) * 255).clamp(0, 255).to(torch.uint8)


def test_independent_critic_is_seeded_and_separates_distributions():
    s = CriticSettings(steps=40, batch=32, resolution=16, channels=8, seed=3)
    real_a, real_b = _blobs(64, 0), _blobs(64, 1)
    same = independent_critic(real_a, real_b, _blobs(64, 2), _blobs(64, 3), s)
    assert same == independent_critic(real_a, real_b, _blobs(64, 2), _blobs(64, 3), s)  # deterministic
    far = independent_critic(real_a, real_b, _blobs(64, 2, shift=0.4), _blobs(64, 3, shift=0.4), s)
    assert far > abs(same) + 0.1
    with pytest.raises(MetricError, match="at least 2"):
        independent_critic(real_a[:1], real_b, real_a, real_b, s)


def test_classifier_accepts_the_target_class_and_is_cached(tmp_path, make_images, monkeypatch, metrics_cache_dir):
    from gantl.data.dataset import ImageDataset

    make_images(tmp_path / "lab", 40, seed=0, tint=(230, 20, 20), subfolder="red")
    make_images(tmp_path / "lab", 40, seed=1, tint=(20, 20, 230), subfolder="blue")
    make_images(tmp_path / "lab", 40, seed=2, tint=(20, 230, 20), subfolder="green")
    ds = ImageDataset(tmp_path / "lab", progress=False)
    settings = cls_mod.ClassifierSettings(steps=40, batch=16, resolution=16, channels=8, holdout=0.2)
    model, accuracy = cls_mod.cached_classifier(ds, "red", settings)
    assert accuracy > 0.9
    reds = torch.stack([ds[i][0] for i in range(len(ds)) if ds.class_names[int(ds[i][1].argmax())] == "red"])
    blues = torch.stack([ds[i][0] for i in range(len(ds)) if ds.class_names[int(ds[i][1].argmax())] == "blue"])
    assert cls_mod.accept_share(model, reds, 16) > 0.9
    assert cls_mod.accept_share(model, blues, 16) < 0.1

    def no_training(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(cls_mod, "train_classifier", no_training)
    cached, cached_acc = cls_mod.cached_classifier(ImageDataset(tmp_path / "lab", progress=False), "red", settings)
    assert cached_acc == pytest.approx(accuracy)
    assert cls_mod.accept_share(cached, reds, 16) == cls_mod.accept_share(model, reds, 16)
    with pytest.raises(MetricError, match="not among the labelled classes"):
        cls_mod._target_index(ds, "horse")


def test_memorization_flags_copies_and_writes_pairs(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(50, 32))
    copies = real[:10] + rng.normal(scale=1e-3, size=(10, 32))
    novel = rng.normal(size=(30, 32))
    res = memorization(real, np.concatenate([copies, novel]))
    assert res.share == pytest.approx(10 / 40)
    assert list(res.nearest_index[:10]) == list(range(10))
    assert memorization(real, novel).share == 0.0
    assert memorization(real, novel).ratio > 0.5
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    real_images = torch.randint(0, 256, (50, 3, 16, 16), dtype=torch.uint8)
    out = save_closest_pairs(tmp_path / "pairs.png", images, lambda i: real_images[i], res, count=5)
    from PIL import Image

    assert Image.open(out).size == (16, 40)  # 5 rows of (generated | real) 8x8 pairs


def test_evaluate_runs_iw_cls_and_mem_together(tmp_path, make_images, pixel_extractor):
    from gantl.metrics.api import evaluate

    real = make_images(tmp_path / "real", 24, seed=0, size=16)
    make_images(tmp_path / "lab", 24, seed=1, tint=(230, 20, 20), subfolder="red")
    make_images(tmp_path / "lab", 24, seed=2, tint=(20, 20, 230), subfolder="blue")
    fakes = torch.from_numpy(np.stack([np.full((3, 16, 16), v, np.uint8) for v in (30, 90)] * 10))
    res = evaluate(real, lambda n: fakes[:n], ["iw", "cls", "mem"], num_gen=20, extractor="test-pixels",
                   progress=False, out_dir=tmp_path / "out",
                   options={"iw_steps": 10, "iw_batch": 16, "iw_resolution": 16, "iw_channels": 8, "cls_steps": 10,
                            "cls_batch": 16, "cls_resolution": 16, "cls_channels": 8, "cls_data": str(tmp_path / "lab"),
                            "cls_target": "red"})
    assert set(res) == {"iw", "cls", "cls_accuracy", "mem_share", "mem_ratio"}
    assert 0.0 <= res["cls"] <= 1.0 and np.isfinite(res["iw"])
    assert (tmp_path / "out" / "memorization_pairs.png").is_file()
