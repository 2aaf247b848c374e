"""``fd[:lambda[:block]]``: feature distillation from the frozen source discriminator.

The Park et al. survey ("How to train your pre-trained GAN models"; FreezeD code base,
``stylegan/finetune.py``, ``FM_reg``) regularises a fine-tuned discriminator by keeping its
intermediate features on real images close to those of the frozen source D:

    L_D += lambda * mean_{n,c,h,w} (phi_b(D(x)) - phi_b(D_source(x)))^2

on the same real batch x, at one block b. All of D trains; G is unchanged. FreezeD counts the block
from the *top* (``feature_loc``, 0 = the highest block below the output, default 3), so here
``block`` 0 is the output of ``D.blocks[-2]`` (the last block before the output head), 1 the one
before, and so on toward the image. The same index therefore names the same depth below the
decision layer at every resolution; a small D (32 px StyleGAN2 has three feature blocks) cannot
go as deep as 3, so the *default* falls back to the deepest block available and says so, while an
explicit ``fd:1:3`` that does not fit is refused naming the largest valid value.

Defaults: FreezeD's ``lambda_FM`` is 0 (off) and the survey's value is not published (research notes
A3), so ``lambda = 1`` is gantl's own choice. The real images are the un-augmented batch (the
features of the *data* are what should transfer), and the source D runs in the same (training)
mode as D, so before the first update the term is exactly zero for StyleGAN2 and DCGAN (batch
statistics of the same batch) and near zero for the ResNet D (its spectral-norm power iteration has
run two more steps in D than in the copy). The copy's buffers (power iterates, batch-norm
statistics) are part of the method's state for an exact resume.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gantl.errors import ConfigError
from gantl.transfer.base import (
    BaseMethod,
    buffers_state,
    float_arg,
    int_arg,
    load_buffers_state,
    no_more_args,
    register_method,
)

log = logging.getLogger("gantl")

USAGE = "fd[:lambda[:block]]"
DEFAULT_LAMBDA = 1.0
DEFAULT_BLOCK = 3  # FreezeD's feature_loc


def feature_blocks(D: nn.Module) -> list[nn.Module]:
    """D's blocks below the output head, from the image side."""
    blocks = getattr(D, "blocks", None)
    if blocks is None or len(list(blocks)) < 2:
        raise ConfigError("fd needs a discriminator with ordered 'blocks' (stylegan2, dcgan, resnet)")
    return list(blocks)[:-1]


def block_features(D: nn.Module, block: nn.Module, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """The output of ``block`` (one of ``D.blocks``) when D sees ``img`` (StyleGAN2 blocks return (x, img))."""
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = block.register_forward_hook(hook)
    try:
        D(img, c)
    finally:
        handle.remove()
    return captured[0]


class FeatureDistillation(BaseMethod):
    """Match D's block features on reals to the frozen source D's (Park et al. survey, FreezeD ``FM_reg``)."""

    name = "fd"
    prepare_order = -1  # anchors/copies the source before other methods change the networks
    needs_source_d = True

    def __init__(self, lam: float = DEFAULT_LAMBDA, block: int | None = None) -> None:
        self.lam = float(lam)
        self.block = block  # None: FreezeD's default, clamped to the deepest block available
        self.index: int | None = None  # position in D.blocks, set by prepare
        self.d_src: nn.Module | None = None

    def spec(self) -> str:
        return f"{self.name}:{self.lam:g}" + (f":{self.block}" if self.block is not None else "")

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("fd distils from the source's discriminator; pass --resume SOURCE (or drop fd)")
        n = len(feature_blocks(D))
        loc = DEFAULT_BLOCK if self.block is None else self.block
        if loc >= n:
            if self.block is not None:
                raise ConfigError(f"fd:{self.lam:g}:{self.block} asks for block {self.block} from the top, but this "
                                  f"discriminator has {n} blocks below its output; use fd:{self.lam:g}:{n - 1} or less")
            log.info("fd: this discriminator has %d blocks below its output; distilling at block %d (FreezeD's "
                     "default %d does not fit)", n, n - 1, DEFAULT_BLOCK)
            loc = n - 1
        self.index = n - 1 - loc
        self.d_src = copy.deepcopy(D).requires_grad_(False)

    def check_prepared(self, G: nn.Module, D: nn.Module) -> None:
        """Distilling a block that cannot move (every layer up to it frozen, e.g. by freezed:K) does nothing."""
        if self.index is None:
            return
        params = [p for block in list(D.blocks)[: self.index + 1] for p in block.parameters()]
        if params and not any(p.requires_grad for p in params):
            loc = len(feature_blocks(D)) - 1 - self.index
            raise ConfigError(f"{self.spec()} distils D block {loc} from the top, but every layer up to it is frozen "
                              f"(freezed/partial), so the term cannot change D; pick a block nearer the output "
                              f"(fd:{self.lam:g}:{max(loc - 1, 0)}) or freeze fewer D blocks")

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        if step.phase != "D" or step.real_img is None or self.d_src is None or self.index is None:
            return {}
        D = step.D
        device = step.real_img.device
        if next(self.d_src.parameters()).device != device:
            self.d_src.to(device)
        self.d_src.train(D.training)
        with torch.no_grad():
            target = block_features(self.d_src, list(self.d_src.blocks)[self.index], step.real_img, step.real_c)
        feats = block_features(D, list(D.blocks)[self.index], step.real_img, step.real_c)
        return {"fd_D": self.lam * F.mse_loss(feats, target)}

    def state_dict(self) -> dict[str, Any]:
        return buffers_state(self.d_src)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_buffers_state(self.d_src, state)


@register_method("fd", usage=USAGE, help="feature distillation (Park et al. survey): lambda x MSE between D's and "
                 "the frozen source D's features on reals at block N from the top (defaults 1, 3)")
def _make(args: list[str]) -> FeatureDistillation:
    no_more_args(args, 2, USAGE)
    lam = float_arg(args, 0, "fd", DEFAULT_LAMBDA)
    block = int_arg(args, 1, "fd", default=-1)
    return FeatureDistillation(lam, None if block < 0 else block)
