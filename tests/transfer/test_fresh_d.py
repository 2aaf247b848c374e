"""``--fresh-d``: transfer from a generator-only source (G, G_ema) with a newly initialised D.

The real case is issue 6's: the pretrained 64 px face DCGAN shipped by the PyPI package
``gan-face-generate`` holds only a generator. It is imported, trained by gantl's own
``Trainer`` on a tiny 64 px folder, and resumed from its run dir through the CLI. The
checks are bitwise: G starts exactly at the imported weights, D exactly at the D a
from-scratch run with the same seed would get, and an interrupted run continues to the
same weights. Refusals (no D without the flag, D-side methods with it) are one-line errors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantl.checkpoints.format import load_checkpoint, save_checkpoint
from gantl.cli import main as cli_main
from gantl.config import from_dict, load_toml
from gantl.errors import ConfigError, SourceMismatchError
from gantl.training.loop import Trainer, build_setup
from gantl.training.options import TrainOptions
from gantl.transfer.base import BaseMethod, parse_methods
from gantl.transfer.source import check_fresh_d_methods

QUICK = dict(tensorboard=False, progress=False, grid_size=2)  # what the assertions need, nothing more


@pytest.fixture(scope="module")
def faces_source(tmp_path_factory: pytest.TempPathFactory, gan_face_weights: Path) -> Path:
    """The real pretrained face generator, imported into a gantl checkpoint (G and G_ema, no D)."""
    from gantl.checkpoints.importers import import_dcgan_tutorial

    return import_dcgan_tutorial(gan_face_weights, tmp_path_factory.mktemp("faces") / "faces.safetensors")


def _write_folder(root: Path, n: int, res: int) -> Path:
    """n seeded RGB images: a bright disc on noise, so the target domain is not pure noise."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True)
    yy, xx = np.mgrid[:res, :res]
    disc = (yy - res / 2) ** 2 + (xx - res / 2) ** 2 < (res / 3) ** 2
    for i in range(n):
        img = (rng.random((res, res, 3)) * 120).astype(np.uint8)
        img[disc] = (200, 170 + i, 140)
        Image.fromarray(img).save(root / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def faces64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_folder(tmp_path_factory.mktemp("faces64") / "data", n=16, res=64)


def _opts(**kw) -> TrainOptions:
    return from_dict(TrainOptions, {**QUICK, **kw})


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], what: str) -> None:
    assert sorted(got) == sorted(want), what
    for name, t in got.items():
        assert torch.equal(t, want[name]), f"{what}.{name} differs"


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the console entry point in-process; returns its exit code."""
    monkeypatch.setattr(sys, "argv", ["gantl"])  # main() rewrites sys.argv; this restores it afterwards
    with pytest.raises(SystemExit) as exc:
        cli_main([str(a) for a in args])
    return int(exc.value.code or 0)


def _g_only_source(tmp_path: Path, opts: TrainOptions, seed: int, with_d: bool = False) -> Path:
    """A gantl checkpoint built from ``opts``' networks at another seed, holding G and G_ema (and D if asked)."""
    setup = build_setup(_opts(**{**{k: getattr(opts, k) for k in ("model", "cfg", "resolution")}, "seed": seed}),
                        need_dataset=False)
    with torch.no_grad():  # G_ema differs from G, so "G_ema comes from the source's G_ema" is checkable
        for p in setup.G_ema.parameters():
            p.mul_(0.5)
    nets = {"G": setup.G, "G_ema": setup.G_ema}
    if with_d:
        nets["D"] = setup.D
    return save_checkpoint(tmp_path / f"src-{opts.model}-{seed}{'-d' if with_d else ''}.safetensors", nets, {"kimg": 1})


# ---------------------------------------------------------------------------------------------- the real source


