"""Fast exact-resume check in one process: snapshot, rebuild from the run dir, continue, compare."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gantl.config import from_dict, load_toml
from gantl.training.loop import TIMING_KEYS, Trainer, latest_snapshot
from gantl.training.options import TrainOptions


def _stats(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(t).items() if k not in TIMING_KEYS}
            for t in (run / "stats.jsonl").read_text().splitlines()]


def test_resume_continues_identical_curves(tiny_dataset: Path, tmp_path: Path) -> None:
    base = dict(data=str(tiny_dataset), model="dcgan", cfg="dcgan-small", batch=8, tick_kimg=0.016,
                snap_kimg=0.032, gamma=1.0, r1_interval=3, aug="ada", ada_kimg=1, seed=3, progress=False,
                tensorboard=False, methods=["freezed:1"], ema_kimg=0.05, ema_rampup=0.5)
    ref_run = Trainer(from_dict(TrainOptions, {**base, "kimg": 0.096, "outdir": str(tmp_path / "ref")})).train()
    # the "interrupted" run stops at its first snapshot (as if killed right after it) ...
    run = Trainer(from_dict(TrainOptions, {**base, "kimg": 0.032, "outdir": str(tmp_path / "cut")})).train()
    assert latest_snapshot(run) == "000000.032"
    # ... and is continued from its run dir with the longer budget
    opts = load_toml(TrainOptions, run / "config.toml", ["kimg=0.096"])
    resumed = Trainer(opts, run_dir=run, resume_tag=latest_snapshot(run))
    assert resumed.cur_nimg == 32
    resumed.train()
    assert _stats(run) == _stats(ref_run)
    a = torch.load(ref_run / "training-state-000000.096.pt", weights_only=True)
    b = torch.load(run / "training-state-000000.096.pt", weights_only=True)
    assert a["augment"] == b["augment"] and a["data"] == b["data"] and a["batch_idx"] == b["batch_idx"] == 12
    from safetensors.torch import load_file

    ta, tb = load_file(ref_run / "snapshot-000000.096.safetensors"), load_file(run / "snapshot-000000.096.safetensors")
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
