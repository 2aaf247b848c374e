"""``ewc[:lambda]``: elastic weight consolidation for few-shot GAN adaptation.

Li, Zhang, Lu & Shechtman (NeurIPS 2020, "Few-shot image generation with elastic weight
consolidation") fine-tune all of G and D but add to the generator's loss

    lambda * sum_i F_i * (theta_i - theta_S,i)^2

where ``theta_S`` are the source generator's weights and ``F_i`` is the Fisher information of
weight i: the expected *squared* gradient of the log-likelihood the source discriminator assigns
to the source generator's samples, ``log sigmoid(D_S(G_S(z)))``. Weights that matter for what the
source generates (large F) stay put; the rest adapt freely.

How gantl estimates F (research notes A10): no official code exists; Sony's nnabla
re-implementation accumulates log-likelihood gradients over 100 iterations and uses
``lambda = 1e2``. Its accumulator sums the raw gradients, not their squares, so its "Fisher" can be
negative and the penalty non-convex; here the gradients are squared, so every F_i >= 0 (a test
checks it). F is the mean, over :data:`FISHER_BATCHES` minibatches of :data:`FISHER_BATCH` latents
drawn from a generator seeded by :data:`FISHER_SEED` (no global RNG moves), of the squared gradient
of the minibatch's mean log-likelihood. Unlike Sony (convolution weights only) every trainable G
parameter is anchored, as in the paper. F and theta_S are part of the method's state, so
``--resume-run`` continues with exactly the same penalty.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gantl.errors import ConfigError
from gantl.transfer.base import BaseMethod, float_arg, no_more_args, register_method

log = logging.getLogger("gantl")

USAGE = "ewc[:lambda]"
DEFAULT_LAMBDA = 100.0  # Sony nnabla-examples stylegan2-ewc configs/few_shot.yaml
FISHER_BATCHES = 25
FISHER_BATCH = 4
FISHER_SEED = 1234


def fisher_information(G: nn.Module, D: nn.Module, *, batches: int = FISHER_BATCHES, batch: int = FISHER_BATCH,
                       seed: int = FISHER_SEED) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of G's parameters: mean over batches of ``(d/dtheta mean log sigmoid(D(G(z))))^2``.

    Every parameter of G is included (frozen ones too: F does not depend on what trains). Both
    networks are left as they were (requires_grad flags, weights, and buffers such as batch-norm
    statistics, which the training-mode forward passes would otherwise move).
    """
    params = dict(G.named_parameters())
    flags = {n: p.requires_grad for n, p in params.items()}
    d_flags = [p.requires_grad for p in D.parameters()]
    device = next(iter(params.values())).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    # batch-norm statistics and spectral-norm power iterations move on every training-mode forward
    buffers = [(b, b.detach().clone()) for net in (G, D) for b in net.buffers()]
    try:
        for p in params.values():
            p.requires_grad_(True)
        D.requires_grad_(False)
        names = list(params)
        for _ in range(batches):
            z = torch.randn([batch, G.z_dim], generator=gen).to(device)
            c = None
            if c_dim:
                c = F.one_hot(torch.randint(c_dim, [batch], generator=gen), c_dim).float().to(device)
            loglik = -F.softplus(-D(G(z, c), c)).mean()  # log sigmoid(D(G(z)))
            grads = torch.autograd.grad(loglik, [params[n] for n in names], allow_unused=True)
            for n, g in zip(names, grads, strict=True):
                if g is not None:
                    fisher[n] += g.detach().square()
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for n, p in params.items():
            p.requires_grad_(flags[n])
        for p, flag in zip(D.parameters(), d_flags, strict=True):
            p.requires_grad_(flag)
    return {n: f / batches for n, f in fisher.items()}


def ewc_penalty(net: nn.Module, anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum_i F_i (theta_i - theta_S,i)^2`` over ``net``'s trainable parameters."""
    total: torch.Tensor | None = None
    for name, p in net.named_parameters():
        if not p.requires_grad or name not in fisher:
            continue
        term = (fisher[name] * (p - anchor[name]).square()).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros([])


class EWC(BaseMethod):
    """Fisher-weighted anchor of G to the source (Li et al. 2020)."""

    name = "ewc"
    prepare_order = -1  # anchors/copies the source before other methods change the networks
    needs_source_g = True
    needs_source_d = True  # F is measured with the source's D

    def __init__(self, lam: float = DEFAULT_LAMBDA) -> None:
        self.lam = float(lam)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def spec(self) -> str:
        return f"{self.name}:{self.lam:g}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("ewc measures the Fisher information of a source; pass --resume SOURCE (or drop ewc)")
        self.anchor = {n: p.detach().clone() for n, p in G.named_parameters()}
        self.fisher = fisher_information(G, D)
        values = torch.cat([f.flatten() for f in self.fisher.values()])
        log.info("ewc: Fisher of %d G weights from %d source samples: mean %.3g, max %.3g", values.numel(),
                 FISHER_BATCHES * FISHER_BATCH, float(values.mean()), float(values.max()))

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        if step.phase != "G":
            return {}
        device = next(iter(step.G.parameters())).device
        if self.anchor and next(iter(self.anchor.values())).device != device:  # once, after the move to a GPU
            self.anchor = {n: a.to(device) for n, a in self.anchor.items()}
            self.fisher = {n: f.to(device) for n, f in self.fisher.items()}
        return {"ewc_G": self.lam * ewc_penalty(step.G, self.anchor, self.fisher)}

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": {n: f.cpu() for n, f in self.fisher.items()},
                "anchor": {n: a.cpu() for n, a in self.anchor.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        device = next(iter(self.anchor.values())).device if self.anchor else torch.device("cpu")
        self.fisher = {n: torch.as_tensor(f).to(device) for n, f in state["fisher"].items()}
        self.anchor = {n: torch.as_tensor(a).to(device) for n, a in state["anchor"].items()}


@register_method("ewc", usage=USAGE, help="EWC (Li et al. 2020): lambda x sum F (w - w_source)^2 on G, F = "
                 "squared gradients of log D_source(G_source(z)) (default 100)")
def _make(args: list[str]) -> EWC:
    no_more_args(args, 1, USAGE)
    return EWC(float_arg(args, 0, "ewc", DEFAULT_LAMBDA))
