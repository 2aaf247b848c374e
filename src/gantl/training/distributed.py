"""Data-parallel training under ``torchrun --nproc_per_node N`` (gloo on CPU, NCCL on GPU).

Each process trains on its slice of the global batch (``batch / world``) with its own
random stream (seeded ``seed * world + rank``, as in StyleGAN2-ADA), and after every
backward pass the gradients are averaged across processes. That is what
``DistributedDataParallel`` does; gantl does the averaging itself, once per phase with
one flattened all-reduce per network, because the phase loop switches ``requires_grad``
between G and D and runs lazy regularisers on some steps only — patterns DDP's
bucketed hooks need ``find_unused_parameters`` and extra syncs to tolerate. Weights start
identical (broadcast from rank 0) and buffers (batch-norm statistics, w_avg, ADA p) are
re-broadcast from rank 0 after each step, so all ranks hold the same networks at all
times; only rank 0 logs, writes images and snapshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        # One GPU per process: without this every rank of `torchrun ... gantl train` lands on GPU 0.
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world=world, local_rank=local_rank)


def shutdown(info: DistInfo) -> None:
    """Leave the process group together: a rank that tears gloo down while another still talks to it
    aborts the whole job ("terminate called without an active exception"), so meet at a barrier first."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_module(net: nn.Module, info: DistInfo, *, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (and buffers) to every other rank."""
    if not info.enabled:
        return
    tensors = list(net.buffers()) if buffers_only else [*net.parameters(), *net.buffers()]
    for t in tensors:
        if t.is_floating_point() or t.dtype in (torch.int64, torch.int32):
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """All-reduce (mean) the gradients of ``params`` that have one, in a single flat buffer."""
    if not info.enabled:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world
    # nan_to_num as in StyleGAN2-ADA: one bad rank must not poison every rank's weights.
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
