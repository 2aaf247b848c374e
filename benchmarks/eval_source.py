"""FID/KID of CIFAR-9 sources on the published protocol: generated images vs CIFAR-10 *test* without horses.

Usage: python benchmarks/eval_source.py SNAPSHOT [SNAPSHOT ...] [--num-gen 10000] [--num-real 9000]
       [--threads 1] [--data ../shared/datasets/cifar10.zip:test]

The published CIFAR-10 curves (PyTorch-StudioGAN) use 10,000 generated vs the 10,000 test images;
the zoo's sources never saw a horse, so their real set is the 9,000 test images of the other nine
classes. ``gantl eval --real`` takes a whole dataset, hence this script: it builds the 9-class test
set with labels (a conditional source then draws its classes from the test labels, i.e. balanced)
and prints one JSON line per snapshot. Real features are cached, so only the first call pays them.

``--intra N`` adds, for a class-conditional snapshot, **intra-class FID**: N samples of each class
against the 1,000 test images of that class, and their mean (the conditional-GAN measure of
Miyato & Koyama 2018). It shows whether the classes are actually generated: a network whose
label barely matters scores a good overall FID but a poor intra-FID.
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
    ap.add_argument("--num-gen", type=int, default=10_000, help="0: skip the overall FID (with --intra)")
    ap.add_argument("--num-real", type=int, default=None, help="default: all (9,000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--intra", type=int, default=0, help="samples per class for intra-class FID (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    exclude = args.exclude_class or ["horse"]
    test = ImageDataset(args.data, use_labels=True, exclude_classes=exclude, progress=False)
    for path in args.snapshots:
        start = time.time()
        if args.num_gen <= 0:  # intra-class FID only
            if args.intra:
                print(json.dumps({"snapshot": path, **intra_fid(test, path, args.intra, args.seed)}), flush=True)
            continue
        res = evaluate(test, path, ["fid", "kid"], num_gen=args.num_gen, num_real=args.num_real, seed=args.seed,
                       progress=False)
        print(json.dumps({"snapshot": path, "num_gen": args.num_gen, "num_real": args.num_real or len(test),
                          "real": f"{args.data} without {','.join(exclude)}", "fid": round(res["fid"], 2),
                          "kid": round(res["kid"], 4), "eval_s": round(time.time() - start, 1),
                          "threads": args.threads}), flush=True)
        if args.intra:
            print(json.dumps({"snapshot": path, **intra_fid(test, path, args.intra, args.seed)}), flush=True)


def intra_fid(test: ImageDataset, path: str, num_per_class: int, seed: int) -> dict:
    """Per-class FID of a conditional generator against the real images of each class, and the mean."""
    import numpy as np

    from gantl.metrics import features as feat
    from gantl.metrics.api import FID_EXTRACTOR, generator_batches, load_generator, real_features
    from gantl.metrics.fid import fid_from_features

    G = load_generator(path)
    if not getattr(G, "c_dim", 0):
        return {"intra_fid": None, "why": "unconditional generator"}
    extractor = feat.get_extractor(FID_EXTRACTOR, mode="legacy_tensorflow", backend="auto")
    real, indices = real_features(test, {"fid": extractor}, None, seed=seed, progress=False)
    (key,) = [k for k in real["fid"] if real["fid"][k].ndim == 2][:1]
    classes = np.asarray(test.labels)[indices].argmax(1)
    per_class = {}
    start = time.time()
    for k in range(G.c_dim):
        pool = np.eye(G.c_dim, dtype=np.float32)[k:k + 1]
        fake, _ = feat.extract({"fid": extractor}, generator_batches(G, num_per_class, seed=seed + k, label_pool=pool),
                               total=num_per_class, progress=False)
        name = test.class_names[k] if test.class_names else str(k)
        per_class[name] = round(fid_from_features(real["fid"][key][classes == k], fake["fid"][key]), 2)
    return {"intra_fid": round(float(np.mean(list(per_class.values()))), 2), "per_class": per_class,
            "num_gen_per_class": num_per_class, "intra_s": round(time.time() - start, 1)}


if __name__ == "__main__":
    main()
