"""Resolve a ``--resume SOURCE`` and check that it fits the target *before* training starts.

A source that does not fit (another resolution, channel count or number of classes)
used to fail deep inside a load, or worse, load partially and train garbage. Here the
check walks the target's tensors in order and stops at the first one whose name is
missing from the source or whose shape differs, and the error says which tensor, both
shapes, and the flag that makes them fit (``--resolution 64``, ``--num-classes 10``) or
``--allow-partial`` to keep only the fitting layers (then the load report lists exactly
what was left at its initialisation).

Where sources come from is pluggable: :func:`resolve_source` first asks resolvers
registered with :func:`register_resolver`, then the model zoo
(:func:`gantl.checkpoints.zoo.resolve`, which also converts NVIDIA ``.pkl`` and
DCGAN-tutorial ``.pth`` files), then takes an existing ``.safetensors`` path as is.

Generator-only sources (a DCGAN-tutorial file holding just ``netG``, a StyleGAN2 export
of G/G_ema) are a common case: the generator is the valuable half and the
discriminator was never published. ``fresh_d=True`` (``gantl train --fresh-d``) loads
G and G_ema only and leaves D at its seeded initialisation; without it a missing D is
refused with a message that names the flag, so nobody trains against a random D by
accident. Methods that keep *source* D weights (``freezed:K``, ``partial:KD``) make
no sense then and are refused by :func:`check_fresh_d_methods`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantl.errors import CheckpointError, ConfigError, SourceMismatchError

log = logging.getLogger("gantl")

_RESOLVERS: list[Callable[[str], Path | None]] = []

# The constructor arguments that decide whether tensors fit, with the flag that sets each.
_FIT_KEYS = (("img_resolution", "--resolution"), ("img_channels", "--channels"), ("c_dim", "--num-classes"))


def register_resolver(fn: Callable[[str], Path | None]) -> Callable[[str], Path | None]:
    """Add a resolver: name -> path of a gantl checkpoint, or None when it does not know the name."""
    _RESOLVERS.append(fn)
    return fn


def resolve_source(name: str) -> Path:
    """The gantl ``.safetensors`` path for a source name or file (see the module docstring)."""
    for fn in _RESOLVERS:
        found = fn(name)
        if found is not None:
            return Path(found)
    try:
        from gantl.checkpoints import zoo
    except ImportError:  # pragma: no cover - the zoo is part of gantl
        zoo = None
    if zoo is not None and hasattr(zoo, "resolve"):
        return Path(zoo.resolve(name))
    path = Path(name).expanduser()
    if path.is_file():
        return path
    raise CheckpointError(f"source '{name}' is neither a file nor a known model name; "
                          f"pass a .safetensors path (see `gantl models list`)")


@dataclass
class Source:
    """A loaded source checkpoint: its path, tensors per network and metadata."""

    path: Path
    tensors: dict[str, dict[str, torch.Tensor]]
    metadata: dict[str, Any]

    def network_info(self, net: str) -> dict[str, Any]:
        return dict(self.metadata.get("networks", {}).get(net, {}))


def load_source(name: str) -> Source:
    """Resolve and load a source checkpoint (never runs code: safetensors only)."""
    from gantl.checkpoints.format import load_checkpoint

    path = resolve_source(name)
    ckpt = load_checkpoint(path)
    return Source(path=path, tensors=ckpt.tensors, metadata=dict(ckpt.metadata))


# Constructor arguments a target takes from its *data*, not from the source's architecture.
_DATA_KEYS = ("img_resolution", "img_channels", "c_dim")


def source_training_choices(name: str) -> dict[str, str]:
    """``{"model": arch, "cfg": preset}`` recorded in a source's metadata (what it was trained as).

    Reads only the safetensors header. ``cfg`` is present for sources gantl trained (their options
    are stored with them); an imported foreign checkpoint records its architecture but no preset.
    """
    from gantl.checkpoints.format import read_header

    meta, _ = read_header(resolve_source(name))
    meta = meta or {}
    out: dict[str, str] = {}
    arch = meta.get("networks", {}).get("G", {}).get("arch")
    if arch:
        out["model"] = str(arch)
    cfg = (meta.get("options") or {}).get("cfg")
    if cfg and (meta.get("options") or {}).get("model", arch) == arch:
        out["cfg"] = str(cfg)
    return out


def check_choices_against_source(name: str, given: dict[str, Any]) -> dict[str, str]:
    """The source's model/cfg for the options the user did not give; a conflicting one is an error.

    ``given`` holds only what the user set explicitly (flags, ``--set``). The returned dict is what
    to add so that ``--resume SRC`` alone trains the source's architecture with its preset.
    """
    recorded = source_training_choices(name)
    flag = {"model": "--model", "cfg": "--cfg"}
    for key, value in recorded.items():
        if key in given and given[key] is not None and str(given[key]) != value:
            raise ConfigError(f"{flag[key]} {given[key]} conflicts with the source {name}, which is {key} {value}: "
                              f"drop {flag[key]} to train the source's architecture, or pass {flag[key]} {value}")
    return {k: v for k, v in recorded.items() if k not in given or given[k] is None}


def source_network_kwargs(source: Source, arch: str, kind: str, target_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of ``kind`` ('G' or 'D') taken from the source, with the target's
    data-dependent ones (resolution, channels, classes) kept: the architecture comes from the source.

    Falls back to ``target_kwargs`` when the source records no config for that network or is another
    architecture (then :func:`check_fit` reports the mismatch).
    """
    info = source.network_info(kind)
    config = info.get("config")
    if info.get("arch") != arch or not isinstance(config, dict):
        return target_kwargs
    out = dict(config)
    for key in _DATA_KEYS:
        if key in target_kwargs:
            out[key] = target_kwargs[key]
    return out


