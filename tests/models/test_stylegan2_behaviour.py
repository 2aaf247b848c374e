"""StyleGAN2 behaviour: shapes, truncation, w_avg, noise, demodulation, conditioning, equalized lr,
higher-order gradients, and the fast resampling/modulation paths against naive reference formulas.

All networks here are tiny (a few thousand parameters) so the file runs in seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gantl.errors import ConfigError
from gantl.models import fir
from gantl.models.layers import Conv2dLayer, FullyConnectedLayer, modulated_conv2d
from gantl.models.presets import PRESET_NAMES, get_preset
from gantl.models.registry import build
from gantl.models.stylegan2 import Discriminator, Generator, style_mix

TINY_SYN = dict(channel_base=128, channel_max=16)


def tiny_G(c_dim: int = 0, res: int = 16, **syn) -> Generator:
    torch.manual_seed(0)
    return Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=res, img_channels=3,
                     mapping_kwargs=dict(num_layers=2), synthesis_kwargs={**TINY_SYN, **syn})


def tiny_D(c_dim: int = 0, res: int = 16, architecture: str = "resnet") -> Discriminator:
    torch.manual_seed(1)
    return Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, architecture=architecture, **TINY_SYN,
                         epilogue_kwargs=dict(mbstd_group_size=2))


# ------------------------------------------------------------------------------------------------
# Naive reference implementations, written from NVIDIA's definitions (not from gantl's code).


def naive_upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0, 0, 0),
                    gain: float = 1.0) -> torch.Tensor:
    """Zero-stuff by ``up``, zero-pad (x0, x1, y0, y1), *convolve* with f (sum of shifted copies), keep every
    ``down``-th sample."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x0, x1, y0, y1 = pad
    x = F.pad(x, [x0, x1, y0, y1])
    kh, kw = f.shape
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = x.new_zeros(n, c, oh, ow)
    fg = f * gain
    for i in range(kh):
        for j in range(kw):
            # convolution: output[p] = sum_k x[p + k] * f[K-1-k]
            out += x[:, :, i : i + oh, j : j + ow] * fg[kh - 1 - i, kw - 1 - j]
    return out[:, :, ::down, ::down]


