"""Every registered method trains from DCGAN and ResNet sources too, composed with FreezeD and ADA
(StyleGAN2 is covered by each method's own tests); its snapshot rebuilds with Checkpoint.build and
serves as the --resume source of a new run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gantl.checkpoints.format import load_checkpoint, save_checkpoint
from gantl.config import from_dict
from gantl.models.registry import build
from gantl.training.loop import Trainer, build_setup
from gantl.training.options import TrainOptions

METHODS = ["finetune:0.5", "freezeg:1", "l2sp", "ewc", "fd:1:1", "scale-shift", "minegan:1", "cdc", "adafm:1", "glo"]
FAMILIES = {"dcgan": ("dcgan-small", dict(z_dim=16, img_resolution=32, ngf=8), dict(img_resolution=32, ndf=8)),
            "resnet": ("resnet-tiny", dict(z_dim=16, img_resolution=32, ch=8), dict(img_resolution=32, ch=8))}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for arch, (_, g_kwargs, d_kwargs) in FAMILIES.items():
        torch.manual_seed(1)
        G, D = build(arch, "G", g_kwargs), build(arch, "D", d_kwargs)
        out[arch] = save_checkpoint(tmp_path_factory.mktemp(arch) / "src.safetensors",
                                    {"G": G, "D": D, "G_ema": G}, {"options": {"model": arch}})
    return out


@pytest.mark.parametrize("arch", list(FAMILIES))
@pytest.mark.parametrize("method", METHODS)
def test_method_trains_on_the_family_and_its_snapshot_rebuilds(arch: str, method: str, sources: dict[str, Path],
                                                               tiny_dataset: Path, tmp_path: Path) -> None:
    opts = from_dict(TrainOptions, dict(
        data=str(tiny_dataset), resume=str(sources[arch]), model=arch, cfg=FAMILIES[arch][0], batch=4, kimg=0.008,
        tick_kimg=0.008, outdir=str(tmp_path), methods=[method, "freezed:1"] if method != "freezeg:1" else [method],
        aug="ada", ada_kimg=1, progress=False, tensorboard=False, grid_size=2, seed=1))
    trainer = Trainer(opts)
    run = trainer.train()
    ckpt = load_checkpoint(run / "snapshot-000000.008.safetensors")
    for net, live in (("G_ema", trainer.G_ema), ("D", trainer.D)):
        rebuilt = ckpt.build(net)
        state = live.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in rebuilt.state_dict().items())
    stats = (run / "stats.jsonl").read_text()
    assert "loss_G" in stats and "nan" not in stats.lower()
    # the snapshot as a --resume source of a new run: same structure, its weights
    again = build_setup(from_dict(TrainOptions, dict(
        data=str(tiny_dataset), resume=str(run / "snapshot-000000.008.safetensors"), model=arch,
        cfg=FAMILIES[arch][0], methods=["freezed:1"])))
    for net, module in (("G", again.G), ("D", again.D)):
        assert all(torch.equal(v, ckpt.tensors[net][k]) for k, v in module.state_dict().items())
