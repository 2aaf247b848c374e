"""Batched homogeneous matrices for the ADA pipeline.

Every augmentation in :mod:`gantl.augment.ada` is expressed as a matrix so that a whole chain of
geometric ops becomes one 3x3 matrix per sample (one resampling, one chance to blur) and a chain of
colour ops becomes one 4x4 matrix per sample (one matmul over all pixels).

Conventions:

* 2-D matrices act on column vectors ``(x, y, 1)`` in *centred pixel coordinates*: the origin is the
  image centre, one unit is one pixel, x grows to the right and y downwards.
* 3-D (colour) matrices act on ``(r, g, b, 1)``.
* Every helper takes per-sample tensors of shape ``[N]`` and returns ``[N, 3, 3]`` / ``[N, 4, 4]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Unit vector of the luma axis used by ADA's colour ops (grey = equal RGB).
LUMA_AXIS = (1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3))


def _stack_rows(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """Build ``[N, R, C]`` from a grid of per-sample tensors and Python scalars."""
    n = like.shape[0]
    out = []
    for row in rows:
        cols = []
        for v in row:
            if isinstance(v, Tensor):
                cols.append(v.to(like.dtype))
            else:
                cols.append(torch.full((n,), float(v), dtype=like.dtype, device=like.device))
        out.append(torch.stack(cols, dim=-1))
    return torch.stack(out, dim=-2)


def identity(n: int, size: int, *, device: torch.device | str | None = None, dtype=torch.float32) -> Tensor:
    """``[n, size, size]`` identity matrices."""
    return torch.eye(size, device=device, dtype=dtype).expand(n, size, size).clone()


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    """Move content by (tx, ty) pixels."""
    return _stack_rows([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    """Scale content about the image centre."""
    return _stack_rows([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: Tensor) -> Tensor:
    """Rotate content by ``theta`` radians about the image centre (counter-clockwise on screen for theta>0
    in a y-up frame; the direction does not matter for ADA because angles are symmetric)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _stack_rows([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(tr: Tensor, tg: Tensor, tb: Tensor) -> Tensor:
    """Add an offset to each colour channel."""
    return _stack_rows([[1, 0, 0, tr], [0, 1, 0, tg], [0, 0, 1, tb], [0, 0, 0, 1]], tr)


def scale3d(sr: Tensor, sg: Tensor, sb: Tensor) -> Tensor:
    """Multiply each colour channel (about colour 0, i.e. mid-grey for images in [-1, 1])."""
    return _stack_rows([[sr, 0, 0, 0], [0, sg, 0, 0], [0, 0, sb, 0], [0, 0, 0, 1]], sr)


def luma_outer(like: Tensor) -> Tensor:
    """``v v^T`` for the luma axis, embedded in a 4x4 homogeneous matrix (zero last row/column)."""
    v = torch.tensor([*LUMA_AXIS, 0.0], dtype=like.dtype, device=like.device)
    return torch.outer(v, v)


def householder_luma(flip: Tensor) -> Tensor:
    """Reflect colours through the plane orthogonal to the luma axis where ``flip`` is 1 (identity where 0).

    ``I - 2 v v^T`` inverts brightness relative to grey while keeping hue-and-saturation, ADA's "luma flip".
    """
    eye = torch.eye(4, dtype=flip.dtype, device=flip.device)
    return eye - 2 * luma_outer(flip) * flip.reshape(-1, 1, 1)


def rotate3d_luma(theta: Tensor) -> Tensor:
    """Rotate colours by ``theta`` about the luma axis (Rodrigues' formula): ADA's hue rotation."""
    x, y, z = LUMA_AXIS
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return _stack_rows(
        [
            [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
            [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
            [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
            [0, 0, 0, 1],
        ],
        theta,
    )


def saturate_luma(s: Tensor) -> Tensor:
    """Scale the chroma (component orthogonal to the luma axis) by ``s``: ADA's saturation op."""
    vv = luma_outer(s)
    eye = torch.eye(4, dtype=s.dtype, device=s.device)
    chroma = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=s.dtype, device=s.device)) - vv
    return eye + chroma * (s.reshape(-1, 1, 1) - 1)
