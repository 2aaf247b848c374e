"""Images from a trained generator: per-seed samples, truncation, interpolation, style mixing and
synthetic datasets.

Why it looks like this:

* **One latent per seed, the same everywhere.** Seed ``s`` maps to
  ``numpy.random.RandomState(s).randn(z_dim)``, as in NVIDIA's ``gen_images.py``, so "seed 42" is
  the same image in this tool, in NVIDIA's and in a notebook, whatever else was generated with it.
  Per-layer noise is constant by default (``noise_mode="const"``), so a seed's image is
  reproducible bit for bit.
* **G_ema, never G.** The moving average is the generator every paper reports; ``G`` is used only
  when a checkpoint has no ``G_ema`` (some imports).
* **Capabilities, not architecture names.** What applies to a network (a w space to interpolate
  and truncate in, style mixing, what ``truncation_psi`` scales) comes from
  :func:`gantl.models.registry.capabilities`, so a new family works here by declaring what it can
  do; an operation that does not apply is refused (or adapted) with one line saying so.
* **Interpolation** is spherical in z (Gaussian latents live near a sphere, so a straight line
  would pass through unlikely, low-norm latents) and linear in w (the mapping network is trained
  so that w is roughly linear; StyleGAN's perceptual-path-length argument).
* **Exported datasets are ordinary gantl datasets**: PNGs plus a StyleGAN2-ADA ``dataset.json``
  (with labels for a conditional generator), written by :class:`gantl.data.prepare.DatasetWriter`,
  so ``gantl train --data synth.zip`` and every metric read them like any other dataset.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gantl.errors import CheckpointError, ConfigError
from gantl.models.registry import Capabilities, capabilities

log = logging.getLogger("gantl")

NOISE_MODES = ("const", "random", "none")
_SNAPSHOT_RE = re.compile(r"^snapshot-(\d{6}(?:\.\d{3})?)\.safetensors$")


# --------------------------------------------------------------------------------------------- loading


@dataclass
class LoadedGenerator:
    """A generator ready to sample, with what is known about it."""

    G: nn.Module
    arch: str
    caps: Capabilities
    path: Path
    network: str  # "G_ema" or "G"
    class_names: list[str] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def z_dim(self) -> int:
        return int(self.G.z_dim)

    @property
    def c_dim(self) -> int:
        return int(getattr(self.G, "c_dim", 0) or 0)


def resolve_checkpoint(spec: str | Path) -> Path:
    """A checkpoint file for ``spec``: a run dir (its ``best.safetensors``, else its newest
    snapshot), a checkpoint file (foreign formats are converted once), or a zoo name."""
    path = Path(spec).expanduser()
    if path.is_dir():
        best = path / "best.safetensors"
        if best.is_file():
            return best
        snaps = [(float(m.group(1)), p) for p in path.iterdir() if (m := _SNAPSHOT_RE.match(p.name))]
        if not snaps:
            raise CheckpointError(f"{path} holds neither best.safetensors nor a snapshot-*.safetensors; pass a run "
                                  "dir that has written a snapshot, a checkpoint file or a zoo name")
        return max(snaps)[1]
    from gantl.checkpoints import zoo

    return Path(zoo.resolve(str(spec)))


def load_generator(spec: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    """G_ema (else G) of ``spec`` (see :func:`resolve_checkpoint`), built from its metadata, in eval mode."""
    from gantl.checkpoints.format import load_checkpoint

    path = resolve_checkpoint(spec)
    ckpt = load_checkpoint(path)
    network = next((n for n in ("G_ema", "G") if n in ckpt.tensors), None)
    if network is None:
        raise CheckpointError(f"{path} holds no generator (G_ema or G), only {', '.join(ckpt.networks)}; "
                              "pass a checkpoint written by gantl train or gantl models import")
    arch = ckpt.network_info(network).get("arch") or ""
    G = ckpt.build(network).eval().requires_grad_(False).to(device)
    names = ckpt.metadata.get("class_names")
    class_names = [str(n) for n in names] if isinstance(names, list) else None
    return LoadedGenerator(G=G, arch=arch, caps=capabilities(arch), path=path, network=network,
                           class_names=class_names, device=torch.device(device))


# --------------------------------------------------------------------------------------------- inputs


def parse_seeds(text: str) -> list[int]:
    """``"0-63"``, ``"1,5,9"`` or ``"0-3,10"`` -> a list of non-negative seeds (order kept)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ConfigError(f"seeds '{text}' must look like 0-63 or 1,5,9 (non-negative integers)")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ConfigError(f"seed range '{part}' runs backwards; write {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ConfigError(f"seeds '{text}' names no seed; pass e.g. --seeds 0-63")
    return seeds


def latents(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """z for each seed: ``RandomState(seed).randn(z_dim)`` (NVIDIA's convention), [N, z_dim] float32."""
    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds])).float()


