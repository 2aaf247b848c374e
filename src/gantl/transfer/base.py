"""The TransferMethod protocol, the method registry, and how several methods compose in one run.

A transfer method is a small object that may (1) change the networks before training
(freeze blocks, add modules) in :meth:`prepare`, (2) say which parameters train and at what
learning-rate scale in :meth:`parameters`, (3) add loss terms to any training phase in
:meth:`losses`, (4) change what trains or how fast while training in :meth:`on_step`
(MineGAN's and AdaFM's "unfreeze after N steps"), (5) choose the step's latents in
:meth:`latents` (CDC's anchor neighbourhoods), and (6) save/restore its own state so a
resumed run is exact.

Composition rules (so ``finetune:0.1 + freezed:4`` means one thing):

* a parameter trains only if it still ``requires_grad`` after every method's ``prepare``
  (freezing is sticky; frozen tensors never enter an optimizer, so neither Adam's
  moments nor weight decay can move them); only an :meth:`on_step` hook unfreezes;
* its learning rate is the base lr times the *product* of the scales every method gives
  it (default 1);
* loss terms from all methods are summed, each logged under its own name.

**The registry** (after torch-fidelity's ``register_*``, DESIGN.md "Extension points"): a method
is one module of :data:`BUILTIN_METHOD_MODULES` that calls :func:`register_method` with its
command-line name, its usage (``l2sp[:lambda_g[:lambda_d]]``) and a one-line help. Registering a
name twice is refused, and a method module that fails to import raises
:class:`MethodImportError` carrying the real error: nothing is swallowed, so ``--method l2sp``
never says "unknown method" because of a typo inside ``l2sp.py``. ``gantl train --help``, the
"unknown method" error and the ``--fresh-d`` refusal all list methods from here.

**Structure a method adds** (scale/shift vectors, a miner, AdaFM parameters) is applied through a
registered *adapter* (:func:`register_adapter`, :func:`add_adapter`) and recorded on the network
(``net.gantl_adapters``). Snapshots store that record beside the architecture config, and
:meth:`gantl.checkpoints.format.Checkpoint.build` replays it, so every snapshot rebuilds the same
network in ``gantl eval``, ``gantl generate``, ``--resume-run`` and as a ``--resume`` source.

Methods are named on the command line as ``name`` or ``name:args`` (``freezed:4``,
``finetune:0.1``, ``partial:4:2``); :func:`parse_methods` turns those strings into objects.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

import torch
from torch import nn

from gantl.errors import ConfigError, GantlError

# The method modules gantl ships, imported (in this order) the first time a method is looked up.
BUILTIN_METHOD_MODULES: tuple[str, ...] = (
    "gantl.transfer.finetune",
    "gantl.transfer.freeze",
    "gantl.transfer.l2sp",
    "gantl.transfer.ewc",
    "gantl.transfer.fd",
    "gantl.transfer.scale_shift",
    "gantl.transfer.minegan",
    "gantl.transfer.cdc",
    "gantl.transfer.adafm",
    "gantl.transfer.glo",
)


class MethodRegistryError(GantlError):
    """A transfer method is registered twice, or a method module cannot be imported."""

    exit_code = 2


class MethodImportError(MethodRegistryError):
    """A transfer-method module raised while being imported; the message carries the real error."""


class ParamGroup(TypedDict):
    """Parameters of one network that share a learning-rate scale."""

    params: list[nn.Parameter]
    lr_scale: float


# {"G": [...], "D": [...]}; a method lists only the parameters whose scale it sets.
ParamGroups = dict[str, list[ParamGroup]]


@dataclass
class StepInfo:
    """What :meth:`TransferMethod.on_step` sees at the start of every training step."""

    G: nn.Module
    D: nn.Module
    cur_nimg: int
    batch_idx: int


@runtime_checkable
class TransferMethod(Protocol):
    """What every transfer method implements (see the module docstring for composition)."""

    name: str

    def spec(self) -> str: ...

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None: ...

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups: ...

    def losses(self, step: Any) -> dict[str, torch.Tensor]: ...

    def on_step(self, info: StepInfo) -> bool: ...

    def latents(self, info: StepInfo, z: torch.Tensor) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class BaseMethod:
    """Do-nothing defaults, so a method only writes the hooks it needs.

    ``needs_source_g`` / ``needs_source_d``: whether the method only makes sense when that network
    starts from the source's weights (anchoring to, freezing or distilling from them). They are
    checked against ``--init-g/--init-d scratch`` (and ``--fresh-d``) before anything is loaded.
    ``prepare_order``: methods are prepared in this order (stable), see :func:`prepare_methods`.
    """

    name = "base"
    needs_source_g = False
    needs_source_d = False
    # Preparation order: -1 methods that copy or anchor to the source networks (l2sp, ewc, fd, cdc),
    # so they see them unchanged; 0 methods that decide wholesale what of G trains (scale-shift,
    # minegan, adafm); 1 the rest, so parameters they add (GLO's latents) are not frozen by a 0.
    prepare_order = 1

    def spec(self) -> str:
        """The command-line spelling that recreates this method (``freezed:4``)."""
        return self.name

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        return None

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups:
        return {"G": [], "D": []}

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        """Extra loss terms for ``step.phase`` ("G", "D", "Greg" or "Dreg"), each logged by name."""
        return {}

    def on_step(self, info: StepInfo) -> bool:
        """Called before every step; return True after changing what trains or a learning-rate scale."""
        return False

    def check_with(self, others: Sequence[TransferMethod]) -> None:
        """Raise ConfigError (one line, naming both) when combined with a method it contradicts."""
        return None

    def latents(self, info: StepInfo, z: torch.Tensor) -> torch.Tensor:
        """The step's generator latents (every phase's, stacked); a method may replace them (CDC anchors)."""
        return z

    def check_prepared(self, G: nn.Module, D: nn.Module) -> None:
        """After every method's ``prepare``: raise ConfigError when the combined result defeats this method."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec()}>"


