"""GAN losses: non-saturating logistic, lazy R1, path-length regularisation, style mixing.

The split into *phases* follows StyleGAN2-ADA: ``Gmain`` (fool D), ``Greg`` (path-length
penalty), ``Dmain`` (logistic real/fake) and ``Dreg`` (R1 on reals). Regularisers run
*lazily* — only every ``interval`` minibatches — and their loss is multiplied by the
interval, so on average they weigh the same as if applied every step while costing a
fraction (StyleGAN2 paper, appendix B). Every image the discriminator sees, real or
fake, first goes through ``augment_pipe`` when one is given, so augmentations never
leak into the generator's outputs (ADA paper, section 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

AugmentFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StepContext:
    """What a transfer method's ``losses(step)`` may look at in one training phase.

    ``phase`` is "G" (Gmain), "D" (Dmain), "Greg" (path length) or "Dreg" (R1); the term a method
    returns is added to that phase's loss before its backward pass (scaled like it by the lazy
    interval), so a regulariser on G belongs in "G" and one on D in "D".
    """

    phase: str
    G: nn.Module
    D: nn.Module
    cur_nimg: int
    batch_idx: int
    gen_img: torch.Tensor | None = None
    gen_z: torch.Tensor | None = None
    gen_c: torch.Tensor | None = None
    real_img: torch.Tensor | None = None
    real_c: torch.Tensor | None = None
    real_idx: list[int] | None = None  # dataset indices of real_img (per-image latents, e.g. GLO)
    extras: dict[str, Any] = field(default_factory=dict)


def r1_penalty(D: nn.Module, real_img: torch.Tensor, real_c: torch.Tensor | None,
               augment_pipe: AugmentFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample squared gradient norm ``||dD(x)/dx||^2`` at the *un-augmented* reals.

    The gradient flows through the augmentation (which is differentiable), exactly as in
    StyleGAN2-ADA, so R1 regularises D on the data distribution. Returns
    ``(penalty [N], logits [N, 1])``; the loss is ``gamma / 2 * penalty``.
    """
    x = real_img.detach().requires_grad_(True)
    seen = augment_pipe(x) if augment_pipe is not None else x
    logits = D(seen, real_c)
    (grad,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True, only_inputs=True)
    return grad.square().sum(dim=[1, 2, 3]), logits


