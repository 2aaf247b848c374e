"""An experiment grid: a TOML file that names a set of ordinary ``gantl train`` runs.

::

    title = "F3: augmentation below 1k images"
    seeds = [0, 1]

    [base]                      # any gantl train option, the same keys as a run's config.toml
    data = "../shared/datasets/cifar10.zip:train/horse"
    resume = "cifar9-stylegan2-32"
    cfg = "cpu-tiny"
    kimg = 20

    [grid]                      # option -> values; the cells are the product, in this order
    aug = ["none", "ada", "diffaugment"]
    subset = [100, 250, 500, 1000]
    # a factor that is several options at once: a list of tables, each optionally named
    # init = [{name = "scratch", resume = ""}, {name = "G-only", fresh_d = true}, {name = "G+D"}]

    [eval]                      # measured on each run's final snapshot (or every one)
    metrics = ["fid", "kid"]
    num_gen = 1000
    real = "../shared/datasets/cifar10.zip:train/horse"   # default: each run's own training images

Why it is checked so hard up front: a grid is hours of CPU. Every cell's options are built and
validated (keys, types, choices, bounds, transfer-method spellings, metric names, that data and
sources exist) *before* the first step, and a bad one is refused with the key that is wrong —
finding a typo in cell 11 after cells 1-10 trained is the failure this module exists to prevent.

Every cell x seed gets a deterministic directory name (``003-aug=ada-subset=250-s1``) built from
its grid values, so running the same file again finds its runs: finished ones are skipped,
interrupted ones resume from their last snapshot (see :mod:`gantl.experiments.runner`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gantl.config import from_dict
from gantl.errors import ConfigError, GantlError
from gantl.training.options import TrainOptions

TOP_KEYS = ("title", "description", "seeds", "base", "grid", "eval")
# Options the experiment owns: where runs go, and the seed (from the top-level ``seeds``).
_OWNED = {"outdir": "the experiment puts every run under --out", "seed": "list the seeds in top-level seeds = [...]"}
# Options that change how a run is executed, not what it computes; they may differ on a re-run.
MACHINERY_KEYS = ("device", "workers", "threads", "progress", "tensorboard", "outdir", "desc", "kimg")
SNAPSHOT_CHOICES = ("final", "all")


@dataclass
class EvalSpec:
    """``[eval]``: which metrics each run gets, on how many images, against which real images."""

    metrics: list[str] = field(default_factory=list)
    num_gen: int | None = None  # generated images per evaluation (default: the number of real images)
    num_real: int | None = None  # real images (default: all)
    real: str | None = None  # default: each run's own training images (its data, classes and subset)
    snapshots: str = "final"  # "final" or "all" (every snapshot: metric-vs-kimg curves)
    extractor: str = "inception-v3-fid"  # feature space of fid/kid/pr/dc/mem
    options: dict[str, Any] = field(default_factory=dict)  # per-metric settings, e.g. kid_subset_size = 100


@dataclass
class RunSpec:
    """One cell x seed: its directory name, grid values and complete training options."""

    name: str
    cell: str  # cell label shared by the cell's seeds, e.g. "aug=ada-subset=250"
    index: int  # cell index in grid order
    values: dict[str, Any]  # grid key -> value of this cell
    seed: int
    opts: TrainOptions


@dataclass
class Grid:
    """A validated grid file."""

    path: Path | None
    title: str
    description: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    eval: EvalSpec
    text: str = ""  # the file as written, copied into the experiment dir

    @property
    def keys(self) -> list[str]:
        return list(self.grid)

    def cells(self) -> list[dict[str, Any]]:
        """The product of the grid values, first key slowest (one empty cell for an empty grid)."""
        return [dict(zip(self.grid, combo, strict=True)) for combo in itertools.product(*self.grid.values())]

    def runs(self, out_dir: str | Path) -> list[RunSpec]:
        """Every cell x seed, with options built and validated (outdir = ``out_dir``, progress off)."""
        out: list[RunSpec] = []
        for index, values in enumerate(self.cells()):
            cell = cell_label(values)
            for seed in self.seeds:
                opts = build_options(self.base, values, seed, out_dir)
                out.append(RunSpec(name=f"{index:03d}-{cell}-s{seed}", cell=cell, index=index, values=values,
                                   seed=seed, opts=opts))
        return out


# --------------------------------------------------------------------------------------------- naming


def value_label(value: Any) -> str:
    """A short, filesystem-safe label for a grid value (lists joined by '+', None/empty as 'none')."""
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, dict):  # an option bundle: its name, else its options
        named = value.get("name")
        return value_label(named if named is not None else
                           "+".join(f"{k}{value_label(v)}" for k, v in value.items()) or "base")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "+".join(value_label(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    if "/" in text or "\\" in text:  # a path: its last parts say which data it is
        text = "-".join(Path(text.replace(".zip:", "/").replace("\\", "/")).parts[-2:])
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "-", text.replace(":", "")).strip("-.") or "x"
    if len(slug) > 32:  # keep names short but distinct
        slug = slug[:25] + "-" + hashlib.sha256(str(value).encode()).hexdigest()[:6]
    return slug


def cell_label(values: dict[str, Any]) -> str:
    """``key=value-key=value`` for a cell (``base`` for a grid with no keys)."""
    return "-".join(f"{k}={value_label(v)}" for k, v in values.items()) or "base"


# --------------------------------------------------------------------------------------------- loading


def is_bundle_factor(values: Any) -> bool:
    """A grid key whose values are all tables: each table is a bundle of options set together
    (``init = [{name = "scratch"}, {name = "G only", resume = "...", fresh_d = true}]``) — for
    factors that are not one option, like TransferGAN's G/D-initialisation matrix."""
    return isinstance(values, list) and bool(values) and all(isinstance(v, dict) for v in values)


