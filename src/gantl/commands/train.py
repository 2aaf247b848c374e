"""`gantl train`: train from scratch or adapt a pretrained source."""

from __future__ import annotations

from gantl.errors import NotImplementedFeatureError

EPILOG = "Example: gantl train --data horse500.zip --resume cifar9-stylegan2 --method freezed:4 --aug ada"


def train() -> None:
    """Train a GAN, optionally transferring from a pretrained source."""
    raise NotImplementedFeatureError("`gantl train` is not built yet (issue 3); nothing was trained")
