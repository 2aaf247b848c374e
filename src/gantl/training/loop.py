"""The training loop, measured in thousands of real images shown to D (kimg).

One *step* runs the phases ``Gmain``, ``Greg`` (every ``pl_interval`` steps, when
path-length regularisation is on), ``Dmain`` and ``Dreg`` (every ``r1_interval`` steps)
on one global minibatch, then updates G_ema and (every ``ada_interval`` steps) the ADA
probability. Every ``tick_kimg`` one line goes to ``stats.jsonl`` (averaged losses, R1,
augment p, speed); every ``snap_kimg`` (and at the end) a snapshot is written:
``fakes<kimg>.png`` from fixed latents through G_ema, ``snapshot-<kimg>.safetensors``
(G, D, G_ema + metadata) and ``training-state-<kimg>.pt`` (optimizers, RNG states,
augment, transfer and loss state, data position, counters).

Exact resume: snapshots fall on tick boundaries, nothing between two ticks depends on
wall time, every random draw comes from the seeded global RNG (whose state is saved)
or from a generator that is a pure function of the seed, and writing grids/snapshots
runs inside a forked RNG. So ``gantl train --resume-run RUN`` continues from the last
complete snapshot and writes the same ``stats.jsonl`` values the uninterrupted run
would have written (the timing fields aside).

Snapshot names use whole kimg (``snapshot-000050``); a snapshot at a fractional kimg
(tiny test runs) is named with three decimals (``snapshot-000000.128``).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gantl.config import load_toml, to_dict
from gantl.errors import CheckpointError, ConfigError, DatasetError
from gantl.models.registry import build
from gantl.training import distributed
from gantl.training.ema import make_ema, step_ema
from gantl.training.images import fixed_latents, generate_grid, save_grid
from gantl.training.losses import GANLoss, StepContext, lazy_optimizer_kwargs
from gantl.training.options import Hyper, TrainOptions, resolve_hyper
from gantl.transfer.base import StepInfo, TransferMethod, compose_param_groups, parse_methods, prepare_methods

log = logging.getLogger("gantl")

STATE_PREFIX = "training-state-"
SNAPSHOT_PREFIX = "snapshot-"
_TAG_RE = re.compile(r"^snapshot-(\d{6}(?:\.\d{3})?)\.safetensors$")
TIMING_KEYS = ("sec_per_tick", "sec_per_kimg", "img_per_sec", "timestamp", "total_sec")


def pick_device(name: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    return torch.device(name)


def snapshot_tag(cur_nimg: int) -> str:
    return f"{cur_nimg // 1000:06d}" if cur_nimg % 1000 == 0 else f"{cur_nimg / 1000:010.3f}"


def tag_nimg(tag: str) -> int:
    return int(round(float(tag) * 1000))


# ---------------------------------------------------------------------------------------------- setup


@dataclass
class Setup:
    """Networks and everything built from options before the first step."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    hyper: Hyper
    methods: list[TransferMethod]
    source: Any
    dataset: Any
    resolution: int
    c_dim: int


def open_dataset(opts: TrainOptions) -> Any:
    from gantl.data.dataset import ImageDataset
    from gantl.training.data_stream import DEFAULT_CACHE_BYTES

    use_labels = opts.cond or bool(opts.include_classes or opts.exclude_classes)
    # The start-up check decodes every file; keeping those pixels (as much as the batch stream's
    # in-memory cache will hold, mirrored copies included) saves decoding them all again.
    keep = DEFAULT_CACHE_BYTES // (2 if opts.xflip else 1)
    return ImageDataset(opts.data, use_labels=use_labels, include_classes=opts.include_classes or None,
                        exclude_classes=opts.exclude_classes or None, xflip=opts.xflip, subset=opts.subset,
                        seed=opts.seed, progress=False, keep_decoded_bytes=keep)


def _shape_from(opts: TrainOptions, dataset: Any) -> tuple[int, int, int]:
    """(resolution, c_dim, channels) from the options and, when given, the dataset."""
    if dataset is None:
        if opts.resolution is None:
            raise ConfigError("give --data, or --resolution (and --num-classes) to describe the networks")
        return opts.resolution, opts.num_classes or 0, opts.channels
    if opts.resolution is not None and opts.resolution != dataset.resolution:
        raise DatasetError(f"the dataset's images are {dataset.resolution} px but --resolution is {opts.resolution}; "
                           f"rebuild it with `gantl data build ... --size {opts.resolution}` or drop --resolution")
    if opts.channels != dataset.num_channels:
        raise DatasetError(f"the dataset has {dataset.num_channels} channels but --channels is {opts.channels}")
    c_dim = 0
    if opts.cond or (opts.num_classes or 0) > 0:
        if dataset.c_dim == 0:
            raise DatasetError("conditional training needs labels, but the dataset has none; add a dataset.json "
                               "or class subfolders, or drop --cond")
        c_dim = dataset.c_dim
        if opts.num_classes is not None and opts.num_classes != c_dim:
            raise DatasetError(f"the dataset has {c_dim} classes but --num-classes is {opts.num_classes}")
    return dataset.resolution, c_dim, dataset.num_channels


