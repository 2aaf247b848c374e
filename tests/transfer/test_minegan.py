"""MineGAN: the miner alone trains through the frozen G until step N, then G joins; snapshots with a
miner rebuild and sample through it; resume across the stage switch is exact."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gantl.checkpoints.format import load_checkpoint
from gantl.config import from_dict, load_toml
from gantl.errors import ConfigError
from gantl.models.registry import build
from gantl.training.loop import Trainer, _TickStats, latest_snapshot
from gantl.training.options import TrainOptions
from gantl.transfer.base import parse_method, parse_methods
from gantl.transfer.minegan import miner_of


def _opts(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), resume="cifar9-stylegan2-32", cfg="cpu-tiny", batch=4, kimg=1, tick_kimg=0.004,
                snap_kimg=0.004, outdir=str(out), methods=["minegan:2"], seed=3, progress=False, tensorboard=False,
                grid_size=2)
    base.update(kw)
    return from_dict(TrainOptions, base)


@pytest.mark.parametrize("arch,kwargs", [
    ("dcgan", dict(z_dim=8, img_resolution=32, ngf=8)),
    ("resnet", dict(z_dim=8, img_resolution=32, ch=8)),
    ("stylegan2", dict(z_dim=8, w_dim=8, img_resolution=8, mapping_kwargs=dict(num_layers=2),
                       synthesis_kwargs=dict(channel_base=64, channel_max=8))),
])
def test_generator_samples_through_the_miner(arch: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    G = build(arch, "G", kwargs).eval()
    reference = build(arch, "G", kwargs).eval()
    reference.load_state_dict(G.state_dict())
    parse_method("minegan:5").prepare(G, torch.nn.Linear(1, 1), SimpleNamespace())
    miner = miner_of(G)
    assert miner is not None
    assert {n for n, p in G.named_parameters() if p.requires_grad} == \
        {n for n, _ in G.named_parameters() if ".miner." in n or n.startswith("miner.")}
    z = torch.randn([3, G.z_dim])
    with torch.no_grad():
        assert torch.allclose(G(z, noise_mode="const"), reference(miner(z), noise_mode="const"), atol=1e-6)


def test_only_the_miner_trains_until_the_switch_then_g_joins(tiny_dataset: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(tiny_dataset, tmp_path))
    miner = miner_of(trainer.G)
    G0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    tick = _TickStats()
    for _ in range(2):
        trainer.step(tick)
    G1 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    moved = {k for k in G1 if not torch.equal(G0[k], G1[k])}
    assert moved and all(".miner." in k or k == "mapping.w_avg" for k in moved), moved
    assert any(".miner." in k for k in moved)
    assert trainer.methods[0].stage == 1
    trainer.step(tick)  # batch_idx 2: stage 2
    assert trainer.methods[0].stage == 2
    G2 = trainer.G.state_dict()
    assert not torch.equal(G1["synthesis.b32.conv1.weight"], G2["synthesis.b32.conv1.weight"])
    assert miner is miner_of(trainer.G)


def test_snapshot_rebuilds_with_its_miner_and_resume_across_the_switch_is_exact(tiny_dataset: Path,
                                                                               tmp_path: Path) -> None:
    ref = Trainer(_opts(tiny_dataset, tmp_path / "ref", kimg=0.016)).train()
    cut = Trainer(_opts(tiny_dataset, tmp_path / "cut", kimg=0.012)).train()
    state = torch.load(cut / "training-state-000000.012.pt", weights_only=True)
    assert state["methods"] == [{"stage": 2}]
    Trainer(load_toml(TrainOptions, cut / "config.toml", ["kimg=0.016"]), run_dir=cut,
            resume_tag=latest_snapshot(cut)).train()
    a = load_checkpoint(ref / "snapshot-000000.016.safetensors")
    b = load_checkpoint(cut / "snapshot-000000.016.safetensors")
    assert all(torch.equal(a.tensors[n][k], b.tensors[n][k]) for n in a.tensors for k in a.tensors[n])
    assert a.network_info("G_ema")["adapters"] == [{"kind": "miner", "z_dim": 128}]
    from gantl.generate import load_generator

    G = load_generator(ref / "snapshot-000000.016.safetensors").G
    assert any(".miner." in n for n, _ in G.named_parameters())


def test_combinations_that_would_be_undone_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"minegan unfreezes all of G .*freezeg:1"):
        parse_methods(["minegan", "freezeg:1"])
    with pytest.raises(ConfigError, match="scale-shift"):
        parse_methods(["scale-shift", "minegan:10"])
    parse_methods(["minegan", "freezed:2", "l2sp:1:0"])
