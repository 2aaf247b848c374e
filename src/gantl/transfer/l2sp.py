"""``l2sp[:lambda_g[:lambda_d]]``: pull every trained weight toward its value in the source.

L2-SP (Li, Grandvalet & Davoine, ICML 2018, "Explicit inductive bias for transfer learning with
convolutional networks") regularises fine-tuning with ``alpha/2 * ||w - w0||^2`` instead of weight
decay toward zero: the source's weights ``w0`` are the prior. For GANs it is the baseline of the
Park et al. survey ("How to train your pre-trained GAN models", FreezeD code base,
``stylegan/finetune.py``), whose convention gantl follows exactly:

    Omega(net) = sum over parameter tensors t of  mean_i (theta_t,i - theta0_t,i)^2

i.e. each tensor's per-element mean squared difference, summed over tensors, so every tensor weighs
the same whatever its size (a lambda ported from a ``sum ||.||^2`` implementation means something
else, by up to the tensor size). ``lambda_g * Omega(G)`` is added to the generator's main loss and
``lambda_d * Omega(D)`` to the discriminator's.

Defaults: FreezeD's code has ``lambda_l2_G = lambda_l2_D = 0`` (off), and the values used in the
survey are not published (research notes A2), so gantl's default ``lambda_g = 1`` is its own
choice, and ``lambda_d`` defaults to ``lambda_g``; ``l2sp:1:0`` anchors G only. Frozen tensors are
skipped (they cannot move) and so are parameters that did not come from the source (modules added
by other methods, e.g. scale/shift): they have no prior. The anchors are the network's weights
right after the source was loaded; they are kept in memory, not in the training state, because
``--resume-run`` reloads the same source.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gantl.errors import ConfigError
from gantl.transfer.base import BaseMethod, float_arg, no_more_args, register_method

USAGE = "l2sp[:lambda_g[:lambda_d]]"


def anchor_of(net: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter of ``net``: the prior the regulariser pulls toward."""
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def l2sp_penalty(net: nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum_t mean((theta_t - theta0_t)^2)`` over ``net``'s trainable parameters that have an anchor."""
    total: torch.Tensor | None = None
    for name, p in net.named_parameters():
        ref = anchor.get(name)
        if ref is None or not p.requires_grad:
            continue
        term = (p - ref).square().mean()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros([], device=next(iter(net.parameters())).device)
    return total


class L2SP(BaseMethod):
    """Anchor G and/or D to the source's weights with FreezeD's per-tensor-mean L2 penalty."""

    name = "l2sp"
    prepare_order = -1  # anchors/copies the source before other methods change the networks

    def __init__(self, lambda_g: float = 1.0, lambda_d: float | None = None) -> None:
        self.lambda_g = float(lambda_g)
        self.lambda_d = float(lambda_g if lambda_d is None else lambda_d)
        if self.lambda_g == 0 and self.lambda_d == 0:
            raise ConfigError("l2sp:0:0 anchors nothing; give a positive lambda_g or lambda_d, e.g. l2sp:1")
        self.anchors: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def needs_source_g(self) -> bool:  # type: ignore[override]
        """Anchoring G to a random initialisation is weight decay toward noise, not transfer."""
        return self.lambda_g > 0

    @property
    def needs_source_d(self) -> bool:  # type: ignore[override]
        return self.lambda_d > 0

    def spec(self) -> str:
        return f"{self.name}:{self.lambda_g:g}:{self.lambda_d:g}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("l2sp pulls weights toward a source's; pass --resume SOURCE (or drop l2sp)")
        self.anchors = {}
        if self.lambda_g > 0:
            self.anchors["G"] = anchor_of(G)
        if self.lambda_d > 0:
            self.anchors["D"] = anchor_of(D)

    def _on_device(self, key: str, net: nn.Module) -> dict[str, torch.Tensor]:
        """The anchors of ``key``, moved once to where ``net`` lives (prepare runs before the move to a GPU)."""
        anchor = self.anchors[key]
        device = next(iter(net.parameters())).device
        if anchor and next(iter(anchor.values())).device != device:
            anchor = self.anchors[key] = {n: a.to(device) for n, a in anchor.items()}
        return anchor

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        if step.phase == "G" and self.lambda_g > 0:
            return {"l2sp_G": self.lambda_g * l2sp_penalty(step.G, self._on_device("G", step.G))}
        if step.phase == "D" and self.lambda_d > 0:
            return {"l2sp_D": self.lambda_d * l2sp_penalty(step.D, self._on_device("D", step.D))}
        return {}


@register_method("l2sp", usage=USAGE, help="L2-SP (Li et al. 2018): lambda x sum over tensors of mean "
                 "(w - w_source)^2 on G and D (defaults 1, lambda_d = lambda_g)")
def _make(args: list[str]) -> L2SP:
    no_more_args(args, 2, USAGE)
    lambda_g = float_arg(args, 0, "l2sp", 1.0, allow_zero=True)
    lambda_d = float_arg(args, 1, "l2sp", lambda_g, allow_zero=True)
    return L2SP(lambda_g, lambda_d)
