"""`gantl experiment run|report` on a 2x2 grid of tiny CPU runs (a few seconds each).

The metric is the independent Wasserstein critic ("iw") with a handful of steps: a real metric
from the registry that needs no Inception weights, so the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantl.cli import app
from gantl.errors import ConfigError
from gantl.experiments import grid as grid_mod
from gantl.experiments.report import mean_std, write_report
from gantl.experiments.runner import plan_run, run_experiment

runner = CliRunner()
TIMING = ("sec_per_tick", "sec_per_kimg", "img_per_sec", "timestamp", "total_sec")


def grid_text(data: Path, *, kimg: float = 0.01, snap: float = 0.01, extra_base: str = "", grid: str | None = None,
              seeds: str = "[0]") -> str:
    """A grid over the tiny dataset: cpu-tiny StyleGAN2 from the bundled source, batch 8, iw metric."""
    grid = grid if grid is not None else 'aug = ["none", "diffaugment"]\nsubset = [16, 32]'
    return f"""
title = "tiny 2x2"
seeds = {seeds}

[base]
data = "{data.as_posix()}"
resume = "cifar9-stylegan2-32"
cfg = "cpu-tiny"
batch = 8
kimg = {kimg}
tick_kimg = {snap}
snap_kimg = {snap}
threads = 1
{extra_base}

[grid]
{grid}

