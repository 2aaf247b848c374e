"""Independent Wasserstein critic (Wang et al., "Transferring GANs", ECCV 2018).

A *fresh* critic, unrelated to the GAN's own discriminator, is trained with WGAN-GP to separate
real training images from generated ones; it is then evaluated on held-out real images and on
generated images it never saw. ``E[D(real_val)] - E[D(gen_val)]`` estimates the Wasserstein-1
distance: lower is better, and because the critic is trained anew for every evaluation it cannot
be fooled the way the training discriminator can. Training is short (a few hundred steps of a
small conv net at 32 px) and fully seeded, so the same inputs give the same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from gantl.errors import MetricError
from gantl.metrics.imageops import to_unit_range


@dataclass
class CriticSettings:
    steps: int = 300
    batch: int = 64
    resolution: int = 32
    lr: float = 2e-4
    gp_weight: float = 10.0
    channels: int = 32
    seed: int = 0


def make_critic(resolution: int, channels: int) -> nn.Module:
    """Three stride-2 convs and a linear head; no normalisation (WGAN-GP needs per-sample gradients)."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(3, c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(4 * c * (resolution // 8) ** 2, 1),
    )


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=gen)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def independent_critic(real_train: torch.Tensor, real_val: torch.Tensor, gen_train: torch.Tensor,
                       gen_val: torch.Tensor, settings: CriticSettings | None = None) -> float:
    """Train a fresh WGAN-GP critic on (real_train, gen_train); return E[D(real_val)] - E[D(gen_val)]."""
    s = settings or CriticSettings()
    if s.resolution % 8:
        raise MetricError(f"critic resolution must be a multiple of 8, got {s.resolution}")
    for name, part in (("real train", real_train), ("real held-out", real_val), ("generated train", gen_train),
                       ("generated held-out", gen_val)):
        if part.shape[0] < 2:
            raise MetricError(f"the independent critic needs at least 2 {name} images, got {part.shape[0]}")
    gen = torch.Generator().manual_seed(s.seed)
    with torch.random.fork_rng():
        torch.manual_seed(s.seed)
        critic = make_critic(s.resolution, s.channels)
    opt = torch.optim.Adam(critic.parameters(), lr=s.lr, betas=(0.5, 0.9))
    rt, gt = to_unit_range(real_train, s.resolution), to_unit_range(gen_train, s.resolution)
    for _ in range(s.steps):
        real = rt[torch.randint(rt.shape[0], (s.batch,), generator=gen)]
        fake = gt[torch.randint(gt.shape[0], (s.batch,), generator=gen)]
        loss = critic(fake).mean() - critic(real).mean() + s.gp_weight * gradient_penalty(critic, real, fake, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    critic.eval()
    with torch.no_grad():
        real_score = torch.cat([critic(b) for b in to_unit_range(real_val, s.resolution).split(256)]).mean()
        fake_score = torch.cat([critic(b) for b in to_unit_range(gen_val, s.resolution).split(256)]).mean()
    return float(real_score - fake_score)


def split_half(images: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded split into two halves (train / held-out)."""
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    half = images.shape[0] // 2
    return images[order[:half]], images[order[half:]]
