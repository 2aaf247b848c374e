"""StyleGAN2 parameter/buffer names and shapes equal stylegan2-ada-pytorch's ``state_dict()``.

The expected tables are written from NVIDIA's ``training/networks.py`` architecture (read by
hand), not from gantl's output: an explicit literal table for the ``cifar`` preset at 32 px, and
an independent generator of the table (written from the reference's rules) for ``paper256``.
If ``GANTL_NVIDIA_REPO`` points at a checkout of NVlabs/stylegan2-ada-pytorch, an extra test
also builds NVIDIA's own networks and compares names, shapes and outputs.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from gantl.models.presets import get_preset
from gantl.models.stylegan2 import Discriminator, Generator


def table(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def parse(text: str) -> dict[str, tuple[int, ...]]:
    """'name  d0 d1 ...' per line ('-' for a scalar) -> {name: shape}."""
    out = {}
    for line in text.strip().splitlines():
        name, *dims = line.split()
        out[name] = () if dims == ["-"] else tuple(int(d) for d in dims)
    return out


# --- cifar preset, 32 px, RGB, unconditional: z=w=512, 2 mapping layers, 512 channels everywhere,
# --- G architecture 'skip', D architecture 'orig' (train.py sets it for cifar), mbstd 1 channel.
CIFAR_G = parse("""
synthesis.b4.const 512 4 4
synthesis.b4.resample_filter 4 4
synthesis.b4.conv1.weight 512 512 3 3
synthesis.b4.conv1.noise_strength -
synthesis.b4.conv1.bias 512
synthesis.b4.conv1.resample_filter 4 4
synthesis.b4.conv1.noise_const 4 4
synthesis.b4.conv1.affine.weight 512 512
synthesis.b4.conv1.affine.bias 512
synthesis.b4.torgb.weight 3 512 1 1
synthesis.b4.torgb.bias 3
synthesis.b4.torgb.affine.weight 512 512
synthesis.b4.torgb.affine.bias 512
synthesis.b8.resample_filter 4 4
synthesis.b8.conv0.weight 512 512 3 3
synthesis.b8.conv0.noise_strength -
synthesis.b8.conv0.bias 512
synthesis.b8.conv0.resample_filter 4 4
synthesis.b8.conv0.noise_const 8 8
synthesis.b8.conv0.affine.weight 512 512
synthesis.b8.conv0.affine.bias 512
synthesis.b8.conv1.weight 512 512 3 3
synthesis.b8.conv1.noise_strength -
synthesis.b8.conv1.bias 512
synthesis.b8.conv1.resample_filter 4 4
synthesis.b8.conv1.noise_const 8 8
synthesis.b8.conv1.affine.weight 512 512
synthesis.b8.conv1.affine.bias 512
synthesis.b8.torgb.weight 3 512 1 1
synthesis.b8.torgb.bias 3
synthesis.b8.torgb.affine.weight 512 512
synthesis.b8.torgb.affine.bias 512
synthesis.b16.resample_filter 4 4
synthesis.b16.conv0.weight 512 512 3 3
synthesis.b16.conv0.noise_strength -
synthesis.b16.conv0.bias 512
synthesis.b16.conv0.resample_filter 4 4
synthesis.b16.conv0.noise_const 16 16
synthesis.b16.conv0.affine.weight 512 512
synthesis.b16.conv0.affine.bias 512
synthesis.b16.conv1.weight 512 512 3 3
synthesis.b16.conv1.noise_strength -
synthesis.b16.conv1.bias 512
synthesis.b16.conv1.resample_filter 4 4
synthesis.b16.conv1.noise_const 16 16
synthesis.b16.conv1.affine.weight 512 512
synthesis.b16.conv1.affine.bias 512
synthesis.b16.torgb.weight 3 512 1 1
synthesis.b16.torgb.bias 3
synthesis.b16.torgb.affine.weight 512 512
synthesis.b16.torgb.affine.bias 512
synthesis.b32.resample_filter 4 4
synthesis.b32.conv0.weight 512 512 3 3
synthesis.b32.conv0.noise_strength -
synthesis.b32.conv0.bias 512
synthesis.b32.conv0.resample_filter 4 4
synthesis.b32.conv0.noise_const 32 32
synthesis.b32.conv0.affine.weight 512 512
synthesis.b32.conv0.affine.bias 512
synthesis.b32.conv1.weight 512 512 3 3
synthesis.b32.conv1.noise_strength -
synthesis.b32.conv1.bias 512
synthesis.b32.conv1.resample_filter 4 4
synthesis.b32.conv1.noise_const 32 32
synthesis.b32.conv1.affine.weight 512 512
synthesis.b32.conv1.affine.bias 512
synthesis.b32.torgb.weight 3 512 1 1
synthesis.b32.torgb.bias 3
synthesis.b32.torgb.affine.weight 512 512
synthesis.b32.torgb.affine.bias 512
mapping.fc0.weight 512 512
mapping.fc0.bias 512
mapping.fc1.weight 512 512
mapping.fc1.bias 512
mapping.w_avg 512
""")

CIFAR_D = parse("""
b32.resample_filter 4 4
b32.fromrgb.weight 512 3 1 1
b32.fromrgb.bias 512
b32.fromrgb.resample_filter 4 4
b32.conv0.weight 512 512 3 3
b32.conv0.bias 512
b32.conv0.resample_filter 4 4
b32.conv1.weight 512 512 3 3
b32.conv1.bias 512
b32.conv1.resample_filter 4 4
b16.resample_filter 4 4
b16.conv0.weight 512 512 3 3
b16.conv0.bias 512
b16.conv0.resample_filter 4 4
b16.conv1.weight 512 512 3 3
b16.conv1.bias 512
b16.conv1.resample_filter 4 4
b8.resample_filter 4 4
b8.conv0.weight 512 512 3 3
b8.conv0.bias 512
b8.conv0.resample_filter 4 4
b8.conv1.weight 512 512 3 3
b8.conv1.bias 512
b8.conv1.resample_filter 4 4
b4.conv.weight 512 513 3 3
b4.conv.bias 512
b4.conv.resample_filter 4 4
b4.fc.weight 512 8192
b4.fc.bias 512
b4.out.weight 1 512
b4.out.bias 1
""")

# With 10 classes, G's mapping gains a label embedding (10 -> w_dim) that is concatenated to z;
# D gains an 8-layer label mapping network (its mapping_kwargs are empty in train.py, so the
# MappingNetwork default of 8 layers applies) and its output becomes a cmap_dim=512 projection.
CIFAR10_G_DELTA = parse("""
mapping.embed.weight 512 10
mapping.embed.bias 512
mapping.fc0.weight 512 1024
""")
CIFAR10_D_DELTA = {
    **parse("""
