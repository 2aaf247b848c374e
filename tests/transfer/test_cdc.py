"""CDC: the distance-consistency KL by hand, zero when target = source, and a patch head on D that
snapshots rebuild."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gantl.checkpoints import zoo
from gantl.checkpoints.format import load_checkpoint
from gantl.config import from_dict
from gantl.training.loop import Trainer
from gantl.training.losses import StepContext
from gantl.training.options import TrainOptions
from gantl.transfer.base import parse_method
from gantl.transfer.cdc import CDC, distance_consistency


def test_distance_consistency_by_hand() -> None:
    src = [torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])]
    tgt = [torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])]
    value = float(distance_consistency(src, tgt, [0, 0, 0]))

    def cos(a: list[float], b: list[float]) -> float:
        return (a[0] * b[0] + a[1] * b[1]) / math.hypot(*a) / math.hypot(*b)

    def softmax(xs: list[float]) -> list[float]:
        e = [math.exp(x) for x in xs]
        return [x / sum(e) for x in e]

    expected = 0.0
    for i in range(3):
        others = [j for j in range(3) if j != i]
        p_s = softmax([cos(src[0][i].tolist(), src[0][j].tolist()) for j in others])
        p_t = softmax([cos(tgt[0][i].tolist(), tgt[0][j].tolist()) for j in others])
        expected += sum(ps * (math.log(ps) - math.log(pt)) for ps, pt in zip(p_s, p_t, strict=True))
    assert value == pytest.approx(expected / 6, rel=1e-5)  # element mean over 3 anchors x 2 others


@pytest.mark.parametrize("name", ["cifar9-stylegan2-32", "cifar9-dcgan-32"])
def test_zero_when_target_is_source_and_positive_after_a_change(name: str) -> None:
    ckpt = load_checkpoint(zoo.resolve(name))
    G, D = ckpt.build("G"), ckpt.build("D")
    method = parse_method("cdc")
    assert isinstance(method, CDC) and method.spec() == "cdc:1000"
    method.prepare(G, D, ckpt)
    assert hasattr(D, "cdc_patch") and D.gantl_adapters[0]["kind"] == "cdc-patch"
    torch.manual_seed(0)
    step = StepContext("G", G, D, cur_nimg=0, batch_idx=0)  # batch 0: no patch term
    terms = method.losses(step)
    assert set(terms) == {"cdc_G"} and float(terms["cdc_G"].detach()) == 0.0
    with torch.no_grad():
        for p in list(G.blocks)[0].parameters():
            p.add_(0.5 * torch.randn_like(p))
    torch.manual_seed(0)
    assert float(method.losses(step)["cdc_G"].detach()) > 1e-4


def test_cdc_trains_and_its_patch_head_reloads(tiny_dataset: Path, tmp_path: Path) -> None:
    opts = from_dict(TrainOptions, dict(data=str(tiny_dataset), resume="cifar9-stylegan2-32", cfg="cpu-tiny",
                                        batch=4, kimg=0.008, tick_kimg=0.008, outdir=str(tmp_path), methods=["cdc:10"],
                                        progress=False, tensorboard=False, grid_size=2))
    trainer = Trainer(opts)
    head0 = trainer.D.cdc_patch.weight.detach().clone()
    run = trainer.train()
    assert not torch.equal(head0, trainer.D.cdc_patch.weight)
    stats = (run / "stats.jsonl").read_text()
    assert "cdc_G" in stats and "cdc_patch_D" in stats and "cdc_patch_G" in stats
    ckpt = load_checkpoint(run / "snapshot-000000.008.safetensors")
    D = ckpt.build("D")
    assert torch.equal(D.cdc_patch.weight, trainer.D.cdc_patch.weight)


def test_anchor_steps_draw_latents_around_the_anchors() -> None:
    from gantl.transfer.base import StepInfo

    ckpt = load_checkpoint(zoo.resolve("cifar9-stylegan2-32"))
    G, D = ckpt.build("G"), ckpt.build("D")
    method = parse_method("cdc")
    method.prepare(G, D, ckpt)
    z = torch.randn([64, G.z_dim])
    assert method.latents(StepInfo(G, D, cur_nimg=0, batch_idx=1), z) is z  # not an anchor step
    near = method.latents(StepInfo(G, D, cur_nimg=0, batch_idx=4), z)
    dist = torch.cdist(near, method.anchors).min(dim=1).values / G.z_dim ** 0.5
    assert near.shape == z.shape and float(dist.max()) < 0.15  # per-coordinate std 0.1 around an anchor


def test_resume_with_cdc_is_exact(tiny_dataset: Path, tmp_path: Path) -> None:
    from gantl.config import load_toml
    from gantl.training.loop import latest_snapshot

    def opts(out: str, kimg: float) -> TrainOptions:
        return from_dict(TrainOptions, dict(data=str(tiny_dataset), resume="cifar9-stylegan2-32", cfg="cpu-tiny",
                                            batch=4, kimg=kimg, tick_kimg=0.008, snap_kimg=0.008,
                                            outdir=str(tmp_path / out), methods=["cdc:10"], seed=2, progress=False,
                                            tensorboard=False, grid_size=2))

    ref = Trainer(opts("ref", 0.024)).train()
    cut = Trainer(opts("cut", 0.008)).train()
    Trainer(load_toml(TrainOptions, cut / "config.toml", ["kimg=0.024"]), run_dir=cut,
            resume_tag=latest_snapshot(cut)).train()
    a = load_checkpoint(ref / "snapshot-000000.024.safetensors").tensors
    b = load_checkpoint(cut / "snapshot-000000.024.safetensors").tensors
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
