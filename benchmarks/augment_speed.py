"""Throughput of the augmentation pipes on CPU: forward + backward, one JSON line per measurement.

Usage: ``python benchmarks/augment_speed.py [--threads 1] [--resolution 32] [--batch 32] [--repeats 10]
[--reference /path/to/stylegan2-ada-pytorch]``

With ``--reference``, NVIDIA's own ``AugmentPipe`` (its custom ops fall back to their reference code on
CPU) is timed on the same inputs, interleaved with gantl's, so shared-CPU load affects both alike.

Measures ADA's ``bgc`` pipe (the paper's default) at p=1 (the worst case: every op on every image) and
p=0.6 (a typical tuned value), the ``blit``/``geom``/``color``/``bgcf`` parts, and DiffAugment; backward
is included because in training the gradient flows through the augmentation into G.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from gantl.augment import AugmentPipe, DiffAugment


def measure(fn, images: torch.Tensor, repeats: int, warmup: int = 2) -> float:
    """Median seconds per forward+backward pass."""
    times = []
    for i in range(warmup + repeats):
        x = images.clone().requires_grad_()
        start = time.perf_counter()
        y = fn(x)
        y.sum().backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--reference", default=None, help="stylegan2-ada-pytorch checkout to compare with")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.rand(args.batch, 3, args.resolution, args.resolution) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    cases = [
        ("ada_bgc", 1.0),
        ("ada_bgc", 0.6),
        ("ada_blit", 1.0),
        ("ada_geom", 1.0),
        ("ada_color", 1.0),
        ("ada_bgcf", 1.0),
        ("diffaugment", None),
    ]
    if args.reference:
        import sys
        import warnings

        from gantl.augment import AUGPIPE_PRESETS

        sys.path.insert(0, args.reference)
        warnings.filterwarnings("ignore")
        from training.augment import AugmentPipe as ReferencePipe  # type: ignore[import-not-found]

        def reference_pipe(preset: str, p: float):
            pipe = ReferencePipe(**AUGPIPE_PRESETS[preset])
            pipe.p.copy_(torch.tensor(p))
            return lambda x: pipe(x)

        cases = [(n, p) for n, p in cases if n.startswith("ada_")]
        cases = [c for n, p in cases for c in ((n, p), ("reference_" + n, p))]
    for name, p in cases:
        if name == "diffaugment":
            aug = DiffAugment("color,translation,cutout")
        elif name.startswith("reference_"):
            aug = reference_pipe(name.removeprefix("reference_ada_"), p)
        else:
            aug = AugmentPipe.from_preset(name.removeprefix("ada_"), p=p)
        if name.startswith("reference_"):
            seconds = measure(aug, images, args.repeats)
        else:
            seconds = measure(lambda x, aug=aug: aug(x, generator=gen), images, args.repeats)
        print(
            json.dumps(
                {
                    "benchmark": "augment_speed",
                    "pipe": name,
                    "p": p,
                    "resolution": args.resolution,
                    "batch": args.batch,
                    "threads": args.threads,
                    "pass": "forward+backward",
                    "seconds_per_batch": round(seconds, 5),
                    "img_per_s": round(args.batch / seconds, 1),
                    "device": "cpu",
                    "machine": platform.processor() or platform.machine(),
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                    "torch": torch.__version__,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
