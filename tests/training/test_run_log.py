"""A run's log.txt holds its own set-up messages and nothing from later runs in the same process."""

from __future__ import annotations

import logging
from pathlib import Path

from gantl.config import from_dict
from gantl.training.loop import Trainer
from gantl.training.options import TrainOptions


def _opts(data: Path, outdir: Path, **extra) -> TrainOptions:
    base = dict(data=str(data), model="dcgan", cfg="dcgan-small", batch=8, kimg=0.016, tick_kimg=0.016,
                snap_kimg=0.016, seed=1, progress=False, tensorboard=False, outdir=str(outdir))
    return from_dict(TrainOptions, {**base, **extra})


def _file_handlers() -> list[logging.FileHandler]:
    return [h for h in logging.getLogger("gantl").handlers if isinstance(h, logging.FileHandler)]


def test_setup_warnings_reach_log_and_runs_do_not_share_logs(tiny_dataset: Path, tmp_path: Path) -> None:
    before = len(_file_handlers())
    # freezed without --resume warns during set-up, before the run folder exists
    first = Trainer(_opts(tiny_dataset, tmp_path / "a", methods=["freezed:1"])).train()
    second = Trainer(_opts(tiny_dataset, tmp_path / "b")).train()
    log1 = (first / "log.txt").read_text()
    log2 = (second / "log.txt").read_text()

    warning = "without --resume act on randomly initialised networks"
    assert warning in log1 and "WARNING" in log1
    assert log1.index(warning) < log1.index("INFO training ")  # set-up first, in the order it happened
    assert warning not in log2  # the second run's set-up had no such warning, and the held records were drained
    assert log1.count("INFO training ") == 1 and str(second) not in log1
    assert log2.count("INFO training ") == 1 and str(first) not in log2
    assert "snapshot" in log1 and "snapshot" in log2
    assert len(_file_handlers()) == before  # nothing left writing into a finished run's log
