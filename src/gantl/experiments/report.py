"""`gantl experiment report DIR`: the tables, plots and HTML page of an experiment grid.

It only reads what the runs wrote (``experiment.json``, each run's ``config.toml``,
``stats.jsonl``, ``metrics.jsonl``, ``eval.jsonl`` and ``fakes*.png``), so it works on a finished
experiment, on one still running, and again after more seeds were added. Output, in ``DIR``:

* ``results.csv`` / ``results.md`` — one row per run: grid values, seed, kimg, wall_s, each metric
  (the run's latest ``[eval]`` result);
* ``summary.md`` + the summary table in the page — one row per cell, mean ± std over seeds (the
  sample standard deviation; "–" for a single seed, since one run says nothing about spread);
* ``plots/`` — each metric vs kimg (one line per cell, mean over seeds); each metric vs dataset size
  when the grid varies ``subset``; a heat-map of the cell means when the grid has two factors (the
  G/D-initialisation matrix of TransferGAN is one);
* ``report.html`` — all of that plus the latest sample grid of every cell (first seed), with the
  images copied beside it so the folder can be moved.
"""

from __future__ import annotations

import csv
import html
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantl.errors import ConfigError
from gantl.experiments.runner import EXPERIMENT_FILE, read_eval
from gantl.reporting.runs import read_run

