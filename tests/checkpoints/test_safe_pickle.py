"""The restricted unpickler and `gantl models inspect`: tensors come back, code never runs."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from gantl.checkpoints.format import save_checkpoint
from gantl.checkpoints.safe_pickle import (
    EasyDictData,
    PersistentRecord,
    record_class_name,
    record_init,
    record_state,
    safe_load_pickle,
    safe_loads,
)
from gantl.errors import CheckpointError, UnsafePickleError


def _state_dict() -> dict[str, Any]:
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    tagged = torch.randn(3)
    tagged.note = "python attribute"  # pickles through torch._tensor._rebuild_from_type_v2
    return {
        "tagged": tagged,
        "w": torch.randn(3, 4),
        "half": torch.randn(5).half(),
        "bf16": torch.randn(3).bfloat16(),
        "ints": torch.arange(7),
        "flags": torch.tensor([True, False]),
        "strided": torch.arange(12.0)[1:11:3],
        "row1": base[1],
        "col": base[:, 2],
        "param": nn.Parameter(torch.ones(2, 2)),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(3.5),
        "nested": collections.OrderedDict(lr=0.1, betas=(0.0, 0.99), names=["a", "b"], flag=None),
        "np_scalar": np.float64(0.125),
        "np_array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "set": {1, 2},
        "bytes": b"\x00\xff",
    }


def _assert_same(out: dict[str, Any], ref: dict[str, Any]) -> None:
    assert set(out) == set(ref)
    for key, value in ref.items():
        got = out[key]
        if isinstance(value, torch.Tensor):
            assert isinstance(got, torch.Tensor) and got.dtype == value.dtype and got.shape == value.shape, key
            assert torch.equal(got, value), key
        elif isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and np.array_equal(got, value), key
        else:
            assert got == value and type(got) is type(value), key
    assert isinstance(out["param"], nn.Parameter)


@pytest.mark.parametrize("container", ["torch-zip", "torch-legacy", "pickle-p2", "pickle-p4"])
def test_state_dicts_round_trip_in_every_container(tmp_path: Path, container: str):
    ref = _state_dict()
    path = tmp_path / "file.pt"
    if container == "torch-zip":
        torch.save(ref, path)
    elif container == "torch-legacy":
        torch.save(ref, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(ref, protocol=int(container[-1])))
    out = safe_load_pickle(path)
    _assert_same(out, ref)
    if container.startswith("torch"):  # torch's own formats keep views on one storage
        assert out["row1"].untyped_storage().data_ptr() == out["col"].untyped_storage().data_ptr()


class _Call:
    """Unpickling this calls ``func(*args)``: the classic pickle exploit."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _exploits(marker: Path) -> dict[str, tuple[Any, str]]:
    import builtins

    return {
        "os.system": (_Call(os.system, f"touch {marker}"), "posix.system"),
        "eval": (_Call(builtins.eval, f"open({str(marker)!r}, 'w')"), "builtins.eval"),
        "exec": (_Call(builtins.exec, f"open({str(marker)!r}, 'w')"), "builtins.exec"),
        "subprocess": (_Call(subprocess.call, ["touch", str(marker)]), "subprocess.call"),
        "getattr": (_Call(getattr, [], "append"), "builtins.getattr"),
        "module": (nn.Linear(2, 2), "torch.nn.modules.linear.Linear"),
    }


@pytest.mark.parametrize("exploit", ["os.system", "eval", "exec", "subprocess", "getattr", "module"])
@pytest.mark.parametrize("container", ["torch-zip", "torch-legacy", "pickle-p0", "pickle-p4"])
def test_code_is_refused_with_the_global_named(tmp_path: Path, exploit: str, container: str):
    marker = tmp_path / "code-ran"
    payload, name = _exploits(marker)[exploit]
    obj = {"state_dict": {"w": torch.ones(2)}, "x": payload}
    path = tmp_path / "evil.pkl"
    if container == "torch-zip":
        torch.save(obj, path)
    elif container == "torch-legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=int(container[-1])))
    if exploit == "module" and container == "pickle-p0":
        name = "copyreg._reconstructor"  # protocols 0/1 rebuild objects through copyreg first
    with pytest.raises(UnsafePickleError) as info:
        safe_load_pickle(path)
    assert str(info.value) == (f"refusing to load evil.pkl: it asks to run {name}; "
                               "gantl loads only tensors and plain data")
    assert not marker.exists()


