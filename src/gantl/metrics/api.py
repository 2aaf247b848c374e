"""One call to measure generated images against real ones: :func:`evaluate` and, for the training
loop, :func:`evaluate_generator`.

The plan: look up the requested metrics, collect which extractor outputs they need, load (or
compute and cache) the real-image features once per extractor, run one pass over the generated
images for every extractor at once, keep the generated pixels only when a metric trains on them,
then compute every metric from those shared results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantl.errors import MetricError
from gantl.metrics import features as feat
from gantl.metrics import stats_cache
from gantl.metrics.imageops import generator_to_uint8
from gantl.metrics.registry import FEATURES, FID_EXTRACTOR, IS_EXTRACTOR, MetricContext, get_metric

log = logging.getLogger(__name__)

DEFAULT_NUM_GEN = 5000
#: FID/KID/PR need a covariance or a neighbour: fewer than two images per side gives no number.
MIN_IMAGES = 2


def check_numbers(*, num_gen: int | None = None, num_real: int | None = None, batch: int | None = None,
                  options: dict[str, Any] | None = None) -> None:
    """Refuse counts that cannot give a real number, in one line naming the CLI option and its range.

    Before this check ``-n 0`` and ``--batch -1`` died deep in feature extraction with a
    ``KeyError: 'features'``, ``--batch 0`` with a ``ValueError`` from ``range``, and ``-n -8`` /
    ``--num-real -3`` silently sliced a couple of images and reported a meaningless FID.
    """
    import math

    def _int(value: Any, flag: str, lo: int) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
            raise MetricError(f"{flag} is {value!r}; it must be a whole number >= {lo}")

    _int(num_gen, "--num-gen/-n (generated images)", MIN_IMAGES)
    _int(num_real, "--num-real (real images)", MIN_IMAGES)
    _int(batch, "--batch (images per batch)", 1)
    opts = options or {}
    _int(opts.get("iw_steps"), "--iw-steps (critic training steps)", 1)
    ratio = opts.get("mem_ratio")
    if ratio is not None and not (isinstance(ratio, int | float) and math.isfinite(ratio) and ratio > 0):
        raise MetricError(f"--mem-ratio is {ratio!r}; it must be a finite number > 0 (e.g. 0.5)")


def open_dataset(spec, *, use_labels: bool = True):
    """An ImageDataset from a path spec (``folder``, ``x.zip``, ``x.zip:train/horse``) or itself."""
    from gantl.data.dataset import ImageDataset

    if isinstance(spec, ImageDataset):
        return spec
    if isinstance(spec, str | os.PathLike):
        return ImageDataset(spec, use_labels=use_labels, progress=False)
    raise MetricError(f"real images must be a path or an ImageDataset, not {type(spec).__name__}")


def _make_extractors(names: set[str], mode: str, backend: str, is_weights: str | None) -> dict[str, Any]:
    out = {}
    for name in sorted(names):
        if name == FID_EXTRACTOR:
            out[name] = feat.get_extractor(name, mode=mode, backend=backend)
        elif name == IS_EXTRACTOR:
            out[name] = feat.get_extractor(name, path=is_weights)
        else:
            out[name] = feat.get_extractor(name)
    return out


def real_features_key(dataset, extractor: Any, count: int, seed: int = 0) -> str:
    """The statistics-cache key of ``count`` seeded real images of ``dataset`` under ``extractor``."""
    return stats_cache.cache_key(dataset.content_hash(), extractor.cache_key(), count, seed,
                                 bool(getattr(dataset, "xflip", False)), dataset_size=len(dataset))


def real_features(dataset, extractors: dict[str, Any], count: int | None, batch: int = 50, seed: int = 0,
                  progress: bool = True, use_cache: bool = True) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """Features of the real images per extractor, from the content-keyed cache when possible."""
    indices = feat.dataset_indices(dataset, count, seed)
    results: dict[str, dict[str, np.ndarray]] = {}
    missing: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for name, extractor in extractors.items():
        keys[name] = real_features_key(dataset, extractor, len(indices), seed)
        hit = stats_cache.load(keys[name]) if use_cache else None
        if hit is not None:
            log.info("real features for %s: cache hit (%s)", name, keys[name][:12])
            results[name] = hit
        else:
            missing[name] = extractor
    if missing:
        computed, _ = feat.extract(missing, feat.dataset_batches(dataset, indices, batch), total=len(indices),
                                   description="real images", progress=progress)
        for name, arrays in computed.items():
            if use_cache:
                stats_cache.save(keys[name], arrays)
            results[name] = arrays
    return results, indices


def _plan(metrics: Sequence[str], extractor: str):
    specs = [get_metric(m) for m in dict.fromkeys(metrics)]
    if not specs:
        raise MetricError("no metrics requested; pass e.g. --metrics fid,kid")
    real_x = {extractor if e == FEATURES else e for s in specs for e, _ in s.real_features}
    fake_x = {extractor if e == FEATURES else e for s in specs for e, _ in s.fake_features}
    keep = any(s.fake_images for s in specs)
    return specs, real_x, fake_x, keep


def evaluate_batches(real, fake_batches: Iterator[torch.Tensor], num_fake: int | None, metrics: Sequence[str], *,
                     num_real: int | None = None, mode: str = "legacy_tensorflow", backend: str = "auto",
                     batch: int = 50, seed: int = 0, options: dict | None = None, out_dir: str | Path | None = None,
                     progress: bool = True, is_weights: str | None = None, use_cache: bool = True,
                     extractor: str = FID_EXTRACTOR) -> dict[str, float]:
    """Core of every entry point: uint8 NCHW generated batches in, ``{key: float}`` out. ``extractor``
    is the feature space of FID/KID/PR/DC/memorization (any name in the extractor registry)."""
    check_numbers(num_real=num_real, batch=batch, options=options)
    specs, real_x, fake_x, keep = _plan(metrics, extractor)
    dataset = open_dataset(real)
    extractors = _make_extractors(real_x | fake_x, mode, backend, is_weights)
    needs_real_rows = real_x or any(s.real_images for s in specs)
    real, indices = ({}, None)
    if real_x:
        real, indices = real_features(dataset, {n: extractors[n] for n in real_x}, num_real, batch, seed, progress,
                                      use_cache)
    elif needs_real_rows:
        indices = feat.dataset_indices(dataset, num_real, seed)
    fake, images = feat.extract({n: extractors[n] for n in fake_x}, fake_batches, total=num_fake,
                                description="generated images", progress=progress, keep_images=keep)
    if keep and images is None:
        raise MetricError("no generated images were produced; check the fake source")
    opts = {"seed": seed, **(options or {})}
    ctx = MetricContext(real=real, fake=fake, real_dataset=dataset, real_indices=indices, fake_images=images,
                        options=opts, out_dir=Path(out_dir) if out_dir is not None else None,
                        feature_extractor=extractor)
    results: dict[str, float] = {}
    for spec in specs:
        results.update({k: float(v) for k, v in spec.compute(ctx).items()})
    return results


# --------------------------------------------------------------------------------------------- generators


def generator_batches(G: torch.nn.Module, num: int, batch: int = 32, device: str | torch.device = "cpu",
                      seed: int = 0, label_pool: np.ndarray | None = None,
                      truncation_psi: float = 1.0) -> Iterator[torch.Tensor]:
    """Seeded uint8 samples of ``G``; conditional labels drawn from ``label_pool`` rows (the real data's
    label distribution)."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim and (label_pool is None or len(label_pool) == 0 or label_pool.shape[1] != c_dim):
        raise MetricError(f"the generator is conditional (c_dim={c_dim}) but the real dataset has no matching "
                          f"labels; evaluate against the labelled dataset it was trained on")
    was_training = G.training
    G.eval()
    try:
        for start in range(0, num, batch):
            n = min(batch, num - start)
            z = torch.randn(n, G.z_dim, generator=gen).to(device)
            c = torch.from_numpy(label_pool[rng.integers(0, len(label_pool), n)]).float().to(device) if c_dim \
                else torch.zeros(n, 0, device=device)
            # Per-layer noise stays random as in StyleGAN2-ADA's metrics, but seeded per batch so that
            # the same seed gives the same numbers without touching the caller's global RNG.
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 1_000_003 + start)
                img = G(z, c, truncation_psi=truncation_psi, noise_mode="random")
            yield generator_to_uint8(img)
    finally:
        G.train(was_training)


