"""One run across N processes: torchrun or SLURM task variables → a process group (gloo on CPU, nccl on GPU).

The loss gathers features with gradients; each rank's gradient then holds its share of the global-batch
loss, so summing gradients over ranks and dividing by the world size gives exactly the one-process gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def device(self) -> torch.device:
        """One GPU per process when there are GPUs (SLURM or torchrun set the local rank), else the CPU."""
        return torch.device(f"cuda:{self.local_rank}") if torch.cuda.is_available() else torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _slurm_master_addr() -> str:
    """First host of the job's node list (SLURM sets no MASTER_ADDR; submitit's helper parses the list)."""
    from submitit.helpers import TorchDistributedEnvironment

    return TorchDistributedEnvironment().master_addr


def init_world() -> World:
    """Join the process group described by the environment, or return a one-process world."""
    from open_clip_train.distributed import world_info_from_env

    local_rank, rank, world_size = world_info_from_env()
    if world_size <= 1:
        return World()
    if "RANK" not in os.environ:  # launched by srun: translate SLURM's variables for env://
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size))
        os.environ.setdefault("MASTER_ADDR", _slurm_master_addr())
        os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", rank=rank, world_size=world_size)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return World(rank=rank, world_size=world_size, local_rank=local_rank)


def average_gradients(model: torch.nn.Module, world: World) -> None:
    """Sum each gradient over ranks and divide by the world size (what DDP does, without the wrapper)."""
    if not world.distributed:
        return
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world.world_size


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
