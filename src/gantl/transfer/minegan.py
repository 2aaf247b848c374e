"""``minegan[:steps]``: a miner network in front of the frozen generator, G unfrozen after N steps.

MineGAN (Wang, Gonzalez-Garcia, Berga, Herranz, Khan & van de Weijer, CVPR 2020; official code
yaxingwang/MineGAN) adapts a pretrained generator by first learning *where in its latent space*
the target lives: a small miner M maps z to a new latent, and the adversarial loss trains M and D
through the frozen G (stage 1). Only then is G unfrozen and trained jointly with M and D (stage 2).
With few target images this moves the samples toward the target before any generator weight can
overfit.

As in the official StyleGAN2 port (``styleGANv2/model.py``, ``Miner``): M = Linear(z, z) - ReLU -
Linear(z, z) with PyTorch's default initialisation, applied to every z before the mapping network
(StyleGAN2; ``G.mapping.miner``) or before the generator (DCGAN, ResNet; ``G.miner``). The stage
switch defaults to the official ``step_dis = 1000`` G steps. The miner is recorded as a network
adapter, so snapshots (and G_ema, which averages the miner too) rebuild with
:meth:`Checkpoint.build` and sample through the miner in ``gantl generate``/``gantl eval``.

The stage is the method's state, so ``--resume-run`` continues in the right stage with the
optimiser groups it had. Stage 2 unfreezes *all* of G, so methods that keep parts of G frozen
(freezeg, partial with KG > 0, freeze-mapping, scale-shift) are refused in combination.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from gantl.errors import ConfigError
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

USAGE = "minegan[:steps]"
DEFAULT_STEPS = 1000  # yaxingwang/MineGAN styleGANv2/train.py: step_dis
ADAPTER = "miner"


def _miner_target(G: nn.Module) -> nn.Module:
    """Where z enters: StyleGAN2's mapping network, else the generator itself."""
    mapping = getattr(G, "mapping", None)
    return mapping if isinstance(mapping, nn.Module) else G


def _mine_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Replace the latent z (first argument or ``z=``) by ``miner(z)`` (module-level: deep copies keep it)."""
    if args and args[0] is not None:
        args = (module.miner(args[0]), *args[1:])
    elif kwargs.get("z") is not None:
        kwargs = {**kwargs, "z": module.miner(kwargs["z"])}
    return args, kwargs


@register_adapter(ADAPTER)
def apply_miner(G: nn.Module, record: dict[str, Any]) -> None:
    """Add ``miner`` (Linear-ReLU-Linear on z) where z enters ``G`` and route z through it."""
    z_dim = int(record["z_dim"])
    if int(getattr(G, "z_dim", -1)) != z_dim:
        raise ConfigError(f"miner adapter is for z_dim {z_dim}, but this generator has z_dim {G.z_dim}")
    target = _miner_target(G)
    device = next(iter(G.parameters())).device
    target.miner = nn.Sequential(nn.Linear(z_dim, z_dim), nn.ReLU(), nn.Linear(z_dim, z_dim)).to(device)
    target.register_forward_pre_hook(_mine_hook, with_kwargs=True)


class MineGAN(BaseMethod):
    """Miner first (G frozen), then G too (Wang et al. 2020)."""

    name = "minegan"
    needs_source_g = True
    prepare_order = 0

    def __init__(self, steps: int = DEFAULT_STEPS) -> None:
        self.steps = int(steps)
        self.stage = 1
        self.G: nn.Module | None = None
        self._momenta: dict[str, float | None] = {}

    def spec(self) -> str:
        return f"{self.name}:{self.steps}"

    def check_with(self, others: Sequence[Any]) -> None:
        for o in others:
            if getattr(o, "freezes_g", False):
                raise ConfigError(f"minegan unfreezes all of G after {self.steps} steps, which would undo "
                                  f"--method {o.spec()}; drop one of them")

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("minegan mines a pretrained generator's latent space; pass --resume SOURCE "
                              "(or drop minegan)")
        self.G = G
        self._momenta = {n: m.momentum for n, m in G.named_modules()
                         if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        freeze_module(G)
        add_adapter(G, {"kind": ADAPTER, "z_dim": int(G.z_dim)})
        _miner_target(G).miner.requires_grad_(True)
        if self.steps == 0:
            self._unfreeze()

    def _unfreeze(self) -> None:
        assert self.G is not None
        self.G.requires_grad_(True)
        for n, m in self.G.named_modules():  # freeze_module stopped batch-norm statistics; stage 2 moves them
            if n in self._momenta:
                m.momentum = self._momenta[n]
        self.stage = 2

    def on_step(self, info: StepInfo) -> bool:
        if self.stage == 1 and info.batch_idx >= self.steps:
            self._unfreeze()
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("stage", 1)) == 2 and self.stage == 1:
            self._unfreeze()


@register_method("minegan", usage=USAGE, help="MineGAN (Wang et al. 2020): a miner MLP on z trains through the "
                 "frozen G, G joins after N steps (default 1000)")
def _make(args: list[str]) -> MineGAN:
    no_more_args(args, 1, USAGE)
    return MineGAN(int_arg(args, 0, "minegan", default=DEFAULT_STEPS))


def miner_of(G: nn.Module) -> nn.Module | None:
    """The miner of a generator that has one (for tests and tools), else None."""
    return getattr(_miner_target(G), "miner", None)

