"""`gantl demo`: the main job on a built-in default (what `make demo` runs)."""

from __future__ import annotations

from gantl.errors import NotImplementedFeatureError

EPILOG = "Example: gantl demo"


def demo() -> None:
    """Curate 500 CIFAR-10 horses, train from scratch and by transfer, and compare them."""
    raise NotImplementedFeatureError("`gantl demo` is not built yet (issue 6)")
