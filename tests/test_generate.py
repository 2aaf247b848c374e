"""`gantl generate`: files, sizes and the properties each operation promises (bundled zoo models, CPU)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gantl import generate as gen
from gantl.checkpoints.format import save_checkpoint
from gantl.cli import app
from gantl.data.dataset import ImageDataset
from gantl.errors import CheckpointError, ConfigError
from gantl.models import presets
from gantl.models.registry import ARCHS, build, capabilities

SG2 = "cifar9-stylegan2-32"
DCGAN = "cifar9-dcgan-32"
runner = CliRunner()


@pytest.fixture(scope="module")
def sg2() -> gen.LoadedGenerator:
    return gen.load_generator(SG2)


@pytest.fixture(scope="module")
def dcgan() -> gen.LoadedGenerator:
    return gen.load_generator(DCGAN)


@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory) -> Path:
    """A randomly initialised 2-class StyleGAN2 (cpu-tiny, 32 px) saved with its class names."""
    torch.manual_seed(0)
    kwargs = presets.get_preset("cpu-tiny", resolution=32).generator_kwargs(32, 3, 2)
    G = build("stylegan2", "G", kwargs)
    path = tmp_path_factory.mktemp("cond") / "cond.safetensors"
    return save_checkpoint(path, {"G_ema": G}, {"class_names": ["cat", "dog"], "kimg": 0})


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_parse_seeds():
    assert gen.parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert gen.parse_seeds("7") == [7]
    for bad in ("a", "5-2", ""):
        with pytest.raises(ConfigError):
            gen.parse_seeds(bad)


def test_cli_writes_one_png_per_seed_and_a_grid(tmp_path):
    result = runner.invoke(app, ["generate", SG2, "--seeds", "0-8", "--out", str(tmp_path / "s"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "s").glob("seed*.png"))
    assert [p.name for p in pngs] == [f"seed{i:04d}.png" for i in range(9)]
    assert all(Image.open(p).size == (32, 32) for p in pngs)
    grid = _png(tmp_path / "s" / "grid.png")
    assert grid.shape == (96, 96, 3)  # 9 seeds -> 3 x 3 cells of 32 px
    np.testing.assert_array_equal(grid[32:64, 64:96], _png(pngs[5]))  # row-major, in seed order
    # seed -> image is deterministic across calls (fixed latents, constant noise)
    again = gen.generate_images(gen.load_generator(SG2), [5], tmp_path / "again")
    np.testing.assert_array_equal(_png(again.files[0]), _png(pngs[5]))


def test_truncation_psi_zero_gives_the_same_image_for_every_seed_on_stylegan2(sg2, tmp_path):
    r0 = gen.generate_images(sg2, [0, 1, 2], tmp_path / "t0", psi=0.0)
    a, b, c = (_png(p) for p in r0.files[:3])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not r0.notes  # StyleGAN2 truncates in w: nothing to explain
    r1 = gen.generate_images(sg2, [0, 1], tmp_path / "t1", psi=1.0)
    assert not np.array_equal(_png(r1.files[0]), _png(r1.files[1]))


def test_dcgan_truncation_is_explained_and_style_mix_refused(dcgan, tmp_path):
    r = gen.generate_images(dcgan, [0, 1], tmp_path / "d", psi=0.5)
    assert r.notes == ["dcgan has no w space; --trunc 0.5 scales z toward 0 instead"]
    with pytest.raises(ConfigError, match="no per-layer styles"):
        gen.style_mix(dcgan, [0], [1], tmp_path / "m")


@pytest.mark.parametrize("name", [SG2, DCGAN])
def test_interpolation_writes_frames_and_a_gif_with_one_frame_per_step(name, tmp_path):
    g = gen.load_generator(name)
    r = gen.interpolate(g, 3, 7, 6, tmp_path / "i")
    frames = sorted((tmp_path / "i").glob("frame*.png"))
    assert len(frames) == 6
    gif = Image.open(tmp_path / "i" / "interp.gif")
    assert gif.n_frames == 6
    # the ends are the two seeds' own images
    ends = gen.generate_images(g, [3, 7], tmp_path / "ends")
    np.testing.assert_allclose(_png(frames[0]), _png(ends.files[0]), atol=1)
    np.testing.assert_allclose(_png(frames[-1]), _png(ends.files[1]), atol=1)
    assert ("linearly in w" in r.notes[0]) == (name == SG2)


def test_slerp_keeps_the_ends_and_interpolates_the_norm():
    a, b = torch.randn(1, 16), 2 * torch.randn(1, 16)
    out = gen.slerp(a, b, torch.linspace(0, 1, 5))
    torch.testing.assert_close(out[0], a[0])
    torch.testing.assert_close(out[-1], b[0])
    torch.testing.assert_close(out[2].norm(), (a.norm() + b.norm()) / 2)


def test_style_mix_grid_layout(sg2, tmp_path):
    r = gen.style_mix(sg2, [0, 1], [10, 11, 12], tmp_path / "m", layers=[0, 1])
    grid = _png(r.grid)
    assert grid.shape == (3 * 32, 4 * 32, 3)  # (rows + 1) x (cols + 1)
    assert (grid[:32, :32] == 255).all()  # empty corner
    plain = gen.generate_images(sg2, [0, 10], tmp_path / "p")
    np.testing.assert_allclose(grid[32:64, :32], _png(plain.files[0]), atol=1)  # row header = seed 0
    np.testing.assert_allclose(grid[:32, 32:64], _png(plain.files[1]), atol=1)  # column header = seed 10
    assert not np.array_equal(grid[32:64, 32:64], grid[32:64, :32])  # the mixed cell differs from its row


def test_export_dataset_is_a_trainable_dataset(sg2, tmp_path):
    out = tmp_path / "synth.zip"
    result = runner.invoke(app, ["generate", SG2, "--export-dataset", "20", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ds = ImageDataset(out, progress=False)
    assert len(ds) == 20 and ds.resolution == 32 and ds.c_dim == 0
    dry = runner.invoke(app, ["train", "--dry-run", "--json", "--data", str(out), "--cfg", "cpu-tiny"])
    assert dry.exit_code == 0, dry.output


def test_export_of_a_conditional_model_carries_labels(conditional_ckpt, tmp_path):
    g = gen.load_generator(conditional_ckpt)
    assert g.c_dim == 2 and g.class_names == ["cat", "dog"]
    gen.export_dataset(g, 7, tmp_path / "cyc.zip", progress=False)
    ds = ImageDataset(tmp_path / "cyc.zip", use_labels=True, progress=False)
    assert ds.c_dim == 2 and ds.class_names == ["cat", "dog"]
    assert [int(ds[i][1].argmax()) for i in range(len(ds))] == [0, 1, 0, 1, 0, 1, 0]
    gen.export_dataset(g, 5, tmp_path / "dog.zip", cls="dog", progress=False)
    ds = ImageDataset(tmp_path / "dog.zip", use_labels=True, progress=False)
    assert [int(ds[i][1].argmax()) for i in range(len(ds))] == [1] * 5
    dry = runner.invoke(app, ["train", "--dry-run", "--json", "--cond", "--data", str(tmp_path / "cyc.zip"),
                              "--cfg", "cpu-tiny"])
    assert dry.exit_code == 0, dry.output


def test_class_choice_names_indices_and_refusals(conditional_ckpt, sg2, tmp_path):
    g = gen.load_generator(conditional_ckpt)
    assert gen.class_index(g, "dog") == gen.class_index(g, "1") == 1
    with pytest.raises(ConfigError, match="known: cat, dog"):
        gen.class_index(g, "horse")
    with pytest.raises(ConfigError, match="out of range"):
        gen.class_index(g, 2)
    with pytest.raises(ConfigError, match="unconditional"):
        gen.generate_images(sg2, [0], tmp_path / "x", cls="0")
    # a class changes the image of a seed; cycling without --class is announced
    a = gen.generate_images(g, [4], tmp_path / "a", cls="cat")
    b = gen.generate_images(g, [4], tmp_path / "b", cls="dog")
    assert not np.array_equal(_png(a.files[0]), _png(b.files[0]))
    assert "classes cycle" in gen.generate_images(g, [4], tmp_path / "c").notes[0]


def test_run_dir_resolves_to_best_else_newest_snapshot(tmp_path):
    zoo_file = gen.resolve_checkpoint(SG2)
    run = tmp_path / "00000-run"
    run.mkdir()
    with pytest.raises(CheckpointError, match="neither best.safetensors nor a snapshot"):
        gen.resolve_checkpoint(run)
    for tag in ("000000.128", "000002", "000001"):
        shutil.copyfile(zoo_file, run / f"snapshot-{tag}.safetensors")
    assert gen.resolve_checkpoint(run).name == "snapshot-000002.safetensors"
    shutil.copyfile(zoo_file, run / "best.safetensors")
    assert gen.resolve_checkpoint(run).name == "best.safetensors"
    assert gen.load_generator(run).network == "G_ema"


@pytest.mark.parametrize("arch", sorted(a for a in ARCHS if not capabilities(a).has_mapping))
def test_every_family_without_a_w_space_generates_through_its_declared_capabilities(arch, tmp_path):
    """Families are reached through the registry only: a random-init conditional G of each one
    samples, truncates (as its capabilities say), interpolates, exports labels and refuses style mixing."""
    torch.manual_seed(0)
    G = build(arch, "G", {"img_resolution": 32, "c_dim": 2})
    path = save_checkpoint(tmp_path / f"{arch}.safetensors", {"G_ema": G}, {"kimg": 0})
    g = gen.load_generator(path)
    assert g.arch == arch and g.c_dim == 2
    if capabilities(arch).truncation == "z":
        r = gen.generate_images(g, [0, 1], tmp_path / "s", psi=0.5, cls=1)
        assert r.notes == [f"{arch} has no w space; --trunc 0.5 scales z toward 0 instead"]
        assert Image.open(r.grid).size == (64, 32)  # 2 seeds side by side
    else:
        with pytest.raises(ConfigError, match="no w space and no truncation"):
            gen.generate_images(g, [0, 1], tmp_path / "s", psi=0.5)
    gen.interpolate(g, 0, 1, 4, tmp_path / "i", cls=0)
    assert Image.open(tmp_path / "i" / "interp.gif").n_frames == 4
    with pytest.raises(ConfigError, match="no per-layer styles"):
        gen.style_mix(g, [0], [1], tmp_path / "m")
    gen.export_dataset(g, 3, tmp_path / "x.zip", progress=False)
    ds = ImageDataset(tmp_path / "x.zip", use_labels=True, progress=False)
    assert len(ds) == 3 and ds.c_dim == 2


def test_a_conditional_run_dir_generates_a_class_by_its_name(tiny_dataset, tmp_path):
    """Training records the dataset's class names in the snapshot, so --class takes a name."""
    result = runner.invoke(app, ["train", "--data", str(tiny_dataset), "--cond", "--cfg", "cpu-tiny", "--kimg", "0.008",
                                 "--batch", "8", "--tick", "0.008", "--outdir", str(tmp_path / "runs"),
                                 "--no-progress", "--threads", "1"])
    assert result.exit_code == 0, result.output
    run_dir = next((tmp_path / "runs").iterdir())
    g = gen.load_generator(run_dir)
    assert g.class_names == ["a", "b"]
    out = runner.invoke(app, ["generate", str(run_dir), "--seeds", "0-1", "--class", "b", "--out", str(tmp_path / "b"),
                              "--device", "cpu"])
    assert out.exit_code == 0, out.output
    assert len(list((tmp_path / "b").glob("seed*.png"))) == 2
