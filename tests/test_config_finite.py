"""Non-finite numbers never reach the code: nan/inf options are one-line ConfigErrors, naming the key.

Issue 14 item 7: ``gantl train --kimg nan`` / ``--kimg inf`` passed the ``min=0`` bound (``nan < 0``
is false; ``inf`` has no max), crashed the loop with a traceback and left a run dir behind. ``--kimg
0`` exited 0 having trained nothing and written no snapshot.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantl.cli import app
from gantl.config import apply_overrides, from_dict, load_toml, option
from gantl.errors import ConfigError
from gantl.training.options import TrainOptions


@dataclasses.dataclass
class Knobs:
    rate: float = option(0.5, min=0, help="a bounded float")
    free: float = option(1.0, help="an unbounded float")
    count: int = option(4, min=1, help="an int")
    pair: list[float] | None = option(None, help="a list of floats")


@pytest.mark.parametrize("override", ["rate=nan", "rate=inf", "free=-inf", "free=NaN", "count=inf", "count=nan",
                                      "pair=0.5,nan", "free=1e400"])
def test_overrides_refuse_non_finite(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as err:
        apply_overrides(Knobs(), [override])
    assert f"'{key}" in str(err.value) and "finite" in str(err.value) and "\n" not in str(err.value)


def test_toml_nan_and_direct_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text("rate = nan\n")  # TOML has nan/inf literals
    with pytest.raises(ConfigError, match="rate"):
        load_toml(Knobs, path)
    with pytest.raises(ConfigError, match="free"):
        from_dict(Knobs, {"free": float("inf")})
    assert apply_overrides(Knobs(), ["free=-3.5", "rate=0", "pair=0,0.99"]).free == -3.5


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_train_kimg_bad_is_one_line_and_leaves_no_run_dir(tmp_path: Path, tiny_dataset: Path, value: str) -> None:
    outdir = tmp_path / "runs"
    result = CliRunner().invoke(app, ["train", "--data", str(tiny_dataset), "--model", "dcgan", "--cfg", "dcgan-small",
                                      "--kimg", value, "--outdir", str(outdir), "--no-progress"])
    assert isinstance(result.exception, ConfigError), (result.exception, result.output)
    assert "kimg" in str(result.exception) and "\n" not in str(result.exception)
    assert not outdir.exists() or not any(outdir.iterdir())


def test_train_kimg_nan_via_the_console_entry_prints_one_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "gantl.cli", "train", "--model", "dcgan", "--resolution", "32",
                          "--kimg", "inf", "--outdir", str(tmp_path / "runs")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "kimg" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_run_with_nan_kimg_is_refused_before_training(tmp_path: Path) -> None:
    run = tmp_path / "00000-x"
    run.mkdir()
    (run / "config.toml").write_text('model = "dcgan"\ncfg = "dcgan-small"\nkimg = 1.0\n')
    before = sorted(p.name for p in run.iterdir())
    result = CliRunner().invoke(app, ["train", "--resume-run", str(run), "--kimg", "nan"])
    assert isinstance(result.exception, ConfigError) and "kimg" in str(result.exception)
    assert sorted(p.name for p in run.iterdir()) == before


def test_kimg_positive_is_accepted() -> None:
    assert from_dict(TrainOptions, {"kimg": 0.001}).kimg == 0.001
