"""`gantl experiment run`: train and evaluate every cell x seed of a grid, resumably.

Each run is an ordinary run dir under the experiment dir (``DIR/003-aug=ada-subset=250-s1/``), made
and continued with the same machinery as ``gantl train`` and ``gantl train --resume-run``, so
everything that reads run dirs (``gantl eval``, ``gantl generate``, the run report) works on it.
Running the same command again looks at each dir:

* final snapshot present and every ``[eval]`` result recorded -> skipped (a re-run is a no-op);
* final snapshot present, results missing (or ``[eval]`` changed) -> only evaluated;
* an earlier snapshot only -> resumed exactly from it (optimizer, RNG, augment p, data position);
* no snapshot (killed before the first one) -> started again from scratch;
* a dir made with other options -> refused before anything runs, naming the option: a silently
  mixed experiment is worse than an error. Raising ``kimg`` is allowed and extends the runs.

Evaluation results go to ``eval.jsonl`` in the run dir, one line per evaluated snapshot, holding
the ``[eval]`` settings they were made with; the experiment report reads them from there.
``--jobs N`` runs N runs at once in separate processes (spawned: no forked torch state), each with
``cpu_count // N`` torch threads unless the grid sets ``threads``.

``--nproc-per-run K`` (K > 1; for multi-GPU machines) trains each run data-parallel as one
``torchrun --standalone --nproc_per_node K`` group (see :mod:`gantl.experiments.ddp`): NCCL with
one GPU per rank on CUDA, gloo on CPU. It is a flag, not a grid key, because it describes the
machine, not the experiment: the same grid runs on a laptop and on an 8-GPU node, and a run dir
records no process count (``config.toml`` is the same), so an experiment may be continued with
another K (the data order then differs from an uninterrupted run; the log says so). The runner
prepares each run dir exactly as without torchrun and evaluates in its own process after the
group ends, so skipping, resuming and restarting behave identically. A failing rank ends its
group (torchrun stops the others) and becomes that run's error, with the tail of the group's
output in its error.txt. ``--jobs J`` then runs J groups at once, each rank with
``cpu_count // (J * K)`` threads unless the grid sets ``threads``; with at least J * K GPUs each
group gets its own K. K = 1 is the in-process path above.

    gantl experiment run grid.toml --out runs/grid --nproc-per-run 4 --jobs 2   # 8 GPUs, 2 runs at once
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import logging
import multiprocessing
import os
import queue
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gantl.config import dump_toml, from_dict, to_dict
from gantl.errors import ConfigError, GantlError
from gantl.experiments.ddp import RankFailure, gpu_groups, train_in_group
from gantl.experiments.grid import MACHINERY_KEYS, EvalSpec, Grid, RunSpec, load_grid
from gantl.training.options import TrainOptions

log = logging.getLogger("gantl")

EXPERIMENT_FILE = "experiment.json"
GRID_COPY = "grid.toml"
EVAL_FILE = "eval.jsonl"
ERROR_FILE = "error.txt"


# --------------------------------------------------------------------------------------------- state of a run


def _snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    """(nimg, path) of every complete snapshot (checkpoint and training state), oldest first."""
    from gantl.training.loop import _TAG_RE, STATE_PREFIX, tag_nimg

    out = []
    if run_dir.is_dir():
        for p in run_dir.iterdir():
            m = _TAG_RE.match(p.name)
            if m and (run_dir / f"{STATE_PREFIX}{m.group(1)}.pt").is_file():
                out.append((tag_nimg(m.group(1)), p))
    return sorted(out)


def eval_settings(ev: EvalSpec) -> dict[str, Any]:
    """The ``[eval]`` settings a result depends on (stored with it; a change means measure again)."""
    return {k: v for k, v in dataclasses.asdict(ev).items() if k != "snapshots"}


def read_eval(run_dir: Path) -> list[dict[str, Any]]:
    """The readable lines of a run's eval.jsonl (a line cut by a kill is skipped)."""
    path = run_dir / EVAL_FILE
    rows: list[dict[str, Any]] = []
    if path.is_file():
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _to_evaluate(run_dir: Path, opts: TrainOptions, ev: EvalSpec) -> list[tuple[int, Path]]:
    """Snapshots still lacking results under the current ``[eval]`` settings."""
    if not ev.metrics:
        return []
    snaps = _snapshots(run_dir)
    total = int(round(opts.kimg * 1000))
    final = [s for s in snaps if s[0] >= total][-1:]
    targets = snaps if ev.snapshots == "all" else final
    settings = eval_settings(ev)
    done = {row.get("snapshot") for row in read_eval(run_dir) if row.get("eval") == settings}
    return [s for s in targets if s[1].name not in done]


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted((set(old) | set(new)) - set(MACHINERY_KEYS))
    return [k for k in keys if old.get(k) != new.get(k)]


