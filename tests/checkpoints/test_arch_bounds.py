"""Architecture numbers in a checkpoint's metadata are bounded and sized before any network is allocated.

Issue 14 item 5: a 40 KB checkpoint whose metadata said ``channel_base=2**30``, ``z_dim=2**15``
made ``gantl eval`` try to allocate 4 GB and die with an allocator traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gantl.checkpoints.format import (
    METADATA_KEY,
    check_network_record,
    estimate_parameters,
    load_checkpoint,
    read_header,
    save_checkpoint,
)
from gantl.errors import CheckpointError
from gantl.models.registry import build

SMALL_G = dict(img_resolution=16, z_dim=32, w_dim=32, synthesis_kwargs=dict(channel_base=256, channel_max=32))


@pytest.fixture()
def snapshot(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    G = build("stylegan2", "G", SMALL_G)
    D = build("dcgan", "D", dict(img_resolution=32, ndf=8))
    return save_checkpoint(tmp_path / "snap.safetensors", {"G": G, "D": D}, {"kimg": 0.0})


def _rewrite(path: Path, edit) -> Path:
    """Same tensors, metadata changed by ``edit(meta)`` (what a hostile or damaged file looks like)."""
    meta, _ = read_header(path)
    edit(meta)
    out = path.with_name("edited.safetensors")
    save_file(load_file(str(path)), str(out), metadata={METADATA_KEY: json.dumps(meta)})
    return out


def _g_config(meta: dict) -> dict:
    return meta["networks"]["G"]["config"]


@pytest.mark.parametrize("edit, fragment", [
    (lambda m: _g_config(m)["synthesis_kwargs"].update(channel_base=2**30), "channel_base = 1073741824"),
    (lambda m: _g_config(m).update(z_dim=2**15, w_dim=2**15), "parameters"),  # in bounds, but far too big
    (lambda m: _g_config(m).update(img_resolution=2**20), "img_resolution"),
    (lambda m: _g_config(m).setdefault("mapping_kwargs", {}).update(num_layers=10**6), "num_layers"),
    (lambda m: _g_config(m).update(w_dim=-5), "not describe a buildable"),
    (lambda m: _g_config(m).update(bogus=1), "not describe a buildable"),
    (lambda m: m["networks"]["D"]["config"].update(ndf=10**9), "ndf"),
    (lambda m: m["networks"]["G"].update(config=[1, 2]), "not a table"),
    (lambda m: m.pop("format_version"), "no valid format_version"),
])
def test_hostile_architecture_is_refused_in_one_line_before_allocation(snapshot: Path, edit, fragment: str) -> None:
    path = _rewrite(snapshot, edit)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - t0 < 20  # refused from the metadata, not after a huge allocation


def test_eval_of_a_hostile_checkpoint_is_one_line(snapshot: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gantl.cli import app

    path = _rewrite(snapshot, lambda m: _g_config(m).update(z_dim=2**15, w_dim=2**15))
    result = CliRunner().invoke(app, ["eval", "--real", str(tmp_path), "--fake", str(path), "-n", "4"])
    assert isinstance(result.exception, CheckpointError), result.output
    assert "refusing to allocate" in str(result.exception)


def test_genuine_checkpoint_loads_and_estimate_is_exact(snapshot: Path) -> None:
    state = torch.random.get_rng_state()
    ckpt = load_checkpoint(snapshot)
    assert torch.equal(torch.random.get_rng_state(), state)  # sizing never moves the global RNG (exact resume)
    G = ckpt.build("G")
    assert estimate_parameters("stylegan2", "G", ckpt.network_info("G")["config"]) == \
        sum(p.numel() for p in G.parameters())
    for arch, kind, cfg in [("dcgan", "G", dict(img_resolution=32, ngf=8)),
                            ("resnet", "D", dict(img_resolution=32, ch=8)),
                            ("stylegan2", "D", dict(img_resolution=16, channel_base=256, channel_max=32))]:
        net = build(arch, kind, cfg)
        assert estimate_parameters(arch, kind, net.config) == sum(p.numel() for p in net.parameters())


def test_record_without_arch_is_left_to_build(snapshot: Path) -> None:
    assert check_network_record(snapshot, "X", {"class": "foreign.Net", "config": None}, 0) == 0
