"""Two gloo processes under torchrun keep identical weights through training steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    torch.set_num_threads(1)
    from gantl.config import from_dict
    from gantl.training import distributed
    from gantl.training.loop import Trainer, _TickStats
    from gantl.training.options import TrainOptions

    data, out = sys.argv[1], sys.argv[2]
    opts = from_dict(TrainOptions, dict(data=data, model="dcgan", cfg="dcgan-small", batch=8, kimg=1,
                     outdir=out, progress=False, tensorboard=False, gamma=1.0, r1_interval=2, aug="ada",
                     ada_kimg=1, methods=["freezed:1"], device="cpu"))
    t = Trainer(opts)
    init = {k: v.clone() for k, v in t.G.state_dict().items()}
    tick = _TickStats()
    for _ in range(5):
        t.step(tick)
    def digest(net):
        h = hashlib.sha256()
        for k, v in net.state_dict().items():
            h.update(k.encode()); h.update(v.detach().contiguous().numpy().tobytes())
        return h.hexdigest()
    changed = any(not torch.equal(init[k], v) for k, v in t.G.state_dict().items())
    rank = t.dist.rank
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"G": digest(t.G), "D": digest(t.D), "G_ema": digest(t.G_ema), "changed": changed,
                   "world": t.dist.world, "batch_gpu": t.batch_gpu, "p": t.ada.p,
                   "real_first": float(t.stream.next()[0].float().mean())}, f)
    distributed.shutdown(t.dist)
""")


def test_two_gloo_ranks_stay_identical(tiny_dataset: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_steps.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tiny_dataset), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2 and r0["batch_gpu"] == 4
    assert r0["changed"] and r1["changed"]
    for key in ("G", "D", "G_ema", "p"):
        assert r0[key] == r1[key], f"{key} differs between ranks"
    assert r0["real_first"] != r1["real_first"]  # each rank reads its own slice of the batch


def test_each_rank_takes_its_own_gpu(monkeypatch) -> None:
    """Under torchrun on CUDA, rank with LOCAL_RANK=k selects GPU k (mod the GPUs present)."""
    import torch

    from gantl.training import distributed

    picked: list[int] = []
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", picked.append)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    info = distributed.init_from_env(torch.device("cuda"))
    assert (info.rank, info.world, info.local_rank) == (3, 4, 3)
    assert picked == [1]
    picked.clear()
    distributed.init_from_env(torch.device("cuda", 0))  # an explicit index is the user's choice
    distributed.init_from_env(torch.device("cpu"))
    assert picked == []
