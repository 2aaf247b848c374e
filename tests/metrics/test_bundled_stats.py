"""Bundled reference features: exact enough, found only for byte-identical images, and true to the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gantl.metrics import bundled_stats, stats_cache


def test_quantisation_error_is_bounded_by_half_a_step() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(0.8, 0.4, size=(300, 64)) * rng.uniform(0.2, 2.0, size=64)  # like pool3: >= 0, skewed, max ~7
    values[:, 5] = 2.5  # a constant column must survive (zero span)
    q = bundled_stats.quantize(values)
    back = bundled_stats.dequantize(q["codes"], q["offset"], q["scale"]).astype(np.float64)
    assert q["codes"].dtype == np.uint16
    err = np.abs(back - values)
    assert np.all(err <= q["scale"] / 2 + 1e-6 * np.abs(values).max())
    assert np.allclose(back[:, 5], 2.5)
    assert values.max() < 13.0 and err.max() < 1e-4  # a span under 13 keeps the error under the backends' 1e-4


def test_save_load_describe_and_misses(tmp_path: Path) -> None:
    feats = np.random.default_rng(1).random((20, 8)).astype(np.float32)
    key = stats_cache.cache_key("content-a", {"extractor": "x"}, 20, 0, False, dataset_size=20)
    bundled_stats.save(key, {"features": feats}, {"dataset": "unit test"}, root=tmp_path)
    got = bundled_stats.load(key, root=tmp_path)
    assert set(got) == {"features"} and got["features"].dtype == np.float32
    assert np.abs(got["features"] - feats).max() < 1e-4
    assert bundled_stats.describe(key, root=tmp_path) == {"dataset": "unit test"}
    other = stats_cache.cache_key("content-b", {"extractor": "x"}, 20, 0, False, dataset_size=20)
    assert bundled_stats.load(other, root=tmp_path) is None  # other bytes, same "name": no entry
    assert [d["dataset"] for d in bundled_stats.available(tmp_path)] == ["unit test"]


def test_seed_is_irrelevant_only_when_all_images_are_used() -> None:
    ext = {"extractor": "x"}
    assert stats_cache.cache_key("c", ext, 50, 1, False, dataset_size=50) == \
        stats_cache.cache_key("c", ext, 50, 7, False, dataset_size=50)
    assert stats_cache.cache_key("c", ext, 40, 1, False, dataset_size=50) != \
        stats_cache.cache_key("c", ext, 40, 7, False, dataset_size=50)


def test_user_cache_is_read_before_the_bundle(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(bundled_stats, "BUNDLED_DIR", tmp_path / "bundled")
    key = stats_cache.cache_key("content-c", {"extractor": "x"}, 4, 0, False, dataset_size=4)
    bundled_stats.save(key, {"features": np.ones((4, 3), np.float32)}, {"dataset": "b"})
    assert np.allclose(stats_cache.load(key)["features"], 1.0)
    stats_cache.save(key, {"features": np.zeros((4, 3), np.float32)})
    assert np.allclose(stats_cache.load(key)["features"], 0.0)


def test_bundled_cifar10_horses_match_fresh_features(cifar10_zip: Path) -> None:
    """The shipped entry for ../shared's CIFAR-10 train/horse is what gantl's pipeline computes now."""
    from gantl.data.dataset import ImageDataset
    from gantl.metrics.features import get_extractor

    ds = ImageDataset(f"{cifar10_zip}:train/horse", use_labels=False, progress=False)
    extractor = get_extractor("inception-v3-fid")
    key = stats_cache.cache_key(ds.content_hash(), extractor.cache_key(), len(ds), 0, False, dataset_size=len(ds))
    assert bundled_stats.entry_path(key).is_file(), "the bundled horse features are missing or keyed differently"
    desc = bundled_stats.describe(key)
    assert desc["images"] == 5000 and desc["content_sha256"] == ds.content_hash()
    bundled = bundled_stats.load(key)["features"]
    assert bundled.shape == (5000, 2048)
    rows = [0, 1234, 4999]
    fresh = extractor(torch.stack([ds[i][0] for i in rows]))["features"]
    assert np.abs(fresh - bundled[rows]).max() < 1e-4
    assert np.abs(np.delete(bundled, rows, axis=0)[:5] - bundled[rows][:1]).max() > 0.1  # rows are not all alike


@pytest.mark.parametrize("count", [4999])
def test_a_subset_does_not_use_the_full_set_entry(cifar10_zip: Path, count: int) -> None:
    from gantl.data.dataset import ImageDataset
    from gantl.metrics.features import get_extractor

    ds = ImageDataset(f"{cifar10_zip}:train/horse", use_labels=False, progress=False)
    key = stats_cache.cache_key(ds.content_hash(), get_extractor("inception-v3-fid").cache_key(), count, 0, False,
                                dataset_size=len(ds))
    assert bundled_stats.load(key) is None