def class_index(gen: LoadedGenerator, cls: str | int) -> int:
    """The class index for ``cls`` (a name recorded in the checkpoint, or an index)."""
    if gen.c_dim == 0:
        raise ConfigError(f"{gen.path.name} is unconditional (no classes); drop --class")
    text = str(cls).strip()
    if gen.class_names and text in gen.class_names:
        return gen.class_names.index(text)
    if re.fullmatch(r"\d+", text):
        index = int(text)
        if index < gen.c_dim:
            return index
        raise ConfigError(f"class {index} is out of range: {gen.path.name} has classes 0-{gen.c_dim - 1}")
    known = ", ".join(gen.class_names) if gen.class_names else f"indices 0-{gen.c_dim - 1} (no names recorded)"
    raise ConfigError(f"unknown class '{text}' for {gen.path.name}; known: {known}")


def labels_for(gen: LoadedGenerator, n: int, cls: str | int | None, offset: int = 0) -> torch.Tensor | None:
    """One-hot labels [n, c_dim]: class ``cls`` for every image, or classes cycling from ``offset``
    when a conditional generator gets no class; None for an unconditional one."""
    if gen.c_dim == 0:
        if cls is not None:
            class_index(gen, cls)  # raises the one-line refusal
        return None
    idx = torch.full([n], class_index(gen, cls)) if cls is not None else (torch.arange(n) + offset) % gen.c_dim
    return torch.nn.functional.one_hot(idx, gen.c_dim).float()


def truncation_note(gen: LoadedGenerator, psi: float) -> str | None:
    """Refuse truncation where it means nothing; one line when it means something else than usual."""
    if psi == 1:
        return None
    mode = gen.caps.truncation
    if mode == "w":
        return None
    if mode == "z":
        return f"{gen.arch or 'this generator'} has no w space; --trunc {psi:g} scales z toward 0 instead"
    raise ConfigError(f"{gen.arch or 'this generator'} has no w space and no truncation; drop --trunc")


# --------------------------------------------------------------------------------------------- core


@torch.no_grad()
def synthesize(gen: LoadedGenerator, z: torch.Tensor, c: torch.Tensor | None, psi: float = 1.0,
               noise_mode: str = "const", batch: int = 32) -> torch.Tensor:
    """Images [N, C, H, W] in about [-1, 1] (CPU) for latents ``z`` and labels ``c``."""
    if noise_mode not in NOISE_MODES:
        raise ConfigError(f"noise mode '{noise_mode}' is not one of {', '.join(NOISE_MODES)}")
    out = []
    for i in range(0, z.shape[0], batch):
        zi = z[i:i + batch].to(gen.device)
        ci = c[i:i + batch].to(gen.device) if c is not None else None
        out.append(gen.G(zi, ci, truncation_psi=psi, noise_mode=noise_mode).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def mapped(gen: LoadedGenerator, z: torch.Tensor, c: torch.Tensor | None, psi: float = 1.0) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of a generator with a w space."""
    if not gen.caps.has_mapping:
        raise ConfigError(f"{gen.arch or 'this generator'} has no w space")
    return gen.G.mapping(z.to(gen.device), c.to(gen.device) if c is not None else None, truncation_psi=psi)


@torch.no_grad()
def synthesize_ws(gen: LoadedGenerator, ws: torch.Tensor, noise_mode: str = "const", batch: int = 32) -> torch.Tensor:
    """Images for ws [N, num_ws, w_dim] through ``G.synthesis``."""
    return torch.cat([gen.G.synthesis(ws[i:i + batch].to(gen.device), noise_mode=noise_mode).float().cpu()
                      for i in range(0, ws.shape[0], batch)])


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` [1, D] at fractions ``t`` [T] -> [T, D]
    (the norm is interpolated linearly, the direction along the great circle)."""
    t = t[:, None]
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua * ub).sum(dim=1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if float(so) < 1e-6:  # (anti)parallel: the great circle is undefined, a line is as good
        direction = (1 - t) * ua + t * ub
    else:
        direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so
    return direction * ((1 - t) * na + t * nb)


# --------------------------------------------------------------------------------------------- images


def to_hwc_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C], rounding as StyleGAN2-ADA does."""
    from gantl.metrics.imageops import generator_to_uint8

    return generator_to_uint8(images).permute(0, 2, 3, 1).numpy()


def _pil(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def tile(cells: Sequence[np.ndarray | None], cols: int, pad: int = 0, background: int = 255) -> np.ndarray:
    """Tile HWC uint8 images row-major into a grid; ``None`` cells stay background (style-mix corner)."""
    first = next(c for c in cells if c is not None)
    h, w, ch = first.shape
    rows = (len(cells) + cols - 1) // cols
    canvas = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, ch), background, dtype=np.uint8)
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        r, k = divmod(i, cols)
        canvas[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = cell
    return canvas


@dataclass
class Result:
    """What a generate call wrote, and the one-line notes it has for the user."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grid: Path | None = None


