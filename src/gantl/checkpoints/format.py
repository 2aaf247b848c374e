"""gantl checkpoints: one ``.safetensors`` file of network tensors + JSON metadata; a training-state file.

Why this shape:

* **No code in weight files.** A snapshot holds only tensors (safetensors cannot hold anything
  else) named ``"<net>.<state_dict key>"`` — ``G.mapping.fc0.weight``, ``G_ema...``, ``D...`` — and
  one JSON document under the header key ``"gantl"`` (safetensors metadata is str -> str). The JSON
  says how to rebuild each network (``networks: {name: {arch, kind, config, adapters}}``) through
  :mod:`gantl.models.registry` — ``adapters`` lists what transfer methods added to the network
  (scale/shift, a miner, AdaFM), replayed by :mod:`gantl.transfer.base` — plus kimg, dataset hash,
  options and the writer's version.
* **No silent partial loads.** :func:`load_state` checks every parameter and buffer name and shape
  and refuses on the first problem unless the caller passes ``allow_partial=True``; then the
  returned :class:`LoadReport` lists exactly what was loaded, skipped and left at initialisation,
  and the same list goes to the log.
* **No torn files.** Both kinds are written to a temporary file beside the target and moved into
  place with ``os.replace``, so an interrupted save leaves the previous snapshot intact.
* **Training state never runs code either.** Optimizer, RNG and augmentation state go into a
  ``torch.save`` file read back with ``torch.load(weights_only=True)`` (numpy arrays and scalars
  allowed, since RNG states use them).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gantl import __version__
from gantl.errors import CheckpointError

log = logging.getLogger(__name__)

FORMAT_NAME = "gantl-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "gantl"  # safetensors header key holding the JSON metadata
PARTIAL_HINT = "pass allow_partial=True (--allow-partial) to load the rest"


# --------------------------------------------------------------------------------------------- atomic


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then move it into place atomically.

    A crash or Ctrl-C mid-write leaves ``path`` as it was (old file or absent), never half written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file we meant to write, not a random temporary name
        exc.filename = os.fspath(path)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - e.g. Windows
        pass
    return path


def write_bytes_to(tmp: Path, data: bytes | memoryview, final: str | os.PathLike[str] | None = None) -> None:
    """Write ``data`` with Python's file API so a full disk or a lost permission is an ``OSError``.

    ``safetensors.save_file`` reports a full disk as ``SafetensorError`` and ``torch.save`` as
    ``RuntimeError: unexpected pos`` (no errno, no file name: the 71-line traceback of issue 14);
    serialising in memory first and writing here gives ``OSError(ENOSPC, ..., final)`` that the
    training loop turns into one line saying what to free and how to resume.
    """
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if final is not None:
            exc.filename = os.fspath(final)
        raise


# --------------------------------------------------------------------------------------------- saving


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _kind_of(name: str, net: nn.Module) -> str:
    if hasattr(net, "z_dim"):
        return "G"
    return "D" if name.startswith("D") or hasattr(net, "img_channels") else "G"


def network_entry(name: str, net: nn.Module) -> dict[str, Any]:
    """``{"arch", "kind", "config", "class"}``: enough to rebuild ``net`` through the registry."""
    from gantl.models.registry import ARCHS

    arch = next((a for a, (mod, _, _) in ARCHS.items() if type(net).__module__ == mod), None)
    config = getattr(net, "config", None)
    entry = {
        "arch": arch,
        "kind": _kind_of(name, net),
        "config": dict(config) if isinstance(config, Mapping) else None,
        "class": f"{type(net).__module__}.{type(net).__qualname__}",
    }
    adapters = getattr(net, "gantl_adapters", None)
    if adapters:  # what transfer methods added (scale/shift, miner, AdaFM): replayed by Checkpoint.build
        entry["adapters"] = [dict(a) for a in adapters]
    return entry


def checkpoint_tensors(nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Flat ``"<net>.<key>"`` -> CPU contiguous tensor, with shared storage de-duplicated.

    Shared storage happens when e.g. ``G_ema is G`` (an import without a separate EMA copy);
    safetensors refuses aliases, so each later alias is cloned (identical bytes, own storage).
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for net_name, net in nets.items():
        if not net_name or "." in net_name:
            raise CheckpointError(f"network name '{net_name}' must be non-empty and contain no '.'; use e.g. G_ema")
        for key, tensor in net.state_dict().items():
            t = tensor.detach().to("cpu").contiguous()
            ptr = t.untyped_storage().data_ptr() if t.numel() else 0
            if ptr and ptr in seen:
                t = t.clone()
            elif ptr:
                seen.add(ptr)
            out[f"{net_name}.{key}"] = t
    return out


def save_checkpoint(path: str | os.PathLike[str], nets: Mapping[str, nn.Module],
                    metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``nets`` (e.g. ``{"G": G, "D": D, "G_ema": G_ema}``) and ``metadata`` to one safetensors file.

    ``metadata`` must be JSON-able; ``networks`` (arch/kind/config per net), ``format``,
    ``format_version`` and ``gantl_version`` are filled in. Returns ``path``. The write is atomic.
    """
    from safetensors.torch import save

    if not nets:
        raise CheckpointError("save_checkpoint needs at least one network")
    meta = dict(metadata or {})
    networks = {name: network_entry(name, net) for name, net in nets.items()}
    networks.update({k: v for k, v in (meta.get("networks") or {}).items() if k in nets})
    meta.update(networks=networks, format=FORMAT_NAME, format_version=FORMAT_VERSION, gantl_version=__version__)
    try:
        text = json.dumps(meta, sort_keys=True, allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not JSON-serialisable ({exc}); store plain values") from None
    tensors = checkpoint_tensors(nets)
    data = save(tensors, metadata={METADATA_KEY: text, "format": "pt"})
    return atomic_write(path, lambda tmp: write_bytes_to(tmp, data, path))


# --------------------------------------------------------------------------------------------- loading


@dataclass
class LoadReport:
    """What :func:`load_state` did: every tensor name lands in exactly one list."""

    network: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the network, not in the file: left at init
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the network: skipped
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # (name, file, net)
    converted: list[tuple[str, str, str]] = field(default_factory=list)  # (name, file dtype, net dtype)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def skipped(self) -> list[str]:
        """File tensors not used: unexpected names and shape mismatches."""
        return sorted([*self.unexpected, *(m[0] for m in self.mismatched)])

    @property
    def left_at_init(self) -> list[str]:
        """Network tensors that kept their initial values: missing and shape mismatches."""
        return sorted([*self.missing, *(m[0] for m in self.mismatched)])

    def first_problem(self) -> str | None:
        if self.missing:
            return f"tensor '{self.missing[0]}' is missing from the file"
        if self.mismatched:
            name, got, want = self.mismatched[0]
            return f"tensor '{name}' has shape {list(got)} in the file but {list(want)} in the network"
        if self.unexpected:
            return f"the file has tensor '{self.unexpected[0]}' that the network does not"
        return None

    def summary(self) -> str:
        parts = [f"{self.network}: loaded {len(self.loaded)} tensors"]
        if self.missing:
            parts.append(f"left {len(self.missing)} at init (missing: {', '.join(self.missing)})")
        if self.mismatched:
            parts.append("skipped {} with other shapes ({})".format(
                len(self.mismatched), ", ".join(f"{n} {list(a)} vs {list(b)}" for n, a, b in self.mismatched)))
        if self.unexpected:
            parts.append(f"skipped {len(self.unexpected)} unknown ({', '.join(self.unexpected)})")
        if self.converted:
            parts.append(f"converted dtype of {len(self.converted)}")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "loaded": list(self.loaded),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": [{"name": n, "file_shape": list(a), "net_shape": list(b)} for n, a, b in self.mismatched],
            "converted": [{"name": n, "file_dtype": a, "net_dtype": b} for n, a, b in self.converted],
        }