def _hint(source: Source, net_name: str, target: nn.Module) -> str:
    info = source.network_info(net_name)
    src_cfg = info.get("config", {})
    tgt_cfg = getattr(target, "config", {})
    for key, flag in _FIT_KEYS:
        if key in src_cfg and key in tgt_cfg and src_cfg[key] != tgt_cfg[key]:
            value = src_cfg[key]
            what = {"img_resolution": "resolution", "img_channels": "channel count",
                    "c_dim": "number of classes"}[key]
            return (f"the source's {what} is {value}, the target's {tgt_cfg[key]}: pass {flag} {value} "
                    f"(and a dataset that matches), or --allow-partial to keep the fitting layers")
    return "pass the source's architecture options, or --allow-partial to keep the fitting layers"


def _missing_network(source: Source, net_name: str) -> SourceMismatchError:
    """The error for a network the source lacks; a missing D points at ``--fresh-d``."""
    held = sorted(source.tensors)
    if net_name == "D" and "G" in source.tensors:
        only = "only " + " and ".join(held)
        return SourceMismatchError(f"source {source.path} has {only} (a generator-only source); "
                                   f"pass --fresh-d to train a new discriminator against it")
    return SourceMismatchError(f"source {source.path} has no '{net_name}' network; "
                               f"it holds {', '.join(held) or 'no networks'}")


def _target_nets(nets: dict[str, nn.Module], fresh_d: bool, fresh_g: bool = False) -> dict[str, nn.Module]:
    return {k: v for k, v in nets.items() if not (fresh_d and k == "D") and not (fresh_g and k in ("G", "G_ema"))}


def check_fit(source: Source, nets: dict[str, nn.Module], *, fresh_d: bool = False, fresh_g: bool = False) -> None:
    """Raise SourceMismatchError at the first target tensor the source cannot fill exactly.

    With ``fresh_d`` the target's D is not compared (it keeps its own initialisation); with
    ``fresh_g`` neither are G and G_ema (TransferGAN's "scratch G + pretrained D" cell).
    """
    from gantl.transfer.conditional import is_conditional_to_unconditional, is_unconditional_to_conditional

    for net_name, net in _target_nets(nets, fresh_d, fresh_g).items():
        if net_name not in source.tensors:
            if net_name == "G_ema":
                continue  # a source without G_ema starts G_ema from its G
            raise _missing_network(source, net_name)
        info = source.network_info(net_name)
        if is_unconditional_to_conditional(info, net) or is_conditional_to_unconditional(info, net):
            continue  # mapped by gantl.transfer.conditional, which fills every tensor it can
        src_arch = source.network_info(net_name).get("arch")
        from gantl.models.registry import arch_of

        tgt_arch = arch_of(net)
        if src_arch is not None and src_arch != tgt_arch:
            raise SourceMismatchError(f"source {net_name} is a {src_arch} network but the target is {tgt_arch}; "
                                      f"pass --model {src_arch}")
        src = source.tensors[net_name]
        for name, tensor in net.state_dict().items():
            have = src.get(name)
            if have is None or tuple(have.shape) != tuple(tensor.shape):
                src_shape = "missing" if have is None else list(have.shape)
                raise SourceMismatchError(
                    f"source does not fit the target at {net_name}.{name}: source shape {src_shape}, "
                    f"target shape {list(tensor.shape)}; {_hint(source, net_name, net)}")


