"""`gantl train --dry-run [--json]` describes the networks without a dataset and without training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantl.cli import app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, ["train", *args, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dry_run_json_stylegan2_cifar_conditional() -> None:
    out = _json(["--model", "stylegan2", "--cfg", "cifar", "--resolution", "32", "--num-classes", "10"])
    G, D = out["G"], out["D"]
    # a few names/shapes fixed by stylegan2-ada-pytorch's cifar config (512 channels, 2 mapping layers)
    assert G["mapping.embed.weight"] == [512, 10] and G["mapping.fc1.weight"] == [512, 512]
    assert "mapping.fc2.weight" not in G
    assert G["synthesis.b4.const"] == [512, 4, 4] and G["synthesis.b32.torgb.weight"] == [3, 512, 1, 1]
    assert D["b32.fromrgb.weight"] == [512, 3, 1, 1] and D["b4.out.weight"] == [512, 512]
    assert D["mapping.embed.weight"] == [512, 10]
    assert "synthesis.b4.resample_filter" in G  # buffers are listed too
    trainable = set(out["trainable"])
    assert "G.mapping.fc0.weight" in trainable and "D.b4.out.bias" in trainable
    assert "G.synthesis.b4.resample_filter" not in trainable


def test_dry_run_json_lists_frozen_as_not_trainable() -> None:
    out = _json(["--model", "dcgan", "--resolution", "32", "--method", "freezed:2", "--method", "freezeg:1"])
    trainable = set(out["trainable"])
    assert "D.blocks.0.conv.weight" not in trainable and "D.blocks.1.bn.weight" not in trainable
    assert "D.blocks.2.conv.weight" in trainable
    assert "G.blocks.0.conv.weight" not in trainable and "G.blocks.1.conv.weight" in trainable
    assert out["G"]["blocks.0.conv.weight"] == [100, 256, 4, 4]


def test_dry_run_text_counts() -> None:
    result = runner.invoke(app, ["train", "--model", "dcgan", "--cfg", "dcgan-small", "--resolution", "32",
                                 "--method", "freezed:1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "D: 167,808 parameters, 166,272 trainable, 1,536 frozen" in result.output


def test_config_file_and_set_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "dcgan"\ncfg = "dcgan-small"\nresolution = 64\n')
    out = _json(["--config", str(cfg), "--set", "resolution=32"])
    assert out["G"]["blocks.0.conv.weight"] == [100, 128, 4, 4]


def test_bad_option_is_one_line_error() -> None:
    from gantl.errors import ConfigError

    result = runner.invoke(app, ["train", "--model", "dcgan", "--resolution", "32", "--aug", "magic", "--dry-run"])
    assert isinstance(result.exception, ConfigError) and "allowed values" in str(result.exception)
    with pytest.raises(ConfigError, match="--data"):
        raise runner.invoke(app, ["train", "--model", "dcgan", "--dry-run"]).exception


def test_dry_run_json_stylegan2_freezing() -> None:
    out = _json(["--model", "stylegan2", "--cfg", "cpu-tiny", "--resolution", "32", "--method", "freezed:2",
                 "--method", "freezeg:1", "--method", "freeze-mapping"])
    trainable = set(out["trainable"])
    # D blocks from the image side: b32, b16 frozen; b8 and the b4 epilogue train
    assert not any(n.startswith(("D.b32.", "D.b16.")) for n in trainable)
    assert "D.b8.conv0.weight" in trainable and "D.b4.out.weight" in trainable
    # G: synthesis b4 (constant side) and the mapping network frozen
    assert not any(n.startswith(("G.synthesis.b4.", "G.mapping.")) for n in trainable)
    assert "G.synthesis.b8.conv0.weight" in trainable