def ema_beta(batch: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """StyleGAN2-ADA's G_ema decay: a half-life of ``ema_kimg`` thousand images, ramped up.

    With ramp-up the half-life is capped at ``cur_nimg * ema_rampup`` so early snapshots
    are not dominated by the random initialisation.
    """
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup is not None and ema_rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


class GANLoss:
    """Computes and back-propagates the loss of one phase; keeps the path-length EMA.

    ``extra_losses(step)`` (the composed transfer methods) may add terms to every phase
    (``step.phase``: G, D, Greg, Dreg); their values are logged under their own names.
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, augment_pipe: AugmentFn | None = None,
                 r1_gamma: float = 10.0, style_mixing_prob: float = 0.0, pl_weight: float = 0.0,
                 pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 extra_losses: Callable[[StepContext], dict[str, torch.Tensor]] | None = None,
                 on_real_logits: Callable[[torch.Tensor], None] | None = None, loss_type: str = "logistic") -> None:
        if loss_type not in ("logistic", "hinge"):
            raise ValueError(f"loss_type must be 'logistic' or 'hinge', not {loss_type!r}")
        self.G, self.D = G, D
        self.loss_type = loss_type
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.extra_losses = extra_losses
        self.on_real_logits = on_real_logits  # ADA's tuner watches sign(D(real))
        self.pl_mean = torch.zeros([], device=_device_of(G))
        self.cur_nimg = 0
        self.batch_idx = 0
        self.real_idx: list[int] | None = None  # set by the trainer with each real batch

    # -- helpers -----------------------------------------------------------------------------
    def _has_mapping(self) -> bool:
        return hasattr(self.G, "mapping") and hasattr(self.G, "synthesis")

    def run_G(self, z: torch.Tensor, c: torch.Tensor | None, update_emas: bool = False, ws_grad: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate images (and ws for StyleGAN2), with style mixing when enabled.

        ``ws_grad``: the returned ws can be differentiated against even when the mapping network is
        frozen (freeze-mapping, scale-shift), as the path-length penalty needs.
        """
        if not self._has_mapping():
            return self.G(z, c), None
        from gantl.models.stylegan2 import style_mix

        # The one style-mixing implementation (its tests are training's tests).
        ws = style_mix(self.G, z, c, self.style_mixing_prob, update_emas=update_emas)
        if ws_grad and not ws.requires_grad:
            ws = ws.detach().requires_grad_(True)
        return self.G.synthesis(ws), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def _extras(self, step: StepContext) -> tuple[torch.Tensor | float, dict[str, float]]:
        if self.extra_losses is None:
            return 0.0, {}
        terms = self.extra_losses(step)
        total: torch.Tensor | float = 0.0
        stats = {}
        for name, value in terms.items():
            total = total + value
            stats[name] = float(value.detach())
        return total, stats

    # -- phases ------------------------------------------------------------------------------
    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor | None,
                             gen_z: torch.Tensor, gen_c: torch.Tensor | None, gain: float) -> dict[str, float]:
        """Run one phase (``Gmain``, ``Greg``, ``Gboth``, ``Dmain``, ``Dreg``, ``Dboth``) and backprop.

        Returns the scalar statistics of the phase (losses, R1 penalty, logits' signs).
        """
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0 and self._has_mapping()
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0
        stats: dict[str, float] = {}

        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c)
            logits = self.run_D(gen_img, gen_c)
            loss = generator_loss(logits, self.loss_type)
            extra, extra_stats = self._extras(StepContext("G", self.G, self.D, self.cur_nimg, self.batch_idx,
                                                          gen_img=gen_img, gen_z=gen_z, gen_c=gen_c,
                                                          real_img=real_img, real_c=real_c, real_idx=self.real_idx))
            (loss + extra).mul(gain).backward()
            stats.update({"loss_G": float(loss.detach()), "scores_fake_G": float(logits.detach().mean())})
            stats.update(extra_stats)

        if do_Gpl:
            n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, ws = self.run_G(gen_z[:n], gen_c[:n] if gen_c is not None else None, ws_grad=True)
            assert ws is not None
            noise = torch.randn_like(gen_img) / math.sqrt(gen_img.shape[2] * gen_img.shape[3])
            (grads,) = torch.autograd.grad(outputs=[(gen_img * noise).sum()], inputs=[ws], create_graph=True,
                                           only_inputs=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean().detach(), self.pl_decay)
            self.pl_mean.copy_(pl_mean)
            penalty = (lengths - pl_mean).square()
            loss_pl = penalty * self.pl_weight
            extra, extra_stats = self._extras(StepContext("Greg", self.G, self.D, self.cur_nimg, self.batch_idx,
                                                          gen_img=gen_img, gen_z=gen_z[:n],
                                                          gen_c=gen_c[:n] if gen_c is not None else None,
                                                          real_img=real_img, real_c=real_c, real_idx=self.real_idx))
            # Touch gen_img so every synthesis parameter is part of the graph (DDP-friendly).
            ((gen_img[:, 0, 0, 0] * 0 + loss_pl).mean() + extra).mul(gain).backward()
            stats.update({"pl_penalty": float(penalty.detach().mean()), "loss_Gpl": float(loss_pl.detach().mean())})
            stats.update(extra_stats)

        if do_Dmain:
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
            logits_fake = self.run_D(gen_img, gen_c)
            loss_fake = discriminator_loss(logits_fake, real=False, loss_type=self.loss_type)
            loss_fake.mean().mul(gain).backward()
            logits_real = self.run_D(real_img.detach(), real_c)
            loss_real = discriminator_loss(logits_real, real=True, loss_type=self.loss_type)
            extra, extra_stats = self._extras(StepContext("D", self.G, self.D, self.cur_nimg, self.batch_idx,
                                                          gen_img=gen_img, gen_z=gen_z, gen_c=gen_c,
                                                          real_img=real_img, real_c=real_c, real_idx=self.real_idx))
            (loss_real.mean() + extra).mul(gain).backward()
            if self.on_real_logits is not None:
                self.on_real_logits(logits_real.detach())
            stats.update({
                "loss_D": float((loss_fake.mean() + loss_real.mean()).detach()),
                "scores_fake": float(logits_fake.detach().mean()),
                "scores_real": float(logits_real.detach().mean()),
                "signs_real": float(logits_real.detach().sign().mean()),
            })
            stats.update(extra_stats)

        if do_Dr1:
            penalty, logits = r1_penalty(self.D, real_img, real_c, self.augment_pipe)
            loss_r1 = penalty * (self.r1_gamma / 2)
            extra, extra_stats = self._extras(StepContext("Dreg", self.G, self.D, self.cur_nimg, self.batch_idx,
                                                          gen_z=gen_z, gen_c=gen_c, real_img=real_img,
                                                          real_c=real_c, real_idx=self.real_idx))
            ((logits * 0 + loss_r1[:, None]).mean() + extra).mul(gain).backward()
            stats.update({"r1_penalty": float(penalty.detach().mean()), "loss_Dr1": float(loss_r1.detach().mean())})
            stats.update(extra_stats)
            if not do_Dmain:
                stats["signs_real"] = float(logits.detach().sign().mean())
                if self.on_real_logits is not None:
                    self.on_real_logits(logits.detach())
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"pl_mean": self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pl_mean.copy_(torch.as_tensor(state["pl_mean"]))


