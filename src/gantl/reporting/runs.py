"""Read what a run directory recorded into one plain summary the report renders.

A run dir (see DESIGN.md) holds ``config.toml``, ``stats.jsonl``, ``metrics.jsonl``,
``reals.png``, ``fakes_init.png`` and ``fakes<kimg>.png``. The report only *reads*
these files, so it works on finished runs, on runs still training, and on runs made
by older gantl versions; lines it cannot parse are skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gantl.errors import ConfigError

_FAKES_RE = re.compile(r"^fakes(\d+(?:\.\d+)?)\.png$")
_KIMG_IN_NAME = re.compile(r"(\d{3,})")
# Keys in a metrics line that are bookkeeping, not metric values.
_NOT_METRICS = {"kimg", "tick", "step", "timestamp", "time", "wall_s", "seconds", "num_gen", "num_real",
                "snapshot", "snapshot_pkl", "checkpoint", "metric", "value", "results", "num_samples", "samples"}


@dataclass
class RunSummary:
    """Everything the report shows about one run."""

    name: str
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # metric -> [(kimg, value)]
    last_kimg: float | None = None
    wall_s: float | None = None
    reals: Path | None = None
    fakes_init: Path | None = None
    fakes: list[tuple[float, Path]] = field(default_factory=list)  # sorted by kimg
    skipped_lines: int = 0

    @property
    def latest_fakes(self) -> Path | None:
        return self.fakes[-1][1] if self.fakes else None

    def final(self, metric: str) -> float | None:
        points = self.curves.get(metric)
        return points[-1][1] if points else None

    def best(self, metric: str) -> tuple[float, float] | None:
        """(kimg, value) of the lowest value: every gantl curve metric is lower-is-better except IS."""
        points = self.curves.get(metric)
        if not points:
            return None
        pick = max if metric.lower().startswith(("is", "precision", "recall", "density", "coverage")) else min
        return pick(points, key=lambda p: p[1])


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    rows, bad = [], 0
    if not path.is_file():
        return rows, bad
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(obj, dict):
            rows.append(obj)
        else:
            bad += 1
    return rows, bad


def _kimg_of(row: dict[str, Any]) -> float | None:
    for key in ("kimg", "cur_kimg"):
        if isinstance(row.get(key), (int, float)):
            return float(row[key])
    for key in ("snapshot", "snapshot_pkl", "checkpoint"):
        value = row.get(key)
        if isinstance(value, str) and (m := _KIMG_IN_NAME.search(Path(value).name)):
            return float(m.group(1))
    return None


def metric_points(row: dict[str, Any]) -> dict[str, float]:
    """Metric values in one metrics.jsonl line, whichever of the accepted shapes it has.

    Accepted: ``{"kimg": k, "fid": v, ...}``, ``{"kimg": k, "metric": "fid", "value": v}``
    and NVIDIA's ``{"results": {"fid50k_full": v}, "snapshot_pkl": "...-000200.pkl"}``.
    """
    out: dict[str, float] = {}
    if isinstance(row.get("results"), dict):
        for k, v in row["results"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = float(v)
    if isinstance(row.get("metric"), str) and isinstance(row.get("value"), (int, float)):
        out[row["metric"]] = float(row["value"])
    for k, v in row.items():
        if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def read_run(path: str | Path, name: str | None = None) -> RunSummary:
    """Summarise a run dir; raises a ConfigError only when ``path`` is not a folder."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"'{path}' is not a run directory; pass a folder made by `gantl train`")
    run = RunSummary(name=name or path.name, path=path)
    cfg = path / "config.toml"
    if cfg.is_file():
        try:
            run.config = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            run.skipped_lines += 1
    rows, bad = _read_jsonl(path / "metrics.jsonl")
    run.skipped_lines += bad
    for row in rows:
        kimg = _kimg_of(row)
        if kimg is None:
            run.skipped_lines += 1
            continue
        for metric, value in metric_points(row).items():
            run.curves.setdefault(metric, []).append((kimg, value))
    for points in run.curves.values():
        points.sort()
    stats, bad = _read_jsonl(path / "stats.jsonl")
    run.skipped_lines += bad
    for row in stats:
        kimg = _kimg_of(row)
        if kimg is not None:
            run.last_kimg = max(run.last_kimg or 0.0, kimg)
        for key in ("total_sec", "wall_s", "seconds", "timing/total_sec"):
            if isinstance(row.get(key), (int, float)):
                run.wall_s = float(row[key])
                break
    if run.last_kimg is None and run.curves:
        run.last_kimg = max(k for pts in run.curves.values() for k, _ in pts)
    if (path / "reals.png").is_file():
        run.reals = path / "reals.png"
    if (path / "fakes_init.png").is_file():
        run.fakes_init = path / "fakes_init.png"
    for p in path.iterdir():
        if m := _FAKES_RE.match(p.name):
            run.fakes.append((float(m.group(1)), p))
    run.fakes.sort()
    return run
