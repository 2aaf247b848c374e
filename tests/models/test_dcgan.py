"""DCGAN: shapes at every supported resolution, the tutorial layout, conditioning, the contract."""

from __future__ import annotations

import pytest
import torch

from gantl.errors import ConfigError
from gantl.models.dcgan import Discriminator, Generator
from gantl.models.registry import arch_of, build


@pytest.mark.parametrize("res", [32, 64, 128])
@pytest.mark.parametrize("c_dim", [0, 10])
def test_shapes(res: int, c_dim: int) -> None:
    G = Generator(z_dim=16, c_dim=c_dim, img_resolution=res, ngf=8)
    D = Discriminator(c_dim=c_dim, img_resolution=res, ndf=8)
    z = torch.randn(3, 16)
    c = torch.nn.functional.one_hot(torch.tensor([0, 3, 9]), 10).float() if c_dim else None
    img = G(z, c)
    assert img.shape == (3, 3, res, res)
    assert img.abs().max() <= 1.0  # tanh output
    assert D(img, c).shape == (3, 1)


def test_tutorial_layout_at_64() -> None:
    """The 64-px networks have exactly the PyTorch DCGAN tutorial's tensors (ngf = ndf = 64, nz = 100)."""
    G, D = Generator(img_resolution=64), Discriminator(img_resolution=64)
    g_convs = [tuple(m.weight.shape) for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert g_convs == [(100, 512, 4, 4), (512, 256, 4, 4), (256, 128, 4, 4), (128, 64, 4, 4), (64, 3, 4, 4)]
    d_convs = [tuple(m.weight.shape) for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert d_convs == [(64, 3, 4, 4), (128, 64, 4, 4), (256, 128, 4, 4), (512, 256, 4, 4), (1, 512, 4, 4)]
    # Parameter counts of the tutorial's netG / netD (3,576,704 and 2,765,568).
    assert sum(p.numel() for p in G.parameters()) == 3_576_704
    assert sum(p.numel() for p in D.parameters()) == 2_765_568
    assert all(m.bias is None for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    # no batch norm in D's first block, BN in the others
    assert not hasattr(D.blocks[0], "bn") and all(hasattr(b, "bn") for b in D.blocks[1:-1])
    assert len(G.blocks) == 5 and len(D.blocks) == 5


def test_conditional_labels_change_output() -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=2, img_resolution=32, ngf=4)
    D = Discriminator(c_dim=2, img_resolution=32, ndf=4)
    with torch.no_grad():
        for block in G.blocks[:-1]:
            block.bn.gain.weight.normal_()
        D.blocks[-1].embed.weight.normal_()
    G.eval()
    z = torch.randn(4, 8)
    c0 = torch.tensor([[1.0, 0.0]] * 4)
    c1 = torch.tensor([[0.0, 1.0]] * 4)
    assert not torch.allclose(G(z, c0), G(z, c1))
    x = torch.randn(4, 3, 32, 32)
    assert not torch.allclose(D(x, c0), D(x, c1))
    with pytest.raises(ValueError, match="labels of shape"):
        G(z, None)


def test_fresh_conditional_bn_equals_plain_bn() -> None:
    """Zero-initialised class gains/biases make conditional BN start as plain batch norm."""
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=3, img_resolution=32, ngf=4)
    x = torch.randn(5, 16, 4, 4)
    c = torch.eye(3)[[0, 1, 2, 0, 1]]
    bn = G.blocks[0].bn
    ref = torch.nn.functional.batch_norm(x, None, None, training=True, eps=bn.norm.eps)
    torch.testing.assert_close(bn(x, c), ref)


def test_registry_contract_and_rebuild() -> None:
    G = build("dcgan", "G", {"z_dim": 10, "c_dim": 0, "img_resolution": 32, "img_channels": 1, "ngf": 4})
    assert arch_of(G) == "dcgan"
    assert (G.z_dim, G.c_dim, G.img_resolution, G.img_channels) == (10, 0, 32, 1)
    G2 = build("dcgan", "G", G.config)
    assert [k for k in G.state_dict()] == [k for k in G2.state_dict()]
    assert G(torch.randn(2, 10), noise_mode="const").shape == (2, 1, 32, 32)


def test_bad_resolution() -> None:
    with pytest.raises(ConfigError, match="--resolution"):
        Generator(img_resolution=48)
