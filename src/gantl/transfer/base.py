"""The TransferMethod protocol and how several methods compose in one run.

A transfer method is a small object that may (1) change the networks before training
(freeze blocks, wrap layers, add modules) in :meth:`prepare`, (2) say which parameters
train and at what learning-rate scale in :meth:`parameters`, (3) add loss terms in
:meth:`losses`, and (4) save/restore its own state so a resumed run is exact.

Composition rules (so ``finetune:0.1 + freezed:4`` means one thing):

* a parameter trains only if it still ``requires_grad`` after every method's ``prepare``
  (freezing is sticky; frozen tensors never enter an optimizer, so neither Adam's
  moments nor weight decay can move them);
* its learning rate is the base lr times the *product* of the scales every method gives
  it (default 1);
* loss terms from all methods are summed, each logged under its own name.

Methods are named on the command line as ``name`` or ``name:args`` (``freezed:4``,
``finetune:0.1``, ``partial:4:2``); :func:`parse_methods` turns those strings into
objects via the :data:`METHODS` registry, where other modules register theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypedDict, runtime_checkable

import torch
from torch import nn

from gantl.errors import ConfigError


class ParamGroup(TypedDict):
    """Parameters of one network that share a learning-rate scale."""

    params: list[nn.Parameter]
    lr_scale: float


# {"G": [...], "D": [...]}; a method lists only the parameters whose scale it sets.
ParamGroups = dict[str, list[ParamGroup]]


@runtime_checkable
class TransferMethod(Protocol):
    """What every transfer method implements (see the module docstring for composition)."""

    name: str

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None: ...

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups: ...

    def losses(self, step: Any) -> dict[str, torch.Tensor]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class BaseMethod:
    """Do-nothing defaults, so a method only writes the hooks it needs."""

    name = "base"

    def spec(self) -> str:
        """The command-line spelling that recreates this method (``freezed:4``)."""
        return self.name

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        return None

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups:
        return {"G": [], "D": []}

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec()}>"


# name -> factory taking the argument strings after the name ("freezed:4" -> ["4"])
METHODS: dict[str, Callable[[list[str]], TransferMethod]] = {}


def register_method(name: str) -> Callable[[Callable[[list[str]], TransferMethod]],
                                           Callable[[list[str]], TransferMethod]]:
    """Decorator: make ``name[:args]`` usable in ``--method``."""

    def deco(factory: Callable[[list[str]], TransferMethod]) -> Callable[[list[str]], TransferMethod]:
        METHODS[name] = factory
        return factory

    return deco


def _ensure_builtin_methods() -> None:
    # Importing registers them; done lazily so base.py has no import cycle with them.
    from gantl.transfer import finetune, freeze  # noqa: F401

    try:  # methods owned by other areas register themselves when present
        import gantl.transfer.methods  # noqa: F401
    except ImportError:
        pass


def parse_method(spec: str) -> TransferMethod:
    """``"freezed:4"`` -> a FreezeD object; raises ConfigError naming the known methods."""
    _ensure_builtin_methods()
    name, *args = spec.strip().split(":")
    if name not in METHODS:
        raise ConfigError(f"unknown transfer method '{name}'; known: {', '.join(sorted(METHODS))} "
                          f"(e.g. --method freezed:4)")
    return METHODS[name](args)


def parse_methods(specs: Iterable[str]) -> list[TransferMethod]:
    return [parse_method(s) for s in specs if s.strip()]


def int_arg(args: Sequence[str], index: int, method: str, default: int | None = None) -> int:
    """The ``index``-th argument as a non-negative int, or a ConfigError showing the spelling."""
    if len(args) <= index or args[index] == "":
        if default is None:
            raise ConfigError(f"transfer method '{method}' needs a number, e.g. {method}:4")
        return default
    try:
        value = int(args[index])
    except ValueError:
        raise ConfigError(f"transfer method '{method}' takes whole numbers, got '{args[index]}'") from None
    if value < 0:
        raise ConfigError(f"transfer method '{method}' takes non-negative numbers, got {value}")
    return value


def float_arg(args: Sequence[str], index: int, method: str, default: float) -> float:
    if len(args) <= index or args[index] == "":
        return default
    try:
        value = float(args[index])
    except ValueError:
        raise ConfigError(f"transfer method '{method}' takes a number, got '{args[index]}'") from None
    if value <= 0:
        raise ConfigError(f"transfer method '{method}' needs a positive scale, got {value}")
    return value


def compose_param_groups(methods: Sequence[TransferMethod], G: nn.Module, D: nn.Module,
                         base_lr: dict[str, float]) -> dict[str, list[dict[str, Any]]]:
    """Optimizer param groups for G and D under all ``methods``.

    Only parameters that still require grad are included; each gets ``base_lr[net]``
    times the product of the scales the methods assign. Groups keep the network's
    parameter order so the optimizer state is laid out the same on every run (exact resume).
    """
    scales: dict[int, float] = {}
    for m in methods:
        groups = m.parameters(G, D)
        for key in ("G", "D"):
            for group in groups.get(key, []):
                for p in group["params"]:
                    scales[id(p)] = scales.get(id(p), 1.0) * float(group["lr_scale"])
    out: dict[str, list[dict[str, Any]]] = {}
    for key, net in (("G", G), ("D", D)):
        by_scale: dict[float, list[nn.Parameter]] = {}
        for p in net.parameters():
            if p.requires_grad:
                by_scale.setdefault(scales.get(id(p), 1.0), []).append(p)
        out[key] = [{"params": ps, "lr": base_lr[key] * scale, "lr_scale": scale} for scale, ps in by_scale.items()]
    return out


def frozen_names(net: nn.Module) -> list[str]:
    """Names of parameters that do not train."""
    return [n for n, p in net.named_parameters() if not p.requires_grad]
