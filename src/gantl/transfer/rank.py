"""Rank candidate sources for a target by how close their samples already are to it.

TransferGAN (Wang et al., ECCV 2018, section 5 and Table 5) asks which pretrained GAN to start from
and examines FID(source samples, target images): the lowest picked the best source for two of its
three targets (research notes A7). :func:`rank_sources` measures exactly that for every candidate,
with gantl's metrics (FID by default, KID or any other lower-is-better metric on request) so
``gantl models rank --data TARGET SRC...`` prints the candidates nearest first.

Class-conditional sources are sampled over all their classes uniformly (the target is compared
unconditionally); a source of another resolution is fine, since the Inception features resize
every image anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gantl.errors import ConfigError

DISTANCES = ("fid", "kid", "iw")  # metrics whose first value is a distance (lower is better)


class AllClasses(nn.Module):
    """A conditional generator sampled with uniformly random classes, seen as unconditional."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G
        self.z_dim = G.z_dim
        self.c_dim = 0

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        # the metrics seed the global RNG per batch, so the classes are a function of the seed
        classes = torch.randint(self.G.c_dim, [z.shape[0]], device=z.device)
        return self.G(z, F.one_hot(classes, self.G.c_dim).float(), **kwargs)


def rank_sources(target: Any, sources: Sequence[str], metrics: Sequence[str] = ("fid",), *,
                 num_gen: int | None = None, num_real: int | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", progress: bool = False) -> list[dict[str, Any]]:
    """``[{"rank", "source", "path", metric: value, ...}]``, nearest first by ``metrics[0]``."""
    from gantl.checkpoints.format import load_checkpoint
    from gantl.metrics.api import evaluate_generator, open_dataset
    from gantl.metrics.registry import get_metric
    from gantl.transfer.source import resolve_source

    if not sources:
        raise ConfigError("give at least one source to rank, e.g. gantl models rank --data horses.zip "
                          "cifar9-stylegan2-32 cifar9-dcgan-32")
    if not metrics:
        raise ConfigError("give a metric to rank by, e.g. --metric fid")
    if metrics[0] not in DISTANCES:
        raise ConfigError(f"sources are ranked by a distance to the target (lower is better): rank by one of "
                          f"{', '.join(DISTANCES)}, not {metrics[0]} (it may follow: --metric fid,{metrics[0]})")
    key = get_metric(metrics[0]).keys[0]
    dataset = open_dataset(target, use_labels=False)
    rows: list[dict[str, Any]] = []
    for name in sources:
        path = resolve_source(name)
        ckpt = load_checkpoint(path)
        net = next((n for n in ("G_ema", "G") if n in ckpt.tensors), None)
        if net is None:
            raise ConfigError(f"source {name} holds no generator (G_ema or G); it cannot be ranked")
        G = ckpt.build(net).eval().requires_grad_(False).to(device)
        if int(getattr(G, "c_dim", 0) or 0) > 0:
            G = AllClasses(G)
        results = evaluate_generator(G, dataset, list(metrics), num_gen=num_gen, num_real=num_real, seed=seed,
                                     device=device, progress=progress)
        rows.append({"source": name, "path": str(path), **results})
    rows.sort(key=lambda r: r[key])
    for i, row in enumerate(rows, start=1):
        row["rank"] = i
    return rows
