"""scale-shift: G starts bitwise as the source, only the new per-channel vectors train, and its
snapshots (which hold tensors a bare network does not have) reload in eval, generate, resume and
as a source, because the adapter is recorded in the snapshot metadata."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gantl.checkpoints.format import load_checkpoint, save_checkpoint
from gantl.config import from_dict, load_toml
from gantl.models.registry import build
from gantl.training.loop import Trainer, build_setup, latest_snapshot
from gantl.training.options import TrainOptions
from gantl.transfer.base import adapters_of, parse_method
from gantl.transfer.scale_shift import PARAMS

QUICK = dict(progress=False, tensorboard=False, grid_size=2)


def _opts(data: Path, tmp_path: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), resume="cifar9-stylegan2-32", batch=4, kimg=0.008, tick_kimg=0.004,
                snap_kimg=0.004, outdir=str(tmp_path / "runs"), methods=["scale-shift"], seed=1, **QUICK)
    base.update(kw)
    return from_dict(TrainOptions, base)


def _is_new(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in PARAMS


@pytest.mark.parametrize("arch,kwargs", [
    ("stylegan2", dict(z_dim=16, w_dim=16, img_resolution=16, img_channels=3,
                       mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16))),
    ("dcgan", dict(z_dim=8, img_resolution=32, img_channels=3, ngf=8)),
    ("resnet", dict(z_dim=8, c_dim=2, img_resolution=32, img_channels=3, ch=8)),
])
def test_generator_starts_exactly_as_the_source_and_only_new_vectors_train(arch: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    G = build(arch, "G", kwargs)
    z = torch.randn([3, G.z_dim])
    c = torch.eye(2)[[0, 1, 0]] if G.c_dim else None
    G.eval()
    with torch.no_grad():
        before = G(z, c, noise_mode="const")
    parse_method("scale-shift").prepare(G, torch.nn.Linear(1, 1), SimpleNamespace())
    with torch.no_grad():
        after = G(z, c, noise_mode="const")
    assert torch.equal(before, after)
    names = [n for n, _ in G.named_parameters()]
    trainable = [n for n, p in G.named_parameters() if p.requires_grad]
    assert trainable and all(_is_new(n) for n in trainable)
    assert len(trainable) == sum(_is_new(n) for n in names)
    record = adapters_of(G)
    assert record[0]["kind"] == "scale-shift" and len(record[0]["modules"]) * 2 == len(trainable)
    with torch.no_grad():  # the hooks act: a shift moves the output
        next(p for n, p in G.named_parameters() if n.endswith("ss_shift")).add_(0.5)
        assert not torch.equal(G(z, c, noise_mode="const"), before)


def test_training_moves_only_the_scale_shift_and_snapshots_reload_everywhere(tiny_dataset: Path,
                                                                            tmp_path: Path) -> None:
    trainer = Trainer(_opts(tiny_dataset, tmp_path))
    G0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    D0 = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    run = trainer.train()
    G1 = trainer.G.state_dict()
    for name, value in G1.items():
        if _is_new(name) or name == "mapping.w_avg":  # w_avg: a running statistic of w, not a weight
            continue
        assert torch.equal(G0[name], value), f"{name} is frozen but changed"
    assert any(not torch.equal(G0[n], G1[n]) for n in G1 if _is_new(n))
    assert any(not torch.equal(D0[n], v) for n, v in trainer.D.state_dict().items())

    snap = run / "snapshot-000000.008.safetensors"
    ckpt = load_checkpoint(snap)
    assert ckpt.network_info("G_ema")["adapters"][0]["kind"] == "scale-shift"
    assert "D" not in ckpt.metadata["networks"] or "adapters" not in ckpt.network_info("D")
    # Checkpoint.build replays the adapter, loads strictly, and reproduces G_ema
    rebuilt = ckpt.build("G_ema").eval()
    z = torch.randn([2, rebuilt.z_dim], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(rebuilt(z, noise_mode="const"), trainer.G_ema(z, noise_mode="const"))
    # the loaders of `gantl generate` and `gantl eval`
    from gantl.generate import load_generator as generate_loader
    from gantl.metrics.api import load_generator as eval_loader

    for G in (generate_loader(snap).G, eval_loader(snap)):
        with torch.no_grad():
            assert torch.equal(G.eval()(z, noise_mode="const"), trainer.G_ema(z, noise_mode="const"))

    # --resume-run: the interrupted run continues to the same weights as an uninterrupted one
    cut_opts = _opts(tiny_dataset, tmp_path, kimg=0.004, outdir=str(tmp_path / "cut"))
    cut = Trainer(cut_opts).train()
    opts = load_toml(TrainOptions, cut / "config.toml", ["kimg=0.008"])
    Trainer(opts, run_dir=cut, resume_tag=latest_snapshot(cut)).train()
    a = load_checkpoint(snap).tensors
    b = load_checkpoint(cut / "snapshot-000000.008.safetensors").tensors
    assert all(torch.equal(a[net][k], b[net][k]) for net in a for k in a[net])

    # the snapshot as a --resume source: same structure, its scale/shift values, with or without the method
    for methods in ([], ["scale-shift"], ["freezed:1"]):
        setup = build_setup(_opts(tiny_dataset, tmp_path, resume=str(snap), methods=methods))
        loaded = setup.G.state_dict()
        assert set(loaded) == set(ckpt.tensors["G"])
        assert all(torch.equal(loaded[k], ckpt.tensors["G"][k]) for k in loaded)
        trains = {n for n, p in setup.G.named_parameters() if p.requires_grad}
        if methods == ["scale-shift"]:
            assert trains and all(_is_new(n) for n in trains)
        else:
            assert trains == {n for n, _ in setup.G.named_parameters()}


def test_a_source_with_an_unknown_adapter_is_refused_in_one_line(tmp_path: Path) -> None:
    from gantl.errors import GantlError

    G = build("dcgan", "G", dict(z_dim=8, img_resolution=32, ngf=8))
    G.gantl_adapters = [{"kind": "from-the-future"}]
    path = save_checkpoint(tmp_path / "x.safetensors", {"G": G})
    with pytest.raises(GantlError, match="adapter 'from-the-future' is not registered"):
        load_checkpoint(path).build("G")