def apply_source(source: Source, nets: dict[str, nn.Module], *, allow_partial: bool = False,
                 fresh_d: bool = False, fresh_g: bool = False, source_class: int | None = None) -> dict[str, Any]:
    """Load the source into ``nets`` ({"G", "D", "G_ema"}), strictly unless ``allow_partial``.

    With ``fresh_d`` the source's D (if it has one) is ignored and ``nets["D"]`` is left
    untouched, at whatever initialisation the caller gave it; ``fresh_g`` does the same for G and
    G_ema (``--init-g scratch``). Returns the load reports per
    network loaded (what was skipped or left at initialisation).

    Between conditional and unconditional networks of one architecture the tensors are mapped by
    :mod:`gantl.transfer.conditional`: an unconditional source fills every class of a conditional
    target; a conditional source's class ``source_class`` is folded into an unconditional target.
    """
    from gantl.checkpoints.format import load_state
    from gantl.transfer.conditional import (
        conditional_from_unconditional,
        is_conditional_to_unconditional,
        is_unconditional_to_conditional,
        unconditional_from_class,
    )

    if not allow_partial:
        check_fit(source, nets, fresh_d=fresh_d, fresh_g=fresh_g)
    reports: dict[str, Any] = {}
    for net_name, net in _target_nets(nets, fresh_d, fresh_g).items():
        tensors = source.tensors.get(net_name)
        if tensors is None and net_name == "G_ema":
            tensors = source.tensors.get("G")
        if tensors is None:
            raise _missing_network(source, net_name)
        info = source.network_info(net_name if net_name in source.tensors else "G")
        if is_conditional_to_unconditional(info, net):
            if source_class is None:
                raise ConfigError("the source is class-conditional and the target is not: pass --source-class K "
                                  "(or auto) to start from one of its classes")
            tensors, exact = unconditional_from_class(info["arch"], info.get("kind") or net_name[0], tensors,
                                                      info["config"], net, source_class)
            log.info("%s: source class %d folded into the unconditional target (%s)", net_name, source_class,
                     "exact" if exact else "logit scale renormalised by spectral norm")
        if is_unconditional_to_conditional(info, net):
            tensors, fresh = conditional_from_unconditional(tensors, net)
            log.info("%s: unconditional source -> %d classes: class-conditional parameters copied from the source "
                     "into every class; %d tensors start from their initialisation%s", net_name, net.c_dim,
                     len(fresh), f" ({', '.join(fresh[:6])}{', ...' if len(fresh) > 6 else ''})" if fresh else "")
        reports[net_name] = load_state(net, tensors, allow_partial=allow_partial)
        if allow_partial:
            log.warning("partial load of %s from %s: %s", net_name, source.path, reports[net_name])
    return reports


def needs_source_d(method: Any) -> bool:
    """Whether ``method`` only makes sense with D weights taken from the source (it says so itself)."""
    return bool(getattr(method, "needs_source_d", False))


def needs_source_g(method: Any) -> bool:
    """Whether ``method`` only makes sense with G weights taken from the source (it says so itself)."""
    return bool(getattr(method, "needs_source_g", False))


def _methods_without(attr: str) -> str:
    """Registered methods that, with their default arguments, do not need the source's G or D."""
    from gantl.transfer.base import registered_methods

    names = []
    for info in registered_methods():
        try:
            m = info.factory([])
        except Exception:  # noqa: BLE001 - a method that needs arguments: try the smallest one
            try:
                m = info.factory(["1"])
            except Exception:  # noqa: BLE001
                continue
        if not getattr(m, attr, False):
            names.append(info.usage)
    return ", ".join(names)


def check_init_methods(methods: list[Any], *, init_g: str = "source", init_d: str = "source") -> None:
    """Refuse methods that need a network's *source* weights when that network starts from scratch.

    Freezing, anchoring to or distilling from a randomly initialised network keeps noise, not
    knowledge (FreezeD under ``--fresh-d``; EWC, L2-SP or scale/shift under ``--init-g scratch``).
    """
    for m in methods:
        spec = m.spec() if hasattr(m, "spec") else m.name
        if init_d == "scratch" and needs_source_d(m):
            raise ConfigError(
                f"--method {spec} keeps or anchors to discriminator weights from the source, but with --fresh-d "
                f"(--init-d scratch) D starts from random initialisation; drop {m.name} or use a method that "
                f"needs no source D ({_methods_without('needs_source_d')})")
        if init_g == "scratch" and needs_source_g(m):
            raise ConfigError(
                f"--method {spec} keeps or anchors to generator weights from the source, but with --init-g scratch "
                f"G starts from random initialisation; drop {m.name} or use a method that needs no source G "
                f"({_methods_without('needs_source_g')})")


def check_fresh_d_methods(methods: list[Any]) -> None:
    """Refuse D-side methods under ``--fresh-d``: freezing blocks of a random D keeps noise, not knowledge."""
    check_init_methods(methods, init_d="scratch")
