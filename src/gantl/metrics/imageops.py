"""Small pixel helpers shared by the metrics that look at images rather than features."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_unit_range(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 NCHW -> float32 in [-1, 1] at ``resolution`` (area downsampling, bilinear upsampling)."""
    x = images.to(torch.float32) / 127.5 - 1.0
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        mode = "area" if x.shape[-1] > resolution else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        x = F.interpolate(x, size=(resolution, resolution), mode=mode, **kwargs)
    return x.contiguous()


def generator_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """G output nominally in [-1, 1] -> uint8, exactly as StyleGAN2-ADA's metrics do."""
    return (images.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()
