"""Evaluate every snapshot of a training run and plot each metric against kimg."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from gantl.errors import MetricError

SNAPSHOT_GLOB = "snapshot-*.safetensors"
RESULTS_FILE = "metrics-eval.jsonl"


def snapshot_kimg(path: Path) -> float:
    """kimg from the checkpoint metadata, else from the digits in the file name."""
    try:
        from gantl.checkpoints.format import read_header

        meta, _ = read_header(path)
        if meta and meta.get("kimg") is not None:
            return float(meta["kimg"])
    except Exception:  # noqa: BLE001 - fall back to the name
        pass
    digits = re.findall(r"\d+(?:\.\d+)?", path.stem)
    return float(digits[-1]) if digits else float("nan")


def list_snapshots(run_dir: Path) -> list[tuple[float, Path]]:
    snaps = sorted(((snapshot_kimg(p), p) for p in Path(run_dir).glob(SNAPSHOT_GLOB)), key=lambda t: (t[0], t[1].name))
    if not snaps:
        raise MetricError(f"no {SNAPSHOT_GLOB} in {run_dir}; point --fake at a run directory, checkpoint, "
                          f"folder or zip")
    return snaps


def evaluate_run(run_dir: str | Path, real, metrics: Sequence[str], num_gen: int | None = None,
                 on_result: Callable[[float, Path, dict], None] | None = None, **kwargs) -> list[dict]:
    """Evaluate every snapshot; append one JSON line per snapshot to ``metrics-eval.jsonl`` (same line
    format as the training loop's metrics.jsonl) and write ``metrics-eval.png``. Returns the lines."""
    from gantl.metrics.api import evaluate

    run_dir = Path(run_dir)
    lines = []
    for kimg, snap in list_snapshots(run_dir):
        results = evaluate(real, snap, metrics, num_gen, **kwargs)
        line = {"kimg": kimg, "snapshot": snap.name, "results": results}
        with open(run_dir / RESULTS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        lines.append(line)
        if on_result:
            on_result(kimg, snap, results)
    plot_metrics(lines, run_dir / "metrics-eval.png")
    return lines


def plot_metrics(lines: list[dict], path: Path) -> Path:
    """One panel per metric key, value vs kimg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys(k for line in lines for k in line["results"]))
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.4 * max(1, len(keys))), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        pts = [(line["kimg"], line["results"][key]) for line in lines if key in line["results"]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("kimg")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