def evaluate_generator(G: torch.nn.Module, real_dataset, metrics: Sequence[str], num_gen: int | None = None, *,
                       batch: int = 32, device: str | torch.device = "cpu", seed: int = 0,
                       truncation_psi: float = 1.0, **kwargs) -> dict[str, float]:
    """Metrics of generator ``G`` against ``real_dataset`` (what the training loop calls at snapshots).
    ``num_gen`` defaults to the number of real images (at most 50,000)."""
    check_numbers(num_gen=num_gen, batch=batch, num_real=kwargs.get("num_real"), options=kwargs.get("options"))
    dataset = open_dataset(real_dataset)
    num = int(num_gen or min(len(dataset), 50_000))
    labels = np.asarray(dataset.labels) if getattr(dataset, "c_dim", 0) else None
    batches = generator_batches(G, num, batch, device, seed, labels, truncation_psi)
    return evaluate_batches(dataset, batches, num, metrics, seed=seed, **kwargs)


def _callable_batches(fn: Callable[[int], torch.Tensor], num: int, batch: int) -> Iterator[torch.Tensor]:
    for start in range(0, num, batch):
        out = fn(min(batch, num - start))
        yield out if out.dtype == torch.uint8 else generator_to_uint8(out)


def load_generator(path: str | Path) -> torch.nn.Module:
    """G_ema (else G) of a gantl checkpoint."""
    from gantl.checkpoints.format import load_checkpoint

    ckpt = load_checkpoint(path)
    for net in ("G_ema", "G"):
        if net in ckpt.tensors:
            return ckpt.build(net)
    raise MetricError(f"{path} holds no generator (G_ema or G); it has {', '.join(ckpt.networks)}")


