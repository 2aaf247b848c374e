"""Metric-vs-kimg curves as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

from gantl.reporting.runs import RunSummary


def plot_metric(runs: list[RunSummary], metric: str, out: Path, lower_is_better: bool = True) -> Path | None:
    """One line per run for ``metric``; None when no run recorded it."""
    series = [(r.name, r.curves[metric]) for r in runs if r.curves.get(metric)]
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=110)
    for name, points in series:
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.6, label=name)
    ax.set_xlabel("training progress (kimg = thousands of real images shown to D)")
    arrow = "lower is better" if lower_is_better else "higher is better"
    ax.set_ylabel(f"{metric} ({arrow})")
    ax.set_title(f"{metric} vs kimg")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
