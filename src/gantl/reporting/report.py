"""The run report: ``report.html`` + ``report.md`` for one run dir or a set of runs.

One format everywhere — a single ``gantl train`` run, an experiment grid, and
``gantl demo`` — so a user reads every result the same way: a table first (the
answer), then the curves (how it got there), then the image grids (what it looks
like). Images are copied next to the report so the folder can be zipped or moved.
"""

from __future__ import annotations

import datetime as _dt
import html
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantl.reporting.plots import plot_metric
from gantl.reporting.runs import RunSummary, read_run

_HIGHER_IS_BETTER = ("is", "precision", "recall", "density", "coverage", "accuracy")

_METRIC_HELP = {
    "fid": "Fréchet Inception Distance between generated and real images (Inception-v3 features); lower is better.",
    "kid": "Kernel Inception Distance (unbiased, polynomial kernel); lower is better and less biased than FID "
           "for small sample counts.",
}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:24px auto;
padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6em 0} th,td{border:1px solid #ccc;padding:6px 10px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
td.best{font-weight:bold;background:#e8f6e8}
.grid{display:flex;flex-wrap:wrap;gap:18px} figure{margin:0} figcaption{font-size:.9em;color:#444;max-width:420px}
img.samples{width:400px;image-rendering:pixelated;border:1px solid #ccc}
img.curve{width:540px;border:1px solid #eee}
.note{background:#fafafa;border-left:4px solid #999;padding:8px 12px;font-size:.93em}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
"""


@dataclass
class ReportInput:
    """What to show besides the run dirs themselves.

    ``final`` holds end-of-run evaluations per run name (e.g. FID on all real images),
    shown as the main table; ``notes`` are sentences explaining how numbers were made.
    """

    title: str = "gantl run report"
    subtitle: str = ""
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    final_caption: str = ""
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _higher_is_better(metric: str) -> bool:
    return metric.lower().startswith(_HIGHER_IS_BETTER)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) < 0.01:
        return f"{value:.5f}"
    if abs(value) < 100:
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return f"{value:.1f}"


def _best_names(table: dict[str, dict[str, float]], metric: str) -> set[str]:
    values = {name: row[metric] for name, row in table.items() if row.get(metric) is not None}
    if len(values) < 2:
        return set()
    target = (max if _higher_is_better(metric) else min)(values.values())
    return {n for n, v in values.items() if v == target}


def _describe(run: RunSummary) -> str:
    """One-line description of a run from its config (source, methods, data) when recorded."""
    cfg = run.config
    parts = []
    for key in ("data", "dataset"):
        if isinstance(cfg.get(key), str):
            parts.append(f"data {cfg[key]}")
    for key in ("resume", "source"):
        if isinstance(cfg.get(key), str) and cfg[key]:
            parts.append(f"from {cfg[key]}")
    transfer = cfg.get("transfer")
    if isinstance(transfer, dict) and transfer.get("methods"):
        parts.append("methods " + "+".join(map(str, transfer["methods"])))
    elif isinstance(cfg.get("methods"), list) and cfg["methods"]:
        parts.append("methods " + "+".join(map(str, cfg["methods"])))
    return ", ".join(parts)


def _copy_asset(src: Path | None, assets: Path, name: str) -> str | None:
    if src is None or not src.is_file():
        return None
    assets.mkdir(parents=True, exist_ok=True)
    dest = assets / name
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    return f"{assets.name}/{name}"


def write_report(runs: Sequence[str | Path | RunSummary], out_dir: str | Path,
                 info: ReportInput | None = None, names: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` for ``runs`` into ``out_dir``; return both paths.

    ``runs`` are run dirs (or summaries already read); ``names`` overrides their labels.
    Call it with one run dir (``write_report([run_dir], run_dir)``) at the end of
    ``gantl train``, or with several to compare them.
    """
    info = info or ReportInput()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    assets = out_dir / "assets"
    summaries = []
    for i, r in enumerate(runs):
        s = r if isinstance(r, RunSummary) else read_run(r)
        if names is not None:
            s.name = names[i]
        summaries.append(s)

    metrics = sorted({m for s in summaries for m in s.curves})
    curves = {}
    for m in metrics:
        png = plot_metric(summaries, m, assets / f"curve-{m}.png", lower_is_better=not _higher_is_better(m))
        if png is not None:
            curves[m] = f"{assets.name}/{png.name}"

    grids = []
    for s in summaries:
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in s.name)
        latest_kimg = s.fakes[-1][0] if s.fakes else None
        grids.append({
            "run": s.name,
            "init": _copy_asset(s.fakes_init, assets, f"{slug}-fakes-init.png"),
            "latest": _copy_asset(s.latest_fakes, assets, f"{slug}-fakes-latest.png"),
            "latest_kimg": latest_kimg,
        })
    reals = next((s.reals for s in summaries if s.reals is not None), None)
    reals_rel = _copy_asset(reals, assets, "reals.png")

    # The run table: last and best recorded value of each curve metric.
    run_table = {s.name: {f"{m} (last)": s.final(m) for m in metrics} for s in summaries}
    for s in summaries:
        run_table[s.name]["kimg trained"] = s.last_kimg
        if s.wall_s is not None:
            run_table[s.name]["wall time (s)"] = s.wall_s

    html_path = out_dir / "report.html"
    md_path = out_dir / "report.md"
    html_path.write_text(_render_html(info, summaries, metrics, curves, grids, reals_rel, run_table),
                         encoding="utf-8")
    md_path.write_text(_render_md(info, summaries, metrics, curves, grids, reals_rel, run_table), encoding="utf-8")
    return html_path, md_path


def _table_html(table: dict[str, dict[str, float]], columns: list[str]) -> str:
    rows = ["<table><tr><th>run</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"]
    best = {c: _best_names(table, c) for c in columns if c not in ("kimg trained", "wall time (s)")}
    for name, row in table.items():
        cells = []
        for c in columns:
            cls = ' class="best"' if name in best.get(c, ()) else ""
            cells.append(f"<td{cls}>{_fmt(row.get(c))}</td>")
        rows.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _table_md(table: dict[str, dict[str, float]], columns: list[str]) -> str:
    best = {c: _best_names(table, c) for c in columns if c not in ("kimg trained", "wall time (s)")}
    lines = ["| run | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in table.items():
        cells = []
        for c in columns:
            text = _fmt(row.get(c))
            cells.append(f"**{text}**" if name in best.get(c, ()) else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _columns(table: dict[str, dict[str, float]]) -> list[str]:
    cols: list[str] = []
    for row in table.values():
        for c in row:
            if c not in cols:
                cols.append(c)
    return cols


def _metric_notes(metrics: list[str]) -> list[str]:
    out = []
    for m in metrics:
        base = m.split(" ")[0].lower()
        for key, text in _METRIC_HELP.items():
            if base.startswith(key) and text not in out:
                out.append(f"{key.upper()}: {text}")
    return out


def _render_html(info: ReportInput, runs: list[RunSummary], metrics: list[str], curves: dict[str, str],
                 grids: list[dict[str, Any]], reals: str | None, run_table: dict[str, dict[str, float]]) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(info.title)}</title>",
         f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(info.title)}</h1>",
         f"<p class='sub'>{html.escape(info.subtitle)} Generated {now}.</p>"]
    if info.final:
        cols = _columns(info.final)
        h.append("<h2>Result</h2>")
        if info.final_caption:
            h.append(f"<p>{html.escape(info.final_caption)}</p>")
        h.append(_table_html(info.final, cols))
        h.append("<p class='sub'>Best value per column in <b>bold green</b>.</p>")
    h.append("<h2>Runs</h2><ul>")
    for s in runs:
        desc = _describe(s)
        h.append(f"<li><b>{html.escape(s.name)}</b> — <code>{html.escape(str(s.path))}</code>"
                 + (f" ({html.escape(desc)})" if desc else "") + "</li>")
    h.append("</ul>")
    if any(run_table[n] for n in run_table):
        h.append("<p>Values recorded during training (smaller sample counts than the result table):</p>")
        h.append(_table_html(run_table, _columns(run_table)))
    if curves:
        h.append("<h2>Metrics during training</h2><div class='grid'>")
        for m, rel in curves.items():
            h.append(f"<figure><img class='curve' src='{rel}' alt='{html.escape(m)} vs kimg'></figure>")
        h.append("</div>")
    h.append("<h2>Samples</h2>")
    h.append("<p>Each grid shows the same fixed latents through G_ema, so before/after panels are comparable.</p>")
    if reals:
        h.append(f"<div class='grid'><figure><img class='samples' src='{reals}' alt='real images'>"
                 "<figcaption>Real training images</figcaption></figure></div>")
    for g in grids:
        h.append(f"<h3>{html.escape(g['run'])}</h3><div class='grid'>")
        if g["init"]:
            h.append(f"<figure><img class='samples' src='{g['init']}' alt='{html.escape(g['run'])} at start'>"
                     "<figcaption>before training (kimg 0)</figcaption></figure>")
        if g["latest"]:
            h.append(f"<figure><img class='samples' src='{g['latest']}' alt='{html.escape(g['run'])} latest'>"
                     f"<figcaption>after {_fmt(g['latest_kimg'])} kimg</figcaption></figure>")
        h.append("</div>")
    notes = info.notes + _metric_notes(metrics + [c for row in info.final.values() for c in row])
    if notes:
        h.append("<h2>How these numbers were made</h2><div class='note'><ul>")
        h.extend(f"<li>{html.escape(n)}</li>" for n in notes)
        h.append("</ul></div>")
    skipped = sum(s.skipped_lines for s in runs)
    if skipped:
        h.append(f"<p class='sub'>{skipped} unreadable log line(s) were skipped.</p>")
    h.append("</body></html>")
    return "\n".join(h)


def _render_md(info: ReportInput, runs: list[RunSummary], metrics: list[str], curves: dict[str, str],
               grids: list[dict[str, Any]], reals: str | None, run_table: dict[str, dict[str, float]]) -> str:
    md = [f"# {info.title}", ""]
    if info.subtitle:
        md += [info.subtitle, ""]
    if info.final:
        md += ["## Result", ""]
        if info.final_caption:
            md += [info.final_caption, ""]
        md += [_table_md(info.final, _columns(info.final)), "", "Best value per column in **bold**.", ""]
    md += ["## Runs", ""]
    for s in runs:
        desc = _describe(s)
        md.append(f"- **{s.name}** — `{s.path}`" + (f" ({desc})" if desc else ""))
    md.append("")
    if any(run_table[n] for n in run_table):
        md += ["Values recorded during training:", "", _table_md(run_table, _columns(run_table)), ""]
    if curves:
        md += ["## Metrics during training", ""]
        md += [f"![{m} vs kimg]({rel})" for m, rel in curves.items()]
        md.append("")
    md += ["## Samples", ""]
    if reals:
        md += [f"Real training images:\n\n![reals]({reals})", ""]
    for g in grids:
        md += [f"### {g['run']}", ""]
        if g["init"]:
            md += [f"Before training (kimg 0):\n\n![{g['run']} init]({g['init']})", ""]
        if g["latest"]:
            md += [f"After {_fmt(g['latest_kimg'])} kimg:\n\n![{g['run']} latest]({g['latest']})", ""]
    notes = info.notes + _metric_notes(metrics + [c for row in info.final.values() for c in row])
    if notes:
        md += ["## How these numbers were made", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(md)
