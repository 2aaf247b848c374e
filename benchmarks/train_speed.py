"""Training speed: images/s of a full gantl training step on CPU (one JSON line per configuration).

A "step" is what the loop does per minibatch: G main phase, D main phase, lazy R1 every
16th step (and path length every 4th when the preset has it), the G_ema update and the
ADA bookkeeping. Each measurement times a whole number of R1 intervals after warm-up, so
the lazy regulariser's cost is included in proportion. Data comes from an in-memory
random uint8 dataset so decoding is not measured.

Usage: .venv/bin/python benchmarks/train_speed.py [--configs cpu-small,cifar,dcgan-small] [--steps 16]
       [--threads 2] [--aug none,ada]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch


class RandomImages:
    """A dataset stand-in with the ImageDataset attributes the loop uses."""

    def __init__(self, n: int = 512, res: int = 32, c_dim: int = 0, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.images = torch.from_numpy(rng.integers(0, 256, (n, 3, res, res), dtype=np.uint8))
        self.resolution, self.num_channels, self.c_dim = res, 3, c_dim
        self.labels = np.zeros((n, c_dim), dtype=np.float32)
        self.xflip = False
        self.name = f"random{res}"
        self.num_images = n

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], torch.from_numpy(self.labels[i])

    def content_hash(self) -> str:
        return "random"


def measure(model: str, cfg: str, aug: str, steps: int, batch: int) -> dict:
    from gantl.config import from_dict
    from gantl.training.loop import Trainer, _TickStats
    from gantl.training.options import TrainOptions

    opts = from_dict(TrainOptions, dict(model=model, cfg=cfg, batch=batch, aug=aug, ada_p=0.3 if aug == "ada" else None,
                                        progress=False, tensorboard=False, device="cpu",
                                        gamma=None if model == "stylegan2" else 0.1))
    trainer = Trainer(opts, dataset=RandomImages(res=32))
    tick = _TickStats()
    for _ in range(2):  # warm-up (includes the first R1 step at batch_idx 0)
        trainer.step(tick)
    interval = max(p["interval"] for p in trainer.phases)
    n = max(steps // interval, 1) * interval
    start = time.perf_counter()
    for _ in range(n):
        trainer.step(tick)
    sec = time.perf_counter() - start
    g = sum(p.numel() for p in trainer.G.parameters())
    d = sum(p.numel() for p in trainer.D.parameters())
    return {"bench": "train_speed", "model": model, "cfg": cfg, "aug": aug + (" p=0.3" if aug == "ada" else ""),
            "resolution": 32, "batch": batch, "steps": n, "sec_per_step": sec / n, "img_per_sec": batch * n / sec,
            "G_params": g, "D_params": d, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "loadavg_1min": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="cpu-small,cifar,dcgan-small")
    ap.add_argument("--aug", default="none,ada")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for cfg in args.configs.split(","):
        model = "dcgan" if cfg.startswith("dcgan") else "stylegan2"
        for aug in args.aug.split(","):
            print(json.dumps(measure(model, cfg, aug, args.steps, args.batch)), flush=True)


if __name__ == "__main__":
    main()
