"""The curation pipeline: intake -> score -> decide -> prepare -> manifest -> report.

Scoring (decode + detectors) is the slow part, so it runs in worker processes, each building
its own detectors once (``_init_worker``), and its results are cached in ``manifest.csv``: a
re-run reuses every row whose file has the same path, size and modification time and was scored
with the same scoring settings, and only *decides* again. So changing a threshold is instant,
and an interrupted run continues where it stopped (the manifest is flushed as rows arrive).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantl.config import option
from gantl.data.filters import PIXEL_FILTERS, REASONS, SCORE_COLUMNS, FiltersConfig, Scorer, Threshold, thresholds
from gantl.data.filters.duplicate import DuplicateFilter
from gantl.data.filters.fmt import FormatError, decode
from gantl.data.intake import HttpConfig, InstagramConfig, Item, Source, open_source
from gantl.data.prepare import (
    DatasetWriter,
    PrepareConfig,
    check_output,
    class_of,
    encode_png,
    output_name,
    square_resize,
)
from gantl.errors import DatasetError
from gantl.progress import make_progress

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["file", "kept", "reasons", "error", "output", "duplicate_of", "width", "height", "format",
                    *SCORE_COLUMNS, "face_boxes", "text_boxes", "phash", "phash_mirror", "bytes", "mtime",
                    "scorer", "notes"]
DOWNLOAD_REASON = "download"  # an intake failure, not a filter: the file never arrived


@dataclass
class CurateConfig:
    size: int = option(256, min=8, max=4096, help="Output side in pixels (square).")
    workers: int = option(0, min=0, max=256, help="Worker processes (0 = one per CPU core).")
    filters: FiltersConfig = option(default_factory=FiltersConfig, help="Filter thresholds and settings.")
    prepare: PrepareConfig = option(default_factory=PrepareConfig, help="Crop and output settings.")
    http: HttpConfig = option(default_factory=HttpConfig, help="URL downloads.")
    instagram: InstagramConfig = option(default_factory=InstagramConfig, help="Instagram intake.")


@dataclass
class CurateResult:
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    thresholds: dict[str, Threshold]
    source: Source
    manifest: Path
    output: Path | None = None
    report: Path | None = None
    seconds: float = 0.0
    scored: int = 0  # rows scored in this run (the rest came from the manifest cache)
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(cfg: CurateConfig, source: Source, pool: bool = False) -> None:
    """Per-process setup: single-threaded math libraries, the source; detectors on first use.

    In a pool worker torch (the MTCNN face detector) also gets one thread: the workers already fill
    the cores, and torch's default of one thread per core would oversubscribe them. Inline (one
    worker) the caller's torch setting is left alone.
    """
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass
    if pool and cfg.filters.face.enabled and cfg.filters.face.detector == "mtcnn":
        import torch

        torch.set_num_threads(1)
    _WORKER.clear()
    _WORKER.update(cfg=cfg, source=source, scorer=None)


def _score_item(file: str) -> tuple[str, dict[str, Any]]:
    if _WORKER["scorer"] is None:
        _WORKER["scorer"] = Scorer(_WORKER["cfg"].filters, _WORKER["cfg"].size)
    try:
        data = _WORKER["source"].read(file)
    except (OSError, KeyError) as exc:
        return file, {"error": f"cannot read: {exc}", "scorer": _WORKER["scorer"].fingerprint}
    try:
        return file, _WORKER["scorer"].score_bytes(data)
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop a 10,000-image run
        log.warning("scoring %s failed: %r", file, exc)
        return file, {"error": f"scoring failed: {type(exc).__name__}: {exc}", "scorer": _WORKER["scorer"].fingerprint}


def _prepare_item(file: str) -> tuple[str, bytes | None, str | None]:
    cfg: CurateConfig = _WORKER["cfg"]
    try:
        dec = decode(_WORKER["source"].read(file), cfg.filters.format, need_short=cfg.size)
    except (FormatError, OSError, KeyError) as exc:
        return file, None, str(exc)
    img = square_resize(dec.image, cfg.size, cfg.prepare.crop)
    return file, encode_png(img, cfg.prepare.compress_level), None


# With ``workers = 0`` (automatic), at least this many files per extra worker process. A spawned
# worker costs ~2.3 s to start (Python, imports, detector models), scoring ~0.1 s of CPU per image and
# writing ~0.015 s, so below these sizes the start-up costs more than the second core saves: 12
# cats-raw images took 8.9 s with two workers and 5.4 s inline (measured).
MIN_FILES_PER_WORKER = {"scoring": 24, "writing": 200}


def worker_count(requested: int, n_files: int, stage: str) -> int:
    """Processes for ``stage`` over ``n_files``: the user's number as given (never more than the
    files), or for 0 one per core but no more than the input keeps busy past start-up."""
    if requested:
        workers = requested
    else:
        workers = min(os.cpu_count() or 1, -(-n_files // MIN_FILES_PER_WORKER.get(stage, 1)))
    return max(1, min(workers, n_files))


def _run(func: Any, files: list[str], cfg: CurateConfig, source: Source, description: str,
         progress: bool) -> Iterator[Any]:
    """Map ``func`` over ``files`` in worker processes (or inline for one worker), with a progress bar."""
    workers = worker_count(cfg.workers, len(files), description)
    bar = make_progress() if progress and files else None
    if bar:
        # Redraw twice a second, not rich's default 10: this process shares the cores with the
        # workers, and ten renders a second cost ~1.4 ms of CPU per image scored (measured).
        bar.live.refresh_per_second = 2
    task = bar.add_task(description, total=len(files)) if bar else None
    if bar:
        bar.start()
    try:
        if workers == 1:
            _init_worker(cfg, source)
            results: Iterator[Any] = map(func, files)
            for r in results:
                if bar:
                    bar.advance(task)
                yield r
        else:
            ctx = mp.get_context("spawn")  # never fork a process holding ONNX/dlib/torch thread pools
            chunk = max(1, min(8, len(files) // (workers * 8)))
            with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, source, True)) as pool:
                for r in pool.imap(func, files, chunksize=chunk):
                    if bar:
                        bar.advance(task)
                    yield r
    finally:
        if bar:
            bar.stop()


# ----------------------------------------------------------------------------- manifest


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def write_manifest(rows: list[dict[str, Any]], path: Path) -> Path:
    """One row per input, stable column order; written atomically so a crash never truncates it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in MANIFEST_COLUMNS})
    tmp.replace(path)
    return path


