"""`--resume SRC` takes the architecture from the source; runs from a source are named after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantl.cli import app
from gantl.config import from_dict
from gantl.errors import ConfigError
from gantl.training.loop import build_setup, run_description
from gantl.training.options import TrainOptions
from gantl.transfer.source import check_choices_against_source, source_training_choices


def test_zoo_source_records_its_model_and_preset() -> None:
    assert source_training_choices("cifar9-stylegan2-32") == {"model": "stylegan2", "cfg": "cpu-tiny"}
    assert source_training_choices("cifar9-dcgan-32") == {"model": "dcgan", "cfg": "dcgan-small"}


def test_given_choices_win_only_when_they_agree() -> None:
    assert check_choices_against_source("cifar9-stylegan2-32", {}) == {"model": "stylegan2", "cfg": "cpu-tiny"}
    assert check_choices_against_source("cifar9-stylegan2-32", {"cfg": "cpu-tiny"}) == {"model": "stylegan2"}
    with pytest.raises(ConfigError, match="--cfg cpu-small conflicts .* cfg cpu-tiny"):
        check_choices_against_source("cifar9-stylegan2-32", {"cfg": "cpu-small"})
    with pytest.raises(ConfigError, match="--model dcgan conflicts .* model stylegan2"):
        check_choices_against_source("cifar9-stylegan2-32", {"model": "dcgan"})


def test_networks_are_built_from_the_source_config_even_under_another_preset() -> None:
    # cfg 'auto' at 32 px would build 256-512-channel networks; the source's config (64 channels) wins.
    opts = from_dict(TrainOptions, dict(resume="cifar9-stylegan2-32", resolution=32, cfg="auto"))
    setup = build_setup(opts, need_dataset=False)
    assert setup.G.config["synthesis_kwargs"]["channel_max"] == 64 and setup.G.z_dim == 128
    assert setup.D.config["channel_max"] == 64


def test_readme_quick_tour_command_builds(cifar10_zip: Path) -> None:
    result = CliRunner().invoke(app, [
        "train", "--data", f"{cifar10_zip}:train/horse", "--subset", "50", "--resume", "cifar9-stylegan2-32",
        "--method", "freezed:2", "--aug", "ada", "--kimg", "20", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    conflict = CliRunner().invoke(app, [
        "train", "--data", f"{cifar10_zip}:train/horse", "--subset", "50", "--resume", "cifar9-stylegan2-32",
        "--cfg", "cpu-small", "--dry-run"])
    assert conflict.exit_code != 0 and isinstance(conflict.exception, ConfigError)
    assert "conflicts with the source" in str(conflict.exception)


def test_run_names_say_where_a_run_started() -> None:
    scratch = from_dict(TrainOptions, dict(cfg="cpu-tiny"))
    assert run_description(scratch, "horses") == "horses-stylegan2-cpu-tiny-scratch"
    src = from_dict(TrainOptions, dict(cfg="cpu-tiny", resume="cifar9-stylegan2-32"))
    assert run_description(src, "cifar10") == "cifar10-stylegan2-cpu-tiny-finetune-from-cifar9-stylegan2-32"
    frz = from_dict(TrainOptions, dict(cfg="cpu-tiny", resume="/x/my run.safetensors", methods=["freezed:2"]))
    assert run_description(frz, "h") == "h-stylegan2-cpu-tiny-freezed2-from-my_run"
