"""Losses checked against hand-computed values: R1, logistic terms, EMA beta, lazy-reg Adam settings."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantl.training.ema import make_ema, update_ema
from gantl.training.losses import GANLoss, ema_beta, lazy_optimizer_kwargs, r1_penalty


class LinearD(nn.Module):
    """D(x) = sum(w * x): its input gradient is w for every sample, so R1 = ||w||^2."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape) / 10)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return (x * self.w).sum(dim=[1, 2, 3])[:, None]


def test_r1_penalty_linear_d() -> None:
    D = LinearD((1, 2, 2))
    x = torch.randn(3, 1, 2, 2)
    penalty, logits = r1_penalty(D, x, None)
    expected = float((D.w.detach() ** 2).sum())  # 0 + .01 + .04 + .09 = 0.14
    assert expected == pytest.approx(0.14)
    torch.testing.assert_close(penalty, torch.full((3,), expected))
    torch.testing.assert_close(logits, (x * D.w).sum(dim=[1, 2, 3])[:, None])


def test_r1_through_augmentation() -> None:
    """R1 is taken w.r.t. the un-augmented reals; with aug(x) = 2x the gradient is 2w."""
    D = LinearD((1, 2, 2))
    penalty, _ = r1_penalty(D, torch.randn(2, 1, 2, 2), None, augment_pipe=lambda x: 2 * x)
    torch.testing.assert_close(penalty, torch.full((2,), 4 * 0.14))


def test_dreg_phase_gradient_is_lazy_scaled() -> None:
    """Dreg backprops gain * gamma/2 * ||w||^2: d/dw = gain * gamma * w (per sample mean)."""
    D = LinearD((1, 2, 2))
    G = nn.Linear(1, 1)
    loss = GANLoss(G, D, r1_gamma=10.0)
    x = torch.randn(4, 1, 2, 2)
    stats = loss.accumulate_gradients("Dreg", x, None, torch.randn(4, 1), None, gain=16)
    assert stats["r1_penalty"] == pytest.approx(0.14, rel=1e-6)
    assert stats["loss_Dr1"] == pytest.approx(10 / 2 * 0.14, rel=1e-6)
    torch.testing.assert_close(D.w.grad, 16 * 10.0 * D.w.detach())


def test_logistic_losses_values() -> None:
    """Dmain = softplus(D(fake)) + softplus(-D(real)); Gmain = softplus(-D(G(z)))."""

    class ConstG(nn.Module):
        z_dim = 1

        def forward(self, z, c=None):
            return torch.zeros(z.shape[0], 1, 2, 2) + z[:, :, None, None]

    D = LinearD((1, 2, 2))
    loss = GANLoss(ConstG(), D, r1_gamma=0)
    z = torch.full((2, 1), 0.5)
    real = torch.ones(2, 1, 2, 2)
    stats = loss.accumulate_gradients("Dmain", real, None, z, None, gain=1)
    fake_logit = 0.5 * float(D.w.detach().sum())  # 0.5 * 0.6
    real_logit = float(D.w.detach().sum())
    expected = math.log1p(math.exp(fake_logit)) + math.log1p(math.exp(-real_logit))
    assert stats["loss_D"] == pytest.approx(expected, rel=1e-6)
    D.w.grad = None
    stats = loss.accumulate_gradients("Gmain", real, None, z, None, gain=1)
    assert stats["loss_G"] == pytest.approx(math.log1p(math.exp(-fake_logit)), rel=1e-6)


def test_ema_beta_formula() -> None:
    # no ramp-up: half-life of 10 kimg at batch 32 -> 0.5 ** (32 / 10000)
    assert ema_beta(32, 5_000_000, 10, None) == pytest.approx(0.5 ** (32 / 10_000))
    # ramp-up caps the half-life at cur_nimg * rampup: 0.05 * 64000 = 3200 images
    assert ema_beta(64, 64_000, 500, 0.05) == pytest.approx(0.5 ** (64 / 3200))
    # late in training the ramp-up no longer binds
    assert ema_beta(64, 100_000_000, 500, 0.05) == pytest.approx(0.5 ** (64 / 500_000))
    # at step 0 with ramp-up the average is a plain copy
    assert ema_beta(64, 0, 500, 0.05) == 0.0
    # after one half-life of images the old weights count half
    beta = ema_beta(100, 10**9, 1, None)
    assert beta ** 10 == pytest.approx(0.5)


def test_update_ema_lerps_params_and_copies_buffers() -> None:
    G = nn.BatchNorm1d(2)
    G_ema = make_ema(G)
    with torch.no_grad():
        G.weight.fill_(3.0)
        G.running_mean.fill_(7.0)
    update_ema(G_ema, G, 0.25)
    torch.testing.assert_close(G_ema.weight, torch.full((2,), 3.0 + 0.25 * (1.0 - 3.0)))
    torch.testing.assert_close(G_ema.running_mean, torch.full((2,), 7.0))
    assert not any(p.requires_grad for p in G_ema.parameters())


def test_lazy_regularisation_adam_settings() -> None:
    lr, betas = lazy_optimizer_kwargs(0.0025, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0025 * 16 / 17)
    assert betas == (0.0, pytest.approx(0.99 ** (16 / 17)))
    assert lazy_optimizer_kwargs(0.1, (0.5, 0.9), None) == (0.1, (0.5, 0.9))