def naive_modconv(x, weight, styles, demodulate=True, up=1, f=None, padding=1):
    """Per-sample loop: modulate, demodulate, convolve (NVIDIA's generic path for up=2)."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xi = x[n : n + 1]
        if up == 1:
            outs.append(F.conv2d(xi, w, padding=padding))
        else:
            fw = f.shape[-1]
            p = (padding + (fw + up - 1) // 2, padding + (fw - up) // 2)
            xi = naive_upfirdn2d(xi, f, up=up, pad=(p[0], p[1], p[0], p[1]), gain=up * up)
            outs.append(F.conv2d(xi, w.flip([2, 3])))  # a true convolution of the stuffed image
    return torch.cat(outs)


# ------------------------------------------------------------------------------------------------
# Resampling and modulation numerics


def test_setup_filter_is_normalised_outer_product() -> None:
    f = fir.setup_filter([1, 3, 3, 1])
    expected = torch.tensor([1.0, 3, 3, 1])[:, None] * torch.tensor([1.0, 3, 3, 1])[None, :] / 64
    torch.testing.assert_close(f, expected)


def test_upsample_and_downsample_match_upfirdn_definition() -> None:
    torch.manual_seed(0)
    f = fir.setup_filter([1, 2, 5, 1])  # asymmetric: catches filter flips
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(fir.upsample2d(x, f), naive_upfirdn2d(x, f, up=2, pad=(2, 1, 2, 1), gain=4))
    torch.testing.assert_close(fir.downsample2d(x, f), naive_upfirdn2d(x, f, down=2, pad=(1, 1, 1, 1)))
    # A constant image stays constant in the interior (unit DC gain) after up- and downsampling.
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(fir.upsample2d(ones, fir.setup_filter())[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    assert torch.allclose(fir.downsample2d(ones, fir.setup_filter())[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


def test_resampling_convolutions_match_reference_definitions() -> None:
    torch.manual_seed(0)
    f = fir.setup_filter([1, 2, 5, 1])
    x = torch.randn(2, 4, 8, 8)
    w3 = torch.randn(5, 4, 3, 3)
    w1 = torch.randn(5, 4, 1, 1)
    # down=2, 3x3: filter with padding 2 then strided conv (reference fast path)
    ref = F.conv2d(naive_upfirdn2d(x, f, pad=(2, 2, 2, 2)), w3, stride=2)
    torch.testing.assert_close(fir.conv2d_resample(x, w3, f, down=2, padding=1), ref, atol=1e-5, rtol=1e-5)
    # down=2, 1x1: downsample then conv
    ref = F.conv2d(naive_upfirdn2d(x, f, down=2, pad=(1, 1, 1, 1)), w1)
    torch.testing.assert_close(fir.conv2d_resample(x, w1, f, down=2), ref, atol=1e-5, rtol=1e-5)
    # up=2, 3x3: zero-stuff + filter (gain 4) with padding (3, 2), then a true convolution
    ref = F.conv2d(naive_upfirdn2d(x, f, up=2, pad=(3, 2, 3, 2), gain=4), w3.flip([2, 3]))
    torch.testing.assert_close(fir.conv2d_resample(x, w3, f, up=2, padding=1), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_fused_and_batched_match_per_sample_loop(up: int, demodulate: bool) -> None:
    torch.manual_seed(0)
    f = fir.setup_filter()
    x = torch.randn(3, 4, 6, 6)
    weight = torch.randn(5, 4, 3, 3)
    styles = torch.randn(3, 4)
    ref = naive_modconv(x, weight, styles, demodulate=demodulate, up=up, f=f)
    for fused in (False, True):
        out = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, demodulate=demodulate,
                               fused_modconv=fused)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
def test_synthesis_layer_folded_bias_act_matches_unfolded(up: int) -> None:
    # The batched path folds gain/bias/noise into one addcmul; the fused path applies them one by one.
    from gantl.models.stylegan2 import SynthesisLayer

    torch.manual_seed(0)
    layer = SynthesisLayer(4, 5, w_dim=6, resolution=8, up=up, conv_clamp=0.7)
    with torch.no_grad():
        layer.noise_strength.fill_(0.4)
        layer.bias.normal_()
    x = torch.randn(3, 4, 8 // up, 8 // up)
    w = torch.randn(3, 6)
    for gain in (1.0, math.sqrt(0.5)):
        a = layer(x, w, noise_mode="const", fused_modconv=False, gain=gain)
        b = layer(x, w, noise_mode="const", fused_modconv=True, gain=gain)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert a.abs().max() <= 0.7 * gain + 1e-6 and (a.abs() == 0.7 * gain).any()  # the clamp is active


def test_demodulation_keeps_unit_activation_std() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 64, 8, 8)
    weight = torch.randn(64, 64, 3, 3)
    styles = torch.rand(16, 64) * 4 + 0.1  # wildly scaled styles
    out = modulated_conv2d(x, weight, styles, padding=1)
    assert 0.8 < out[:, :, 1:-1, 1:-1].std().item() < 1.2
    # without demodulation the scale follows the styles instead
    raw = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    assert raw.std().item() > 10


# ------------------------------------------------------------------------------------------------
# Equalized learning rate


def test_equalized_lr_storage_and_runtime_scale() -> None:
    torch.manual_seed(0)
    fc = FullyConnectedLayer(256, 256, lr_multiplier=0.01)
    conv = Conv2dLayer(64, 64, kernel_size=3)
    assert abs(fc.weight.std().item() * 0.01 - 1) < 0.05  # stored as N(0, 1) / lr_multiplier
    assert abs(conv.weight.std().item() - 1) < 0.05
    assert math.isclose(fc.weight_gain, 0.01 / math.sqrt(256))
    assert math.isclose(conv.weight_gain, 1 / math.sqrt(64 * 9))
    # effective weights have std 1/sqrt(fan_in), so a linear layer preserves the activation scale
    x = torch.randn(4096, 256)
    assert 0.9 < fc(x).std().item() < 1.1
    # and the gradient w.r.t. the stored weight is scaled by the runtime gain
    fc2 = FullyConnectedLayer(4, 3, bias=False)
    x = torch.randn(5, 4)
    fc2(x).sum().backward()
    torch.testing.assert_close(fc2.weight.grad, x.sum(0).expand(3, 4) / 2)  # gain = 1/sqrt(4)


def test_affine_bias_initialised_to_one_and_mapping_lr_multiplier() -> None:
    G = tiny_G()
    assert torch.all(G.synthesis.b8.conv0.affine.bias == 1)
    assert torch.all(G.synthesis.b4.torgb.affine.bias == 1)
    assert G.mapping.fc0.weight_gain == pytest.approx(0.01 / math.sqrt(8))
    assert torch.all(G.synthesis.b8.conv1.noise_strength == 0)


# ------------------------------------------------------------------------------------------------
# Generator behaviour


def test_generator_shapes_and_labels() -> None:
    G = tiny_G()
    z = torch.randn(3, 8)
    assert G(z).shape == (3, 3, 16, 16)
    assert G(z, torch.zeros(3, 0)).shape == (3, 3, 16, 16)
    assert G.mapping(z, None).shape == (3, G.num_ws, 8)
    Gc = tiny_G(c_dim=4)
    assert Gc(z, torch.eye(4)[:3]).shape == (3, 3, 16, 16)
    with pytest.raises(ConfigError, match="conditional"):
        Gc(z)
    with pytest.raises(ConfigError, match=r"\[N, 4\]"):
        Gc(z, torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="power of two"):
        Generator(img_resolution=24)


def test_blocks_and_config_contract() -> None:
    G = tiny_G()
    assert [b.resolution for b in G.blocks] == [4, 8, 16]
    D = tiny_D()
    assert [b.resolution for b in D.blocks] == [16, 8, 4]
    assert D.blocks[-1] is D.b4
    G2 = build("stylegan2", "G", G.config)
    D2 = build("stylegan2", "D", D.config)
    assert G2.state_dict().keys() == G.state_dict().keys() and D2.state_dict().keys() == D.state_dict().keys()
    import json

    assert json.loads(json.dumps(G.config)) == G.config and json.loads(json.dumps(D.config)) == D.config


def test_truncation_psi_zero_gives_the_average_image() -> None:
    G = tiny_G().eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        a = G(torch.randn(2, 8), truncation_psi=0, noise_mode="const")
        b = G(torch.randn(2, 8), truncation_psi=0, noise_mode="const")
        avg = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
    torch.testing.assert_close(a, avg.expand_as(a))
    torch.testing.assert_close(b, avg.expand_as(b))


def test_truncation_cutoff_only_touches_the_first_ws() -> None:
    G = tiny_G()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    z = torch.randn(2, 8)
    plain = G.mapping(z)
    cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, 2:], plain[:, 2:])
    torch.testing.assert_close(cut[:, :2], G.mapping.w_avg + 0.5 * (plain[:, :2] - G.mapping.w_avg))


def test_w_avg_tracks_the_mean_only_when_asked() -> None:
    G = tiny_G()
    z = torch.randn(6, 8)
    before = G.mapping.w_avg.clone()
    G.mapping(z)
    assert torch.equal(G.mapping.w_avg, before)
    ws = G.mapping(z, update_emas=True)
    expected = 0.995 * before + 0.005 * ws[:, 0].mean(0)
    torch.testing.assert_close(G.mapping.w_avg, expected.detach())
    # NVIDIA-style call (skip_w_avg_update) updates in training mode
    G.train()
    G.mapping(z, skip_w_avg_update=False)
    assert not torch.equal(G.mapping.w_avg, expected)


def test_noise_modes() -> None:
    G = tiny_G()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    z = torch.randn(2, 8)
    torch.testing.assert_close(G(z, noise_mode="const"), G(z, noise_mode="const"))
    torch.testing.assert_close(G(z, noise_mode="none"), G(z, noise_mode="none"))
    assert not torch.allclose(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.allclose(G(z, noise_mode="const"), G(z, noise_mode="none"))
    with pytest.raises(ConfigError, match="noise_mode"):
        G(z, noise_mode="bogus")


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_generator_architectures_and_clamp(architecture: str) -> None:
    G = tiny_G(architecture=architecture, conv_clamp=0.5)
    img = G(torch.randn(2, 8))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
    # conv_clamp bounds the torgb output, so the skip sum is bounded by clamp * number of torgbs
    n_torgb = sum(hasattr(b, "torgb") for b in G.blocks)
    assert img.abs().max().item() <= 0.5 * n_torgb * 1.01 + 1e-6


def test_style_mix_replaces_a_suffix_of_ws() -> None:
    G = tiny_G()
    z = torch.randn(4, 8)
    plain = G.mapping(z)
    torch.testing.assert_close(style_mix(G, z, None, prob=0.0), plain)
    gen = torch.Generator().manual_seed(3)
    mixed = style_mix(G, z, None, prob=1.0, generator=gen)
    same = (mixed - plain).abs().amax(dim=2) < 1e-6  # [N, num_ws]
    k = int(same[0].sum())
    assert 1 <= k < G.num_ws
    assert same[:, :k].all() and not same[:, k:].any()


def directional_check(net: torch.nn.Module, penalty, eps: float = 1e-6) -> None:
    """Compare the autograd gradient of ``penalty(net)`` (which itself contains a gradient, so this
    exercises double backward) with a central finite difference along a random parameter direction."""
    params = [p for p in net.parameters() if p.requires_grad]
    net.zero_grad(set_to_none=True)
    penalty().backward()
    v = [torch.randn_like(p) for p in params]
    analytic = sum((p.grad * d).sum() for p, d in zip(params, v, strict=True) if p.grad is not None).item()
    with torch.no_grad():
        for p, d in zip(params, v, strict=True):
            p.add_(d, alpha=eps)
    plus = penalty().item()
    with torch.no_grad():
        for p, d in zip(params, v, strict=True):
            p.add_(d, alpha=-2 * eps)
    minus = penalty().item()
    numeric = (plus - minus) / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_path_length_style_double_backward_through_synthesis() -> None:
    G = tiny_G().double()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    ws0 = G.mapping(torch.randn(2, 8, dtype=torch.float64)).detach()
    dirs = torch.randn(2, 3, 16, 16, dtype=torch.float64)

    def path_penalty() -> torch.Tensor:
        ws = ws0.clone().requires_grad_(True)
        img = G.synthesis(ws, noise_mode="const")
        (g,) = torch.autograd.grad((img * dirs).sum(), ws, create_graph=True)
        return g.square().sum(2).mean(1).sqrt().sum()

    directional_check(G, path_penalty)


# ------------------------------------------------------------------------------------------------
# Discriminator behaviour


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_discriminator_shapes(architecture: str) -> None:
    D = tiny_D(architecture=architecture)
    img = torch.randn(4, 3, 16, 16)
    assert D(img).shape == (4, 1)
    assert D(img, torch.zeros(4, 0)).shape == (4, 1)
    with pytest.raises(ConfigError, match="expects images"):
        D(torch.randn(4, 3, 8, 8))


def test_minibatch_stddev_sees_the_batch_and_checks_group_size() -> None:
    D = tiny_D()
    img = torch.randn(4, 3, 16, 16)
    out = D(img)
    img2 = img.clone()
    img2[2:] = img[:2]  # changes the group statistics of samples 0 and 1 (groups are strided: {0,2}, {1,3})
    out2 = D(img2)
    assert not torch.allclose(out[:2], out2[:2])
    with pytest.raises(ValueError, match="multiple of"):
        D(torch.randn(3, 3, 16, 16))


def test_conditional_projection_changes_logits_with_c() -> None:
    D = tiny_D(c_dim=3)
    img = torch.randn(2, 3, 16, 16)
    a = D(img, torch.eye(3)[[0, 0]])
    b = D(img, torch.eye(3)[[1, 1]])
    assert a.shape == (2, 1) and not torch.allclose(a, b)
    assert hasattr(D, "mapping") and D.mapping.num_layers == 8
    with pytest.raises(ConfigError):
        D(img)


@pytest.mark.parametrize("architecture", ["resnet", "skip"])
def test_r1_double_backward_matches_finite_differences(architecture: str) -> None:
    D = tiny_D(res=16, c_dim=2, architecture=architecture).double()
    reals = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    c = torch.eye(2, dtype=torch.float64)[[0, 1, 0, 1]]

    def r1() -> torch.Tensor:
        img = reals.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(img, c).sum(), img, create_graph=True)
        return g.square().sum()

    directional_check(D, r1)
    D.zero_grad()
    r1().backward()
    assert D.b16.fromrgb.weight.grad.abs().sum() > 0 and D.mapping.embed.weight.grad.abs().sum() > 0


def test_fir_ops_are_twice_differentiable() -> None:
    f = fir.setup_filter([1, 2, 5, 1]).double()
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    for op in (lambda t: fir.upsample2d(t, f), lambda t: fir.downsample2d(t, f),
               lambda t: fir.filter2d(t, f, (2, 1, 1, 2))):
        assert torch.autograd.gradcheck(op, (x,)) and torch.autograd.gradgradcheck(op, (x,))


def test_freeze_layers_counts_from_the_image_side() -> None:
    D = Discriminator(img_resolution=16, **TINY_SYN, block_kwargs=dict(freeze_layers=3))
    # b16: fromrgb, conv0, conv1 frozen; skip (4th layer) trainable
    assert not D.b16.fromrgb.weight.requires_grad and not D.b16.conv1.weight.requires_grad
    assert D.b16.skip.weight.requires_grad and D.b8.conv0.weight.requires_grad


# ------------------------------------------------------------------------------------------------
# Presets


def test_presets_reproduce_nvidia_specs() -> None:
    cifar = get_preset("cifar")
    assert (cifar.batch, cifar.mbstd_group, cifar.gamma, cifar.ema_kimg, cifar.map_layers) == (64, 32, 0.01, 500, 2)
    assert (cifar.style_mixing_prob, cifar.pl_weight, cifar.d_architecture, cifar.batch_gpu) == (0, 0, "orig", 32)
    p256 = get_preset("paper256")
    assert (p256.channel_base, p256.gamma, p256.lr, p256.ema_kimg, p256.ema_rampup) == (16384, 1, 0.0025, 20, None)
    # auto at 256 px on 1 GPU: mb = max(min(1*min(4096//256, 32), 64), 1) = 16, mbstd 4, gamma 0.0002*256^2/16
    auto = get_preset("auto", resolution=256, gpus=1)
    assert (auto.batch, auto.mbstd_group, auto.fmaps, auto.ema_kimg) == (16, 4, 0.5, 5.0)
    assert auto.gamma == pytest.approx(0.8192)
    auto8 = get_preset("auto", resolution=1024, gpus=8)
    assert (auto8.batch, auto8.mbstd_group, auto8.lr, auto8.channel_base) == (32, 4, 0.002, 32768)
    with pytest.raises(ConfigError, match="resolution"):
        get_preset("auto")
    with pytest.raises(ConfigError, match="unknown"):
        get_preset("bogus")


def test_every_preset_builds_json_able_kwargs() -> None:
    import json

    for name in PRESET_NAMES:
        p = get_preset(name, resolution=32)
        for kwargs in (p.generator_kwargs(32, 3, 10), p.discriminator_kwargs(32, 3, 10), p.to_dict()):
            assert json.loads(json.dumps(kwargs)) == json.loads(json.dumps(kwargs, sort_keys=True))
    small = get_preset("cpu-small")
    G = Generator(**small.generator_kwargs(32))
    D = Discriminator(**small.discriminator_kwargs(32))
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    assert 1.0e6 < n_g < 1.5e6 and 1.0e6 < n_d < 1.5e6  # the sizes documented in presets.py
