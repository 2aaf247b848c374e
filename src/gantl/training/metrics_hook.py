"""Metrics at snapshots: G_ema against the training set, via :func:`gantl.metrics.api.evaluate_generator`.

The hook is optional: when ``gantl.metrics`` is absent or a metric cannot be computed (for
example its feature-extractor weights are not cached on an offline machine) the run logs
one warning and keeps training — losing hours of training to a metric is worse than a gap
in metrics.jsonl. The metric code samples with its own seeded generators and the loop calls
it inside an RNG fork, so measuring never changes the training curve.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gantl.errors import GantlError

log = logging.getLogger("gantl")


def evaluate_snapshot(trainer: Any, ckpt: Path) -> dict[str, float] | None:
    """``{metric: value}`` for the trainer's G_ema, or None (with a warning) when unavailable."""
    try:
        from gantl.metrics.api import evaluate_generator
    except ImportError as exc:
        log.warning("metrics %s skipped: gantl.metrics is not available (%s)", trainer.opts.metrics, exc)
        return None
    opts = trainer.opts
    try:
        results = evaluate_generator(trainer.G_ema, trainer.setup.dataset, list(opts.metrics),
                                     num_gen=opts.metrics_num_gen, device=trainer.device, seed=opts.seed,
                                     progress=False)
    except GantlError as exc:
        log.warning("metrics at %s failed: %s", ckpt.name, exc)
        return None
    out = {k: float(v) for k, v in results.items() if isinstance(v, (int, float))}
    log.info("metrics at %s: %s", ckpt.name, ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return out
