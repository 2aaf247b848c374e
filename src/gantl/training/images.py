"""Image grids for reals.png / fakes*.png, and the fixed latents they are drawn from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [-1, 1] (or uint8) -> uint8 NHWC."""
    if img.dtype != torch.uint8:
        img = (img.detach().float().cpu() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return img.cpu().permute(0, 2, 3, 1).numpy()


def save_grid(img: torch.Tensor, path: str | Path, cols: int) -> Path:
    """Tile images row-major into a ``cols``-wide grid PNG."""
    arr = to_uint8(img)
    n, h, w, c = arr.shape
    rows = (n + cols - 1) // cols
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        canvas[r * h:(r + 1) * h, k * w:(k + 1) * w] = arr[i]
    if c == 1:
        canvas = canvas[:, :, 0]
    path = Path(path)
    Image.fromarray(canvas).save(path)
    return path


def fixed_latents(n: int, z_dim: int, c_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The same ``n`` latents (and labels cycling through the classes) for every grid of a run.

    Drawn from a private generator so writing grids never moves the training RNG.
    """
    gen = torch.Generator().manual_seed(int(seed) + 12345)
    z = torch.randn([n, z_dim], generator=gen)
    c = None
    if c_dim > 0:
        c = torch.zeros([n, c_dim])
        c[torch.arange(n), torch.arange(n) % c_dim] = 1
    return z, c


@torch.no_grad()
def generate_grid(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor | None, batch: int = 32) -> torch.Tensor:
    """G's images for fixed latents, with constant noise so the grid itself is deterministic."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, z.shape[0], batch):
        zi = z[i:i + batch].to(device)
        ci = c[i:i + batch].to(device) if c is not None else None
        out.append(G(zi, ci, noise_mode="const").cpu())
    return torch.cat(out)
