"""Feature distillation: zero at the source, equal to lambda x MSE of hand-computed block features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gantl.checkpoints import zoo
from gantl.checkpoints.format import load_checkpoint
from gantl.config import from_dict
from gantl.errors import ConfigError
from gantl.training.loop import Trainer, _TickStats
from gantl.training.losses import StepContext
from gantl.training.options import TrainOptions
from gantl.transfer.base import parse_method
from gantl.transfer.fd import FeatureDistillation


def _nets(name: str) -> tuple[torch.nn.Module, torch.nn.Module, object]:
    ckpt = load_checkpoint(zoo.resolve(name))
    return ckpt.build("G"), ckpt.build("D"), ckpt


def _stylegan2_features(D: torch.nn.Module, img: torch.Tensor, upto: int) -> torch.Tensor:
    x, im = None, img
    for block in list(D.blocks)[: upto + 1]:
        x, im = block(x, im)
    return x


def _dcgan_features(D: torch.nn.Module, img: torch.Tensor, upto: int) -> torch.Tensor:
    x = img
    for block in list(D.blocks)[: upto + 1]:
        x = block(x)
    return x


@pytest.mark.parametrize("name,features", [("cifar9-stylegan2-32", _stylegan2_features),
                                           ("cifar9-dcgan-32", _dcgan_features)])
def test_value_is_lambda_times_mse_of_block_features(name: str, features) -> None:
    G, D, ckpt = _nets(name)
    method = parse_method("fd:2:1")
    assert isinstance(method, FeatureDistillation)
    method.prepare(G, D, ckpt)
    n_feature_blocks = len(list(D.blocks)) - 1
    assert method.index == n_feature_blocks - 2  # block 1 from the top
    img = torch.randn([4, 3, 32, 32], generator=torch.Generator().manual_seed(0))
    step = StepContext("D", G, D, cur_nimg=0, batch_idx=0, real_img=img)
    assert float(method.losses(step)["fd_D"].detach()) == 0.0  # D is still the source
    with torch.no_grad():
        for p in list(D.blocks)[0].parameters():
            p.add_(0.05 * torch.randn_like(p))
    value = float(method.losses(step)["fd_D"].detach())
    with torch.no_grad():
        src = features(method.d_src, img, method.index)
        own = features(D, img, method.index)
    assert value > 0
    assert value == pytest.approx(2 * float(((own - src) ** 2).mean()), rel=1e-5)
    step.phase = "G"
    assert method.losses(step) == {}
    # the source copy is frozen: distillation moves D only
    assert not any(p.requires_grad for p in method.d_src.parameters())


def test_block_index_is_checked_and_the_default_fits_small_discriminators() -> None:
    G, D, ckpt = _nets("cifar9-stylegan2-32")  # 32 px: blocks b32, b16, b8 below the epilogue
    with pytest.raises(ConfigError, match=r"fd:1:3 asks for block 3 .* use fd:1:2 or less"):
        parse_method("fd:1:3").prepare(G, D, ckpt)
    default = parse_method("fd")
    default.prepare(G, D, ckpt)
    assert default.index == 0  # FreezeD's feature_loc 3 clamped to the deepest block there is
    with pytest.raises(ConfigError, match="--resume"):
        parse_method("fd").prepare(G, D, None)


def test_fd_term_is_logged_in_the_d_phase_and_zero_before_the_first_update(tiny_dataset: Path,
                                                                          tmp_path: Path) -> None:
    opts = from_dict(TrainOptions, dict(data=str(tiny_dataset), resume="cifar9-stylegan2-32", batch=4, kimg=1,
                                        outdir=str(tmp_path), progress=False, tensorboard=False, methods=["fd:1:0"]))
    trainer = Trainer(opts)
    tick = _TickStats()
    trainer.step(tick)
    assert tick.means()["fd_D"] == 0.0
    trainer.step(tick)
    assert tick.sums["fd_D"] > 0


def test_distilling_a_block_that_freezing_keeps_fixed_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    from gantl.training.loop import build_setup

    def opts(methods: list[str]) -> TrainOptions:
        return from_dict(TrainOptions, dict(data=str(tiny_dataset), resume="cifar9-stylegan2-32", methods=methods,
                                            outdir=str(tmp_path)))

    with pytest.raises(ConfigError, match=r"fd:1:2 distils D block 2 .* frozen"):
        build_setup(opts(["fd:1:2", "freezed:1"]))  # block 2 from the top of 3 is b32, the first
    build_setup(opts(["fd:1:0", "freezed:1"]))  # b8 still trains