def build_setup(opts: TrainOptions, *, dataset: Any = None, need_dataset: bool = True) -> Setup:
    """Build G, D, G_ema, load the source and prepare the transfer methods (no training)."""
    from gantl.rundir import buffer_setup_log

    buffer_setup_log()  # what set-up logs reaches the run's log.txt once it exists
    if opts.init_d == "scratch" and not opts.fresh_d:
        # Options built directly (TrainOptions(...), not through the CLI/TOML check) must mean the same:
        # --init-d scratch is --fresh-d.
        opts.fresh_d = True
    if dataset is None and need_dataset and opts.data is not None:
        dataset = open_dataset(opts)
    resolution, c_dim, channels = _shape_from(opts, dataset)
    hyper = resolve_hyper(opts, resolution=resolution, c_dim=c_dim, channels=channels)
    arch = opts.model
    methods = parse_methods(opts.methods)
    source = None
    if opts.resume:
        import dataclasses

        from gantl.checkpoints.zoo import sha256_file
        from gantl.transfer.source import check_init_methods, load_source, source_network_kwargs

        # before loading: a refused combination costs nothing
        check_init_methods(methods, init_g=opts.init_g, init_d="scratch" if opts.fresh_d else opts.init_d)
        source = load_source(opts.resume)
        # A zoo name is re-pointed when a source is retrained: log.txt keeps which file this run used.
        log.info("source %s: %s, sha256 %s", opts.resume, source.path, sha256_file(source.path))
        # The source's architecture (widths, latent sizes, mapping depth...) wins over the preset's.
        hyper = dataclasses.replace(hyper, G_kwargs=source_network_kwargs(source, arch, "G", hyper.G_kwargs),
                                    D_kwargs=source_network_kwargs(source, arch, "D", hyper.D_kwargs))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)  # initialisation depends on the seed only (same on every rank)
        G = build(arch, "G", hyper.G_kwargs)
        D = build(arch, "D", hyper.D_kwargs)
    fresh_g = opts.init_g == "scratch"
    if source is not None:
        from gantl.transfer.base import apply_adapters

        # A source that is itself a transfer snapshot may carry modules a method added (scale/shift,
        # a miner): the target gets the same structure before the source's tensors go in.
        for key, net, skip in (("G", G, fresh_g), ("D", D, opts.fresh_d)):
            if not skip:
                apply_adapters(net, source.network_info(key).get("adapters") or [])
    G_ema = make_ema(G)
    if source is not None:
        from gantl.transfer.source import apply_source

        apply_source(source, {"G": G, "D": D, "G_ema": G_ema}, allow_partial=opts.allow_partial,
                     fresh_d=opts.fresh_d, fresh_g=fresh_g,
                     source_class=None if fresh_g else _source_class(opts, source, G, dataset))
        if fresh_g:
            log.warning("--init-g scratch: G and G_ema start from their seeded initialisation (seed %d); the "
                        "source %s gives only the architecture%s", opts.seed, source.path,
                        "" if opts.fresh_d else " and D")
        if opts.fresh_d:
            # A warning, not info: an untrained D is worth seeing on the console as well as in log.txt.
            why = "the source's D is ignored" if "D" in source.tensors else "the source has no D"
            log.warning("--fresh-d: G and G_ema come from %s; D starts from its seeded initialisation (seed %d), "
                        "%s", source.path, opts.seed, why)
    elif methods and any(m.name != "finetune" for m in methods):
        log.warning("transfer methods %s without --resume act on randomly initialised networks",
                    ", ".join(opts.methods))
    for m in methods:
        bind = getattr(m, "bind_dataset", None)  # methods that size things by the data (GLO's latents)
        if callable(bind):
            bind(dataset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed + 1)  # whatever a method initialises (a miner) is a function of the seed
        prepare_methods(methods, G, D, source)
    if list(G_ema.state_dict()) != list(G.state_dict()):  # a method changed G's structure
        G_ema = make_ema(G)
    return Setup(G=G, D=D, G_ema=G_ema, hyper=hyper, methods=methods, source=source, dataset=dataset,
                 resolution=resolution, c_dim=c_dim)


