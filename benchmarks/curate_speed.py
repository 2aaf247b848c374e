"""Curation throughput on cats-raw.zip: per-stage CPU, scoring, then dataset builds; one JSON line each.

Usage: python benchmarks/curate_speed.py [--zip PATH] [--out DIR] [--workers 2] [--sizes 64 256]
                                         [--stages 300] [--skip-build]

1. ``stages``: CPU milliseconds per image of each scoring stage (decode, the shared working
   copy, each filter, the pHash pair) on an evenly spaced sample of ``--stages`` images, in this
   process with one thread. ``time.process_time`` counts only this process's CPU, so the
   numbers barely move when other jobs share the machine; they say where the time goes.
2. ``score``: ``gantl data build``'s scoring pass over every image with ``--workers`` processes
   and a fresh manifest. Wall-clock img/s depends on what else runs, so the line also has the
   CPU time of the workers and of the parent per image and the rate two otherwise idle cores
   would give: ``cores / (CPU seconds per image)``.
3. ``build``: one line per ``--sizes`` entry: decide (re-using the manifest's scores, which do
   not depend on the size), crop, resize, write the zip and the report, with counts per reason.

Each line records the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
import zipfile
from pathlib import Path

from gantl.data.curate import CurateConfig, curate


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def stage_times(zip_path: str, n: int) -> dict:
    """CPU ms per image of each scoring stage, in this process (one thread)."""
    import cv2

    from gantl.data.filters import FiltersConfig, Scorer
    from gantl.data.filters.base import working_copy

    try:
        from gantl.data.filters import Views
    except ImportError:  # gantl before shared views: filters take the image itself (for before/after runs)
        def Views(image):  # noqa: N802
            return image
    from gantl.data.filters.duplicate import phash_pair
    from gantl.data.filters.fmt import FormatError, decode

    cv2.setNumThreads(1)
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(m for m in zf.namelist() if not m.endswith("/"))
        step = max(1, len(names) // n)
        datas = [zf.read(m) for m in names[::step][:n]]
    scorer = Scorer(FiltersConfig(), 64)
    scorer.score_bytes(datas[0])  # warm-up: first-call allocations are not per-image cost
    clock = time.process_time
    t = {k: 0.0 for k in ("decode", "working_copy", *scorer.filters, "phash")}
    load0, t0 = _load(), clock()
    for data in datas:
        a = clock()
        try:
            dec = decode(data, scorer.cfg.format, need_long=scorer.need_long)
        except FormatError:
            continue
        b = clock()
        views = Views(working_copy(dec.image, scorer.need_long))
        c = clock()
        t["decode"] += b - a
        t["working_copy"] += c - b
        for name, flt in scorer.filters.items():
            a = clock()
            flt.score(views)
            t[name] += clock() - a
        a = clock()
        phash_pair(views)
        t["phash"] += clock() - a
    total = clock() - t0
    return {"phase": "stages", "images": len(datas), "cpu_ms_per_img": {k: round(1000 * v / len(datas), 1)
                                                                          for k, v in t.items()},
            "cpu_ms_per_img_total": round(1000 * total / len(datas), 1), "loadavg_before": load0,
            "loadavg_after": _load()}


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zip", default=str(root.parent / "shared" / "datasets" / "cats-raw.zip"))
    ap.add_argument("--out", default="/tmp/gantl-curate-bench")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 256])
    ap.add_argument("--stages", type=int, default=300, help="Images for the per-stage profile (0 = skip it).")
    ap.add_argument("--skip-build", action="store_true", help="Only profile and score; write no dataset.")
    args = ap.parse_args()
    base = {"benchmark": "curate_speed", "workers": args.workers, "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine()}
    if args.stages:
        print(json.dumps({**base, **stage_times(args.zip, args.stages)}), flush=True)

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = out / "cats-manifest.csv"

    load0 = _load()
    child0, self0, t0 = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF), time.perf_counter()
    res = curate(args.zip, CurateConfig(size=args.sizes[0] if args.sizes else 64, workers=args.workers),
                 manifest=manifest, progress=True)
    wall = time.perf_counter() - t0
    workers_cpu = _cpu(resource.RUSAGE_CHILDREN) - child0
    parent_cpu = _cpu(resource.RUSAGE_SELF) - self0
    n = res.scored
    print(json.dumps({
        **base, "phase": "score", "images": res.counts["total"], "scored": n, "wall_s": round(wall, 1),
        "img_per_s": round(n / wall, 2),
        "workers_cpu_ms_per_img": round(1000 * workers_cpu / n, 1),
        "parent_cpu_ms_per_img": round(1000 * parent_cpu / n, 1),
        # load-independent: what the same CPU work takes on otherwise idle cores
        "img_per_s_if_cores_idle": round(min(args.workers, os.cpu_count() or 1) * n / (workers_cpu + parent_cpu), 2),
        "loadavg_before": load0, "loadavg_after": _load(),
    }), flush=True)

    if args.skip_build:
        return
    for size in args.sizes:
        cfg = CurateConfig(size=size, workers=args.workers)
        load0 = _load()
        t0 = time.perf_counter()
        res = curate(args.zip, cfg, manifest=manifest, out=out / f"cats{size}.zip",
                     report=out / f"cats{size}-report.html", progress=True)
        print(json.dumps({
            **base, "phase": "build", "size": size, "scored": res.scored,
            "prepare_s": round(res.timings.get("prepare_s", 0.0), 1),
            "report_s": round(res.timings.get("report_s", 0.0), 1), "wall_s": round(time.perf_counter() - t0, 1),
            "counts": res.counts, "loadavg_before": load0, "loadavg_after": _load(),
        }), flush=True)


if __name__ == "__main__":
    main()
