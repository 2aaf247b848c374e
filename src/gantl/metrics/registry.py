"""Metrics by name: what each needs (features of which extractor, for real and/or generated images,
or the pixels themselves) and how it turns them into numbers.

The evaluator (:mod:`gantl.metrics.api`) reads these specs to plan one feature pass per extractor
for the real images (cached) and one for the generated images, then calls every metric on the
shared results. Adding a metric is one ``register_metric`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantl.errors import MetricError
from gantl.metrics import fid, isc, kid, memorization, prdc

FID_EXTRACTOR = "inception-v3-fid"
IS_EXTRACTOR = "inception-v3-nvidia"
FEATURES = "@features"  # placeholder: the evaluation's feature extractor (default FID_EXTRACTOR)


@dataclass
class MetricContext:
    """Everything a metric may read; fields a metric did not ask for may be None."""

    real: dict[str, dict[str, np.ndarray]]  # extractor -> output -> [N, ...]
    fake: dict[str, dict[str, np.ndarray]]
    real_dataset: Any = None
    real_indices: np.ndarray | None = None  # dataset items behind ``real`` rows
    fake_images: torch.Tensor | None = None  # uint8 NCHW
    options: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    feature_extractor: str = FID_EXTRACTOR

    def real_images(self, count: int | None = None) -> torch.Tensor:
        idx = self.real_indices if count is None else self.real_indices[:count]
        return torch.stack([self.real_dataset[int(i)][0] for i in idx])


@dataclass(frozen=True)
class MetricSpec:
    name: str
    keys: tuple[str, ...]
    compute: Callable[[MetricContext], dict[str, float]]
    real_features: tuple[tuple[str, str], ...] = ()
    fake_features: tuple[tuple[str, str], ...] = ()
    fake_images: bool = False
    real_images: bool = False
    help: str = ""


def _features(ctx: MetricContext) -> tuple[np.ndarray, np.ndarray]:
    return ctx.real[ctx.feature_extractor]["features"], ctx.fake[ctx.feature_extractor]["features"]


def _fid(ctx: MetricContext) -> dict[str, float]:
    return {"fid": fid.fid_from_features(*_features(ctx))}


def _kid(ctx: MetricContext) -> dict[str, float]:
    o = ctx.options
    return {"kid": kid.kernel_inception_distance(*_features(ctx), num_subsets=int(o.get("kid_subsets", 100)),
                                                 subset_size=int(o.get("kid_subset_size", 1000)),
                                                 seed=int(o.get("seed", 0)))}


def _pr(ctx: MetricContext) -> dict[str, float]:
    p, r = prdc.precision_recall(*_features(ctx), k=int(ctx.options.get("pr_k", 3)))
    return {"precision": p, "recall": r}


def _dc(ctx: MetricContext) -> dict[str, float]:
    d, c = prdc.density_coverage(*_features(ctx), k=int(ctx.options.get("dc_k", 5)))
    return {"density": d, "coverage": c}


def _is(ctx: MetricContext) -> dict[str, float]:
    mean, std = isc.inception_score_from_probs(ctx.fake[IS_EXTRACTOR]["probs"], int(ctx.options.get("is_splits", 10)))
    return {"is_mean": mean, "is_std": std}


def _settings(cls, options: dict[str, Any], prefix: str):
    """A settings dataclass with every ``<prefix><field>`` option applied (e.g. ``iw_steps=100``)."""
    values = {f.name: options[prefix + f.name] for f in fields(cls) if options.get(prefix + f.name) is not None}
    values.setdefault("seed", int(options.get("seed", 0)))
    try:
        return cls(**{k: type(getattr(cls, k, v))(v) if hasattr(cls, k) else v for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise MetricError(f"bad {prefix}* option ({exc}); see the settings of {cls.__name__}") from None


def _iw(ctx: MetricContext) -> dict[str, float]:
    from gantl.metrics.iw_critic import CriticSettings, independent_critic, split_half

    settings = _settings(CriticSettings, ctx.options, "iw_")
    seed = settings.seed
    real_train, real_val = split_half(ctx.real_images(ctx.options.get("iw_real")), seed)
    gen_train, gen_val = split_half(ctx.fake_images, seed + 1)
    return {"iw": independent_critic(real_train, real_val, gen_train, gen_val, settings)}


def _cls(ctx: MetricContext) -> dict[str, float]:
    from gantl.data.dataset import ImageDataset
    from gantl.metrics.classifier import ClassifierSettings, accept_share, cached_classifier

    data, target = ctx.options.get("cls_data"), ctx.options.get("cls_target")
    if not data or not target:
        raise MetricError("the classifier score needs a labelled dataset and a target class: "
                          "--cls-data cifar10.zip:train --cls-target horse")
    dataset = data if not isinstance(data, str | Path) else ImageDataset(data, use_labels=True, progress=False)
    settings = _settings(ClassifierSettings, ctx.options, "cls_")
    model, accuracy = cached_classifier(dataset, str(target), settings)
    return {"cls": accept_share(model, ctx.fake_images, settings.resolution), "cls_accuracy": accuracy}


def _mem(ctx: MetricContext) -> dict[str, float]:
    real, fake = _features(ctx)
    result = memorization.memorization(real, fake, ratio=float(ctx.options.get("mem_ratio", 0.5)))
    if ctx.out_dir is not None and ctx.fake_images is not None and ctx.real_dataset is not None:
        def real_at(row: int) -> torch.Tensor:
            return ctx.real_dataset[int(ctx.real_indices[row])][0]

        memorization.save_closest_pairs(Path(ctx.out_dir) / "memorization_pairs.png", ctx.fake_images, real_at,
                                        result)
    return {"mem_share": result.share, "mem_ratio": result.ratio}


_F = ((FEATURES, "features"),)
_REGISTRY: dict[str, MetricSpec] = {
    "fid": MetricSpec("fid", ("fid",), _fid, _F, _F, help="Fréchet Inception Distance (lower is better)"),
    "kid": MetricSpec("kid", ("kid",), _kid, _F, _F, help="Kernel Inception Distance, unbiased (lower is better)"),
    "pr": MetricSpec("pr", ("precision", "recall"), _pr, _F, _F, help="precision / recall, k=3"),
    "dc": MetricSpec("dc", ("density", "coverage"), _dc, _F, _F, help="density / coverage, k=5"),
    "is": MetricSpec("is", ("is_mean", "is_std"), _is, (), ((IS_EXTRACTOR, "probs"),),
                     help="Inception Score (needs NVIDIA's inception-2015-12-05.pt)"),
    "iw": MetricSpec("iw", ("iw",), _iw, (), (), fake_images=True, real_images=True,
                     help="independent Wasserstein critic E[D(real)]-E[D(gen)] (lower is better)"),
    "cls": MetricSpec("cls", ("cls", "cls_accuracy"), _cls, (), (), fake_images=True,
                      help="share of generated images a target-vs-rest classifier accepts"),
    "mem": MetricSpec("mem", ("mem_share", "mem_ratio"), _mem, _F, _F, fake_images=True,
                      help="share of generated images that are near-copies of a training image"),
}


def register_metric(spec: MetricSpec) -> None:
    _REGISTRY[spec.name] = spec


def metric_names() -> list[str]:
    return list(_REGISTRY)


def get_metric(name: str) -> MetricSpec:
    if name not in _REGISTRY:
        raise MetricError(f"unknown metric '{name}'; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