# ---------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class MethodInfo:
    """One registered method: its command-line name, how to spell its arguments, what it does."""

    name: str
    factory: Callable[[list[str]], TransferMethod]
    usage: str  # e.g. "l2sp[:lambda_g[:lambda_d]]"
    help: str  # one line
    module: str

    def line(self) -> str:
        return f"{self.usage}: {self.help}"


METHODS: dict[str, MethodInfo] = {}


def register_method(name: str, *, usage: str | None = None, help: str = ""
                    ) -> Callable[[Callable[[list[str]], TransferMethod]], Callable[[list[str]], TransferMethod]]:
    """Decorator: make ``name[:args]`` usable in ``--method``; a second registration of ``name`` is refused.

    ``factory(args)`` receives the strings after the name (``"freezed:4"`` -> ``["4"]``) and raises
    :class:`ConfigError` for bad arguments. Re-importing the *same* module (``importlib.reload``)
    replaces its own entry; any other clash raises :class:`MethodRegistryError`.
    """
    if not name or ":" in name or "," in name or name != name.strip():
        raise MethodRegistryError(f"transfer method name {name!r} must be non-empty without ':', ',' or spaces")

    def deco(factory: Callable[[list[str]], TransferMethod]) -> Callable[[list[str]], TransferMethod]:
        module = getattr(factory, "__module__", "?")
        old = METHODS.get(name)
        if old is not None and old.module != module:
            raise MethodRegistryError(f"transfer method '{name}' is registered twice ({old.module} and {module}); "
                                      f"rename one of them")
        METHODS[name] = MethodInfo(name=name, factory=factory, usage=usage or name, help=help, module=module)
        return factory

    return deco


_LOADED = False


def ensure_builtin_methods() -> None:
    """Import every built-in method module so it registers; an import failure is raised, never hidden."""
    global _LOADED
    if _LOADED:
        return
    for module in BUILTIN_METHOD_MODULES:
        load_method_module(module)
    _LOADED = True


def load_method_module(module: str) -> None:
    """Import ``module`` (which registers its methods); a failure becomes :class:`MethodImportError`."""
    try:
        importlib.import_module(module)
    except GantlError:
        raise
    except Exception as exc:  # noqa: BLE001 - any error in a method module must reach the user as itself
        raise MethodImportError(f"transfer-method module {module} failed to import: {type(exc).__name__}: {exc}; "
                                f"fix that module (gantl --debug shows the traceback)") from exc


def registered_methods() -> list[MethodInfo]:
    """Every registered method, in registration order."""
    ensure_builtin_methods()
    return list(METHODS.values())


def methods_help() -> str:
    """One line per method, ``usage: help`` (for ``gantl train --help`` and docs)."""
    return "; ".join(info.line() for info in registered_methods())


def parse_method(spec: str) -> TransferMethod:
    """``"freezed:4"`` -> a FreezeD object; raises ConfigError naming the known methods."""
    ensure_builtin_methods()
    name, *args = spec.strip().split(":")
    if name not in METHODS:
        known = ", ".join(info.usage for info in METHODS.values())
        raise ConfigError(f"unknown transfer method '{name}'; known: {known} (e.g. --method freezed:4)")
    return METHODS[name].factory(args)


def prepare_methods(methods: Sequence[TransferMethod], G: nn.Module, D: nn.Module, source: Any) -> None:
    """Run every method's ``prepare`` by ``prepare_order`` (then in the order given): methods that copy
    or anchor to the source see it unchanged, and a method that adds trainable parameters is never
    frozen by a wholesale G freezer listed after it."""
    for m in sorted(methods, key=lambda m: getattr(m, "prepare_order", 1)):
        m.prepare(G, D, source)
    for m in methods:
        check = getattr(m, "check_prepared", None)
        if check is not None:
            check(G, D)