def load_state(module: nn.Module, tensors: Mapping[str, torch.Tensor], allow_partial: bool = False,
               *, name: str | None = None) -> LoadReport:
    """Copy ``tensors`` into ``module``'s parameters and buffers after checking every name and shape.

    Without ``allow_partial`` any missing, unexpected or misshapen tensor raises a
    :class:`CheckpointError` naming the first one and nothing is modified. With it, what fits is
    copied and the returned :class:`LoadReport` (also logged) lists everything else.
    """
    label = name or type(module).__name__
    own = module.state_dict(keep_vars=True)
    report = LoadReport(network=label)
    for key, target in own.items():
        if key not in tensors:
            report.missing.append(key)
        elif tuple(tensors[key].shape) != tuple(target.shape):
            report.mismatched.append((key, tuple(tensors[key].shape), tuple(target.shape)))
    report.unexpected = sorted(k for k in tensors if k not in own)
    if not report.complete and not allow_partial:
        more = len(report.missing) + len(report.mismatched) + len(report.unexpected) - 1
        extra = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        raise CheckpointError(f"cannot load {label}: {report.first_problem()}{extra}; {PARTIAL_HINT}")
    skip = {m[0] for m in report.mismatched}
    with torch.no_grad():
        for key, target in own.items():
            if key in report.missing or key in skip:
                continue
            source = tensors[key]
            if source.dtype != target.dtype:
                report.converted.append((key, str(source.dtype), str(target.dtype)))
            target.copy_(source)
            report.loaded.append(key)
    if report.complete:
        log.debug("%s", report.summary())
    else:
        log.warning("partial load: %s", report.summary())
    return report