def build_options(base: dict[str, Any], values: dict[str, Any], seed: int, out_dir: str | Path) -> TrainOptions:
    """TrainOptions of one run: ``[base]``, then the cell's grid values, then seed/outdir/progress."""
    data = copy.deepcopy(base)
    for key, value in values.items():
        if isinstance(value, dict):  # an option bundle: its options, without its label
            data.update({k: copy.deepcopy(v) for k, v in value.items() if k != "name"})
        else:
            data[key] = copy.deepcopy(value)
    data.update(seed=seed, outdir=str(out_dir), progress=False)
    return from_dict(TrainOptions, data)


def _where(key: str, grid: dict[str, Any]) -> str:
    return f"[grid] {key}" if key in grid else f"[base] {key}"


def _check_options(base: dict[str, Any], grid: dict[str, list[Any]], seeds: list[int]) -> None:
    """Build every cell's options (so type, choice and cross-option checks run) and fail on the first."""
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    bundles = {f"[grid] {key}": {k: None for v in values for k in v if k != "name"}
               for key, values in grid.items() if is_bundle_factor(values)}
    plain = {k: v for k, v in grid.items() if not is_bundle_factor(v)}
    for section, table in (("[base]", base), ("[grid]", plain), *bundles.items()):
        for key in table:
            name = key.replace("-", "_")
            if name in _OWNED:
                raise ConfigError(f"{section} {key}: {_OWNED[name]}; remove it from {section}")
            if name not in fields:
                close = difflib.get_close_matches(name, sorted(fields), n=3)
                hint = f"did you mean {' or '.join(close)}?" if close else "see `gantl train --help`"
                raise ConfigError(f"unknown option '{key}' in {section} (not a gantl train option / config.toml "
                                  f"key); {hint}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"[grid] {key} must be a non-empty list of values, e.g. {key} = [..., ...]")
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"[grid] {key} lists a value twice; each value makes a cell")
    for values in itertools.product(*grid.values()) if grid else [()]:
        cell = dict(zip(grid, values, strict=True))
        try:
            build_options(base, cell, seeds[0], "experiment")
        except ConfigError as exc:
            key = next((k for k in [*grid, *base] if f"'{k}'" in exc.message or f"--{k}" in exc.message), None)
            where = f"{_where(key, grid)} (cell {cell_label(cell)})" if key else f"cell {cell_label(cell)}"
            raise ConfigError(f"{where}: {exc.message}") from None


