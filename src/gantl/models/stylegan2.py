"""StyleGAN2 generator and discriminator (Karras et al. 2020), as in stylegan2-ada-pytorch.

The module tree, parameter and buffer names and shapes are those of NVIDIA's
``training/networks.py`` (``mapping.fc0.weight``, ``synthesis.b8.conv0.affine.bias``,
``b32.fromrgb.weight``, ``b4.out.bias``, ...), and the constructors take the same keyword
arguments (``mapping_kwargs``, ``synthesis_kwargs``, ``block_kwargs``, ``epilogue_kwargs``,
``channel_base``, ``channel_max``, ``conv_clamp``, ``architecture``, ...), so an NVIDIA state dict
and its ``init_kwargs`` rebuild the same network here. The code is written for speed on CPUs:
batched (non-fused) modulated convolution, FIR resampling as native strided convolutions,
no per-sample Python loops. ``num_fp16_res`` and ``fp16_channels_last`` are accepted for
compatibility and ignored: everything runs in float32.

Differences from the reference, on purpose:

* ``w_avg`` is updated only when asked (``update_emas=True``), as in NVIDIA's later StyleGAN3
  code, instead of on every training-mode call; the training loop decides when.
* ``G.blocks`` / ``D.blocks`` list the blocks in gantl's freezing order (see registry.py).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from gantl.errors import ConfigError
from gantl.models import fir
from gantl.models.layers import (
    ACTIVATION_GAINS,
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    bias_act,
    modulated_conv2d,
    modulated_conv2d_bias_act,
    normalize_2nd_moment,
)

ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("random", "const", "none")


def _check_resolution(img_resolution: int) -> int:
    if not (isinstance(img_resolution, int) and img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0):
        raise ConfigError(f"img_resolution must be a power of two >= 4, got {img_resolution!r}")
    return int(math.log2(img_resolution))


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}")


def _labels(c: torch.Tensor | None, c_dim: int, batch: int, device: torch.device) -> torch.Tensor:
    """Validate conditioning labels: None or [N, 0] for unconditional nets, [N, c_dim] otherwise."""
    if c is None:
        if c_dim > 0:
            raise ConfigError(f"this network is conditional (c_dim={c_dim}): pass one-hot labels c of shape "
                              f"[N, {c_dim}]")
        return torch.zeros([batch, 0], device=device)
    if c.ndim != 2 or c.shape[1] != c_dim:
        raise ConfigError(f"labels c must have shape [N, {c_dim}], got {list(c.shape)}")
    return c


# ----------------------------------------------------------------------------------------------
# Mapping network


class MappingNetwork(nn.Module):
    """z (and an embedded label) -> w, through ``num_layers`` equalized-lr FC layers.

    Keeps ``w_avg``, a moving average of w, for truncation: ``w' = w_avg + psi * (w - w_avg)``
    pulls samples toward the average image, trading variety for quality.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        skip_w_avg_update: bool | None = None,
    ) -> torch.Tensor:
        """-> ws [N, num_ws, w_dim] (or [N, w_dim] when ``num_ws`` is None).

        ``skip_w_avg_update`` is accepted for call-compatibility with NVIDIA code; when given,
        the average is updated iff the module is training and it is False.
        """
        if skip_w_avg_update is not None:
            update_emas = self.training and not skip_w_avg_update
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                got = None if z is None else list(z.shape)
                raise ConfigError(f"latents z must have shape [N, {self.z_dim}], got {got}")
            parts.append(normalize_2nd_moment(z.to(self._dtype())))
        if self.c_dim > 0:
            batch = z.shape[0] if z is not None else (c.shape[0] if c is not None else 0)
            device = z.device if z is not None else self.fc0.weight.device
            c = _labels(c, self.c_dim, batch, device)
            parts.append(normalize_2nd_moment(self.embed(c.to(self._dtype()))))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_emas and self.w_avg_beta is not None:
            with torch.no_grad():
                # w_avg <- beta * w_avg + (1 - beta) * mean(w)
                self.w_avg.mul_(self.w_avg_beta).add_(x.detach().mean(dim=0), alpha=1 - self.w_avg_beta)

        if self.num_ws is not None:
            x = x.unsqueeze(1).expand(-1, self.num_ws, -1)
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ConfigError("truncation needs w_avg, but this mapping network does not track it")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg + truncation_psi * (x - self.w_avg)
            else:
                head = x[:, :truncation_cutoff]
                head = self.w_avg + truncation_psi * (head - self.w_avg)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        # A real tensor (not an expanded view) so callers may write into it, e.g. for style mixing.
        return x.contiguous()

    def _dtype(self) -> torch.dtype:
        # float32 normally; float64 when the whole net was converted (numerical gradient checks).
        return self.fc0.weight.dtype

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


# ----------------------------------------------------------------------------------------------
# Synthesis network


