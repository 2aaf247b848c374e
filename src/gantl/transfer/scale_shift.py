"""``scale-shift``: freeze the whole generator and learn only a per-channel scale and shift.

Batch statistics adaptation (Noguchi & Harada, ICCV 2019, "Image generation from small datasets
via batch statistics adaptation"; official code nogu-atsu/small-dataset-image-generation) keeps
every convolution and linear weight of a pretrained generator and inserts, after every batch norm,
new per-channel ``gamma`` (init 1) and ``beta`` (init 0): only the statistics of the features
adapt, so a few dozen images cannot overwrite what the filters know.

gantl implements the *adversarial* variant the Park et al. survey compares (FreezeD code base,
``--only_adain``: frozen G, a trained D, the normal GAN loss) rather than BSA's supervised loss
with per-image latents (that is ``glo``'s territory). Where the scale/shift goes:

* DCGAN / ResNet generators: on the output of every batch norm (class-conditional ones included),
  before the ReLU, exactly BSA's position;
* StyleGAN2 (no batch norm): on the output of every synthesis layer (``conv0``/``conv1`` of each
  block), the per-channel feature statistics the next modulated convolution sees.

At initialisation the generator is bitwise the source (scale 1, shift 0). The new tensors are
parameters of the hooked module (``synthesis.b8.conv0.ss_scale``, ``blocks.1.bn.ss_shift``) and
the change is recorded as a network adapter (:func:`gantl.transfer.base.add_adapter`), so a
snapshot rebuilds with :meth:`Checkpoint.build` (``gantl eval``, ``gantl generate``) and serves as a
``--resume`` source. The discriminator trains as in plain fine-tuning.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gantl.errors import ConfigError
from gantl.models.dcgan import ConditionalBatchNorm2d
from gantl.transfer.base import BaseMethod, add_adapter, register_adapter, register_method
from gantl.transfer.freeze import freeze_module

ADAPTER = "scale-shift"
PARAMS = ("ss_scale", "ss_shift")


def _scale_shift_hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
    """``y * scale + shift`` per channel (a module-level function, so deep copies keep working)."""
    return output * module.ss_scale.view(1, -1, 1, 1) + module.ss_shift.view(1, -1, 1, 1)


def _channels(module: nn.Module) -> int:
    if isinstance(module, ConditionalBatchNorm2d):
        return int(module.norm.num_features)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return int(module.num_features)
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 4:  # StyleGAN2 SynthesisLayer: [out, in, k, k]
        return int(weight.shape[0])
    raise ConfigError(f"scale-shift cannot tell the channel count of {type(module).__name__}")


def scale_shift_targets(G: nn.Module) -> list[str]:
    """Names of the modules of ``G`` that get a scale/shift (see the module docstring)."""
    from gantl.models.stylegan2 import SynthesisLayer

    names: list[str] = []
    inside_cbn: set[str] = set()
    for name, module in G.named_modules():
        if isinstance(module, ConditionalBatchNorm2d):
            names.append(name)
            inside_cbn.update(f"{name}.{child}" for child, _ in module.named_modules() if child)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and name not in inside_cbn:
            names.append(name)
        elif isinstance(module, SynthesisLayer):
            names.append(name)
    if not names:
        raise ConfigError("scale-shift found no batch norm or synthesis layer in this generator; it applies to "
                          "stylegan2, dcgan and resnet generators")
    return names


@register_adapter(ADAPTER)
def apply_scale_shift(net: nn.Module, record: dict[str, Any]) -> None:
    """Add ``ss_scale`` (ones) and ``ss_shift`` (zeros) and the hook to every module named in ``record``."""
    modules = dict(net.named_modules())
    for name in record["modules"]:
        module = modules.get(name)
        if module is None:
            raise ConfigError(f"scale-shift adapter names module '{name}', which this network does not have")
        c = _channels(module)
        device = next(iter(module.parameters()), torch.zeros([])).device
        module.register_parameter("ss_scale", nn.Parameter(torch.ones([c], device=device)))
        module.register_parameter("ss_shift", nn.Parameter(torch.zeros([c], device=device)))
        module.register_forward_hook(_scale_shift_hook)


class ScaleShift(BaseMethod):
    """Frozen G plus learned per-channel scale/shift (Noguchi & Harada 2019; survey's adversarial variant)."""

    name = "scale-shift"
    needs_source_g = True
    freezes_g = True
    prepare_order = 0

    def prepare(self, G: nn.Module, D: nn.Module, source: Any) -> None:
        if source is None:
            raise ConfigError("scale-shift adapts a pretrained generator; pass --resume SOURCE (or drop it)")
        freeze_module(G)
        add_adapter(G, {"kind": ADAPTER, "modules": scale_shift_targets(G)})
        for name, p in G.named_parameters():
            if name.rsplit(".", 1)[-1] in PARAMS:
                p.requires_grad_(True)


@register_method("scale-shift", help="batch statistics adaptation (Noguchi & Harada 2019): G frozen, "
                 "learned per-channel scale/shift after every norm / synthesis layer, D trains")
def _make(args: list[str]) -> ScaleShift:
    if args:
        raise ConfigError("scale-shift takes no arguments; write --method scale-shift")
    return ScaleShift()
