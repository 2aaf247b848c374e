"""Build the augmentation that every image D sees goes through (``--aug none|ada|diffaugment``).

``ada``: :class:`gantl.augment.ada.AugmentPipe` from the ``--aug-pipe`` preset, with an
:class:`gantl.augment.tuner.AdaTuner` that moves p toward ``--ada-target`` (or holds
``--ada-p`` fixed), capped at ``--ada-cap``. ``diffaugment``: the policy string of
:class:`gantl.augment.diffaugment.DiffAugment`. Both draw from torch's global RNG, so
their randomness is part of the saved training state.
"""

from __future__ import annotations

from typing import Any

import torch

from gantl.training.options import TrainOptions


class AdaControl:
    """The loop's view of ADA: observe real logits, step once per minibatch, expose p and state."""

    def __init__(self, tuner: Any, batch: int) -> None:
        self.tuner = tuner
        self.batch = batch

    @property
    def p(self) -> float:
        return float(self.tuner.p)

    def observe(self, logits: torch.Tensor) -> None:
        self.tuner.observe(logits)

    def step(self) -> None:
        self.tuner.step(self.batch)

    def stats(self) -> dict[str, float]:
        out = {"augment_p": self.p}
        if self.tuner.rt is not None:
            out["ada_rt"] = float(self.tuner.rt)
        return out

    def state_dict(self) -> dict[str, Any]:
        return self.tuner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tuner.load_state_dict(state)


def build_augment(opts: TrainOptions, device: torch.device, *, batch: int, world: Any = None
                  ) -> tuple[Any, AdaControl | None]:
    """(augment callable or None, ADA control or None)."""
    if opts.aug == "none":
        return None, None
    if opts.aug == "diffaugment":
        from gantl.augment.diffaugment import DiffAugment

        return DiffAugment(opts.diffaugment), None
    from gantl.augment.ada import AugmentPipe
    from gantl.augment.tuner import AdaTuner

    pipe = AugmentPipe.from_preset(opts.aug_pipe).to(device)
    tuner = AdaTuner(pipe, target=opts.ada_target, speed_kimg=opts.ada_kimg, interval=opts.ada_interval,
                     fixed_p=opts.ada_p, p_max=opts.ada_cap)
    return pipe, AdaControl(tuner, batch)
