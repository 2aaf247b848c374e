"""EWC: the Fisher is the mean squared log-likelihood gradient (never negative), checked analytically."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gantl.checkpoints.format import load_checkpoint
from gantl.training.losses import StepContext
from gantl.transfer.base import parse_method
from gantl.transfer.ewc import EWC, ewc_penalty, fisher_information


class ScalarG(nn.Module):
    """G(z) = w * z[:, :1] as a 1x1 'image'; a running buffer that a forward moves."""

    z_dim = 2
    c_dim = 0

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.register_buffer("calls", torch.zeros([]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        return (self.w * z[:, :1]).reshape(-1, 1, 1, 1)


class IdentityD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.ones([]))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return img.reshape(-1, 1)


def test_fisher_matches_the_analytic_squared_gradient_and_restores_the_networks() -> None:
    G, D = ScalarG(0.7), IdentityD()
    G.w.requires_grad_(False)  # frozen or not, F is measured for every G weight
    fisher = fisher_information(G, D, batches=3, batch=5, seed=11)
    gen = torch.Generator().manual_seed(11)
    expected = 0.0
    for _ in range(3):
        z = torch.randn([5, 2], generator=gen)[:, 0]
        # d/dw mean log sigmoid(w z) = mean sigmoid(-w z) z
        expected += float((torch.sigmoid(-0.7 * z) * z).mean()) ** 2
    assert float(fisher["w"]) == pytest.approx(expected / 3, rel=1e-5)
    assert float(fisher["w"]) > 0
    assert not G.w.requires_grad and D.unused.requires_grad  # flags back as they were
    assert float(G.calls) == 0  # buffers restored (batch-norm statistics must not move)


def test_fisher_of_the_bundled_stylegan2_source_is_non_negative_and_informative() -> None:
    ckpt = load_checkpoint(_zoo("cifar9-stylegan2-32"))
    G, D = ckpt.build("G"), ckpt.build("D")
    before = {k: v.clone() for k, v in G.state_dict().items()}
    fisher = fisher_information(G, D, batches=2, batch=2)
    values = torch.cat([f.flatten() for f in fisher.values()])
    assert values.min() >= 0 and values.max() > 0
    assert set(fisher) == {n for n, _ in G.named_parameters()}
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())


def _zoo(name: str):
    from gantl.checkpoints import zoo

    return zoo.resolve(name)


def test_penalty_by_hand_and_state_round_trip() -> None:
    G, D = ScalarG(1.0), IdentityD()
    method = parse_method("ewc:3")
    assert isinstance(method, EWC) and method.spec() == "ewc:3"
    method.prepare(G, D, source=SimpleNamespace())
    fisher = float(method.fisher["w"])
    with torch.no_grad():
        G.w.fill_(1.5)
    step = StepContext("G", G, D, cur_nimg=0, batch_idx=0)
    value = float(method.losses(step)["ewc_G"].detach())
    assert value == pytest.approx(3 * fisher * 0.5**2)
    assert float(ewc_penalty(G, method.anchor, method.fisher).detach()) == pytest.approx(fisher * 0.25)
    step.phase = "D"
    assert method.losses(step) == {}
    # a resumed method gets F and the anchor from the training state, not from a new Fisher pass
    other = EWC(3.0)
    other.load_state_dict(method.state_dict())
    step.phase = "G"
    assert float(other.losses(step)["ewc_G"].detach()) == pytest.approx(value)
    assert method.needs_source_g and method.needs_source_d

