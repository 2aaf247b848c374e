"""`gantl demo`: the whole promise on one laptop-sized example, measured.

500 CIFAR-10 horses are curated, then two runs of the source's architecture get the same
budget: one from scratch, one transferred from gantl's bundled source (trained on CIFAR-10
*without* horses, so nothing about the test class leaks in), both with ADA. Both are measured
with FID and KID against all 5,000 CIFAR-10 training horses, and the run report shows
the table, the metric-vs-kimg curves and the image grids.

Why these choices:

* **Same budget, same augmentation, same evaluation.** The only difference between the
  two runs is the starting point (and the transfer recipe's learning rate), so a
  difference in FID/KID is the transfer's doing.
* **The transfer recipe is the measured best**, not a guess: ``benchmarks/demo_recipes.py``
  compared fine-tuning at 1/4 of the learning rate, FreezeD 2, both, and DiffAugment
  instead of ADA on these 500 horses at equal budget (BENCHMARKS.md, "Demo recipes").
* **Evaluate against 5,000 horses, not the 500 trained on.** Scoring against the
  training images rewards memorising them; the full class measures the distribution.
* **Fits 15 minutes on 2 cores.** The Inception pass over the 5,000 real images would be
  the most expensive step (~17 minutes); gantl ships those features, found by the images'
  content hash (so only byte-identical images use them), and caches whatever it computes.
  The generated-sample counts below were chosen from measured speeds.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import tarfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gantl.errors import DatasetError, GantlError

log = logging.getLogger("gantl")

CIFAR10_BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_BINARY_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # published on the CIFAR-10 page
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
HORSE = CIFAR10_CLASSES.index("horse")


@dataclass
class DemoConfig:
    """Everything the demo does; the defaults are what ``make demo`` runs."""

    out: str = "demo-output"
    # Zoo name (or checkpoint path) to transfer from. The class-conditional source's deer class beat
    # the unconditional source on these horses at equal budget (BENCHMARKS.md, "Demo recipes"):
    # FID 96.6 vs 116.8 after 36 kimg. ``--source-class auto`` picks deer too (FID 176 of its samples
    # to the horses vs 195 for the next class), but ranking nine classes costs ~2 minutes of the
    # budget, so the demo names the class; an unconditional source ignores source_class.
    source: str = "cifar9-stylegan2-32-cond"
    source_class: str | None = "deer"
    num_images: int = 500  # horses to curate and train on
    resolution: int = 32
    # Budget, from `make demo` measured on an idle 2-core machine (2026-12-03): the two runs train side
    # by side at ~88 img/s each (one thread each), so 30 kimg take ~6 minutes; scoring 700 generated
    # images per run ~65 s; curation ~10 s: 7 min 14 s in all. That leaves room under issue 15's
    # 15 minutes for a busier or slower machine (at the ~45 img/s of a loaded one it is ~13 min);
    # the transfer run's last 15 kimg bought 3.8 FID (94.6 -> 90.8), so more would buy little.
    budget_kimg: float = 30.0  # per run, identical for scratch and transfer
    # The transfer recipe measured best on these horses (benchmarks/demo_recipes.py, BENCHMARKS.md):
    # from the deer class, fine-tuning every layer at the source's own learning rate reached FID 90.8
    # at 30 kimg vs 96.6 at 36 kimg with a quarter of it; FreezeD did not help at this budget.
    transfer_methods: list[str] = field(default_factory=lambda: ["finetune"])
    ada_kimg: float = 20.0  # ADA adjustment speed (stylegan2-ada's 500 is for 25,000-kimg runs)
    ada_target: float = 0.6
    curve_points: int = 3  # snapshots per run evaluated for the metric-vs-kimg curves
    curve_num_gen: int = 100  # generated images per intermediate curve point
    final_num_gen: int = 500  # generated images for the final table
    # Real horses for the reference statistics: None = all 5,000. Their features ship with gantl
    # (gantl.metrics.bundled_stats, found by content hash), so this costs nothing for the CIFAR-10
    # copy in ../shared; another copy of CIFAR-10 computes them once (~6 min) and caches them.
    num_real: int | None = None
    seed: int = 0
    threads: int | None = None
    # None = on a machine with 2+ CPU cores the two runs train (and are scored) side by side, one
    # thread each: a cpu-tiny step is too small to keep two threads busy (measured 1 thread: ~70-90
    # img/s, 2 threads: ~120), so two one-thread runs finish both in about the time of one.
    parallel: bool | None = None
    cifar10: str | None = None  # explicit path to cifar10.zip (else ../shared/datasets, else download)
    progress: bool = True
    kid_subset_size: int = 500


@dataclass
class _Timeline:
    """Planned share of the total time per step, so every step can print an honest ETA."""

    weights: dict[str, float]
    start: float = field(default_factory=time.time)
    done: float = 0.0

    def begin(self, step: str) -> None:
        elapsed = time.time() - self.start
        total_w = sum(self.weights.values())
        # Weights are planned seconds; scale the rest by how fast the plan has gone so far, but
        # within [0.75, 4]: one quick early step (curation) must not promise a 10x faster run.
        pace = min(max(elapsed / self.done, 0.75), 4.0) if self.done > 0 else 1.0
        eta = "" if self.done <= 0 else f", about {_mmss(pace * (total_w - self.done))} left"
        index = list(self.weights).index(step) + 1
        print(f"[{index}/{len(self.weights)}] {step} (elapsed {_mmss(elapsed)}{eta})", flush=True)

    def end(self, step: str) -> None:
        self.done += self.weights[step]


def _mmss(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


# ----------------------------------------------------------------------------------- CIFAR-10


def project_root() -> Path:
    """The checkout this gantl runs from (src layout: ``<root>/src/gantl/demo.py``)."""
    return Path(__file__).resolve().parents[2]


def find_cifar10(explicit: str | None = None) -> tuple[Path, str]:
    """``(zip path, member prefix of the training horses)``: local copy first, else a cached download."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DatasetError(f"CIFAR-10 zip '{explicit}' does not exist; pass an existing cifar10.zip")
        return path, "train/horse"
    for base in (Path.cwd(), project_root()):
        candidate = (base / ".." / "shared" / "datasets" / "cifar10.zip").resolve()
        if candidate.is_file():
            return candidate, "train/horse"
    return download_cifar10_horses(), "train/horse"