def _prepare_out(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder for the images")
    out.mkdir(parents=True, exist_ok=True)
    return out


def generate_images(gen: LoadedGenerator, seeds: Sequence[int], out: str | Path, *, psi: float = 1.0,
                    cls: str | int | None = None, noise_mode: str = "const", grid_cols: int | None = None,
                    batch: int = 32) -> Result:
    """``seedNNNN.png`` for every seed and ``grid.png`` of them all (row-major, in seed order)."""
    out = _prepare_out(out)
    result = Result()
    if note := truncation_note(gen, psi):
        result.notes.append(note)
    if gen.c_dim and cls is None:
        result.notes.append(f"conditional generator and no --class: classes cycle 0-{gen.c_dim - 1} over the seeds")
    images = to_hwc_uint8(synthesize(gen, latents(seeds, gen.z_dim), labels_for(gen, len(seeds), cls), psi,
                                     noise_mode, batch))
    for seed, arr in zip(seeds, images, strict=True):
        path = out / f"seed{seed:04d}.png"
        _pil(arr).save(path)
        result.files.append(path)
    cols = grid_cols or math.ceil(math.sqrt(len(seeds)))
    result.grid = out / "grid.png"
    _pil(tile(list(images), cols)).save(result.grid)
    result.files.append(result.grid)
    return result


def interpolate(gen: LoadedGenerator, seed_a: int, seed_b: int, steps: int, out: str | Path, *, psi: float = 1.0,
                cls: str | int | None = None, noise_mode: str = "const", frame_ms: int = 80) -> Result:
    """``steps`` frames from seed A to seed B (lerp in w where there is a w space, else slerp in z):
    ``frameNNN.png``, a strip ``interp.png`` and an animated, looping ``interp.gif``."""
    if steps < 2:
        raise ConfigError(f"--steps {steps} is too few; an interpolation needs at least 2 frames")
    out = _prepare_out(out)
    result = Result()
    if note := truncation_note(gen, psi):
        result.notes.append(note)
    z = latents([seed_a, seed_b], gen.z_dim)
    c = labels_for(gen, 1, cls)
    t = torch.linspace(0, 1, steps)
    if gen.caps.has_mapping:
        ws = mapped(gen, z, c.expand(2, -1) if c is not None else None, psi).cpu()
        w_t = ws[0:1] + (ws[1:2] - ws[0:1]) * t[:, None, None]
        images = synthesize_ws(gen, w_t, noise_mode)
        result.notes.append(f"interpolating linearly in w between seeds {seed_a} and {seed_b}")
    else:
        images = synthesize(gen, slerp(z[0:1], z[1:2], t), c.expand(steps, -1) if c is not None else None, psi,
                            noise_mode)
        result.notes.append(f"{gen.arch or 'this generator'} has no w space; interpolating spherically in z")
    frames = to_hwc_uint8(images)
    pil_frames = []
    for i, arr in enumerate(frames):
        path = out / f"frame{i:03d}.png"
        img = _pil(arr)
        img.save(path)
        pil_frames.append(img.convert("RGB"))
        result.files.append(path)
    strip = out / "interp.png"
    _pil(tile(list(frames), len(frames))).save(strip)
    gif = out / "interp.gif"
    # Every frame is its own palette image, and there is no optimisation pass: frames that look alike
    # must still count as frames (Pillow would merge identical consecutive frames otherwise).
    pil_frames[0].save(gif, save_all=True, append_images=pil_frames[1:], duration=frame_ms, loop=0,
                       optimize=False, disposal=1)
    result.files += [strip, gif]
    result.grid = strip
    return result


def style_mix(gen: LoadedGenerator, row_seeds: Sequence[int], col_seeds: Sequence[int], out: str | Path, *,
              layers: Sequence[int] | None = None, psi: float = 1.0, cls: str | int | None = None,
              noise_mode: str = "const") -> Result:
    """NVIDIA's style-mixing figure: the first row holds the column seeds' images, the first column
    the row seeds', and cell (r, k) is row seed r with the ws at ``layers`` taken from column seed k
    (default: the coarse half, which carries pose and shape). Writes ``stylemix.png``."""
    if not gen.caps.supports_style_mix:
        raise ConfigError(f"{gen.arch or 'this generator'} has no per-layer styles to mix; --style-mix needs a "
                          "StyleGAN-type generator")
    out = _prepare_out(out)
    result = Result()
    num_ws = int(gen.G.num_ws)
    layers = list(range(max(num_ws // 2, 1))) if layers is None else list(layers)
    bad = [i for i in layers if not 0 <= i < num_ws]
    if bad or not layers:
        raise ConfigError(f"--mix-layers {bad or layers} is out of range; this generator has layers 0-{num_ws - 1}")
    seeds = list(dict.fromkeys([*row_seeds, *col_seeds]))
    c = labels_for(gen, len(seeds), cls)
    ws_all = mapped(gen, latents(seeds, gen.z_dim), c, psi).cpu()
    ws = {s: ws_all[i] for i, s in enumerate(seeds)}
    plain = dict(zip(seeds, to_hwc_uint8(synthesize_ws(gen, ws_all, noise_mode)), strict=True))
    mixed_ws = []
    for r in row_seeds:
        for k in col_seeds:
            w = ws[r].clone()
            w[layers] = ws[k][layers]
            mixed_ws.append(w)
    mixed = to_hwc_uint8(synthesize_ws(gen, torch.stack(mixed_ws), noise_mode))
    cells: list[np.ndarray | None] = [None, *(plain[k] for k in col_seeds)]
    for i, r in enumerate(row_seeds):
        cells.append(plain[r])
        cells.extend(mixed[i * len(col_seeds):(i + 1) * len(col_seeds)])
    path = out / "stylemix.png"
    _pil(tile(cells, len(col_seeds) + 1)).save(path)
    result.files.append(path)
    result.grid = path
    result.notes.append(f"rows: seeds {', '.join(map(str, row_seeds))}; columns: seeds "
                        f"{', '.join(map(str, col_seeds))}; layers {layers[0]}-{layers[-1]} come from the column")
    return result


def export_dataset(gen: LoadedGenerator, count: int, out: str | Path, *, first_seed: int = 0, psi: float = 1.0,
                   cls: str | int | None = None, noise_mode: str = "const", batch: int = 32,
                   progress: bool = True) -> Result:
    """``count`` images from seeds ``first_seed..`` as a gantl dataset (zip or folder, by ``out``'s
    suffix) with ``dataset.json``; a conditional generator's labels (one class, or classes cycling
    over the seeds) go into it, named as recorded in the checkpoint."""
    from gantl.data.prepare import DatasetWriter, encode_png
    from gantl.progress import make_progress

    if count < 1:
        raise ConfigError(f"--export-dataset {count}: give a positive number of images")
    result = Result()
    if note := truncation_note(gen, psi):
        result.notes.append(note)
    writer = DatasetWriter(out)
    class_names = None
    if gen.c_dim:
        names = gen.class_names if gen.class_names and len(gen.class_names) >= gen.c_dim else None
        class_names = names[:gen.c_dim] if names else [str(i) for i in range(gen.c_dim)]
    bar = make_progress() if progress else None
    try:
        task = bar.add_task("generating dataset", total=count) if bar is not None else None
        if bar is not None:
            bar.start()
        for start in range(0, count, batch):
            seeds = list(range(first_seed + start, first_seed + min(start + batch, count)))
            c = labels_for(gen, len(seeds), cls, offset=start)
            images = to_hwc_uint8(synthesize(gen, latents(seeds, gen.z_dim), c, psi, noise_mode, batch))
            for j, arr in enumerate(images):
                label = int(c[j].argmax()) if c is not None else None
                writer.add(f"img{start + j:08d}.png", encode_png(_pil(arr)), label)
            if bar is not None:
                bar.advance(task, len(seeds))
    except BaseException:
        _abandon(writer)
        raise
    finally:
        if bar is not None:
            bar.stop()
    path = writer.close(class_names)
    result.files.append(path)
    labelled = f" with {gen.c_dim}-class labels" if gen.c_dim else ""
    result.notes.append(f"{count} images from seeds {first_seed}-{first_seed + count - 1}{labelled} in {path}")
    return result


def _abandon(writer: Any) -> None:
    """Remove a half-written export (the writer only moves its temporary file into place on close)."""
    import shutil

    if writer._zip is not None:
        writer._zip.close()
    if writer.tmp.is_dir():
        shutil.rmtree(writer.tmp, ignore_errors=True)
    else:
        writer.tmp.unlink(missing_ok=True)


def describe(gen: LoadedGenerator) -> dict[str, Any]:
    """What the CLI prints first: which file and network, and what applies to it."""
    return {"checkpoint": str(gen.path), "network": gen.network, "arch": gen.arch,
            "resolution": int(getattr(gen.G, "img_resolution", 0)), "c_dim": gen.c_dim,
            "w_space": gen.caps.has_mapping, "style_mix": gen.caps.supports_style_mix}