def _parse(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v == "" or v is None:
            continue
        if k in SCORE_COLUMNS or k == "mtime":
            out[k] = float(v)
        elif k in ("width", "height", "bytes", "kept"):
            out[k] = int(float(v))
        else:
            out[k] = v
    return out


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Rows of an existing manifest with numbers parsed (empty cells dropped)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [_parse(r) for r in csv.DictReader(fh)]


def _cached(row: dict[str, Any] | None, item: Item, fingerprint: str, needed: list[str]) -> bool:
    """A manifest row can stand in for scoring: same file, same scoring settings, every needed score present."""
    if row is None or row.get("scorer") != fingerprint or row.get("bytes") != item.size:
        return False
    if abs(float(row.get("mtime", -1)) - item.mtime) >= 1e-3:
        return False
    return bool(row.get("error")) or all(k in row for k in needed)


# ----------------------------------------------------------------------------- decisions


def decide(rows: list[dict[str, Any]], cfg: CurateConfig) -> dict[str, Threshold]:
    """Fill ``kept``/``reasons``/``duplicate_of`` (and the resolution score) from the stored scores.

    Every failing filter is listed, not only the first. The duplicate filter runs last because
    its choice of which copy to keep prefers copies that no other filter rejects.
    """
    ths = thresholds(cfg.filters)
    for row in rows:
        reasons: list[str] = []
        if row.get("error"):
            reasons.append(DOWNLOAD_REASON if row.get("download_failed") else "format")
        elif "width" in row:
            row["resolution"] = round(min(row["width"], row["height"]) / cfg.size, 4)
        for name, th in ths.items():
            if name != "duplicate" and th.fails(row.get(name)):
                reasons.append(name)
        row["_reasons"] = reasons
        row.pop("duplicate_of", None)
    if "duplicate" in ths:
        dup = DuplicateFilter(cfg.filters.duplicate)
        hashes = [(r["phash"], r["phash_mirror"]) if r.get("phash") and not r.get("error") else None for r in rows]
        decision = dup.decide(hashes, [not r["_reasons"] for r in rows], [r.get("blur", 0.0) for r in rows],
                              [r.get("width", 0) * r.get("height", 0) for r in rows])
        for row, dist, of in zip(rows, decision.distance, decision.duplicate_of, strict=True):
            if row.get("phash") and not row.get("error"):
                row["duplicate"] = dist
            else:
                row.pop("duplicate", None)
            if of is not None:
                row["_reasons"].append("duplicate")
                row["duplicate_of"] = rows[of]["file"]
    for row in rows:
        reasons = row.pop("_reasons")
        order = {r: i for i, r in enumerate((DOWNLOAD_REASON, *REASONS))}
        row["reasons"] = ";".join(sorted(reasons, key=order.__getitem__))
        row["kept"] = 0 if reasons else 1
    return ths


def count_reasons(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Totals plus images per reason (an image with two reasons counts under both)."""
    c: Counter[str] = Counter()
    for row in rows:
        c["total"] += 1
        c["kept" if row["kept"] else "rejected"] += 1
        for reason in filter(None, row["reasons"].split(";")):
            c[reason] += 1
    return {k: c.get(k, 0) for k in ("total", "kept", "rejected", DOWNLOAD_REASON, *REASONS)}


# ----------------------------------------------------------------------------- pipeline


def curate(source: str, cfg: CurateConfig, *, manifest: str | Path, out: str | Path | None = None,
           report: str | Path | None = None, progress: bool = True,
           cache_dir: str | Path | None = None) -> CurateResult:
    """Score every image of ``source``; with ``out``, also write the kept ones as a dataset."""
    t0 = time.perf_counter()
    if out is not None:
        check_output(Path(out))  # fail before the long scoring pass, not after it
    manifest = Path(manifest)
    cache_dir = Path(cache_dir) if cache_dir else manifest.with_name(manifest.stem + "-downloads")
    src = open_source(source, cache_dir=cache_dir, http=cfg.http, instagram=cfg.instagram)
    items = src.items()
    if not items and not src.failures:
        raise DatasetError(f"'{source}' contains no image files (extensions: jpg, png, webp, bmp, tif, ...)")
    fingerprint = cfg.filters.scoring_fingerprint()
    old = {r["file"]: r for r in read_manifest(manifest)}
    rows: dict[str, dict[str, Any]] = {}
    todo: list[str] = []
    needed = [n for n in PIXEL_FILTERS if getattr(cfg.filters, n).enabled]
    if cfg.filters.duplicate.enabled:
        needed.append("phash")
    stale = {"kept", "reasons", "duplicate_of", "output", "resolution", "duplicate"}
    stale |= {n for n in PIXEL_FILTERS if n not in needed} | {f"{n}_boxes" for n in PIXEL_FILTERS if n not in needed}
    for item in items:
        prev = old.get(item.file)
        if _cached(prev, item, fingerprint, needed):
            rows[item.file] = {k: v for k, v in prev.items() if k not in stale}  # type: ignore[union-attr]
        else:
            todo.append(item.file)
            rows[item.file] = {"file": item.file, "bytes": item.size, "mtime": item.mtime}
    for file, reason in src.failures:
        rows[file] = {"file": file, "error": reason, "download_failed": True}
    sizes = {it.file: it for it in items}
    t_score = time.perf_counter()
    last_flush = time.monotonic()
    for i, (file, scored) in enumerate(_run(_score_item, todo, cfg, src, "scoring", progress)):
        rows[file].update(scored)
        if time.monotonic() - last_flush > 30 or i == len(todo) - 1:  # resumable: flush partial scores
            partial = [dict(r, kept=0, reasons="") for r in rows.values() if "scorer" in r]
            write_manifest(partial, manifest)
            last_flush = time.monotonic()
    t_score = time.perf_counter() - t_score
    ordered = sorted(rows.values(), key=lambda r: r["file"])
    for r in ordered:
        if r["file"] in sizes:
            r.setdefault("bytes", sizes[r["file"]].size)
    ths = decide(ordered, cfg)
    result = CurateResult(ordered, {}, ths, src, manifest, scored=len(todo))
    result.timings["score_s"] = t_score
    if out is not None:
        t_prep = time.perf_counter()
        try:
            result.output = _write_dataset(ordered, cfg, src, Path(out), progress)
        except DatasetError as exc:
            # The decisions are made: record them, so the manifest holds every reason (not the
            # scoring pass's provisional kept=0 / empty reasons) and "see the report" is true.
            _finish(result, ordered, manifest, report, cfg)
            where = f"; report: {result.report}" if result.report else f"; manifest: {manifest}"
            raise DatasetError(exc.message + where, exit_code=exc.exit_code) from None
        result.timings["prepare_s"] = time.perf_counter() - t_prep
    _finish(result, ordered, manifest, report, cfg)
    result.seconds = time.perf_counter() - t0
    return result


def _finish(result: CurateResult, ordered: list[dict[str, Any]], manifest: Path, report: str | Path | None,
            cfg: CurateConfig) -> None:
    """Counts, the final manifest and the HTML report, after a dataset was written or refused."""
    result.counts = count_reasons(ordered)
    for r in ordered:
        r.pop("download_failed", None)
    write_manifest(ordered, manifest)
    if report is not None:
        from gantl.data.report import write_report

        t_rep = time.perf_counter()
        result.report = write_report(result, Path(report), cfg)
        result.timings["report_s"] = time.perf_counter() - t_rep


def _write_dataset(rows: list[dict[str, Any]], cfg: CurateConfig, src: Source, out: Path,
                   progress: bool) -> Path:
    kept = [r for r in rows if r["kept"]]
    if not kept:
        raise DatasetError("every image was rejected, so no dataset was written; see the reasons in the report "
                           "and relax thresholds (e.g. --set filters.blur.threshold=0.5)")
    class_names: list[str] | None = None
    if cfg.prepare.labels:
        names = {class_of(r["file"]) for r in kept}
        if None in names or len(names) < 2:
            raise DatasetError("--labels needs images in at least two sub-folders (one per class) and none at "
                               "the top level; drop --labels or arrange the source as <class>/<image>")
        class_names = sorted(n for n in names if n is not None)
    by_file = {r["file"]: r for r in kept}
    writer = DatasetWriter(out)
    index = 0
    for file, png, error in _run(_prepare_item, list(by_file), cfg, src, "writing", progress):
        row = by_file[file]
        if png is None:  # changed on disk since it was scored
            row.update(kept=0, reasons="format", error=error)
            continue
        label = class_of(file) if class_names else None
        name = output_name(index, label)
        writer.add(name, png, class_names.index(label) if class_names and label else None)
        row["output"] = name
        index += 1
    return writer.close(class_names)


def default_paths(out: Path) -> tuple[Path, Path]:
    """Manifest and report beside a dataset: ``cats64.zip`` -> ``cats64-manifest.csv``, ``cats64-report.html``."""
    stem = out.name[: -len(out.suffix)] if out.suffix.lower() == ".zip" else out.name
    return out.with_name(f"{stem}-manifest.csv"), out.with_name(f"{stem}-report.html")


def summary_json(result: CurateResult) -> str:
    """One JSON line: counts, timing and throughput (what the CLI prints and benchmarks record)."""
    score_s = result.timings.get("score_s", 0.0)
    return json.dumps({"counts": result.counts, "seconds": round(result.seconds, 2),
                       "scored": result.scored, "score_s": round(score_s, 2),
                       "img_per_s": round(result.scored / score_s, 2) if score_s > 0 and result.scored else None})
