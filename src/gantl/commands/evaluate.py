"""`gantl eval`: FID, KID, precision/recall, density/coverage, IS and more."""

from __future__ import annotations

from gantl.errors import NotImplementedFeatureError

EPILOG = "Example: gantl eval --metrics fid,kid --real cifar10.zip:train/horse --fake runs/00001-horse"


def evaluate() -> None:
    """Evaluate generated images against real ones."""
    raise NotImplementedFeatureError("`gantl eval` is not built yet (issue 4); nothing was measured")
