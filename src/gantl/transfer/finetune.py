"""``finetune[:scale]``: train every weight of the source, optionally at a scaled learning rate.

Plain fine-tuning is the baseline every other transfer method is measured against
(Wang et al. 2018, "Transferring GANs"). A scale below 1 (``finetune:0.1``) keeps the
first steps from wiping out what the source learned when the target set is tiny.
"""

from __future__ import annotations

from torch import nn

from gantl.transfer.base import BaseMethod, ParamGroups, float_arg, register_method


class FineTune(BaseMethod):
    name = "finetune"

    def __init__(self, lr_scale: float = 1.0) -> None:
        self.lr_scale = float(lr_scale)

    def spec(self) -> str:
        return self.name if self.lr_scale == 1.0 else f"{self.name}:{self.lr_scale:g}"

    def parameters(self, G: nn.Module, D: nn.Module) -> ParamGroups:
        return {"G": [{"params": list(G.parameters()), "lr_scale": self.lr_scale}],
                "D": [{"params": list(D.parameters()), "lr_scale": self.lr_scale}]}


@register_method("finetune", usage="finetune[:scale]", help="train every weight from the source, lr times scale "
                 "(Wang et al. 2018)")
def _make(args: list[str]) -> FineTune:
    return FineTune(float_arg(args, 0, "finetune", 1.0))