def generator_loss(logits: torch.Tensor, loss_type: str) -> torch.Tensor:
    """G's adversarial loss on D's logits for fakes (a scalar).

    logistic: the non-saturating ``-log(sigmoid(D(G(z))))`` of Goodfellow et al.;
    hinge: ``-D(G(z))`` (Lim & Ye 2017, SNGAN, BigGAN).
    """
    if loss_type == "hinge":
        return -logits.mean()
    return F.softplus(-logits).mean()


def discriminator_loss(logits: torch.Tensor, *, real: bool, loss_type: str) -> torch.Tensor:
    """D's per-sample loss on real or fake logits.

    logistic: ``-log(sigmoid(D(x)))`` for reals, ``-log(1 - sigmoid(D(G(z))))`` for fakes;
    hinge: ``max(0, 1 - D(x))`` for reals, ``max(0, 1 + D(G(z)))`` for fakes.
    """
    if loss_type == "hinge":
        return F.relu(1.0 - logits) if real else F.relu(1.0 + logits)
    return F.softplus(-logits) if real else F.softplus(logits)


def _device_of(net: nn.Module) -> torch.device:
    for p in net.parameters():
        return p.device
    return torch.device("cpu")


def lazy_optimizer_kwargs(lr: float, betas: tuple[float, float], reg_interval: int | None
                          ) -> tuple[float, tuple[float, float]]:
    """Adam lr and betas adjusted for lazy regularisation (StyleGAN2 appendix B).

    With a regulariser every ``k`` steps, the optimizer sees ``k + 1`` updates per ``k``
    minibatches; scaling lr by ``k/(k+1)`` and raising betas to that power keeps the
    effective schedule the same as unregularised training.
    """
    if not reg_interval or reg_interval <= 0:
        return lr, betas
    ratio = reg_interval / (reg_interval + 1)
    return lr * ratio, (float(np.power(betas[0], ratio)), float(np.power(betas[1], ratio)))
