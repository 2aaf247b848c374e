"""Adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with Limited Data").

:class:`AugmentPipe` applies the paper's 18 transformations, each with probability ``p`` per sample,
to every image D sees (reals and fakes alike). Because the same stochastic pipe is applied to both and
every op is invertible in distribution for ``p < ~0.8``, the augmentations do not leak into G.

Pipeline, in the paper's order (names and defaults follow stylegan2-ada-pytorch's ``AugmentPipe``):

* pixel blitting: ``xflip``, ``rotate90``, ``xint`` (integer translation, up to ``xint_max`` of the size);
* general geometric: ``scale`` (isotropic, lognormal, ``scale_std`` octaves), pre-``rotate``
  (uniform, ``rotate_max`` half-turns), ``aniso`` (lognormal, ``aniso_std`` octaves), post-``rotate``,
  ``xfrac`` (fractional translation, normal, ``xfrac_std`` of the size);
* colour: ``brightness`` (normal, ``brightness_std``), ``contrast`` (lognormal, ``contrast_std`` octaves),
  ``lumaflip``, ``hue`` (uniform rotation about the luma axis, ``hue_max`` half-turns), ``saturation``
  (lognormal, ``saturation_std`` octaves);
* ``imgfilter`` (4 frequency bands, lognormal gains), ``noise`` (additive Gaussian), ``cutout``.

"Lognormal with ``std`` octaves" means ``2 ** N(0, std)``, i.e. a lognormal with sigma ``std * ln 2``.
The two rotations each fire with probability ``1 - sqrt(1 - p)`` so that *some* rotation happens with
probability ``p``, as in the paper. The value passed as an op's weight (``xflip=1`` etc.) multiplies ``p``.

All geometric ops compose into one 3x3 matrix per sample and are applied in one resampling (see
:mod:`gantl.augment.resample` for the non-leaking reflection + anti-aliasing scheme); colour ops compose
into one 4x4 matrix per sample. Everything is differentiable with respect to the input images, and with
a ``torch.Generator`` everything is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gantl.augment import imgfilter as imgfilter_ops
from gantl.augment import matrices as mx
from gantl.augment.resample import affine_resample, integer_remap, is_pixel_exact
from gantl.augment.tuner import AdaTuner
from gantl.errors import ConfigError

#: Op weights per preset name, the same names and contents as stylegan2-ada-pytorch's ``--augpipe``.
_BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
_GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
_COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
AUGPIPE_PRESETS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "filter": {"imgfilter": 1},
    "noise": {"noise": 1},
    "cutout": {"cutout": 1},
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}

GEOMETRIC_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OTHER_OPS = ("imgfilter", "noise", "cutout")
ALL_OPS = GEOMETRIC_OPS + COLOR_OPS + OTHER_OPS


@dataclass
class AugmentParams:
    """Everything one call of the pipe decided, per sample — exposed so tests and logs can inspect it.

    ``geom``: ``[N,3,3]`` maps output centred pixel coords to source coords. ``color``: ``[N,4,4]`` acts on
    ``(r,g,b,1)``. ``applied[op]``: ``[N]`` bool, whether the op fired (``"rotate"`` = either rotation).
    ``values[op]``: the drawn parameter (neutral value where the op did not fire).
    """

    geom: Tensor
    color: Tensor
    band_gains: Tensor | None = None
    noise_std: Tensor | None = None
    cutout_center: Tensor | None = None
    applied: dict[str, Tensor] = field(default_factory=dict)
    values: dict[str, Tensor] = field(default_factory=dict)


class AugmentPipe(nn.Module):
    """ADA augmentation pipeline; ``p`` is a buffer (saved with the module) set by :class:`AdaTuner`.

    Call as ``pipe(images)`` on float ``[N, C, H, W]`` images in about [-1, 1]; at ``p == 0`` the input
    is returned unchanged (the same tensor). Build from a preset with :meth:`from_preset`.
    """

    def __init__(
        self,
        *,
        xflip: float = 0,
        rotate90: float = 0,
        xint: float = 0,
        xint_max: float = 0.125,
        scale: float = 0,
        rotate: float = 0,
        aniso: float = 0,
        xfrac: float = 0,
        scale_std: float = 0.2,
        rotate_max: float = 1,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness: float = 0,
        contrast: float = 0,
        lumaflip: float = 0,
        hue: float = 0,
        saturation: float = 0,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1,
        saturation_std: float = 1,
        imgfilter: float = 0,
        imgfilter_bands: tuple[float, float, float, float] = (1, 1, 1, 1),
        imgfilter_std: float = 1,
        noise: float = 0,
        noise_std: float = 0.1,
        cutout: float = 0,
        cutout_size: float = 0.5,
        p: float = 0.0,
    ) -> None:
        super().__init__()
        weights = dict(
            xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac,
            brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
            imgfilter=imgfilter, noise=noise, cutout=cutout,
        )  # fmt: skip
        for name, value in weights.items():
            if not 0 <= float(value) <= 1:
                raise ConfigError(f"augment op weight {name}={value} must be in [0, 1]")
        if len(imgfilter_bands) != 4:
            raise ConfigError(f"imgfilter_bands needs 4 weights (one per band), got {len(imgfilter_bands)}")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.xint_max, self.scale_std, self.rotate_max = float(xint_max), float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        self.imgfilter_bands = tuple(float(b) for b in imgfilter_bands)
        self.imgfilter_std, self.noise_std = float(imgfilter_std), float(noise_std)
        self.cutout_size = float(cutout_size)
        self.register_buffer("p", torch.tensor(float(p)))
        self.set_p(p)

    # ------------------------------------------------------------------ construction / state
    @classmethod
    def from_preset(cls, name: str, *, p: float = 0.0, **overrides: Any) -> AugmentPipe:
        """Build the pipe for an ``--augpipe`` preset name (``blit``, ``geom``, ``color``, ``bgc``, ``bgcf``, ...)."""
        if name not in AUGPIPE_PRESETS:
            raise ConfigError(f"unknown augment preset '{name}'; choose one of: {', '.join(AUGPIPE_PRESETS)}")
        return cls(**{**AUGPIPE_PRESETS[name], **overrides}, p=p)

    def set_p(self, value: float) -> None:
        """Set the augmentation probability (kept in the ``p`` buffer so it is checkpointed)."""
        value = float(value)
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ConfigError(f"augment probability p={value} must be in [0, 1]")
        self.p.fill_(value)

    def extra_repr(self) -> str:
        ops = ", ".join(f"{k}={v:g}" for k, v in self.weights.items() if v > 0)
        return f"p={float(self.p):.4f}, {ops}"

    # ------------------------------------------------------------------ sampling
    def sample_params(
        self,
        n: int,
        height: int,
        width: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> AugmentParams:
        """Draw every random decision for a batch of ``n`` images (one fixed order of draws, so a seeded
        generator gives the same result regardless of which ops end up firing)."""
        gen_device = generator.device if generator is not None else torch.device(device or "cpu")
        p = float(self.p)
        w8 = self.weights

        def rand(*shape: int) -> Tensor:
            return torch.rand(shape, generator=generator, device=gen_device)

        def randn(*shape: int) -> Tensor:
            return torch.randn(shape, generator=generator, device=gen_device)

        def gate(prob: float) -> Tensor:
            return rand(n) < prob

        applied: dict[str, Tensor] = {}
        values: dict[str, Tensor] = {}
        g = mx.identity(n, 3, device=gen_device)

        if w8["xflip"] > 0:
            on = gate(w8["xflip"] * p)
            flip = torch.where(on, torch.floor(rand(n) * 2), torch.zeros(n, device=gen_device))
            g = g @ mx.scale2d(1 - 2 * flip, torch.ones_like(flip))
            applied["xflip"], values["xflip"] = on, flip
        if w8["rotate90"] > 0:
            on = gate(w8["rotate90"] * p)
            quarter = torch.where(on, torch.floor(rand(n) * 4), torch.zeros(n, device=gen_device)).long()
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=gen_device)[quarter]
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=gen_device)[quarter]
            # Inverse of a rotation by k quarter turns: the transpose (exact integers, no cos(pi/2) residue).
            inv = mx._stack_rows([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], cos)
            g = g @ inv
            applied["rotate90"], values["rotate90"] = on, quarter.float()
        if w8["xint"] > 0:
            on = gate(w8["xint"] * p)
            t = (rand(n, 2) * 2 - 1) * self.xint_max
            t = torch.where(on[:, None], t, torch.zeros_like(t))
            tx, ty = torch.round(t[:, 0] * width), torch.round(t[:, 1] * height)
            g = g @ mx.translate2d(-tx, -ty)
            applied["xint"], values["xint"] = on, torch.stack([tx, ty], dim=1)
        if w8["scale"] > 0:
            on = gate(w8["scale"] * p)
            s = torch.where(on, torch.exp2(randn(n) * self.scale_std), torch.ones(n, device=gen_device))
            g = g @ mx.scale2d(1 / s, 1 / s)
            applied["scale"], values["scale"] = on, s
        p_rot = 1 - math.sqrt(max(1 - w8["rotate"] * p, 0.0))
        if w8["rotate"] > 0:
            on = gate(p_rot)
            theta = torch.where(on, (rand(n) * 2 - 1) * math.pi * self.rotate_max, torch.zeros(n, device=gen_device))
            g = g @ mx.rotate2d(-theta)
            applied["rotate"], values["rotate_pre"] = on, theta
        if w8["aniso"] > 0:
            on = gate(w8["aniso"] * p)
            s = torch.where(on, torch.exp2(randn(n) * self.aniso_std), torch.ones(n, device=gen_device))
            g = g @ mx.scale2d(1 / s, s)
            applied["aniso"], values["aniso"] = on, s
        if w8["rotate"] > 0:
            on = gate(p_rot)
            theta = torch.where(on, (rand(n) * 2 - 1) * math.pi * self.rotate_max, torch.zeros(n, device=gen_device))
            g = g @ mx.rotate2d(-theta)
            applied["rotate"] = applied["rotate"] | on
            values["rotate_post"] = theta
        if w8["xfrac"] > 0:
            on = gate(w8["xfrac"] * p)
            t = randn(n, 2) * self.xfrac_std
            t = torch.where(on[:, None], t, torch.zeros_like(t))
            g = g @ mx.translate2d(-t[:, 0] * width, -t[:, 1] * height)
            applied["xfrac"], values["xfrac"] = on, t

        c = mx.identity(n, 4, device=gen_device)
        if w8["brightness"] > 0:
            on = gate(w8["brightness"] * p)
            b = torch.where(on, randn(n) * self.brightness_std, torch.zeros(n, device=gen_device))
            c = mx.translate3d(b, b, b) @ c
            applied["brightness"], values["brightness"] = on, b
        if w8["contrast"] > 0:
            on = gate(w8["contrast"] * p)
            s = torch.where(on, torch.exp2(randn(n) * self.contrast_std), torch.ones(n, device=gen_device))
            c = mx.scale3d(s, s, s) @ c
            applied["contrast"], values["contrast"] = on, s
        if w8["lumaflip"] > 0:
            on = gate(w8["lumaflip"] * p)
            flip = torch.where(on, torch.floor(rand(n) * 2), torch.zeros(n, device=gen_device))
            c = mx.householder_luma(flip) @ c
            applied["lumaflip"], values["lumaflip"] = on, flip
        if w8["hue"] > 0:
            on = gate(w8["hue"] * p)
            theta = torch.where(on, (rand(n) * 2 - 1) * math.pi * self.hue_max, torch.zeros(n, device=gen_device))
            c = mx.rotate3d_luma(theta) @ c
            applied["hue"], values["hue"] = on, theta
        if w8["saturation"] > 0:
            on = gate(w8["saturation"] * p)
            s = torch.where(on, torch.exp2(randn(n) * self.saturation_std), torch.ones(n, device=gen_device))
            c = mx.saturate_luma(s) @ c
            applied["saturation"], values["saturation"] = on, s

        params = AugmentParams(geom=g, color=c, applied=applied, values=values)
        if w8["imgfilter"] > 0:
            gains = torch.ones(n, 4, device=gen_device)
            any_on = torch.zeros(n, dtype=torch.bool, device=gen_device)
            for band, band_weight in enumerate(self.imgfilter_bands):
                if band_weight <= 0:
                    continue
                on = gate(w8["imgfilter"] * p * band_weight)
                t = torch.ones(n, 4, device=gen_device)
                gain = torch.exp2(randn(n) * self.imgfilter_std)
                t[:, band] = torch.where(on, gain, torch.ones(n, device=gen_device))
                gains = gains * imgfilter_ops.normalise_gains(t)
                any_on |= on
            params.band_gains = gains
            applied["imgfilter"] = any_on
        if w8["noise"] > 0:
            on = gate(w8["noise"] * p)
            sigma = torch.where(on, randn(n).abs() * self.noise_std, torch.zeros(n, device=gen_device))
            params.noise_std = sigma
            applied["noise"], values["noise"] = on, sigma
        if w8["cutout"] > 0:
            on = gate(w8["cutout"] * p)
            params.cutout_center = rand(n, 2)
            applied["cutout"] = on
        return params

    # ------------------------------------------------------------------ application
    def apply(self, images: Tensor, params: AugmentParams, *, generator: torch.Generator | None = None) -> Tensor:
        """Apply drawn parameters to ``images`` (``generator`` feeds the per-pixel noise op only)."""
        n, ch, h, w = images.shape
        device = images.device

        # Geometry: untouched samples pass through, pixel permutations are gathered, the rest resampled.
        g = params.geom.to(device)
        eye3 = torch.eye(3, device=device, dtype=g.dtype)
        moved = ~(g == eye3).all(dim=(1, 2))
        if bool(moved.any()):
            exact = is_pixel_exact(g, h, w) & moved
            general = moved & ~exact
            if bool(exact.any()):
                idx = exact.nonzero().flatten()
                images = images.index_copy(0, idx, integer_remap(images[idx], g[idx]))
            if bool(general.any()):
                idx = general.nonzero().flatten()
                images = images.index_copy(0, idx, affine_resample(images[idx], g[idx]))

        # Colour: one 4x4 matrix per sample over all pixels.
        c = params.color.to(device=device, dtype=images.dtype)
        if not bool((c == torch.eye(4, device=device, dtype=c.dtype)).all()):
            flat = images.reshape(n, ch, h * w)
            if ch == 3:
                flat = c[:, :3, :3] @ flat + c[:, :3, 3:]
            elif ch == 1:
                # A grey pixel x is the colour (x, x, x); transform it and average back to one channel.
                gain = c[:, :3, :3].sum(dim=2).mean(dim=1).reshape(n, 1, 1)
                offset = c[:, :3, 3].mean(dim=1).reshape(n, 1, 1)
                flat = flat * gain + offset
            else:
                raise ConfigError(f"colour augmentation needs 1 or 3 channels, got {ch}; disable the colour ops")
            images = flat.reshape(n, ch, h, w)

        if params.band_gains is not None and bool(params.applied["imgfilter"].any()):
            idx = params.applied["imgfilter"].to(device).nonzero().flatten()
            filters = imgfilter_ops.band_gains_to_filter(params.band_gains.to(device)[idx])
            images = images.index_copy(0, idx, imgfilter_ops.apply_separable(images[idx], filters))

        if params.noise_std is not None and bool(params.applied["noise"].any()):
            gen_device = generator.device if generator is not None else device
            noise = torch.randn((n, 1, h, w), generator=generator, device=gen_device).to(device, images.dtype)
            images = images + noise * params.noise_std.to(device, images.dtype).reshape(n, 1, 1, 1)

        if params.cutout_center is not None and bool(params.applied["cutout"].any()):
            centre = params.cutout_center.to(device, images.dtype)
            ys = (torch.arange(h, device=device, dtype=images.dtype) + 0.5) / h
            xs = (torch.arange(w, device=device, dtype=images.dtype) + 0.5) / w
            inside_x = (xs.reshape(1, 1, w) - centre[:, 0].reshape(n, 1, 1)).abs() < self.cutout_size / 2
            inside_y = (ys.reshape(1, h, 1) - centre[:, 1].reshape(n, 1, 1)).abs() < self.cutout_size / 2
            hole = inside_x & inside_y & params.applied["cutout"].to(device).reshape(n, 1, 1)
            images = images * (~hole).unsqueeze(1).to(images.dtype)
        return images

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment a batch. ``generator`` (optional) makes every random decision reproducible."""
        if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ConfigError(f"AugmentPipe expects float images [N, C, H, W] in [-1, 1], got {got}")
        if float(self.p) == 0.0:
            return images
        n, _, h, w = images.shape
        params = self.sample_params(n, h, w, generator=generator, device=images.device)
        return self.apply(images, params, generator=generator)


__all__ = ["AUGPIPE_PRESETS", "AugmentParams", "AugmentPipe", "AdaTuner"]
