"""G_ema: the exponential moving average of the generator's weights.

Snapshots and image grids use G_ema because averaging over the last few thousand
images removes most of the step-to-step jitter of adversarial training. The decay
is expressed as a half-life in thousands of images (``ema_kimg``) so it does not
depend on the batch size, with StyleGAN2-ADA's optional ramp-up (see
:func:`gantl.training.losses.ema_beta`). Buffers (batch-norm statistics, w_avg) are
copied, not averaged: they are already running averages.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gantl.training.losses import ema_beta


def make_ema(G: nn.Module) -> nn.Module:
    """A frozen, eval-mode deep copy of ``G``."""
    G_ema = copy.deepcopy(G).eval()
    G_ema.requires_grad_(False)
    return G_ema


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """``p_ema <- p + beta * (p_ema - p)`` for parameters; buffers copied from ``G``."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b.detach())


def step_ema(G_ema: nn.Module, G: nn.Module, *, batch: int, cur_nimg: int, ema_kimg: float,
             ema_rampup: float | None) -> float:
    """Update G_ema after a step of ``batch`` images at ``cur_nimg``; returns the beta used."""
    beta = ema_beta(batch, cur_nimg, ema_kimg, ema_rampup)
    update_ema(G_ema, G, beta)
    return beta