def test_faces_generator_trains_with_fresh_d_and_resumes(faces_source: Path, faces64: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    logging.getLogger("gantl").setLevel(logging.WARNING)  # as a fresh `gantl train` process starts
    src = load_checkpoint(faces_source)
    assert sorted(src.tensors) == ["G", "G_ema"]
    opts = _opts(data=str(faces64), model="dcgan", cfg="dcgan", resume=str(faces_source), fresh_d=True,
                 methods=["finetune:0.5"], batch=8, kimg=0.016, tick_kimg=0.008, snap_kimg=0.008, seed=3,
                 outdir=str(tmp_path / "runs"))
    trainer = Trainer(opts)

    # Before the first step: G and G_ema are the imported weights, bit for bit ...
    g0 = _state(trainer.G)
    _assert_same(g0, src.tensors["G"], "G")
    _assert_same(_state(trainer.G_ema), src.tensors["G_ema"], "G_ema")
    # ... and D is exactly the D a from-scratch run with the same seed starts from (not another seed's).
    d0 = _state(trainer.D)
    scratch = dict(model="dcgan", cfg="dcgan", resolution=64)
    _assert_same(d0, _state(build_setup(_opts(**scratch, seed=3), need_dataset=False).D), "D")
    other = _state(build_setup(_opts(**scratch, seed=4), need_dataset=False).D)
    assert not torch.equal(d0["blocks.0.conv.weight"], other["blocks.0.conv.weight"])

    run_dir = trainer.train()
    assert run_dir is not None
    final = run_dir / "snapshot-000000.016.safetensors"
    assert (run_dir / "snapshot-000000.008.safetensors").is_file() and final.is_file()
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["nimg"] for s in stats] == [8, 16]
    assert all(np.isfinite(s["loss_G"]) and np.isfinite(s["loss_D"]) for s in stats)

    done = load_checkpoint(final)
    assert done.metadata["options"]["fresh_d"] is True and done.metadata["methods"] == ["finetune:0.5"]
    assert load_toml(TrainOptions, run_dir / "config.toml").fresh_d is True
    assert "D starts from its seeded initialisation" in (run_dir / "log.txt").read_text()  # logged during set-up
    # which file the run started from, by content: a zoo name may point at a retrained file later
    digest = hashlib.sha256(Path(faces_source).read_bytes()).hexdigest()
    assert f"{faces_source}, sha256 {digest}" in (run_dir / "log.txt").read_text()
    for net, start in (("G", g0), ("D", d0)):
        changed = [k for k, v in done.tensors[net].items() if v.is_floating_point() and not torch.equal(v, start[k])]
        assert "blocks.0.conv.weight" in changed, f"{net} did not train"

    # Interrupt after the first snapshot: drop the last one, resume through the CLI. The source has
    # no D, so a resume that tried to load one would fail; it must land on the same weights exactly.
    want = {net: dict(t) for net, t in done.tensors.items()}
    want_stats = (run_dir / "stats.jsonl").read_text().splitlines()
    final.unlink()
    (run_dir / "training-state-000000.016.pt").unlink()
    assert _cli(monkeypatch, "train", "--resume-run", run_dir, "--no-progress") == 0
    again = load_checkpoint(final)
    for net in ("G", "D", "G_ema"):
        _assert_same(again.tensors[net], want[net], f"resumed {net}")
    timing = {"sec_per_tick", "sec_per_kimg", "img_per_sec", "timestamp", "total_sec"}
    strip = [{k: v for k, v in json.loads(line).items() if k not in timing} for line in want_stats]
    got = [{k: v for k, v in json.loads(line).items() if k not in timing}
           for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert got == strip


def test_faces_generator_without_fresh_d_is_one_line_error(faces_source: Path, faces64: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = _cli(monkeypatch, "train", "--data", faces64, "--model", "dcgan", "--resume", faces_source,
                "--kimg", "0.008", "--outdir", tmp_path / "runs", "--no-progress")
    err = capsys.readouterr().err
    assert code == SourceMismatchError.exit_code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "has only G and G_ema" in lines[0] and "pass --fresh-d" in lines[0]
    assert not (tmp_path / "runs").exists()  # refused before a run dir was made


# ---------------------------------------------------------------------------------------------- refusals


def test_freezed_with_fresh_d_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = _opts(model="dcgan", cfg="dcgan-small", resolution=32)
    src = _g_only_source(tmp_path, base, seed=1)
    code = _cli(monkeypatch, "train", "--model", "dcgan", "--cfg", "dcgan-small", "--resolution", "32",
                "--resume", src, "--fresh-d", "--method", "freezed:2", "--dry-run")
    err = capsys.readouterr().err.strip()
    assert code == ConfigError.exit_code != 0
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--method freezed:2" in err and "--fresh-d" in err and "freezeg" in err

    # partial freezes D blocks too (refused); with 0 D blocks it is G-side only (allowed).
    with pytest.raises(ConfigError, match="partial:2:1"):
        check_fresh_d_methods(parse_methods(["partial:2:1"]))
    check_fresh_d_methods(parse_methods(["partial:0:2", "freezed:0", "finetune:0.1", "freezeg:2", "freeze-mapping"]))

    class AnchorsToSourceD(BaseMethod):  # a method from another module says so itself
        name = "l2sp-d"
        needs_source_d = True

    with pytest.raises(ConfigError, match="l2sp-d"):
        check_fresh_d_methods([AnchorsToSourceD()])


def test_fresh_d_without_a_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--resume"):
        _opts(model="dcgan", resolution=32, fresh_d=True)


def test_missing_d_error_points_at_fresh_d_even_with_allow_partial(tmp_path: Path) -> None:
    base = _opts(model="dcgan", cfg="dcgan-small", resolution=32)
    src = _g_only_source(tmp_path, base, seed=1)
    for partial in (False, True):
        with pytest.raises(SourceMismatchError, match="pass --fresh-d"):
            build_setup(_opts(model="dcgan", cfg="dcgan-small", resolution=32, resume=str(src),
                              allow_partial=partial), need_dataset=False)


def test_fresh_d_ignores_a_source_d_that_exists(tmp_path: Path) -> None:
    base = dict(model="dcgan", cfg="dcgan-small", resolution=32)
    src = _g_only_source(tmp_path, _opts(**base), seed=1, with_d=True)
    ckpt = load_checkpoint(src)
    setup = build_setup(_opts(**base, seed=5, resume=str(src), fresh_d=True), need_dataset=False)
    _assert_same(_state(setup.G), ckpt.tensors["G"], "G")
    _assert_same(_state(setup.G_ema), ckpt.tensors["G_ema"], "G_ema")
    _assert_same(_state(setup.D), _state(build_setup(_opts(**base, seed=5), need_dataset=False).D), "D")
    assert not torch.equal(setup.D.state_dict()["blocks.0.conv.weight"], ckpt.tensors["D"]["blocks.0.conv.weight"])


def test_g_ema_falls_back_to_the_source_g(tmp_path: Path) -> None:
    from gantl.models.dcgan import Generator

    torch.manual_seed(2)
    G = Generator(z_dim=100, c_dim=0, img_resolution=32, ngf=32)
    src = save_checkpoint(tmp_path / "g.safetensors", {"G": G}, {"kimg": 0})
    setup = build_setup(_opts(model="dcgan", cfg="dcgan-small", resolution=32, resume=str(src), fresh_d=True),
                        need_dataset=False)
    _assert_same(_state(setup.G_ema), _state(G), "G_ema")


# ---------------------------------------------------------------------------------------------- StyleGAN2


def test_stylegan2_g_only_checkpoint_trains_with_fresh_d_and_g_side_methods(tiny_dataset: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A gantl StyleGAN2 checkpoint holding only G/G_ema transfers; freeze-mapping and freezeg still work."""
    base = _opts(model="stylegan2", cfg="cpu-tiny", resolution=32)
    src = _g_only_source(tmp_path, base, seed=11)
    ckpt = load_checkpoint(src)
    assert sorted(ckpt.tensors) == ["G", "G_ema"]
    outdir = tmp_path / "runs"
    code = _cli(monkeypatch, "train", "--data", tiny_dataset, "--model", "stylegan2", "--cfg", "cpu-tiny",
                "--resume", src, "--fresh-d", "--method", "freeze-mapping", "--method", "freezeg:1", "--seed", "2",
                "--batch", "4", "--kimg", "0.008", "--tick", "0.004", "--outdir", outdir, "--no-progress",
                "--set", "tensorboard=false", "--set", "grid_size=2")
    assert code == 0
    (run_dir,) = outdir.iterdir()
    done = load_checkpoint(run_dir / "snapshot-000000.008.safetensors")
    assert done.metadata["options"]["fresh_d"] is True
    G_src, G_new = ckpt.tensors["G"], done.tensors["G"]
    params = [k for k, _ in ckpt.build("G").named_parameters()]  # buffers such as w_avg move regardless
    frozen = [k for k in params if k.startswith("mapping.") or k.startswith("synthesis.b4.")]
    assert frozen and all(torch.equal(G_new[k], G_src[k]) for k in frozen), "frozen G tensors moved"
    trained = [k for k in params if k not in frozen and not torch.equal(G_new[k], G_src[k])]
    assert any(k.startswith("synthesis.b32.") for k in trained), "the unfrozen G blocks did not train"
    # D started from the seeded init of a scratch run at seed 2 (not from any source) and then trained.
    d0 = _state(build_setup(_opts(model="stylegan2", cfg="cpu-tiny", resolution=32, seed=2), need_dataset=False).D)
    assert any(not torch.equal(done.tensors["D"][k], v) for k, v in d0.items() if v.is_floating_point())
    setup = build_setup(_opts(model="stylegan2", cfg="cpu-tiny", resolution=32, seed=2, resume=str(src),
                              fresh_d=True, methods=["freeze-mapping", "freezeg:1"]), need_dataset=False)
    _assert_same(_state(setup.D), d0, "D")
