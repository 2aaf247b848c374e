"""Architecture name -> network constructor, with the config kept beside the weights.

Every network class takes only JSON-serialisable keyword arguments and keeps them in
``self.config``, so a checkpoint stores ``{"arch": name, "config": net.config}`` and
rebuilds the exact network with :func:`build` — no pickled classes, no code in files.

Network contract (shared by all architectures):

* Generator: ``z_dim``, ``c_dim``, ``img_resolution``, ``img_channels``, ``config``;
  ``forward(z, c=None, truncation_psi=1.0, noise_mode="random") -> [N, C, H, W]`` in
  about [-1, 1]; ``blocks``: modules ordered from the constant/latent side, so
  ``freezeg K`` freezes ``blocks[:K]``.
* Discriminator: ``c_dim``, ``img_resolution``, ``img_channels``, ``config``;
  ``forward(img, c=None) -> [N, 1]`` logits; ``blocks`` ordered from the image side,
  so ``freezed K`` freezes ``blocks[:K]``.

What a family can do beyond that contract is declared in :data:`CAPABILITIES`, so tools such as
``gantl generate`` ask :func:`capabilities` instead of branching on architecture names. A family
with ``has_mapping`` also provides ``G.mapping(z, c, truncation_psi=...) -> ws [N, num_ws, w_dim]``,
``G.mapping.w_avg``, ``G.num_ws`` and ``G.synthesis(ws, noise_mode=...) -> images``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from torch import nn

from gantl.errors import ConfigError

# arch -> (module, generator class, discriminator class)
ARCHS: dict[str, tuple[str, str, str]] = {
    "stylegan2": ("gantl.models.stylegan2", "Generator", "Discriminator"),
    "dcgan": ("gantl.models.dcgan", "Generator", "Discriminator"),
    "resnet": ("gantl.models.resnet", "Generator", "Discriminator"),
}


@dataclass(frozen=True)
class Capabilities:
    """What a model family supports beyond the shared G/D contract (defaults: nothing extra)."""

    has_mapping: bool = False  # a w space: G.mapping / G.synthesis / w_avg (lerp in w, truncation toward w_avg)
    supports_style_mix: bool = False  # ws of two latents can be mixed per layer (needs has_mapping)
    truncation: str = "none"  # what G(z, truncation_psi=...) scales: "w" (toward w_avg), "z" (toward 0), "none"
    conditional: bool = True  # the family can be built with c_dim > 0


CAPABILITIES: dict[str, Capabilities] = {
    "stylegan2": Capabilities(has_mapping=True, supports_style_mix=True, truncation="w"),
    "dcgan": Capabilities(truncation="z"),
    "resnet": Capabilities(truncation="z"),
}


def capabilities(arch: str) -> Capabilities:
    """The declared capabilities of ``arch``; a registered family that declares none gets the defaults."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture '{arch}'; known: {', '.join(sorted(ARCHS))}")
    return CAPABILITIES.get(arch, Capabilities())


def network_class(arch: str, kind: str) -> type[nn.Module]:
    """The class for ``kind`` ('G' or 'D', 'G_ema' counts as 'G') of architecture ``arch``."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture '{arch}'; known: {', '.join(sorted(ARCHS))}")
    module_name, g_name, d_name = ARCHS[arch]
    module = importlib.import_module(module_name)
    return getattr(module, d_name if kind == "D" else g_name)


def build(arch: str, kind: str, config: dict[str, Any]) -> nn.Module:
    """Construct a fresh network of ``arch``/``kind`` from its stored config."""
    cls = network_class(arch, kind)
    try:
        return cls(**config)
    except TypeError as exc:
        raise ConfigError(f"config for {arch} {kind} does not fit its constructor: {exc}") from None


def arch_of(net: nn.Module) -> str:
    """The registry name of a network instance (inverse of :func:`network_class`)."""
    for arch, (module_name, _, _) in ARCHS.items():
        if type(net).__module__ == module_name:
            return arch
    raise ConfigError(f"{type(net).__name__} is not a registered gantl architecture")
