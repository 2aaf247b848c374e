"""GLO: per-image latents reach the loss by dataset index, the terms match their definitions, the
latents train and reload from snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gantl.checkpoints.format import load_checkpoint
from gantl.config import from_dict, load_toml
from gantl.errors import ConfigError
from gantl.training.loop import Trainer, _TickStats, build_setup, latest_snapshot
from gantl.training.options import TrainOptions
from gantl.transfer.base import parse_method
from gantl.transfer.glo import emd_term


def _opts(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), resume="cifar9-stylegan2-32", cfg="cpu-tiny", batch=4, kimg=0.016, tick_kimg=0.004,
                snap_kimg=0.004, outdir=str(out), methods=["glo"], seed=6, progress=False, tensorboard=False,
                grid_size=2)
    base.update(kw)
    return from_dict(TrainOptions, base)


def test_emd_term_by_hand() -> None:
    latents = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    samples = torch.tensor([[0.0, 1.0], [3.0, 0.0], [2.0, 2.0]])
    # latents -> nearest sample: 1, 1; samples -> nearest latent: 1, 1, 4
    assert float(emd_term(latents, samples)) == pytest.approx(1.0 + 2.0)


def test_latents_of_the_batch_images_train_and_terms_are_logged(tiny_dataset: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(tiny_dataset, tmp_path, kimg=1))
    latents = trainer.G.glo_latents
    assert latents.shape == (64, 128) and not latents.any()
    tick = _TickStats()
    trainer.step(tick)
    seen = trainer.loss.real_idx
    moved = (latents.detach() != 0).any(dim=1).nonzero().flatten().tolist()
    assert sorted(moved) == sorted(seen)  # only the batch's own latents receive gradient
    for key in ("glo_l1", "glo_perceptual", "glo_emd"):
        assert tick.sums[key] > 0


def test_snapshots_rebuild_and_resume_exactly(tiny_dataset: Path, tmp_path: Path) -> None:
    ref = Trainer(_opts(tiny_dataset, tmp_path / "ref")).train()
    cut = Trainer(_opts(tiny_dataset, tmp_path / "cut", kimg=0.008)).train()
    Trainer(load_toml(TrainOptions, cut / "config.toml", ["kimg=0.016"]), run_dir=cut,
            resume_tag=latest_snapshot(cut)).train()
    a = load_checkpoint(ref / "snapshot-000000.016.safetensors")
    b = load_checkpoint(cut / "snapshot-000000.016.safetensors")
    assert all(torch.equal(a.tensors[n][k], b.tensors[n][k]) for n in a.tensors for k in a.tensors[n])
    assert a.build("G_ema").glo_latents.shape == (64, 128)


def test_glo_needs_data_and_a_source() -> None:
    with pytest.raises(ConfigError, match="--data"):
        build_setup(from_dict(TrainOptions, dict(resume="cifar9-stylegan2-32", resolution=32, methods=["glo"])),
                    need_dataset=False)
    with pytest.raises(ConfigError, match="no arguments"):
        parse_method("glo:1")


def test_latents_train_whatever_the_order_of_a_wholesale_g_freezer(tiny_dataset: Path, tmp_path: Path) -> None:
    for methods in (["glo", "scale-shift"], ["scale-shift", "glo"], ["glo", "minegan:5"]):
        setup = build_setup(_opts(tiny_dataset, tmp_path, methods=methods))
        trains = {n for n, p in setup.G.named_parameters() if p.requires_grad}
        assert "glo_latents" in trains, methods
        assert "synthesis.b32.conv1.weight" not in trains  # still frozen by the other method
    with pytest.raises(ConfigError, match="adafm already decides"):
        build_setup(_opts(tiny_dataset, tmp_path, methods=["adafm", "scale-shift"]))