def parse_methods(specs: Iterable[str]) -> list[TransferMethod]:
    methods = [parse_method(s) for s in specs if s.strip()]
    check_combination(methods)
    return methods


def check_combination(methods: Sequence[TransferMethod]) -> None:
    """Refuse the same method twice (two anchors or two miners would silently double a term), and
    whatever a method's :meth:`BaseMethod.check_with` says contradicts it."""
    seen: set[str] = set()
    for m in methods:
        if m.name in seen:
            raise ConfigError(f"transfer method '{m.name}' is given twice; keep one --method {m.name}[:args]")
        seen.add(m.name)
    for m in methods:
        check = getattr(m, "check_with", None)
        if check is not None:
            check([o for o in methods if o is not m])


# ---------------------------------------------------------------------------------------------- arguments


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


def float_arg(args: Sequence[str], index: int, method: str, default: float, *, allow_zero: bool = False) -> float:
    """The ``index``-th argument as a positive (or, with ``allow_zero``, non-negative) finite float."""
    if len(args) <= index or args[index] == "":
        return default
    try:
        value = float(args[index])
    except ValueError:
        raise ConfigError(f"transfer method '{method}' takes a number, got '{args[index]}'") from None
    if not (value == value and abs(value) != float("inf")):
        raise ConfigError(f"transfer method '{method}' takes a finite number, got '{args[index]}'")
    if value < 0 or (value == 0 and not allow_zero):
        need = "a non-negative" if allow_zero else "a positive"
        raise ConfigError(f"transfer method '{method}' needs {need} number, got {value:g}")
    return value


def no_more_args(args: Sequence[str], count: int, usage: str) -> None:
    """Refuse arguments beyond the ``count`` a method takes (``l2sp:1:2:3``)."""
    if len(args) > count:
        raise ConfigError(f"too many arguments in '{':'.join([usage.split('[')[0], *args])}'; write {usage}")


# ---------------------------------------------------------------------------------------------- optimiser groups


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


# ---------------------------------------------------------------------------------------------- adapters


ADAPTER_ATTR = "gantl_adapters"
# kind -> apply(net, record): add the modules/parameters the record describes (at their identity init)
ADAPTERS: dict[str, Callable[[nn.Module, dict[str, Any]], None]] = {}


def register_adapter(kind: str) -> Callable[[Callable[[nn.Module, dict[str, Any]], None]],
                                            Callable[[nn.Module, dict[str, Any]], None]]:
    """Decorator: ``apply(net, record)`` rebuilds the structure a method adds; duplicates are refused."""

    def deco(fn: Callable[[nn.Module, dict[str, Any]], None]) -> Callable[[nn.Module, dict[str, Any]], None]:
        old = ADAPTERS.get(kind)
        if old is not None and old.__module__ != fn.__module__:
            raise MethodRegistryError(f"network adapter '{kind}' is registered twice ({old.__module__} and "
                                      f"{fn.__module__}); rename one of them")
        ADAPTERS[kind] = fn
        return fn

    return deco


def adapters_of(net: nn.Module) -> list[dict[str, Any]]:
    """The structural changes recorded on ``net`` (JSON-able records, in the order applied)."""
    return [dict(r) for r in getattr(net, ADAPTER_ATTR, [])]


def add_adapter(net: nn.Module, record: dict[str, Any]) -> bool:
    """Apply ``record`` (``{"kind": ..., ...}``) to ``net`` and remember it; False when already applied."""
    ensure_builtin_methods()
    kind = record.get("kind")
    if kind not in ADAPTERS:
        raise MethodRegistryError(f"network adapter '{kind}' is not registered; known: "
                                  f"{', '.join(sorted(ADAPTERS)) or 'none'} (is the snapshot from a newer gantl?)")
    existing = getattr(net, ADAPTER_ATTR, None)
    if existing is None:
        existing = []
        object.__setattr__(net, ADAPTER_ATTR, existing)
    if any(r == record for r in existing):
        return False
    ADAPTERS[kind](net, record)
    existing.append(dict(record))
    return True


def apply_adapters(net: nn.Module, records: Iterable[dict[str, Any]]) -> nn.Module:
    """Replay recorded adapters on a freshly built ``net`` (checkpoint loading, sources)."""
    for record in records or []:
        add_adapter(net, dict(record))
    return net


def buffers_state(net: nn.Module | None) -> dict[str, Any]:
    """A frozen copy's buffers (BN statistics, SN vectors) for a method's ``state_dict``: they still move
    in training-mode forwards, so exact resume needs them; ``{}`` before the copy exists."""
    if net is None:
        return {}
    return {"buffers": {n: b.detach().cpu().clone() for n, b in net.named_buffers()}}


def load_buffers_state(net: nn.Module | None, state: dict[str, Any]) -> None:
    """Inverse of :func:`buffers_state`."""
    if not state or net is None:
        return
    own = dict(net.named_buffers())
    with torch.no_grad():
        for n, b in state["buffers"].items():
            own[n].copy_(torch.as_tensor(b))
