"""Describe what a checkpoint file holds, without building networks or running code from it.

``describe(path)`` returns a JSON-able dict; ``render(description)`` prints it with rich. gantl and
plain ``.safetensors`` files are read from their header only (shapes and dtypes, no tensor data);
foreign ``.pkl``/``.pt``/``.pth`` files go through :mod:`gantl.checkpoints.safe_pickle`, so a
malicious pickle is refused before anything in it runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantl.checkpoints.format import FORMAT_NAME, is_safetensors_head, read_header
from gantl.checkpoints.safe_pickle import PersistentRecord, safe_load_pickle, sniff
from gantl.errors import CheckpointError

_MAX_ITEMS = 50  # container entries shown per level in the structure view
_MAX_DEPTH = 8
_MAX_REPR = 80


def describe(path: str | Path) -> dict[str, Any]:
    """A JSON-able description of any supported checkpoint file (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; check the path")
    with open(path, "rb") as f:
        head = f.read(512)
    # The structural safetensors test comes first, exactly as in load_checkpoint: a header length whose
    # low byte is 0x80, '(', ']', 'c' or '}' also opens a pickle, and sniffing for a pickle first sent
    # ~5 valid files in 256 (every snapshot of some runs) to the unpickler, which refused them.
    if is_safetensors_head(head[:9], path.stat().st_size):
        return _describe_safetensors(path)
    kind = sniff(head)
    if kind == "unknown" and path.suffix == ".safetensors":
        return _describe_safetensors(path)  # read_header explains, in one line, why it is unreadable
    if kind == "unknown":
        raise CheckpointError(f"{path} is not a .safetensors, .pkl, .pt or .pth checkpoint; pass one of those")
    return _describe_pickle(path, kind)


# --------------------------------------------------------------------------------------------- safetensors


def _describe_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    meta, raw = read_header(path)
    tensors: list[dict[str, Any]] = []
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a Mapping
            sl = f.get_slice(key)
            shape = [int(s) for s in sl.get_shape()]
            tensors.append({"name": key, "shape": shape, "dtype": _st_dtype(sl.get_dtype()), "numel": math.prod(shape)})
    tensors.sort(key=lambda t: t["name"])
    if meta is None or meta.get("format") != FORMAT_NAME:
        return {"path": str(path), "format": "safetensors", "header_metadata": raw, "networks": [],
                "tensors": tensors, "total_parameters": sum(t["numel"] for t in tensors)}
    # inspect describes damaged files too, so the metadata's shape is checked rather than trusted
    records = meta.get("networks") if isinstance(meta.get("networks"), Mapping) else {}
    networks = []
    names = [str(n) for n in records] + sorted({t["name"].split(".", 1)[0] for t in tensors} - set(records))
    for net in names:
        own = [dict(t, name=t["name"].split(".", 1)[-1]) for t in tensors if t["name"].split(".", 1)[0] == net]
        info = records.get(net) if isinstance(records.get(net), Mapping) else {}
        networks.append({
            "name": net,
            "arch": info.get("arch"),
            "kind": info.get("kind"),
            "class": info.get("class"),
            "config": info.get("config"),
            "parameters": sum(t["numel"] for t in own),
            "tensor_count": len(own),
            "tensors": own,
        })
    other = {k: v for k, v in meta.items() if k != "networks"}
    return {"path": str(path), "format": "gantl", "metadata": other, "networks": networks,
            "total_parameters": sum(n["parameters"] for n in networks)}


def _st_dtype(name: str) -> str:
    table = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
             "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
    return table.get(name, name.lower())


# --------------------------------------------------------------------------------------------- pickles


def _describe_pickle(path: Path, kind: str) -> dict[str, Any]:
    data = safe_load_pickle(path)
    tensors = [{"name": name, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
                "numel": t.numel()} for name, t in iter_tensors(data)]
    records = [{"name": name, "class_name": rec.class_name, "source_sha256": rec.source_sha256,
                "source_lines": rec.source_lines, "init_kwargs": _plain(rec.init_kwargs),
                "parameters": sum(t.numel() for _, t in iter_tensors(rec))}
               for name, rec in _iter_records(data)]
    return {"path": str(path), "format": {"zip": "torch-zip", "legacy": "torch-legacy"}.get(kind, "pickle"),
            "structure": _structure(data, 0), "persistent_records": records, "tensors": tensors,
            "total_parameters": sum(t["numel"] for t in tensors)}


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """Named children for walking: module records contribute parameter/buffer/submodule names."""
    if isinstance(obj, PersistentRecord):
        state = obj.state
        if any(k in state for k in ("_parameters", "_buffers", "_modules")):
            for group in ("_parameters", "_buffers", "_modules"):
                for key, value in (state.get(group) or {}).items():
                    if value is not None:
                        yield str(key), value
            return
        yield from ((str(k), v) for k, v in state.items())
    elif isinstance(obj, Mapping):
        yield from ((str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        yield from ((str(i), v) for i, v in enumerate(obj))


def iter_tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a loaded pickle, with dotted names (module records use module-style names)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
        return
    for key, value in _children(obj):
        yield from iter_tensors(value, f"{prefix}.{key}" if prefix else key)


def _iter_records(obj: Any, prefix: str = "") -> Iterator[tuple[str, PersistentRecord]]:
    """Top-level persistent records (not their nested sub-records)."""
    if isinstance(obj, PersistentRecord):
        yield prefix or "(root)", obj
        return
    if isinstance(obj, (Mapping, list, tuple)):
        for key, value in _children(obj):
            yield from _iter_records(value, f"{prefix}.{key}" if prefix else key)


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return _short(obj)


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _structure(obj: Any, depth: int) -> Any:
    """A bounded, JSON-able outline of the object tree."""
    if isinstance(obj, torch.Tensor):
        return f"tensor{list(obj.shape)} {str(obj.dtype).removeprefix('torch.')}"
    if isinstance(obj, np.ndarray):
        return f"ndarray{list(obj.shape)} {obj.dtype}"
    if isinstance(obj, PersistentRecord):
        n_tensors = sum(1 for _ in iter_tensors(obj))
        return {"<persistent record>": obj.class_name, "tensors": n_tensors,
                "parameters": sum(t.numel() for _, t in iter_tensors(obj)),
                "init_kwargs": _plain(obj.init_kwargs)}
    if depth >= _MAX_DEPTH:
        return f"<{type(obj).__name__}>"
    if isinstance(obj, Mapping):
        items = list(obj.items())
        out = {str(k): _structure(v, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["..."] = f"{len(items) - _MAX_ITEMS} more entries"
        return out
    if isinstance(obj, (list, tuple)):
        if len(obj) > _MAX_ITEMS or all(isinstance(v, (int, float)) for v in obj) and len(obj) > 8:
            return f"<{type(obj).__name__} of {len(obj)}>"
        return [_structure(v, depth + 1) for v in obj]
    return _plain(obj)


# --------------------------------------------------------------------------------------------- rendering


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def render(desc: Mapping[str, Any], *, show_tensors: bool = True, console: Any = None) -> None:
    """Print a :func:`describe` result as rich tables (networks, tensors, metadata or structure)."""
    from rich.console import Console
    from rich.pretty import Pretty
    from rich.table import Table

    console = console or Console()
    fmt = desc["format"]
    console.print(f"[bold]{desc['path']}[/bold]  format: {fmt}  parameters: {_fmt_count(desc['total_parameters'])}")
    if fmt == "gantl":
        nets = Table(title="networks")
        for col in ("name", "arch", "kind", "tensors", "parameters", "config"):
            nets.add_column(col, overflow="fold")
        for n in desc["networks"]:
            nets.add_row(n["name"], str(n["arch"]), str(n["kind"]), str(n["tensor_count"]),
                         _fmt_count(n["parameters"]), _compact(n["config"]))
        console.print(nets)
        meta = Table(title="metadata")
        meta.add_column("key")
        meta.add_column("value", overflow="fold")
        for key, value in sorted(desc["metadata"].items()):
            meta.add_row(key, Pretty(value))
        console.print(meta)
        if show_tensors:
            for n in desc["networks"]:
                console.print(_tensor_table(f"{n['name']} tensors", n["tensors"]))
        return
    if fmt == "safetensors":
        console.print("(no gantl metadata: a plain safetensors file)")
        if desc.get("header_metadata"):
            console.print(Pretty(desc["header_metadata"]))
        if show_tensors:
            console.print(_tensor_table("tensors", desc["tensors"]))
        return
    if desc["persistent_records"]:
        recs = Table(title="persistent objects (recorded as data; their embedded code was NOT run)")
        for col in ("key", "class", "parameters", "source sha256", "init kwargs"):
            recs.add_column(col, overflow="fold")
        for r in desc["persistent_records"]:
            recs.add_row(r["name"], r["class_name"], _fmt_count(r["parameters"]),
                         (r["source_sha256"] or "-")[:16], _compact(r["init_kwargs"]))
        console.print(recs)
    console.print(Pretty(desc["structure"], max_depth=4))
    if show_tensors:
        console.print(_tensor_table("tensors", desc["tensors"]))


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, separators=(", ", ": "), default=str)


def _tensor_table(title: str, tensors: list[Mapping[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("name", overflow="fold")
    table.add_column("shape")
    table.add_column("dtype")
    table.add_column("elements", justify="right")
    for t in tensors:
        table.add_row(t["name"], "x".join(map(str, t["shape"])) or "scalar", t["dtype"], _fmt_count(t["numel"]))
    return table
