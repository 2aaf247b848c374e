"""AdaFM: at gamma = 1, beta = 0 the general part reproduces the source bitwise; the frozen kernels
never move, AdaFM trains only after its step, the specific part trains from its new initialisation,
and snapshots (parametrized weights) rebuild and resume exactly."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gantl.checkpoints.format import load_checkpoint
from gantl.config import from_dict, load_toml
from gantl.models.registry import build
from gantl.training.loop import Trainer, _TickStats, latest_snapshot
from gantl.training.options import TrainOptions
from gantl.transfer.adafm import AdaFMMethod, apply_adafm, split_blocks
from gantl.transfer.base import parse_method, parse_methods

ARCHS = [
    ("stylegan2", dict(z_dim=8, w_dim=8, img_resolution=32, mapping_kwargs=dict(num_layers=2),
                       synthesis_kwargs=dict(channel_base=128, channel_max=8))),
    ("dcgan", dict(z_dim=8, img_resolution=32, ngf=8)),
    ("resnet", dict(z_dim=8, img_resolution=32, ch=8)),
]


@pytest.mark.parametrize("arch,kwargs", ARCHS)
def test_adafm_at_init_reproduces_the_source_exactly(arch: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    G = build(arch, "G", kwargs).eval()
    z = torch.randn([3, G.z_dim])
    with torch.no_grad():
        before = G(z, noise_mode="const")
    specific, general = split_blocks(G)
    assert specific == [0] and general == list(range(1, len(list(G.blocks))))  # 32 px: only 4x4 is new
    modules = [n for n, m in G.named_modules() if n and any(isinstance(p, torch.nn.Parameter) and p.ndim == 4
                                                          for p in m._parameters.values())]
    apply_adafm(G, {"modules": [m for m in modules if not m.startswith(("blocks.0", "synthesis.b4"))]})
    with torch.no_grad():
        assert torch.equal(G(z, noise_mode="const"), before)
        gamma = next(p for n, p in G.named_parameters() if n.endswith("gamma"))
        gamma.mul_(1.5)
        assert not torch.equal(G(z, noise_mode="const"), before)


def _opts(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), resume="cifar9-stylegan2-32", cfg="cpu-tiny", batch=4, kimg=1, tick_kimg=0.004,
                snap_kimg=0.004, outdir=str(out), methods=["adafm:2"], seed=4, progress=False, tensorboard=False,
                grid_size=2)
    base.update(kw)
    return from_dict(TrainOptions, base)


def test_frozen_kernels_stay_adafm_waits_specific_part_trains(tiny_dataset: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(tiny_dataset, tmp_path))
    G = trainer.G
    state0 = {k: v.clone() for k, v in G.state_dict().items()}
    src = load_checkpoint(trainer.setup.source.path).tensors["G"]
    assert not torch.equal(state0["synthesis.b4.const"], src["synthesis.b4.const"])  # specific part re-initialised
    assert torch.equal(state0["synthesis.b8.conv0.parametrizations.weight.original"], src["synthesis.b8.conv0.weight"])
    tick = _TickStats()
    for _ in range(2):
        trainer.step(tick)
    s2 = {k: v.clone() for k, v in G.state_dict().items()}
    changed = {k for k in s2 if not torch.equal(state0[k], s2[k])}
    assert any(k.startswith("synthesis.b4.") for k in changed) and any(k.startswith("mapping.fc") for k in changed)
    assert not any(k.endswith(("gamma", "beta")) for k in changed)  # AdaFM frozen before step 2
    trainer.step(tick)
    s3 = G.state_dict()
    assert any(not torch.equal(s2[k], s3[k]) for k in s3 if k.endswith("gamma"))
    for k in s3:
        if k.endswith(".original") or (k.startswith(("synthesis.b8.", "synthesis.b16.", "synthesis.b32."))
                                       and not k.endswith(("gamma", "beta"))):
            assert torch.equal(state0[k], s3[k]), f"{k} is in the frozen general part but changed"


def test_snapshots_rebuild_and_resume_across_the_switch(tiny_dataset: Path, tmp_path: Path) -> None:
    ref = Trainer(_opts(tiny_dataset, tmp_path / "ref", kimg=0.016)).train()
    cut = Trainer(_opts(tiny_dataset, tmp_path / "cut", kimg=0.012)).train()
    Trainer(load_toml(TrainOptions, cut / "config.toml", ["kimg=0.016"]), run_dir=cut,
            resume_tag=latest_snapshot(cut)).train()
    a = load_checkpoint(ref / "snapshot-000000.016.safetensors")
    b = load_checkpoint(cut / "snapshot-000000.016.safetensors")
    assert all(torch.equal(a.tensors[n][k], b.tensors[n][k]) for n in a.tensors for k in a.tensors[n])
    G = a.build("G_ema").eval()
    assert any(k.endswith("gamma") for k in G.state_dict())
    from gantl.generate import load_generator

    z = torch.randn([2, G.z_dim])
    with torch.no_grad():
        assert torch.equal(load_generator(ref / "snapshot-000000.016.safetensors").G(z, noise_mode="const"),
                           G(z, noise_mode="const"))


def test_spelling_and_combinations() -> None:
    method = parse_method("adafm:100")
    assert isinstance(method, AdaFMMethod) and method.spec() == "adafm:100"
    assert parse_method("adafm").steps == 10_000
    with pytest.raises(Exception, match="minegan"):
        parse_methods(["adafm", "minegan"])
    G = build("dcgan", "G", dict(z_dim=8, img_resolution=32, ngf=8))
    with pytest.raises(Exception, match="--resume"):
        method.prepare(G, G, None)
    method.prepare(G, G, SimpleNamespace())
