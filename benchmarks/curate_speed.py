"""Curation throughput on cats-raw.zip: score + filter + crop/resize + report, one JSON line per run.

Usage: python benchmarks/curate_speed.py [--zip PATH] [--out DIR] [--workers 2] [--sizes 64 256]

The first size scores every image with every filter (the throughput that matters); later sizes
reuse the manifest's scores (scores do not depend on the target size) and only decide, crop,
resize and write, which is also timed. Other jobs sharing the CPU change the wall-clock numbers,
so each line records the load average before and after, and the worker processes' CPU time per
image (which does not depend on the load) with the rate it implies on otherwise idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from pathlib import Path

from gantl.data.curate import CurateConfig, curate


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zip", default=str(root.parent / "shared" / "datasets" / "cats-raw.zip"))
    ap.add_argument("--out", default="/tmp/gantl-curate-bench")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--fresh", action="store_true", help="Delete earlier outputs first (re-score everything).")
    args = ap.parse_args()
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "cats-manifest.csv"
    for size in args.sizes:
        cfg = CurateConfig(size=size, workers=args.workers)
        load_before = os.getloadavg()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = curate(args.zip, cfg, manifest=manifest, out=out / f"cats{size}.zip",
                     report=out / f"cats{size}-report.html", progress=True)
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        score_s = res.timings.get("score_s", 0.0)
        print(json.dumps({
            "benchmark": "curate_speed", "size": size, "workers": args.workers, "images": res.counts["total"],
            "scored": res.scored, "score_s": round(score_s, 1),
            "img_per_s_scoring": round(res.scored / score_s, 2) if res.scored else None,
            # load-independent: worker CPU seconds per image, and the rate 2 idle cores would give
            "worker_cpu_ms_per_img": round(1000 * worker_cpu / res.scored, 1) if res.scored else None,
            "img_per_s_if_cores_idle": round(args.workers * res.scored / worker_cpu, 2) if res.scored else None,
            "prepare_s": round(res.timings.get("prepare_s", 0.0), 1),
            "report_s": round(res.timings.get("report_s", 0.0), 1), "wall_s": round(wall, 1),
            "img_per_s_end_to_end": round(res.counts["total"] / wall, 2), "counts": res.counts,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        }), flush=True)


if __name__ == "__main__":
    main()
