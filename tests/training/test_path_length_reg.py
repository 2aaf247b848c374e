"""A Trainer test that reaches the path-length regulariser (issue 14: every Trainer test used DCGAN
or cpu-tiny, whose pl_weight is 0, so the Greg phase never ran under the loop)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gantl.config import from_dict
from gantl.training.loop import Trainer, resume_run
from gantl.training.options import TrainOptions


def _opts(data: Path, outdir: Path, **extra) -> TrainOptions:
    base = dict(data=str(data), model="stylegan2", cfg="cpu-tiny", batch=4, kimg=0.016, tick_kimg=0.008,
                snap_kimg=0.008, seed=5, progress=False, tensorboard=False, outdir=str(outdir), resolution=32,
                pl_weight=2.0, pl_interval=1, pl_batch_shrink=2, pl_decay=0.5, gamma=0.0, grid_size=2)
    return from_dict(TrainOptions, {**base, **extra})


def test_trainer_runs_the_path_length_phase_and_resumes_its_mean(tiny_dataset: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(tiny_dataset, tmp_path / "runs"))
    assert any(p["name"] == "Greg" for p in trainer.phases)  # the phase exists for a StyleGAN2 G with pl on
    run = trainer.train()
    assert float(trainer.loss.pl_mean) > 0  # the EMA of path lengths moved: Greg really ran
    ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all("pl_penalty" in t and "loss_Gpl" in t for t in ticks), ticks[0].keys()
    assert all(torch.isfinite(torch.tensor(t["pl_penalty"])) for t in ticks)
    # the running mean is part of the training state, so a resumed run continues it
    from gantl.checkpoints.format import load_training_state

    states = sorted(run.glob("training-state-*.pt"))
    saved = load_training_state(states[-1])["loss"]["pl_mean"]
    assert float(saved) == float(trainer.loss.pl_mean)
    assert resume_run(run, ["kimg=0.024"]) == run
    assert len((run / "stats.jsonl").read_text().splitlines()) == len(ticks) + 1
