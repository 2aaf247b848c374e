"""FID and KID between CIFAR-10 train/horse (5,000 images) and test/horse (1,000), with wall time.

Two real distributions of the same class: a sanity value for the metric and a timing for a full
evaluation. The first run is cold (a fresh cache dir, so the real features are computed and the
ONNX model converted); the second evaluates again with the real features from the cache.
Prints one JSON line per measurement.

Usage: .venv/bin/python benchmarks/fid_cifar_horse.py [--threads 2] [--backend auto] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "torchscript"])
    parser.add_argument("--cache", default=None, help="cache dir (default: a fresh temporary one)")
    parser.add_argument("--real", default=f"{CIFAR}:train/horse")
    parser.add_argument("--fake", default=f"{CIFAR}:test/horse")
    args = parser.parse_args()
    os.environ["GANTL_CACHE_DIR"] = args.cache or tempfile.mkdtemp(prefix="gantl-bench-")

    import torch

    torch.set_num_threads(args.threads)
    from gantl.metrics.api import evaluate

    for run in ("cold", "warm"):
        load = os.getloadavg()[0]
        start = time.perf_counter()
        results = evaluate(args.real, args.fake, ["fid", "kid"], backend=args.backend, progress=False)
        wall = time.perf_counter() - start
        print(json.dumps({"benchmark": "fid_cifar_horse", "run": run, "real": "cifar10 train/horse (5000)",
                          "fake": "cifar10 test/horse (1000)", **results, "wall_s": round(wall, 1),
                          "threads": args.threads, "backend": args.backend, "load_avg_1min": round(load, 2),
                          "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