def _check_references(grid: Grid, out_dir: str | Path) -> None:
    """What options cannot check alone: transfer-method spellings, data paths, sources, metric names."""
    from gantl.data.dataset import parse_source
    from gantl.metrics.features import extractor_names
    from gantl.metrics.registry import get_metric
    from gantl.transfer.base import parse_methods
    from gantl.transfer.source import resolve_source

    seen_methods: set[tuple[str, ...]] = set()
    seen_sources: set[str] = set()
    seen_data: set[str] = set()
    for run in grid.runs(out_dir):
        o = run.opts
        if tuple(o.methods) not in seen_methods:
            seen_methods.add(tuple(o.methods))
            try:
                parse_methods(o.methods)
            except ConfigError as exc:
                raise ConfigError(f"{_where('methods', grid.grid)} (cell {run.cell}): {exc.message}") from None
        if o.resume and o.resume not in seen_sources:
            seen_sources.add(o.resume)
            try:
                resolve_source(o.resume)
            except GantlError as exc:  # unknown zoo name (ConfigError), unreadable file (CheckpointError)
                raise ConfigError(f"{_where('resume', grid.grid)} (cell {run.cell}): {exc.message}") from None
        if o.data is None:
            raise ConfigError("[base] data is missing; every run needs a dataset (data = \"horses.zip\")")
        if o.data not in seen_data:
            seen_data.add(o.data)
            try:
                src = parse_source(o.data)
            except GantlError as exc:
                raise ConfigError(f"{_where('data', grid.grid)}: {exc.message}") from None
            if not Path(src.path).exists():
                raise ConfigError(f"{_where('data', grid.grid)}: '{o.data}' does not exist; paths are relative to "
                                  "the directory gantl runs in")
    for name in grid.eval.metrics:
        try:
            get_metric(name)
        except GantlError as exc:
            raise ConfigError(f"[eval] metrics: {exc.message}") from None
    if grid.eval.metrics and grid.eval.extractor not in extractor_names():
        raise ConfigError(f"[eval] extractor '{grid.eval.extractor}' is unknown; known: {', '.join(extractor_names())}")
    if grid.eval.real is not None:
        try:
            parse_source(grid.eval.real)
        except GantlError as exc:
            raise ConfigError(f"[eval] real: {exc.message}") from None


def parse_grid(data: dict[str, Any], *, path: Path | None = None, text: str = "") -> Grid:
    """A :class:`Grid` from the parsed TOML, checking everything except files and sources."""
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(f"unknown top-level key '{unknown[0]}' in the grid file; allowed: {', '.join(TOP_KEYS)}"
                          + ("; train options go under [base]" if unknown[0].replace("-", "_") in
                             {f.name for f in dataclasses.fields(TrainOptions)} else ""))
    for key in ("base", "grid", "eval"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"'{key}' must be a table: write [{key}] on its own line")
    base = dict(data.get("base", {}))
    grid = dict(data.get("grid", {}))
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError(f"seeds must be a non-empty list of non-negative integers, e.g. seeds = [0, 1]; "
                          f"got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {seeds} lists a seed twice")
    _check_options(base, grid, seeds)
    try:
        ev = from_dict(EvalSpec, dict(data.get("eval", {})), prefix="eval")
    except ConfigError as exc:
        raise ConfigError(exc.message.replace("config key 'eval.", "[eval] '").replace("'eval.", "'")) from None
    if ev.snapshots not in SNAPSHOT_CHOICES:
        raise ConfigError(f"[eval] snapshots must be one of {', '.join(SNAPSHOT_CHOICES)}, not '{ev.snapshots}'")
    for key in ("num_gen", "num_real"):
        value = getattr(ev, key)
        if value is not None and value < 2:
            raise ConfigError(f"[eval] {key} = {value} is too small; metrics need at least 2 images")
    title = str(data.get("title") or (path.stem if path else "experiment"))
    return Grid(path=path, title=title, description=str(data.get("description", "")), base=base, grid=grid,
                seeds=list(seeds), eval=ev, text=text)


def load_grid(path: str | Path, out_dir: str | Path = "experiment", *, check_files: bool = True) -> Grid:
    """Read and validate ``path``; with ``check_files`` also that data, sources and metrics exist."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid file '{path}' does not exist; pass a .toml file (see experiments/ for examples)")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"grid file '{path}' is not valid TOML: {exc}") from None
    grid = parse_grid(data, path=path, text=text)
    if check_files:
        _check_references(grid, out_dir)
    return grid
