"""FIR up/down-sampling and resampling convolutions, built from stock PyTorch ops.

StyleGAN2 resamples with a small low-pass FIR filter (``[1, 3, 3, 1]``) instead of nearest or
bilinear interpolation, which keeps the generator free of aliasing artefacts. NVIDIA's
reference does this with a custom CUDA kernel (``upfirdn2d``) and falls back to a slow
pad-reshape-convolve path on CPU. Here every operation is one or two native convolutions:

* upsampling an image = a depthwise *transposed* convolution with stride 2 whose kernel is the
  filter (zero insertion and filtering in one op);
* downsampling = a depthwise strided convolution with the filter;
* a 3x3 convolution with ``up=2`` = transposed strided convolution, then a depthwise blur
  (the FLOP-cheapest order, the same order NVIDIA uses);
* a 3x3 convolution with ``down=2`` = depthwise blur, then a strided convolution.

All of them are differentiable to any order (R1 and path-length regularisation need the
gradient of a gradient), because they are ordinary ``conv2d``/``conv_transpose2d`` calls.

Filters are stored as ``[k, k]`` float32 tensors normalised to sum to one, exactly the form
NVIDIA keeps in its ``resample_filter`` buffers, so imported buffers work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def setup_filter(taps: Sequence[float] | torch.Tensor = (1, 3, 3, 1)) -> torch.Tensor:
    """A 2-D filter ``[k, k]`` (outer product of 1-D taps) normalised to unit DC gain.

    A 2-D input is taken as the filter itself and only normalised.
    """
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim == 1:
        f = torch.outer(f, f)
    if f.ndim != 2:
        raise ValueError(f"a FIR filter must have 1 or 2 dimensions, got shape {tuple(f.shape)}")
    return f / f.sum()


def _depthwise_kernel(f: torch.Tensor, channels: int, dtype: torch.dtype, gain: float = 1.0) -> torch.Tensor:
    # upfirdn2d *convolves* with the filter; conv2d correlates, so flip (a no-op for symmetric filters).
    k = f.flip([0, 1]).to(dtype)
    if gain != 1:
        k = k * gain
    return k[None, None].expand(channels, 1, *k.shape).contiguous()


class _DepthwiseFIR(torch.autograd.Function):
    """A depthwise convolution (or transposed convolution) with a constant kernel.

    It is linear in ``x``, so its gradient is its adjoint: the transposed op with the same
    kernel. Implementing backward by calling this Function again makes it differentiable to any
    order at the cost of one depthwise op per order. PyTorch's own double backward of a grouped
    convolution splits it into one convolution per group (hundreds of tiny calls per R1 step).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: torch.Tensor, stride: int, transpose: bool,  # type: ignore[override]
                output_padding: int) -> torch.Tensor:
        ctx.save_for_backward(k)
        ctx.stride, ctx.transpose, ctx.in_size = stride, transpose, x.shape[-2:]
        if transpose:
            return F.conv_transpose2d(x, k, stride=stride, groups=x.shape[1], output_padding=output_padding)
        return F.conv2d(x, k, stride=stride, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (k,) = ctx.saved_tensors
        if ctx.transpose:
            dx = _DepthwiseFIR.apply(grad, k, ctx.stride, False, 0)
        else:
            # Strided convs floor their output size; the adjoint restores the exact input size.
            full = (grad.shape[-1] - 1) * ctx.stride + k.shape[-1]
            dx = _DepthwiseFIR.apply(grad, k, ctx.stride, True, ctx.in_size[-1] - full)
        return dx, None, None, None, None


def _depthwise(x: torch.Tensor, k: torch.Tensor, stride: int = 1, transpose: bool = False) -> torch.Tensor:
    return _DepthwiseFIR.apply(x, k, stride, transpose, 0)


def _pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) the last two dimensions."""
    if min(x0, x1, y0, y1) < 0:
        h, w = x.shape[-2:]
        x = x[..., max(-y0, 0) : h - max(-y1, 0), max(-x0, 0) : w - max(-x1, 0)]
    if max(x0, x1, y0, y1) > 0:
        x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x


def filter2d(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int, int, int], gain: float = 1.0) -> torch.Tensor:
    """Depthwise FIR filtering of ``x`` [N, C, H, W] after padding ``(x0, x1, y0, y1)``."""
    x = _pad_or_crop(x, *pad)
    return _depthwise(x, _depthwise_kernel(f, x.shape[1], x.dtype, gain))


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample by ``up`` with the FIR filter (output ``up`` times larger, DC gain kept).

    Zero insertion followed by filtering is exactly a transposed convolution with stride ``up``;
    the padding keeps NVIDIA's alignment: ``(fw + up - 1) // 2`` leading pad on the stuffed image,
    which for a transposed convolution becomes ``fw - 1 - that``.
    """
    fh, fw = f.shape
    pad_y = fh - 1 - (fh + up - 1) // 2
    pad_x = fw - 1 - (fw + up - 1) // 2
    out = _depthwise(x, _depthwise_kernel(f.flip([0, 1]), x.shape[1], x.dtype, up * up), stride=up, transpose=True)
    # Full transposed output: (H-1)*up + fh samples; the reference keeps H*up of them after the pad.
    h, w = x.shape[-2] * up, x.shape[-1] * up
    return out[..., pad_y : pad_y + h, pad_x : pad_x + w]


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """Filter and keep every ``down``-th pixel (output ``down`` times smaller)."""
    fh, fw = f.shape
    pad = ((fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2)
    x = _pad_or_crop(x, *pad)
    return _depthwise(x, _depthwise_kernel(f, x.shape[1], x.dtype), stride=down)


def _transpose_grouped(w: torch.Tensor, groups: int) -> torch.Tensor:
    """Weights [G*O, I, k, k] of a grouped conv -> [G*I, O, k, k] for the adjoint transposed conv."""
    o_total, i, kh, kw = w.shape
    o = o_total // groups
    return w.reshape(groups, o, i, kh, kw).transpose(1, 2).reshape(groups * i, o, kh, kw)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution with optional FIR up- or down-sampling by 2, matching NVIDIA's semantics.

    ``padding`` is the convolution padding with respect to the (upsampled) image, as in the
    reference. With ``up > 1`` the weight acts as a true convolution of the zero-stuffed image
    (the reference passes ``flip_weight=False`` there); otherwise as a correlation, like ``conv2d``.
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up- and down-sampling at once is not supported")
    kh, kw = w.shape[-2:]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    assert f is not None, "resampling needs a filter"
    fh, fw = f.shape
    if down > 1:
        if kh == 1 and kw == 1:
            # 1x1 conv commutes with the filter: shrink first, then convolve fewer pixels.
            return F.conv2d(downsample2d(x, f, down), w, groups=groups)
        pad = (
            padding + (fw - down + 1) // 2,
            padding + (fw - down) // 2,
            padding + (fh - down + 1) // 2,
            padding + (fh - down) // 2,
        )
        return F.conv2d(filter2d(x, f, pad), w, stride=down, groups=groups)
    # up > 1
    if kh == 1 and kw == 1:
        return upsample2d(F.conv2d(x, w, groups=groups), f, up)
    wt = w.transpose(0, 1) if groups == 1 else _transpose_grouped(w, groups)
    x = F.conv_transpose2d(x, wt, stride=up, groups=groups)
    # Total padding the reference applies around the transposed-conv output before filtering.
    px0 = padding + (fw + up - 1) // 2 - (kw - 1)
    px1 = padding + (fw - up) // 2 - (kw - up)
    py0 = padding + (fh + up - 1) // 2 - (kh - 1)
    py1 = padding + (fh - up) // 2 - (kh - up)
    return filter2d(x, f, (px0, px1, py0, py1), gain=up * up)
