"""``cdc[:lambda]``: cross-domain correspondence (Ojha et al., CVPR 2021, "Few-shot image generation
via cross-domain correspondence"; official code utkarshojha/few-shot-gan-adaptation).

Two parts, both as in the official ``train.py`` except where noted:

1. **Cross-domain distance consistency** (``kl_wt``, default 1000). A batch of N = 4 latents goes
   through the frozen source generator and the adapting one. For each anchor i one generator layer
   is picked at random; the cosine similarities between i's features and every other sample's at
   that layer, softmaxed over the N-1 others, give a distribution for the source and one for the
   target, and ``lambda * KLDiv(log p_target, p_source)`` (PyTorch's default element-mean, so the
   1000 belongs to N = 4) is added to the generator's loss. If the target equals the source the term
   is exactly zero (a test checks it): both generators run with the same constant noise.
2. **Anchor-based relaxed realism.** ``n_train`` = 10 anchor latents are fixed at the start; on
   every ``subspace_freq`` = 4th iteration the step's latents are drawn around them (each coordinate
   N(anchor, ``subspace_std`` = 0.1)), where the image-level loss applies. A new head (3x3 conv to
   one logit per location, the official ``Extra``) reads a discriminator block's feature map and
   gives patch-level logistic losses on reals and fakes on the other iterations.

Where gantl differs, on purpose: layers are chosen by *depth*, not by channel count and size. The
official patch path only collects 512-channel maps at 32 or 16 px and silently never fires at
32 px (research notes A9); here the generator layers are every block of ``G.blocks`` but the output
one (all synthesis blocks for StyleGAN2), and the patch head sits on D's middle feature block, so
both work at every resolution and on StyleGAN2, DCGAN and ResNet. The image-level adversarial loss
of the training loop stays on every step (the official code swaps it for the patch loss on
non-anchor steps). The patch head is recorded as a network adapter of D, so snapshots rebuild;
the anchors are part of the method's state.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gantl.errors import ConfigError
from gantl.transfer.base import BaseMethod, add_adapter, float_arg, no_more_args, register_adapter, register_method
from gantl.transfer.fd import block_features, feature_blocks

USAGE = "cdc[:lambda]"
DEFAULT_LAMBDA = 1000.0  # kl_wt
FEAT_BATCH = 4  # feat_const_batch
SUBSPACE_FREQ = 4
SUBSPACE_STD = 0.1
N_ANCHORS = 10  # n_train
ADAPTER = "cdc-patch"


def generator_layers(G: nn.Module) -> list[nn.Module]:
    """The blocks whose outputs CDC compares: every synthesis block (StyleGAN2), else all but the output."""
    blocks = list(getattr(G, "blocks", []) or [])
    if getattr(G, "mapping", None) is not None:
        return blocks
    if len(blocks) < 2:
        raise ConfigError("cdc needs a generator with ordered 'blocks' (stylegan2, dcgan, resnet)")
    return blocks[:-1]


def generator_features(G: nn.Module, z: torch.Tensor, c: torch.Tensor | None) -> list[torch.Tensor]:
    """Outputs of :func:`generator_layers` for latents ``z`` (constant noise, so two runs compare)."""
    layers = generator_layers(G)
    found: dict[int, torch.Tensor] = {}
    handles = []
    for i, layer in enumerate(layers):
        def hook(_m: nn.Module, _inp: Any, out: Any, i: int = i) -> None:
            found[i] = out[0] if isinstance(out, tuple) else out
        handles.append(layer.register_forward_hook(hook))
    try:
        G(z, c, noise_mode="const")
    finally:
        for h in handles:
            h.remove()
    return [found[i] for i in range(len(layers))]


def distance_consistency(src_feats: list[torch.Tensor], tgt_feats: list[torch.Tensor],
                         layer_per_anchor: list[int]) -> torch.Tensor:
    """``KLDiv(log softmax(sim_target), softmax(sim_source))`` with the per-anchor layers given (element mean)."""
    n = src_feats[0].shape[0]
    log_p_t, p_s = [], []
    for i in range(n):
        layer = layer_per_anchor[i]
        others = [j for j in range(n) if j != i]
        s = src_feats[layer].flatten(1)
        t = tgt_feats[layer].flatten(1)
        sim_s = F.cosine_similarity(s[i:i + 1], s[others], dim=1)
        sim_t = F.cosine_similarity(t[i:i + 1], t[others], dim=1)
        p_s.append(F.log_softmax(sim_s, dim=0))
        log_p_t.append(F.log_softmax(sim_t, dim=0))
    # PyTorch KLDivLoss's element mean, written out (its 'mean' is deprecated in favour of 'batchmean');
    # both sides go through the same log_softmax, so equal features give exactly zero
    log_s, log_t = torch.stack(p_s), torch.stack(log_p_t)
    return (log_s.exp() * (log_s - log_t)).mean()


@register_adapter(ADAPTER)
def apply_patch_head(D: nn.Module, record: dict[str, Any]) -> None:
    """``D.cdc_patch``: 3x3 conv from the block's channels to one logit per location (official ``Extra``)."""
    device = next(iter(D.parameters())).device
    D.cdc_patch = nn.Conv2d(int(record["channels"]), 1, 3, padding=1).to(device)


