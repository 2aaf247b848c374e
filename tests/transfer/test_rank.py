"""gantl models rank: candidate sources ordered by the distance of their samples to the target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gantl.cli import app
from gantl.errors import ConfigError
from gantl.models.registry import build
from gantl.transfer.rank import AllClasses, rank_sources


def test_cli_ranks_sources_nearest_first_as_table_and_json(tiny_dataset: Path) -> None:
    args = ["models", "rank", "--data", str(tiny_dataset), "cifar9-stylegan2-32", "cifar9-dcgan-32",
            "--metric", "kid", "-n", "16", "--num-real", "16"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("["):])
    assert [r["rank"] for r in rows] == [1, 2]
    assert {r["source"] for r in rows} == {"cifar9-stylegan2-32", "cifar9-dcgan-32"}
    assert rows[0]["kid"] <= rows[1]["kid"]
    table = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0 and rows[0]["source"] in table.output and "rank" in table.output


def test_conditional_sources_are_sampled_over_all_classes() -> None:
    G = build("dcgan", "G", dict(z_dim=8, c_dim=3, img_resolution=32, ngf=8)).eval()
    wrapped = AllClasses(G)
    assert wrapped.c_dim == 0 and wrapped.z_dim == 8
    torch.manual_seed(0)
    assert wrapped(torch.randn([5, 8]), torch.zeros([5, 0])).shape == (5, 3, 32, 32)


def test_rank_refuses_what_cannot_rank(tiny_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="at least one source"):
        rank_sources(tiny_dataset, [])
    with pytest.raises(ConfigError, match="rank by one of fid, kid, iw, not pr"):
        rank_sources(tiny_dataset, ["cifar9-dcgan-32"], ["pr"])
