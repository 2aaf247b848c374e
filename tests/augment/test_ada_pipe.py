"""AugmentPipe: identity at p=0, exact pixel ops, non-leaking geometry, per-op statistics, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gantl.augment import AUGPIPE_PRESETS, AugmentPipe
from gantl.augment import matrices as mx
from gantl.errors import ConfigError


def _images(n: int = 8, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, c, size, size), generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("preset", sorted(AUGPIPE_PRESETS))
def test_p_zero_is_identity(preset: str) -> None:
    x = _images()
    pipe = AugmentPipe.from_preset(preset, p=0.0)
    assert pipe(x, generator=_gen()) is x
    params = pipe.sample_params(8, 16, 16, generator=_gen())
    assert torch.equal(params.geom, mx.identity(8, 3))
    assert torch.equal(params.color, mx.identity(8, 4))
    assert not any(bool(v.any()) for v in params.applied.values())
    # Applying the drawn (all-neutral) parameters also leaves the images bit-identical.
    assert torch.equal(pipe.apply(x, params, generator=_gen()), x)


@pytest.mark.parametrize("preset", ["blit", "geom", "color", "bgc", "bgcfnc"])
def test_p_one_changes_every_image(preset: str) -> None:
    x = _images(n=16)
    y = AugmentPipe.from_preset(preset, p=1.0)(x, generator=_gen(1))
    assert y.shape == x.shape
    per_sample_change = (y - x).abs().flatten(1).amax(dim=1)
    if preset == "blit":
        # x-flip and rotate90 can each draw "no-op" (k=0), and xint may round to 0: a blit-only pipe leaves an
        # image unchanged only when all three did; check that exactly those images are the unchanged ones.
        pipe = AugmentPipe.from_preset(preset, p=1.0)
        params = pipe.sample_params(16, 16, 16, generator=_gen(1))
        moved = ~(params.geom == torch.eye(3)).all(dim=(1, 2))
        assert torch.equal(per_sample_change > 0, moved)
        assert moved.float().mean() > 0.7
    else:
        assert bool((per_sample_change > 1e-3).all())


def test_xflip_only_equals_torch_flip() -> None:
    x = _images(n=32)
    pipe = AugmentPipe(xflip=1, p=1.0)
    params = pipe.sample_params(32, 16, 16, generator=_gen(3))
    y = pipe.apply(x, params)
    flipped = params.values["xflip"].bool()
    assert 0 < int(flipped.sum()) < 32  # both outcomes occur
    assert torch.equal(y[flipped], torch.flip(x[flipped], dims=[3]))
    assert torch.equal(y[~flipped], x[~flipped])


def test_rotate90_only_matches_torch_rot90_and_four_turns_are_identity() -> None:
    x = _images(n=32)
    pipe = AugmentPipe(rotate90=1, p=1.0)
    params = pipe.sample_params(32, 16, 16, generator=_gen(4))
    y = pipe.apply(x, params)
    quarters = params.values["rotate90"].long()
    assert set(quarters.tolist()) == {0, 1, 2, 3}
    # One fixed rotation sense must explain every sample.
    senses = []
    for dims in [(1, 2), (2, 1)]:
        matches = [torch.equal(y[i], torch.rot90(x[i], int(k), dims=dims)) for i, k in enumerate(quarters)]
        senses.append(all(matches))
    assert any(senses)
    # Four quarter turns compose to the identity, bit for bit.
    one_turn = params.geom[quarters == 1][:1]
    z = x[:1]
    for _ in range(4):
        z = pipe.apply(z, type(params)(geom=one_turn, color=mx.identity(1, 4)))
    assert torch.equal(z, x[:1])


def test_integer_translation_reflects_and_keeps_constant_images_constant() -> None:
    pipe = AugmentPipe(xint=1, p=1.0)
    const = torch.full((16, 3, 16, 16), 0.3)
    assert torch.equal(pipe(const, generator=_gen(5)), const)
    # Against an independent reference: torch's reflect padding, then a crop at the shifted window.
    x = _images(n=16)
    params = pipe.sample_params(16, 16, 16, generator=_gen(5))
    y = pipe.apply(x, params)
    shifts = params.values["xint"].long()
    assert shifts.abs().max() <= round(0.125 * 16) and shifts.abs().max() > 0
    pad = 3
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    for i, (tx, ty) in enumerate(shifts.tolist()):
        ref = padded[i, :, pad - ty : pad - ty + 16, pad - tx : pad - tx + 16]
        assert torch.equal(y[i], ref), (i, tx, ty)


def test_general_geometry_has_no_zero_padding_leak() -> None:
    # A constant image stays constant under strong scales/rotations: reflection padding and unit-sum
    # filters mean no black corners and no ringing enter the images D sees.
    const = torch.full((32, 3, 16, 16), -0.7)
    pipe = AugmentPipe.from_preset("geom", p=1.0, scale_std=1.0)
    y = pipe(const, generator=_gen(6))
    assert (y - const).abs().max() < 1e-5


def test_fractional_translation_matches_analytic_shift() -> None:
    size, freq = 32, 0.08
    yy, xx = torch.meshgrid(torch.arange(size) + 0.0, torch.arange(size) + 0.0, indexing="ij")
    img = torch.sin(2 * math.pi * freq * (xx + 0.5 * yy)).expand(8, 3, size, size).contiguous()
    pipe = AugmentPipe(xfrac=1, p=1.0)
    params = pipe.sample_params(8, size, size, generator=_gen(7))
    y = pipe.apply(img, params)
    t = params.values["xfrac"] * size  # content moves by +t pixels
    for i in range(8):
        ref = torch.sin(2 * math.pi * freq * ((xx - t[i, 0]) + 0.5 * (yy - t[i, 1])))
        # Compare where the source point lies well inside the image (elsewhere reflection takes over).
        sx, sy = xx - t[i, 0], yy - t[i, 1]
        interior = (sx > 6) & (sx < size - 7) & (sy > 6) & (sy < size - 7)
        assert interior.sum() > 50
        # ~2% amplitude loss at this frequency is the bilinear step on the 2x grid; a wrong direction or
        # size of shift would be off by up to 2.
        assert (y[i, 0][interior] - ref[interior]).abs().max() < 0.03


def test_shrinking_is_anti_aliased() -> None:
    # Content at 0.4 cycles/pixel shrunk 2x would be 0.8 cycles/pixel: above Nyquist, so a correct
    # resampler must (nearly) remove it, while naive bilinear sampling aliases it to a strong pattern.
    size = 32
    yy, xx = torch.meshgrid(torch.arange(size) + 0.0, torch.arange(size) + 0.0, indexing="ij")
    img = torch.cos(2 * math.pi * 0.4 * xx).expand(1, 1, size, size).contiguous()
    shrink = mx.scale2d(torch.tensor([2.0]), torch.tensor([2.0]))  # output->source: content shrinks 2x
    pipe = AugmentPipe(scale=1, p=1.0)
    params = pipe.sample_params(1, size, size, generator=_gen(0))
    params.geom = shrink
    y = pipe.apply(img, params)
    grid = F.affine_grid(torch.tensor([[[2.0, 0, 0], [0, 2.0, 0]]]), [1, 1, size, size], align_corners=False)
    naive = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    interior = (..., slice(8, -8), slice(8, -8))
    assert naive[interior].std() > 0.15  # the failure mode exists ...
    assert y[interior].std() < 0.05  # ... and the pipe avoids it


def test_gradients_flow_to_the_input() -> None:
    x = _images(n=8).requires_grad_()
    y = AugmentPipe.from_preset("bgcfnc", p=1.0)(x, generator=_gen(8))
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert bool((x.grad.flatten(1).abs().sum(dim=1) > 0).all())


def test_autograd_gradient_matches_directional_differences() -> None:
    # Given the drawn parameters the pipe is affine in the images, so for any direction v the change
    # <f(x + v) - f(x), w> must equal <v, grad of <f(x), w>> exactly (up to rounding): a full gradcheck
    # in a fraction of the time.
    gen = _gen(9)
    x = (torch.rand(4, 3, 12, 12, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_()
    pipe = AugmentPipe.from_preset("bgcf", p=1.0)
    params = pipe.sample_params(4, 12, 12, generator=_gen(9))
    assert params.applied["scale"].any() and params.applied["hue"].any()
    w = torch.randn(4, 3, 12, 12, generator=gen, dtype=torch.float64)
    (pipe.apply(x, params) * w).sum().backward()
    with torch.no_grad():
        base = pipe.apply(x, params)
        for _ in range(3):
            v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
            change = ((pipe.apply(x + v, params) - base) * w).sum()
            assert torch.allclose(change, (v * x.grad).sum(), rtol=1e-8, atol=1e-8)


def test_deterministic_with_generator() -> None:
    x = _images()
    pipe = AugmentPipe.from_preset("bgcfnc", p=0.7)
    assert torch.equal(pipe(x, generator=_gen(11)), pipe(x, generator=_gen(11)))
    assert not torch.equal(pipe(x, generator=_gen(11)), pipe(x, generator=_gen(12)))


def test_op_probability_and_strength_statistics() -> None:
    n, p = 20000, 0.4
    pipe = AugmentPipe.from_preset("bgcf", p=p)
    params = pipe.sample_params(n, 32, 32, generator=_gen(13))
    tol = 4 * math.sqrt(p * (1 - p) / n)  # 4 sigma of a binomial fraction
    for op in ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"] + [
        "brightness", "contrast", "lumaflip", "hue", "saturation",
    ]:  # fmt: skip
        assert abs(params.applied[op].float().mean().item() - p) < tol, op
    # imgfilter fires per band with probability p; "any band" then has probability 1 - (1-p)^4.
    assert abs(params.applied["imgfilter"].float().mean().item() - (1 - (1 - p) ** 4)) < tol

    def on(op: str) -> torch.Tensor:
        return params.values[op][params.applied[op]]

    b = on("brightness")
    assert abs(b.mean().item()) < 0.01 and abs(b.std().item() - 0.2) < 0.01
    for op, std_octaves in [("contrast", 0.5), ("saturation", 1.0), ("scale", 0.2), ("aniso", 0.2)]:
        log2 = torch.log2(on(op))
        assert abs(log2.mean().item()) < 0.05 * std_octaves + 0.01, op
        assert abs(log2.std().item() - std_octaves) < 0.03 * std_octaves, op
    hue = on("hue")
    assert hue.abs().max() <= math.pi and abs(hue.std().item() - math.pi / math.sqrt(3)) < 0.05
    frac = params.values["xfrac"][params.applied["xfrac"]]
    assert abs(frac.std().item() - 0.125) < 0.005
    xint = params.values["xint"][params.applied["xint"]]
    assert xint.abs().max() == 4 and set(xint.unique().tolist()) == set(range(-4, 5))
    assert set(on("rotate90").unique().tolist()) == {0.0, 1.0, 2.0, 3.0}
    # Pre- and post-rotation each fire with 1 - sqrt(1 - p), uniform over (-pi, pi).
    pre = params.values["rotate_pre"]
    assert abs((pre != 0).float().mean().item() - (1 - math.sqrt(1 - p))) < tol
    assert abs(pre[pre != 0].std().item() - math.pi / math.sqrt(3)) < 0.05


def test_brightness_adds_the_drawn_offset() -> None:
    x = _images(n=16)
    pipe = AugmentPipe(brightness=1, p=1.0)
    params = pipe.sample_params(16, 16, 16, generator=_gen(14))
    y = pipe.apply(x, params)
    offset = params.values["brightness"].reshape(16, 1, 1, 1)
    assert torch.allclose(y, x + offset, atol=1e-6)


def test_colour_matrices_against_closed_forms() -> None:
    grey = torch.tensor([0.3, 0.3, 0.3, 1.0])
    colour = torch.tensor([0.5, -0.2, 0.1, 1.0])
    theta = torch.tensor([1.1])
    hue = mx.rotate3d_luma(theta)[0]
    assert torch.allclose(hue @ grey, grey, atol=1e-6)  # grey has no hue
    assert torch.allclose((hue @ colour)[:3].mean(), colour[:3].mean(), atol=1e-6)  # luma kept
    assert torch.allclose((hue @ colour)[:3].norm(), colour[:3].norm(), atol=1e-6)  # a rotation
    desat = mx.saturate_luma(torch.tensor([0.0]))[0]
    assert torch.allclose((desat @ colour)[:3], colour[:3].mean().expand(3), atol=1e-6)
    flip = mx.householder_luma(torch.tensor([1.0]))[0]
    assert torch.allclose(flip @ grey, torch.tensor([-0.3, -0.3, -0.3, 1.0]), atol=1e-6)
    assert torch.allclose(flip @ flip, torch.eye(4), atol=1e-6)


def test_single_channel_images_get_colour_ops() -> None:
    x = _images(n=8, c=1)
    pipe = AugmentPipe(brightness=1, contrast=1, hue=1, saturation=1, p=1.0)
    params = pipe.sample_params(8, 16, 16, generator=_gen(15))
    y = pipe.apply(x, params)
    expected = x * params.values["contrast"].reshape(8, 1, 1, 1) + (
        params.values["brightness"] * params.values["contrast"]
    ).reshape(8, 1, 1, 1)
    assert torch.allclose(y, expected, atol=1e-5)  # hue and saturation leave grey unchanged


def test_p_is_a_checkpointed_buffer_and_inputs_are_validated() -> None:
    pipe = AugmentPipe.from_preset("bgc")
    pipe.set_p(0.25)
    assert float(pipe.state_dict()["p"]) == 0.25
    other = AugmentPipe.from_preset("bgc")
    other.load_state_dict(pipe.state_dict())
    assert float(other.p) == 0.25
    with pytest.raises(ConfigError, match="unknown augment preset"):
        AugmentPipe.from_preset("bgcx")
    with pytest.raises(ConfigError, match="must be in"):
        pipe.set_p(1.5)
    with pytest.raises(ConfigError, match=r"\[N, C, H, W\]"):
        pipe(torch.zeros(3, 16, 16))


def test_r1_penalty_through_the_pipe_has_correct_gradients() -> None:
    # Lazy R1 differentiates D(pipe(x)) w.r.t. x with create_graph=True and then w.r.t. D's weights:
    # that double backward must be exact through the resampling (gradcheck in float64).
    pipe = AugmentPipe.from_preset("bgc", p=1.0)
    params = pipe.sample_params(1, 6, 6, generator=_gen(3))
    assert params.applied["scale"].any()
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64, generator=_gen(4)).requires_grad_()
    weights = torch.randn(3, dtype=torch.float64, generator=_gen(5)).requires_grad_()  # a per-channel "D"

    def r1(w: torch.Tensor) -> torch.Tensor:
        logits = (pipe.apply(x, params).tanh() * w.reshape(1, 3, 1, 1)).sum()
        (grad,) = torch.autograd.grad(logits, x, create_graph=True)
        return grad.square().sum()

    assert torch.autograd.gradcheck(r1, (weights,), eps=1e-6, atol=1e-6)
