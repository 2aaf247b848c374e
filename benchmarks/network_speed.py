"""Forward+backward throughput of the StyleGAN2 networks (img/s), one JSON line per measurement.

Measures, per preset, at batch 32 and 32 px:

* ``G``: generator forward (train mode, random noise) + backward to all parameters;
* ``D``: discriminator forward + backward to all parameters;
* ``D_r1``: discriminator forward, gradient w.r.t. the images with ``create_graph=True``, and
  backward of the R1 penalty to the parameters (the double-backward path).

With ``--nvidia-repo PATH`` (a checkout of NVlabs/stylegan2-ada-pytorch) the same measurements
run on NVIDIA's ``training/networks.py`` with identical configurations (float32, like
``--fp32``) so the speed-up can be read off directly. Nothing is downloaded.

Example::

    .venv/bin/python benchmarks/network_speed.py --presets cpu-small cifar --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone

import torch


def _build(impl: str, preset_name: str, resolution: int, c_dim: int):
    from gantl.models.presets import get_preset

    p = get_preset(preset_name, resolution=resolution)
    gk = p.generator_kwargs(resolution, 3, c_dim)
    dk = p.discriminator_kwargs(resolution, 3, c_dim)
    # Compare like with like: float32 everywhere (NVIDIA's fp16 needs a GPU).
    gk["synthesis_kwargs"]["num_fp16_res"] = 0
    dk["num_fp16_res"] = 0
    if impl == "gantl":
        from gantl.models.stylegan2 import Discriminator, Generator
    else:
        from training.networks import Discriminator, Generator  # type: ignore[import-not-found]
    return Generator(**gk).train(), Discriminator(**dk).train(), p


def _sync() -> None:
    if torch.cuda.is_available() and torch.get_default_device().type == "cuda":
        torch.cuda.synchronize()


def _time(fn, warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        fn()
    _sync()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync()
    return (time.perf_counter() - t0) / repeat


def measure(impl: str, preset: str, batch: int, resolution: int, c_dim: int, warmup: int, repeat: int) -> list[dict]:
    torch.manual_seed(0)
    G, D, p = _build(impl, preset, resolution, c_dim)
    z = torch.randn(batch, G.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(batch) % max(c_dim, 1), max(c_dim, 1)).float()[:, :c_dim]
    reals = torch.randn(batch, 3, resolution, resolution)

    def g_step() -> None:
        G.zero_grad(set_to_none=True)
        G(z, c).square().mean().backward()

    def d_step() -> None:
        D.zero_grad(set_to_none=True)
        D(reals, c).mean().backward()

    def d_r1() -> None:
        D.zero_grad(set_to_none=True)
        img = reals.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(img, c).sum(), img, create_graph=True)
        grad.square().sum(dim=[1, 2, 3]).mean().backward()

    rows = []
    params = {"G": sum(x.numel() for x in G.parameters()), "D": sum(x.numel() for x in D.parameters())}
    for net, fn in (("G", g_step), ("D", d_step), ("D_r1", d_r1)):
        sec = _time(fn, warmup, repeat)
        rows.append(dict(
            bench="network_speed", impl=impl, preset=preset, net=net, batch=batch, resolution=resolution,
            c_dim=c_dim, params=params[net[0]], sec_per_iter=round(sec, 4), img_per_s=round(batch / sec, 2),
        ))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cpu-tiny", "cpu-small", "cifar"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--c-dim", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (gantl only)")
    ap.add_argument("--nvidia-repo", default=None, help="path to a stylegan2-ada-pytorch checkout to compare with")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    impls = ["gantl"]
    if args.nvidia_repo:
        sys.path.insert(0, os.path.abspath(args.nvidia_repo))
        impls.append("nvidia")
    if args.device != "cpu":
        torch.set_default_device(args.device)
    for preset in args.presets:
        for impl in impls:
            for row in measure(impl, preset, args.batch, args.resolution, args.c_dim, args.warmup, args.repeat):
                row.update(threads=torch.get_num_threads(), device=args.device, torch=torch.__version__,
                           machine=platform.machine(), loadavg=[round(x, 2) for x in os.getloadavg()],
                           date=datetime.now(timezone.utc).strftime("%Y-%m-%d"))
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
