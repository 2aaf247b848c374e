"""Exact resume: a run killed with SIGKILL between snapshots continues the same curves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gantl.training.loop import TIMING_KEYS, latest_snapshot

ARGS = ["--model", "dcgan", "--cfg", "dcgan-small", "--batch", "8", "--kimg", "0.192", "--tick", "0.032",
        "--snap", "0.064", "--gamma", "1", "--aug", "ada", "--set", "ada_kimg=1", "--set", "r1_interval=3",
        "--seed", "7", "--threads", "1", "--no-progress", "--device", "cpu", "--set", "tensorboard=false"]


def _cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "gantl.cli", "train", *extra]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _stats(run: Path) -> list[dict]:
    lines = [json.loads(t) for t in (run / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k not in TIMING_KEYS} for rec in lines]


def _single_run(outdir: Path) -> Path:
    runs = [p for p in outdir.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.mark.timeout(400)
def test_sigkill_between_snapshots_then_resume(tiny_dataset: Path, tmp_path: Path) -> None:
    # 1) the uninterrupted reference run
    ref_out = tmp_path / "ref"
    subprocess.run(_cmd("--data", str(tiny_dataset), "--outdir", str(ref_out), *ARGS), env=_env(), check=True,
                   capture_output=True, timeout=300)
    reference = _stats(_single_run(ref_out))
    assert [r["nimg"] for r in reference] == [32, 64, 96, 128, 160, 192]

    # 2) the same run, killed after its first snapshot (kimg 0.064) and before the second (0.128)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd("--data", str(tiny_dataset), "--outdir", str(out), *ARGS), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    run = None
    while time.time() < deadline:
        dirs = [p for p in out.iterdir() if p.is_dir()] if out.is_dir() else []
        if dirs and _lines(dirs[0] / "stats.jsonl") >= 3:
            run = dirs[0]
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    assert run is not None, "the run ended or stalled before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _lines(run / "stats.jsonl")
    tag = latest_snapshot(run)
    assert tag is not None and tag_nimg_between(tag, 64, 128)
    assert not (run / "snapshot-000000.192.safetensors").exists()

    # 3) resume from the last snapshot and finish
    subprocess.run(_cmd("--resume-run", str(run), "--no-progress"), env=_env(), check=True,
                   capture_output=True, timeout=300)
    resumed = _stats(run)
    assert killed_at >= 3
    assert resumed == reference  # every loss, R1, augment p and counter is identical


def tag_nimg_between(tag: str, lo: int, hi: int) -> bool:
    nimg = round(float(tag) * 1000)
    return lo <= nimg <= hi
