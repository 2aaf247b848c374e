"""StyleGAN2 building blocks: equalized-lr layers, modulated convolution, minibatch stddev.

Parameter and buffer names/shapes follow NVIDIA's stylegan2-ada-pytorch so their state dicts
load unchanged. Equalized learning rate: weights are stored as N(0, 1) (divided by the lr
multiplier) and scaled by ``1/sqrt(fan_in)`` (times the multiplier) at every forward pass, so
Adam's per-parameter step sizes treat every layer alike regardless of its fan-in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gantl.models import fir

# name -> default gain that keeps the activation's output variance about that of its input.
ACTIVATION_GAINS: dict[str, float] = {"linear": 1.0, "relu": math.sqrt(2), "lrelu": math.sqrt(2)}
LRELU_SLOPE = 0.2


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation, scale by ``gain``, clamp to ±clamp."""
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif act == "relu":
        x = F.relu(x)
    elif act != "linear":
        raise ValueError(f"unknown activation '{act}'; use linear, relu or lrelu")
    gain = ACTIVATION_GAINS[act] if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Equalized-lr dense layer; ``lr_multiplier`` slows a layer down (0.01 in the mapping net)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution with optional FIR up/down-sampling, bias, activation and clamp.

    Every instance carries a ``resample_filter`` buffer (even when it does not resample),
    because NVIDIA's state dicts have one there.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", fir.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATION_GAINS[activation]
        # Frozen layers (NVIDIA's freeze_layers) keep the same names; they just get no gradient.
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]),
                                   requires_grad=trainable)
        self.bias = nn.Parameter(torch.zeros([out_channels]), requires_grad=trainable) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        x = fir.conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.weight.shape[-1]}, "
                f"up={self.up}, down={self.down}, act={self.activation}")


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1/sqrt(sum_{i,k} (w[o,i,k] * s[n,i])^2 + eps)`` as [N, O] without building [N, O, I, k, k].

    The sum factorises: ``sum_i s[n,i]^2 * sum_k w[o,i,k]^2`` is one small matrix product.
    """
    wsq = weight.square().sum(dim=[2, 3])  # [O, I]
    return (styles.square() @ wsq.t() + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused_modconv: bool = False,
) -> torch.Tensor:
    """StyleGAN2's modulated (and optionally demodulated) convolution.

    Each sample ``n`` is convolved with ``weight[o, i] * styles[n, i] * d[n, o]`` where ``d`` is
    the demodulation coefficient. Two equivalent ways to run it:

    * not fused (default): scale the input channels by the style, run one ordinary batched
      convolution with the shared weight, scale the output channels by ``d``. On CPUs this is the
      fastest: one large GEMM instead of N small ones, and no per-sample weights in memory.
    * fused: build per-sample weights and run a grouped convolution with ``groups=N``
      (what NVIDIA uses at inference time).

    ``noise`` (broadcastable to the output) is added after demodulation, as in the reference.
    """
    n = x.shape[0]
    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = fir.conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    out_channels, in_channels, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, n * in_channels, *x.shape[2:])
    w = w.reshape(n * out_channels, in_channels, kh, kw).to(x.dtype)
    x = fir.conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, out_channels, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def modulated_conv2d_bias_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    bias: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    act: str = "lrelu",
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Batched demodulated conv + noise + bias + activation + gain + clamp, with fewer tensor passes.

    Equals ``bias_act(modulated_conv2d(...) + noise, bias, act, gain, clamp)``. The supported
    activations are positively homogeneous (``act(g*t) = g*act(t)`` for ``g > 0``), so the gain is
    folded into the per-channel demodulation scale, the bias and the noise, and everything before
    the activation is a single ``addcmul``: 2 elementwise passes instead of 5 on the largest
    tensors of the generator.
    """
    if gain <= 0 or act not in ACTIVATION_GAINS:
        raise ValueError("modulated_conv2d_bias_act needs a positive gain and a linear/relu/lrelu activation")
    n = x.shape[0]
    scale = demodulation_coefficients(weight, styles) * gain  # [N, O]
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    x = fir.conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
    shift = (bias.to(x.dtype) * gain).reshape(1, -1, 1, 1)
    if noise is not None:
        shift = shift + noise.to(x.dtype) * gain
    x = torch.addcmul(shift, x, scale.to(x.dtype).reshape(n, -1, 1, 1))
    return bias_act(x, None, act=act, gain=1.0, clamp=clamp)


class MinibatchStdLayer(nn.Module):
    """Append the average per-group standard deviation of features as extra channel(s).

    Lets D see batch statistics so it can punish a generator that produces too little variety.
    Groups are formed by striding the batch (sample ``i`` is in group ``i % (N // G)``), as in
    the reference.
    """

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise ValueError(f"minibatch-stddev: batch size {n} is not a multiple of the group size {g}; "
                             f"use a batch that is a multiple of {g} or change mbstd_group_size")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over each group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/g, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
