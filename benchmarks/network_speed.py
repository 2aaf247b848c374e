"""Forward+backward throughput of the StyleGAN2 networks (img/s), one JSON line per measurement.

Measures, per preset, at batch 32 and 32 px:

* ``G``: generator forward (train mode, random noise) + backward to all parameters;
* ``D``: discriminator forward + backward to all parameters;
* ``D_r1``: discriminator forward, gradient w.r.t. the images with ``create_graph=True``, and
  backward of the R1 penalty to the parameters (the double-backward path).

With ``--nvidia-repo PATH`` (a checkout of NVlabs/stylegan2-ada-pytorch) the same measurements
run on NVIDIA's ``training/networks.py`` with identical configurations, float32 like their
``--fp32`` by default or with ``--nvidia-fp16-res 4`` as their ``train.py`` runs by default.
Implementations are interleaved iteration by iteration and the median is reported, so load from
other processes on a shared machine hits both alike; a ``speedup_gantl_over_nvidia`` line
follows each pair. Nothing is downloaded.

Example::

    .venv/bin/python benchmarks/network_speed.py --presets cpu-small cifar --threads 1 \
        --nvidia-repo ../stylegan2-ada-pytorch --nvidia-fp16-res 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import torch


def _build(impl: str, preset_name: str, resolution: int, c_dim: int, nvidia_fp16_res: int = 0):
    from gantl.models.presets import get_preset

    p = get_preset(preset_name, resolution=resolution)
    gk = p.generator_kwargs(resolution, 3, c_dim)
    dk = p.discriminator_kwargs(resolution, 3, c_dim)
    # gantl always runs float32. NVIDIA's train.py turns on fp16 for the 4 highest resolutions
    # (and conv_clamp=256) unless --fp32; on a CPU that is what a user of their code gets.
    fp16 = nvidia_fp16_res if impl == "nvidia" else 0
    gk["synthesis_kwargs"]["num_fp16_res"] = fp16
    dk["num_fp16_res"] = fp16
    if fp16:
        gk["synthesis_kwargs"]["conv_clamp"] = dk["conv_clamp"] = 256
    if impl == "gantl":
        from gantl.models.stylegan2 import Discriminator, Generator
    else:
        from training.networks import Discriminator, Generator  # type: ignore[import-not-found]
    return Generator(**gk).train(), Discriminator(**dk).train(), p


def _sync() -> None:
    if torch.cuda.is_available() and torch.get_default_device().type == "cuda":
        torch.cuda.synchronize()


def _steps(G, D, batch: int, resolution: int, c_dim: int) -> dict:
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

    return {"G": g_step, "D": d_step, "D_r1": d_r1}


def measure(impls: list[str], preset: str, batch: int, resolution: int, c_dim: int, warmup: int,
            repeat: int, nvidia_fp16_res: int = 0) -> list[dict]:
    """Time each step for every implementation, interleaving the implementations iteration by
    iteration so that load from other processes hits them alike; report the median."""
    nets, steps = {}, {}
    for impl in impls:
        torch.manual_seed(0)
        G, D, _ = _build(impl, preset, resolution, c_dim, nvidia_fp16_res)
        nets[impl] = (G, D)
        steps[impl] = _steps(G, D, batch, resolution, c_dim)
    rows = []
    for net in ("G", "D", "D_r1"):
        times: dict[str, list[float]] = {impl: [] for impl in impls}
        for impl in impls:
            for _ in range(warmup):
                steps[impl][net]()
        for _ in range(repeat):
            for impl in impls:
                _sync()
                t0 = time.perf_counter()
                steps[impl][net]()
                _sync()
                times[impl].append(time.perf_counter() - t0)
        for impl in impls:
            sec = statistics.median(times[impl])
            G, D = nets[impl]
            params = sum(x.numel() for x in (G if net == "G" else D).parameters())
            rows.append(dict(
                bench="network_speed", impl=impl, preset=preset, net=net, batch=batch, resolution=resolution,
                c_dim=c_dim, params=params, sec_per_iter=round(sec, 4), img_per_s=round(batch / sec, 2),
                repeats=repeat, fp16_res=nvidia_fp16_res if impl == "nvidia" else 0,
            ))
        if "nvidia" in times:
            ratio = statistics.median(times["nvidia"]) / statistics.median(times["gantl"])
            rows.append(dict(bench="network_speed", impl="speedup_gantl_over_nvidia", preset=preset, net=net,
                             batch=batch, resolution=resolution, fp16_res=nvidia_fp16_res, speedup=round(ratio, 2)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cpu-tiny", "cpu-small", "cifar"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--c-dim", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (gantl only)")
    ap.add_argument("--nvidia-repo", default=None, help="path to a stylegan2-ada-pytorch checkout to compare with")
    ap.add_argument("--nvidia-fp16-res", type=int, default=0,
                    help="num_fp16_res for NVIDIA's nets: 0 = like their --fp32, 4 = their train.py default")
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
        for row in measure(impls, preset, args.batch, args.resolution, args.c_dim, args.warmup, args.repeat,
                           args.nvidia_fp16_res):
            row.update(threads=torch.get_num_threads(), device=args.device, torch=torch.__version__,
                       machine=platform.machine(), loadavg=[round(x, 2) for x in os.getloadavg()],
                       date=datetime.now(timezone.utc).strftime("%Y-%m-%d"))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
