"""A resumable, seeded stream of training minibatches.

The order of images is a pure function of ``(seed, position)``: epoch ``e`` is the
permutation drawn from a generator seeded with ``(seed, e)``, and position ``p`` in the
endless stream is item ``p mod n`` of epoch ``p // n``. Saving the position is therefore
all a resumed run needs to see exactly the images the uninterrupted run would have seen
(no DataLoader sampler state, no worker prefetch to account for).

Under torchrun the global batch at position ``p`` is ``stream[p : p + batch]`` and rank
``r`` of ``w`` takes its contiguous slice, so the union over ranks is the single-process
batch and resuming with the same world size replays the same data on every rank.

Small datasets (everything below ``max_cache_bytes``) are decoded once into memory; larger
ones are decoded per batch, in ``workers`` threads when asked.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

DEFAULT_CACHE_BYTES = 2 * 1024**3


class BatchStream:
    """Endless seeded minibatches of ``(uint8 images [B, C, H, W], float labels [B, c_dim])``."""

    def __init__(self, dataset: Any, *, batch: int, seed: int, rank: int = 0, world: int = 1, workers: int = 0,
                 max_cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if batch % world != 0:
            raise ValueError(f"batch {batch} is not divisible by the world size {world}")
        self.dataset = dataset
        self.n = len(dataset)
        self.batch, self.seed, self.rank, self.world = int(batch), int(seed), int(rank), int(world)
        self.position = 0
        self.last_indices: list[int] = []
        self._epoch = -1
        self._perm: np.ndarray | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None
        c, r = dataset.num_channels, dataset.resolution
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        if self.n * c * r * r <= max_cache_bytes:
            from gantl.data.dataset import load_all, load_labels

            self._images = load_all(dataset, progress=rank == 0)
            self._labels = load_labels(dataset)

    def permutation(self, epoch: int) -> np.ndarray:
        """The item order of ``epoch`` (a pure function of the seed and the epoch)."""
        if epoch != self._epoch:
            rng = np.random.Generator(np.random.PCG64([self.seed, epoch]))
            self._perm = rng.permutation(self.n)
            self._epoch = epoch
        assert self._perm is not None
        return self._perm

    def indices(self, start: int, count: int) -> list[int]:
        """Dataset indices at stream positions ``start .. start + count - 1``."""
        out = []
        for p in range(start, start + count):
            out.append(int(self.permutation(p // self.n)[p % self.n]))
        return out

    def _load(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self._images is not None and self._labels is not None:
            t = torch.as_tensor(idx)
            return self._images[t], self._labels[t]
        items = list(self._pool.map(self.dataset.__getitem__, idx)) if self._pool else [self.dataset[i] for i in idx]
        return torch.stack([x for x, _ in items]), torch.stack([c for _, c in items])

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of the next global batch; advances the position by the global batch."""
        per_rank = self.batch // self.world
        idx = self.indices(self.position + self.rank * per_rank, per_rank)
        self.position += self.batch
        self.last_indices = idx  # dataset indices of this batch (per-image latents, e.g. GLO)
        return self._load(idx)

    def labels_at(self, idx: torch.Tensor) -> torch.Tensor:
        """Labels of dataset items ``idx`` (for sampling the classes of generated images)."""
        if self._labels is not None:
            return self._labels[idx]
        return torch.stack([torch.from_numpy(np.asarray(self.dataset.labels[int(i) % self.dataset.num_images]))
                            for i in idx])

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position, "seed": self.seed, "n": self.n}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["n"]) != self.n:
            from gantl.errors import DatasetError

            raise DatasetError(f"the dataset now has {self.n} items but the run was trained on {state['n']}; "
                               f"resume with the same dataset")
        self.position = int(state["position"])