def evaluate(real, fake, metrics: Sequence[str], num_gen: int | None = None, *, batch: int = 50,
             device: str | torch.device = "cpu", seed: int = 0, **kwargs) -> dict[str, float]:
    """Measure ``fake`` against ``real``.

    ``real``: a path spec (folder, zip, ``zip:prefix``) or an ImageDataset.
    ``fake``: a folder/zip of images (all of them, or the first ``num_gen`` in a seeded choice), a gantl
    checkpoint (``.safetensors``: G_ema is sampled), a generator module (``z_dim``/``c_dim``), or a
    callable ``fn(n) -> images`` (uint8, or float in [-1, 1]).
    Keyword options: ``num_real``, ``mode`` ("legacy_tensorflow" | "clean"), ``backend``
    ("auto" | "onnx" | "torchscript"), ``extractor`` (feature space, default "inception-v3-fid"),
    ``options`` (per-metric settings: kid_subsets, kid_subset_size, pr_k, dc_k, is_splits, iw_real, cls_data,
    cls_target, mem_ratio, and ``iw_<field>`` / ``cls_<field>`` for any field of CriticSettings /
    ClassifierSettings, e.g. iw_steps, cls_steps), ``out_dir``, ``progress``, ``is_weights``, ``use_cache``.
    Returns ``{"fid": ..., "kid": ..., "precision": ...}``.
    """
    check_numbers(num_gen=num_gen, batch=batch, num_real=kwargs.get("num_real"), options=kwargs.get("options"))
    if isinstance(fake, torch.nn.Module):
        return evaluate_generator(fake, real, metrics, num_gen, batch=batch, device=device, seed=seed, **kwargs)
    if callable(fake) and not isinstance(fake, str | os.PathLike) and not hasattr(fake, "content_hash"):
        num = int(num_gen or DEFAULT_NUM_GEN)
        return evaluate_batches(real, _callable_batches(fake, num, batch), num, metrics, batch=batch, seed=seed,
                                **kwargs)
    if not isinstance(fake, str | os.PathLike):  # an ImageDataset (or anything open_dataset accepts)
        fakes = open_dataset(fake, use_labels=False)
        indices = feat.dataset_indices(fakes, num_gen, seed)
        return evaluate_batches(real, feat.dataset_batches(fakes, indices, batch), len(indices), metrics,
                                batch=batch, seed=seed, **kwargs)
    path = Path(os.fspath(fake).split(".zip:")[0] + (".zip" if ".zip:" in os.fspath(fake) else ""))
    if path.suffix == ".safetensors":
        G = load_generator(path).to(device)
        return evaluate_generator(G, real, metrics, num_gen, batch=batch, device=device, seed=seed, **kwargs)
    if path.is_dir() and any(path.glob("snapshot-*.safetensors")):
        raise MetricError(f"{path} is a run directory; use evaluate_run() or `gantl eval --fake {path}`")
    fakes = open_dataset(fake, use_labels=False)
    indices = feat.dataset_indices(fakes, num_gen, seed)
    return evaluate_batches(real, feat.dataset_batches(fakes, indices, batch), len(indices), metrics, batch=batch,
                            seed=seed, **kwargs)
