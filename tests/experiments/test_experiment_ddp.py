"""`gantl experiment run --nproc-per-run 2`: each run trained by a 2-rank gloo torchrun group.

One tiny run (1 cell x 1 seed, 0.05 kimg) is enough to show that the run dir the ranks write is the
one the runner knows: evaluated afterwards, skipped when run again, resumed after an "interruption".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantl.checkpoints.format import load_training_state
from gantl.cli import app, main
from gantl.errors import ConfigError, GantlError
from gantl.experiments.ddp import RANK_ERROR, failure_message
from gantl.experiments.runner import ERROR_FILE, _snapshots, run_experiment
from gantl.training.loop import snapshot_tag

RUN = "000-subset=16-s0"
runner = CliRunner()


def write_grid(path: Path, data: Path, *, batch: int = 8) -> Path:
    """Bundled cpu-tiny StyleGAN2 source, 0.05 kimg with a snapshot halfway, the iw metric."""
    path.write_text(f"""
title = "tiny ddp"
seeds = [0]

[base]
data = "{data.as_posix()}"
resume = "cifar9-stylegan2-32"
cfg = "cpu-tiny"
batch = {batch}
kimg = 0.05
tick_kimg = 0.024
snap_kimg = 0.024
threads = 1
device = "cpu"

[grid]
subset = [16]

[eval]
metrics = ["iw"]
num_gen = 16
options = {{iw_steps = 4, iw_batch = 8}}
""", encoding="utf-8")
    return path


def _mtimes(run_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}


def test_two_rank_runs_are_evaluated_skipped_and_resumed(tiny_dataset: Path, tmp_path: Path) -> None:
    grid = write_grid(tmp_path / "grid.toml", tiny_dataset)
    out = tmp_path / "exp"
    args = ["experiment", "run", str(grid), "--out", str(out), "--nproc-per-run", "2", "--no-progress",
            "--no-report"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "1 to do (1 start)" in first.output
    run_dir = out / RUN
    snaps = _snapshots(run_dir)
    assert snaps[-1][0] >= 50 and len(snaps) >= 2  # the final snapshot, and one halfway
    state = load_training_state(next(run_dir.glob("training-state-*")))
    assert state["world"] == 2  # written by the torchrun group, not in-process
    rows = [json.loads(x) for x in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["snapshot"] == snaps[-1][1].name and rows[0]["results"]["iw"] == \
        rows[0]["results"]["iw"]
    assert not (run_dir / ERROR_FILE).exists()

    before = _mtimes(run_dir)
    again = runner.invoke(app, args)  # finished: a no-op
    assert again.exit_code == 0 and "1 finished, 0 to do" in again.output, again.output
    assert _mtimes(run_dir) == before

    # "killed" after the halfway snapshot: the group resumes it and the runner evaluates the end
    for p in run_dir.glob(f"*{snapshot_tag(snaps[-1][0])}*"):
        p.unlink()
    (run_dir / "eval.jsonl").unlink()
    result = run_experiment(grid, out, nproc_per_run=2, progress=False)
    assert [o.action for o in result.outcomes] == ["resume"] and not result.failed
    assert _snapshots(run_dir)[-1][0] == snaps[-1][0]
    assert len((run_dir / "eval.jsonl").read_text().splitlines()) == 1


def test_a_failing_rank_is_the_runs_error_with_the_output_tail(tiny_dataset: Path, tmp_path: Path) -> None:
    grid = write_grid(tmp_path / "grid.toml", tiny_dataset, batch=7)  # 7 images do not split over 2 ranks
    out = tmp_path / "exp"
    with pytest.raises(GantlError, match=r"1 of 1 runs failed \(000-subset=16-s0\): rank [01]: batch 7 must be "
                                         r"divisible by the 2 processes"):
        run_experiment(grid, out, nproc_per_run=2, progress=False)
    error = (out / RUN / ERROR_FILE).read_text()
    assert error.startswith("rank ") and "end of the torchrun group's output" in error and RANK_ERROR in error
    assert not _snapshots(out / RUN)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_a_bad_process_count_is_one_line(tiny_dataset: Path, tmp_path: Path, value: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    grid = write_grid(tmp_path / "grid.toml", tiny_dataset)
    with pytest.raises(SystemExit) as info:
        main(["experiment", "run", str(grid), "--out", str(tmp_path / "exp"), "--nproc-per-run", value])
    assert info.value.code == ConfigError.exit_code
    err = capsys.readouterr().err.strip()
    assert err == f"error: --nproc-per-run {value} must be at least 1 (processes per run; 1 trains in this process)"
    assert not (tmp_path / "exp").exists()


def test_failure_message_prefers_the_marked_rank_error() -> None:
    out = f"W warning\n[rank1]: {RANK_ERROR}rank 1: disk full\nTraceback ...\nChildFailedError: boom\n"
    assert failure_message(out, 1, 2) == "rank 1: disk full"
    assert failure_message("Killed\n====\n\n", 1, 4) == "torchrun group of 4 processes exited with code 1: Killed"
    summary = ("ChildFailedError:\n=====\ngantl.experiments.ddp FAILED\n-----\nFailures:\n  <NO_OTHER_FAILURES>\n"
               "-----\nRoot Cause (first observed failure):\n[0]:\n  time      : 2026-12-02_16:30:00\n"
               "  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 12)\n  error_file: <N/A>\n"
               "  traceback : Signal 9 (SIGKILL) received by PID 12\n=====\n")
    assert failure_message(summary, 1, 2) == ("torchrun group of 2 processes exited with code 1: rank 1 (local_rank: "
                                              "1), exitcode -9 (pid: 12), traceback Signal 9 (SIGKILL) received by "
                                              "PID 12")