def _shown(value: Any) -> str:
    return "unset (the preset's value)" if value is None else repr(value)


def plan_run(spec: RunSpec, out_dir: Path, ev: EvalSpec) -> str:
    """``done``, ``evaluate``, ``resume``, ``restart`` or ``start`` for one run; refuses a foreign dir."""
    run_dir = out_dir / spec.name
    if not run_dir.exists():
        return "start"
    cfg = run_dir / "config.toml"
    if not cfg.is_file():
        if any(run_dir.iterdir()):
            raise ConfigError(f"{run_dir} exists but is not a gantl run dir (no config.toml); move it away or "
                              "use another --out")
        return "start"
    try:
        old = tomllib.loads(cfg.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        old = {}
    diff = _differences(old, to_dict(spec.opts))
    if diff:
        k = diff[0]
        raise ConfigError(f"{run_dir.name} was trained with {k} = {_shown(old.get(k))}, the grid now says "
                          f"{_shown(to_dict(spec.opts).get(k))}; use a new --out (or delete that run dir)")
    snaps = _snapshots(run_dir)
    if not snaps:
        return "restart"
    if snaps[-1][0] < int(round(spec.opts.kimg * 1000)):
        return "resume"
    return "evaluate" if _to_evaluate(run_dir, spec.opts, ev) else "done"


# --------------------------------------------------------------------------------------------- one run


@dataclass
class Outcome:
    """What happened to one run in this invocation."""

    name: str
    action: str
    seconds: float = 0.0
    evaluated: int = 0
    error: str | None = None


def _real_dataset(opts: TrainOptions, ev: EvalSpec) -> Any:
    """The real images a run is measured against: ``[eval] real``, else exactly its training images
    (same classes and seeded subset, without mirrored copies)."""
    from gantl.data.dataset import ImageDataset

    if ev.real is not None:
        return ImageDataset(ev.real, use_labels=opts.cond, progress=False)
    use_labels = opts.cond or bool(opts.include_classes or opts.exclude_classes)
    return ImageDataset(opts.data, use_labels=use_labels, include_classes=opts.include_classes or None,
                        exclude_classes=opts.exclude_classes or None, subset=opts.subset, seed=opts.seed,
                        progress=False)


def evaluate_run(run_dir: Path, opts: TrainOptions, ev: EvalSpec) -> int:
    """Measure every snapshot that still needs it (see :func:`_to_evaluate`); returns how many."""
    from gantl.metrics.api import evaluate_generator, load_generator
    from gantl.training.loop import pick_device

    todo = _to_evaluate(run_dir, opts, ev)
    if not todo:
        return 0
    device = pick_device(opts.device)
    real = _real_dataset(opts, ev)
    settings = eval_settings(ev)
    for nimg, snap in todo:
        G = load_generator(snap).to(device)
        start = time.time()
        results = evaluate_generator(G, real, list(ev.metrics), num_gen=ev.num_gen, device=device, seed=opts.seed,
                                     num_real=ev.num_real, options=dict(ev.options), extractor=ev.extractor,
                                     progress=False)
        row = {"kimg": nimg / 1000, "snapshot": snap.name, "results": results, "eval": settings,
               "num_gen": ev.num_gen or min(len(real), 50_000), "num_real": ev.num_real or len(real),
               "seconds": round(time.time() - start, 3)}
        with open(run_dir / EVAL_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        log.info("%s at kimg %.3f: %s", run_dir.name, nimg / 1000,
                 ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
    return len(todo)


def resume_overrides(opts: TrainOptions) -> list[str]:
    """What a resumed run takes from the grid rather than its config.toml: the machinery (device,
    workers, threads; the runner never shows a per-run bar) and ``kimg``, which may grow."""
    overrides = [f"kimg={opts.kimg}", f"device={opts.device}", f"workers={opts.workers}", "progress=false"]
    if opts.threads is not None:
        overrides.append(f"threads={opts.threads}")
    return overrides


def execute(spec: RunSpec, out_dir: Path, ev: EvalSpec, action: str, *, nproc: int = 1, rank_threads: int = 1,
            gpus: str | None = None) -> Outcome:
    """Train (start, restart or resume) and evaluate one run; errors are caught and returned.

    With ``nproc`` > 1 the training is one torchrun group of that many ranks (``rank_threads``
    torch threads each, on the GPUs ``gpus`` when given) and only the evaluation runs here.
    """
    from gantl.training import distributed
    from gantl.training.loop import Trainer, resume_run

    run_dir = out_dir / spec.name
    start = time.time()
    outcome = Outcome(name=spec.name, action=action)
    try:
        (run_dir / ERROR_FILE).unlink(missing_ok=True)
        if action == "restart":  # killed before its first snapshot: nothing worth keeping
            shutil.rmtree(run_dir)
        if action in ("start", "restart"):
            run_dir.mkdir(parents=True, exist_ok=True)
            dump_toml(spec.opts, run_dir / "config.toml")
        if nproc > 1 and action in ("start", "restart", "resume"):
            train_in_group(run_dir, action, to_dict(spec.opts), nproc=nproc, threads=rank_threads, gpus=gpus)
        elif action in ("start", "restart"):
            trainer = Trainer(spec.opts, run_dir=run_dir)
            try:
                trainer.train()
            finally:
                distributed.shutdown(trainer.dist)
        elif action == "resume":
            resume_run(run_dir, resume_overrides(spec.opts))
        outcome.evaluated = evaluate_run(run_dir, spec.opts, ev)
    except RankFailure as exc:
        outcome.error = exc.message
        if run_dir.is_dir():
            (run_dir / ERROR_FILE).write_text(f"{exc.message}\n\n--- end of the torchrun group's output ---\n"
                                              f"{exc.tail}", encoding="utf-8")
    except GantlError as exc:
        outcome.error = exc.message
    except Exception as exc:  # noqa: BLE001 - one broken run must not lose the others' hours
        outcome.error = f"{type(exc).__name__}: {exc}"
        if run_dir.is_dir():
            (run_dir / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
    if outcome.error is not None and run_dir.is_dir() and not (run_dir / ERROR_FILE).exists():
        (run_dir / ERROR_FILE).write_text(outcome.error + "\n", encoding="utf-8")
    outcome.seconds = time.time() - start
    return outcome


_GPUS: str | None = None  # this --jobs process's GPUs for its torchrun groups (see _init_worker)


def _init_worker(slots: Any) -> None:
    """Take one of the ``--jobs`` GPU blocks for good: each pool process runs one group at a time."""
    global _GPUS
    try:
        _GPUS = slots.get(timeout=10)
    except queue.Empty:  # more pool processes than blocks: share (only if the pool ever replaced one)
        _GPUS = None


def _worker(payload: dict[str, Any]) -> Outcome:
    """Entry point of a ``--jobs`` process: rebuild the run from plain data and execute it."""
    import torch

    if payload["threads"]:
        torch.set_num_threads(payload["threads"])
    logging.basicConfig(level=logging.WARNING)
    opts = from_dict(TrainOptions, payload["opts"])
    spec = RunSpec(name=payload["name"], cell=payload["cell"], index=payload["index"], values=payload["values"],
                   seed=payload["seed"], opts=opts)
    ev = from_dict(EvalSpec, payload["eval"])
    return execute(spec, Path(payload["out_dir"]), ev, payload["action"], nproc=payload["nproc"],
                   rank_threads=payload["rank_threads"], gpus=_GPUS)


# --------------------------------------------------------------------------------------------- the grid


@dataclass
class ExperimentResult:
    """The outcome of one ``experiment run`` invocation."""

    out_dir: Path
    runs: list[RunSpec]
    outcomes: list[Outcome]

    @property
    def skipped(self) -> list[str]:
        return [o.name for o in self.outcomes if o.action == "done"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]


def write_manifest(grid: Grid, runs: list[RunSpec], out_dir: Path) -> Path:
    """``experiment.json`` (grid keys, seeds, [eval], every run's name and values) and a copy of the
    grid file: what ``experiment report`` needs, written before anything trains."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if grid.text:
        (out_dir / GRID_COPY).write_text(grid.text, encoding="utf-8")
    manifest = {
        "title": grid.title, "description": grid.description,
        "grid_file": str(grid.path) if grid.path else None,
        "keys": grid.keys, "grid": grid.grid, "seeds": grid.seeds, "base": grid.base,
        "eval": dataclasses.asdict(grid.eval),
        "runs": [{"name": r.name, "cell": r.cell, "index": r.index, "values": r.values, "seed": r.seed,
                  "kimg": r.opts.kimg} for r in runs],
    }
    path = out_dir / EXPERIMENT_FILE
    path.write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
    return path


def run_experiment(grid_path: str | Path, out_dir: str | Path, *, jobs: int = 1, nproc_per_run: int = 1,
                   progress: bool = True, echo: Callable[[str], None] | None = None) -> ExperimentResult:
    """Validate the grid, then train and evaluate every run that is not finished yet.

    ``nproc_per_run`` > 1 trains each run as a torchrun group of that many processes.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs} must be at least 1")
    if nproc_per_run < 1:
        raise ConfigError(f"--nproc-per-run {nproc_per_run} must be at least 1 (processes per run; 1 trains "
                          "in this process)")
    out_dir = Path(out_dir)
    grid = load_grid(grid_path, out_dir)
    runs = grid.runs(out_dir)
    say = echo or (lambda _msg: None)
    actions = {r.name: plan_run(r, out_dir, grid.eval) for r in runs}  # refuses foreign dirs before any work
    write_manifest(grid, runs, out_dir)
    todo = [r for r in runs if actions[r.name] != "done"]
    outcomes = [Outcome(name=r.name, action="done") for r in runs if actions[r.name] == "done"]
    cells = len(grid.cells())
    say(f"{grid.title}: {cells} cell(s) x {len(grid.seeds)} seed(s) = {len(runs)} runs in {out_dir}; "
        f"{len(runs) - len(todo)} finished, {len(todo)} to do"
        + (f" ({', '.join(f'{n} {a}' for a, n in _count(actions[r.name] for r in todo).items())})" if todo else ""))
    if not todo:
        return ExperimentResult(out_dir, runs, outcomes)

    weight = {r.name: _work(r, actions[r.name], out_dir) for r in todo}
    nproc = nproc_per_run
    at_once = min(jobs, len(todo))
    groups = gpu_groups(at_once, nproc) if nproc > 1 else [None] * at_once
    auto_rank_threads = max(1, (os.cpu_count() or 1) // (at_once * nproc))

    def rank_threads(r: RunSpec) -> int:
        return r.opts.threads or auto_rank_threads

    bar = _Bar(len(runs), len(runs) - len(todo), sum(weight.values()), enabled=progress)
    try:
        if jobs == 1 or len(todo) == 1:
            for r in todo:
                bar.describe(f"running {r.name}")
                outcome = execute(r, out_dir, grid.eval, actions[r.name], nproc=nproc,
                                  rank_threads=rank_threads(r), gpus=groups[0])
                outcomes.append(outcome)
                bar.finish_run(weight[r.name])
                say(_line(outcome))
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            payloads = [{"name": r.name, "cell": r.cell, "index": r.index, "values": r.values, "seed": r.seed,
                         "opts": to_dict(r.opts), "eval": dataclasses.asdict(grid.eval), "out_dir": str(out_dir),
                         "action": actions[r.name], "threads": None if r.opts.threads else threads,
                         "nproc": nproc, "rank_threads": rank_threads(r)} for r in todo]
            ctx = multiprocessing.get_context("spawn")
            slots = ctx.Queue()
            for gpus in groups:
                slots.put(gpus)
            bar.describe(f"running {min(jobs, len(todo))} at once")
            with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                        initargs=(slots,)) as pool:
                futures = {pool.submit(_worker, p): p["name"] for p in payloads}
                for fut in cf.as_completed(futures):
                    name = futures[fut]
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker that died (e.g. out of memory)
                        outcome = Outcome(name=name, action=actions[name], error=f"worker died: {exc}")
                    outcomes.append(outcome)
                    bar.finish_run(weight[name])
                    say(_line(outcome))
    finally:
        bar.close()
    order = {r.name: i for i, r in enumerate(runs)}
    outcomes.sort(key=lambda o: order[o.name])
    result = ExperimentResult(out_dir, runs, outcomes)
    if result.failed:
        names = ", ".join(o.name for o in result.failed)
        raise GantlError(f"{len(result.failed)} of {len(runs)} runs failed ({names}): {result.failed[0].error}; "
                         f"see error.txt in each, fix it and run the same command again (finished runs are kept)")
    return result


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in items:
        out[a] = out.get(a, 0) + 1
    return out


def _work(run: RunSpec, action: str, out_dir: Path) -> float:
    """Expected work of a run in kimg still to train (plus a little for evaluation), for the ETA."""
    total = run.opts.kimg
    if action == "resume":
        snaps = _snapshots(out_dir / run.name)
        total -= snaps[-1][0] / 1000 if snaps else 0.0
    elif action == "evaluate":
        total = 0.0
    return max(total, 0.0) + 0.05 * run.opts.kimg + 1e-3


def _line(o: Outcome) -> str:
    what = {"start": "trained", "restart": "trained again", "resume": "resumed", "evaluate": "evaluated"}[o.action]
    if o.error is not None:
        return f"FAILED {o.name}: {o.error}"
    extra = f", {o.evaluated} evaluation(s)" if o.evaluated else ""
    return f"{what} {o.name} in {o.seconds:.1f} s{extra}"


class _Bar:
    """Runs done/total with an ETA weighted by the kimg each run still has to train."""

    def __init__(self, total_runs: int, done_runs: int, total_work: float, enabled: bool) -> None:
        self.total_runs, self.done_runs = total_runs, done_runs
        self.progress = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]{task.fields[runs]}"), BarColumn(),
                                     TextColumn("{task.description}"), TimeElapsedColumn(), TextColumn("eta"),
                                     TimeRemainingColumn())
            self.progress.start()
            self.task = self.progress.add_task("", total=total_work, runs=self._runs())

    def _runs(self) -> str:
        return f"runs {self.done_runs}/{self.total_runs} done"

    def describe(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)

    def finish_run(self, work: float) -> None:
        self.done_runs += 1
        if self.progress is not None:
            self.progress.update(self.task, advance=work, runs=self._runs())

    def close(self) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description="finished")
            self.progress.stop()
