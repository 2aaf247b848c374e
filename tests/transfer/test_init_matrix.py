"""TransferGAN's G/D initialisation matrix: --init-g/--init-d source|scratch, all four cells."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gantl.checkpoints import zoo
from gantl.checkpoints.format import load_checkpoint
from gantl.cli import app
from gantl.config import from_dict
from gantl.errors import ConfigError
from gantl.models.registry import build
from gantl.training.loop import Trainer, build_setup, run_description
from gantl.training.options import TrainOptions

SOURCE = "cifar9-stylegan2-32"


def _equal(net: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, tensors[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("init_g,init_d", [("source", "source"), ("source", "scratch"), ("scratch", "source"),
                                           ("scratch", "scratch")])
def test_each_cell_starts_where_it_says_and_trains(tiny_dataset: Path, tmp_path: Path, init_g: str,
                                                   init_d: str) -> None:
    src = load_checkpoint(zoo.resolve(SOURCE)).tensors
    opts = from_dict(TrainOptions, dict(data=str(tiny_dataset), resume=SOURCE, cfg="cpu-tiny", batch=4, kimg=0.004,
                                        tick_kimg=0.004, outdir=str(tmp_path), init_g=init_g, init_d=init_d, seed=5,
                                        progress=False, tensorboard=False, grid_size=2))
    assert opts.fresh_d == (init_d == "scratch")
    setup = build_setup(opts)
    assert _equal(setup.G, src["G"]) == (init_g == "source")
    assert _equal(setup.G_ema, src["G_ema"]) == (init_g == "source")
    assert _equal(setup.D, src["D"]) == (init_d == "source")
    with torch.random.fork_rng(devices=[]):  # a scratch network is the seeded initialisation
        torch.manual_seed(5)
        fresh_G = build("stylegan2", "G", setup.G.config)
        fresh_D = build("stylegan2", "D", setup.D.config)
    assert _equal(setup.G, fresh_G.state_dict()) == (init_g == "scratch")
    assert _equal(setup.D, fresh_D.state_dict()) == (init_d == "scratch")
    run = Trainer(opts).train()
    assert (run / "snapshot-000000.004.safetensors").is_file()
    assert ("Gscratch" in run.name) == (init_g == "scratch")
    assert ("Dscratch" in run.name) == (init_d == "scratch")


def test_init_options_are_checked(tiny_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="need --resume"):
        from_dict(TrainOptions, dict(init_g="scratch"))
    with pytest.raises(ConfigError):
        from_dict(TrainOptions, dict(resume=SOURCE, init_d="random"))
    opts = from_dict(TrainOptions, dict(data=str(tiny_dataset), resume=SOURCE, init_g="scratch",
                                        methods=["scale-shift"]))
    with pytest.raises(ConfigError, match="--method scale-shift .*--init-g scratch"):
        build_setup(opts)
    named = from_dict(TrainOptions, dict(resume=SOURCE, cfg="cpu-tiny", init_g="scratch"))
    assert run_description(named, "h") == "h-stylegan2-cpu-tiny-finetune-Gscratch-from-cifar9-stylegan2-32"


def test_cli_flags_reach_the_networks(tiny_dataset: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(tiny_dataset), "--resume", SOURCE, "--init-g", "scratch",
                                      "--method", "l2sp:0:1", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(app, ["train", "--data", str(tiny_dataset), "--resume", SOURCE, "--init-g",
                                       "scratch", "--method", "ewc", "--dry-run"])
    assert refused.exit_code != 0 and "ewc" in str(refused.exception)


def test_init_d_scratch_means_fresh_d_without_the_options_check() -> None:
    """TrainOptions built directly (no from_dict/check) must not silently keep the source's D."""
    from gantl.training.loop import build_setup
    from gantl.training.options import TrainOptions
    from gantl.transfer.source import load_source

    opts = TrainOptions(resume="cifar9-stylegan2-32", resolution=32, cfg="cpu-tiny", init_d="scratch")
    setup = build_setup(opts, need_dataset=False)
    src_d = load_source("cifar9-stylegan2-32").tensors["D"]
    assert opts.fresh_d
    assert not all(torch.equal(v, src_d[k]) for k, v in setup.D.state_dict().items() if k in src_d)