def _middle_block(D: nn.Module) -> int:
    return (len(feature_blocks(D)) - 1) // 2


class CDC(BaseMethod):
    """Distance consistency to the frozen source G plus a patch-level D head (Ojha et al. 2021)."""

    name = "cdc"
    prepare_order = -1  # anchors/copies the source before other methods change the networks
    needs_source_g = True

    def __init__(self, lam: float = DEFAULT_LAMBDA) -> None:
        self.lam = float(lam)
        self.g_src: nn.Module | None = None
        self.block: int | None = None
        self.anchors: torch.Tensor | None = None

    def spec(self) -> str:
        return f"{self.name}:{self.lam:g}"

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("cdc keeps distances of a source generator; pass --resume SOURCE (or drop cdc)")
        if len(generator_layers(G)) < 1:
            raise ConfigError("cdc found no generator layer to compare")
        self.g_src = copy.deepcopy(G).requires_grad_(False)
        self.anchors = torch.randn([N_ANCHORS, G.z_dim])  # build_setup seeds prepare: a function of --seed
        self.block = _middle_block(D)
        probe = torch.zeros([2, D.img_channels, D.img_resolution, D.img_resolution],
                            device=next(iter(D.parameters())).device)
        c = torch.zeros([2, D.c_dim], device=probe.device) if getattr(D, "c_dim", 0) else None
        was = D.training
        D.eval()
        with torch.no_grad():
            channels = block_features(D, list(D.blocks)[self.block], probe, c).shape[1]
        D.train(was)
        add_adapter(D, {"kind": ADAPTER, "block": self.block, "channels": int(channels)})

    def latents(self, info: Any, z: torch.Tensor) -> torch.Tensor:
        """On every ``SUBSPACE_FREQ``-th step, z near the anchors: anchor + N(0, SUBSPACE_STD^2) per coordinate."""
        if info.batch_idx % SUBSPACE_FREQ != 0 or self.anchors is None:
            return z
        anchors = self.anchors.to(z.device)
        pick = torch.randint(len(anchors), [z.shape[0]], device=z.device)
        return anchors[pick] + SUBSPACE_STD * torch.randn_like(z)

    def _patch_logits(self, D: nn.Module, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        assert self.block is not None
        return D.cdc_patch(block_features(D, list(D.blocks)[self.block], img, c))

    def losses(self, step: Any) -> dict[str, torch.Tensor]:
        patch_step = step.batch_idx % SUBSPACE_FREQ != 0
        if step.phase == "G":
            out = {"cdc_G": self.lam * self._consistency(step)}
            if patch_step and step.gen_img is not None:
                out["cdc_patch_G"] = F.softplus(-self._patch_logits(step.D, step.gen_img, step.gen_c)).mean()
            return out
        if step.phase == "D" and patch_step and step.gen_img is not None and step.real_img is not None:
            real = F.softplus(-self._patch_logits(step.D, step.real_img, step.real_c)).mean()
            fake = F.softplus(self._patch_logits(step.D, step.gen_img.detach(), step.gen_c)).mean()
            return {"cdc_patch_D": real + fake}
        return {}

    def _consistency(self, step: Any) -> torch.Tensor:
        assert self.g_src is not None
        G = step.G
        device = next(iter(G.parameters())).device
        if next(iter(self.g_src.parameters())).device != device:
            self.g_src.to(device)
        z = torch.randn([FEAT_BATCH, G.z_dim], device=device)
        c = None
        if getattr(G, "c_dim", 0):
            c = F.one_hot(torch.randint(G.c_dim, [FEAT_BATCH], device=device), G.c_dim).float()
        n_layers = len(generator_layers(G))
        layers = torch.randint(n_layers, [FEAT_BATCH]).tolist()
        self.g_src.train(G.training)
        with torch.no_grad():
            src = generator_features(self.g_src, z, c)
        tgt = generator_features(G, z, c)
        return distance_consistency(src, tgt, layers)

    def state_dict(self) -> dict[str, Any]:
        if self.g_src is None:
            return {}
        return {"g_src_buffers": {n: b.detach().cpu().clone() for n, b in self.g_src.named_buffers()},
                "anchors": self.anchors.clone() if self.anchors is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state or self.g_src is None:
            return
        if state.get("anchors") is not None:
            self.anchors = torch.as_tensor(state["anchors"])
        own = dict(self.g_src.named_buffers())
        with torch.no_grad():
            for n, b in state["g_src_buffers"].items():
                own[n].copy_(torch.as_tensor(b))


@register_method("cdc", usage=USAGE, help="CDC (Ojha et al. 2021): lambda x KL of feature-distance distributions "
                 "to the frozen source G (default 1000) + a patch-level D head")
def _make(args: list[str]) -> CDC:
    no_more_args(args, 1, USAGE)
    return CDC(float_arg(args, 0, "cdc", DEFAULT_LAMBDA))
