"""Transfer between unconditional and class-conditional networks (TransferGAN, research notes A8).

**Unconditional source -> conditional target.** The source knows one distribution; the target
has classes. Every tensor whose shape is unchanged is copied. Where conditioning adds structure,
the new parameters are set so that the conditional network at the start *is* the source for
every class, and training then separates the classes:

* class-conditional batch norm (ResNet, DCGAN generators): the source's affine ``weight``/``bias``
  go into *every class row* of the per-class gain/bias (gain is stored as ``1 + c @ gain``, so a
  row holds ``weight - 1``); the running statistics move to the affine-free norm;
* StyleGAN2's mapping network: its first layer now reads ``[z, embed(c)]``; the z columns take the
  source's weight (rescaled for equalized lr, whose gain is ``1/sqrt(fan_in)`` and fan-in grew).
  The label columns get the scale of a freshly initialised conditional network, every class's
  embedding starts equal, and the layer's bias absorbs that common embedding's contribution, so
  at the start w does not depend on the class and G is the source. Why not zero label columns
  (this module's first version): the mapping net trains at 1/100 of the learning rate, so columns
  that start at zero stay tiny — 274 kimg of CIFAR-9 training left them at 2% of the z columns'
  norm and the classes barely differed — and a zero column passes no gradient to the embedding;
* discriminators: a projection term (ResNet/DCGAN ``embed``) or StyleGAN2's label mapping and
  ``cmap``-sized output are new and keep their seeded initialisation (they are reported).

The ResNet/DCGAN generator is then *exactly* the source for every class; tests prove it.
"""

from __future__ import annotations

import logging
import math

import torch

log = logging.getLogger("gantl")