def test_corrupt_and_out_of_bounds_files_fail_cleanly(tmp_path: Path):
    good = pickle.dumps({"w": torch.ones(3)})
    with pytest.raises(CheckpointError, match="not a readable pickle"):
        safe_loads(good[: len(good) // 2], "cut.pkl")
    with pytest.raises(CheckpointError, match="not a pickle or torch checkpoint"):
        safe_loads(b"hello world", "text.pkl")
    small = torch.ones(2)
    overreach = _Call(torch._utils._rebuild_tensor_v2, small.untyped_storage(), 0, (1000,), (1,), False,
                      collections.OrderedDict())
    with pytest.raises(CheckpointError, match="outside its storage"):
        safe_loads(pickle.dumps({"w": overreach}), "overreach.pkl")
    torch.save({"w": torch.ones(3)}, tmp_path / "t.pt")
    raw = (tmp_path / "t.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) - 40])
    with pytest.raises(CheckpointError):
        safe_load_pickle(tmp_path / "cut.pt")


# --------------------------------------------------------------------------------------------- NVIDIA-like


class _Persistent:
    """Pickles like an object of a ``torch_utils.persistence`` class: REDUCE(reconstruct, (meta,))."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta


def _fake_module(monkeypatch: pytest.MonkeyPatch, dotted: str, **attrs: Any) -> None:
    """Register ``dotted`` (and its parents) in sys.modules just long enough to pickle references."""
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    for key, value in attrs.items():
        value.__module__ = dotted
        value.__qualname__ = key
        setattr(sys.modules[dotted], key, value)


def write_nvidia_like_pickle(path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stylegan2-ada style snapshot whose persistent records carry hostile embedded source."""

    def reconstruct(meta):  # only a name to pickle by reference; never called
        raise AssertionError("the fixture's reconstruct function must never be called")

    class EasyDict(dict):
        pass

    with monkeypatch.context() as mp:
        _fake_module(mp, "torch_utils.persistence", _reconstruct_persistent_obj=reconstruct)
        _fake_module(mp, "dnnlib.util", EasyDict=EasyDict)
        source = f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('embedded source executed')\n"

        def record(class_name: str, module: nn.Module, init_kwargs: dict, children: dict) -> _Persistent:
            state = {
                "training": False,
                "_parameters": collections.OrderedDict((k, nn.Parameter(v.detach().clone(), requires_grad=False))
                                                       for k, v in module._parameters.items()),
                "_buffers": collections.OrderedDict((k, v.clone()) for k, v in module._buffers.items()),
                "_non_persistent_buffers_set": set(),
                "_modules": collections.OrderedDict(children),
                "_forward_hooks": collections.OrderedDict(),
                "_init_args": (),
                "_init_kwargs": EasyDict(init_kwargs),
                "weight_gain": np.float64(0.25),
            }
            return _Persistent({"type": "class", "version": 6, "module_src": source,
                                "class_name": class_name, "state": state})

        torch.manual_seed(1)
        fc, conv, aug = nn.Linear(4, 3), nn.Conv2d(3, 2, 3), nn.Module()
        aug.register_buffer("p", torch.tensor(0.3))
        mapping = record("MappingNetwork", fc, {"z_dim": 4}, {})
        G = record("Generator", nn.Module(), {"z_dim": 4, "img_resolution": 8,
                                              "synthesis_kwargs": EasyDict(channel_base=64)},
                   {"mapping": mapping, "synthesis": record("SynthesisNetwork", conv, {}, {})})
        snapshot = {"G": G, "D": record("Discriminator", conv, {"c_dim": 0}, {}), "G_ema": G,
                    "augment_pipe": record("AugmentPipe", aug, {"xflip": 1}, {}),
                    "training_set_kwargs": EasyDict(path="/data/x.zip", xflip=True)}

        class Pickler(pickle.Pickler):
            def reducer_override(self, obj):
                if isinstance(obj, _Persistent):
                    return reconstruct, (obj.meta,)
                return NotImplemented

        buf = io.BytesIO()
        Pickler(buf, protocol=4).dump(snapshot)
    path.write_bytes(buf.getvalue())
    return {"fc": fc, "conv": conv, "source": source}


def test_nvidia_persistent_records_become_inert_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    marker = tmp_path / "code-ran"
    ref = write_nvidia_like_pickle(tmp_path / "network-snapshot.pkl", marker, monkeypatch)
    assert "torch_utils.persistence" not in sys.modules  # nothing of NVIDIA's is importable here
    data = safe_load_pickle(tmp_path / "network-snapshot.pkl")
    assert not marker.exists()
    G = data["G"]
    assert isinstance(G, PersistentRecord) and record_class_name(G) == "Generator"
    assert data["G_ema"] is G  # pickle memo preserved the sharing
    assert G.source_sha256 == hashlib.sha256(ref["source"].encode()).hexdigest() and G.source_lines == 3
    args, kwargs = record_init(G)
    assert args == () and kwargs == {"z_dim": 4, "img_resolution": 8, "synthesis_kwargs": {"channel_base": 64}}
    assert isinstance(kwargs["synthesis_kwargs"], EasyDictData)
    mapping = record_state(G)["_modules"]["mapping"]
    assert record_class_name(mapping) == "MappingNetwork"
    assert torch.equal(record_state(mapping)["_parameters"]["weight"], ref["fc"].weight.detach())
    assert torch.equal(record_state(data["D"])["_parameters"]["bias"], ref["conv"].bias.detach())
    assert record_state(mapping)["weight_gain"] == np.float64(0.25)
    assert data["training_set_kwargs"] == {"path": "/data/x.zip", "xflip": True}
    assert record_state(data["training_set_kwargs"]) is None and record_init({}) == ((), {})


# --------------------------------------------------------------------------------------------- CLI


def _gantl_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gantl.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, COLUMNS="200"), timeout=300)


def _gantl(*args: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run the real CLI entry point in-process (importing torch once per test session, not per call)."""
    from gantl.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # main() rewrites sys.argv; restore it afterwards
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_refuses_a_pickle_that_would_run_a_shell_command(tmp_path: Path, capsys, monkeypatch):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G": _Call(os.system, f"touch {marker}")}))
    torch.save({"G": _Call(os.system, f"touch {marker}")}, tmp_path / "evil.pt")
    message = "refusing to load {}: it asks to run posix.system; gantl loads only tensors and plain data"

    result = _gantl_subprocess("models", "inspect", str(tmp_path / "evil.pkl"), cwd=tmp_path)  # the real command
    assert result.returncode == 4, result.stderr
    assert result.stdout == "" and result.stderr.strip().splitlines() == ["error: " + message.format("evil.pkl")]
    code, out, err = _gantl("models", "inspect", str(tmp_path / "evil.pt"), capsys=capsys, monkeypatch=monkeypatch)
    assert (code, out, err.strip()) == (4, "", "error: " + message.format("evil.pt"))
    assert not marker.exists()
    assert pickle.loads((tmp_path / "evil.pkl").read_bytes())["G"] == 0 and marker.exists()  # the payload was real


def test_inspect_describes_an_nvidia_like_pickle(tmp_path: Path, capsys, monkeypatch):
    marker = tmp_path / "code-ran"
    write_nvidia_like_pickle(tmp_path / "snap.pkl", marker, monkeypatch)
    code, out, err = _gantl("models", "inspect", str(tmp_path / "snap.pkl"), "--json",
                            capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    desc = json.loads(out)
    assert desc["format"] == "pickle"
    classes = {r["name"]: r["class_name"] for r in desc["persistent_records"]}
    assert classes == {"G": "Generator", "D": "Discriminator", "G_ema": "Generator", "augment_pipe": "AugmentPipe"}
    shapes = {t["name"]: t["shape"] for t in desc["tensors"]}
    assert shapes["G.mapping.weight"] == [3, 4] and shapes["G.synthesis.weight"] == [2, 3, 3, 3]
    assert shapes["D.bias"] == [2] and shapes["augment_pipe.p"] == []
    assert desc["total_parameters"] == 2 * (3 * 4 + 3 + 2 * 3 * 9 + 2) + (2 * 3 * 9 + 2) + 1
    code, out, err = _gantl("models", "inspect", str(tmp_path / "snap.pkl"), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "Generator" in out and "embedded code was NOT run" in out
    assert not marker.exists()


def test_inspect_describes_a_gantl_checkpoint(tmp_path: Path, capsys, monkeypatch):
    G, D = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), nn.Linear(4, 1)
    path = save_checkpoint(tmp_path / "snap.safetensors", {"G": G, "D": D}, {"kimg": 7, "dataset_hash": "f00"})
    code, out, err = _gantl("models", "inspect", str(path), "--json", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    desc = json.loads(out)
    assert desc["format"] == "gantl" and desc["metadata"]["kimg"] == 7 and desc["metadata"]["dataset_hash"] == "f00"
    nets = {n["name"]: n for n in desc["networks"]}
    assert set(nets) == {"G", "D"}
    assert nets["G"]["parameters"] == sum(t.numel() for t in G.state_dict().values())
    assert {t["name"]: (t["shape"], t["dtype"]) for t in nets["G"]["tensors"]} == {
        k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in G.state_dict().items()}
    code, out, err = _gantl("models", "inspect", str(path), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "1.running_var" in out and "dataset_hash" in out
    code, out, err = _gantl("models", "inspect", str(tmp_path / "nope.pkl"), capsys=capsys, monkeypatch=monkeypatch)
    assert (code, err.strip()) == (4, f"error: checkpoint {tmp_path / 'nope.pkl'} not found; check the path")
