"""Config overrides and validation, run-dir numbering, and the CLI's error contract."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gantl.config import apply_overrides, dump_toml, from_dict, load_toml, option
from gantl.errors import ConfigError
from gantl.rundir import make_run_dir, next_run_number


@dataclasses.dataclass
class Inner:
    lr: float = option(0.002, min=0.0, help="learning rate")
    betas: list[float] = option(default_factory=lambda: [0.0, 0.99])


@dataclasses.dataclass
class Outer:
    model: str = option("stylegan2", choices=["stylegan2", "dcgan"])
    batch: int = option(32, min=1)
    mirror: bool = False
    note: str | None = None
    opt: Inner = dataclasses.field(default_factory=Inner)


def test_overrides_coerce_types_and_nest():
    cfg = apply_overrides(Outer(), ["batch=16", "opt.lr=0.01", "mirror=true", "opt.betas=0.5,0.9"])
    assert cfg.batch == 16 and cfg.opt.lr == 0.01 and cfg.mirror is True
    assert cfg.opt.betas == [0.5, 0.9]


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("model=vae", "allowed values: stylegan2, dcgan"),
        ("batch=0", "below the minimum 1"),
        ("batch=1.5", "must be an integer"),
        ("opt.lr=fast", "must be a number"),
        ("mirror=maybe", "true or false"),
        ("bogus=1", "unknown config key 'bogus'"),
        ("opt.momentum=1", "unknown config key 'opt.momentum'"),
        ("batch", "key=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("'", ".")):
        apply_overrides(Outer(), [override])


def test_toml_round_trip(tmp_path: Path):
    cfg = apply_overrides(Outer(), ["model=dcgan", "opt.lr=0.5"])
    dump_toml(cfg, tmp_path / "c.toml")
    again = load_toml(Outer, tmp_path / "c.toml", overrides=["batch=8"])
    assert again == dataclasses.replace(cfg, batch=8)
    with pytest.raises(ConfigError, match="unknown config key 'opt.bad'"):
        from_dict(Outer, {"opt": {"bad": 1}})


def test_run_dirs_take_the_next_free_number(tmp_path: Path):
    assert next_run_number(tmp_path / "missing") == 0
    a = make_run_dir(tmp_path, "horse dcgan", Outer())
    b = make_run_dir(tmp_path, "horse dcgan")
    assert a.name == "00000-horse-dcgan" and b.name == "00001-horse-dcgan"
    assert (a / "config.toml").read_text().startswith('model = "stylegan2"')
    (tmp_path / "00007-old").mkdir()
    b.rmdir()
    assert make_run_dir(tmp_path, "x").name == "00008-x"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gantl.cli", *args], capture_output=True, text=True)


def test_cli_version_and_help_examples():
    out = _cli("--version")
    assert out.returncode == 0 and out.stdout.strip().startswith("gantl ")
    assert "Example:" in _cli("--help").stdout


def test_cli_errors_are_one_line_without_traceback():
    out = _cli("experiment", "run", "no-such-grid.toml", "--out", "never-written")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
    debug = _cli("--debug", "experiment", "run", "no-such-grid.toml", "--out", "never-written")
    assert "Traceback" in debug.stderr
