"""``adafm[:steps]``: adaptive filter modulation of a frozen general part + a new specific part.

Zhao, Cong & Carin (ICML 2020, "On leveraging pretrained GANs for generation with limited data";
official code MiaoyunZhao/GANTransferLimitedData) split the generator in two:

* the **general part**, the high-resolution blocks that draw textures and edges, keeps the source's
  weights frozen; each of its convolutions gets **AdaFM**: for a kernel W (C_out x C_in x k x k)
  learned gamma and beta (C_out x C_in, initialised to 1 and 0) give ``W' = gamma * W + beta``,
  broadcast over the k x k window, so the filters can be re-weighted and shifted per input/output
  channel pair without being relearnt. AdaFM stays frozen for the first ``steps`` iterations
  (official code: 10,000, ``if it == 10000``) and trains after that;
* the **specific part**, the low-resolution blocks that decide layout and content, is replaced by
  new layers trained from scratch ("tailored specific part").

gantl applies this to its own sources: the specific part is every G block (from the constant side)
whose output resolution is at most 1/8 of the image (Zhao's 128 px split: 4, 8 and 16 px new), re-
initialised from the seeded initialisation, and for StyleGAN2 the mapping network trains too (it
plays the role of Zhao's new style MLP); every other G block is frozen and its convolutions (the
modulated 3x3 convs of StyleGAN2 synthesis layers, the (transposed) convs of DCGAN/ResNet blocks)
get AdaFM through a weight parametrization, recorded as a network adapter so snapshots rebuild.
With gamma = 1 and beta = 0 the modulated weight is bitwise the source's (a test checks the output).
Zhao also freezes D's first two blocks; compose with ``freezed:2`` for that.

Pitfall of the official schedule (research notes A6): a run shorter than ``steps`` never trains
AdaFM; ``adafm:100`` suits short CPU runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from gantl.errors import ConfigError
from gantl.models.registry import arch_of, build
from gantl.transfer.base import (
    BaseMethod,
    StepInfo,
    add_adapter,
    int_arg,
    no_more_args,
    register_adapter,
    register_method,
)
from gantl.transfer.freeze import freeze_module

USAGE = "adafm[:steps]"
DEFAULT_STEPS = 10_000  # GANTransferLimitedData: AdaFM unfrozen at iteration 10,000
ADAPTER = "adafm"


class AdaFM(nn.Module):
    """``W -> gamma * W + beta`` with gamma/beta over the first two weight dimensions (Zhao et al. 2020)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(list(shape[:2])))
        self.beta = nn.Parameter(torch.zeros(list(shape[:2])))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        extra = [1] * (weight.ndim - 2)
        return weight * self.gamma.view(*self.gamma.shape, *extra) + self.beta.view(*self.beta.shape, *extra)


def _conv_modules(block: nn.Module, prefix: str) -> list[str]:
    """Names of the modules in ``block`` whose 4-d ``weight`` parameter is a convolution kernel."""
    names = []
    for name, module in block.named_modules():
        weight = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if isinstance(weight, nn.Parameter) and weight.ndim == 4:
            names.append(f"{prefix}.{name}" if name else prefix)
    return names


def split_blocks(G: nn.Module) -> tuple[list[int], list[int]]:
    """(specific, general) block indices of ``G.blocks``: specific = output resolution <= image / 8."""
    blocks = list(getattr(G, "blocks", []) or [])
    if len(blocks) < 2:
        raise ConfigError("adafm needs a generator with ordered 'blocks' (stylegan2, dcgan, resnet)")
    limit = G.img_resolution // 8
    specific = [i for i in range(len(blocks)) if 4 * 2**i <= limit]
    if not specific:
        specific = [0]
    return specific, [i for i in range(len(blocks)) if i not in specific]


def _block_prefix(G: nn.Module, index: int) -> str:
    target = list(G.blocks)[index]
    return next(name for name, module in G.named_modules() if module is target)


@register_adapter(ADAPTER)
def apply_adafm(G: nn.Module, record: dict[str, Any]) -> None:
    """Parametrize the ``weight`` of every module named in ``record`` with :class:`AdaFM`."""
    modules = dict(G.named_modules())
    for name in record["modules"]:
        module = modules.get(name)
        if module is None:
            raise ConfigError(f"adafm adapter names module '{name}', which this network does not have")
        weight = module.weight
        parametrize.register_parametrization(module, "weight", AdaFM(weight.shape).to(weight.device))


class AdaFMMethod(BaseMethod):
    """Frozen general blocks with AdaFM (unfrozen at step N), re-initialised specific blocks (Zhao et al. 2020)."""

    name = "adafm"
    needs_source_g = True
    freezes_g = True
    prepare_order = 0

    def __init__(self, steps: int = DEFAULT_STEPS) -> None:
        self.steps = int(steps)
        self.stage = 1
        self.G: nn.Module | None = None

    def spec(self) -> str:
        return f"{self.name}:{self.steps}"

    def check_with(self, others: Sequence[Any]) -> None:
        for o in others:
            if getattr(o, "freezes_g", False):
                raise ConfigError(f"adafm already decides which G blocks train (new low-res blocks, frozen "
                                  f"AdaFM-modulated ones); --method {o.spec()} contradicts it: drop one of them")

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("adafm modulates a pretrained generator's filters; pass --resume SOURCE (or drop it)")
        self.G = G
        specific, general = split_blocks(G)
        fresh = build(arch_of(G), "G", dict(G.config))  # the seeded initialisation (build_setup seeds prepare)
        for i in specific:
            list(G.blocks)[i].load_state_dict(list(fresh.blocks)[i].state_dict())
        modules: list[str] = []
        for i in general:
            freeze_module(list(G.blocks)[i])
            modules += _conv_modules(list(G.blocks)[i], _block_prefix(G, i))
        add_adapter(G, {"kind": ADAPTER, "modules": modules})
        self._set_adafm_trainable(self.steps == 0)
        if self.steps == 0:
            self.stage = 2

    def _adafm_params(self) -> list[nn.Parameter]:
        assert self.G is not None
        return [m.gamma for m in self.G.modules() if isinstance(m, AdaFM)] + \
            [m.beta for m in self.G.modules() if isinstance(m, AdaFM)]

    def _set_adafm_trainable(self, on: bool) -> None:
        for p in self._adafm_params():
            p.requires_grad_(on)

    def on_step(self, info: StepInfo) -> bool:
        if self.stage == 1 and info.batch_idx >= self.steps:
            self._set_adafm_trainable(True)
            self.stage = 2
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("stage", 1)) == 2:
            self._set_adafm_trainable(True)
            self.stage = 2


@register_method("adafm", usage=USAGE, help="AdaFM (Zhao et al. 2020): frozen high-res G blocks with learned "
                 "per-filter scale/shift (trained from step N, default 10000), low-res blocks re-initialised")
def _make(args: list[str]) -> AdaFMMethod:
    no_more_args(args, 1, USAGE)
    return AdaFMMethod(int_arg(args, 0, "adafm", default=DEFAULT_STEPS))

