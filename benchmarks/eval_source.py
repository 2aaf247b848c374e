"""FID/KID of CIFAR-9 sources on the published protocol: generated images vs CIFAR-10 *test* without horses.

Usage: python benchmarks/eval_source.py SNAPSHOT [SNAPSHOT ...] [--num-gen 10000] [--num-real 9000]
       [--threads 1] [--data ../shared/datasets/cifar10.zip:test]

The published CIFAR-10 curves (PyTorch-StudioGAN) use 10,000 generated vs the 10,000 test images;
the zoo's sources never saw a horse, so their real set is the 9,000 test images of the other nine
classes. ``gantl eval --real`` takes a whole dataset, hence this script: it builds the 9-class test
set with labels (a conditional source then draws its classes from the test labels, i.e. balanced)
and prints one JSON line per snapshot. Real features are cached, so only the first call pays them.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gantl.data.dataset import ImageDataset
from gantl.metrics.api import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots", nargs="+")
    ap.add_argument("--data", default="../shared/datasets/cifar10.zip:test")
    ap.add_argument("--exclude-class", action="append", default=None, help="default: horse")
    ap.add_argument("--num-gen", type=int, default=10_000)
    ap.add_argument("--num-real", type=int, default=None, help="default: all (9,000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    exclude = args.exclude_class or ["horse"]
    test = ImageDataset(args.data, use_labels=True, exclude_classes=exclude, progress=False)
    for path in args.snapshots:
        start = time.time()
        res = evaluate(test, path, ["fid", "kid"], num_gen=args.num_gen, num_real=args.num_real, seed=args.seed,
                       progress=False)
        print(json.dumps({"snapshot": path, "num_gen": args.num_gen, "num_real": args.num_real or len(test),
                          "real": f"{args.data} without {','.join(exclude)}", "fid": round(res["fid"], 2),
                          "kid": round(res["kid"], 4), "eval_s": round(time.time() - start, 1),
                          "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
