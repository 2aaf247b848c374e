"""Import foreign pretrained GANs into gantl checkpoints, without running their code.

Two formats matter for transfer learning in practice:

* **NVIDIA stylegan2-ada-pytorch ``.pkl``** (``network-snapshot-*.pkl`` and the published
  ``ffhq.pkl``, ``afhqcat.pkl``, ...). These pickles embed the *source code* of the networks
  and rebuild them by ``exec``-ing it. gantl reads them with the restricted unpickler
  (:mod:`gantl.checkpoints.safe_pickle`): every persistent-object record is kept as plain
  data (class name, init kwargs, state), the embedded source is never run, and the
  tensors are copied into gantl's own StyleGAN2 whose parameter names match NVIDIA's 1:1.
* **DCGAN-tutorial state dicts** (``main.N.*`` keys in a ``torch.save`` file), the layout
  of the PyTorch DCGAN tutorial and the many projects derived from it. They are read with
  ``torch.load(weights_only=True)`` and renamed onto gantl's block-structured DCGAN.

Every import is strict: a tensor the target needs but the file lacks, or one with the
wrong shape, is refused with its name — a silently half-loaded source would make a
transfer run quietly equal to training from scratch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantl.errors import CheckpointError, GantlError

# ----------------------------------------------------------------------------- strict copying


def strict_load(net: nn.Module, tensors: Mapping[str, torch.Tensor], what: str,
                ignore_extra: tuple[str, ...] = ()) -> None:
    """Copy ``tensors`` into ``net``'s parameters and buffers, refusing any mismatch by name.

    ``ignore_extra`` lists name patterns (regex) the file may carry beyond what ``net`` has
    (e.g. NVIDIA's non-persistent caches); any other extra tensor is an error too, because
    it means the file was made for a different architecture than the one we built.
    """
    own = dict(net.state_dict())
    missing = [k for k in own if k not in tensors]
    if missing:
        raise CheckpointError(
            f"{what} is missing tensor '{missing[0]}'"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; the file is incomplete or made for another architecture"
        )
    extra = [k for k in tensors if k not in own and not any(re.fullmatch(p, k) for p in ignore_extra)]
    if extra:
        raise CheckpointError(
            f"{what} has tensor '{extra[0]}' that the gantl network lacks"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
            + "; the file was made for a different architecture or config"
        )
    for k, target in own.items():
        src = tensors[k]
        if not isinstance(src, torch.Tensor):
            raise CheckpointError(f"{what}: entry '{k}' is a {type(src).__name__}, not a tensor")
        if tuple(src.shape) != tuple(target.shape):
            raise CheckpointError(
                f"{what}: tensor '{k}' has shape {tuple(src.shape)}, the network needs {tuple(target.shape)}; "
                "the file does not match its recorded config"
            )
    with torch.no_grad():
        net.load_state_dict({k: tensors[k].to(own[k].dtype) for k in own}, strict=True)


# ----------------------------------------------------------------------------- DCGAN tutorial

_MAIN_KEY = re.compile(r"^main\.(\d+)\.(.+)$")


@dataclass
class DcganTutorialNets:
    """Generator/discriminator state dicts found in a DCGAN-tutorial file, in gantl names."""

    G: nn.Module | None = None
    D: nn.Module | None = None
    notes: list[str] = field(default_factory=list)


def _strip_prefixes(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``module.`` (DataParallel) prefixes so both saved layouts read the same."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def _main_layers(sd: Mapping[str, Any]) -> dict[int, dict[str, torch.Tensor]]:
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        m = _MAIN_KEY.match(key)
        if m is None:
            raise CheckpointError(f"DCGAN state dict key '{key}' is not in the tutorial's 'main.N.*' layout")
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return dict(sorted(layers.items()))


def _is_tutorial_generator(layers: dict[int, dict[str, torch.Tensor]]) -> bool:
    # The generator puts a batch norm right after its first (transposed) conv; the
    # discriminator puts a parameter-free LeakyReLU there.
    return 1 in layers and "running_mean" in layers[1]


def _bn_names(prefix: str, bn: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in bn.items()}


def dcgan_generator_from_tutorial(sd: Mapping[str, Any]) -> nn.Module:
    """Build gantl's DCGAN generator from a tutorial ``main.N.*`` state dict and load it strictly.

    The tutorial generator is ``[ConvT, BN, ReLU] * k`` followed by ``ConvT, Tanh``; so conv
    layers sit at indices 0, 3, 6, ... and their batch norms one after. z_dim, ngf, channels
    and resolution are read from the weight shapes.
    """
    from gantl.models.registry import build

    layers = _main_layers(_strip_prefixes(sd))
    convs = [i for i, p in layers.items() if "weight" in p and p["weight"].ndim == 4]
    if not convs or convs != list(range(0, 3 * (len(convs) - 1) + 1, 3)):
        raise CheckpointError(f"DCGAN generator: conv layers at main.{convs} do not follow the tutorial's "
                              "[ConvT, BN, ReLU] pattern (expected main.0, main.3, main.6, ...)")
    first, last = layers[convs[0]]["weight"], layers[convs[-1]]["weight"]
    z_dim, ngf, channels = int(first.shape[0]), int(last.shape[0]), int(last.shape[1])
    resolution = 4 * 2 ** (len(convs) - 1)
    config = dict(z_dim=z_dim, c_dim=0, img_resolution=resolution, img_channels=channels, ngf=ngf)
    try:
        G = build("dcgan", "G", config)
    except GantlError as exc:  # e.g. an unsupported resolution: say what the file was
        raise CheckpointError(f"DCGAN generator with {len(convs)} conv layers ({resolution} px) "
                              f"cannot be rebuilt: {exc}") from None
    tensors: dict[str, torch.Tensor] = {}
    for b, ci in enumerate(convs):
        tensors[f"blocks.{b}.conv.weight"] = layers[ci]["weight"]
        if b < len(convs) - 1:
            if ci + 1 not in layers:
                raise CheckpointError(f"DCGAN generator: batch norm main.{ci + 1} after conv main.{ci} is missing")
            tensors.update(_bn_names(f"blocks.{b}.bn", layers[ci + 1]))
    for i, params in layers.items():
        if i not in convs and i - 1 not in convs:
            raise CheckpointError(f"DCGAN generator: unexpected weights at main.{i} ({', '.join(params)})")
    strict_load(G, tensors, "DCGAN generator")
    return G


def dcgan_discriminator_from_tutorial(sd: Mapping[str, Any]) -> nn.Module:
    """Build gantl's DCGAN discriminator from a tutorial state dict (``Conv, LReLU, [Conv, BN, LReLU]*k, Conv``)."""
    from gantl.models.registry import build

    layers = _main_layers(_strip_prefixes(sd))
    convs = [i for i, p in layers.items() if "weight" in p and p["weight"].ndim == 4]
    expected = [0] + [2 + 3 * k for k in range(len(convs) - 1)]
    if convs != expected:
        raise CheckpointError(f"DCGAN discriminator: conv layers at main.{convs} do not follow the tutorial's "
                              f"pattern (expected main.{expected})")
    first = layers[0]["weight"]
    ndf, channels = int(first.shape[0]), int(first.shape[1])
    resolution = 4 * 2 ** (len(convs) - 1)
    D = build("dcgan", "D", dict(c_dim=0, img_resolution=resolution, img_channels=channels, ndf=ndf))
    tensors: dict[str, torch.Tensor] = {}
    for b, ci in enumerate(convs):
        tensors[f"blocks.{b}.conv.weight"] = layers[ci]["weight"]
        if 0 < b < len(convs) - 1:
            if ci + 1 not in layers:
                raise CheckpointError(f"DCGAN discriminator: batch norm main.{ci + 1} after conv main.{ci} is missing")
            tensors.update(_bn_names(f"blocks.{b}.bn", layers[ci + 1]))
    strict_load(D, tensors, "DCGAN discriminator")
    return D


def _find_tutorial_dicts(obj: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """All nested dicts whose keys are ``main.N.*`` tensors (generator and/or discriminator)."""
    if isinstance(obj, Mapping):
        keys = list(obj.keys())
        plain = _strip_prefixes(obj) if keys and all(isinstance(k, str) for k in keys) else {}
        if plain and all(_MAIN_KEY.match(k) for k in plain) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return [(path or "<root>", dict(obj))]
        found = []
        for k, v in obj.items():
            found += _find_tutorial_dicts(v, f"{path}.{k}" if path else str(k))
        return found
    return []


def read_dcgan_tutorial(path: str | Path) -> DcganTutorialNets:
    """Read a DCGAN-tutorial ``torch.save`` file (safe load; no code runs) into gantl networks.

    The file may hold a bare state dict or a dict of them (``netG_state_dict``,
    ``netD_state_dict``, optimizer states, epoch counters, ...); generator and
    discriminator are recognised by structure, not by key names.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign files
        raise CheckpointError(f"{path} is not a readable torch weights file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:120]}); pass a DCGAN state-dict file") from None
    dicts = _find_tutorial_dicts(obj)
    if not dicts:
        raise CheckpointError(f"{path} holds no state dict in the DCGAN tutorial layout ('main.N.*' keys)")
    nets = DcganTutorialNets()
    for where, sd in dicts:
        layers = _main_layers(_strip_prefixes(sd))
        if _is_tutorial_generator(layers):
            if nets.G is not None:
                raise CheckpointError(f"{path} holds two generators ({where} and another); keep one per file")
            nets.G = dcgan_generator_from_tutorial(sd)
            nets.notes.append(f"G from {where}")
        else:
            if nets.D is not None:
                raise CheckpointError(f"{path} holds two discriminators ({where} and another); keep one per file")
            nets.D = dcgan_discriminator_from_tutorial(sd)
            nets.notes.append(f"D from {where}")
    if nets.G is None:
        raise CheckpointError(f"{path} has a DCGAN discriminator but no generator; a transfer source needs G")
    return nets


def import_dcgan_tutorial(path: str | Path, out: str | Path, extra_metadata: dict[str, Any] | None = None) -> Path:
    """Convert a DCGAN-tutorial file into a gantl ``.safetensors`` checkpoint (G, G_ema, and D if present)."""
    from gantl.checkpoints.format import save_checkpoint

    nets = read_dcgan_tutorial(path)
    networks: dict[str, nn.Module] = {"G": nets.G, "G_ema": nets.G}  # the tutorial keeps no EMA: G is the best G
    if nets.D is not None:
        networks["D"] = nets.D
    metadata = {"kimg": 0, "imported_from": {"format": "dcgan-tutorial", "file": Path(path).name,
                                             "notes": nets.notes}}
    metadata.update(extra_metadata or {})
    return save_checkpoint(out, networks, metadata)


# ----------------------------------------------------------------------------- NVIDIA pickles

# NVIDIA's Generator(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs, synthesis_kwargs)
# and Discriminator(c_dim, img_resolution, img_channels, architecture, channel_base, ...,
# block_kwargs, mapping_kwargs, epilogue_kwargs) kwargs, as recorded in each record's init_kwargs.
_NVIDIA_NETS = ("G", "D", "G_ema")


def _plain(obj: Any) -> Any:
    """Recursively turn EasyDict-like mappings and tuples into JSON-able dicts/lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def flatten_module_state(state: Mapping[str, Any], what: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Dotted-name tensors of a pickled ``nn.Module`` ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``).

    Non-persistent buffers (``_non_persistent_buffers_set``) are skipped, exactly as
    ``state_dict()`` would skip them, so the names line up with a live module's state dict.
    """
    from gantl.checkpoints.safe_pickle import record_state

    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is None or (kind == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{what}: {prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value.detach() if isinstance(value, nn.Parameter) else value
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        child_state = record_state(child)
        if child_state is None:
            raise CheckpointError(f"{what}: submodule {prefix}{name} is a {type(child).__name__}, "
                                  "not a module record; the pickle is not a stylegan2-ada network")
        out.update(flatten_module_state(child_state, what, f"{prefix}{name}."))
    return out


@dataclass
class NvidiaNetwork:
    """One network from an NVIDIA pickle, as data: class name, constructor kwargs and tensors."""

    class_name: str
    init_kwargs: dict[str, Any]
    tensors: dict[str, torch.Tensor]


@dataclass
class NvidiaSnapshot:
    """The parts of a stylegan2-ada snapshot gantl uses."""

    networks: dict[str, NvidiaNetwork]
    training_set_kwargs: dict[str, Any]
    other_keys: list[str]


def read_nvidia_pkl(path: str | Path) -> NvidiaSnapshot:
    """Read an NVIDIA stylegan2-ada ``.pkl`` through the restricted unpickler (no pickled code runs)."""
    from gantl.checkpoints.safe_pickle import record_class_name, record_init, record_state, safe_load_pickle

    path = Path(path)
    data = safe_load_pickle(path)
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a stylegan2-ada snapshot dict "
                              "with G, D and G_ema; pass a network-snapshot .pkl")
    nets: dict[str, NvidiaNetwork] = {}
    for key in _NVIDIA_NETS:
        if key not in data or data[key] is None:
            continue
        record = data[key]
        state = record_state(record)
        if state is None:
            raise CheckpointError(f"{path}: '{key}' is a {type(record).__name__}, not a persistent network record")
        args, kwargs = record_init(record)
        if args:
            raise CheckpointError(f"{path}: '{key}' was constructed with positional arguments {args!r}; "
                                  "stylegan2-ada networks use keyword arguments only")
        nets[key] = NvidiaNetwork(class_name=record_class_name(record) or "?", init_kwargs=_plain(kwargs),
                                  tensors=flatten_module_state(state, f"{path.name}:{key}"))
    if "G" not in nets and "G_ema" not in nets:
        raise CheckpointError(f"{path} has no 'G' or 'G_ema' network; keys present: {', '.join(map(str, data))}")
    tsk = data.get("training_set_kwargs") or {}
    return NvidiaSnapshot(networks=nets, training_set_kwargs=_plain(tsk) if isinstance(tsk, Mapping) else {},
                          other_keys=[str(k) for k in data if k not in _NVIDIA_NETS])


def gantl_config_from_nvidia(kind: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Translate NVIDIA's init kwargs into gantl's StyleGAN2 constructor config.

    gantl's StyleGAN2 takes the same keyword arguments as NVIDIA's networks (nested
    ``mapping_kwargs``/``synthesis_kwargs``/... included); keys gantl does not accept are
    dropped only when they cannot change the weights (mixed-precision and clamping knobs).
    """
    from inspect import signature

    from gantl.models.registry import network_class

    cls = network_class("stylegan2", kind)
    accepted = set(signature(cls.__init__).parameters) - {"self"}
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in signature(cls.__init__).parameters.values())
    config = {}
    for k, v in kwargs.items():
        if k in accepted or has_var_kw:
            config[k] = v
        elif k in ("num_fp16_res", "conv_clamp"):
            continue  # numerics only: gantl runs fp32 without clamping
        else:
            raise CheckpointError(f"NVIDIA {kind} option '{k}'={v!r} has no gantl equivalent; "
                                  "this pickle uses a network variant gantl cannot rebuild")
    return config


def nvidia_to_gantl(snapshot: NvidiaSnapshot, what: str) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Build gantl networks for each NVIDIA network in ``snapshot`` and copy its tensors strictly."""
    from gantl.models.registry import build

    nets: dict[str, nn.Module] = {}
    for key, net in snapshot.networks.items():
        kind = "D" if key == "D" else "G"
        config = gantl_config_from_nvidia(kind, net.init_kwargs)
        module = build("stylegan2", kind, config)
        strict_load(module, net.tensors, f"{what}:{key}")
        nets[key] = module
    if "G_ema" not in nets:
        nets["G_ema"] = nets["G"]
    if "G" not in nets:
        nets["G"] = nets["G_ema"]
    tsk = snapshot.training_set_kwargs
    G = nets["G_ema"]
    metadata = {
        "imported_from": {"format": "nvidia-pkl", "file": what, "ignored_keys": snapshot.other_keys},
        "training_set": {
            "resolution": int(tsk.get("resolution") or G.img_resolution),
            "use_labels": bool(tsk.get("use_labels", G.c_dim > 0)),
            "c_dim": int(G.c_dim),
            "xflip": bool(tsk.get("xflip", False)),
            "path": tsk.get("path"),
            "max_size": tsk.get("max_size"),
        },
    }
    return nets, metadata


def import_nvidia_pkl(path: str | Path, out: str | Path, extra_metadata: dict[str, Any] | None = None) -> Path:
    """Convert an NVIDIA stylegan2-ada ``.pkl`` into a gantl ``.safetensors`` checkpoint."""
    from gantl.checkpoints.format import save_checkpoint

    path = Path(path)
    nets, metadata = nvidia_to_gantl(read_nvidia_pkl(path), path.name)
    metadata["kimg"] = 0
    metadata.update(extra_metadata or {})
    return save_checkpoint(out, nets, metadata)


def import_any(path: str | Path, out: str | Path) -> Path:
    """Convert a foreign checkpoint of either supported format, chosen by its first bytes."""
    from gantl.checkpoints.zoo import _sniff_format

    fmt = _sniff_format(Path(path))
    if fmt == "nvidia-pkl":
        return import_nvidia_pkl(path, out)
    if fmt == "dcgan-tutorial":
        return import_dcgan_tutorial(path, out)
    raise CheckpointError(f"{path} is already a gantl checkpoint; nothing to import")
