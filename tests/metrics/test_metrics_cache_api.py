"""The evaluator: one feature pass shared by metrics, a content-keyed cache, fakes from folders,
generators, checkpoints and run directories, and the `gantl eval` command."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gantl.errors import MetricError
from gantl.metrics import fid as fid_mod
from gantl.metrics.api import evaluate, evaluate_generator

EXTRACTOR = "test-pixels"


def _eval(real, fake, metrics, **kw):
    kw.setdefault("progress", False)
    return evaluate(real, fake, metrics, extractor=EXTRACTOR, **kw)


def test_one_feature_pass_serves_all_metrics_and_matches_formulas(tmp_path, pixel_extractor, make_images):
    real = make_images(tmp_path / "real", 24, seed=0)
    fake = make_images(tmp_path / "fake", 20, seed=1, tint=(200, 40, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _eval(real, fake, ["fid", "kid", "pr", "dc", "mem"])
    assert set(res) == {"fid", "kid", "precision", "recall", "density", "coverage", "mem_share", "mem_ratio"}
    assert pixel_extractor.images == 44  # every image seen once for five metrics
    ext = pixel_extractor()
    from gantl.data.dataset import ImageDataset

    rf = ext(torch.stack([ImageDataset(real, progress=False)[i][0] for i in range(24)]))["features"]
    ff = ext(torch.stack([ImageDataset(fake, progress=False)[i][0] for i in range(20)]))["features"]
    assert res["fid"] == pytest.approx(fid_mod.fid_from_features(rf, ff), rel=1e-9)
    assert res["fid"] > 0.5 and res["precision"] < 0.5  # the tinted fakes are far from the reals
    as_datasets = _eval(ImageDataset(real, progress=False), ImageDataset(fake, progress=False), ["fid"])
    assert as_datasets["fid"] == pytest.approx(res["fid"], rel=1e-12)


def test_cache_is_keyed_by_content_not_name(tmp_path, pixel_extractor, make_images):
    real = make_images(tmp_path / "real", 12, seed=0)
    fake = make_images(tmp_path / "fake", 12, seed=1)
    first = _eval(real, fake, ["fid"])
    assert pixel_extractor.images == 24
    again = _eval(real, fake, ["fid"])
    assert pixel_extractor.images == 36  # only the fakes again: the real features were a cache hit
    assert again == first
    moved = tmp_path / "renamed-dataset"
    shutil.move(str(real), moved)
    _eval(moved, fake, ["fid"])
    assert pixel_extractor.images == 48  # renamed: still a hit
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(moved / "0003.png")
    changed = _eval(moved, fake, ["fid"])
    assert pixel_extractor.images == 48 + 24  # one changed file: a miss
    assert changed["fid"] != first["fid"]
    _eval(moved, fake, ["fid"], num_real=6)
    assert pixel_extractor.images == 72 + 18  # another sample count is another entry


def test_kid_with_few_images_warns_and_returns_a_number(tmp_path, pixel_extractor, make_images):
    real = make_images(tmp_path / "real", 10, seed=0)
    fake = make_images(tmp_path / "fake", 8, seed=1)
    with pytest.warns(UserWarning, match="subset size shrinks"):
        res = _eval(real, fake, ["kid"])
    assert np.isfinite(res["kid"])


class TinyG(torch.nn.Module):
    """A generator following the gantl contract: colour set by the label, brightness by z."""

    def __init__(self, c_dim: int = 0) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = 4, c_dim, 16, 3
        self.seen_labels: list[torch.Tensor] = []

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="random"):
        base = torch.tanh(z[:, :3])[:, :, None, None].expand(-1, 3, 16, 16) * 0.5
        if self.c_dim:
            self.seen_labels.append(c)
            base = base + c[:, :1, None, None] * 0.5
        return base + 0.1 * torch.randn(z.shape[0], 3, 16, 16)


def test_generator_is_seeded_and_conditional_labels_follow_the_real_distribution(tmp_path, pixel_extractor,
                                                                                   make_images):
    make_images(tmp_path / "real", 8, seed=0, subfolder="cat")
    make_images(tmp_path / "real", 24, seed=1, subfolder="dog")
    G = TinyG(c_dim=2)
    a = evaluate_generator(G, tmp_path / "real", ["fid"], 60, batch=20, extractor=EXTRACTOR, progress=False)
    b = evaluate_generator(G, tmp_path / "real", ["fid"], 60, batch=20, extractor=EXTRACTOR, progress=False)
    assert a == b
    labels = torch.cat(G.seen_labels)
    assert labels.shape == (120, 2)
    assert 0.1 < labels[:, 0].mean().item() < 0.45  # 8 of 32 real images are class 0
    with pytest.raises(MetricError, match="conditional"):
        make_images(tmp_path / "flat", 6, seed=2)
        evaluate_generator(TinyG(c_dim=2), tmp_path / "flat", ["fid"], 10, extractor=EXTRACTOR, progress=False)


def test_checkpoint_and_run_directory(tmp_path, pixel_extractor, make_images):
    from gantl.checkpoints.format import save_checkpoint
    from gantl.metrics.runs import evaluate_run
    from gantl.models.dcgan import Generator

    real = make_images(tmp_path / "real", 16, seed=0, size=32)
    run = tmp_path / "run"
    run.mkdir()
    for kimg in (0, 4):
        torch.manual_seed(kimg)
        G = Generator(z_dim=8, img_resolution=32, ngf=8)
        save_checkpoint(run / f"snapshot-{kimg:06d}.safetensors", {"G_ema": G}, {"kimg": kimg})
    one = _eval(real, run / "snapshot-000004.safetensors", ["fid"], num_gen=20)
    assert np.isfinite(one["fid"])
    with pytest.raises(MetricError, match="run directory"):
        _eval(real, run, ["fid"])
    lines = evaluate_run(run, real, ["fid", "kid"], 20, extractor=EXTRACTOR, progress=False)
    assert [line["kimg"] for line in lines] == [0.0, 4.0]
    assert lines[1]["results"]["fid"] == pytest.approx(one["fid"])
    written = [json.loads(s) for s in (run / "metrics-eval.jsonl").read_text().splitlines()]
    assert written == lines
    assert (run / "metrics-eval.png").stat().st_size > 1000


def test_cli_writes_json_and_rejects_unknown_metric(tmp_path, pixel_extractor, make_images):
    from gantl.cli import app

    real = make_images(tmp_path / "real", 16, seed=0)
    fake = make_images(tmp_path / "fake", 16, seed=1)
    out = tmp_path / "res.json"
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--metrics", "fid,pr,dc", "--real", str(real), "--fake", str(fake),
                                 "--json", str(out), "--extractor", EXTRACTOR])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"fid", "precision", "recall", "density", "coverage"}
    assert "fid" in result.output
    bad = runner.invoke(app, ["eval", "--metrics", "fid,bogus", "--real", str(real), "--fake", str(fake)])
    assert bad.exit_code != 0 and "unknown metric 'bogus'" in str(bad.exception)