mapping.embed.weight 512 10
mapping.embed.bias 512
b4.out.weight 512 512
b4.out.bias 512
"""),
    **{f"mapping.fc{i}.{p}": (512, 512) if p == "weight" else (512,) for i in range(8) for p in ("weight", "bias")},
}


def reference_generator_table(res: int, z_dim: int, w_dim: int, c_dim: int, map_layers: int, channel_base: int,
                              channel_max: int, img_channels: int = 3) -> dict[str, tuple[int, ...]]:
    """The names/shapes rules of NVIDIA's Generator with the default 'skip' synthesis."""
    ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
    t: dict[str, tuple[int, ...]] = {}
    feats = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * map_layers
    if c_dim:
        t["mapping.embed.weight"], t["mapping.embed.bias"] = (w_dim, c_dim), (w_dim,)
    for i in range(map_layers):
        t[f"mapping.fc{i}.weight"], t[f"mapping.fc{i}.bias"] = (feats[i + 1], feats[i]), (feats[i + 1],)
    t["mapping.w_avg"] = (w_dim,)

    def layer(prefix: str, cin: int, cout: int, r: int) -> None:
        t[f"{prefix}.weight"] = (cout, cin, 3, 3)
        t[f"{prefix}.bias"] = (cout,)
        t[f"{prefix}.noise_strength"] = ()
        t[f"{prefix}.noise_const"] = (r, r)
        t[f"{prefix}.resample_filter"] = (4, 4)
        t[f"{prefix}.affine.weight"], t[f"{prefix}.affine.bias"] = (cin, w_dim), (cin,)

    r = 4
    while r <= res:
        p = f"synthesis.b{r}"
        t[f"{p}.resample_filter"] = (4, 4)
        if r == 4:
            t[f"{p}.const"] = (ch(4), 4, 4)
        else:
            layer(f"{p}.conv0", ch(r // 2), ch(r), r)
        layer(f"{p}.conv1", ch(r), ch(r), r)
        t[f"{p}.torgb.weight"], t[f"{p}.torgb.bias"] = (img_channels, ch(r), 1, 1), (img_channels,)
        t[f"{p}.torgb.affine.weight"], t[f"{p}.torgb.affine.bias"] = (ch(r), w_dim), (ch(r),)
        r *= 2
    return t


def reference_discriminator_table(res: int, c_dim: int, channel_base: int, channel_max: int, architecture: str,
                                  mbstd_channels: int = 1, img_channels: int = 3) -> dict[str, tuple[int, ...]]:
    """The names/shapes rules of NVIDIA's Discriminator (resnet or orig blocks, default epilogue)."""
    ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
    t: dict[str, tuple[int, ...]] = {}

    def conv(prefix: str, cin: int, cout: int, k: int, bias: bool = True) -> None:
        t[f"{prefix}.weight"] = (cout, cin, k, k)
        if bias:
            t[f"{prefix}.bias"] = (cout,)
        t[f"{prefix}.resample_filter"] = (4, 4)

    r = res
    while r > 4:
        p = f"b{r}"
        t[f"{p}.resample_filter"] = (4, 4)
        if r == res:
            conv(f"{p}.fromrgb", img_channels, ch(r), 1)
        conv(f"{p}.conv0", ch(r), ch(r), 3)
        conv(f"{p}.conv1", ch(r), ch(r // 2), 3)
        if architecture == "resnet":
            conv(f"{p}.skip", ch(r), ch(r // 2), 1, bias=False)
        r //= 2
    cmap = ch(4) if c_dim else 0
    if c_dim:
        t["mapping.embed.weight"], t["mapping.embed.bias"] = (cmap, c_dim), (cmap,)
        for i in range(8):
            t[f"mapping.fc{i}.weight"], t[f"mapping.fc{i}.bias"] = (cmap, cmap), (cmap,)
    conv("b4.conv", ch(4) + mbstd_channels, ch(4), 3)
    t["b4.fc.weight"], t["b4.fc.bias"] = (ch(4), ch(4) * 16), (ch(4),)
    t["b4.out.weight"], t["b4.out.bias"] = (cmap or 1, ch(4)), (cmap or 1,)
    return t


def build(preset: str, res: int, c_dim: int) -> tuple[Generator, Discriminator]:
    p = get_preset(preset)
    return Generator(**p.generator_kwargs(res, 3, c_dim)), Discriminator(**p.discriminator_kwargs(res, 3, c_dim))


@pytest.fixture(scope="module")
def cifar_nets() -> tuple[Generator, Discriminator]:
    return build("cifar", 32, 0)


def test_cifar_unconditional_tables(cifar_nets) -> None:
    G, D = cifar_nets
    assert table(G) == CIFAR_G
    assert table(D) == CIFAR_D
    assert G.num_ws == 8  # 7 convs + the last torgb


def test_cifar_ten_classes_tables() -> None:
    G, D = build("cifar", 32, 10)
    assert table(G) == {**CIFAR_G, **CIFAR10_G_DELTA}
    assert table(D) == {**CIFAR_D, **CIFAR10_D_DELTA}


def test_explicit_tables_agree_with_reference_rules() -> None:
    # The literal tables and the rule-based generators were written separately; they must agree.
    assert CIFAR_G == reference_generator_table(32, 512, 512, 0, 2, 32768, 512)
    assert CIFAR_D == reference_discriminator_table(32, 0, 32768, 512, "orig")
    assert {**CIFAR_D, **CIFAR10_D_DELTA} == reference_discriminator_table(32, 10, 32768, 512, "orig")


def test_paper256_tables() -> None:
    # paper256: fmaps 0.5 -> channel_base 16384 (512 up to 32 px, then 256, 128, 64), 8 mapping layers,
    # resnet D with 1x1 'skip' convs.
    G, D = build("paper256", 256, 0)
    assert table(G) == reference_generator_table(256, 512, 512, 0, 8, 16384, 512)
    assert table(D) == reference_discriminator_table(256, 0, 16384, 512, "resnet")
    assert table(D)["b256.conv0.weight"] == (64, 64, 3, 3)
    assert table(D)["b256.skip.weight"] == (128, 64, 1, 1)
    assert G.num_ws == 14


def test_state_dict_round_trip_is_strict(cifar_nets) -> None:
    G, _ = cifar_nets
    G2 = Generator(**G.config)
    G2.load_state_dict(G.state_dict(), strict=True)
    for k, v in G.state_dict().items():
        assert torch.equal(v, G2.state_dict()[k]), k


NVIDIA_REPO = os.environ.get("GANTL_NVIDIA_REPO")


@pytest.mark.skipif(not NVIDIA_REPO, reason="set GANTL_NVIDIA_REPO to a stylegan2-ada-pytorch checkout to compare")
@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_matches_nvidia_code(architecture: str, c_dim: int) -> None:
    sys.path.insert(0, NVIDIA_REPO)
    from training import networks as nv  # type: ignore[import-not-found]

    sk = dict(channel_base=512, channel_max=32, conv_clamp=256, num_fp16_res=0)
    gk = dict(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
              synthesis_kwargs=dict(sk, architecture=architecture))
    dk = dict(c_dim=c_dim, img_resolution=16, img_channels=3, architecture=architecture, **sk,
              epilogue_kwargs=dict(mbstd_group_size=2))
    torch.manual_seed(0)
    Gn, Dn = nv.Generator(**gk).eval(), nv.Discriminator(**dk)
    with torch.no_grad():
        Gn.mapping.w_avg.normal_()
        for name, p in Gn.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.2)
    G, D = Generator(**gk).eval(), Discriminator(**dk)
    assert list(table(G).items()) == list(table(Gn).items())
    assert list(table(D).items()) == list(table(Dn).items())
    G.load_state_dict(Gn.state_dict())
    D.load_state_dict(Dn.state_dict())
    z = torch.randn(4, 16)
    c = torch.eye(3)[[0, 1, 2, 0]][:, :c_dim]
    ref = Gn(z, c, truncation_psi=0.7, noise_mode="const")
    for fused in (False, True):
        out = G(z, c, truncation_psi=0.7, noise_mode="const", fused_modconv=fused)
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    img = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(D(img, c), Dn(img, c), atol=1e-5, rtol=1e-5)
