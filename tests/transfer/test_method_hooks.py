"""The protocol's hooks in the real loop: a schedule unfreezes a block and changes its lr mid-run
(optimiser groups rebuilt, Adam state kept), extra losses reach the regularisation phases, and a
run interrupted after the schedule fired resumes exactly, with EWC's and FD's state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gantl.config import from_dict, load_toml
from gantl.training.loop import TIMING_KEYS, Trainer, _TickStats, latest_snapshot
from gantl.training.options import TrainOptions
from gantl.transfer import base
from gantl.transfer.base import BaseMethod, MethodInfo, ParamGroups, StepInfo, int_arg
from gantl.transfer.freeze import freeze_module


class UnfreezeAt(BaseMethod):
    """Freeze D's first block, unfreeze it at step N with half the learning rate (MineGAN/AdaFM-style)."""

    name = "unfreeze-d0"

    def __init__(self, at: int) -> None:
        self.at = at
        self.unfrozen = False
        self.D: nn.Module | None = None
        self.calls: list[str] = []

    def spec(self) -> str:
        return f"{self.name}:{self.at}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        self.D = D
        freeze_module(D.blocks[0])

    def _unfreeze(self) -> None:
        assert self.D is not None
        self.D.blocks[0].requires_grad_(True)
        self.unfrozen = True

    def on_step(self, info: StepInfo) -> bool:
        if not self.unfrozen and info.batch_idx >= self.at:
            self._unfreeze()
            return True
        return False

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups:
        if not self.unfrozen:
            return {"G": [], "D": []}
        return {"G": [], "D": [{"params": list(D.blocks[0].parameters()), "lr_scale": 0.5}]}

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        self.calls.append(step.phase)
        if step.phase == "Dreg":  # a term in a regularisation phase is logged under its name
            return {"probe_Dreg": torch.zeros([], device=step.real_img.device)}
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"unfrozen": self.unfrozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("unfrozen"):
            self._unfreeze()


@pytest.fixture()
def unfreeze_method(monkeypatch: pytest.MonkeyPatch) -> None:
    base.ensure_builtin_methods()

    def factory(args: list[str]) -> UnfreezeAt:
        return UnfreezeAt(int_arg(args, 0, "unfreeze-d0"))

    monkeypatch.setitem(base.METHODS, "unfreeze-d0", MethodInfo("unfreeze-d0", factory, "unfreeze-d0:N",
                                                                "test schedule", __name__))


def _base(data: Path, **kw: Any) -> dict[str, Any]:
    out = dict(data=str(data), resume="cifar9-dcgan-32", model="dcgan", cfg="dcgan-small", batch=8, seed=2,
               tick_kimg=0.016, snap_kimg=0.016, gamma=1.0, r1_interval=2, progress=False, tensorboard=False,
               grid_size=2, methods=["unfreeze-d0:2", "ewc:10", "fd:1:0"])
    out.update(kw)
    return out


def test_schedule_unfreezes_with_new_lr_and_keeps_adam_state(tiny_dataset: Path, tmp_path: Path,
                                                            unfreeze_method: None) -> None:
    trainer = Trainer(from_dict(TrainOptions, _base(tiny_dataset, kimg=1, outdir=str(tmp_path))))
    method = trainer.methods[0]
    block0 = {k: v.clone() for k, v in trainer.D.blocks[0].state_dict().items()}
    other = trainer.D.blocks[1].conv.weight
    tick = _TickStats()
    for _ in range(2):
        trainer.step(tick)
    assert all(torch.equal(block0[k], v) for k, v in trainer.D.blocks[0].state_dict().items())
    d_opt = trainer.optimizers["D"]
    steps = int(d_opt.state[other]["step"])  # Dmain every step, Dreg every second
    assert steps == 3
    trainer.step(tick)  # batch_idx 2: the schedule fires before the phases run
    assert method.unfrozen
    d_opt = trainer.optimizers["D"]
    assert int(d_opt.state[other]["step"]) == steps + 2  # moments carried into the rebuilt optimiser
    lrs = {id(p): g["lr"] for g in d_opt.param_groups for p in g["params"]}
    w0 = trainer.D.blocks[0].conv.weight
    assert lrs[id(w0)] == pytest.approx(0.5 * lrs[id(other)])
    assert not torch.equal(block0["conv.weight"], w0)
    assert {"G", "D", "Dreg"} <= set(method.calls) and "probe_Dreg" in tick.sums


def _stats(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(t).items() if k not in TIMING_KEYS}
            for t in (run / "stats.jsonl").read_text().splitlines()]


def test_resume_after_the_schedule_fired_is_exact(tiny_dataset: Path, tmp_path: Path, unfreeze_method: None) -> None:
    ref = Trainer(from_dict(TrainOptions, _base(tiny_dataset, kimg=0.048, outdir=str(tmp_path / "ref")))).train()
    cut = Trainer(from_dict(TrainOptions, _base(tiny_dataset, kimg=0.032, outdir=str(tmp_path / "cut")))).train()
    state = torch.load(cut / "training-state-000000.032.pt", weights_only=True)
    assert state["methods"][0] == {"unfrozen": True} and "fisher" in state["methods"][1]
    resumed = Trainer(load_toml(TrainOptions, cut / "config.toml", ["kimg=0.048"]), run_dir=cut,
                      resume_tag=latest_snapshot(cut))
    assert resumed.methods[0].unfrozen and resumed.D.blocks[0].conv.weight.requires_grad
    resumed.train()
    assert _stats(cut) == _stats(ref)
    from safetensors.torch import load_file

    a = load_file(ref / "snapshot-000000.048.safetensors")
    b = load_file(cut / "snapshot-000000.048.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