@dataclass
class Checkpoint:
    """A loaded gantl checkpoint: ``tensors[net][name]`` and the JSON ``metadata``."""

    path: Path
    tensors: dict[str, dict[str, torch.Tensor]]
    metadata: dict[str, Any]

    @property
    def networks(self) -> list[str]:
        return list(self.tensors)

    def network_info(self, net: str) -> dict[str, Any]:
        """``{"arch", "kind", "config", ...}`` recorded for ``net``."""
        self._require(net)
        info = (self.metadata.get("networks") or {}).get(net)
        if not info:
            raise CheckpointError(f"{self.path} has no architecture record for '{net}'; it cannot be rebuilt")
        return dict(info)

    def build(self, net: str, *, allow_partial: bool = False) -> nn.Module:
        """Construct ``net`` through the model registry, replay the modules transfer methods added to it
        (``adapters`` in its record), and load its tensors strictly."""
        from gantl.models.registry import build

        info = self.network_info(net)
        if not info.get("arch") or info.get("config") is None:
            raise CheckpointError(f"{self.path}: '{net}' was saved from {info.get('class', 'an unknown class')}, "
                                  "which is not a registered gantl architecture; load its tensors with load_state")
        module = build(info["arch"], info.get("kind") or ("D" if net.startswith("D") else "G"), info["config"])
        if info.get("adapters"):  # structure a transfer method added (gantl.transfer.base adapters)
            from gantl.transfer.base import apply_adapters

            apply_adapters(module, info["adapters"])
        load_state(module, self.tensors[net], allow_partial=allow_partial, name=f"{self.path.name}:{net}")
        return module

    def _require(self, net: str) -> None:
        if net not in self.tensors:
            raise CheckpointError(f"{self.path} has no network '{net}'; it holds {', '.join(self.tensors) or 'none'}")


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """(gantl metadata or None, raw safetensors header metadata) without loading any tensor."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}); it is corrupt or truncated") from None
    text = raw.get(METADATA_KEY)
    if text is None:
        return None, raw
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: the gantl metadata is not valid JSON ({exc}); the file is damaged") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: the gantl metadata is a JSON {type(meta).__name__}, not an object; "
                              "the file is damaged")
    return meta, raw


#: Upper bounds for architecture numbers read from a file's metadata, by config key (at any depth).
#: Several times beyond any published GAN, yet small enough that a damaged or hostile file cannot make
#: a network constructor allocate gigabytes or loop over millions of layers.
ARCH_LIMITS: dict[str, int] = {
    "img_resolution": 4096, "img_channels": 16, "num_layers": 64, "z_dim": 1 << 16, "w_dim": 1 << 16,
    "c_dim": 1 << 16, "cmap_dim": 1 << 16, "channel_base": 1 << 17, "channel_max": 1 << 14, "ngf": 1 << 14,
    "ndf": 1 << 14, "ch": 1 << 14, "num_fp16_res": 16, "mbstd_group_size": 1 << 12, "mbstd_num_channels": 1 << 10,
}
ARCH_INT_MAX = 1 << 20  # any other integer in an architecture config
ARCH_LIST_MAX = 1024  # entries of any list in an architecture config
#: A network may have this many more parameters than the file holds values for it (allow_partial slack);
#: beyond that its metadata describes something the file is not, and we refuse before allocating.
PARAM_SLACK = 16_000_000


def _check_arch_values(value: Any, where: str, path: Path, net: str) -> None:
    """Bounds on every number and list in a stored architecture config (recursively)."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: the architecture of '{net}' has {where} {why}; the metadata is damaged "
                               "or not from gantl, so no network is built from it")

    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_arch_values(item, f"{where}.{key}" if where else str(key), path, net)
    elif isinstance(value, list):
        if len(value) > ARCH_LIST_MAX:
            raise bad(f"a list of {len(value)} entries (at most {ARCH_LIST_MAX})")
        for i, item in enumerate(value):
            _check_arch_values(item, f"{where}[{i}]", path, net)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        limit = ARCH_LIMITS.get(where.rsplit(".", 1)[-1], ARCH_INT_MAX)
        if not -ARCH_INT_MAX <= value <= limit:
            raise bad(f"= {value} (allowed up to {limit})")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise bad(f"= {value} (must be a finite number)")
    else:
        raise bad(f"a value of type {type(value).__name__}")