def _source_class(opts: TrainOptions, source: Any, G: nn.Module, dataset: Any) -> int | None:
    """The conditional source's class to start an unconditional target from (None when not needed).

    ``auto`` ranks the source's classes by the FID of their samples to the target data and records
    the pick in ``opts.source_class``, so the run's config.toml (and ``--resume-run``) keeps it.
    """
    from gantl.transfer.conditional import is_conditional_to_unconditional, rank_source_classes

    info = source.network_info("G")
    if not is_conditional_to_unconditional(info, G):
        return None
    choice = str(opts.source_class if opts.source_class is not None else "auto").strip()  # TOML may hold an int
    if choice != "auto":
        names = list(source.metadata.get("class_names") or [])
        if choice in names:
            return names.index(choice)
        try:
            return int(choice)
        except ValueError:
            known = f" or one of: {', '.join(names)}" if names else ""
            raise ConfigError(f"--source-class takes a class index, auto{known}; not '{choice}'") from None
    if dataset is None:
        raise ConfigError("--source-class auto compares the source's classes with the target data: pass --data, "
                          "or give the class index")
    from gantl.models.registry import build

    cond_G = build(info["arch"], "G", info["config"])
    cond_G.load_state_dict(source.tensors.get("G_ema", source.tensors["G"]))
    ranking = rank_source_classes(cond_G, dataset, num_gen=min(200, max(len(dataset), 50)), seed=opts.seed)
    best, fid = ranking[0]
    log.info("source class %d picked for the target (FID %.2f; next: %s)", best, fid,
             ", ".join(f"{k}: {v:.1f}" for k, v in ranking[1:4]))
    opts.source_class = str(best)
    return best


def describe_networks(setup: Setup) -> dict[str, Any]:
    """``{"G": {name: shape}, "D": {name: shape}, "trainable": [names]}`` (params and buffers)."""
    out: dict[str, Any] = {}
    trainable: list[str] = []
    for key, net in (("G", setup.G), ("D", setup.D)):
        out[key] = {name: list(t.shape) for name, t in net.state_dict(keep_vars=True).items()}
        trainable += [f"{key}.{n}" for n, p in net.named_parameters() if p.requires_grad]
    out["trainable"] = trainable
    return out


def count_parameters(net: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in net.parameters() if not p.requires_grad)
    return trainable, frozen


# ---------------------------------------------------------------------------------------------- helpers


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]),
                   "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Isolated:
    """Run a block (grids, snapshots, metrics) without moving any global RNG."""

    def __enter__(self) -> None:
        self.state = _rng_state()

    def __exit__(self, *exc: object) -> None:
        _set_rng_state(self.state)


def run_description(opts: TrainOptions, dataset_name: str) -> str:
    """The run dir's words: dataset, model, preset, methods, and where it started.

    A run that starts from a source is named after it (``...-finetune-from-cifar9-stylegan2-32``);
    only a run from random initialisation is called ``scratch``.
    """
    methods = "+".join(m.replace(":", "") for m in opts.methods)
    if opts.resume:
        origin = "from-" + re.sub(r"[^A-Za-z0-9._-]+", "_", Path(opts.resume).name.removesuffix(".safetensors"))
        # TransferGAN's G/D initialisation matrix: say which network starts fresh
        fresh = [net for net, init in (("G", opts.init_g), ("D", "scratch" if opts.fresh_d else opts.init_d))
                 if init == "scratch"]
        origin = "".join(f"{net}scratch-" for net in fresh) + origin
        methods = "-".join(x for x in (methods or "finetune", origin) if x)
    return "-".join(x for x in (dataset_name, opts.model, opts.cfg, methods or "scratch", opts.desc) if x)


def latest_snapshot(run_dir: Path) -> str | None:
    """Tag of the newest snapshot that has both its checkpoint and its training state."""
    tags = []
    for p in run_dir.iterdir():
        m = _TAG_RE.match(p.name)
        if m and (run_dir / f"{STATE_PREFIX}{m.group(1)}.pt").is_file():
            tags.append(m.group(1))
    return max(tags, key=tag_nimg) if tags else None