def download_cifar10_horses(cache: Path | None = None) -> Path:
    """Download the official CIFAR-10 binary release once and keep its training horses as PNGs in a zip.

    The binary release (not the Python one) is used because it holds raw bytes — no pickle
    to unpickle. Cached in ``<gantl cache>/datasets/``; checked against the published MD5.
    """
    import numpy as np
    from PIL import Image

    from gantl.checkpoints.zoo import cache_dir

    root = (cache or cache_dir()) / "datasets"
    out = root / "cifar10-horses.zip"
    if out.is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    tgz = root / "cifar-10-binary.tar.gz"
    if not tgz.is_file():
        import requests

        print(f"CIFAR-10 not found locally; downloading {CIFAR10_BINARY_URL} (162 MB, once)", flush=True)
        try:
            with requests.get(CIFAR10_BINARY_URL, stream=True, timeout=30) as resp:
                resp.raise_for_status()
                part = tgz.with_suffix(".part")
                with open(part, "wb") as f:
                    for block in resp.iter_content(1 << 20):
                        f.write(block)
        except requests.RequestException as exc:
            raise DatasetError(
                f"CIFAR-10 is not at ../shared/datasets/cifar10.zip and downloading {CIFAR10_BINARY_URL} failed "
                f"({type(exc).__name__}); connect to the internet or pass --cifar10 PATH/TO/cifar10.zip"
            ) from None
        md5 = hashlib.md5(part.read_bytes()).hexdigest()
        if md5 != CIFAR10_BINARY_MD5:
            part.unlink(missing_ok=True)
            raise DatasetError(f"the CIFAR-10 download has MD5 {md5}, expected {CIFAR10_BINARY_MD5}; run again")
        os.replace(part, tgz)
    tmp = out.with_suffix(".part")
    count = 0
    with tarfile.open(tgz, "r:gz") as tar, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
        for i in range(1, 6):
            member = tar.extractfile(f"cifar-10-batches-bin/data_batch_{i}.bin")
            if member is None:
                raise DatasetError(f"{tgz} lacks data_batch_{i}.bin; delete it and run again")
            records = np.frombuffer(member.read(), dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
            for rec in records[records[:, 0] == HORSE]:
                img = rec[1:].reshape(3, 32, 32).transpose(1, 2, 0)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG")
                zout.writestr(f"train/horse/{count:04d}.png", buf.getvalue())
                count += 1
    os.replace(tmp, out)
    return out


def sample_horses(zip_path: Path, prefix: str, n: int, seed: int, dest: Path) -> list[str]:
    """Copy ``n`` seeded-random training horses (original bytes) into ``dest`` for curation."""
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(m for m in z.namelist() if m.startswith(prefix.rstrip("/") + "/") and not m.endswith("/"))
        if len(names) < n:
            raise DatasetError(f"{zip_path}:{prefix} has {len(names)} images, the demo needs {n}")
        chosen = sorted(random.Random(seed).sample(names, n))
        dest.mkdir(parents=True, exist_ok=True)
        wanted = {Path(name).name for name in chosen}
        for old in dest.iterdir():  # a previous demo with another seed/count
            if old.name not in wanted:
                old.unlink()
        for name in chosen:
            target, data = dest / Path(name).name, z.read(name)
            # Unchanged files keep their mtime, so the curation manifest's cached scores stay valid.
            if not target.is_file() or target.read_bytes() != data:
                target.write_bytes(data)
    return chosen


# ----------------------------------------------------------------------------------- steps


def curate_horses(raw: Path, work: Path, resolution: int, progress: bool) -> tuple[Path, dict[str, int], Path | None]:
    """Run gantl's curation pipeline on the sampled horses; returns (dataset zip, reason counts, report)."""
    from gantl.config import apply_overrides
    from gantl.data.curate import CurateConfig, curate

    # CIFAR images are 32 px thumbnails. The sharpness filter judges images upscaled to its work
    # size (512 px), where every 32 px thumbnail scores ~2 against a threshold of 60 (measured on these
    # 500 horses: 1.6 to 2.3), so it cannot tell sharp from blurred here and is switched off. Format,
    # resolution, grayscale, text, face and duplicate filters run with their defaults.
    cfg = apply_overrides(CurateConfig(), [f"size={resolution}", "filters.blur.enabled=false"])
    result = curate(str(raw), cfg, manifest=work / "horses-manifest.csv", out=work / f"horses{resolution}.zip",
                    report=work / "curation-report.html", progress=progress)
    if result.output is None:  # pragma: no cover - curate raises when nothing is kept
        raise DatasetError("curation kept no images")
    return result.output, dict(result.counts), result.report


def train_run(cfg: DemoConfig, data: Path, runs: Path, name: str, resume: str | None,
              methods: list[str]) -> Path:
    """One training run of the demo budget; snapshots at ``curve_points`` evenly spaced kimg."""
    from gantl.training.loop import train
    from gantl.training.options import TrainOptions

    # Both runs train the source's architecture and preset, so the only difference is the start.
    choices = _source_choices(cfg.source)
    opts = TrainOptions(
        data=str(data), model=choices.get("model", "stylegan2"), cfg=choices.get("cfg", "cpu-tiny"),
        kimg=cfg.budget_kimg,
        tick_kimg=max(cfg.budget_kimg / (cfg.curve_points * 2), 0.032),
        snap_kimg=cfg.budget_kimg / cfg.curve_points, seed=cfg.seed, aug="ada", ada_kimg=cfg.ada_kimg,
        ada_target=cfg.ada_target, methods=methods, resume=resume, outdir=str(runs), desc=name,
        tensorboard=False, progress=cfg.progress, threads=cfg.threads,
        source_class=cfg.source_class if resume else None,
    )
    run_dir = train(opts)
    assert run_dir is not None
    return run_dir


def train_and_score(cfg: DemoConfig, data: Path, runs: Path, label: str, resume: str | None, methods: list[str],
                    real_images: str, num_real: int) -> tuple[Path, dict[str, float]]:
    """Train one demo run, then score its snapshots (curve points and the final one) against the reals."""
    from gantl.data.dataset import ImageDataset

    run_dir = train_run(cfg, data, runs, label, resume, methods)
    reals = ImageDataset(real_images, use_labels=False, progress=False)
    return run_dir, _score_run(cfg, run_dir, label, reals, num_real)


def _worker(*args: Any) -> tuple[Path, dict[str, float]]:
    """Process entry of a side-by-side run: one thread, so two runs share two cores without contention."""
    import torch

    torch.set_num_threads(1)
    return train_and_score(*args)


def run_both(cfg: DemoConfig, data: Path, runs: Path, real_images: str, num_real: int
             ) -> dict[str, tuple[Path, dict[str, float]]]:
    """Scratch and transfer, trained and scored side by side in two processes (one core each)."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
    from dataclasses import replace

    side = replace(cfg, threads=1, progress=False)
    jobs = {"scratch": (None, []), "transfer": (cfg.source, list(cfg.transfer_methods))}
    done_at: dict[str, float] = {}
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {label: pool.submit(_worker, side, data, runs, label, resume, methods, real_images, num_real)
                   for label, (resume, methods) in jobs.items()}
        while True:
            finished, pending = wait(futures.values(), timeout=30, return_when=FIRST_EXCEPTION)
            for f in finished:
                if f.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise f.exception()  # type: ignore[misc]
            for label, f in futures.items():
                if f in finished and label not in done_at:
                    done_at[label] = time.time() - t0
            if not pending:
                break
            print("    " + "; ".join(f"{label}: {_progress(runs, label, cfg.budget_kimg)}" for label in futures)
                  + f" ({_mmss(time.time() - t0)})", flush=True)
    return {label: f.result() for label, f in futures.items()}


def _progress(runs: Path, label: str, budget_kimg: float) -> str:
    """Where a side-by-side run is, read from its log.txt (training ticks, then scoring)."""
    logs = sorted(runs.glob(f"*-{label}/log.txt"))
    if not logs:
        return "starting"
    text = logs[-1].read_text(encoding="utf-8", errors="replace")
    kimg = 0.0
    for line in text.splitlines():
        if " tick " in line and " kimg " in line:
            try:
                kimg = float(line.split(" kimg ", 1)[1].split()[0])
            except (IndexError, ValueError):
                continue
    if (logs[-1].parent / "metrics.jsonl").is_file() or kimg >= budget_kimg:
        return f"{kimg:g}/{budget_kimg:g} kimg, scoring"
    return f"{kimg:g}/{budget_kimg:g} kimg"


def _source_class_used(cfg: DemoConfig) -> str | None:
    """The source class the transfer starts from: ``cfg.source_class`` if the source is conditional."""
    from gantl.checkpoints.format import read_header
    from gantl.transfer.source import resolve_source

    if not cfg.source_class:
        return None
    meta, _ = read_header(resolve_source(cfg.source))
    c_dim = ((meta or {}).get("networks", {}).get("G", {}).get("config") or {}).get("c_dim")
    return cfg.source_class if c_dim else None


def _class_note(cfg: DemoConfig, used: str | None = None) -> str:
    """", class deer" when the transfer starts from one class of a class-conditional source.

    ``used``: the result of :func:`_source_class_used` when the caller has it (saves a header read).
    """
    used = used if used is not None else _source_class_used(cfg)
    return f", class {used}" if used else ""


def _source_choices(source: str) -> dict[str, str]:
    """The model and preset the source was trained with (what both demo runs train)."""
    from gantl.transfer.source import source_training_choices

    return source_training_choices(source)


def snapshots(run_dir: Path) -> list[tuple[float, Path]]:
    """(kimg, path) of every snapshot in a run dir, in order."""
    from gantl.training.loop import SNAPSHOT_PREFIX

    out = []
    for p in run_dir.glob(f"{SNAPSHOT_PREFIX}*.safetensors"):
        tag = p.name[len(SNAPSHOT_PREFIX):-len(".safetensors")]
        out.append((float(tag), p))
    return sorted(out)


# Measured on the 2-core machine (BENCHMARKS.md): Inception features and cpu-tiny training, img/s.
_INCEPTION_IMG_S = 15.0  # 2 threads, or the sum of two one-thread processes (2026-12-03: 1,400 in 65 s)
_TRAIN_IMG_S = 90.0
_SIDE_BY_SIDE_IMG_S = 80.0  # each of two one-thread runs sharing the two cores (2026-12-03: ~88 idle)


def planned_seconds(cfg: DemoConfig) -> dict[str, float]:
    """Expected seconds per step on 2 idle cores, from measured speeds; only used for the ETAs."""
    generated = 2 * ((cfg.curve_points - 1) * cfg.curve_num_gen + cfg.final_num_gen)
    train = cfg.budget_kimg * 1000 / _TRAIN_IMG_S + 10  # + start-up and snapshots
    if use_parallel(cfg):  # one core per run: half the Inception speed each, both at once
        both = cfg.budget_kimg * 1000 / _SIDE_BY_SIDE_IMG_S + 10 + generated / _INCEPTION_IMG_S
        return {"find and sample CIFAR-10 horses": 5, "curate": 40, "real-image statistics": 5,
                "train and score both runs side by side": both, "write the report": 5}
    return {"find and sample CIFAR-10 horses": 5, "curate": 40, "real-image statistics": 5,
            "train from scratch": train, "train by transfer": train,
            "evaluate": generated / _INCEPTION_IMG_S, "write the report": 5}


def use_parallel(cfg: DemoConfig) -> bool:
    """Side by side unless told otherwise or the machine has a single core (or a thread count was set)."""
    if cfg.parallel is not None:
        return cfg.parallel
    return (os.cpu_count() or 1) >= 2 and cfg.threads is None


def real_statistics_source(reals: Any, extractor: Any, num_real: int, seed: int) -> str:
    """Where the real-image features will come from, said before the (possibly long) step starts."""
    from gantl.metrics import bundled_stats, stats_cache
    from gantl.metrics.api import real_features_key

    key = real_features_key(reals, extractor, num_real, seed)
    if stats_cache.entry_path(key).is_file():
        return f"features of {num_real} real horses: from the cache ({stats_cache.entry_path(key).parent})"
    if bundled_stats.entry_path(key).is_file():
        return (f"features of {num_real} real horses: bundled with gantl for these exact image bytes "
                f"(content sha256 {reals.content_hash()[:12]}…)")
    minutes = num_real / _INCEPTION_IMG_S / 60.0
    return (f"features of {num_real} real horses: computing them now (about {minutes:.0f} min on 2 CPU cores; "
            f"cached for later runs)")


def evaluate_snapshot(path: Path, reals: Any, num_gen: int, cfg: DemoConfig, label: str) -> dict[str, float]:
    """FID and KID of a snapshot's G_ema against the real horses."""
    from gantl.metrics.api import evaluate

    print(f"    {label}: {num_gen} samples", flush=True)
    return evaluate(reals, path, ["fid", "kid"], num_gen=num_gen, num_real=cfg.num_real, seed=cfg.seed,
                    progress=cfg.progress,
                    options={"kid_subset_size": min(cfg.kid_subset_size, num_gen)})


def record_curve(run_dir: Path, kimg: float, snapshot: Path, results: dict[str, float], num_gen: int,
                 num_real: int) -> None:
    """Append an evaluation to the run's metrics.jsonl in the training loop's line format."""
    line = {"kimg": kimg, "snapshot": snapshot.name, "results": results, "num_gen": num_gen, "num_real": num_real,
            "against": f"{num_real} CIFAR-10 training horses"}
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def _score_run(cfg: DemoConfig, run_dir: Path, label: str, reals: Any, num_real: int) -> dict[str, float]:
    """Score a finished run's snapshots in this process (the one-core path)."""
    snaps = snapshots(run_dir)
    if not snaps:
        raise GantlError(f"the {label} run wrote no snapshot; see {run_dir / 'log.txt'}")
    for kimg, snap in snaps[:-1]:
        res = evaluate_snapshot(snap, reals, cfg.curve_num_gen, cfg, f"{label} at {kimg:g} kimg")
        record_curve(run_dir, kimg, snap, res, cfg.curve_num_gen, num_real)
    kimg, snap = snaps[-1]
    res = evaluate_snapshot(snap, reals, cfg.final_num_gen, cfg, f"{label} at {kimg:g} kimg (final)")
    record_curve(run_dir, kimg, snap, res, cfg.final_num_gen, num_real)
    print(f"    {label}: FID {res['fid']:.2f}  KID {res['kid']:.4f}", flush=True)
    return {"fid": float(res["fid"]), "kid": float(res["kid"])}


def run_demo(cfg: DemoConfig | None = None) -> dict[str, Any]:
    """Run the demo end to end and return what ``results.json`` holds."""
    cfg = cfg or DemoConfig()
    from gantl.checkpoints import zoo
    from gantl.data.dataset import ImageDataset
    from gantl.reporting import ReportInput, write_report

    t0 = time.time()
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()):
        stale = out / "runs"
        if stale.exists():
            import shutil

            shutil.rmtree(stale)  # a previous demo's runs would be mixed into this report
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    timeline = _Timeline(planned_seconds(cfg))

    step = "find and sample CIFAR-10 horses"
    timeline.begin(step)
    zip_path, prefix = find_cifar10(cfg.cifar10)
    raw = work / "horses-raw"
    sample_horses(zip_path, prefix, cfg.num_images, cfg.seed, raw)
    source_path = zoo.resolve(cfg.source)
    source_class = _source_class_used(cfg)  # read once: the header of the source, for the messages below
    print(f"    {cfg.num_images} horses from {zip_path}:{prefix}; source {cfg.source}{_class_note(cfg, source_class)} "
          f"({source_path.name})", flush=True)
    timeline.end(step)

    step = "curate"
    timeline.begin(step)
    data, counts, curation_report = curate_horses(raw, work, cfg.resolution, cfg.progress)
    print(f"    kept {counts.get('kept', '?')} of {cfg.num_images}: {counts}", flush=True)
    timeline.end(step)

    step = "real-image statistics"
    reals = ImageDataset(f"{zip_path}:{prefix}", use_labels=False, progress=cfg.progress)
    num_real = len(reals) if cfg.num_real is None else min(cfg.num_real, len(reals))
    from gantl.metrics import features as feat
    from gantl.metrics.api import real_features

    extractor = feat.get_extractor("inception-v3-fid", mode="legacy_tensorflow", backend="auto")
    where = real_statistics_source(reals, extractor, num_real, cfg.seed)
    if "computing" in where:
        timeline.weights[step] = num_real / _INCEPTION_IMG_S
    timeline.begin(step)
    print(f"    {where}", flush=True)
    real_features(reals, {"inception-v3-fid": extractor}, num_real, seed=cfg.seed, progress=cfg.progress)
    timeline.end(step)

    runs = out / "runs"
    real_images = f"{zip_path}:{prefix}"
    if use_parallel(cfg):
        step = "train and score both runs side by side"
        timeline.begin(step)
        print(f"    scratch and transfer, {cfg.budget_kimg:g} kimg each, one CPU core each", flush=True)
        both = run_both(cfg, data, runs, real_images, num_real)
        (scratch_dir, scratch_res), (transfer_dir, transfer_res) = both["scratch"], both["transfer"]
        timeline.end(step)
    else:
        step = "train from scratch"
        timeline.begin(step)
        scratch_dir = train_run(cfg, data, runs, "scratch", None, [])
        timeline.end(step)
        step = "train by transfer"
        timeline.begin(step)
        transfer_dir = train_run(cfg, data, runs, "transfer", cfg.source, list(cfg.transfer_methods))
        timeline.end(step)
        step = "evaluate"
        timeline.begin(step)
        scratch_res = _score_run(cfg, scratch_dir, "scratch", reals, num_real)
        transfer_res = _score_run(cfg, transfer_dir, "transfer", reals, num_real)
        timeline.end(step)
    final: dict[str, dict[str, float]] = {"scratch": scratch_res, "transfer": transfer_res}

    step = "write the report"
    timeline.begin(step)
    wall = time.time() - t0
    results: dict[str, Any] = {
        "scratch": final["scratch"], "transfer": final["transfer"], "budget_kimg": cfg.budget_kimg,
        "wall_s": round(wall, 1),
        "details": {
            "source": cfg.source, "source_class": source_class,
            "source_file": str(source_path), "images_sampled": cfg.num_images,
            "curation": counts, "final_num_gen": cfg.final_num_gen, "curve_num_gen": cfg.curve_num_gen,
            "num_real": num_real, "real_images": f"{zip_path}:{prefix}",
            "runs": {"scratch": str(scratch_dir), "transfer": str(transfer_dir)}, "config": asdict(cfg),
        },
    }
    better = all(final["transfer"][m] < final["scratch"][m] for m in ("fid", "kid"))
    arch = _source_choices(cfg.source)
    info = ReportInput(
        title="gantl demo: 500 CIFAR-10 horses, transfer vs. from scratch",
        subtitle=(f"Both runs: {arch.get('model', 'stylegan2')} ({arch.get('cfg', '?')}), {cfg.budget_kimg:g} kimg, "
                  f"ADA, seed {cfg.seed}. "
                  f"Transfer starts from '{cfg.source}'{_class_note(cfg, source_class)} "
                  "(trained on CIFAR-10 without horses) with "
                  f"{' + '.join(cfg.transfer_methods) or 'plain fine-tuning'}. Total demo time {_mmss(wall)}."),
        final={"from scratch": final["scratch"], f"transfer from {cfg.source}": final["transfer"]},
        final_caption=(f"FID and KID at the end of training ({cfg.final_num_gen} generated images vs. "
                       + (f"all {num_real:,}" if num_real == len(reals) else f"{num_real:,} of the {len(reals):,}")
                       + " CIFAR-10 training horses). Lower is better. "
                       + ("Transfer beats scratch on both." if better else
                          "Transfer did NOT beat scratch on both metrics in this run.")),
        notes=[
            f"Training data: {counts.get('kept', '?')} of {cfg.num_images} randomly sampled CIFAR-10 training "
            f"horses kept by gantl's curation pipeline (see work/{curation_report.name if curation_report else ''}; "
            "the sharpness filter is off because 32 px thumbnails all look blurred at its 512 px work size).",
            f"Curves: each snapshot's G_ema scored with {cfg.curve_num_gen} generated images (the last point "
            f"uses {cfg.final_num_gen}); FID from few samples is biased upward, so compare runs at equal "
            "sample counts, not with published numbers (those use 50,000).",
            f"KID: mean over 100 subsets of {min(cfg.kid_subset_size, cfg.curve_num_gen)} images.",
            "Features: Inception-v3 pool3 (the TF-ported network of the StyleGAN2-ADA metrics), "
            "real-image statistics cached by dataset content hash.",
        ],
    )
    html, md = write_report([scratch_dir, transfer_dir], out, info, names=["from scratch", "transfer"])
    results["wall_s"] = round(time.time() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    timeline.end(step)
    print(f"done in {_mmss(time.time() - t0)}: scratch FID {final['scratch']['fid']:.2f} KID "
          f"{final['scratch']['kid']:.4f}; transfer FID {final['transfer']['fid']:.2f} KID "
          f"{final['transfer']['kid']:.4f}", flush=True)
    print(f"report: {html}  ({md.name}, results.json beside it)", flush=True)
    return results