def estimate_parameters(arch: str, kind: str, config: Mapping[str, Any]) -> int:
    """Parameter count of the network ``config`` describes, without allocating it.

    The network is constructed on PyTorch's ``meta`` device (shapes only, no storage), inside a forked
    RNG so that loading a checkpoint never moves the global random state (resume stays exact).
    """
    from gantl.models.registry import network_class

    cls = network_class(arch, kind)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        module = cls(**dict(config))
    return sum(p.numel() for p in module.parameters())


def check_network_record(path: str | os.PathLike[str], net: str, info: Mapping[str, Any],
                         stored_values: int) -> int:
    """Refuse a network record whose architecture is out of bounds or far larger than the file's tensors.

    A 40 KB file with ``channel_base=2**30`` in its metadata once made ``gantl eval`` try to
    allocate 4 GB and die in the allocator. Returns the estimated parameter count.
    """
    path = Path(path)
    arch, config = info.get("arch"), info.get("config")
    if not arch or config is None:
        return 0  # not rebuildable anyway; Checkpoint.build says so
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{path}: the architecture config of '{net}' is not a table; the metadata is damaged")
    _check_arch_values(config, "", path, net)
    kind = info.get("kind") or ("D" if net.startswith("D") else "G")
    try:
        count = estimate_parameters(str(arch), str(kind), config)
    except Exception as exc:  # noqa: BLE001 - any constructor error means the record does not describe a network
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{path}: the metadata of '{net}' does not describe a buildable {arch} {kind} "
                              f"({type(exc).__name__}: {first}); the file is damaged or from another version") from None
    if count > 4 * stored_values + PARAM_SLACK:
        raise CheckpointError(f"{path}: the metadata of '{net}' describes a network of {count:,} parameters "
                              f"(~{count * 4 / 2**30:.1f} GiB) but the file holds {stored_values:,} values for it; "
                              "refusing to allocate it: the metadata is damaged or hostile")
    return count


