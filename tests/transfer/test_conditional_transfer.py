"""Unconditional source -> conditional target: the copies make the conditional G equal the source
for every class (StyleGAN2 via the widened mapping layer, DCGAN/ResNet via per-class BN rows)."""

from __future__ import annotations

import pytest
import torch

from gantl.checkpoints.format import load_checkpoint
from gantl.config import from_dict
from gantl.training.loop import build_setup
from gantl.training.options import TrainOptions
from gantl.transfer.conditional import conditional_from_unconditional
from gantl.transfer.source import resolve_source


def _classes(n: int, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.full((n,), k), 3).float()


@pytest.mark.parametrize("zoo", ["cifar9-stylegan2-32", "cifar9-dcgan-32"])
def test_conditional_target_starts_as_the_source_for_every_class(zoo: str) -> None:
    source = load_checkpoint(resolve_source(zoo))
    src_G = source.build("G_ema").eval()
    arch = source.network_info("G")["arch"]
    opts = from_dict(TrainOptions, dict(resume=zoo, resolution=32, num_classes=3, model=arch,
                                        cfg="cpu-tiny" if arch == "stylegan2" else "dcgan-small"))
    setup = build_setup(opts, need_dataset=False)
    assert setup.G.c_dim == 3 and setup.D.c_dim == 3
    G = setup.G_ema.eval()
    z = torch.randn(5, src_G.z_dim, generator=torch.Generator().manual_seed(0))
    want = src_G(z, None, noise_mode="const")
    for k in range(3):
        got = G(z, _classes(5, k), noise_mode="const")
        torch.testing.assert_close(got, want, rtol=0, atol=2e-5)
    # every D tensor with an unchanged shape is the source's
    src_D = source.tensors["D"]
    same = [k for k, v in setup.D.state_dict().items() if k in src_D and src_D[k].shape == v.shape]
    assert same and all(torch.equal(setup.D.state_dict()[k], src_D[k]) for k in same)


def test_new_label_columns_start_at_zero_and_the_rest_is_rescaled() -> None:
    from gantl.models.stylegan2 import Generator

    torch.manual_seed(0)
    src = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                    mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=8))
    tgt = Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=8, img_channels=3,
                    mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=8))
    state, fresh = conditional_from_unconditional(src.state_dict(), tgt)
    w = state["mapping.fc0.weight"]
    assert w.shape == (8, 16) and torch.count_nonzero(w[:, 8:]) == 0
    torch.testing.assert_close(w[:, :8], src.state_dict()["mapping.fc0.weight"] * 2 ** 0.5)  # sqrt(16/8)
    assert fresh == ["mapping.embed.weight", "mapping.embed.bias"]
