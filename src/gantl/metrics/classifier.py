"""Classifier score, as in the seed study of DCGAN transfer: share of generated images that a
classifier trained on a labelled dataset accepts as the target class (e.g. CIFAR-10 horse vs rest).

The classifier is a small CNN trained here (torch, seeded, balanced target/rest batches) and cached
on disk like the feature statistics: keyed by the dataset's content hash, the target class and every
training setting, so a second evaluation loads it instantly and a changed dataset retrains it. Its
held-out accuracy is stored beside the weights and logged, so a weak classifier is visible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from gantl.errors import MetricError
from gantl.metrics.imageops import to_unit_range
from gantl.metrics.inception import cache_dir

log = logging.getLogger(__name__)


@dataclass
class ClassifierSettings:
    steps: int = 600
    batch: int = 64
    resolution: int = 32
    lr: float = 1e-3
    channels: int = 32
    holdout: float = 0.1
    seed: int = 0


def make_classifier(resolution: int, channels: int) -> nn.Module:
    c = channels
    return nn.Sequential(
        nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.BatchNorm2d(4 * c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(4 * c, 1),
    )


def _target_index(dataset, target: str) -> int:
    names = list(getattr(dataset, "class_names", []) or [])
    if target not in names:
        raise MetricError(f"target class '{target}' is not among the labelled classes ({', '.join(names) or 'none'}) "
                          f"of the classifier dataset; pass a labelled dataset such as cifar10.zip:train")
    return names.index(target)


def _load_images(dataset, indices: np.ndarray, resolution: int) -> torch.Tensor:
    out = []
    for start in range(0, len(indices), 256):
        batch = torch.stack([dataset[int(i)][0] for i in indices[start:start + 256]])
        out.append(to_unit_range(batch, resolution))
    return torch.cat(out)


def train_classifier(dataset, target: str, settings: ClassifierSettings) -> tuple[nn.Module, float]:
    """Train target-vs-rest on ``dataset`` (labelled ImageDataset); returns (model, held-out accuracy)."""
    labels = np.asarray(dataset.labels).argmax(axis=1)
    t = _target_index(dataset, target)
    rng = np.random.default_rng(settings.seed)
    pos, neg = rng.permutation(np.flatnonzero(labels == t)), rng.permutation(np.flatnonzero(labels != t))
    if len(pos) < 4 or len(neg) < 4:
        raise MetricError(f"the classifier needs at least 4 images of '{target}' and of the other classes")
    npos, nneg = max(1, int(len(pos) * settings.holdout)), max(1, int(len(neg) * settings.holdout))
    # Keep the training pool bounded: a few hundred steps never see more than steps * batch images.
    budget = settings.steps * settings.batch // 2
    pos_train, neg_train = pos[npos:][:budget], neg[nneg:][:budget]
    pos_val, neg_val = pos[:npos][:1000], neg[:nneg][:1000]
    xp = _load_images(dataset, pos_train, settings.resolution)
    xn = _load_images(dataset, neg_train, settings.resolution)
    gen = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)
        model = make_classifier(settings.resolution, settings.channels)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    half = settings.batch // 2
    target_labels = torch.cat([torch.ones(half, 1), torch.zeros(half, 1)])
    model.train()
    for _ in range(settings.steps):
        x = torch.cat([xp[torch.randint(len(xp), (half,), generator=gen)],
                       xn[torch.randint(len(xn), (half,), generator=gen)]])
        flip = torch.rand(x.shape[0], generator=gen) < 0.5  # mirror half the batch: a free augmentation
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), target_labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    accept_pos = accept_share(model, _load_images(dataset, pos_val, settings.resolution), settings.resolution, False)
    accept_neg = accept_share(model, _load_images(dataset, neg_val, settings.resolution), settings.resolution, False)
    balanced_accuracy = 0.5 * (accept_pos + (1.0 - accept_neg))
    return model, float(balanced_accuracy)


@torch.no_grad()
def accept_share(model: nn.Module, images: torch.Tensor, resolution: int, uint8: bool = True) -> float:
    """Share of images whose target probability exceeds 0.5."""
    x = to_unit_range(images, resolution) if uint8 else images
    logits = torch.cat([model(b) for b in x.split(256)])
    return float((logits > 0).float().mean())


def classifier_key(content_hash: str, target: str, settings: ClassifierSettings) -> str:
    blob = json.dumps({"content": content_hash, "target": target, "settings": asdict(settings), "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_classifier(dataset, target: str, settings: ClassifierSettings | None = None) -> tuple[nn.Module, float]:
    """Load the classifier for (dataset content, target, settings) from the cache, or train and store it."""
    from safetensors.torch import load_file, save_file

    settings = settings or ClassifierSettings()
    path = cache_dir() / "classifiers" / f"{classifier_key(dataset.content_hash(), target, settings)}.safetensors"
    model = make_classifier(settings.resolution, settings.channels)
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            accuracy = float((f.metadata() or {}).get("balanced_accuracy", "nan"))
        model.load_state_dict(load_file(str(path)))
        model.eval()
        return model, accuracy
    model, accuracy = train_classifier(dataset, target, settings)
    log.info("classifier '%s' vs rest: held-out balanced accuracy %.3f", target, accuracy)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.safetensors")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"balanced_accuracy": repr(accuracy), "target": target,
                                         "settings": json.dumps(asdict(settings))})
    os.replace(tmp, path)
    return model, accuracy