_HIGHER_IS_BETTER = ("is_mean", "precision", "recall", "density", "coverage", "cls")
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:24px auto;padding:0 16px;
color:#222;line-height:1.45} h1{font-size:1.6em;margin-bottom:.2em}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0;font-size:.93em} th,td{border:1px solid #ccc;padding:5px 9px;
text-align:right} th{background:#f3f3f3} td.k,th.k{text-align:left} td.best{font-weight:bold;background:#e8f6e8}
.grid{display:flex;flex-wrap:wrap;gap:18px} figure{margin:0} figcaption{font-size:.88em;color:#444;max-width:300px}
img.samples{width:280px;image-rendering:pixelated;border:1px solid #ccc} img.plot{width:560px;border:1px solid #eee}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px} .note{background:#fafafa;border-left:4px solid #999;
padding:8px 12px;font-size:.93em}
"""


def higher_is_better(metric: str) -> bool:
    return metric.lower().startswith(_HIGHER_IS_BETTER)


@dataclass
class RunRow:
    """One run of the experiment as the report sees it."""

    name: str
    cell: str
    index: int
    values: dict[str, Any]
    seed: int
    path: Path
    target_kimg: float | None = None
    kimg: float | None = None
    wall_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # latest [eval] result
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # metric -> [(kimg, value)]
    fakes: Path | None = None
    reals: Path | None = None
    status: str = "missing"


@dataclass
class Experiment:
    """Everything the report renders."""

    path: Path
    title: str
    description: str
    keys: list[str]
    seeds: list[int]
    eval: dict[str, Any]
    rows: list[RunRow]

    @property
    def metrics(self) -> list[str]:
        names: list[str] = []
        for r in self.rows:
            for k in [*r.metrics, *r.curves]:
                if k not in names:
                    names.append(k)
        return names

    def cells(self) -> list[tuple[str, list[RunRow]]]:
        out: dict[str, list[RunRow]] = {}
        for r in sorted(self.rows, key=lambda r: (r.index, r.seed)):
            out.setdefault(r.cell, []).append(r)
        return list(out.items())


def load_experiment(path: str | Path) -> Experiment:
    """Read ``experiment.json`` and every run dir it lists (missing runs become 'missing' rows)."""
    path = Path(path)
    manifest_path = path / EXPERIMENT_FILE
    if not manifest_path.is_file():
        raise ConfigError(f"{path} is not an experiment dir (no {EXPERIMENT_FILE}); pass the --out of "
                          "`gantl experiment run`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{manifest_path} is not valid JSON ({exc}); run `gantl experiment run` again") from None
    rows = []
    for entry in manifest.get("runs", []):
        run_dir = path / entry["name"]
        row = RunRow(name=entry["name"], cell=entry["cell"], index=int(entry["index"]), values=entry["values"],
                     seed=int(entry["seed"]), path=run_dir, target_kimg=entry.get("kimg"))
        if run_dir.is_dir():
            _fill(row, run_dir)
        rows.append(row)
    return Experiment(path=path, title=manifest.get("title", path.name), description=manifest.get("description", ""),
                      keys=list(manifest.get("keys", [])), seeds=list(manifest.get("seeds", [])),
                      eval=dict(manifest.get("eval", {})), rows=rows)


def _fill(row: RunRow, run_dir: Path) -> None:
    summary = read_run(run_dir)
    row.kimg, row.wall_s = summary.last_kimg, summary.wall_s
    row.fakes, row.reals = summary.latest_fakes, summary.reals
    # curves: what the loop measured at snapshots (metrics.jsonl), then [eval] results on top
    row.curves = {m: list(points) for m, points in summary.curves.items()}
    evals = sorted(read_eval(run_dir), key=lambda r: r.get("kimg", 0))
    for rec in evals:
        kimg = float(rec.get("kimg", 0))
        for k, v in (rec.get("results") or {}).items():
            if isinstance(v, (int, float)):
                points = [p for p in row.curves.get(k, []) if p[0] != kimg]
                row.curves[k] = sorted([*points, (kimg, float(v))])
    if evals:
        row.metrics = {k: float(v) for k, v in (evals[-1].get("results") or {}).items()
                       if isinstance(v, (int, float))}
    done = row.target_kimg is not None and row.kimg is not None and row.kimg + 1e-9 >= row.target_kimg
    row.status = "error" if (run_dir / "error.txt").is_file() else ("done" if done else "incomplete")


# --------------------------------------------------------------------------------------------- tables


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    if math.isnan(value):
        return "nan"
    if abs(value) < 0.01 or abs(value) >= 1e5:
        return f"{value:.3g}" if abs(value) >= 1e5 else f"{value:.5f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.4f}"


def _value_text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, dict):  # an option bundle from the grid
        return str(value.get("name") or ", ".join(f"{k}={_value_text(v)}" for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value))
    return str(value)


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None for fewer than 2 values)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def results_table(exp: Experiment) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of results.csv: grid values, seed, kimg, wall_s, metrics, status, run."""
    metrics = exp.metrics
    header = [*exp.keys, "seed", "kimg", "wall_s", *metrics, "status", "run"]
    rows = []
    for r in sorted(exp.rows, key=lambda r: (r.index, r.seed)):
        rows.append([*(_value_text(r.values.get(k)) for k in exp.keys), r.seed, r.kimg,
                     None if r.wall_s is None else round(r.wall_s, 2), *(r.metrics.get(m) for m in metrics),
                     r.status, r.name])
    return header, rows


def summary_table(exp: Experiment) -> tuple[list[str], list[list[str]], dict[str, dict[str, float | None]]]:
    """Per cell: grid values, seeds with results, kimg, then 'mean ± std' per metric; also the means."""
    metrics = [m for m in exp.metrics if any(m in r.metrics for r in exp.rows)]
    header = [*exp.keys, "seeds", "kimg", "wall_s", *metrics]
    rows, means = [], {}
    for cell, runs in exp.cells():
        measured = [r for r in runs if r.metrics]
        row = [*(_value_text(runs[0].values.get(k)) for k in exp.keys), f"{len(measured)}/{len(runs)}",
               _fmt(mean_std([r.kimg for r in runs if r.kimg is not None])[0]),
               _fmt(mean_std([r.wall_s for r in runs if r.wall_s is not None])[0])]
        means[cell] = {}
        for m in metrics:
            mean, std = mean_std([r.metrics[m] for r in runs if m in r.metrics])
            means[cell][m] = mean
            row.append("–" if mean is None else (_fmt(mean) if std is None else f"{_fmt(mean)} ± {_fmt(std)}"))
        rows.append(row)
    return header, rows, means


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[Any]], n_keys: int, best: dict[int, set[int]] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th class='{'k' if i < n_keys else ''}'>{html.escape(h)}</th>"
                                   for i, h in enumerate(header)) + "</tr>"]
    for ri, row in enumerate(rows):
        cells = []
        for ci, c in enumerate(row):
            cls = "k" if ci < n_keys else ("best" if best and ri in best.get(ci, set()) else "")
            cells.append(f"<td class='{cls}'>{html.escape(c if isinstance(c, str) else _fmt(c))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_vs_kimg(exp: Experiment, metric: str, out: Path) -> Path | None:
    """One line per cell: the metric's mean over seeds at each kimg where a seed measured it."""
    series = []
    for cell, runs in exp.cells():
        by_kimg: dict[float, list[float]] = {}
        for r in runs:
            for k, v in r.curves.get(metric, []):
                by_kimg.setdefault(k, []).append(v)
        if by_kimg:
            xs = sorted(by_kimg)
            series.append((cell, xs, [sum(by_kimg[x]) / len(by_kimg[x]) for x in xs]))
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for cell, xs, ys in series:
        ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.5, label=cell)
    ax.set_xlabel("kimg (thousands of real images shown to D)")
    ax.set_ylabel(f"{metric} ({'higher' if higher_is_better(metric) else 'lower'} is better)")
    ax.set_title(f"{metric} vs kimg, mean over seeds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, plt, out)


def plot_vs_size(exp: Experiment, metric: str, out: Path, size_key: str = "subset") -> Path | None:
    """Metric (mean ± std over seeds) vs the dataset size, one line per combination of the other factors."""
    if size_key not in exp.keys:
        return None
    others = [k for k in exp.keys if k != size_key]
    lines: dict[str, dict[float, list[float]]] = {}
    for r in exp.rows:
        size = r.values.get(size_key)
        if metric not in r.metrics or not isinstance(size, (int, float)):
            continue
        label = ", ".join(f"{k}={_value_text(r.values.get(k))}" for k in others) or metric
        lines.setdefault(label, {}).setdefault(float(size), []).append(r.metrics[metric])
    if not any(len(points) >= 2 for points in lines.values()):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for label, points in lines.items():
        xs = sorted(points)
        stats = [mean_std(points[x]) for x in xs]
        ax.errorbar(xs, [m for m, _ in stats], yerr=[s or 0.0 for _, s in stats], marker="o", markersize=4,
                    capsize=3, linewidth=1.5, label=label)
    ax.set_xscale("log")
    ax.set_xlabel(f"training images ({size_key})")
    ax.set_ylabel(f"{metric} ({'higher' if higher_is_better(metric) else 'lower'} is better)")
    ax.set_title(f"{metric} vs dataset size (mean ± std over seeds)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, plt, out)


def plot_heatmap(exp: Experiment, metric: str, out: Path) -> Path | None:
    """Cell means of a two-factor grid as a heat-map (rows: first key, columns: second)."""
    if len(exp.keys) != 2:
        return None
    k_row, k_col = exp.keys
    row_vals = list(dict.fromkeys(_value_text(r.values.get(k_row)) for r in sorted(exp.rows, key=lambda r: r.index)))
    col_vals = list(dict.fromkeys(_value_text(r.values.get(k_col)) for r in sorted(exp.rows, key=lambda r: r.index)))
    if len(row_vals) < 2 and len(col_vals) < 2:
        return None
    grid = [[[] for _ in col_vals] for _ in row_vals]
    for r in exp.rows:
        if metric in r.metrics:
            i = row_vals.index(_value_text(r.values.get(k_row)))
            j = col_vals.index(_value_text(r.values.get(k_col)))
            grid[i][j].append(r.metrics[metric])
    if not any(cell for line in grid for cell in line):
        return None
    import numpy as np

    means = np.array([[np.mean(c) if c else np.nan for c in line] for line in grid], dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(col_vals), 1.4 + 0.9 * len(row_vals)), dpi=110)
    cmap = "viridis" if higher_is_better(metric) else "viridis_r"  # brighter = better either way
    im = ax.imshow(means, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(col_vals)), labels=col_vals, fontsize=8)
    ax.set_yticks(range(len(row_vals)), labels=row_vals, fontsize=8)
    ax.set_xlabel(k_col)
    ax.set_ylabel(k_row)
    finite = means[np.isfinite(means)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(len(row_vals)):
        for j in range(len(col_vals)):
            if np.isfinite(means[i, j]):
                good = (means[i, j] > mid) == higher_is_better(metric)
                ax.text(j, i, _fmt(float(means[i, j])), ha="center", va="center", fontsize=8,
                        color="black" if good else "white")
    ax.set_title(f"{metric}, mean over seeds ({'higher' if higher_is_better(metric) else 'lower'} is better)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, plt, out)


def _save(fig: Any, plt: Any, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------- writing


@dataclass
class ReportFiles:
    csv: Path
    md: Path
    summary: Path
    html: Path
    plots: list[Path]


def _best_rows(rows: list[list[str]], header: list[str], metrics: list[str], means: dict[str, dict[str, float | None]],
               cells: list[str]) -> dict[int, set[int]]:
    best: dict[int, set[int]] = {}
    for m in metrics:
        values = {i: means[c].get(m) for i, c in enumerate(cells) if means[c].get(m) is not None}
        if len(values) < 2:
            continue
        target = (max if higher_is_better(m) else min)(values.values())
        best[header.index(m)] = {i for i, v in values.items() if v == target}
    return best


def write_report(path: str | Path) -> ReportFiles:
    """Write results.csv, results.md, summary.md, plots/ and report.html into the experiment dir."""
    exp = load_experiment(path)
    out = exp.path
    header, rows = results_table(exp)
    csv_path = out / "results.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([["" if c is None else c for c in row] for row in rows])
    s_header, s_rows, means = summary_table(exp)
    md_path = out / "results.md"
    md_path.write_text(f"# {exp.title}\n\n" + (f"{exp.description}\n\n" if exp.description else "")
                       + "## Per cell (mean ± std over seeds)\n\n" + _md_table(s_header, s_rows)
                       + "\n\n## Per run\n\n" + _md_table(header, rows) + "\n", encoding="utf-8")
    summary_path = out / "summary.md"
    summary_path.write_text(_md_table(s_header, s_rows) + "\n", encoding="utf-8")

    plots_dir = out / "plots"
    plots: list[tuple[str, Path]] = []
    for m in exp.metrics:
        for kind, fn in (("vs kimg", plot_vs_kimg), ("vs dataset size", plot_vs_size), ("heat-map", plot_heatmap)):
            slug = kind.replace(" ", "-")
            p = fn(exp, m, plots_dir / f"{m}-{slug}.png")
            if p is not None:
                plots.append((f"{m} {kind}", p))
    html_path = out / "report.html"
    html_path.write_text(_render_html(exp, header, rows, s_header, s_rows, means, plots), encoding="utf-8")
    return ReportFiles(csv=csv_path, md=md_path, summary=summary_path, html=html_path, plots=[p for _, p in plots])


def _copy(src: Path | None, assets: Path, name: str) -> str | None:
    if src is None or not src.is_file():
        return None
    assets.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, assets / name)
    return f"{assets.name}/{name}"


def _uses_features(metrics: list[str]) -> bool:
    """Whether any metric reads the feature extractor (fid, kid, pr, ...), so naming it means something."""
    from gantl.metrics.registry import get_metric

    try:
        return any(get_metric(m).real_features or get_metric(m).fake_features for m in metrics)
    except Exception:  # noqa: BLE001 - a metric registered only in the process that ran it
        return True


def _render_html(exp: Experiment, header: list[str], rows: list[list[Any]], s_header: list[str],
                 s_rows: list[list[str]], means: dict[str, dict[str, float | None]],
                 plots: list[tuple[str, Path]]) -> str:
    n_keys = len(exp.keys)
    cells = [c for c, _ in exp.cells()]
    metrics = [m for m in s_header[n_keys + 3:]]
    status = {s: sum(r.status == s for r in exp.rows) for s in ("done", "incomplete", "error", "missing")}
    ev = exp.eval
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(exp.title)}</title>",
         f"<style>{_CSS}</style></head><body><h1>{html.escape(exp.title)}</h1>"]
    if exp.description:
        h.append(f"<p>{html.escape(exp.description)}</p>")
    h.append(f"<p class='sub'>{len(cells)} cell(s) x {len(exp.seeds)} seed(s); runs: "
             + ", ".join(f"{n} {s}" for s, n in status.items() if n) + f". Folder <code>{html.escape(str(exp.path))}"
             "</code>.</p>")
    if ev.get("metrics"):
        real = ev.get("real") or "each run's own training images"
        h.append(f"<p class='note'>Metrics {html.escape(', '.join(ev['metrics']))} on the "
                 f"{html.escape(str(ev.get('snapshots', 'final')))} snapshot(s), "
                 f"{html.escape(str(ev.get('num_gen') or 'as many as real'))} generated images vs "
                 f"{html.escape(str(real))}" + (f"; feature space {html.escape(str(ev.get('extractor')))}"
                                                if _uses_features(ev["metrics"]) else "") + ".</p>")
    h.append("<h2>Per cell: mean ± std over seeds</h2>")
    h.append(_html_table(s_header, s_rows, n_keys, _best_rows(s_rows, s_header, metrics, means, cells)))
    h.append("<p class='sub'>Best cell mean per metric in <b>bold green</b>; std is the sample standard deviation "
             "over seeds (– for one seed).</p>")
    if plots:
        h.append("<h2>Plots</h2><div class='grid'>")
        for label, p in plots:
            rel = f"{p.parent.name}/{p.name}"
            h.append(f"<figure><img class='plot' src='{html.escape(rel)}' alt='{html.escape(label)}'>"
                     f"<figcaption>{html.escape(label)}</figcaption></figure>")
        h.append("</div>")
    h.append("<h2>Samples per cell</h2><p>Latest snapshot grid of each cell's first seed (G_ema, the run's fixed "
             "latents).</p><div class='grid'>")
    assets = exp.path / "assets"
    reals = next((r.reals for r in exp.rows if r.reals is not None), None)
    if (rel := _copy(reals, assets, "reals.png")) is not None:
        h.append(f"<figure><img class='samples' src='{rel}' alt='real images'><figcaption>real training images "
                 "(first run)</figcaption></figure>")
    for cell, runs in exp.cells():
        first = next((r for r in runs if r.fakes is not None), None)
        rel = _copy(first.fakes if first else None, assets, f"{cell}.png")
        if rel is None:
            h.append(f"<figure><figcaption>{html.escape(cell)}: no samples yet</figcaption></figure>")
            continue
        h.append(f"<figure><img class='samples' src='{html.escape(rel)}' alt='{html.escape(cell)}'>"
                 f"<figcaption>{html.escape(cell)} (seed {first.seed}, kimg {_fmt(first.kimg)})</figcaption></figure>")
    h.append("</div><h2>Per run</h2>")
    h.append(_html_table(header, [[c if isinstance(c, str) else _fmt(c) for c in row] for row in rows], n_keys))
    h.append("<p class='sub'>Also in <code>results.csv</code> and <code>results.md</code>.</p></body></html>")
    return "\n".join(h)
