"""Frozen tensors stay bitwise unchanged through real training steps while the others move."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gantl.config import from_dict
from gantl.errors import ConfigError
from gantl.training.loop import Trainer, _TickStats
from gantl.training.options import TrainOptions
from gantl.transfer.base import compose_param_groups, parse_method, parse_methods


def _opts(data: Path, tmp_path: Path, methods: list[str], **kw) -> TrainOptions:
    base = dict(data=str(data), model="dcgan", cfg="dcgan-small", batch=8, kimg=1, tick_kimg=1, snap_kimg=0,
                outdir=str(tmp_path), progress=False, tensorboard=False, methods=methods, gamma=1.0,
                r1_interval=2)
    base.update(kw)
    return from_dict(TrainOptions, base)


def _snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _run(trainer: Trainer, steps: int) -> None:
    tick = _TickStats()
    for _ in range(steps):
        trainer.step(tick)


@pytest.mark.parametrize("spec,frozen_D,frozen_G", [("freezed:2", 2, 0), ("freezeg:2", 0, 2),
                                                    ("partial:1:3", 1, 3)])
def test_frozen_blocks_bitwise_unchanged(tiny_dataset: Path, tmp_path: Path, spec: str, frozen_D: int,
                                         frozen_G: int) -> None:
    torch.manual_seed(0)
    trainer = Trainer(_opts(tiny_dataset, tmp_path, [spec]))
    before = {"G": _snapshot(trainer.G), "D": _snapshot(trainer.D)}
    _run(trainer, 3)
    for key, net, k in (("G", trainer.G, frozen_G), ("D", trainer.D, frozen_D)):
        after = net.state_dict()
        for i, _ in enumerate(net.blocks):
            names = [n for n in after if n.startswith(f"blocks.{i}.") and "num_batches_tracked" not in n]
            assert names
            for n in names:
                same = torch.equal(before[key][n], after[n])
                if i < k:
                    assert same, f"{key}.{n} is frozen but changed"
                elif n.endswith("weight") and "conv" in n:
                    assert not same, f"{key}.{n} should train but did not change"
    # frozen tensors are not in any optimizer
    for phase in trainer.phases:
        in_opt = {id(p) for g in phase["opt"].param_groups for p in g["params"]}
        net = trainer.G if phase["net"] == "G" else trainer.D
        k = frozen_G if phase["net"] == "G" else frozen_D
        for block in list(net.blocks)[:k]:
            assert not any(id(p) in in_opt for p in block.parameters())


def test_finetune_scales_lr_and_composes(tiny_dataset: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(tiny_dataset, tmp_path, ["finetune:0.1", "freezed:1"], gamma=0.0))
    groups = compose_param_groups(trainer.methods, trainer.G, trainer.D, {"G": 1.0, "D": 2.0})
    assert [g["lr"] for g in groups["G"]] == [pytest.approx(0.1)]
    assert [g["lr"] for g in groups["D"]] == [pytest.approx(0.2)]
    n_d = sum(p.numel() for g in groups["D"] for p in g["params"])
    frozen = sum(p.numel() for p in trainer.D.blocks[0].parameters())
    assert n_d == sum(p.numel() for p in trainer.D.parameters()) - frozen
    d_opt = next(p["opt"] for p in trainer.phases if p["net"] == "D")
    assert d_opt.param_groups[0]["lr"] == pytest.approx(0.1 * 2e-4)


def test_method_parsing_errors() -> None:
    assert parse_method("partial:4").spec() == "partial:4:4"
    assert [m.spec() for m in parse_methods(["finetune", "freezeg:3"])] == ["finetune", "freezeg:3"]
    with pytest.raises(ConfigError, match="unknown transfer method 'freezx'"):
        parse_method("freezx:4")
    with pytest.raises(ConfigError, match="needs a number"):
        parse_method("freezed")
    with pytest.raises(ConfigError, match="whole numbers"):
        parse_method("freezed:two")


def test_too_many_blocks_and_mapping_on_dcgan(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has only 4"):
        Trainer(_opts(tiny_dataset, tmp_path, ["freezed:9"]))
    with pytest.raises(ConfigError, match="mapping network"):
        Trainer(_opts(tiny_dataset, tmp_path, ["freeze-mapping"]))
