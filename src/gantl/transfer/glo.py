"""``glo``: one learned latent per training image and a reconstruction loss (GLO-based transfer).

Generative Latent Optimization (Bojanowski et al. 2018) fits a generator by reconstructing every
training image from its own learned latent. For transfer, the Park et al. survey (FreezeD code
base, ``--supervised``, ``AdaBIGGANLoss``) and batch statistics adaptation (Noguchi & Harada 2019)
fine-tune a pretrained G this way: with only a few dozen images, reconstruction pins each image to
a point of the source's latent space instead of letting an adversary chase artefacts.

The loss for the real batch x_i with latents z_i, as in BSA/FreezeD (research notes A1, A4):

    L_G += |G(z_i + eps) - x_i|_1 (mean)  +  0.1 * perceptual  +  0.1 * EMD(z, N(0, I))

with eps ~ N(0, 0.01^2) (FreezeD), latents initialised at zero (BSA's ``"zero"`` init; FreezeD's port
meant to do the same but its ``from_pretrained`` call is discarded), and the EMD-style term of BSA:
for the batch's latents and 10x as many Gaussian samples, the mean nearest-neighbour squared
distance in both directions, which keeps the latents where the sampler draws z.

Offline perceptual network: BSA and FreezeD use ImageNet VGG16, which torchvision downloads at
run time. gantl uses the *frozen source discriminator* instead: the mean squared difference of its
block features (every block below the output) between reconstruction and image. It ships with
every source, has seen the source domain, and needs no download. Where gantl differs on purpose:
the loop's adversarial loss stays on (GLO here regularises fine-tuning rather than replacing the
GAN loss; the survey's variant trains no D), and the latents train at 10x G's learning rate (BSA
uses a separate, larger latent lr). The latents are a parameter of G (``G.glo_latents``), recorded
as a network adapter so snapshots rebuild; sampling still draws z ~ N(0, I).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gantl.errors import ConfigError
from gantl.transfer.base import (
    BaseMethod,
    ParamGroups,
    add_adapter,
    buffers_state,
    load_buffers_state,
    register_adapter,
    register_method,
)
from gantl.transfer.fd import feature_blocks

ADAPTER = "glo-latents"
LATENT_NOISE = 0.01
W_PERCEPTUAL = 0.1
W_EMD = 0.1
EMD_SAMPLES = 10  # Gaussians per latent in the EMD term
LATENT_LR_SCALE = 10.0


@register_adapter(ADAPTER)
def apply_latents(G: nn.Module, record: dict[str, Any]) -> None:
    """``G.glo_latents``: ``count`` x ``z_dim`` latents, zero-initialised (BSA)."""
    if hasattr(G, "glo_latents"):
        raise ConfigError("this generator already has per-image latents (glo); start glo from a source without "
                          "them, or resume that run with --resume-run")
    device = next(iter(G.parameters())).device
    G.register_parameter("glo_latents", nn.Parameter(torch.zeros([int(record["count"]), int(record["z_dim"])],
                                                                 device=device)))


def all_block_features(D: nn.Module, img: torch.Tensor, c: torch.Tensor | None) -> list[torch.Tensor]:
    """Outputs of every D block below the output head for ``img`` (one forward)."""
    blocks = feature_blocks(D)
    found: dict[int, torch.Tensor] = {}
    handles = []
    for i, block in enumerate(blocks):
        def hook(_m: nn.Module, _inp: Any, out: Any, i: int = i) -> None:
            found[i] = out[0] if isinstance(out, tuple) else out
        handles.append(block.register_forward_hook(hook))
    try:
        D(img, c)
    finally:
        for h in handles:
            h.remove()
    return [found[i] for i in range(len(blocks))]


def emd_term(latents: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """BSA's latent prior term: mean nearest-neighbour squared distance, latents -> samples and back."""
    d = torch.cdist(latents, samples).square()
    return d.min(dim=1).values.mean() + d.min(dim=0).values.mean()


class GLO(BaseMethod):
    """Per-image latents + L1, source-D perceptual and EMD terms on the generator (BSA / survey GLO)."""

    name = "glo"
    needs_source_d = True  # the perceptual network is the source's discriminator

    def __init__(self) -> None:
        self.count: int | None = None
        self.d_src: nn.Module | None = None

    def bind_dataset(self, dataset: Any) -> None:
        """The training set's size: one latent per image."""
        if dataset is None:
            raise ConfigError("glo learns one latent per training image; pass --data")
        self.count = len(dataset)

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("glo measures reconstructions with the source's discriminator; pass --resume SOURCE")
        if self.count is None:
            raise ConfigError("glo learns one latent per training image; pass --data")
        add_adapter(G, {"kind": ADAPTER, "count": self.count, "z_dim": int(G.z_dim)})
        self.d_src = copy.deepcopy(D).requires_grad_(False)

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups:
        return {"G": [{"params": [G.glo_latents], "lr_scale": LATENT_LR_SCALE}], "D": []}

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        if step.phase != "G" or step.real_img is None or step.real_idx is None or self.d_src is None:
            return {}
        G, real = step.G, step.real_img
        if next(self.d_src.parameters()).device != real.device:
            self.d_src.to(real.device)
        self.d_src.train(step.D.training)
        latents = G.glo_latents[torch.as_tensor(step.real_idx, device=real.device)]
        rec = G(latents + LATENT_NOISE * torch.randn_like(latents), step.real_c)
        l1 = (rec - real).abs().mean()
        with torch.no_grad():
            target = all_block_features(self.d_src, real, step.real_c)
        feats = all_block_features(self.d_src, rec, step.real_c)
        perceptual = torch.stack([F.mse_loss(a, b) for a, b in zip(feats, target, strict=True)]).mean()
        samples = torch.randn([EMD_SAMPLES * latents.shape[0], latents.shape[1]], device=real.device)
        return {"glo_l1": l1, "glo_perceptual": W_PERCEPTUAL * perceptual,
                "glo_emd": W_EMD * emd_term(latents, samples)}

    def state_dict(self) -> dict[str, Any]:
        return buffers_state(self.d_src)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_buffers_state(self.d_src, state)


@register_method("glo", help="GLO transfer (BSA / Park et al. survey): one learned latent per training image, L1 + "
                 "source-D perceptual + latent-prior reconstruction loss on G")
def _make(args: list[str]) -> GLO:
    if args:
        raise ConfigError("glo takes no arguments; write --method glo")
    return GLO()