def latest_good_snapshot(run_dir: Path) -> str | None:
    """Like :func:`latest_snapshot`, skipping snapshots whose files do not load (a damaged disk, a
    copy cut short): resume falls back to the newest one that does, with a warning, instead of
    stopping at the first broken file. Nothing is deleted; the broken pair is overwritten only when
    training reaches that kimg again (atomically)."""
    from gantl.checkpoints.format import load_checkpoint, load_training_state

    tags = sorted((m.group(1) for p in run_dir.iterdir() if (m := _TAG_RE.match(p.name))
                   and (run_dir / f"{STATE_PREFIX}{m.group(1)}.pt").is_file()), key=tag_nimg, reverse=True)
    for tag in tags:
        try:
            load_checkpoint(run_dir / f"{SNAPSHOT_PREFIX}{tag}.safetensors")
            load_training_state(run_dir / f"{STATE_PREFIX}{tag}.pt")
        except CheckpointError as exc:
            log.warning("snapshot %s in %s cannot be resumed (%s); trying the one before it", tag, run_dir, exc)
            continue
        return tag
    return None


class _TickStats:
    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, float]) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in sorted(self.sums)}


# ---------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Owns one run: set up, train to ``opts.kimg``, snapshot, resume."""

    def __init__(self, opts: TrainOptions, *, run_dir: Path | None = None, resume_tag: str | None = None,
                 dataset: Any = None) -> None:
        self.opts = opts
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.device = pick_device(opts.device)
        self.dist = distributed.init_from_env(self.device)
        if opts.data is None and dataset is None:
            raise ConfigError("training needs a dataset: pass --data PATH (a folder or zip of images)")
        self.setup = build_setup(opts, dataset=dataset)
        s = self.setup
        self.hyper = h = s.hyper
        if h.batch % self.dist.world != 0:
            raise ConfigError(f"batch {h.batch} must be divisible by the {self.dist.world} processes")
        self.batch_gpu = h.batch // self.dist.world
        self.G, self.D, self.G_ema = (net.to(self.device) for net in (s.G, s.D, s.G_ema))
        self.G.train()
        self.D.train()
        self.G_ema.eval()
        distributed.broadcast_module(self.G, self.dist)
        distributed.broadcast_module(self.D, self.dist)
        distributed.broadcast_module(self.G_ema, self.dist)
        self.methods = s.methods
        self.trainable = {"G": [p for p in self.G.parameters() if p.requires_grad],
                          "D": [p for p in self.D.parameters() if p.requires_grad]}

        # Seeds per rank, as in StyleGAN2-ADA; the data order is a separate pure function of the seed.
        seed = opts.seed * self.dist.world + self.dist.rank
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        from gantl.training.augment_setup import build_augment

        self.augment_pipe, self.ada = build_augment(opts, self.device, batch=h.batch, world=self.dist)
        self.loss = GANLoss(self.G, self.D, augment_pipe=self.augment_pipe, r1_gamma=h.gamma,
                            style_mixing_prob=h.style_mixing, pl_weight=h.pl_weight,
                            pl_batch_shrink=opts.pl_batch_shrink, pl_decay=opts.pl_decay,
                            extra_losses=self._method_losses,
                            on_real_logits=self.ada.observe if self.ada is not None else None,
                            loss_type=h.loss)
        self.phases = self._make_phases()

        from gantl.training.data_stream import BatchStream

        self.stream = BatchStream(s.dataset, batch=h.batch, seed=opts.seed, rank=self.dist.rank,
                                  world=self.dist.world, workers=opts.workers)
        self.cur_nimg = 0
        self.batch_idx = 0
        self.cur_tick = 0
        self.tick_start_nimg = 0
        self.last_snap_nimg = 0
        self.total_sec = 0.0
        self.best: float | None = None
        self.run_dir = run_dir
        self.resumed_from = resume_tag
        if resume_tag is not None:
            assert run_dir is not None
            self._load_snapshot(run_dir, resume_tag)
        from gantl.rundir import take_setup_log

        # what build_setup and this constructor logged, for log.txt once the run dir exists
        self._setup_records = take_setup_log()

    # -- construction ------------------------------------------------------------------------
    def _make_phases(self, carry: dict[str, torch.optim.Optimizer] | None = None) -> list[dict[str, Any]]:
        """Phases with one Adam per network over what trains now; ``carry``: old optimizers whose
        per-parameter state (moments, step counts) moves into the new ones (a schedule changed groups)."""
        h, opts = self.hyper, self.opts
        groups = compose_param_groups(self.methods, self.G, self.D, {"G": h.glr, "D": h.dlr})
        phases = []
        for key, reg_interval, betas, do_reg in (
                ("G", h.g_reg_interval, h.g_betas, h.pl_weight > 0 and hasattr(self.G, "mapping")),
                ("D", h.d_reg_interval, h.d_betas, h.gamma > 0)):
            if not self.trainable[key]:
                if carry is None:
                    log.warning("every %s parameter is frozen; the %s phases are skipped", key, key)
                continue
            ratio_lr, ratio_betas = lazy_optimizer_kwargs(1.0, tuple(betas), reg_interval)
            param_groups = [{"params": g["params"], "lr": g["lr"] * ratio_lr} for g in groups[key]]
            opt = torch.optim.Adam(param_groups, betas=ratio_betas, eps=1e-8)
            old = (carry or {}).get(key)
            if old is not None:
                for p in (p for g in param_groups for p in g["params"]):
                    if p in old.state:
                        opt.state[p] = old.state[p]
            phases.append({"name": f"{key}main", "net": key, "opt": opt, "interval": 1})
            if do_reg and reg_interval:
                interval = opts.pl_interval if key == "G" else opts.r1_interval
                phases.append({"name": f"{key}reg", "net": key, "opt": opt, "interval": interval})
        return phases

    def _reconcile_trainable(self) -> None:
        """After a method's schedule (or resumed state) changed what trains: new trainable lists and
        optimizer groups, keeping every surviving parameter's Adam state."""
        self.trainable = {"G": [p for p in self.G.parameters() if p.requires_grad],
                          "D": [p for p in self.D.parameters() if p.requires_grad]}
        self.phases = self._make_phases(carry=self.optimizers)

    def _method_hooks(self) -> None:
        info = StepInfo(G=self.G, D=self.D, cur_nimg=self.cur_nimg, batch_idx=self.batch_idx)
        changed = False
        for m in self.methods:
            changed = bool(m.on_step(info)) or changed
        if changed:
            self._reconcile_trainable()

    def _method_losses(self, step: StepContext) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for m in self.methods:
            out.update(m.losses(step))
        return out

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {p["net"]: p["opt"] for p in self.phases}

    # -- one step ----------------------------------------------------------------------------
    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        imgs, labels = self.stream.next()
        self.loss.real_idx = list(self.stream.last_indices)
        real = imgs.to(self.device, torch.float32) / 127.5 - 1
        real_c = labels.to(self.device) if self.setup.c_dim > 0 else None
        return real, real_c

    def step(self, tick: _TickStats) -> None:
        """One global minibatch: the methods' schedules, every due phase, then EMA and ADA."""
        self._method_hooks()
        real, real_c = self._real_batch()
        n = self.batch_gpu
        z_dim = self.G.z_dim
        all_z = torch.randn([len(self.phases) * n, z_dim], device=self.device)
        info = StepInfo(G=self.G, D=self.D, cur_nimg=self.cur_nimg, batch_idx=self.batch_idx)
        for m in self.methods:  # e.g. CDC's anchor neighbourhoods on every 4th step
            all_z = m.latents(info, all_z) if hasattr(m, "latents") else all_z
        all_z = all_z.split(n)
        if self.setup.c_dim > 0:
            idx = torch.randint(len(self.setup.dataset), [len(self.phases) * n])
            all_c = list(self.stream.labels_at(idx).to(self.device).split(n))
        else:
            all_c = [None] * len(self.phases)
        self.loss.cur_nimg, self.loss.batch_idx = self.cur_nimg, self.batch_idx
        for phase, z, c in zip(self.phases, all_z, all_c, strict=True):
            if self.batch_idx % phase["interval"] != 0:
                continue
            for key, params in self.trainable.items():
                for p in params:
                    p.requires_grad_(key == phase["net"])
            repeats = self.hyper.d_steps if phase["name"] == "Dmain" else 1
            for extra in range(repeats):
                if extra > 0:  # n_dis > 1: every further D update sees a new real batch and new latents
                    real, real_c = self._real_batch()
                    z = torch.randn_like(z)
                    if c is not None:
                        c = self.stream.labels_at(torch.randint(len(self.setup.dataset), [n])).to(self.device)
                phase["opt"].zero_grad(set_to_none=True)
                stats = self.loss.accumulate_gradients(phase["name"], real, real_c, z, c, gain=phase["interval"])
                params = self.trainable[phase["net"]]
                for p in params:
                    if p.grad is not None:
                        torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
                distributed.average_gradients(params, self.dist)
                phase["opt"].step()
                tick.add(stats)
        for params in self.trainable.values():
            for p in params:
                p.requires_grad_(True)

        h = self.hyper
        distributed.broadcast_module(self.G, self.dist, buffers_only=True)
        distributed.broadcast_module(self.D, self.dist, buffers_only=True)
        step_ema(self.G_ema, self.G, batch=h.batch, cur_nimg=self.cur_nimg, ema_kimg=h.ema_kimg,
                 ema_rampup=h.ema_rampup)
        d_updates = h.d_steps if any(p["name"] == "Dmain" for p in self.phases) else 1
        self.cur_nimg += h.batch * d_updates  # kimg counts the real images D has seen
        self.batch_idx += 1
        if self.ada is not None:
            self.ada.step()  # the tuner updates p every ada_interval minibatches

    # -- main loop ---------------------------------------------------------------------------
    def train(self) -> Path | None:
        """Train until ``opts.kimg``; returns the run dir (None on non-zero ranks).

        The main process holds the run dir's lock while it writes (a second writer is refused in one
        line), and a full disk or a lost write permission ends the run with a one-line StorageError
        saying what to free or fix and how to resume; snapshots already written stay intact.
        """
        from gantl.rundir import RunDirLock, attach_log_file, detach_log_file, make_run_dir, storage_error

        opts = self.opts
        main = self.dist.is_main
        log_handler, lock = None, None
        try:
            if main and self.run_dir is None:
                desc = run_description(opts, getattr(self.setup.dataset, "name", "data"))
                self.run_dir = make_run_dir(Path(opts.outdir), desc, opts)
            if main:
                lock = RunDirLock(self.run_dir).acquire()
                log_handler = attach_log_file(self.run_dir, held=self._setup_records)
                self._setup_records = []
            return self._train_logged(main)
        except OSError as exc:
            error = storage_error(exc, self.run_dir)
            if error is None:
                raise
            raise error from exc
        finally:
            if log_handler is not None:
                detach_log_file(log_handler)
            if lock is not None:
                lock.release()

    def _train_logged(self, main: bool) -> Path | None:
        """The body of :meth:`train`, once the run dir and its log file exist."""
        opts = self.opts
        grid_z, grid_c = fixed_latents(opts.grid_size ** 2, self.G.z_dim, self.setup.c_dim, opts.seed)
        if main and self.resumed_from is None:
            self._write_start(grid_z, grid_c)
        if main:
            log.info("training %s/%s at %d px, batch %d, %s kimg in %s", opts.model, opts.cfg, self.setup.resolution,
                     self.hyper.batch, opts.kimg, self.run_dir)
        writer = self._tensorboard() if main else None
        total_nimg = int(round(opts.kimg * 1000))
        tick_nimg = max(int(round(opts.tick_kimg * 1000)), 1)
        snap_nimg = int(round(opts.snap_kimg * 1000))
        tick = _TickStats()
        tick_start = time.time()
        progress = self._progress(total_nimg) if main and opts.progress else None
        try:
            done = self.cur_nimg >= total_nimg
            while not done:
                self.step(tick)
                done = self.cur_nimg >= total_nimg
                if progress is not None:
                    progress[0].update(progress[1], completed=self.cur_nimg)
                if not done and self.cur_nimg < self.tick_start_nimg + tick_nimg:
                    continue
                now = time.time()
                self._end_tick(tick, now - tick_start, writer)
                tick, tick_start = _TickStats(), time.time()
                if done or (snap_nimg > 0 and self.cur_nimg >= self.last_snap_nimg + snap_nimg):
                    self.last_snap_nimg = self.cur_nimg
                    with _Isolated():
                        self._snapshot(grid_z, grid_c)
                tick_start = time.time()
        finally:
            if progress is not None:
                progress[0].stop()
            if writer is not None:
                writer.close()
        distributed.barrier(self.dist)
        return self.run_dir

    def _progress(self, total_nimg: int) -> tuple[Any, Any]:
        from gantl.progress import make_progress

        progress = make_progress()
        progress.start()
        task = progress.add_task("training (images)", total=total_nimg, completed=self.cur_nimg)
        return progress, task

    def _tensorboard(self) -> Any:
        if not self.opts.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            log.warning("tensorboard is not installed; no tb/ scalars")
            return None
        return SummaryWriter(str(self.run_dir / "tb"))

    def _end_tick(self, tick: _TickStats, seconds: float, writer: Any) -> None:
        tick_nimg = self.cur_nimg - self.tick_start_nimg
        self.total_sec += seconds
        line: dict[str, Any] = {"tick": self.cur_tick, "kimg": self.cur_nimg / 1000, "nimg": self.cur_nimg}
        line.update(tick.means())
        if self.ada is not None:
            line.update(self.ada.stats())
        line.update({"sec_per_tick": seconds, "sec_per_kimg": seconds / max(tick_nimg / 1000, 1e-9),
                     "img_per_sec": tick_nimg / max(seconds, 1e-9), "total_sec": self.total_sec,
                     "timestamp": time.time()})
        self.cur_tick += 1
        self.tick_start_nimg = self.cur_nimg
        if not self.dist.is_main:
            return
        with open(self.run_dir / "stats.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        parts = [f"kimg {line['kimg']:.3f}"] + [f"{k} {v:.4g}" for k, v in line.items()
                                                  if k not in ("tick", "kimg", "nimg", "timestamp", "total_sec")]
        log.info("tick %d  %s", line["tick"], "  ".join(parts))
        if writer is not None:
            for k, v in line.items():
                if k not in ("tick", "kimg", "nimg", "timestamp"):
                    writer.add_scalar(f"train/{k}", v, global_step=self.cur_nimg)
            writer.flush()

    # -- files -------------------------------------------------------------------------------
    def _write_start(self, grid_z: torch.Tensor, grid_c: torch.Tensor | None) -> None:
        with _Isolated():
            ds = self.setup.dataset
            n = min(self.opts.grid_size ** 2, len(ds))
            gen = np.random.Generator(np.random.PCG64(self.opts.seed))
            idx = gen.choice(len(ds), size=n, replace=False)
            reals = torch.stack([ds[int(i)][0] for i in idx])
            save_grid(reals, self.run_dir / "reals.png", self.opts.grid_size)
            save_grid(generate_grid(self.G_ema, grid_z, grid_c), self.run_dir / "fakes_init.png", self.opts.grid_size)

    def metadata(self) -> dict[str, Any]:
        ds = self.setup.dataset
        return {"kimg": self.cur_nimg / 1000, "cur_nimg": self.cur_nimg,
                "dataset": getattr(ds, "name", None),
                "dataset_hash": ds.content_hash() if hasattr(ds, "content_hash") else None,
                # the label order G was trained with, so `gantl generate --class horse` can name classes
                "class_names": list(getattr(ds, "class_names", None) or []) if self.setup.c_dim else None,
                "options": to_dict(self.opts), "hyper": to_dict(self.hyper),
                "methods": [getattr(m, "spec", lambda m=m: m.name)() for m in self.methods],
                "source": str(self.setup.source.path) if self.setup.source is not None else None}

    def training_state(self) -> dict[str, Any]:
        return {
            "cur_nimg": self.cur_nimg, "batch_idx": self.batch_idx, "cur_tick": self.cur_tick,
            "tick_start_nimg": self.tick_start_nimg, "last_snap_nimg": self.last_snap_nimg,
            "total_sec": self.total_sec, "best": self.best,
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "rng": self._saved_rng,
            "augment": self.ada.state_dict() if self.ada is not None else None,
            "methods": [m.state_dict() for m in self.methods],
            "loss": self.loss.state_dict(),
            "data": self.stream.state_dict(),
            "world": self.dist.world,
        }

    def _snapshot(self, grid_z: torch.Tensor, grid_c: torch.Tensor | None) -> None:
        """Called inside _Isolated: the saved RNG state is the one training continues from."""
        self._saved_rng = _rng_state()
        if not self.dist.is_main:
            return
        from gantl.checkpoints.format import save_checkpoint, save_training_state

        tag = snapshot_tag(self.cur_nimg)
        save_grid(generate_grid(self.G_ema, grid_z, grid_c), self.run_dir / f"fakes{tag}.png", self.opts.grid_size)
        nets = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        # Both writes are atomic (temporary name + rename), and the state file, which resume looks for
        # second, is written last: a run killed mid-snapshot falls back to the previous snapshot.
        ckpt = save_checkpoint(self.run_dir / f"{SNAPSHOT_PREFIX}{tag}.safetensors", nets, self.metadata())
        save_training_state(self.run_dir / f"{STATE_PREFIX}{tag}.pt", self.training_state())
        log.info("snapshot %s", ckpt.name)
        self._run_metrics(ckpt)

    def _run_metrics(self, ckpt: Path) -> None:
        if not self.opts.metrics:
            return
        from gantl.training.metrics_hook import evaluate_snapshot

        results = evaluate_snapshot(self, ckpt)
        if results is None:
            return
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"kimg": self.cur_nimg / 1000, "snapshot": ckpt.name, "results": results}) + "\n")
        key = self.opts.best_metric
        if key and key in results and (self.best is None or results[key] < self.best):
            self.best = float(results[key])
            import shutil

            shutil.copyfile(ckpt, self.run_dir / "best.safetensors")
            log.info("best.safetensors <- %s (%s %.4g)", ckpt.name, key, self.best)

    def _load_snapshot(self, run_dir: Path, tag: str) -> None:
        from gantl.checkpoints.format import load_checkpoint, load_state, load_training_state

        ckpt = load_checkpoint(run_dir / f"{SNAPSHOT_PREFIX}{tag}.safetensors")
        for key, net in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            if key not in ckpt.tensors:
                raise CheckpointError(f"snapshot {tag} in {run_dir} has no {key}; it cannot be resumed")
            load_state(net, ckpt.tensors[key])
        state = load_training_state(run_dir / f"{STATE_PREFIX}{tag}.pt")
        if int(state.get("world", 1)) != self.dist.world:
            log.warning("run was trained with %s processes, resuming with %d: data order and RNG differ",
                        state.get("world"), self.dist.world)
        saved_methods = state.get("methods", [])
        if len(saved_methods) != len(self.methods):
            raise CheckpointError(f"snapshot {tag} in {run_dir} was trained with {len(saved_methods)} transfer "
                                  f"method(s), this run has {len(self.methods)}; resume with the run's config.toml")
        for m, ms in zip(self.methods, saved_methods, strict=True):
            m.load_state_dict(ms)
        self._reconcile_trainable()  # a method's state may have unfrozen parameters (schedules)
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        if self.ada is not None and state.get("augment") is not None:
            self.ada.load_state_dict(state["augment"])
        self.loss.load_state_dict(state["loss"])
        self.stream.load_state_dict(state["data"])
        for k in ("cur_nimg", "batch_idx", "cur_tick", "tick_start_nimg", "last_snap_nimg"):
            setattr(self, k, int(state[k]))
        self.total_sec = float(state.get("total_sec", 0.0))
        self.best = state.get("best")
        _set_rng_state(state["rng"])
        if self.dist.world > 1:  # the saved RNG is rank 0's; keep ranks distinct
            torch.manual_seed(int(torch.randint(0, 2**31, [])) + self.dist.rank)
        self._truncate_stats(run_dir)
        log.info("resumed %s from snapshot %s (kimg %.3f)", run_dir, tag, self.cur_nimg / 1000)

    def _truncate_stats(self, run_dir: Path) -> None:
        """Drop stats lines written after the snapshot (the killed run's lost ticks)."""
        if not self.dist.is_main:
            return
        for name in ("stats.jsonl", "metrics.jsonl"):
            path = run_dir / name
            if not path.is_file():
                continue
            keep = []
            for text in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError:
                    continue  # a line cut by the kill
                nimg = rec.get("nimg", int(round(rec.get("kimg", 0) * 1000)))
                if nimg <= self.cur_nimg:
                    keep.append(text)
            path.write_text("".join(t + "\n" for t in keep), encoding="utf-8")


