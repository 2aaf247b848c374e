"""Transfer between unconditional and class-conditional networks (TransferGAN, research notes A8).

**Unconditional source -> conditional target.** The source knows one distribution; the target
has classes. Every tensor whose shape is unchanged is copied. Where conditioning adds structure,
the new parameters are set so that the conditional network at the start *is* the source for
every class, and training then separates the classes:

* class-conditional batch norm (ResNet, DCGAN generators): the source's affine ``weight``/``bias``
  go into *every class row* of the per-class gain/bias (gain is stored as ``1 + c @ gain``, so a
  row holds ``weight - 1``); the running statistics move to the affine-free norm;
* StyleGAN2's mapping network: its first layer now reads ``[z, embed(c)]``; the z columns take the
  source's weight (rescaled for equalized lr, whose gain is ``1/sqrt(fan_in)`` and fan-in grew) and
  the label columns start at zero, so w does not depend on the class until training moves them;
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
            # StyleGAN2: fc0 reads [normalised z, normalised embed(c)]; label columns start at zero.
            src_in, tgt_in = value.shape[1], out[key].shape[1]
            widened = torch.zeros_like(out[key])
            widened[:, :src_in] = value * math.sqrt(tgt_in / src_in)  # same effective weight under equalized lr
            out[key] = widened
            filled.add(key)
    fresh = [k for k in out if k not in filled and not k.endswith("num_batches_tracked")]
    return out, fresh


def _widened_input(src: torch.Tensor, tgt: torch.Tensor) -> bool:
    return src.ndim == tgt.ndim == 2 and src.shape[0] == tgt.shape[0] and src.shape[1] < tgt.shape[1]


def is_unconditional_to_conditional(source_info: dict, target: torch.nn.Module) -> bool:
    """Whether the source network is unconditional and the target of the same arch is conditional."""
    src_c = int((source_info.get("config") or {}).get("c_dim", 0) or 0)
    return src_c == 0 and int(getattr(target, "c_dim", 0) or 0) > 0
