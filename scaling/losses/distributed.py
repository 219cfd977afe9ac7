"""All-gathers over the default process group; identity when ``world_size == 1`` (no group needed)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn
from torch import Tensor


def gather_with_grad(tensor: Tensor, world_size: int) -> Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, differentiably (open_clip's gather_with_grad).

    The backward sums the gradients from all ranks into each rank's shard, which gives the full global
    negatives their gradient (spec §2b step 2).
    """
    if world_size == 1:
        return tensor
    return torch.cat(torch.distributed.nn.all_gather(tensor), dim=0)


@torch.no_grad()
def gather_no_grad(tensor: Tensor, world_size: int) -> Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, for values without gradient (reference, u)."""
    if world_size == 1:
        return tensor
    shards = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(shards, tensor.contiguous())
    return torch.cat(shards, dim=0)
