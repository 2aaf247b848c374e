"""gantl checkpoint format: bitwise round trip, strict and partial loads, atomic writes, training state."""

from __future__ import annotations

import logging
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gantl.checkpoints.format import (
    FORMAT_VERSION,
    LoadReport,
    atomic_write,
    load_checkpoint,
    load_state,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from gantl.errors import CheckpointError


class Net(nn.Module):
    """Parameters and buffers of several dtypes, including an integer buffer and a half one."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(3, width)
        self.norm = nn.BatchNorm1d(width)  # running stats + int64 num_batches_tracked
        self.register_buffer("half_table", torch.randn(5, dtype=torch.float16))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)  # not part of the state


def _bytes(t: torch.Tensor) -> bytes:
    return t.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen).to(t.dtype))
            else:
                t.fill_(seed + 7)
    return net


def test_bitwise_round_trip_with_metadata(tmp_path: Path):
    G, D = _randomise(Net(), 1), _randomise(Net(6), 2)
    with torch.no_grad():  # awkward values must survive bit for bit
        G.fc.weight[0, :3] = torch.tensor([float("nan"), float("-inf"), -0.0])
        G.half_table[0] = torch.finfo(torch.float16).tiny / 2  # subnormal
    meta = {"kimg": 12.5, "dataset_hash": "ab" * 32, "options": {"lr": 0.002, "methods": ["freezed"]},
            "path": tmp_path, "np_value": np.float32(0.25)}
    out = save_checkpoint(tmp_path / "snap.safetensors", {"G": G, "D": D, "G_ema": G}, meta)
    assert out == tmp_path / "snap.safetensors" and sorted(os.listdir(tmp_path)) == ["snap.safetensors"]

    ckpt = load_checkpoint(out)
    assert set(ckpt.networks) == {"D", "G", "G_ema"}
    for name, net in (("G", G), ("D", D), ("G_ema", G)):
        state = net.state_dict()
        assert set(ckpt.tensors[name]) == set(state) and "scratch" not in ckpt.tensors[name]
        for key, t in state.items():
            loaded = ckpt.tensors[name][key]
            assert loaded.dtype == t.dtype and loaded.shape == t.shape and _bytes(loaded) == _bytes(t), key
    m = ckpt.metadata
    assert m["kimg"] == 12.5 and m["options"] == {"lr": 0.002, "methods": ["freezed"]}
    assert m["path"] == str(tmp_path) and m["np_value"] == 0.25 and m["dataset_hash"] == "ab" * 32
    assert m["format"] == "gantl-checkpoint" and m["format_version"] == FORMAT_VERSION and m["gantl_version"]
    assert m["networks"]["G"]["class"].endswith("Net") and m["networks"]["G"]["arch"] is None

    # and back into fresh networks: identical state, byte for byte
    fresh = Net()
    report = load_state(fresh, ckpt.tensors["G"])
    assert report.complete and len(report.loaded) == len(G.state_dict())
    assert all(_bytes(a) == _bytes(b) for a, b in zip(fresh.state_dict().values(), G.state_dict().values(),
                                                       strict=True))


def test_build_through_registry_reproduces_outputs(tmp_path: Path):
    from gantl.models import stylegan2  # a plain import: a broken module must fail here, not skip
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=8, img_channels=3,
                            mapping_kwargs={"num_layers": 1},
                            synthesis_kwargs={"channel_base": 64, "channel_max": 16})
    _randomise(G, 3)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "g.safetensors", {"G_ema": G}, {"kimg": 0}))
    assert ckpt.metadata["networks"]["G_ema"]["arch"] == "stylegan2"
    rebuilt = ckpt.build("G_ema")
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt(z, None, noise_mode="const"), G(z, None, noise_mode="const"))
    with pytest.raises(CheckpointError, match="has no network 'D'; it holds G_ema"):
        ckpt.build("D")


def _reference_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize(
    "damage, fragment",
    [
        ("drop", r"tensor 'fc\.bias' is missing from the file"),
        ("reshape", r"tensor 'fc\.weight' has shape \[4, 5\] in the file but \[4, 3\] in the network"),
        ("extra", r"the file has tensor 'extra\.weight' that the network does not"),
    ],
)
def test_strict_load_refuses_and_changes_nothing(damage: str, fragment: str):
    tensors = _reference_state(_randomise(Net(), 5))
    if damage == "drop":
        del tensors["fc.bias"]
    elif damage == "reshape":
        tensors["fc.weight"] = torch.zeros(4, 5)
    else:
        tensors["extra.weight"] = torch.zeros(1)
    target = _randomise(Net(), 9)
    before = _reference_state(target)
    with pytest.raises(CheckpointError, match=fragment + r".*allow_partial=True \(--allow-partial\)"):
        load_state(target, tensors, name="G")
    after = target.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # refused means untouched


def test_partial_load_lists_exactly_what_was_skipped(caplog: pytest.LogCaptureFixture):
    source = _randomise(Net(), 5)
    tensors = _reference_state(source)
    del tensors["fc.bias"]
    tensors["norm.weight"] = torch.ones(7)
    tensors["extra.weight"] = torch.zeros(1)
    tensors["half_table"] = tensors["half_table"].float()  # dtype differs: converted, not skipped
    target = _randomise(Net(), 9)
    before = _reference_state(target)
    with caplog.at_level(logging.WARNING, logger="gantl.checkpoints.format"):
        report = load_state(target, tensors, allow_partial=True, name="G")
    assert isinstance(report, LoadReport) and not report.complete
    assert report.missing == ["fc.bias"]
    assert report.unexpected == ["extra.weight"]
    assert report.mismatched == [("norm.weight", (7,), (4,))]
    assert report.skipped == ["extra.weight", "norm.weight"]
    assert report.left_at_init == ["fc.bias", "norm.weight"]
    assert report.converted == [("half_table", "torch.float32", "torch.float16")]
    expected_loaded = sorted(set(source.state_dict()) - {"fc.bias", "norm.weight"})
    assert sorted(report.loaded) == expected_loaded
    after = target.state_dict()
    for key in expected_loaded:
        assert torch.equal(after[key], source.state_dict()[key]), key
    for key in report.left_at_init:
        assert torch.equal(after[key], before[key]), key
    logged = caplog.text
    assert "partial load" in logged and "fc.bias" in logged and "extra.weight" in logged and "norm.weight" in logged
    assert report.to_dict()["mismatched"] == [{"name": "norm.weight", "file_shape": [7], "net_shape": [4]}]


def test_interrupted_write_keeps_the_old_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = save_checkpoint(tmp_path / "snap.safetensors", {"G": _randomise(Net(), 1)}, {"kimg": 1})
    original = path.read_bytes()
    import gantl.checkpoints.format as fmt

    def crash(tmp, data, final=None):  # the bytes writer every checkpoint and state file goes through
        Path(tmp).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(fmt, "write_bytes_to", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"G": _randomise(Net(), 2)}, {"kimg": 2})
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["snap.safetensors"]
    assert load_checkpoint(path).metadata["kimg"] == 1

    def failing_writer(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "state.pt", failing_writer)
    assert os.listdir(tmp_path) == ["snap.safetensors"]


def test_bad_files_give_one_line_errors(tmp_path: Path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    path = save_checkpoint(tmp_path / "snap.safetensors", {"G": Net()}, {})
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without gantl metadata"):
        load_checkpoint(tmp_path / "plain.safetensors")
    torch.save(Net().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="gantl models import"):
        load_checkpoint(tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path / "x.safetensors", {"G": Net()}, {"bad": object()})
    with pytest.raises(CheckpointError, match="contain no '.'"):
        save_checkpoint(tmp_path / "x.safetensors", {"G.x": Net()}, {})


def test_training_state_round_trip(tmp_path: Path):
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(2):
        opt.zero_grad()
        net.fc(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    state = {
        "optimizers": {"G": opt.state_dict()},
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.RandomState(3).get_state(),
        "python_rng": random.Random(4).getstate(),
        "augment": {"p": torch.tensor(0.125), "adjust": 0.5},
        "kimg": 40.0,
    }
    path = save_training_state(tmp_path / "state.pt", state)
    back = load_training_state(path)
    assert back["kimg"] == 40.0 and torch.equal(back["torch_rng"], state["torch_rng"])
    assert back["python_rng"] == state["python_rng"]
    rs = np.random.RandomState()
    rs.set_state(back["numpy_rng"])
    assert rs.randint(0, 2**31, 5).tolist() == np.random.RandomState(3).randint(0, 2**31, 5).tolist()
    opt2 = torch.optim.Adam(Net().parameters(), lr=0.5)
    opt2.load_state_dict(back["optimizers"]["G"])
    assert opt2.param_groups[0]["lr"] == 0.01
    for key, value in opt.state_dict()["state"][0].items():
        assert torch.equal(opt2.state_dict()["state"][0][key], value)


class _Shell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_training_state_never_runs_code(tmp_path: Path):
    marker = tmp_path / "ran"
    torch.save({"optimizers": _Shell(marker)}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match=r"was refused: it asks for posix\.system, "):
        load_training_state(tmp_path / "state.pt")
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(_Shell(marker), protocol=2))
    with pytest.raises(CheckpointError):
        load_training_state(tmp_path / "raw.pt")
    assert not marker.exists()


def test_training_state_refusal_is_a_whole_sentence_naming_the_global(tmp_path: Path):
    """Issue 14: refusals were torch's advice cut at 200 characters, without the refused global."""
    torch.save({"optimizers": _Shell(tmp_path / "m")}, tmp_path / "a.pt")
    torch.save({"x": LoadReport("G")}, tmp_path / "b.pt")  # any class that is not plain data
    for name, refused in (("a.pt", "posix.system"), ("b.pt", "gantl.checkpoints.format.LoadReport")):
        with pytest.raises(CheckpointError) as err:
            load_training_state(tmp_path / name)
        message = str(err.value)
        assert f"it asks for {refused}," in message and message.endswith("not written by gantl")
        assert "add_safe_globals" not in message and "\n" not in message
    (tmp_path / "c.pt").write_bytes((tmp_path / "a.pt").read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated; resume from an earlier snapshot$"):
        load_training_state(tmp_path / "c.pt")


@pytest.mark.parametrize("first_bytes", [b"\x80", b"PK"])
def test_header_length_that_looks_like_pickle_still_loads(tmp_path: Path, first_bytes: bytes):
    """A safetensors file starts with its header length (u64, little-endian); when that length's
    first byte is 0x80 (a pickle's first byte) or its first two are 'PK' (a zip's), the file is still a
    checkpoint. The 0x80 case hit 1 training snapshot in 256, by the length of its metadata."""
    G = _randomise(Net(), 3)
    empty = save_checkpoint(tmp_path / "s.safetensors", {"G": G}, {"note": ""})
    base = int.from_bytes(empty.read_bytes()[:8], "little")
    want = int.from_bytes(first_bytes, "little")
    mask = 0xFF if len(first_bytes) == 1 else 0xFFFF
    target = base + ((want - base) & mask)  # the smallest header length >= base with those first bytes
    for pad in range(target - base - 16, target - base + 16):  # the header is padded to 8 bytes
        if pad < 0:
            continue
        path = save_checkpoint(tmp_path / "s.safetensors", {"G": G}, {"note": "x" * pad})
        if path.read_bytes()[:len(first_bytes)] == first_bytes:
            break
    else:
        pytest.fail(f"no metadata length gave a header starting with {first_bytes!r}")
    ckpt = load_checkpoint(path)
    assert ckpt.metadata["note"] == "x" * pad
    assert torch.equal(ckpt.tensors["G"]["fc.weight"], G.fc.weight.detach())
