"""Time to quality: FID reached per CPU second, for each candidate architecture + recipe.

Each candidate trains **from scratch** on CIFAR-10 train minus horse (45,000 images, 9 classes)
for a fixed wall-clock budget on ``--threads`` threads. At fixed kimg points (and at the end of the
budget) a copy of G_ema is kept; after training — outside the timed budget — each copy is scored
by FID and KID (``--num-gen`` generated images vs ``--num-real`` seeded CIFAR-10 *test* images of
the same 9 classes; their Inception features are cached by content after the first run).
One JSON line per (candidate, point): wall seconds of training, kimg, img/s, FID, KID, plus the
machine's load; a PNG plot of FID vs wall seconds goes to ``--plot``.

A candidate is ``NAME=MODEL:CFG[;key=value...]`` (``--candidate``, repeatable) with any
``gantl train`` option as key and a JSON or plain value, e.g.
``--candidate "resnet-tiny-ttur=resnet:resnet-tiny;dlr=0.0004;g_betas=[0,0.99]"``.
FIDs from a few hundred samples are biased upward (far more than between candidates), so
compare rows of one run of this script, not with the 10k-sample numbers of the model cards.

Usage: .venv/bin/python benchmarks/time_to_quality.py [--budget-s 600] [--threads 1]
       [--candidate cpu-tiny=stylegan2:cpu-tiny --candidate resnet-tiny=resnet:resnet-tiny ...]
       [--points 2.5,5,10,20,40,80] [--num-gen 500] [--num-real 2000] [--out ttq.jsonl] [--plot ttq.png]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

CIFAR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10.zip"
DEFAULT_CANDIDATES = ("cpu-tiny=stylegan2:cpu-tiny", "resnet-tiny=resnet:resnet-tiny", "dcgan-small=dcgan:dcgan-small")


def parse_candidate(text: str) -> tuple[str, dict]:
    """``NAME=MODEL:CFG,key=value,...`` -> (name, option dict)."""
    name, _, spec = text.partition("=")
    head, *extra = spec.split(";")
    model, _, cfg = head.partition(":")
    opts: dict = {"model": model, "cfg": cfg}
    for item in extra:
        key, _, value = item.partition("=")
        opts[key] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    return name, opts


def train_for(name: str, extra: dict, dataset, budget_s: float, points: list[float], threads: int,
              seed: int) -> list[dict]:
    """Train one candidate for ``budget_s`` seconds; G_ema copies at the kimg points and at the end."""
    from gantl.config import from_dict
    from gantl.training.loop import Trainer, _TickStats
    from gantl.training.options import TrainOptions

    torch.set_num_threads(threads)
    opts = from_dict(TrainOptions, dict(kimg=1e6, seed=seed, progress=False, tensorboard=False, device="cpu",
                                        threads=threads, **extra))
    trainer = Trainer(opts, dataset=dataset)
    tick = _TickStats()
    kept: list[dict] = []
    pending = sorted(points)
    start = time.perf_counter()
    while True:
        trainer.step(tick)
        wall = time.perf_counter() - start
        kimg = trainer.cur_nimg / 1000
        at_point = bool(pending) and kimg >= pending[0]
        if at_point:
            while pending and kimg >= pending[0]:
                pending.pop(0)
        if at_point or wall >= budget_s:
            kept.append({"candidate": name, "kimg": round(kimg, 3), "train_wall_s": round(wall, 1),
                         "img_per_sec": round(trainer.cur_nimg / wall, 2), "G_ema": copy.deepcopy(trainer.G_ema)})
            print(f"# {name}: kept G_ema at {kimg:.2f} kimg, {wall:.0f} s", file=sys.stderr, flush=True)
        if wall >= budget_s:
            break
    kept[0]["G_params"] = sum(p.numel() for p in trainer.G.parameters())
    kept[0]["D_params"] = sum(p.numel() for p in trainer.D.parameters())
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidate", action="append", default=None, help="NAME=MODEL:CFG[;key=value...]")
    ap.add_argument("--budget-s", type=float, default=600.0)
    ap.add_argument("--points", default="2.5,5,10,20,40,80")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--num-gen", type=int, default=500)
    ap.add_argument("--num-real", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(CIFAR))
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    ap.add_argument("--plot", default=None, help="PNG: FID vs training wall seconds per candidate")
    args = ap.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 zip not found at {args.data}; pass --data PATH/cifar10.zip")

    from gantl.data.dataset import ImageDataset
    from gantl.metrics.api import evaluate_generator

    train = ImageDataset(f"{args.data}:train", use_labels=True, exclude_classes=["horse"], progress=False)
    test = ImageDataset(f"{args.data}:test", use_labels=True, exclude_classes=["horse"], progress=False)
    points = [float(p) for p in args.points.split(",") if p]
    candidates = [parse_candidate(c) for c in (args.candidate or DEFAULT_CANDIDATES)]
    rows: list[dict] = []
    for name, extra in candidates:
        kept = train_for(name, extra, train, args.budget_s, points, args.threads, args.seed)
        for row in kept:
            G = row.pop("G_ema")
            t0 = time.perf_counter()
            res = evaluate_generator(G, test, ["fid", "kid"], num_gen=args.num_gen, num_real=args.num_real,
                                     seed=args.seed, progress=False)
            row.update({"bench": "time_to_quality", "fid": round(res["fid"], 2), "kid": round(res["kid"], 4),
                        "num_gen": args.num_gen, "num_real": args.num_real, "real": "cifar10 test minus horse",
                        "options": extra, "budget_s": args.budget_s, "threads": args.threads,
                        "eval_s": round(time.perf_counter() - t0, 1), "loadavg_1min": os.getloadavg()[0],
                        "machine": platform.machine(), "torch": torch.__version__,
                        "date": time.strftime("%Y-%m-%d")})
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            rows.append(row)
    if args.plot:
        plot(rows, Path(args.plot))


def plot(rows: list[dict], path: Path) -> None:
    """FID vs training wall seconds, one line per candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["candidate"] for r in rows):
        pts = [(r["train_wall_s"], r["fid"]) for r in rows if r["candidate"] == name]
        ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    ax.set_xlabel("training wall seconds")
    ax.set_ylabel(f"FID ({rows[0]['num_gen']} gen vs {rows[0]['num_real']} test)")
    ax.set_title("CIFAR-10 minus horse, from scratch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