def is_safetensors_head(head: bytes, file_size: int) -> bool:
    """True when ``head`` (a file's first 9 bytes) opens a safetensors file: a little-endian u64
    header length that fits the file, then the JSON header's ``{``. Checked before any pickle sniff,
    because the length's first byte can be 0x80, a pickle's first byte (1 header size in 256)."""
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= file_size - 8 and head[8:9] == b"{"


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a gantl ``.safetensors`` checkpoint (never runs code). Foreign files must be imported first."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; check the path")
    with open(path, "rb") as f:
        head = f.read(9)
    if not is_safetensors_head(head, path.stat().st_size) and (head[:1] == b"\x80" or head[:2] == b"PK"):
        raise CheckpointError(f"{path} is a pickle/torch file, not a gantl checkpoint; convert it with "
                              f"`gantl models import {path}`")
    meta, _ = read_header(path)
    if meta is None or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is a safetensors file without gantl metadata; "
                              "load its tensors with safetensors.torch.load_file or import it")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} has no valid format_version in its gantl metadata (found {version!r}); "
                              "the file is damaged or was not written by gantl")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} uses checkpoint format {version}, newer than this gantl reads "
                              f"({FORMAT_VERSION}); upgrade gantl")
    records = meta.get("networks") or {}
    if not isinstance(records, Mapping):
        raise CheckpointError(f"{path}: 'networks' in the gantl metadata is not a table; the file is damaged")
    try:
        flat = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path} could not be read ({exc}); it is corrupt or truncated") from None
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        net, sep, rest = key.partition(".")
        if not sep or not rest:
            raise CheckpointError(f"{path}: tensor '{key}' is not named '<network>.<name>'; not a gantl checkpoint")
        tensors.setdefault(net, {})[rest] = tensor
    for net, info in records.items():
        tensors.setdefault(net, {})  # a network with no tensors at all (rare) still shows up
        if not isinstance(info, Mapping):
            raise CheckpointError(f"{path}: the record of network '{net}' is not a table; the file is damaged")
        check_network_record(path, net, info, sum(t.numel() for t in tensors[net].values()))
    return Checkpoint(path=path, tensors=tensors, metadata=meta)


# --------------------------------------------------------------------------------------------- training state


def _numpy_safe_globals() -> list[Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    dtype_classes = [type(np.dtype(code)) for code in "bBhHiIlLqQefdgFD?"]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


def save_training_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write optimizer/RNG/augment/... state with ``torch.save`` (atomic). Only tensors and plain data."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return atomic_write(path, lambda tmp: write_bytes_to(tmp, buf.getbuffer(), path))


def _state_refusal(path: Path, exc: BaseException) -> str:
    """One whole sentence for a refused training state, naming the refused global when there is one.

    torch's weights-only message is several lines and advises ``add_safe_globals`` (the wrong advice
    for an untrusted file); cutting it at a fixed length left refusals cut mid-sentence.
    """
    import re

    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (f"training state {path} was refused: it asks for {found.group(1)}, which is not a tensor or "
                "plain data, so it could run code; the file is corrupt or was not written by gantl")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(first) > 160:
        first = first[:160].rsplit(" ", 1)[0] + " ..."
    return (f"training state {path} cannot be loaded ({type(exc).__name__}: {first}); it is corrupt or truncated; "
            "resume from an earlier snapshot")


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training-state file with ``torch.load(weights_only=True)``: it cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training state {path} not found; resume needs the snapshot's state file beside it")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(_state_refusal(path, exc)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"training state {path} holds a {type(state).__name__}, not a dict")
    return state
