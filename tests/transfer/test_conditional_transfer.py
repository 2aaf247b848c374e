"""Unconditional source -> conditional target: the copies make the conditional G equal the source
for every class (StyleGAN2 via the widened mapping layer, DCGAN/ResNet via per-class BN rows)."""

from __future__ import annotations

from types import SimpleNamespace

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


def _small_pair():
    from gantl.models.stylegan2 import Generator

    torch.manual_seed(0)
    kw = dict(z_dim=8, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=2),
              synthesis_kwargs=dict(channel_base=64, channel_max=8))
    return Generator(c_dim=0, **kw).eval(), Generator(c_dim=4, **kw).eval()


def test_label_columns_start_at_fresh_scale_with_one_embedding_for_all_classes() -> None:
    src, tgt = _small_pair()
    state, fresh = conditional_from_unconditional(src.state_dict(), tgt)
    w = state["mapping.fc0.weight"]
    assert w.shape == (8, 16)
    torch.testing.assert_close(w[:, :8], src.state_dict()["mapping.fc0.weight"] * 2 ** 0.5)  # sqrt(16/8)
    # label columns as a freshly initialised conditional mapping layer: randn / lr_multiplier (0.01)
    assert 50 < w[:, 8:].std().item() < 200
    emb = state["mapping.embed.weight"]
    assert emb.shape == (8, 4) and all(torch.equal(emb[:, 0], emb[:, k]) for k in range(4))
    assert fresh == ["mapping.embed.weight", "mapping.embed.bias"]
    # deterministic: G and G_ema, mapped one after the other, get the same values
    again, _ = conditional_from_unconditional(src.state_dict(), tgt)
    assert all(torch.equal(state[k], again[k]) for k in state)


def test_the_class_embedding_gets_gradients_from_the_first_step() -> None:
    """Zero label columns (the first version) passed no gradient to the embedding at all."""
    src, tgt = _small_pair()
    state, _ = conditional_from_unconditional(src.state_dict(), tgt)
    tgt.load_state_dict(state)
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    c = torch.nn.functional.one_hot(torch.arange(6) % 4, 4).float()
    ws = tgt.mapping(z, c)
    torch.testing.assert_close(ws, src.mapping(z, None), rtol=0, atol=1e-5)  # the source, for every class
    ws.square().sum().backward()
    g_embed = tgt.mapping.embed.weight.grad
    assert g_embed is not None and (g_embed.abs().sum(0) > 1e-4).all()  # every class's column moves


def _trained_like(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Perturb every tensor so that class rows, embeddings and statistics differ (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point() and "running_var" not in name and not name.endswith(("_u", "_v")):
                t.add_(0.2 * torch.randn(t.shape, generator=gen))
    return net


def _cond_and_uncond(arch: str, kind: str):
    from gantl.models.registry import build

    if arch == "stylegan2":
        kw = dict(img_resolution=16, img_channels=3)
        if kind == "G":
            kw.update(z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=2),
                      synthesis_kwargs=dict(channel_base=128, channel_max=16))
        else:
            kw.update(channel_base=128, channel_max=16)
    elif arch == "dcgan":
        kw = dict(img_resolution=32, img_channels=3, **({"z_dim": 8, "ngf": 8} if kind == "G" else {"ndf": 8}))
    else:
        kw = dict(img_resolution=32, img_channels=3, ch=8, **({"z_dim": 8} if kind == "G" else {}))
    torch.manual_seed(0)
    cond = _trained_like(build(arch, kind, dict(kw, c_dim=4)), 1)
    uncond = build(arch, kind, dict(kw, c_dim=0))
    return cond, uncond


@pytest.mark.parametrize("arch,kind", [("stylegan2", "G"), ("stylegan2", "D"), ("dcgan", "G"), ("dcgan", "D"),
                                       ("resnet", "G"), ("resnet", "D")])
def test_folding_one_source_class_reproduces_it_without_labels(arch: str, kind: str) -> None:
    from gantl.transfer.conditional import unconditional_from_class

    cond, uncond = _cond_and_uncond(arch, kind)
    cond.eval()
    state, exact = unconditional_from_class(arch, kind, cond.state_dict(), cond.config, uncond, 2)
    uncond.load_state_dict(state)
    uncond.eval()
    c = torch.nn.functional.one_hot(torch.full((4,), 2), 4).float()
    gen = torch.Generator().manual_seed(3)
    if kind == "G":
        z = torch.randn(4, 8, generator=gen)
        want, got = cond(z, c, noise_mode="const"), uncond(z, None, noise_mode="const")
    else:
        x = torch.randn(4, 3, cond.img_resolution, cond.img_resolution, generator=gen)
        want, got = cond(x, c), uncond(x)
    if exact:
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    else:  # ResNet D: spectral norm rescales the folded logit; its direction (ranking) is kept
        assert arch == "resnet" and kind == "D"
        assert torch.equal(torch.argsort(got.flatten()), torch.argsort(want.flatten()))
    other = torch.nn.functional.one_hot(torch.full((4,), 0), 4).float()
    assert not torch.allclose(cond(z, other, noise_mode="const") if kind == "G" else cond(x, other), want)


class _Data(SimpleNamespace):
    def __len__(self) -> int:
        return 100


def test_train_setup_folds_the_given_or_nearest_class(tmp_path, monkeypatch) -> None:
    from gantl.checkpoints.format import save_checkpoint
    from gantl.transfer import conditional

    G, _ = _cond_and_uncond("resnet", "G")
    D, _ = _cond_and_uncond("resnet", "D")
    path = save_checkpoint(tmp_path / "cond.safetensors", {"G": G, "D": D, "G_ema": G},
                           {"options": {"model": "resnet", "cfg": "resnet-tiny"},
                            "class_names": ["cat", "dog", "ship", "truck"]})
    G.eval()
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def setup_with(source_class):
        opts = from_dict(TrainOptions, dict(resume=str(path), model="resnet", cfg="resnet-tiny", resolution=32,
                                            source_class=source_class))
        data = _Data(resolution=32, num_channels=3, c_dim=0)  # only auto ranking reads it
        return opts, build_setup(opts, need_dataset=False, dataset=data)

    _, setup = setup_with("1")
    assert setup.G.c_dim == 0
    want = G(z, torch.nn.functional.one_hot(torch.full((3,), 1), 4).float())
    torch.testing.assert_close(setup.G_ema.eval()(z), want, rtol=1e-4, atol=1e-4)
    # auto: the class with the lowest FID is taken and written back into the options (config.toml)
    monkeypatch.setattr(conditional, "rank_source_classes", lambda *a, **k: [(3, 41.0), (0, 55.0), (1, 90.0)])
    opts, setup = setup_with("auto")
    assert opts.source_class == "3"
    want = G(z, torch.nn.functional.one_hot(torch.full((3,), 3), 4).float())
    torch.testing.assert_close(setup.G_ema.eval()(z), want, rtol=1e-4, atol=1e-4)
    # a class name of the source, or an int from a hand-written config.toml, pick the same class as its index
    for same in ("dog", 1):
        _, setup = setup_with(same)
        want = G(z, torch.nn.functional.one_hot(torch.full((3,), 1), 4).float())
        torch.testing.assert_close(setup.G_ema.eval()(z), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match="class index, auto or one of: cat, dog, ship, truck; not 'horse'"):
        setup_with("horse")