def conditional_from_unconditional(state: dict[str, torch.Tensor], net: torch.nn.Module
                                   ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map an unconditional network's tensors onto the conditional ``net``.

    Returns ``(full state dict for net, names left at net's initialisation)``.
    """
    out = {k: v.clone() for k, v in net.state_dict().items()}
    filled: set[str] = set()
    mapping_weight: torch.Tensor | None = None
    for key, value in state.items():
        if key in out and out[key].shape == value.shape:
            out[key] = value.clone()
            filled.add(key)
            continue
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("weight", "bias") and f"{prefix}.gain.weight" in out:
            rows = out[f"{prefix}.gain.weight"].shape[1]
            if leaf == "weight":
                out[f"{prefix}.gain.weight"] = (value - 1.0)[:, None].repeat(1, rows)
                filled.add(f"{prefix}.gain.weight")
            else:
                out[f"{prefix}.bias.weight"] = value[:, None].repeat(1, rows).clone()
                filled.add(f"{prefix}.bias.weight")
        elif leaf in ("running_mean", "running_var", "num_batches_tracked") and f"{prefix}.norm.{leaf}" in out:
            out[f"{prefix}.norm.{leaf}"] = value.clone()
            filled.add(f"{prefix}.norm.{leaf}")
        elif key == "mapping.fc0.weight" and key in out and _widened_input(value, out[key]):
            mapping_weight = value  # widened after the loop: its bias must be copied first
            filled.add(key)
    if mapping_weight is not None:
        _widen_mapping_input(mapping_weight, out, net)
    fresh = [k for k in out if k not in filled and not k.endswith("num_batches_tracked")]
    return out, fresh


def _widen_mapping_input(value: torch.Tensor, out: dict[str, torch.Tensor], net: torch.nn.Module) -> None:
    """StyleGAN2: fc0 of the source read normalised z; the target's reads [normalised z, normalised embed(c)].

    Label columns: seeded at a fresh conditional network's scale (``randn / lr_multiplier``), the
    same values for G and G_ema. Embedding: one seeded vector in every class column, so that
    ``y0 = normalise(embed(c))`` is the same for all classes; the bias subtracts ``W_label @ y0``.
    Then w(z, c) equals the source's w(z) for every c, and the embedding, which trains at the full
    learning rate, receives gradients through columns large enough to move w.
    """
    from gantl.models.layers import normalize_2nd_moment

    fc0, embed = net.mapping.fc0, net.mapping.embed
    rows, src_in = value.shape
    tgt_in = out["mapping.fc0.weight"].shape[1]
    gen = torch.Generator().manual_seed(0)
    widened = torch.empty(rows, tgt_in, dtype=value.dtype)
    widened[:, :src_in] = value * math.sqrt(tgt_in / src_in)  # same effective weight under equalized lr
    widened[:, src_in:] = torch.randn(rows, tgt_in - src_in, generator=gen) / fc0.bias_gain
    out["mapping.fc0.weight"] = widened
    common = torch.randn(embed.out_features, 1, generator=gen)
    out["mapping.embed.weight"] = common.repeat(1, embed.in_features)
    out["mapping.embed.bias"] = torch.zeros(embed.out_features)
    with torch.no_grad():
        y0 = normalize_2nd_moment((common[:, 0] * embed.weight_gain)[None])[0]
        shift = (widened[:, src_in:] @ y0) * fc0.weight_gain / fc0.bias_gain
        out["mapping.fc0.bias"] = out["mapping.fc0.bias"] - shift


def _widened_input(src: torch.Tensor, tgt: torch.Tensor) -> bool:
    return src.ndim == tgt.ndim == 2 and src.shape[0] == tgt.shape[0] and src.shape[1] < tgt.shape[1]


def is_unconditional_to_conditional(source_info: dict, target: torch.nn.Module) -> bool:
    """Whether the source network is unconditional and the target of the same arch is conditional."""
    src_c = int((source_info.get("config") or {}).get("c_dim", 0) or 0)
    return src_c == 0 and int(getattr(target, "c_dim", 0) or 0) > 0


# ------------------------------------------------------------------ conditional source -> one class


def is_conditional_to_unconditional(source_info: dict, target: torch.nn.Module) -> bool:
    """Whether the source network is class-conditional and the target (same arch) is not."""
    src_c = int((source_info.get("config") or {}).get("c_dim", 0) or 0)
    return src_c > 0 and int(getattr(target, "c_dim", 0) or 0) == 0


def unconditional_from_class(arch: str, kind: str, state: dict[str, torch.Tensor], config: dict,
                             target: torch.nn.Module, k: int) -> tuple[dict[str, torch.Tensor], bool]:
    """Fold source class ``k`` of a conditional network into the unconditional ``target``.

    The label is a constant once the class is fixed, so everything it feeds becomes a constant
    that an unconditional layer can hold: per-class BN rows become the BN affine; StyleGAN2's
    ``[z, embed(c)]`` first mapping layer becomes a z-only layer whose bias absorbs the label
    columns; a projection term ``<embed(c), h>`` (DCGAN, StyleGAN2's ``cmap``) is added into the
    output layer's weights. Returns ``(state dict for target, exact)``: ``exact`` is False only
    for the ResNet D, whose spectrally normalised 1-output layer always has unit norm, so the
    folded logit keeps its sign and ranking but not its scale.
    """
    from gantl.models.registry import build

    cond = build(arch, kind, config)
    cond.load_state_dict(state)
    cond.eval()
    c_dim = int(config["c_dim"])
    if not 0 <= k < c_dim:
        from gantl.errors import ConfigError

        raise ConfigError(f"source class {k} does not exist: the source has classes 0..{c_dim - 1}")
    onehot = torch.nn.functional.one_hot(torch.tensor([k]), c_dim).float()
    out = {key: v.clone() for key, v in target.state_dict().items()}
    for key, value in state.items():
        if key in out and out[key].shape == value.shape:
            out[key] = value.clone()
    for key in state:
        if key.endswith(".gain.weight"):  # class-conditional batch norm -> plain batch norm
            prefix = key[: -len(".gain.weight")]
            if f"{prefix}.weight" in out:
                out[f"{prefix}.weight"] = 1.0 + state[key][:, k]
                out[f"{prefix}.bias"] = state[f"{prefix}.bias.weight"][:, k].clone()
                for stat in ("running_mean", "running_var", "num_batches_tracked"):
                    if f"{prefix}.norm.{stat}" in state:
                        out[f"{prefix}.{stat}"] = state[f"{prefix}.norm.{stat}"].clone()
    exact = True
    with torch.no_grad():
        if arch == "stylegan2" and kind == "G":
            from gantl.models.layers import normalize_2nd_moment

            fc_c, fc_u = cond.mapping.fc0, target.mapping.fc0
            y = normalize_2nd_moment(cond.mapping.embed(onehot))[0]
            w = state["mapping.fc0.weight"]
            z = fc_u.in_features
            out["mapping.fc0.weight"] = w[:, :z] * (fc_c.weight_gain / fc_u.weight_gain)
            out["mapping.fc0.bias"] = state["mapping.fc0.bias"] + (w[:, z:] @ y) * fc_c.weight_gain / fc_u.bias_gain
        elif arch == "stylegan2" and kind == "D":
            cmap = cond.mapping(None, onehot)[0]
            scale = 1.0 / math.sqrt(cmap.numel())
            out["b4.out.weight"] = (cmap @ state["b4.out.weight"])[None] * scale
            out["b4.out.bias"] = (state["b4.out.bias"] @ cmap).reshape(1) * scale
        elif arch == "dcgan" and kind == "D":
            last = len(cond.blocks) - 1
            embed = state[f"blocks.{last}.embed.weight"][:, k]
            out[f"blocks.{last}.conv.weight"] = state[f"blocks.{last}.conv.weight"] + embed[None, :, None, None]
        elif arch == "resnet" and kind == "D":
            last = len(cond.blocks) - 1
            head = cond.blocks[last]
            v = head.fc.weight[0] + head.embed.weight[:, k]  # effective (normalised) weights, summed
            base = f"blocks.{last}.fc.parametrizations.weight"
            out[f"{base}.original"] = v[None].clone()
            out[f"{base}.0._u"] = torch.ones(1)
            out[f"{base}.0._v"] = v / v.norm()
            exact = False
    return out, exact


class FixedClass(torch.nn.Module):
    """A conditional generator with its class fixed: looks unconditional to metrics and sampling."""

    def __init__(self, G: torch.nn.Module, k: int) -> None:
        super().__init__()
        self.G, self.k = G, k
        self.z_dim, self.c_dim = G.z_dim, 0

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random") -> torch.Tensor:
        del c
        onehot = torch.nn.functional.one_hot(torch.full((z.shape[0],), self.k), self.G.c_dim).to(z)
        return self.G(z, onehot, truncation_psi=truncation_psi, noise_mode=noise_mode)


def rank_source_classes(G: torch.nn.Module, target, num_gen: int = 200, num_real: int | None = 1000,
                        seed: int = 0) -> list[tuple[int, float]]:
    """``[(class, FID of its samples vs the target)]``, nearest first (TransferGAN's source choice).

    Uses the standard FID Inception features; the target's are cached by content, so each class
    costs ``num_gen`` generated images.
    """
    from gantl.metrics.api import evaluate_generator

    scores = []
    for k in range(int(G.c_dim)):
        res = evaluate_generator(FixedClass(G, k).eval(), target, ["fid"], num_gen=num_gen, num_real=num_real,
                                 seed=seed, progress=False)
        scores.append((k, float(res["fid"])))
        log.info("source class %d: FID %.2f against the target (%d generated)", k, res["fid"], num_gen)
    return sorted(scores, key=lambda s: s[1])