[eval]
metrics = ["iw"]
num_gen = 16
options = {{iw_steps = 4, iw_batch = 8}}
"""


def write_grid(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _mtimes(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.parent != out and p.parent.name not in ("assets", "plots")}


def test_2x2_grid_runs_reruns_as_a_no_op_and_reports(tiny_dataset, tmp_path):
    grid = write_grid(tmp_path / "grid.toml", grid_text(tiny_dataset))
    out = tmp_path / "exp"
    result = runner.invoke(app, ["experiment", "run", str(grid), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 cell(s) x 1 seed(s) = 4 runs" in result.output and "0 finished, 4 to do" in result.output
    names = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name[:3].isdigit())
    assert names == ["000-aug=none-subset=16-s0", "001-aug=none-subset=32-s0",
                     "002-aug=diffaugment-subset=16-s0", "003-aug=diffaugment-subset=32-s0"]
    for name in names:  # every run is a normal run dir, trained with its cell's options
        cfg = (out / name / "config.toml").read_text()
        assert re.search(r"^subset = (16|32)$", cfg, re.M) and "seed = 0" in cfg
        assert list((out / name).glob("snapshot-*.safetensors"))
    assert 'aug = "diffaugment"' in (out / names[3] / "config.toml").read_text()

    before = _mtimes(out)
    again = runner.invoke(app, ["experiment", "run", str(grid), "--out", str(out), "--no-progress", "--no-report"])
    assert again.exit_code == 0, again.output
    assert "4 finished, 0 to do" in again.output
    assert _mtimes(out) == before  # nothing trained, evaluated or rewritten inside the run dirs

    rep = runner.invoke(app, ["experiment", "report", str(out)])
    assert rep.exit_code == 0, rep.output
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert [(r["aug"], r["subset"], r["seed"]) for r in rows] == [
        ("none", "16", "0"), ("none", "32", "0"), ("diffaugment", "16", "0"), ("diffaugment", "32", "0")]
    for r in rows:
        assert float(r["iw"]) == float(r["iw"])  # a number, not empty or nan
        assert float(r["kimg"]) >= 0.01 and float(r["wall_s"]) > 0 and r["status"] == "done"
    md = (out / "results.md").read_text()
    assert "| aug | subset | seed | kimg | wall_s | iw |" in md
    html = (out / "report.html").read_text()
    assert html.count("class='samples'") == 5  # the reals + one sample grid per cell
    for cell in ("aug=none-subset=16", "aug=diffaugment-subset=32"):
        assert (out / "assets" / f"{cell}.png").is_file() and f"assets/{cell}.png" in html
    assert {p.name for p in (out / "plots").iterdir()} >= {"iw-vs-kimg.png", "iw-vs-dataset-size.png",
                                                          "iw-heat-map.png"}


def test_interrupted_run_resumes_exactly_and_a_run_without_snapshot_restarts(tiny_dataset, tmp_path):
    text = grid_text(tiny_dataset, kimg=0.016, snap=0.008, grid='subset = [16]')
    grid = write_grid(tmp_path / "grid.toml", text)
    out = tmp_path / "exp"
    run_experiment(grid, out, progress=False)
    run_dir = out / "000-subset=16-s0"
    full = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["kimg"] for s in full] == [0.008, 0.016]

    # "kill" it after the first snapshot: the final snapshot and its result are gone
    for p in run_dir.glob("*000000.016*"):
        p.unlink()
    (run_dir / "eval.jsonl").unlink()
    spec = grid_mod.load_grid(grid, out).runs(out)[0]
    assert plan_run(spec, out, grid_mod.load_grid(grid, out).eval) == "resume"
    result = run_experiment(grid, out, progress=False)
    assert [o.action for o in result.outcomes] == ["resume"]
    resumed = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    strip = [{k: v for k, v in s.items() if k not in TIMING} for s in (full, resumed) for s in s]
    assert strip[:2] == strip[2:]  # the same curve as the uninterrupted run
    assert len((run_dir / "eval.jsonl").read_text().splitlines()) == 1

    # killed before its first snapshot: started again from scratch
    for p in run_dir.glob("snapshot-*"):
        p.unlink()
    assert plan_run(spec, out, grid_mod.load_grid(grid, out).eval) == "restart"
    assert [o.action for o in run_experiment(grid, out, progress=False).outcomes] == ["restart"]


@pytest.mark.parametrize(("edit", "message"), [
    (("subset = [16, 32]", "subsets = [16, 32]"), "unknown option 'subsets' in [grid]"),
    (('"diffaugment"]', '"diffaug"]'), "[grid] aug (cell aug=diffaug-subset=16): config key 'aug' has value 'diffaug'"),
    (("batch = 8", "batch = 0"), "[base] batch"),
    (("cfg = \"cpu-tiny\"", "cfg = \"cpu-tiny\"\nseed = 3"), "[base] seed: list the seeds in top-level seeds"),
    (('metrics = ["iw"]', 'metrics = ["fidd"]'), "[eval] metrics: unknown metric 'fidd'"),
    (('resume = "cifar9-stylegan2-32"', 'resume = "no-such-model"'), "[base] resume"),
    (("subset = [16, 32]", 'subset = [16, 32]\nmethods = ["finetune", "freezd:2"]'), "[grid] methods"),
    (("subset = [16, 32]", "subset = 16"), "[grid] subset must be a non-empty list"),
])
def test_a_bad_grid_is_refused_before_anything_runs(tiny_dataset, tmp_path, edit, message):
    text = grid_text(tiny_dataset)
    assert edit[0] in text
    grid = write_grid(tmp_path / "grid.toml", text.replace(edit[0], edit[1], 1))
    out = tmp_path / "exp"
    with pytest.raises(ConfigError) as info:
        run_experiment(grid, out, progress=False)
    assert message in info.value.message
    assert not out.exists()


def test_changed_eval_reevaluates_and_changed_options_are_refused(tiny_dataset, tmp_path):
    out = tmp_path / "exp"
    grid = write_grid(tmp_path / "grid.toml", grid_text(tiny_dataset, grid='subset = [16]'))
    run_experiment(grid, out, progress=False)
    changed = write_grid(tmp_path / "grid2.toml",
                         grid_text(tiny_dataset, grid='subset = [16]', extra_base="glr = 0.01"))
    # a changed [eval] only measures again: nothing is trained, the new result is added
    snaps = sorted(p.name for p in (out / "000-subset=16-s0").glob("snapshot-*"))
    other_eval = write_grid(tmp_path / "grid3.toml",
                            grid_text(tiny_dataset, grid='subset = [16]').replace("iw_steps = 4", "iw_steps = 3"))
    assert [o.action for o in run_experiment(other_eval, out, progress=False).outcomes] == ["evaluate"]
    assert sorted(p.name for p in (out / "000-subset=16-s0").glob("snapshot-*")) == snaps
    assert len((out / "000-subset=16-s0" / "eval.jsonl").read_text().splitlines()) == 2
    with pytest.raises(ConfigError, match=r"000-subset=16-s0 was trained with glr = unset \(the preset's "
                                          r"value\), the grid now says 0.01"):
        run_experiment(changed, out, progress=False)


def test_option_bundles_form_one_factor(tiny_dataset, tmp_path):
    text = grid_text(tiny_dataset, grid='init = [{name = "scratch", resume = ""}, '
                                        '{name = "G-only", fresh_d = true}, {name = "G+D"}]')
    grid = grid_mod.load_grid(write_grid(tmp_path / "grid.toml", text), tmp_path / "exp")
    runs = grid.runs(tmp_path / "exp")
    assert [r.name for r in runs] == ["000-init=scratch-s0", "001-init=G-only-s0", "002-init=G+D-s0"]
    assert [(r.opts.resume, r.opts.fresh_d) for r in runs] == [
        (None, False), ("cifar9-stylegan2-32", True), ("cifar9-stylegan2-32", False)]
    bad = text.replace("fresh_d = true", "fresh_dd = true")
    with pytest.raises(ConfigError, match=r"unknown option 'fresh_dd' in \[grid\] init"):
        grid_mod.load_grid(write_grid(tmp_path / "bad.toml", bad), tmp_path / "exp")


def test_cell_labels_are_short_safe_and_deterministic():
    assert grid_mod.cell_label({"methods": ["freezed:2", "finetune"], "resume": None}) == \
        "methods=freezed2+finetune-resume=none"
    label = grid_mod.value_label("../shared/datasets/cifar10.zip:train/horse")
    assert label == "train-horse"
    long = grid_mod.value_label("x" * 80)
    assert len(long) <= 32 and long == grid_mod.value_label("x" * 80) != grid_mod.value_label("x" * 79 + "y")


def test_mean_std_is_the_sample_standard_deviation():
    assert mean_std([]) == (None, None)
    assert mean_std([2.0]) == (2.0, None)
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)


def test_report_refuses_a_folder_that_is_not_an_experiment(tmp_path):
    with pytest.raises(ConfigError, match="not an experiment dir"):
        write_report(tmp_path)


def test_jobs_run_cells_in_parallel_processes(tiny_dataset, tmp_path):
    grid = write_grid(tmp_path / "grid.toml", grid_text(tiny_dataset, grid="subset = [16, 32]"))
    out = tmp_path / "exp"
    result = run_experiment(grid, out, jobs=2, progress=False)
    assert [o.action for o in result.outcomes] == ["start", "start"] and not result.failed
    for name in ("000-subset=16-s0", "001-subset=32-s0"):
        assert len((out / name / "eval.jsonl").read_text().splitlines()) == 1
    assert [o.action for o in run_experiment(grid, out, jobs=2, progress=False).outcomes] == ["done", "done"]
