"""Training speed: images/s of a full gantl training step on CPU (one JSON line per configuration).

A "step" is what the loop does per minibatch: G main phase, D main phase, lazy R1 every
16th step (and path length every 4th when the preset has it), the G_ema update and the
ADA bookkeeping. Each measurement times a whole number of R1 intervals after warm-up, so
the lazy regulariser's cost is included in proportion. Data comes from an in-memory
random uint8 dataset so decoding is not measured.

With ``--nvidia-repo PATH`` (a checkout of NVlabs/stylegan2-ada-pytorch, not part of gantl) the
same step also runs on NVIDIA's networks and ``StyleGAN2Loss`` with the same configuration and
phases (float32 like their ``--fp32``, custom ops falling back to their reference code on CPU),
and the two are timed turn about, one R1 interval each, so load from other processes hits both
alike; a ``speedup`` line follows.

Usage: .venv/bin/python benchmarks/train_speed.py [--configs cpu-small,cifar,dcgan-small] [--steps 16]
       [--threads 2] [--aug none,ada] [--nvidia-repo ../stylegan2-ada-pytorch]
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


class NvidiaStep:
    """NVIDIA's training step (their networks + StyleGAN2Loss, phases Gmain/Greg/Dmain/Dreg with
    their lazy-regularisation optimizer settings), driven like their training_loop on one process."""

    def __init__(self, cfg: str, batch: int, res: int = 32) -> None:
        from training.loss import StyleGAN2Loss  # type: ignore[import-not-found]
        from training.networks import Discriminator, Generator  # type: ignore[import-not-found]

        from gantl.models.presets import get_preset

        p = get_preset(cfg, resolution=res)
        gk, dk = p.generator_kwargs(res, 3, 0), p.discriminator_kwargs(res, 3, 0)
        for kw in (gk["synthesis_kwargs"], dk):
            kw["num_fp16_res"], kw["conv_clamp"] = 0, None
        self.G, self.D = Generator(**gk).train(), Discriminator(**dk).train()
        self.G.requires_grad_(False), self.D.requires_grad_(False)
        self.loss = StyleGAN2Loss(device=torch.device("cpu"), G_mapping=self.G.mapping, G_synthesis=self.G.synthesis,
                                  D=self.D, augment_pipe=None, style_mixing_prob=p.style_mixing_prob,
                                  r1_gamma=p.gamma, pl_weight=p.pl_weight)
        self.phases = []
        for name, mod, reg in (("G", self.G, 4), ("D", self.D, 16)):
            r = reg / (reg + 1)
            opt = torch.optim.Adam(mod.parameters(), lr=p.lr * r, betas=(0.0, 0.99 ** r), eps=1e-8)
            self.phases += [(name + "main", mod, opt, 1), (name + "reg", mod, opt, reg)]
        self.batch, self.z_dim, self.i = batch, self.G.z_dim, 0
        self.reals = torch.rand(batch, 3, res, res) * 2 - 1

    def step(self) -> None:
        zs = torch.randn(len(self.phases) * self.batch, self.z_dim).split(self.batch)
        empty = torch.zeros(self.batch, 0)
        for (name, mod, opt, interval), z in zip(self.phases, zs, strict=True):
            if self.i % interval:
                continue
            mod.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            self.loss.accumulate_gradients(phase=name, real_img=self.reals, real_c=empty, gen_z=z, gen_c=empty,
                                           sync=True, gain=interval)
            mod.requires_grad_(False)
            for param in mod.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        self.i += 1


def compare_with_nvidia(cfg: str, steps: int, batch: int, rounds: int) -> list[dict]:
    """gantl's and NVIDIA's full step, timed turn about (one R1 interval each), medians."""
    import statistics

    from gantl.config import from_dict
    from gantl.training.loop import Trainer, _TickStats
    from gantl.training.options import TrainOptions

    opts = from_dict(TrainOptions, dict(model="stylegan2", cfg=cfg, batch=batch, aug="none", progress=False,
                                        tensorboard=False, device="cpu"))
    trainer, tick = Trainer(opts, dataset=RandomImages(res=32)), _TickStats()
    nvidia = NvidiaStep(cfg, batch)
    interval = max(p["interval"] for p in trainer.phases)
    n = max(steps // interval, 1) * interval
    runners = {"gantl": lambda: trainer.step(tick), "nvidia": nvidia.step}
    times: dict[str, list[float]] = {k: [] for k in runners}
    for fn in runners.values():  # warm-up, including each side's first R1 step
        fn(), fn()
    for _ in range(rounds):
        for name, fn in runners.items():
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n)
    rows = []
    for name in runners:
        sec = statistics.median(times[name])
        nets = (trainer.G, trainer.D) if name == "gantl" else (nvidia.G, nvidia.D)
        rows.append({"bench": "train_speed", "impl": name, "model": "stylegan2", "cfg": cfg, "aug": "none",
                     "resolution": 32, "batch": batch, "steps_per_round": n, "rounds": rounds,
                     "sec_per_step": sec, "img_per_sec": batch / sec,
                     "G_params": sum(p.numel() for p in nets[0].parameters()),
                     "D_params": sum(p.numel() for p in nets[1].parameters()),
                     "threads": torch.get_num_threads(), "loadavg_1min": os.getloadavg()[0]})
    rows.append({"bench": "train_speed", "impl": "speedup_gantl_over_nvidia", "cfg": cfg,
                 "speedup": statistics.median(times["nvidia"]) / statistics.median(times["gantl"])})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="cpu-small,cifar,dcgan-small")
    ap.add_argument("--aug", default="none,ada")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--nvidia-repo", default=None, help="stylegan2-ada-pytorch checkout to compare with")
    ap.add_argument("--rounds", type=int, default=3, help="turn-about rounds with --nvidia-repo")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.nvidia_repo:
        import sys
        import warnings

        warnings.filterwarnings("ignore")
        sys.path.insert(0, os.path.abspath(args.nvidia_repo))
        for cfg in args.configs.split(","):
            for row in compare_with_nvidia(cfg, args.steps, args.batch, args.rounds):
                print(json.dumps(row), flush=True)
        return
    for cfg in args.configs.split(","):
        model = "dcgan" if cfg.startswith("dcgan") else "stylegan2"
        for aug in args.aug.split(","):
            print(json.dumps(measure(model, cfg, aug, args.steps, args.batch)), flush=True)


if __name__ == "__main__":
    main()
