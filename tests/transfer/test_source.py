"""--resume SOURCE: a fitting source loads exactly; a misfit is refused before training, naming the tensor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gantl.checkpoints.format import save_checkpoint
from gantl.config import from_dict
from gantl.errors import SourceMismatchError
from gantl.models.dcgan import Discriminator, Generator
from gantl.training.loop import build_setup
from gantl.training.options import TrainOptions


def _source(tmp_path: Path, res: int = 32, c_dim: int = 0, ngf: int = 32) -> Path:
    torch.manual_seed(1)
    G = Generator(z_dim=100, c_dim=c_dim, img_resolution=res, ngf=ngf)
    D = Discriminator(c_dim=c_dim, img_resolution=res, ndf=32)
    G_ema = Generator(**G.config)
    with torch.no_grad():
        for p in G_ema.parameters():
            p.fill_(0.5)
    return save_checkpoint(tmp_path / f"src{res}_{c_dim}.safetensors", {"G": G, "D": D, "G_ema": G_ema}, {"kimg": 1})


def _opts(**kw) -> TrainOptions:
    base = dict(model="dcgan", cfg="dcgan-small", resolution=32, progress=False)
    base.update(kw)
    return from_dict(TrainOptions, base)


def test_fitting_source_loads_all_three_networks(tmp_path: Path) -> None:
    path = _source(tmp_path)
    setup = build_setup(_opts(resume=str(path)), need_dataset=False)
    from safetensors.torch import load_file

    tensors = load_file(path)
    for net, module in (("G", setup.G), ("D", setup.D), ("G_ema", setup.G_ema)):
        for name, t in module.state_dict().items():
            assert torch.equal(t, tensors[f"{net}.{name}"]), f"{net}.{name}"


def test_resolution_mismatch_names_first_tensor_and_fix(tmp_path: Path) -> None:
    path = _source(tmp_path, res=64)
    with pytest.raises(SourceMismatchError) as err:
        build_setup(_opts(resume=str(path)), need_dataset=False)
    msg = str(err.value)
    assert "G.blocks.0.conv.weight" in msg
    assert "source shape [100, 256, 4, 4]" in msg and "target shape [100, 128, 4, 4]" in msg
    assert "--resolution 64" in msg and "--allow-partial" in msg


def test_conditioning_mismatch(tmp_path: Path) -> None:
    path = _source(tmp_path, c_dim=10)
    with pytest.raises(SourceMismatchError) as err:  # 10 source classes cannot fill 3 target classes
        build_setup(_opts(resume=str(path), num_classes=3), need_dataset=False)
    msg = str(err.value)
    assert "G.blocks.0.bn" in msg and "--num-classes 10" in msg
    # an unconditional target starts from one source class, which must be named (or ranked on data)
    from gantl.errors import ConfigError

    with pytest.raises(ConfigError, match="--data, or give the class index"):
        build_setup(_opts(resume=str(path)), need_dataset=False)


def test_allow_partial_keeps_fitting_layers(tmp_path: Path) -> None:
    path = _source(tmp_path, res=64)
    setup = build_setup(_opts(resume=str(path), allow_partial=True), need_dataset=False)
    from safetensors.torch import load_file

    tensors = load_file(path)
    # D's first conv (3 -> ndf) has the same shape at 32 and 64 px and is kept; G's first block is not
    assert setup.G.blocks[0].conv.weight.shape != tensors["G.blocks.0.conv.weight"].shape
    assert torch.equal(setup.D.blocks[0].conv.weight, tensors["D.blocks.0.conv.weight"])


def test_missing_source_file(tmp_path: Path) -> None:
    from gantl.errors import GantlError

    with pytest.raises(GantlError):
        build_setup(_opts(resume=str(tmp_path / "nope.safetensors")), need_dataset=False)
