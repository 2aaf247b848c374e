"""L2-SP: the penalty equals FreezeD's sum over tensors of the per-element mean squared drift, by hand."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gantl.config import from_dict
from gantl.errors import ConfigError
from gantl.training.loop import Trainer, _TickStats
from gantl.training.losses import StepContext
from gantl.training.options import TrainOptions
from gantl.transfer.base import parse_method
from gantl.transfer.l2sp import L2SP, anchor_of, l2sp_penalty


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)  # weight [2, 2], bias [2]
        self.b = nn.Parameter(torch.zeros(3))


def _set(net: Tiny, w: list[list[float]], bias: list[float], b: list[float]) -> None:
    with torch.no_grad():
        net.a.weight.copy_(torch.tensor(w))
        net.a.bias.copy_(torch.tensor(bias))
        net.b.copy_(torch.tensor(b))


def test_penalty_by_hand_on_a_tiny_network() -> None:
    net = Tiny()
    _set(net, [[1, 2], [3, 4]], [0, 0], [1, 1, 1])
    anchor = anchor_of(net)
    _set(net, [[2, 2], [3, 2]], [0, 3], [1, 1, 4])
    # weight: diffs (1, 0, 0, -2) -> mean 5/4; bias: (0, 3) -> 9/2; b: (0, 0, 3) -> 9/3
    expected = 5 / 4 + 9 / 2 + 9 / 3
    assert float(l2sp_penalty(net, anchor).detach()) == pytest.approx(expected)
    net.b.requires_grad_(False)  # frozen tensors cannot move: not part of the penalty
    assert float(l2sp_penalty(net, anchor).detach()) == pytest.approx(5 / 4 + 9 / 2)
    # gradient: d/dtheta mean((theta - theta0)^2) = 2 (theta - theta0) / numel
    l2sp_penalty(net, anchor).backward()
    assert torch.allclose(net.a.bias.grad, torch.tensor([0.0, 3.0]))
    # parameters without an anchor (added by another method) are skipped
    net.extra = nn.Parameter(torch.ones(4))
    assert float(l2sp_penalty(net, anchor).detach()) == pytest.approx(5 / 4 + 9 / 2)


def test_method_adds_lambda_times_penalty_to_the_right_phase() -> None:
    G, D = Tiny(), Tiny()
    method = parse_method("l2sp:2:0.5")
    assert isinstance(method, L2SP) and method.spec() == "l2sp:2:0.5"
    method.prepare(G, D, source=SimpleNamespace())
    with torch.no_grad():
        G.b.add_(1.0)  # mean 1 -> penalty 1
        D.a.bias.add_(2.0)  # mean 4 -> penalty 4
    step = StepContext("G", G, D, cur_nimg=0, batch_idx=0)
    assert float(method.losses(step)["l2sp_G"].detach()) == pytest.approx(2.0)
    step.phase = "D"
    assert float(method.losses(step)["l2sp_D"].detach()) == pytest.approx(0.5 * 4.0)
    for phase in ("Greg", "Dreg"):
        step.phase = phase
        assert method.losses(step) == {}
    assert parse_method("l2sp:3").spec() == "l2sp:3:3"  # lambda_d defaults to lambda_g
    only_g = parse_method("l2sp:1:0")
    assert only_g.needs_source_g and not only_g.needs_source_d
    with pytest.raises(ConfigError, match="--resume"):
        parse_method("l2sp").prepare(G, D, source=None)


def test_l2sp_trains_from_a_stylegan2_source_and_logs_both_terms(tiny_dataset: Path, tmp_path: Path) -> None:
    opts = from_dict(TrainOptions, dict(data=str(tiny_dataset), resume="cifar9-stylegan2-32", batch=4, kimg=1,
                                        outdir=str(tmp_path), progress=False, tensorboard=False,
                                        methods=["l2sp:1:1"]))
    trainer = Trainer(opts)
    method = trainer.methods[0]
    tick = _TickStats()
    trainer.step(tick)
    first = tick.means()
    assert first["l2sp_G"] == 0.0 and first["l2sp_D"] == 0.0  # still at the source
    trainer.step(tick)
    G_value = float(l2sp_penalty(trainer.G, method.anchors["G"]).detach())
    assert G_value > 0 and tick.sums["l2sp_G"] > 0 and tick.sums["l2sp_D"] > 0
