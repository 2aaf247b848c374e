"""ADA's feedback loop: raise the augmentation probability p when D overfits, lower it when it does not.

The overfitting heuristic of the ADA paper is ``r_t = E[sign(D_train(real))]``: 0 means D cannot tell
training reals from fakes, 1 means it is confidently right on every real, i.e. it memorised them.
Every ``interval`` discriminator steps the tuner computes ``r_t`` over those steps and moves p by
``sign(r_t - target) * batch * interval / (speed_kimg * 1000)``, so p can travel from 0 to 1 in
``speed_kimg`` thousand images (500k in the paper). ``p`` is clamped to ``[0, p_max]``.

The accumulators, counters and ``p`` (kept as a Python float so the steps of ``batch * interval / 5e5``
add up exactly like the formula, not like float32) are in :meth:`AdaTuner.state_dict`, so a resumed run
continues bit-for-bit. Under DistributedDataParallel every rank calls :meth:`observe` with its local
logits; the sums are all-reduced before each update, so every rank computes the same p.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gantl.errors import CheckpointError, ConfigError

ReduceFn = Callable[[Tensor], Tensor]


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over all ranks when ``torch.distributed`` is initialised; identity otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class AdaTuner:
    """Adjusts ``pipe.p`` from the sign of D's logits on real images.

    Args:
        pipe: an object with ``set_p(float)`` (e.g. :class:`gantl.augment.ada.AugmentPipe`), or None to only
            track ``p`` (read it from :attr:`p`).
        target: desired ``r_t`` (0.6 in the paper).
        speed_kimg: thousands of images for p to go from 0 to 1 at most (500 in the paper).
        interval: D iterations between updates (4 in the paper).
        fixed_p: if given, p is held at this value and never tuned (``r_t`` is still measured and logged).
        p_max: cap on p (the paper's pipelines start to leak above ~0.8).
        reduce_fn: sums a tensor across processes; defaults to an all-reduce when torch.distributed is
            initialised (and the identity otherwise).

    Usage, once per D iteration on real images::

        logits = D(pipe(reals))
        tuner.observe(logits)
        tuner.step(global_batch_size)   # True when p was updated
    """

    def __init__(
        self,
        pipe: Any = None,
        target: float = 0.6,
        speed_kimg: float = 500,
        interval: int = 4,
        fixed_p: float | None = None,
        p_max: float = 1.0,
        reduce_fn: ReduceFn | None = None,
    ) -> None:
        if not -1.0 <= target <= 1.0:
            raise ConfigError(f"ADA target={target} must be in [-1, 1] (the paper uses 0.6)")
        if speed_kimg <= 0:
            raise ConfigError(f"ADA speed_kimg={speed_kimg} must be positive (the paper uses 500)")
        if int(interval) != interval or interval < 1:
            raise ConfigError(f"ADA interval={interval} must be a positive integer (the paper uses 4)")
        if not 0.0 <= p_max <= 1.0:
            raise ConfigError(f"ADA p_max={p_max} must be in [0, 1]")
        if fixed_p is not None and not 0.0 <= fixed_p <= 1.0:
            raise ConfigError(f"fixed augment p={fixed_p} must be in [0, 1]")
        self.pipe = pipe
        self.target = float(target)
        self.speed_kimg = float(speed_kimg)
        self.interval = int(interval)
        self.fixed_p = None if fixed_p is None else float(fixed_p)
        self.p_max = float(p_max)
        self.reduce_fn: ReduceFn = reduce_fn or all_reduce_sum
        self.p = self.fixed_p if self.fixed_p is not None else 0.0
        self.rt: float | None = None  # last measured r_t (None before the first update)
        # [sum of sign(D(real)), number of logits] since the last update, on this process. Kept as a tensor
        # on the logits' device so observing costs no GPU->CPU sync; read once per interval.
        self._acc = torch.zeros(2, dtype=torch.float64)
        self.steps_since_update = 0
        self.num_updates = 0
        self._push()

    @property
    def adaptive(self) -> bool:
        return self.fixed_p is None

    def _push(self) -> None:
        if self.pipe is not None:
            self.pipe.set_p(self.p)

    @property
    def sign_sum(self) -> float:
        """Sum of ``sign(D(real))`` observed on this process since the last update."""
        return float(self._acc[0])

    @property
    def count(self) -> int:
        """Number of real logits observed on this process since the last update."""
        return int(self._acc[1])

    def observe(self, real_logits: Tensor) -> None:
        """Accumulate ``sign(D(real))`` for the current interval (call on each D pass over reals)."""
        logits = real_logits.detach()
        if self._acc.device != logits.device:
            self._acc = self._acc.to(logits.device)
        self._acc[0] += torch.sign(logits).sum().to(torch.float64)
        self._acc[1] += logits.numel()

    def step(self, batch_size: int) -> bool:
        """Count one D iteration; every ``interval`` iterations update p. Returns whether p was updated.

        ``batch_size`` is the number of real images per iteration summed over all processes.
        """
        self.steps_since_update += 1
        if self.steps_since_update < self.interval:
            return False
        totals = self.reduce_fn(self._acc).tolist()
        sign_sum, count = float(totals[0]), float(totals[1])
        self._acc = torch.zeros_like(self._acc)
        self.steps_since_update = 0
        if count == 0:
            return False  # nothing observed (e.g. a phase without reals); keep p
        self.rt = sign_sum / count
        self.num_updates += 1
        if not self.adaptive:
            return False
        adjust = math.copysign(1.0, self.rt - self.target) if self.rt != self.target else 0.0
        adjust *= batch_size * self.interval / (self.speed_kimg * 1000)
        self.p = min(max(self.p + adjust, 0.0), self.p_max)
        self._push()
        return True

    def stats(self) -> dict[str, float | None]:
        """Values worth logging each tick (``augment_p``, ``ada_rt``)."""
        return {"augment_p": self.p, "ada_rt": self.rt}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (plain Python numbers: safe for ``weights_only`` loading)."""
        return {
            "p": self.p,
            "rt": self.rt,
            "sign_sum": self.sign_sum,
            "count": self.count,
            "steps_since_update": self.steps_since_update,
            "num_updates": self.num_updates,
            "target": self.target,
            "speed_kimg": self.speed_kimg,
            "interval": self.interval,
            "fixed_p": self.fixed_p,
            "p_max": self.p_max,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters and p. Tuning settings come from the constructor (a resumed run may change them,
        e.g. lower ``p_max``); p is re-clamped to the current cap and a fixed p wins over the stored one."""
        missing = {"p", "sign_sum", "count", "steps_since_update"} - set(state)
        if missing:
            raise CheckpointError(f"ADA tuner state lacks {sorted(missing)}; the checkpoint is incomplete")
        self.p = min(max(float(state["p"]), 0.0), self.p_max)
        if self.fixed_p is not None:
            self.p = self.fixed_p
        self.rt = None if state.get("rt") is None else float(state["rt"])
        self._acc = torch.tensor([float(state["sign_sum"]), float(state["count"])], dtype=torch.float64)
        self.steps_since_update = int(state["steps_since_update"])
        self.num_updates = int(state.get("num_updates", 0))
        self._push()
