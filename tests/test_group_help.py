"""Every command group's help page shows an example (issue 14: data, models, experiment had none)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gantl.cli import app


@pytest.mark.parametrize("group", ["data", "models", "experiment"])
def test_group_help_has_an_example(group: str) -> None:
    result = CliRunner().invoke(app, [group, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and f"gantl {group} " in result.output