# ---------------------------------------------------------------------------------------------- entry points


def train(opts: TrainOptions, *, dataset: Any = None) -> Path | None:
    """Train a new run; returns its directory."""
    trainer = Trainer(opts, dataset=dataset)
    try:
        return trainer.train()
    finally:
        distributed.shutdown(trainer.dist)


def resumed_trainer(run_dir: str | Path, overrides: list[str] | None = None) -> Trainer:
    """A Trainer holding ``run_dir``'s newest complete snapshot, ready to :meth:`Trainer.train` on.

    Separate from :func:`resume_run` so that a caller under torchrun (``gantl experiment run
    --nproc-per-run``) resumes exactly like ``gantl train --resume-run`` but decides itself how to
    leave the process group when a rank fails.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"{run_dir} is not a gantl run directory (no config.toml); pass runs/NNNNN-...")
    opts = load_toml(TrainOptions, run_dir / "config.toml", overrides or [])
    tag = latest_good_snapshot(run_dir)
    if tag is None:
        raise CheckpointError(f"{run_dir} has no complete, readable snapshot to resume from; start it again with "
                              f"`gantl train --config {run_dir / 'config.toml'}`")
    return Trainer(opts, run_dir=run_dir, resume_tag=tag)


def resume_run(run_dir: str | Path, overrides: list[str] | None = None) -> Path | None:
    """Continue ``run_dir`` from its newest complete snapshot (``--set kimg=...`` may extend it)."""
    trainer = resumed_trainer(run_dir, overrides)
    try:
        return trainer.train()
    finally:
        distributed.shutdown(trainer.dist)
