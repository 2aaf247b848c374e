"""`gantl generate`: samples, truncation, interpolation, style mixing."""

from __future__ import annotations

from gantl.errors import NotImplementedFeatureError

EPILOG = "Example: gantl generate runs/00001-horse/best.safetensors --seeds 0-63 --out samples/"


def generate() -> None:
    """Generate images from a checkpoint."""
    raise NotImplementedFeatureError("`gantl generate` is not built yet; nothing was generated")
