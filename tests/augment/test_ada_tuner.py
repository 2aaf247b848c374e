"""AdaTuner: the p update on hand-checked inputs, clamping, fixed p, exact resume, cross-process sums."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from gantl.augment import AdaTuner, AugmentPipe
from gantl.errors import CheckpointError, ConfigError

STEP_32x4 = 32 * 4 / 500_000  # batch 32, interval 4, speed 500 kimg: 0.000256


def _run_interval(tuner: AdaTuner, logits: torch.Tensor, batch: int = 32) -> list[bool]:
    out = []
    for _ in range(tuner.interval):
        tuner.observe(logits)
        out.append(tuner.step(batch))
    return out


def test_one_update_moves_p_by_batch_times_interval_over_speed() -> None:
    pipe = AugmentPipe.from_preset("bgc")
    tuner = AdaTuner(pipe, target=0.6, speed_kimg=500, interval=4)
    assert _run_interval(tuner, torch.ones(32, 1)) == [False, False, False, True]
    assert tuner.rt == 1.0
    assert tuner.p == STEP_32x4 == 0.000256
    assert float(pipe.p) == pytest.approx(0.000256, rel=1e-6)  # float32 copy in the pipe's buffer
    # A second overfitting interval adds exactly the same step.
    _run_interval(tuner, torch.ones(32, 1))
    assert tuner.p == 2 * STEP_32x4


def test_rt_is_the_mean_sign_and_p_moves_down_below_target() -> None:
    tuner = AdaTuner(None, target=0.6, speed_kimg=500, interval=4)
    tuner.p = 0.01
    # 3 positive, 1 negative, 1 exactly zero per observation: mean sign = (3 - 1 + 0) / 5 = 0.4 < 0.6.
    logits = torch.tensor([[2.0], [0.1], [5.0], [-3.0], [0.0]])
    _run_interval(tuner, logits)
    assert tuner.rt == pytest.approx(0.4)
    assert tuner.p == pytest.approx(0.01 - STEP_32x4, abs=1e-15)


def test_p_clamps_at_zero_and_at_p_max() -> None:
    low = AdaTuner(None, interval=1)
    low.observe(-torch.ones(8, 1))
    assert low.step(32) is True and low.p == 0.0
    high = AdaTuner(None, interval=1, speed_kimg=0.1, p_max=0.5)  # 32 / 100 = 0.32 per update
    for expected in [0.32, 0.5, 0.5]:
        high.observe(torch.ones(8, 1))
        high.step(32)
        assert high.p == pytest.approx(expected)


def test_fixed_p_never_moves_but_rt_is_still_measured() -> None:
    pipe = AugmentPipe.from_preset("bgc")
    tuner = AdaTuner(pipe, fixed_p=0.3, interval=2)
    assert float(pipe.p) == pytest.approx(0.3)
    for _ in range(5):
        assert _run_interval(tuner, torch.ones(4, 1)) == [False, False]
    assert tuner.p == 0.3 and tuner.rt == 1.0 and tuner.num_updates == 5


def test_state_dict_round_trip_continues_identically() -> None:
    gen = torch.Generator().manual_seed(0)
    stream = [torch.randn(16, 1, generator=gen) + 0.9 for _ in range(40)]
    reference = AdaTuner(None, interval=4, speed_kimg=1)
    history = []
    for logits in stream:
        reference.observe(logits)
        reference.step(16)
        history.append((reference.p, reference.rt))

    first = AdaTuner(None, interval=4, speed_kimg=1)
    for logits in stream[:18]:  # stop mid-interval, with accumulators holding data
        first.observe(logits)
        first.step(16)
    state = first.state_dict()
    assert state["steps_since_update"] == 2 and state["count"] == 32
    # The state survives the checkpoint format's weights_only loader.
    buffer = __import__("io").BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    pipe = AugmentPipe.from_preset("bgc")
    resumed = AdaTuner(pipe, interval=4, speed_kimg=1)
    resumed.load_state_dict(state)
    assert float(pipe.p) == pytest.approx(resumed.p)
    for i, logits in enumerate(stream[18:], start=18):
        resumed.observe(logits)
        resumed.step(16)
        assert (resumed.p, resumed.rt) == history[i]
    assert 0 < history[-1][0] < 1  # p actually moved during the stream


def test_incomplete_state_and_bad_settings_are_rejected() -> None:
    with pytest.raises(CheckpointError, match="lacks"):
        AdaTuner(None).load_state_dict({"p": 0.1})
    with pytest.raises(ConfigError, match="interval"):
        AdaTuner(None, interval=0)
    with pytest.raises(ConfigError, match="speed_kimg"):
        AdaTuner(None, speed_kimg=0)
    with pytest.raises(ConfigError, match="fixed"):
        AdaTuner(None, fixed_p=2.0)


def test_reduce_hook_combines_processes() -> None:
    # Simulate another rank whose interval saw 8 logits, all negative: sums are added before r_t.
    def other_rank_added(t: torch.Tensor) -> torch.Tensor:
        return t + torch.tensor([-8.0, 8.0], dtype=t.dtype)

    tuner = AdaTuner(None, interval=1, reduce_fn=other_rank_added)
    tuner.observe(torch.ones(24, 1))
    tuner.step(64)
    assert tuner.rt == pytest.approx((24 - 8) / 32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        tuner = AdaTuner(None, interval=2, speed_kimg=1)
        sign = 1.0 if rank == 0 else -1.0
        for _ in range(2):
            tuner.observe(torch.full((6 if rank == 0 else 1, 1), sign))
            tuner.step(16)
        results[rank] = (tuner.rt, tuner.p)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_under_gloo_gives_every_rank_the_same_p() -> None:
    ctx = mp.get_context("spawn")
    results = ctx.Manager().dict()
    mp.start_processes(_ddp_worker, args=(_free_port(), results), nprocs=2, start_method="spawn")
    # rank 0 saw 12 x (+1), rank 1 saw 2 x (-1): r_t = 10 / 14 > 0.6 on *both* ranks (rank 1 alone would
    # see -1 and keep p at 0), so both raise p by 16 * 2 / 1000.
    assert results[0] == results[1] == (pytest.approx(10 / 14), pytest.approx(0.032))