def _auto_fused(fused_modconv: bool | None, batch: int) -> bool:
    """Grouped (fused) modconv only pays off for a single sample; batched is faster on CPU."""
    if fused_modconv is not None:
        return fused_modconv
    return batch == 1


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling by 2) + per-pixel noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: tuple[float, ...] | list[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", fir.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATION_GAINS[activation]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
        gain: float = 1.0,
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if not _auto_fused(fused_modconv, x.shape[0]):
            return modulated_conv2d_bias_act(x, self.weight, styles, self.bias, noise=noise, up=self.up,
                                             padding=self.padding, resample_filter=self.resample_filter,
                                             act=self.activation, gain=self.act_gain * gain, clamp=clamp)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, fused_modconv=True)
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        o, i = self.weight.shape[:2]
        return f"in={i}, out={o}, resolution={self.resolution}, up={self.up}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (NVIDIA: ``torgb``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool | None = None) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False,
                             fused_modconv=_auto_fused(fused_modconv, x.shape[0]))
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const | conv0 up) -> conv1 -> torgb."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: tuple[float, ...] | list[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        **layer_kwargs: Any,
    ) -> None:
        _check_architecture(architecture)
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", fir.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
        force_fp32: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        del force_fp32  # always float32 here
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv,
                           gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        if img is not None:
            img = fir.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, in={self.in_channels}, out={self.out_channels}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, H, W], blocks ``b4``, ``b8``, ... ``b{img_resolution}``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs: Any,
    ) -> None:
        log2 = _check_resolution(img_resolution)
        super().__init__()
        del num_fp16_res  # float32 only; accepted so NVIDIA configs load
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    @property
    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", fused_modconv: bool | None = None,
                force_fp32: bool = False) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ConfigError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(self.b4.const.dtype)
        x = img = None
        w_idx = 0
        for block in self.blocks:
            # A block's torgb shares its w with the next block's first conv (as in the reference).
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, noise_mode=noise_mode, fused_modconv=fused_modconv)
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, resolution={self.img_resolution}"


class Generator(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z, c -> ws) then ``synthesis`` (ws -> image)."""

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 256,
        img_channels: int = 3,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        synthesis_kwargs = dict(synthesis_kwargs or {})
        self.config = copy.deepcopy(dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                         img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                                         synthesis_kwargs=synthesis_kwargs))
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    @property
    def blocks(self) -> list[SynthesisBlock]:
        """Synthesis blocks from the constant side (b4 first): ``freezeg K`` freezes ``blocks[:K]``."""
        return self.synthesis.blocks

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
        fused_modconv: bool | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)


def style_mix(
    G: Generator,
    z: torch.Tensor,
    c: torch.Tensor | None,
    prob: float,
    update_emas: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mapping output with style-mixing regularisation, as StyleGAN2's loss does it.

    With probability ``prob`` (one draw per batch) a cutoff ``k`` is drawn uniformly from
    ``[1, num_ws)`` and ws ``k..`` come from a second, fresh latent; otherwise the plain ws.
    The second mapping pass never updates ``w_avg``. Returns ws [N, num_ws, w_dim]; feed it to
    ``G.synthesis``.

    The one implementation: the training loss (:meth:`gantl.training.losses.GANLoss.run_G`) calls
    it, so its tests test training. The coin and the cutoff stay tensors (no ``.item()``), so a GPU
    step never waits for the host; without ``generator`` they come from the global RNG on ws's
    device in a fixed order (cutoff, coin, second latent), so a seed gives one sequence of cutoffs.
    """
    ws = G.mapping(z, c, update_emas=update_emas)
    n = ws.shape[1]
    if prob <= 0 or n < 2:
        return ws
    if generator is None:
        cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, n)
        use_mix = torch.rand([], device=ws.device) < prob
        z2 = torch.randn_like(z)
    else:
        cutoff = torch.randint(1, n, [], generator=generator).to(ws.device)
        use_mix = (torch.rand([], generator=generator) < prob).to(ws.device)
        z2 = torch.randn(z.shape, generator=generator).to(z.device, z.dtype)
    cutoff = torch.where(use_mix, cutoff, torch.full_like(cutoff, n))
    mixed = G.mapping(z2, c, update_emas=False)
    keep = torch.arange(n, device=ws.device)[None, :, None] < cutoff
    return torch.where(keep, ws, mixed)


# ----------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """One resolution of D: (fromrgb) -> conv0 -> conv1 (down 2), with a 1x1 skip for resnet."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: tuple[float, ...] | list[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
    ) -> None:
        _check_architecture(architecture)
        if in_channels not in (0, tmp_channels):
            raise ConfigError(f"DiscriminatorBlock: in_channels must be 0 or {tmp_channels}, got {in_channels}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.register_buffer("resample_filter", fir.setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:
            # NVIDIA's freeze_layers counts layers from the image side across blocks.
            idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, resample_filter=resample_filter,
                                 trainable=trainable(), **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter, trainable=trainable())

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        del force_fp32
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = fir.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 end of D: minibatch stddev, conv, fc, out (+ projection onto the mapped label)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        _check_architecture(architecture)
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None,
                force_fp32: bool = False) -> torch.Tensor:
        del force_fp32
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            # Projection discriminator: score = <features, embedded label> / sqrt(dim).
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2 discriminator: blocks ``b{res}`` ... ``b8``, then the 4x4 epilogue ``b4``."""

    def __init__(
        self,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: dict[str, Any] | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        epilogue_kwargs: dict[str, Any] | None = None,
    ) -> None:
        log2 = _check_resolution(img_resolution)
        _check_architecture(architecture)
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.config = copy.deepcopy(dict(
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels, architecture=architecture,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
            cmap_dim=cmap_dim, block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs,
            epilogue_kwargs=epilogue_kwargs))
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                                       resolution=res, first_layer_idx=layer_idx, **block_kwargs, **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    @property
    def blocks(self) -> list[nn.Module]:
        """Blocks from the image side (b{res} first, epilogue b4 last): ``freezed K`` freezes ``blocks[:K]``."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions] + [self.b4]

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        expected = [self.img_channels, self.img_resolution, self.img_resolution]
        if img.ndim != 4 or list(img.shape[1:]) != expected:
            raise ConfigError(f"D expects images [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        c = _labels(c, self.c_dim, img.shape[0], img.device)
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)
