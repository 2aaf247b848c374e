"""Transfer recipes for the demo: FID/KID on 500 CIFAR-10 horses per recipe, same budget and seed.

Each recipe trains on the demo's data (500 seeded training horses, curated exactly as ``gantl demo``
does) for ``--kimg`` from ``--source`` (or from scratch for ``scratch``) and scores the final G_ema
with ``--num-gen`` samples against all 5,000 CIFAR-10 training horses — the demo's protocol, whose
real features ship with gantl. One JSON line per recipe: FID, KID, training wall seconds, img/s.

A recipe is ``NAME=key=value;key=value...`` with ``gantl train`` option keys and JSON or plain
values, e.g. ``--recipe "ft25-fd2-ada=methods=[\\"finetune:0.25\\",\\"freezed:2\\"];aug=ada"``;
a ``scratch`` item (``NAME=scratch;aug=ada``) trains the source's architecture from random initialisation.

Usage: .venv/bin/python benchmarks/demo_recipes.py --source cifar9-stylegan2-32 --kimg 10 \\
       --recipe ... [--threads 1] [--num-gen 500] [--out recipes.jsonl] [--work /tmp/demo-recipes]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from gantl.demo import DemoConfig, curate_horses, find_cifar10, sample_horses, snapshots


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, spec = text.partition("=")
    opts: dict = {}
    for item in spec.split(";"):
        if item.strip() == "scratch":
            opts["scratch"] = True
            continue
        key, _, value = item.partition("=")
        try:
            opts[key.strip()] = json.loads(value)
        except ValueError:
            opts[key.strip()] = value.strip()
    return name, opts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="cifar9-stylegan2-32")
    ap.add_argument("--kimg", type=float, default=10.0)
    ap.add_argument("--recipe", action="append", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--num-gen", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/demo-recipes")
    ap.add_argument("--out", default=None)
    ap.add_argument("--metrics", default="fid,kid", help="comma-separated, e.g. fid,kid,pr,dc")
    ap.add_argument("--curve", type=int, default=1,
                    help="snapshots per run to score (evenly spaced; 1 = the final one only): FID-vs-kimg rows")
    args = ap.parse_args()

    from gantl.data.dataset import ImageDataset
    from gantl.metrics.api import evaluate
    from gantl.training.loop import train
    from gantl.training.options import TrainOptions
    from gantl.transfer.source import source_training_choices

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    zip_path, prefix = find_cifar10(None)
    data = work / "horses32.zip"
    if not data.is_file():
        raw = work / "horses-raw"
        sample_horses(zip_path, prefix, DemoConfig().num_images, args.seed, raw)
        data, _, _ = curate_horses(raw, work, 32, progress=False)
    reals = ImageDataset(f"{zip_path}:{prefix}", use_labels=False, progress=False)
    choices = source_training_choices(args.source)
    for name, extra in (parse_recipe(r) for r in args.recipe):
        scratch = extra.pop("scratch", False)
        base = dict(data=str(data), model=choices.get("model", "stylegan2"), cfg=choices.get("cfg", "cpu-tiny"),
                    kimg=args.kimg, tick_kimg=max(args.kimg / 4, 0.1), snap_kimg=args.kimg / max(args.curve, 1),
                    seed=args.seed, resume=None if scratch else args.source,
                    outdir=str(work / "runs"), desc=name,
                    tensorboard=False, progress=False, threads=args.threads)
        base.update(extra)
        t0 = time.perf_counter()
        run = train(TrainOptions(**base))
        wall = time.perf_counter() - t0
        assert run is not None
        for kimg, snap in snapshots(run)[-max(args.curve, 1):]:
            res = evaluate(reals, snap, args.metrics.split(","), num_gen=args.num_gen, seed=args.seed,
                           progress=False, options={"kid_subset_size": min(500, args.num_gen)})
            row = {"bench": "demo_recipes", "recipe": name, "options": extra, "scratch": scratch,
                   "source": None if scratch else args.source, "kimg": kimg, "train_wall_s": round(wall, 1),
                   "img_per_sec": round(args.kimg * 1000 / wall, 1),
                   **{k: round(float(v), 4) for k, v in res.items()},
                   "num_gen": args.num_gen, "num_real": len(reals), "threads": args.threads, "run": str(run),
                   "loadavg_1min": os.getloadavg()[0], "machine": platform.machine(),
                   "date": time.strftime("%Y-%m-%d")}
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
    print(f"# runs in {work / 'runs'}", file=sys.stderr)


if __name__ == "__main__":
    main()
