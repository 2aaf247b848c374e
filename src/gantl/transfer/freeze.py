"""Freezing transfer methods: ``freezed:K``, ``freezeg:K``, ``partial:KD[:KG]``, ``freeze-mapping``.

* FreezeD (Mo et al. 2020): the first K discriminator blocks *from the image side* keep
  the source's weights — low-level features transfer, only the decision layers adapt.
* FreezeG: the first K synthesis blocks *from the constant side* keep the source's
  weights, so the coarse layout stays and only finer scales adapt.
* partial: both at once (``partial:4`` freezes 4 blocks of each; ``partial:4:2`` freezes
  4 D blocks and 2 G blocks).
* freeze-mapping: StyleGAN2's mapping network stays fixed (the W space is kept).

Frozen tensors get ``requires_grad=False`` and therefore never enter an optimizer
(see :func:`gantl.transfer.base.compose_param_groups`), so no update, Adam moment or
weight decay can touch them. Batch-norm layers inside frozen blocks (DCGAN) also stop
updating their running statistics (momentum 0), so *every* tensor of a frozen block is
bitwise unchanged; they still normalise with the batch statistics while training.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gantl.errors import ConfigError
from gantl.transfer.base import BaseMethod, int_arg, register_method


def freeze_module(module: nn.Module) -> None:
    """Stop gradients and running-statistic updates for every tensor in ``module``."""
    module.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0


def _blocks(net: nn.Module, what: str) -> list[nn.Module]:
    blocks = getattr(net, "blocks", None)
    if blocks is None:
        raise ConfigError(f"the {what} has no ordered 'blocks'; it cannot be frozen block-wise")
    return list(blocks)


def freeze_first_blocks(net: nn.Module, k: int, what: str, method: str) -> None:
    blocks = _blocks(net, what)
    if k > len(blocks):
        raise ConfigError(f"{method}:{k} asks for {k} blocks but the {what} has only {len(blocks)}; "
                          f"use {method}:{len(blocks)} or fewer")
    for block in blocks[:k]:
        freeze_module(block)


class FreezeD(BaseMethod):
    name = "freezed"

    def __init__(self, k: int) -> None:
        self.k = int(k)

    @property
    def needs_source_d(self) -> bool:  # type: ignore[override]
        """Frozen D blocks are only worth keeping when they hold the source's weights."""
        return self.k > 0

    def spec(self) -> str:
        return f"{self.name}:{self.k}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        freeze_first_blocks(D, self.k, "discriminator", self.name)


class FreezeG(BaseMethod):
    name = "freezeg"

    def __init__(self, k: int) -> None:
        self.k = int(k)

    @property
    def needs_source_g(self) -> bool:  # type: ignore[override]
        return self.k > 0

    @property
    def freezes_g(self) -> bool:
        """Whether part of G is frozen (methods that later unfreeze all of G refuse to combine)."""
        return self.k > 0

    def spec(self) -> str:
        return f"{self.name}:{self.k}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        freeze_first_blocks(G, self.k, "generator", self.name)


class Partial(BaseMethod):
    name = "partial"

    def __init__(self, k_d: int, k_g: int) -> None:
        self.k_d, self.k_g = int(k_d), int(k_g)

    @property
    def needs_source_d(self) -> bool:  # type: ignore[override]
        return self.k_d > 0

    @property
    def needs_source_g(self) -> bool:  # type: ignore[override]
        return self.k_g > 0

    @property
    def freezes_g(self) -> bool:
        return self.k_g > 0

    def spec(self) -> str:
        return f"{self.name}:{self.k_d}:{self.k_g}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        freeze_first_blocks(D, self.k_d, "discriminator", self.name)
        freeze_first_blocks(G, self.k_g, "generator", self.name)


class FreezeMapping(BaseMethod):
    name = "freeze-mapping"
    needs_source_g = True
    freezes_g = True

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        mapping = getattr(G, "mapping", None)
        if not isinstance(mapping, nn.Module):
            raise ConfigError("freeze-mapping needs a generator with a mapping network (StyleGAN2); "
                              "drop it for DCGAN")
        freeze_module(mapping)


@register_method("freezed", usage="freezed:K", help="FreezeD (Mo et al. 2020): keep the first K D blocks "
                 "(image side) at the source's weights")
def _freezed(args: list[str]) -> FreezeD:
    return FreezeD(int_arg(args, 0, "freezed"))


@register_method("freezeg", usage="freezeg:K", help="keep the first K G blocks (constant side) at the source's "
                 "weights")
def _freezeg(args: list[str]) -> FreezeG:
    return FreezeG(int_arg(args, 0, "freezeg"))


@register_method("partial", usage="partial:KD[:KG]", help="freeze KD D blocks and KG G blocks (KG defaults to KD)")
def _partial(args: list[str]) -> Partial:
    k_d = int_arg(args, 0, "partial")
    return Partial(k_d, int_arg(args, 1, "partial", default=k_d))


@register_method("freeze-mapping", help="keep StyleGAN2's mapping network (the W space) fixed")
def _freeze_mapping(args: list[str]) -> FreezeMapping:
    if args:
        raise ConfigError("freeze-mapping takes no arguments; write --method freeze-mapping")
    return FreezeMapping()
