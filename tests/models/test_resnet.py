"""The ResNet (SNGAN-style) family: published sizes, spectral norm, conditioning, the
unconditional -> conditional copy, and training with hinge loss, n_dis and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gantl.config import from_dict, load_toml
from gantl.models.registry import build
from gantl.models.resnet import Discriminator, Generator
from gantl.training.loop import TIMING_KEYS, Trainer, latest_snapshot
from gantl.training.options import TrainOptions
from gantl.transfer.conditional import conditional_from_unconditional


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_sngan_cifar_sizes_match_the_published_model() -> None:
    # SNGAN's CIFAR-10 ResNet (StudioGAN's table: G 4.3M, D 1.06M parameters).
    G = Generator(z_dim=128, img_resolution=32, ch=256)
    D = Discriminator(img_resolution=32, ch=128)
    assert _count(G) == 4_276_739
    assert _count(D) == 1_053_825
    assert len(G.blocks) == 5 and len(D.blocks) == 5  # input, 3 up-blocks, output / 4 blocks, output


@pytest.mark.parametrize("res", [32, 64])
def test_shapes_range_and_blocks(res: int) -> None:
    G = Generator(z_dim=16, img_resolution=res, ch=16)
    D = Discriminator(img_resolution=res, ch=16)
    img = G(torch.randn(4, 16))
    assert img.shape == (4, 3, res, res) and img.abs().max() <= 1
    assert D(img).shape == (4, 1)
    x = torch.randn(2, 3, res, res)
    for block in D.blocks[:-1]:
        x = block(x)
    assert x.shape[-1] == 8  # D ends its blocks at 8x8, as SNGAN does


def test_spectral_norm_keeps_every_d_layer_near_unit_norm() -> None:
    torch.manual_seed(0)
    D = Discriminator(img_resolution=32, ch=16).train()
    x = torch.randn(8, 3, 32, 32)
    for _ in range(30):  # each training-mode forward runs one power iteration
        D(x)
    sigmas = []
    for m in D.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            w = m.weight.detach().reshape(m.weight.shape[0], -1)
            sigmas.append(float(torch.linalg.matrix_norm(w, ord=2)))
            raw = m.parametrizations.weight.original.detach().reshape(w.shape[0], -1)
            assert float(torch.linalg.matrix_norm(raw, ord=2)) > 1.05  # the raw weight is not normalised
    assert len(sigmas) == 11 and max(abs(s - 1) for s in sigmas) < 0.02


def test_fresh_conditional_g_is_class_independent_and_d_projects() -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=3, img_resolution=32, ch=8).eval()
    z = torch.randn(2, 8).repeat(3, 1)
    c = torch.eye(3).repeat_interleave(2, dim=0)
    out = G(z, c)
    assert torch.equal(out[:2], out[2:4]) and torch.equal(out[:2], out[4:])  # identity CBN at init
    D = Discriminator(c_dim=3, img_resolution=32, ch=8)
    x = torch.randn(3, 3, 32, 32).repeat(3, 1, 1, 1)
    logits = D(x, torch.eye(3).repeat_interleave(3, dim=0)).flatten()
    assert not torch.allclose(logits[:3], logits[3:6])  # the projection term depends on the class
    with pytest.raises(ValueError, match="labels of shape"):
        D(x)


def test_unconditional_to_conditional_copy_reproduces_the_source_for_every_class() -> None:
    torch.manual_seed(1)
    uncond = Generator(z_dim=8, img_resolution=32, ch=8)
    with torch.no_grad():  # a "trained" source: non-trivial BN affines and running statistics
        for m in uncond.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    cond = Generator(z_dim=8, c_dim=4, img_resolution=32, ch=8)
    state, fresh = conditional_from_unconditional(uncond.state_dict(), cond)
    cond.load_state_dict(state)
    assert fresh == []  # a conditional ResNet G adds nothing that the copy leaves at initialisation
    # the output layer's (unconditional) BN and every conv are copied unchanged
    for key, value in uncond.state_dict().items():
        if key in cond.state_dict() and cond.state_dict()[key].shape == value.shape:
            assert torch.equal(cond.state_dict()[key], value), key
    assert torch.equal(cond.blocks[1].norm1.bn.gain.weight[:, 2], uncond.blocks[1].norm1.bn.weight - 1)
    z = torch.randn(6, 8)
    for mode in ("eval", "train"):  # eval first: train-mode calls move the running statistics
        uncond.train(mode == "train")
        cond.train(mode == "train")
        want = uncond(z)
        for k in range(4):
            c = torch.nn.functional.one_hot(torch.full((6,), k), 4).float()
            torch.testing.assert_close(cond(z, c), want, rtol=0, atol=1e-5)  # 1 + (w - 1) rounding


def test_registry_builds_resnet_from_stored_config() -> None:
    G = build("resnet", "G", dict(z_dim=16, c_dim=0, img_resolution=32, img_channels=3, ch=8))
    G2 = build("resnet", "G", G.config)
    assert G2.config == G.config and list(G2.state_dict()) == list(G.state_dict())


def _opts(tiny_dataset: Path, tmp: Path, **extra) -> TrainOptions:
    base = dict(data=str(tiny_dataset), model="resnet", cfg="resnet-tiny", batch=8, tick_kimg=0.016,
                snap_kimg=0.032, seed=2, progress=False, tensorboard=False, outdir=str(tmp), ema_kimg=0.05)
    return from_dict(TrainOptions, {**base, **extra})


def test_resnet_defaults_to_hinge_and_counts_every_d_step(tiny_dataset: Path, tmp_path: Path) -> None:
    opts = _opts(tiny_dataset, tmp_path, d_steps=3, kimg=0.048)
    trainer = Trainer(opts)
    assert trainer.hyper.loss == "hinge" and trainer.loss.loss_type == "hinge"
    run = trainer.train()
    assert trainer.cur_nimg == 48 and trainer.batch_idx == 2  # 2 G steps, each after 3 D steps of 8 reals
    opt = trainer.optimizers
    g_steps = next(iter(opt["G"].state.values()))["step"]
    d_steps = next(iter(opt["D"].state.values()))["step"]
    assert float(g_steps) == 2 and float(d_steps) == 6
    lines = [json.loads(t) for t in (run / "stats.jsonl").read_text().splitlines()]
    assert all("loss_D" in line and "loss_G" in line for line in lines)


def test_resnet_resume_is_exact(tiny_dataset: Path, tmp_path: Path) -> None:
    def stats(run: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(t).items() if k not in TIMING_KEYS}
                for t in (run / "stats.jsonl").read_text().splitlines()]

    ref = Trainer(_opts(tiny_dataset, tmp_path / "ref", kimg=0.064, d_steps=2)).train()
    run = Trainer(_opts(tiny_dataset, tmp_path / "cut", kimg=0.032, d_steps=2)).train()
    opts = load_toml(TrainOptions, run / "config.toml", ["kimg=0.064"])
    Trainer(opts, run_dir=run, resume_tag=latest_snapshot(run)).train()
    assert stats(run) == stats(ref)
    from safetensors.torch import load_file

    a, b = load_file(ref / "snapshot-000000.064.safetensors"), load_file(run / "snapshot-000000.064.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
